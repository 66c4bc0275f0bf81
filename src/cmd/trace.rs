//! `skein trace`: one request's whole story, every span and log for a key.

use super::{ApiArgs, client, finish};
use crate::cli;
use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct TraceCmd {
    /// A trace ID, request ID or other correlation key.
    key: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// Runs `skein trace`.
pub async fn run(cmd: TraceCmd) -> ExitCode {
    let c = match client(&cmd.api) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut out = std::io::stdout().lock();
    finish(cli::trace::run(&c, &cmd.key, cmd.api.json, cmd.api.color(), &mut out).await)
}
