//! `skein tail`: new log lines as they arrive.

use super::{ApiArgs, client, finish};
use crate::cli;
use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct TailCmd {
    /// Words and field:value terms, e.g. 'timeout service:payment'.
    #[arg(default_value = "")]
    query: String,
    /// Only this service.
    #[arg(long)]
    service: Option<String>,
    /// This level and above: trace, debug, info, warn, error, fatal.
    #[arg(long)]
    severity: Option<String>,
    /// Lines of history to start with (0 to 1000).
    #[arg(long, default_value_t = 10)]
    back: usize,
    /// Stop after this many lines (0: follow until Ctrl-C).
    #[arg(long, short = 'n', default_value_t = 0)]
    lines: usize,
    #[command(flatten)]
    api: ApiArgs,
}

/// Runs `skein tail`.
pub async fn run(cmd: TailCmd) -> ExitCode {
    let c = match client(&cmd.api) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let args = cli::tail::TailArgs {
        query: cmd.query,
        service: cmd.service,
        severity: cmd.severity,
        back: cmd.back,
        max_lines: cmd.lines,
        json: cmd.api.json,
        color: cmd.api.color(),
    };
    let mut out = std::io::stdout().lock();
    finish(cli::tail::run(&c, &args, &mut out).await)
}
