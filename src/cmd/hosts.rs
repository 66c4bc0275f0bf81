//! `skein hosts`: hosts with their agents' state and latest resource figures.

use super::{ApiArgs, client, finish};
use crate::cli;
use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct HostsCmd {
    #[command(flatten)]
    api: ApiArgs,
}

/// Runs `skein hosts`.
pub async fn run(cmd: HostsCmd) -> ExitCode {
    let c = match client(&cmd.api) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut out = std::io::stdout().lock();
    finish(cli::monitor::hosts(&c, cmd.api.json, &mut out).await)
}
