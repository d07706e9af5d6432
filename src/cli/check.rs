//! `nslat check` (to be written).

#[derive(Debug, clap::Args)]
pub struct CheckArgs {}

pub fn run(_args: CheckArgs) -> anyhow::Result<()> {
    anyhow::bail!("nslat check is not implemented yet")
}
