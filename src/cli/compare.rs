//! `nslat compare` (to be written).

#[derive(Debug, clap::Args)]
pub struct CompareArgs {}

pub fn run(_args: CompareArgs) -> anyhow::Result<()> {
    anyhow::bail!("nslat compare is not implemented yet")
}
