//! BPF programs of the lab's datapaths: C in `bpf/*.bpf.c`, compiled by Debian's clang
//! (`-target bpf`) in build.rs, loaded with aya, attached to devices in the lab's namespaces.

pub mod attach;
pub mod netkit;

/// Errors loading or attaching a program.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("loading the BPF programs: {0}")]
    Load(String),
    #[error(
        "attaching BPF program {program} to the {point} hook of interface {ifindex}: {source}"
    )]
    Attach {
        program: &'static str,
        point: &'static str,
        ifindex: u32,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
}
