//! `nslat serve` (to be written).

#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

pub fn run(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("nslat serve is not implemented yet")
}
