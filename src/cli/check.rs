//! `nslat check`: which features each mode keeps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

use crate::check;
use crate::lab::{self, mode, Lab, LabSpec, Mode};
use crate::report;

#[derive(Debug, clap::Args)]
#[command(
    long_about = "Check which features each container network mode keeps.\n\n\
    Per mode, by real TCP connections between the lab's namespaces (short timeouts): a \
    kube-proxy-like Service (DNAT of a ClusterIP in 198.19.0.0/16 in the node), node → container, \
    container → node, container → remote, remote → container, whether a drop rule in the node's \
    forward/input hooks (a host-enforced NetworkPolicy) blocks the container, and how many MAC \
    addresses the mode puts on the wire.\n\n\
    Builds a temporary lab (or uses --lab NAME if it exists) and removes it afterwards.\n\n\
    Examples:\n  \
    nslat check\n  \
    nslat check --modes host,bridge,macvlan,macvlan+veth --host-shim\n  \
    nslat check --lab default --json"
)]
pub struct CheckArgs {
    /// Modes to check, comma-separated.
    #[arg(long, value_name = "LIST", default_value = "host,bridge,ptp,macvlan,ipvlan-l2,ipvlan-l3,ipvlan-l3s", value_parser = parse_modes)]
    modes: ModeList,
    /// Give the node a macvlan/ipvlan interface of its own (the fix for node ↔ container).
    #[arg(long)]
    host_shim: bool,
    /// Use this lab if it exists (and leave it as it is); otherwise build it under this name.
    #[arg(long, value_name = "NAME")]
    lab: Option<String>,
    /// Keep a lab this command built (remove it with `nslat lab down --name NAME`).
    #[arg(long)]
    keep_lab: bool,
    /// Print the matrix as JSON.
    #[arg(long)]
    json: bool,
}

/// A comma-separated mode list as one clap value.
#[derive(Debug, Clone)]
struct ModeList(Vec<Mode>);

fn parse_modes(s: &str) -> Result<ModeList, String> {
    mode::parse_list(s).map(ModeList).map_err(|e| e.to_string())
}

/// Removes a lab this command built, on every exit path.
struct Teardown(Option<String>);

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Some(name) = self.0.take() {
            let _ = lab::down(&name);
        }
    }
}

/// What happens to the lab after an interruption.
fn interrupted_note(teardown: &Teardown) -> &'static str {
    if teardown.0.is_some() {
        "; the lab was removed"
    } else {
        "; the lab was left as it was"
    }
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    if !crate::netns::is_root() {
        return Err(check::CheckError::NotRoot.into());
    }
    // SIGINT/SIGTERM only raise a flag: the checks (bounded by short timeouts) finish, then the
    // lab this command built is removed on the way out instead of being left behind.
    let stop = Arc::new(AtomicBool::new(false));
    lab::set_default_signal_action_outside_up(false);
    for sig in crate::lab::STOP_SIGNALS {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    let modes = args.modes.0;
    let existing = match &args.lab {
        Some(name) => {
            lab::validate_name(name)?;
            Lab::open(name).ok()
        }
        None => None,
    };
    let (the_lab, _teardown) = match existing {
        Some(l) => (l, Teardown(None)),
        None => {
            let name = args
                .lab
                .clone()
                .unwrap_or_else(|| format!("chk{}", std::process::id()));
            let mut spec = LabSpec::new(&name);
            spec.modes = modes.clone();
            spec.host_shim = args.host_shim;
            let built = Lab::up(&spec).context("building the lab")?;
            let teardown = Teardown((!args.keep_lab).then_some(name));
            (built, teardown)
        }
    };
    if stop.load(Ordering::SeqCst) {
        anyhow::bail!("interrupted by a signal{}", interrupted_note(&_teardown));
    }
    let matrix = check::run(&the_lab, &modes);
    if stop.load(Ordering::SeqCst) {
        anyhow::bail!("interrupted by a signal{}", interrupted_note(&_teardown));
    }
    let matrix = matrix?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&matrix)?);
    } else {
        print!("{}", report::checks::render(&matrix));
    }
    Ok(())
}
