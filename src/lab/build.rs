//! Building and removing a lab: every namespace recorded before it is created, one netlink
//! socket per namespace, a numbered step after every change (for `NSLAT_ABORT_AFTER_STEP` and
//! for checking SIGINT/SIGTERM).

use std::collections::HashMap;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::path::PathBuf;

use super::plan::{self, v6};
use super::signals::UpGuard;
use super::state::{LabLock, LabState};
use super::{LabError, LabSpec, ModeInfo, ModeStatus};
use crate::firewall::NatLevel;
use crate::netlink::{sysctl, IpvlanMode, Netlink, NetlinkError, Route};
use crate::netns;

/// Sysctls of a namespace that plays an end host (the remote, a container): a new namespace may
/// start with the root namespace's forwarding setting (seen: kernel 6.18 with Docker's
/// ip_forward=1), so the lab says what it means instead of relying on the kernel's default.
const END_HOST: &[(&str, &str)] = &[("net.ipv4.ip_forward", "0")];

/// Env var: abort the process (like `kill -9`) right after step N of `up` (crash tests).
pub const ABORT_ENV: &str = "NSLAT_ABORT_AFTER_STEP";
/// Env var: print each step's time since the start of `up` to stderr.
pub const TRACE_ENV: &str = "NSLAT_TRACE_STEPS";
/// Env var: pause up to 10 s after step N of `up`, until a signal arrives (signal tests).
pub const PAUSE_ENV: &str = "NSLAT_PAUSE_AFTER_STEP";

fn env_step(var: &str) -> Option<u32> {
    std::env::var(var).ok().and_then(|v| v.parse().ok())
}

pub(super) fn up(spec: &LabSpec) -> Result<LabState, LabError> {
    spec.validate()?;
    if !netns::is_root() {
        return Err(LabError::NotRoot);
    }
    let lock = LabLock::acquire(&spec.name)?;
    let prefix = plan::prefix(&spec.name);
    let existing: Vec<String> = netns::list_with_prefix(&prefix)
        .into_iter()
        .filter(|n| {
            plan::all_suffixes()
                .iter()
                .any(|s| *n == format!("{prefix}{s}"))
        })
        .collect();
    let state = LabState::load(&spec.name)?;
    if state.is_some() || !existing.is_empty() {
        if state.is_none() {
            // Only namespaces of that name (not ours to touch): leave no lock file behind either.
            lock.remove_file();
        }
        return Err(LabError::Exists(spec.name.clone()));
    }
    let guard = UpGuard::enter();
    let mut b = Builder {
        spec,
        prefix,
        step: 0,
        abort_after: env_step(ABORT_ENV),
        pause_after: env_step(PAUSE_ENV),
        trace: std::env::var_os(TRACE_ENV).map(|_| std::time::Instant::now()),
        guard: &guard,
        fds: HashMap::new(),
        nl: HashMap::new(),
        node_eth0: 0,
        nat: NatLevel::None,
        ipvlan: None,
    };
    let result = b.build();
    drop(b);
    match result {
        Ok(state) => {
            drop(lock);
            Ok(state)
        }
        Err(e) => {
            teardown(&spec.name);
            lock.remove_file();
            Err(e)
        }
    }
}

/// A closed copy of lab `lab`'s topology under a prefix of its own: its remote, node, wire and
/// the containers of `modes` (what a measurement cell and an `--explain` node are made of).
pub(super) struct TopologyCopy {
    /// `PREFIX-remote`: where the copy's server listens.
    pub remote: PathBuf,
    /// `PREFIX-node`.
    pub node: PathBuf,
    /// Every mode asked, built or why not.
    pub modes: Vec<(super::Mode, ModeStatus)>,
    /// The NAT level the drivers left in the node (bridge's MASQUERADE, or none).
    pub nat: NatLevel,
}

/// Builds `modes` of lab `lab` (its remote, node, wire and containers) as namespaces
/// `PREFIX-remote`, `PREFIX-node`, ... under `prefix` instead of the lab's own, by the same
/// drivers: no state file, no lock; `ipv6`: dual-stack, as `lab up --ipv6`. SIGINT/SIGTERM stop it after the current step with
/// [`LabError::Interrupted`]; on any error the caller removes the copy ([`remove_copy`]).
pub(super) fn copy_under(
    lab: &str,
    prefix: String,
    modes: Vec<super::Mode>,
    ipv6: bool,
) -> Result<TopologyCopy, LabError> {
    let spec = LabSpec {
        name: lab.to_string(),
        modes,
        ipv6,
        host_shim: false,
    };
    let remote = netns::path_of(&format!("{prefix}remote"));
    let node = netns::path_of(&format!("{prefix}node"));
    let guard = UpGuard::enter();
    let mut b = Builder {
        spec: &spec,
        prefix,
        step: 0,
        abort_after: None,
        pause_after: None,
        trace: std::env::var_os(TRACE_ENV).map(|_| std::time::Instant::now()),
        guard: &guard,
        fds: HashMap::new(),
        nl: HashMap::new(),
        node_eth0: 0,
        nat: NatLevel::None,
        ipvlan: None,
    };
    let modes = b.topology()?;
    Ok(TopologyCopy {
        remote,
        node,
        modes,
        nat: b.nat,
    })
}

/// Removes every namespace a copy under `prefix` can have (its links and rules go with them).
/// Idempotent.
pub(super) fn remove_copy(prefix: &str) {
    for s in plan::topology_suffixes() {
        let _ = netns::delete(&format!("{prefix}{s}"));
    }
}

/// Removes every namespace of lab `name` (recorded or found by name) and its state file.
pub(super) fn teardown(name: &str) -> super::DownReport {
    let mut report = super::DownReport::default();
    let prefix = plan::prefix(name);
    let mut names: Vec<String> = match LabState::load(name) {
        Ok(Some(s)) => s.namespaces,
        Ok(None) => Vec::new(),
        // A corrupt state file is no obstacle: every namespace of the lab is found by name
        // below, and the file is removed with the rest.
        Err(LabError::State { .. }) => Vec::new(),
        Err(e) => {
            report.errors.push(crate::error::error_chain(&e));
            Vec::new()
        }
    };
    // Whatever a driver made outside the lab's namespaces (idempotent; every registered mode,
    // since after a crash the state file may not say which were built).
    for mode in super::Mode::ALL {
        if let Err(e) = mode.driver().teardown(name) {
            report
                .errors
                .push(format!("{mode}: {}", crate::error::error_chain(&e)));
        }
    }
    for s in plan::all_suffixes() {
        let n = format!("{prefix}{s}");
        if !names.contains(&n) && netns::path_of(&n).exists() {
            names.push(n);
        }
    }
    for n in names {
        match netns::delete(&n) {
            Ok(true) => report.removed.push(n),
            Ok(false) => {}
            Err(e) => report
                .errors
                .push(format!("{n}: {}", crate::error::error_chain(&e))),
        }
    }
    if let Err(e) = LabState::remove(name) {
        report.errors.push(crate::error::error_chain(&e));
    }
    report
}

/// What drivers build with: the spec, one netlink socket and one open fd per namespace (by
/// suffix: `remote`, `node`, or the mode's), numbered steps.
pub struct Builder<'a> {
    spec: &'a LabSpec,
    prefix: String,
    step: u32,
    abort_after: Option<u32>,
    pause_after: Option<u32>,
    trace: Option<std::time::Instant>,
    guard: &'a UpGuard,
    fds: HashMap<String, File>,
    nl: HashMap<String, Netlink>,
    /// The node's NIC (its end of the wire), once the wire is built.
    pub node_eth0: u32,
    /// The bridge mode's NAT level, as the drivers left it.
    pub nat: NatLevel,
    /// The ipvlan probe's outcome (probed once, when the first ipvlan mode asks).
    ipvlan: Option<Option<String>>,
}

fn ctx(what: impl Into<String>) -> impl FnOnce(LabError) -> LabError {
    let what = what.into();
    move |e| LabError::Step {
        what,
        source: Box::new(e),
    }
}

impl Builder<'_> {
    /// The name macvlan/ipvlan children get until they are renamed inside their namespace.
    pub const TMP_IFNAME: &'static str = "nslat-new0";

    /// Counts a step; aborts the process after step N if asked; stops on SIGINT/SIGTERM.
    pub fn step(&mut self) -> Result<(), LabError> {
        self.step += 1;
        if let Some(t0) = self.trace {
            eprintln!(
                "step {:3} at {:7.3} ms",
                self.step,
                t0.elapsed().as_secs_f64() * 1e3
            );
        }
        if self.abort_after == Some(self.step) {
            std::process::abort();
        }
        if self.pause_after == Some(self.step) {
            let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !self.guard.interrupted() && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        if self.guard.interrupted() {
            return Err(LabError::Interrupted);
        }
        Ok(())
    }

    fn ns_name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// Creates namespace `suffix` and, on the same thread inside it, opens its netlink socket,
    /// brings `lo` up and writes `sysctls`.
    fn namespace(&mut self, suffix: &str, sysctls: &[(&str, &str)]) -> Result<(), LabError> {
        let name = self.ns_name(suffix);
        let settings: Vec<(std::path::PathBuf, String)> = sysctls
            .iter()
            .map(|(k, v)| (sysctl::key_path(k), v.to_string()))
            .collect();
        let (path, nl) = netns::create_and_run(&name, move || -> Result<Netlink, LabError> {
            let mut nl = Netlink::open()?;
            let lo = nl.link_index("lo")?;
            nl.set_up(lo, true)?;
            sysctl::write_here(&settings)?;
            Ok(nl)
        })?;
        self.step()?;
        let fd = File::open(&path).map_err(|source| LabError::Io {
            what: format!("opening {}", path.display()),
            source,
        })?;
        self.fds.insert(suffix.to_string(), fd);
        self.nl.insert(suffix.to_string(), nl);
        self.step()
    }

    /// The spec being built.
    pub fn spec(&self) -> &LabSpec {
        self.spec
    }

    /// The path of namespace `suffix` of this lab.
    pub fn netns_path(&self, suffix: &str) -> std::path::PathBuf {
        netns::path_of(&self.ns_name(suffix))
    }

    /// Wraps `e` with what was being done.
    pub fn context(&self, what: &str, e: LabError) -> LabError {
        ctx(what)(e)
    }

    /// A built container mode's info: namespace `suffix`, `addr` on `eth0`, its v6 twin when
    /// the lab has IPv6 and `v6` (the mode carries v6).
    pub fn info(&self, suffix: &str, addr: Ipv4Addr, v6_ok: bool) -> ModeInfo {
        ModeInfo {
            netns: self.netns_path(suffix),
            addr,
            addr6: (self.spec.ipv6 && v6_ok).then(|| v6(addr)),
            ifname: "eth0".into(),
            server: plan::REMOTE,
        }
    }

    /// The netlink socket of namespace `suffix`.
    pub fn nl(&mut self, suffix: &str) -> &mut Netlink {
        self.nl.get_mut(suffix).expect("namespace opened")
    }

    /// A copy of namespace `suffix`'s fd (to place a link there while `self` is borrowed again).
    pub fn ns_fd(&self, suffix: &str) -> Result<File, LabError> {
        self.fds[suffix].try_clone().map_err(|source| LabError::Io {
            what: "duplicating a namespace fd".into(),
            source,
        })
    }

    /// Adds `a/len` (and with IPv6 its v6 twin with `len6`) to `ifindex` in `suffix`.
    pub fn addr(
        &mut self,
        suffix: &str,
        ifindex: u32,
        a: Ipv4Addr,
        len: u8,
        len6: u8,
    ) -> Result<(), LabError> {
        let ipv6 = self.spec.ipv6;
        let nl = self.nl(suffix);
        nl.add_address(ifindex, IpAddr::V4(a), len)?;
        if ipv6 {
            nl.add_address(ifindex, IpAddr::V6(v6(a)), len6)?;
        }
        self.step()
    }

    /// Adds a v4 route and, with IPv6, the same route built from the v6 twins.
    pub fn route(&mut self, suffix: &str, r: Route) -> Result<(), LabError> {
        let ipv6 = self.spec.ipv6;
        let nl = self.nl(suffix);
        nl.add_route(&r)?;
        if ipv6 {
            let to6 = |a: IpAddr| match a {
                IpAddr::V4(a) => IpAddr::V6(v6(a)),
                other => other,
            };
            let len6 = if r.prefix == 0 {
                0
            } else if r.prefix == 32 {
                128
            } else {
                64
            };
            let r6 = Route {
                dst: to6(r.dst),
                prefix: len6,
                gateway: r.gateway.map(to6),
                oif: r.oif,
                onlink: r.onlink,
                table: r.table,
                src: r.src.map(to6),
            };
            nl.add_route(&r6)?;
        }
        self.step()
    }

    fn build(&mut self) -> Result<LabState, LabError> {
        let spec = self.spec;
        let mut state = LabState {
            version: 1,
            name: spec.name.clone(),
            ipv6: spec.ipv6,
            host_shim: spec.host_shim,
            namespaces: Vec::new(),
            modes: Vec::new(),
            nat: NatLevel::None,
            complete: false,
            pid: std::process::id(),
            created_unix: super::inventory::now_unix(),
            kept: false,
        };
        // Record every namespace before creating any.
        state.namespaces.push(self.ns_name("remote"));
        state.namespaces.push(self.ns_name("node"));
        for m in &spec.modes {
            if let Some(s) = plan::mode_suffix(*m) {
                state.namespaces.push(self.ns_name(&s));
            }
        }
        state.save()?;
        self.step()?;

        state.modes = self.topology()?;
        state.nat = self.nat;
        if spec.host_shim {
            for (mode, status) in &state.modes {
                if status.is_ok() {
                    mode.driver()
                        .host_shim(self)
                        .map_err(ctx("building the host shim"))?;
                }
            }
        }

        state.complete = true;
        state.save()?;
        self.step()?;
        Ok(state)
    }

    /// The remote, the node, the wire and the spec's modes, under this builder's prefix.
    fn topology(&mut self) -> Result<Vec<(super::Mode, ModeStatus)>, LabError> {
        let spec = self.spec;
        self.namespace("remote", END_HOST)
            .map_err(ctx("creating the remote"))?;
        let mut forwarding = vec![("net.ipv4.ip_forward", "1")];
        if spec.ipv6 {
            forwarding.push(("net.ipv6.conf.all.forwarding", "1"));
        }
        self.namespace("node", &forwarding)
            .map_err(ctx("creating the node"))?;
        self.node_eth0 = self.wire().map_err(ctx("building the wire"))?;

        let mut modes = Vec::with_capacity(spec.modes.len());
        for &mode in &spec.modes {
            let driver = mode.driver();
            let status: ModeStatus = match driver.unavailable(self)? {
                Some(reason) => Err(reason),
                None => {
                    let suffix = plan::mode_suffix(mode).unwrap_or_default();
                    if mode.traits().own_namespace {
                        self.namespace(&suffix, END_HOST)
                            .map_err(ctx(format!("building mode {mode}")))?;
                    }
                    Ok(driver
                        .build(self, &suffix)
                        .map_err(ctx(format!("building mode {mode}")))?)
                }
            };
            modes.push((mode, status));
        }
        Ok(modes)
    }

    /// The wire: veth node eth0 <-> remote eth0, addresses, up, forwarding in the node.
    fn wire(&mut self) -> Result<u32, LabError> {
        let remote_fd = self.ns_fd("remote")?;
        self.nl("node")
            .create_veth("eth0", "eth0", Some(remote_fd.as_fd()))?;
        self.step()?;
        let node_eth0 = self.nl("node").link_index("eth0")?;
        let remote_eth0 = self.nl("remote").link_index("eth0")?;
        self.addr("node", node_eth0, plan::NODE, plan::WIRE_PREFIX, 64)?;
        self.addr("remote", remote_eth0, plan::REMOTE, plan::WIRE_PREFIX, 64)?;
        self.nl("node").set_up(node_eth0, true)?;
        self.nl("remote").set_up(remote_eth0, true)?;
        self.step()?;
        // The wire's gateway (like a router on the node's network) is the remote.
        self.route(
            "node",
            Route::via(Ipv4Addr::UNSPECIFIED.into(), 0, plan::REMOTE.into()),
        )?;
        Ok(node_eth0)
    }

    /// `Some(reason)` when the kernel cannot make an ipvlan child (tried once in the node).
    pub fn ipvlan_missing(&mut self) -> Result<Option<String>, LabError> {
        if let Some(r) = &self.ipvlan {
            return Ok(r.clone());
        }
        let parent = self.node_eth0;
        let nl = self.nl("node");
        let r = match nl.create_ipvlan("ipvlan-probe", parent, IpvlanMode::L2, None) {
            Ok(()) => {
                let i = nl.link_index("ipvlan-probe")?;
                nl.delete_link(i)?;
                None
            }
            Err(e @ NetlinkError::NoIpvlan) => Some(e.to_string()),
            // eth0 already carries macvlan children (a macvlan mode built first): the kernel
            // refused the parent, not the kind, so it has ipvlan.
            Err(NetlinkError::ParentBusy(_)) => None,
            Err(e) => return Err(e.into()),
        };
        self.step()?;
        self.ipvlan = Some(r.clone());
        Ok(r)
    }

    /// Renames the container's [`Self::TMP_IFNAME`] to `eth0`.
    pub fn rename_tmp(&mut self, suffix: &str) -> Result<(), LabError> {
        let nl = self.nl(suffix);
        let i = nl.link_index(Self::TMP_IFNAME)?;
        nl.rename(i, "eth0")?;
        Ok(())
    }

    /// The container's `eth0`: address and up. Returns its index.
    pub fn container_eth0(
        &mut self,
        suffix: &str,
        addr: Ipv4Addr,
        len: u8,
        len6: u8,
    ) -> Result<u32, LabError> {
        let ci = self.nl(suffix).link_index("eth0")?;
        self.addr(suffix, ci, addr, len, len6)?;
        self.nl(suffix).set_up(ci, true)?;
        self.step()?;
        Ok(ci)
    }
}
