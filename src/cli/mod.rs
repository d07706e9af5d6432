//! The command line: one Args struct and `run()` per subcommand. Glue only; the work is in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod attach;
mod check;
mod compare;
mod deploy;
mod lab;
mod report;
mod run;
mod serve;
mod sweep;
mod terminal;
mod token;

pub(crate) use terminal::{terminal_width, wrap_for_stderr};

/// Exit status for every error: bad input, missing privileges, unreachable peers, failed runs.
pub const EXIT_ERROR: u8 = 2;

/// Exit status when part of the work failed and the rest finished (e.g. a `--target` container
/// that stopped during `compare`).
pub const EXIT_PARTIAL: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "nslat",
    version,
    about = "How much latency does a container's network setup add, why, and which setup removes it?",
    long_about = "How much latency does a container's network setup add, why, and which setup removes it?\n\n\
        nslat builds a one-machine lab out of network namespaces (a remote machine, a node, and one \
        container per network mode: bridge, ptp, macvlan, ipvlan), measures each mode against the \
        node itself with a netperf-class engine, explains the difference with kernel counters, and \
        checks which features (Services, node access, policy) each mode keeps.\n\n\
        Start with:  sudo nslat compare",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the measurement server (a netserver) that `nslat run` talks to.
    Serve(serve::ServeArgs),
    /// Run one test against an `nslat serve` (like netperf).
    Run(run::RunArgs),
    /// Build, inspect or remove a one-machine lab of network namespaces.
    #[command(subcommand)]
    Lab(lab::LabCommand),
    /// Attach a mode's interface to a running container's network namespace.
    Attach(attach::AttachArgs),
    /// Remove what `nslat attach` added to a container's network namespace.
    Detach(attach::DetachArgs),
    /// Measure every mode against the host, explain the gap, and report it (the main job).
    Compare(Box<compare::CompareArgs>),
    /// Check which features (Services, node access, policy) each mode keeps.
    Check(check::CheckArgs),
    /// Latency along an axis: Service count per kube-proxy style, or noisy neighbours.
    #[command(subcommand)]
    Sweep(sweep::SweepCommand),
    /// Work with saved reports: merge compare JSON files into one fleet report.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Render what measures a Kubernetes cluster: the token Secret, the Job for one node pair.
    #[command(subcommand)]
    Deploy(deploy::DeployCommand),
    /// One epoch of a compare's measurement (internal: `compare` starts it, a job on stdin).
    #[command(name = "epoch-child", hide = true)]
    EpochChild,
}

/// Parses the command line, runs the command, prints errors as one line, and maps them to an exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let args: Vec<String> = std::env::args().collect();
            eprintln!("Error: {}", missing_subcommand(&args));
            return ExitCode::from(EXIT_ERROR);
        }
        Err(e) => {
            eprintln!("Error: {}", one_line_usage_error(&e.render().to_string()));
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<compare::PartialSuccess>().is_some() => {
            eprintln!("Error: {e:#}");
            ExitCode::from(EXIT_PARTIAL)
        }
        Err(e) => {
            eprintln!("Error: {}", crate::error::error_chain(e.as_ref()));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// `nslat` or `nslat lab` without a subcommand: which command needs one, and the choices.
fn missing_subcommand(args: &[String]) -> String {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut path = vec!["nslat".to_string()];
    for a in args.iter().skip(1) {
        match cmd.find_subcommand(a).cloned() {
            Some(sub) => {
                path.push(a.clone());
                cmd = sub;
            }
            None => break,
        }
    }
    let names: Vec<&str> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name())
        .filter(|n| *n != "help")
        .collect();
    let path = path.join(" ");
    format!(
        "`{path}` needs a subcommand: one of {} (for more information, try '{path} --help')",
        names.join(", ")
    )
}

/// Folds clap's multi-line usage error into one line: the message up to the first blank line, and
/// the hint where help is (clap's own last line).
fn one_line_usage_error(rendered: &str) -> String {
    let mut paragraphs = rendered
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let message = paragraphs.next().unwrap_or("invalid command line");
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let message: Vec<&str> = message.lines().map(str::trim).collect();
    let hint = rendered
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("For more information, try "))
        .map(|h| format!(" (for more information, try {})", h.trim_end_matches('.')))
        .unwrap_or_default();
    format!("{}{hint}", message.join(" "))
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::run(args),
        Command::Run(args) => run::run(args),
        Command::Lab(cmd) => lab::run(cmd),
        Command::Attach(args) => attach::run_attach(args),
        Command::Detach(args) => attach::run_detach(args),
        Command::Compare(args) => compare::run(*args),
        Command::Sweep(cmd) => sweep::run(cmd),
        Command::Check(args) => check::run(args),
        Command::Report(cmd) => report::run(cmd),
        Command::Deploy(cmd) => deploy::run(cmd),
        Command::EpochChild => {
            std::process::exit(crate::measure::epochs::child_main());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage_error(args: &[&str]) -> String {
        let e = Cli::try_parse_from(args).unwrap_err();
        one_line_usage_error(&e.render().to_string())
    }

    #[test]
    fn usage_errors_fold_into_one_line() {
        let line = usage_error(&["nslat", "frobnicate"]);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("frobnicate"), "{line}");
        assert!(line.contains("--help"), "{line}");
    }

    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn a_missing_subcommand_names_the_choices() {
        let line = missing_subcommand(&["nslat".into(), "lab".into()]);
        assert!(line.contains("`nslat lab` needs a subcommand"), "{line}");
        assert!(line.contains("up, down, status"), "{line}");
        let line = missing_subcommand(&["nslat".into()]);
        assert!(line.contains("serve, run, lab"), "{line}");
    }

    #[test]
    fn help_is_not_an_error() {
        let e = Cli::try_parse_from(["nslat", "--help"]).unwrap_err();
        assert!(!e.use_stderr());
    }
}
