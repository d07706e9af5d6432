//! `nslat report merge`: many compare JSON files → one fleet report (node pair × path).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::fleet::{self, export, FileLabel, FleetError, FleetReport};

#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Merge compare JSON files (one per node pair and peer network) into one fleet report.
    Merge(MergeArgs),
}

#[derive(Debug, clap::Args)]
#[command(
    long_about = "Merge `nslat compare --json` reports into one fleet report: one row per node pair \
    and path (e.g. host→host, pod→host, pod→pod), each with its latency, its ratio to the baseline \
    (the node itself to the same peer network) with a 95% interval, and the p-value; the worst pairs \
    (largest ratio) first.\n\n\
    A file may hold several reports one after another (a Job's log). Each report names its pair \
    (compare --node/--peer/--peer-network, as the Job in deploy/kubernetes runs it), or --label \
    names it. All inputs must be the same test, sizes and CPU placement.\n\n\
    Examples:\n  \
    nslat report merge a-b.json a-c.json b-c.json\n  \
    nslat report merge lab.json --label lab.json=node-a->node-b --csv fleet.csv --html fleet/"
)]
pub struct MergeArgs {
    /// Compare JSON files.
    #[arg(value_name = "FILE.json", required = true)]
    files: Vec<PathBuf>,
    /// Names the node pair of a file: FILE=NODE->PEER (repeatable).
    #[arg(long = "label", value_name = "FILE=NODE->PEER")]
    labels: Vec<FileLabel>,
    /// Write the fleet report as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Write one CSV row per pair and path to PATH.
    #[arg(long, value_name = "PATH")]
    csv: Option<PathBuf>,
    /// Write a self-contained HTML page to DIR/index.html.
    #[arg(long, value_name = "DIR")]
    html: Option<PathBuf>,
}

pub fn run(cmd: ReportCommand) -> anyhow::Result<()> {
    match cmd {
        ReportCommand::Merge(args) => merge(args),
    }
}

type Writer = fn(&FleetReport, &mut dyn Write) -> Result<(), FleetError>;

fn write_to(path: &Path, write: Writer, fleet: &FleetReport) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("{}: cannot create it", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    write(fleet, &mut out)?;
    out.flush()
        .with_context(|| format!("{}: cannot write it", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn merge(args: MergeArgs) -> anyhow::Result<()> {
    let files = args
        .files
        .iter()
        .map(|p| fleet::read_file(p))
        .collect::<Result<Vec<_>, _>>()?;
    let fleet = fleet::merge(&files, &args.labels)?;
    // Outputs are written only after every input was read and merged: bad input writes nothing.
    if let Some(p) = &args.json {
        write_to(p, export::write_json, &fleet)?;
    }
    if let Some(p) = &args.csv {
        write_to(p, export::write_csv, &fleet)?;
    }
    if let Some(dir) = &args.html {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--html {}: cannot create the directory", dir.display()))?;
        write_to(&dir.join("index.html"), export::write_html, &fleet)?;
    }
    let mut stdout = std::io::stdout().lock();
    export::write_table(&fleet, &mut stdout)?;
    Ok(())
}
