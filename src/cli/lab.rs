//! `nslat lab up|down|status|list`.

use std::io::Write;
use std::time::Instant;

use anyhow::Context;

use crate::lab::{self, inventory, mode, Lab, LabSpec, Mode};

#[derive(Debug, clap::Subcommand)]
pub enum LabCommand {
    /// Build a lab: remote, node, wire and one namespace per mode.
    Up(UpArgs),
    /// Remove a lab (idempotent; also cleans up after a crashed `up`).
    Down(NameArg),
    /// Show a lab's modes, namespaces, addresses and availability.
    Status(StatusArgs),
    /// List the labs on this machine: name, owner process, alive/stale/kept, age.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct NameArg {
    /// The lab's name (namespaces are nslat-NAME-*).
    #[arg(long, default_value = lab::DEFAULT_NAME)]
    name: String,
}

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    name: NameArg,
    /// Comma-separated modes (e.g. host,bridge,ptp,macvlan,veth-bpf,vxlan), or all; an unknown
    /// name lists every mode. Default: every plain mode.
    #[arg(long)]
    modes: Option<String>,
    /// Also give every interface a 2001:2::/48 address.
    #[arg(long)]
    ipv6: bool,
    /// Give the node a macvlan/ipvlan of its own on eth0 so node <-> container works.
    #[arg(long)]
    host_shim: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    name: NameArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: LabCommand) -> anyhow::Result<()> {
    match cmd {
        LabCommand::Up(a) => up(a),
        LabCommand::Down(a) => down(a),
        LabCommand::Status(a) => status(a),
        LabCommand::List(a) => list(a),
    }
}

fn list(a: ListArgs) -> anyhow::Result<()> {
    let entries = inventory::list();
    if a.json {
        let labs: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| match e {
                Ok(e) => serde_json::json!({
                    "name": e.name, "owner_pid": e.owner, "status": e.liveness.name(),
                    "age_s": e.age.map(|a| a.as_secs()), "complete": e.complete, "modes": e.modes,
                }),
                Err((name, err)) => serde_json::json!({
                    "name": name, "status": "unreadable", "error": crate::error::error_chain(err),
                }),
            })
            .collect();
        let j = serde_json::to_string_pretty(&labs).context("encoding the list")?;
        let _ = writeln!(std::io::stdout().lock(), "{j}");
        return Ok(());
    }
    if entries.is_empty() {
        println!("no labs (build one with `nslat lab up`)");
        return Ok(());
    }
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(["lab", "owner", "status", "age", "modes"]);
    let mut stale = Vec::new();
    for e in &entries {
        match e {
            Ok(e) => {
                let owner = match e.owner {
                    Some(pid) => format!("pid {pid}"),
                    None => "—".into(),
                };
                let status = match (e.liveness, e.complete) {
                    (l, false) => format!("{l}, unfinished"),
                    (l, true) => l.to_string(),
                };
                if e.liveness == inventory::Liveness::Stale {
                    stale.push(e.name.clone());
                }
                t.add_row([
                    e.name.clone(),
                    owner,
                    status,
                    e.age
                        .map(inventory::human_age)
                        .unwrap_or_else(|| "—".into()),
                    e.modes.join(","),
                ]);
            }
            Err((name, err)) => {
                t.add_row([
                    name.clone(),
                    "—".into(),
                    format!("unreadable: {}", crate::error::error_chain(err)),
                    "—".into(),
                    String::new(),
                ]);
            }
        }
    }
    println!("{t}");
    for name in stale {
        println!("stale: its owner is gone; remove it with `nslat lab down --name {name}`");
    }
    Ok(())
}

fn up(a: UpArgs) -> anyhow::Result<()> {
    let modes = match &a.modes {
        Some(list) => mode::parse_list(list)?,
        None => Mode::defaults(),
    };
    let spec = LabSpec {
        name: a.name.name.clone(),
        modes,
        ipv6: a.ipv6,
        host_shim: a.host_shim,
    };
    let t = Instant::now();
    let lab = Lab::up(&spec)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    for (m, s) in lab.modes() {
        match s {
            Ok(info) => println!("{m:<13} {:<16} {}", info.addr, info.netns.display()),
            Err(reason) => println!("{m:<13} unavailable: {reason}"),
        }
    }
    println!(
        "lab '{}' up in {ms:.1} ms (remote {} in {})",
        lab.name(),
        lab.remote_addr(),
        lab.remote_netns().display()
    );
    Ok(())
}

fn down(a: NameArg) -> anyhow::Result<()> {
    let t = Instant::now();
    let report = lab::down(&a.name)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    for e in &report.errors {
        eprintln!("warning: {e}");
    }
    println!(
        "lab '{}' down in {ms:.1} ms ({} namespaces removed)",
        a.name,
        report.removed.len()
    );
    if !report.errors.is_empty() {
        anyhow::bail!(
            "{} errors while removing lab '{}'",
            report.errors.len(),
            a.name
        );
    }
    Ok(())
}

fn status(a: StatusArgs) -> anyhow::Result<()> {
    let lab = Lab::open(&a.name.name)?;
    // Only what exists: a mode that could not be built has a recorded name and no namespace.
    let existing: Vec<&String> = lab
        .state()
        .namespaces
        .iter()
        .filter(|n| crate::netns::path_of(n).exists())
        .collect();
    if a.json {
        let modes: Vec<serde_json::Value> = lab
            .modes()
            .map(|(m, s)| match s {
                Ok(i) => serde_json::json!({
                    "mode": m, "available": true, "netns": i.netns, "addr": i.addr,
                    "addr6": i.addr6, "ifname": i.ifname,
                }),
                Err(reason) => serde_json::json!({"mode": m, "available": false, "reason": reason}),
            })
            .collect();
        let doc = serde_json::json!({
            "name": lab.name(),
            "remote": {"netns": lab.remote_netns(), "addr": lab.remote_addr(), "addr6": lab.remote_addr6()},
            "node": {"netns": lab.node_netns(), "addr": lab.node_addr()},
            "ipv6": lab.ipv6(),
            "host_shim": lab.state().host_shim,
            "nat": lab.nat(),
            "namespaces": existing,
            "modes": modes,
        });
        let j = serde_json::to_string_pretty(&doc).context("encoding the status")?;
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = writeln!(std::io::stdout().lock(), "{j}");
        return Ok(());
    }
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(["mode", "status", "address", "namespace", "interface"]);
    for (m, s) in lab.modes() {
        match s {
            Ok(i) => {
                let addr = match i.addr6 {
                    Some(v6) => format!("{} {v6}", i.addr),
                    None => i.addr.to_string(),
                };
                t.add_row([
                    m.name().to_string(),
                    "ok".into(),
                    addr,
                    i.netns.display().to_string(),
                    i.ifname.clone(),
                ]);
            }
            Err(r) => {
                t.add_row([
                    m.name().to_string(),
                    format!("unavailable: {r}"),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
        }
    }
    println!(
        "lab '{}': remote {} ({}), node {} ({}), NAT {}",
        lab.name(),
        lab.remote_addr(),
        lab.remote_netns().display(),
        lab.node_addr(),
        lab.node_netns().display(),
        lab.nat()
    );
    println!("{t}");
    Ok(())
}
