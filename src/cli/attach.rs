//! `nslat attach` and `nslat detach` (to be written).

#[derive(Debug, clap::Args)]
pub struct AttachArgs {}

#[derive(Debug, clap::Args)]
pub struct DetachArgs {}

pub fn run_attach(_args: AttachArgs) -> anyhow::Result<()> {
    anyhow::bail!("nslat attach is not implemented yet")
}

pub fn run_detach(_args: DetachArgs) -> anyhow::Result<()> {
    anyhow::bail!("nslat detach is not implemented yet")
}
