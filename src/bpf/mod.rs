//! tc BPF programs: the objects built from `bpf/*.bpf.c` at compile time (build.rs, clang
//! `-target bpf`), loading them with their read-only globals set, attaching one to the tc
//! ingress or egress hook (clsact) of an interface inside a namespace, and detaching it.
//!
//! Attachments are netlink cls_bpf filters (not fd-bound TCX links): they stay after the
//! loading process exits, like the rest of a lab, and go with the interface (or its namespace).
//! This module knows no mode; drivers say which program goes where.

use std::path::{Path, PathBuf};

use aya::programs::tc::{self, NlOptions, SchedClassifier, TcAttachOptions, TcAttachType};
use aya::EbpfLoader;

use crate::netns::{self, NetnsError};

/// The bytes of `OUT_DIR/NAME.bpf.o`, 8-byte aligned (the ELF parser reads 64-bit fields in
/// place; `include_bytes!` alone guarantees no alignment).
macro_rules! include_object {
    ($name:literal) => {{
        #[repr(C, align(8))]
        struct Aligned<B: ?Sized>(B);
        static ALIGNED: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(
            env!("OUT_DIR"),
            "/",
            $name,
            ".bpf.o"
        )));
        &ALIGNED.0
    }};
}

/// `bpf/veth_redirect.bpf.c`: `nic_ingress` (bpf_redirect_peer) and `veth_ingress`
/// (bpf_redirect_neigh), for the veth-bpf mode.
pub const VETH_REDIRECT: Object = Object {
    name: "veth_redirect",
    bytes: include_object!("veth_redirect"),
};

/// `bpf/netkit.bpf.c`: `nk_peer_out` (bpf_redirect_neigh) and `nk_nic_in` (bpf_redirect_peer),
/// for the netkit-bpf mode (attached through [`mprog`], not tc).
pub const NETKIT: Object = Object {
    name: "netkit",
    bytes: include_object!("netkit"),
};

pub mod mprog;
pub mod netkit;
pub mod waterfall;

/// A compiled BPF object (ELF) and its name.
#[derive(Debug, Clone, Copy)]
pub struct Object {
    pub name: &'static str,
    pub bytes: &'static [u8],
}

/// The tc hook of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Ingress,
    Egress,
}

impl Hook {
    fn tc(self) -> TcAttachType {
        match self {
            Hook::Ingress => TcAttachType::Ingress,
            Hook::Egress => TcAttachType::Egress,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Hook::Ingress => "ingress",
            Hook::Egress => "egress",
        }
    }
}

/// Errors from loading, attaching and detaching.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("nslat was built without clang, so it has no BPF programs: install clang, llvm and libbpf-dev (scripts/install-deps) and rebuild")]
    NotBuilt,
    #[error("loading BPF object {object}: {reason}")]
    Load {
        object: &'static str,
        reason: String,
    },
    #[error("attaching {program} to the tc {hook} hook of {ifname} in {}: {reason}", netns.display())]
    Attach {
        program: String,
        hook: &'static str,
        ifname: String,
        netns: PathBuf,
        reason: String,
    },
    #[error("detaching {program} from the tc {hook} hook of {ifname}: {reason}")]
    Detach {
        program: String,
        hook: &'static str,
        ifname: String,
        reason: String,
    },
    #[error(
        "attaching BPF program {program} to the {point} hook of interface {ifindex}: {source}"
    )]
    Mprog {
        program: &'static str,
        point: &'static str,
        ifindex: u32,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// One program of an object to attach, with the object's read-only globals (`volatile const
/// __u32 NAME` in C) set first.
#[derive(Debug, Clone)]
pub struct Attach<'a> {
    pub object: Object,
    /// The program's function name in the object.
    pub program: &'a str,
    pub globals: &'a [(&'a str, u32)],
    /// The interface (a name in `netns`) and the hook.
    pub ifname: &'a str,
    pub hook: Hook,
}

/// Loads `a.program` and attaches it to `a.ifname`'s tc hook inside the namespace at `netns`
/// (adding the clsact qdisc if the interface has none). The attachment outlives this process.
pub fn attach(netns: &Path, a: &Attach) -> Result<(), BpfError> {
    if a.object.bytes.is_empty() {
        return Err(BpfError::NotBuilt);
    }
    let object = a.object;
    let program = a.program.to_string();
    let globals: Vec<(String, u32)> = a.globals.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let ifname = a.ifname.to_string();
    let hook = a.hook;
    let path = netns.to_path_buf();
    netns::run_in(Some(netns), move || {
        let attach_err = |reason: String| BpfError::Attach {
            program: program.clone(),
            hook: hook.name(),
            ifname: ifname.clone(),
            netns: path.clone(),
            reason,
        };
        let mut loader = EbpfLoader::new();
        for (k, v) in &globals {
            loader.set_global(k.as_str(), v, true);
        }
        let mut ebpf = loader.load(object.bytes).map_err(|e| BpfError::Load {
            object: object.name,
            reason: crate::error::error_chain(&e),
        })?;
        // An interface that has clsact already (a second program) is fine.
        if let Err(e) = tc::qdisc_add_clsact(&ifname) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(attach_err(format!("adding the clsact qdisc: {e}")));
            }
        }
        let prog: &mut SchedClassifier = ebpf
            .program_mut(&program)
            .ok_or_else(|| attach_err(format!("no program {program} in {}", object.name)))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| attach_err(e.to_string()))?;
        prog.load()
            .map_err(|e| attach_err(crate::error::error_chain(&e)))?;
        let link = prog
            .attach_with_options(
                &ifname,
                hook.tc(),
                TcAttachOptions::Netlink(NlOptions::default()),
            )
            .map_err(|e| attach_err(crate::error::error_chain(&e)))?;
        // Keep the filter when the program object is dropped: the kernel holds the program
        // while the filter exists.
        let link = prog
            .take_link(link)
            .map_err(|e| attach_err(e.to_string()))?;
        std::mem::forget(link);
        Ok(())
    })
}

/// Detaches every filter of program `program` from `ifname`'s tc hook in `netns`. Returns
/// whether one was there.
pub fn detach(netns: &Path, ifname: &str, hook: Hook, program: &str) -> Result<bool, BpfError> {
    let (ifname, program) = (ifname.to_string(), program.to_string());
    netns::run_in(Some(netns), move || {
        match tc::qdisc_detach_program(&ifname, hook.tc(), &program) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(BpfError::Detach {
                program,
                hook: hook.name(),
                ifname,
                reason: e.to_string(),
            }),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The object is a BPF ELF with both programs and the globals the loader sets (not loaded:
    /// loading needs root and is covered by tests/it/veth_bpf.rs).
    #[test]
    fn object_has_its_programs_and_globals() {
        if VETH_REDIRECT.bytes.is_empty() {
            assert!(
                std::env::var_os("CI").is_none(),
                "built without clang under CI"
            );
            eprintln!("skipped: built without clang");
            return;
        }
        assert_eq!(&VETH_REDIRECT.bytes[..4], b"\x7fELF");
        // e_machine (offset 18, little-endian) 247 = EM_BPF.
        assert_eq!(VETH_REDIRECT.bytes[18], 247);
        let text = String::from_utf8_lossy(VETH_REDIRECT.bytes);
        for s in [
            "nic_ingress",
            "veth_ingress",
            "CTR_ADDR",
            "HOST_VETH_IFINDEX",
            "NIC_IFINDEX",
            "PASS_ONLY",
        ] {
            assert!(text.contains(s), "{s} missing from the object's symbols");
        }
    }
}
