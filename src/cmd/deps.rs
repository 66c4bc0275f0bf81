//! `skein deps`: the service dependency graph over a time range.

use super::{ApiArgs, client, finish, resolve_range};
use crate::cli;
use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct DepsCmd {
    /// From (15m, 2h, RFC 3339).
    #[arg(long, default_value = "15m")]
    since: String,
    /// Until (RFC 3339, relative, now).
    #[arg(long)]
    until: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

/// Runs `skein deps`.
pub async fn run(cmd: DepsCmd) -> ExitCode {
    let c = match client(&cmd.api) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (since, until) = match resolve_range(&cmd.since, cmd.until.as_deref()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut out = std::io::stdout().lock();
    finish(cli::monitor::deps(&c, Some(&since), until.as_deref(), cmd.api.json, &mut out).await)
}
