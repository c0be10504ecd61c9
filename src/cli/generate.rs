//! `hotspot gen`: writes generated traffic and its ground truth (see
//! [`crate::generator`]).

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("gen is being written")
}
