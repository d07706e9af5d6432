//! Building and removing a lab: every namespace recorded before it is created, one netlink
//! socket per namespace, a numbered step after every change (for `NSLAT_ABORT_AFTER_STEP` and
//! for checking SIGINT/SIGTERM).

use std::collections::HashMap;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;

use super::plan::{self, v6};
use super::signals::UpGuard;
use super::state::{LabLock, LabState};
use super::{LabError, LabSpec, Mode, ModeInfo, ModeStatus};
use crate::firewall::{Firewall, NatLevel};
use crate::netlink::{sysctl, IpvlanMode, NetkitPair, NetkitPolicy, Netlink, NetlinkError, Route};
use crate::netns;

/// Env var: abort the process (like `kill -9`) right after step N of `up` (crash tests).
pub const ABORT_ENV: &str = "NSLAT_ABORT_AFTER_STEP";
/// Env var: print each step's time since the start of `up` to stderr.
pub const TRACE_ENV: &str = "NSLAT_TRACE_STEPS";
/// Env var: pause up to 10 s after step N of `up`, until a signal arrives (signal tests).
pub const PAUSE_ENV: &str = "NSLAT_PAUSE_AFTER_STEP";

/// The name macvlan/ipvlan children get until they are renamed inside their namespace.
const TMP_IFNAME: &str = "nslat-new0";

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
        ipvlan_ports: Vec::new(),
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
            report.errors.push(super::error_chain(&e));
            Vec::new()
        }
    };
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
                .push(format!("{n}: {}", super::error_chain(&e))),
        }
    }
    if let Err(e) = LabState::remove(name) {
        report.errors.push(super::error_chain(&e));
    }
    report
}

struct Builder<'a> {
    spec: &'a LabSpec,
    prefix: String,
    step: u32,
    abort_after: Option<u32>,
    pause_after: Option<u32>,
    trace: Option<std::time::Instant>,
    guard: &'a UpGuard,
    fds: HashMap<String, File>,
    nl: HashMap<String, Netlink>,
    ipvlan_ports: Vec<(Mode, u32)>,
}

fn ctx(what: impl Into<String>) -> impl FnOnce(LabError) -> LabError {
    let what = what.into();
    move |e| LabError::Step {
        what,
        source: Box::new(e),
    }
}

impl Builder<'_> {
    /// Counts a step; aborts the process after step N if asked; stops on SIGINT/SIGTERM.
    fn step(&mut self) -> Result<(), LabError> {
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

    fn nl(&mut self, suffix: &str) -> &mut Netlink {
        self.nl.get_mut(suffix).expect("namespace opened")
    }

    /// A copy of namespace `suffix`'s fd (to place a link there while `self` is borrowed again).
    fn ns_fd(&self, suffix: &str) -> Result<File, LabError> {
        self.fds[suffix].try_clone().map_err(|source| LabError::Io {
            what: "duplicating a namespace fd".into(),
            source,
        })
    }

    /// Adds `a/len` (and with IPv6 its v6 twin with `len6`) to `ifindex` in `suffix`.
    fn addr(
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
    fn route(&mut self, suffix: &str, r: Route) -> Result<(), LabError> {
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

        self.namespace("remote", &[])
            .map_err(ctx("creating the remote"))?;
        let mut forwarding = vec![("net.ipv4.ip_forward", "1")];
        if spec.ipv6 {
            forwarding.push(("net.ipv6.conf.all.forwarding", "1"));
        }
        self.namespace("node", &forwarding)
            .map_err(ctx("creating the node"))?;
        let node_eth0 = self.wire().map_err(ctx("building the wire"))?;

        let ipvlan_reason = if spec.modes.iter().any(|m| m.needs_ipvlan()) {
            self.probe_ipvlan(node_eth0)?
        } else {
            None
        };

        let netkit_reason = if spec.modes.iter().any(|m| m.needs_netkit()) {
            self.probe_netkit()?
        } else {
            None
        };

        let mut bridge_index = None;
        for &mode in &spec.modes {
            let status: ModeStatus = match (mode, &ipvlan_reason) {
                (m, _) if m.needs_netkit() && netkit_reason.is_some() => {
                    Err(netkit_reason.clone().expect("checked"))
                }
                (Mode::Host, _) => Ok(ModeInfo {
                    netns: netns::path_of(&self.ns_name("node")),
                    addr: plan::NODE,
                    addr6: spec.ipv6.then(|| v6(plan::NODE)),
                    ifname: "eth0".into(),
                }),
                (m, Some(reason)) if m.needs_ipvlan() => Err(reason.clone()),
                (m, _) => Ok(self
                    .mode(m, node_eth0, &mut bridge_index)
                    .map_err(ctx(format!("building mode {m}")))?),
            };
            state.modes.push((mode, status));
        }

        let built = |m: Mode| state.modes.iter().any(|(x, s)| *x == m && s.is_ok());
        if built(Mode::Bridge) {
            self.route(
                "remote",
                Route::via(plan::BRIDGE_NET.into(), 24, plan::NODE.into()),
            )?;
            Firewall::new(&netns::path_of(&self.ns_name("node")))
                .init_nat(NatLevel::Masquerade, super::bridge_subnet(), "eth0")
                .map_err(|e| ctx("installing the bridge's MASQUERADE rule")(e.into()))?;
            state.nat = NatLevel::Masquerade;
            self.step()?;
        }
        if built(Mode::Ptp) {
            self.route(
                "remote",
                Route::via(plan::PTP_NET.into(), 24, plan::NODE.into()),
            )?;
        }
        if built(Mode::Netkit) || built(Mode::NetkitBpf) {
            self.route(
                "remote",
                Route::via(plan::NETKIT_NET.into(), 24, plan::NODE.into()),
            )?;
        }
        if built(Mode::MacvlanVeth) || built(Mode::IpvlanVeth) {
            let side_net = Ipv4Addr::new(198, 18, 3, 0);
            self.route("remote", Route::via(side_net.into(), 24, plan::NODE.into()))?;
        }
        if spec.host_shim {
            self.host_shim(node_eth0, &state, ipvlan_reason.is_none())
                .map_err(ctx("building the host shim"))?;
        }

        state.complete = true;
        state.save()?;
        self.step()?;
        Ok(state)
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

    /// Tries an ipvlan child in the node; `Some(reason)` when the kernel cannot make one.
    fn probe_ipvlan(&mut self, parent: u32) -> Result<Option<String>, LabError> {
        let nl = self.nl("node");
        let r = match nl.create_ipvlan("ipvlan-probe", parent, IpvlanMode::L2, None) {
            Ok(()) => {
                let i = nl.link_index("ipvlan-probe")?;
                nl.delete_link(i)?;
                None
            }
            Err(e @ NetlinkError::NoIpvlan) => Some(e.to_string()),
            Err(e) => return Err(e.into()),
        };
        self.step()?;
        Ok(r)
    }

    /// Tries a netkit pair in the node; `Some(reason)` when the kernel cannot make one.
    fn probe_netkit(&mut self) -> Result<Option<String>, LabError> {
        let nl = self.nl("node");
        let pair = NetkitPair {
            name: "netkit-probe",
            peer: "netkit-probe1",
            peer_netns: None,
            policy: NetkitPolicy::Forward,
            peer_policy: NetkitPolicy::Forward,
        };
        let r = match nl.create_netkit(&pair) {
            Ok(()) => {
                let i = nl.link_index("netkit-probe")?;
                nl.delete_link(i)?;
                None
            }
            Err(e @ NetlinkError::NoNetkit) => Some(e.to_string()),
            Err(e) => return Err(e.into()),
        };
        self.step()?;
        Ok(r)
    }

    fn mode(
        &mut self,
        mode: Mode,
        node_eth0: u32,
        bridge: &mut Option<u32>,
    ) -> Result<ModeInfo, LabError> {
        let suffix = plan::mode_suffix(mode).expect("not host");
        self.namespace(&suffix, &[])?;
        let fd = self.ns_fd(&suffix)?;
        let addr = plan::mode_addr(mode);
        match mode {
            Mode::Host => unreachable!("host has no namespace"),
            Mode::Bridge => {
                let br = match *bridge {
                    Some(i) => i,
                    None => {
                        self.nl("node").create_bridge("docker0")?;
                        let i = self.nl("node").link_index("docker0")?;
                        self.addr("node", i, plan::BRIDGE_GW, 24, 64)?;
                        self.nl("node").set_up(i, true)?;
                        *bridge = Some(i);
                        i
                    }
                };
                let host = plan::node_veth(mode);
                self.nl("node")
                    .create_veth(&host, "eth0", Some(fd.as_fd()))?;
                self.step()?;
                let hi = self.nl("node").link_index(&host)?;
                self.nl("node").set_master(hi, br)?;
                self.nl("node").set_up(hi, true)?;
                self.step()?;
                self.container_eth0(&suffix, addr, 24, 64)?;
                self.route(
                    &suffix,
                    Route::via(Ipv4Addr::UNSPECIFIED.into(), 0, plan::BRIDGE_GW.into()),
                )?;
            }
            Mode::Ptp => {
                let host = plan::node_veth(mode);
                self.nl("node")
                    .create_veth(&host, "eth0", Some(fd.as_fd()))?;
                self.step()?;
                let hi = self.nl("node").link_index(&host)?;
                self.addr("node", hi, plan::PTP_NODE, 32, 128)?;
                self.nl("node").set_up(hi, true)?;
                self.route("node", Route::dev(addr.into(), 32, hi))?;
                let ci = self.container_eth0(&suffix, addr, 32, 128)?;
                self.route(&suffix, Route::dev(plan::PTP_NODE.into(), 32, ci))?;
                self.route(
                    &suffix,
                    Route::onlink(Ipv4Addr::UNSPECIFIED.into(), 0, plan::PTP_NODE.into(), ci),
                )?;
            }
            Mode::Macvlan | Mode::MacvlanVeth => {
                // Created under a temporary name, renamed in the container: kernels before 6.x
                // check the name in the creating namespace too, where eth0 exists.
                self.nl("node")
                    .create_macvlan(TMP_IFNAME, node_eth0, Some(fd.as_fd()))?;
                self.step()?;
                self.rename_tmp(&suffix)?;
                self.container_eth0(&suffix, addr, 24, 64)?;
                self.route(
                    &suffix,
                    Route::via(Ipv4Addr::UNSPECIFIED.into(), 0, plan::REMOTE.into()),
                )?;
            }
            Mode::IpvlanL2 | Mode::IpvlanL3 | Mode::IpvlanL3s | Mode::IpvlanVeth => {
                let m = match mode {
                    Mode::IpvlanL3 => IpvlanMode::L3,
                    Mode::IpvlanL3s => IpvlanMode::L3s,
                    _ => IpvlanMode::L2,
                };
                // The ipvlan mode belongs to the parent (all children share it), and a parent
                // with ipvlan children takes no macvlan: each ipvlan mode gets its own port on
                // the wire, a veth whose remote end also has the remote's address.
                let (pi, ri) = self.ipvlan_port(mode)?;
                self.nl("node")
                    .create_ipvlan(TMP_IFNAME, pi, m, Some(fd.as_fd()))?;
                self.step()?;
                self.rename_tmp(&suffix)?;
                if m == IpvlanMode::L2 {
                    self.container_eth0(&suffix, addr, 24, 64)?;
                    self.route("remote", Route::dev(addr.into(), 32, ri))?;
                    self.route(
                        &suffix,
                        Route::via(Ipv4Addr::UNSPECIFIED.into(), 0, plan::REMOTE.into()),
                    )?;
                } else {
                    // L3 children answer no ARP: the container routes out of eth0, and the remote
                    // reaches it at the parent's MAC (the children share it). IPv4 only: the
                    // IPv6 path of L3 children did not work in the guest kernel (6.1).
                    let c = self.nl(&suffix);
                    let ci = c.link_index("eth0")?;
                    c.add_address(ci, addr.into(), 24)?;
                    c.set_up(ci, true)?;
                    c.add_route(&Route::dev(Ipv4Addr::UNSPECIFIED.into(), 0, ci))?;
                    self.step()?;
                    let mac = self.nl("node").link_mac(pi)?;
                    let remote = self.nl("remote");
                    remote.add_route(&Route::dev(addr.into(), 32, ri))?;
                    remote.add_neighbour(ri, addr.into(), mac)?;
                    self.step()?;
                }
            }
            Mode::Netkit | Mode::NetkitBpf => {
                // Routed like ptp: the primary in the node (with the node's /32 of the netkit
                // subnet), the peer as the container's eth0; L3 mode, so no ARP either side.
                let primary = plan::node_veth(mode);
                self.nl("node").create_netkit(&NetkitPair {
                    name: &primary,
                    peer: "eth0",
                    peer_netns: Some(fd.as_fd()),
                    policy: NetkitPolicy::Forward,
                    peer_policy: NetkitPolicy::Forward,
                })?;
                self.step()?;
                let hi = self.nl("node").link_index(&primary)?;
                match self
                    .nl("node")
                    .add_address(hi, plan::NETKIT_NODE.into(), 32)
                {
                    Ok(()) => {}
                    Err(e) if e.is_exists() => {}
                    Err(e) => return Err(e.into()),
                }
                if self.spec.ipv6 {
                    self.nl("node")
                        .add_address(hi, v6(plan::NETKIT_NODE).into(), 128)?;
                }
                self.nl("node").set_up(hi, true)?;
                self.route("node", Route::dev(addr.into(), 32, hi))?;
                let ci = self.container_eth0(&suffix, addr, 32, 128)?;
                self.route(&suffix, Route::dev(plan::NETKIT_NODE.into(), 32, ci))?;
                self.route(
                    &suffix,
                    Route::onlink(
                        Ipv4Addr::UNSPECIFIED.into(),
                        0,
                        plan::NETKIT_NODE.into(),
                        ci,
                    ),
                )?;
                if mode == Mode::NetkitBpf {
                    crate::bpf::netkit::attach(
                        &netns::path_of(&self.ns_name("node")),
                        crate::bpf::netkit::NetkitRedirect {
                            nic_ifindex: node_eth0,
                            primary_ifindex: hi,
                            ctr4: addr,
                            ctr6: self.spec.ipv6.then(|| v6(addr)),
                        },
                    )?;
                    self.step()?;
                }
            }
        }
        if matches!(mode, Mode::MacvlanVeth | Mode::IpvlanVeth) {
            self.side_veth(mode, &suffix, &fd)?;
        }
        Ok(ModeInfo {
            netns: netns::path_of(&self.ns_name(&suffix)),
            addr,
            addr6: (self.spec.ipv6 && !matches!(mode, Mode::IpvlanL3 | Mode::IpvlanL3s))
                .then(|| v6(addr)),
            ifname: "eth0".into(),
        })
    }

    /// The wire port of an ipvlan mode: veth `plan::ipvlan_port(mode)` from the node to the
    /// remote, up, the remote's address on the remote end. Returns (node index, remote index).
    fn ipvlan_port(&mut self, mode: Mode) -> Result<(u32, u32), LabError> {
        let name = plan::ipvlan_port(mode).expect("ipvlan mode");
        let remote_fd = self.ns_fd("remote")?;
        self.nl("node")
            .create_veth(&name, &name, Some(remote_fd.as_fd()))?;
        self.step()?;
        let pi = self.nl("node").link_index(&name)?;
        self.nl("node").set_up(pi, true)?;
        let ri = self.nl("remote").link_index(&name)?;
        self.addr("remote", ri, plan::REMOTE, 32, 128)?;
        self.nl("remote").set_up(ri, true)?;
        self.ipvlan_ports.push((mode, pi));
        Ok((pi, ri))
    }

    /// Renames the container's [`TMP_IFNAME`] to `eth0`.
    fn rename_tmp(&mut self, suffix: &str) -> Result<(), LabError> {
        let nl = self.nl(suffix);
        let i = nl.link_index(TMP_IFNAME)?;
        nl.rename(i, "eth0")?;
        Ok(())
    }

    /// The container's `eth0`: address and up. Returns its index.
    fn container_eth0(
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

    /// The hybrids' second veth (`veth0` in the container): carries the ClusterIP range and
    /// traffic to the node; the data path to the remote stays on macvlan/ipvlan. IPv4 only.
    fn side_veth(&mut self, mode: Mode, suffix: &str, fd: &File) -> Result<(), LabError> {
        let side = plan::side_addr(mode).expect("hybrid");
        let wire = plan::mode_addr(mode);
        let host = plan::node_veth(mode);
        self.nl("node")
            .create_veth(&host, "veth0", Some(fd.as_fd()))?;
        self.step()?;
        let node = self.nl("node");
        let hi = node.link_index(&host)?;
        // The node side reuses a /32 of the side subnet, like ptp.
        match node.add_address(hi, plan::SIDE_NODE.into(), 32) {
            Ok(()) => {}
            Err(e) if e.is_exists() => {}
            Err(e) => return Err(e.into()),
        }
        node.set_up(hi, true)?;
        node.add_route(&Route::dev(side.into(), 32, hi))?;
        node.add_route(&Route::dev(wire.into(), 32, hi))?;
        self.step()?;
        let c = self.nl(suffix);
        let ci = c.link_index("veth0")?;
        c.add_address(ci, side.into(), 32)?;
        c.set_up(ci, true)?;
        c.add_route(&Route::dev(plan::SIDE_NODE.into(), 32, ci))?;
        c.add_route(&Route::via(
            plan::CLUSTER_NET.into(),
            plan::CLUSTER_PREFIX,
            plan::SIDE_NODE.into(),
        ))?;
        c.add_route(&Route::via(plan::NODE.into(), 32, plan::SIDE_NODE.into()))?;
        self.step()
    }

    /// `--host-shim`: a macvlan (and, with ipvlan, an ipvlan) of the node's own on eth0, with
    /// host routes to the containers on the wire, so node <-> container works.
    fn host_shim(
        &mut self,
        node_eth0: u32,
        state: &LabState,
        ipvlan: bool,
    ) -> Result<(), LabError> {
        let on_wire = |kind: fn(Mode) -> bool| -> Vec<Ipv4Addr> {
            state
                .modes
                .iter()
                .filter(|(m, s)| {
                    s.is_ok() && kind(*m) && !matches!(m, Mode::MacvlanVeth | Mode::IpvlanVeth)
                })
                .map(|(m, _)| plan::mode_addr(*m))
                .collect()
        };
        let mac_addrs = on_wire(|m| matches!(m, Mode::Macvlan));
        if !mac_addrs.is_empty() {
            let nl = self.nl("node");
            nl.create_macvlan("shim-mv", node_eth0, None)?;
            let i = nl.link_index("shim-mv")?;
            nl.add_address(i, plan::SHIM.into(), 32)?;
            nl.set_up(i, true)?;
            for a in mac_addrs {
                nl.add_route(&Route::dev(a.into(), 32, i))?;
            }
            self.step()?;
        }
        // An ipvlan shim is an L2 child: only on the ipvlan-l2 port (an L2 child on an L3 port
        // would switch that port's mode).
        let l2_port = self
            .ipvlan_ports
            .iter()
            .find(|(m, _)| *m == Mode::IpvlanL2)
            .map(|(_, i)| *i);
        if let (true, Some(port)) = (ipvlan, l2_port) {
            let nl = self.nl("node");
            nl.create_ipvlan("shim-ipvl", port, IpvlanMode::L2, None)?;
            let i = nl.link_index("shim-ipvl")?;
            nl.add_address(i, Ipv4Addr::new(198, 18, 0, 253).into(), 32)?;
            nl.set_up(i, true)?;
            nl.add_route(&Route::dev(plan::mode_addr(Mode::IpvlanL2).into(), 32, i))?;
            self.step()?;
        }
        Ok(())
    }
}
