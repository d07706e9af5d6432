//! `nslat lab up|down|status` (to be written).

#[derive(Debug, clap::Subcommand)]
pub enum LabCommand {
    /// Build a lab.
    Up,
    /// Remove a lab.
    Down,
    /// Show a lab.
    Status,
}

pub fn run(_cmd: LabCommand) -> anyhow::Result<()> {
    anyhow::bail!("nslat lab is not implemented yet")
}
