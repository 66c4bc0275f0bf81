//! `skein search`: log lines matching a query, newest first.

use super::{ApiArgs, client, finish};
use crate::cli;
use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct SearchCmd {
    /// Words and field:value terms, e.g. 'timeout service:payment'.
    #[arg(default_value = "")]
    query: String,
    /// Only this service.
    #[arg(long)]
    service: Option<String>,
    /// This level and above: trace, debug, info, warn, error, fatal.
    #[arg(long)]
    severity: Option<String>,
    /// From (15m, 2h, RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Until (RFC 3339, relative, now).
    #[arg(long)]
    until: Option<String>,
    /// Most lines.
    #[arg(long, short = 'n', default_value_t = 100)]
    limit: usize,
    #[command(flatten)]
    api: ApiArgs,
}

/// Runs `skein search`.
pub async fn run(cmd: SearchCmd) -> ExitCode {
    let c = match client(&cmd.api) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let args = cli::search::SearchArgs {
        query: cmd.query,
        service: cmd.service,
        severity: cmd.severity,
        since: cmd.since,
        until: cmd.until,
        limit: cmd.limit,
        json: cmd.api.json,
        color: cmd.api.color(),
    };
    let mut out = std::io::stdout().lock();
    finish(cli::search::run(&c, &args, &mut out).await)
}
