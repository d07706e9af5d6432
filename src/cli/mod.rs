//! The command line: one Args struct and `run()` per subcommand. Glue only; the work is in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod attach;
mod check;
mod compare;
mod lab;
mod run;
mod serve;

/// Exit status for every error: bad input, missing privileges, unreachable peers, failed runs.
pub const EXIT_ERROR: u8 = 2;

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
    Compare(compare::CompareArgs),
    /// Check which features (Services, node access, policy) each mode keeps.
    Check(check::CheckArgs),
}

/// Parses the command line, runs the command, prints errors as one line, and maps them to an exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::run(args),
        Command::Run(args) => run::run(args),
        Command::Lab(cmd) => lab::run(cmd),
        Command::Attach(args) => attach::run_attach(args),
        Command::Detach(args) => attach::run_detach(args),
        Command::Compare(args) => compare::run(args),
        Command::Check(args) => check::run(args),
    }
}
