//! `v6home lab`: the lab network (being written).

/// Arguments of `v6home lab`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `v6home lab`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
