//! `skein services`: services with their rate, error rate and latency; with a name, its
//! operations.

use super::{ApiArgs, client, finish};
use crate::cli;
use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct ServicesCmd {
    /// Show this service's operations.
    service: Option<String>,
    /// Window the figures cover, ending now (30s, 1m, 5m).
    #[arg(long, default_value = "1m")]
    window: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// Runs `skein services`.
pub async fn run(cmd: ServicesCmd) -> ExitCode {
    let c = match client(&cmd.api) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut out = std::io::stdout().lock();
    finish(
        cli::monitor::services(
            &c,
            cmd.service.as_deref(),
            &cmd.window,
            cmd.api.json,
            &mut out,
        )
        .await,
    )
}
