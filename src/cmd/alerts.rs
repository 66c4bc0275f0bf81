//! `skein alerts`: pending and firing alerts, their state changes or the receivers'
//! delivery state.

use super::{ApiArgs, client, finish};
use crate::cli;
use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct AlertsCmd {
    /// Only pending or firing.
    #[arg(long, value_parser = ["pending", "firing"])]
    state: Option<String>,
    /// Show state changes instead, newest first.
    #[arg(long)]
    history: bool,
    /// With --history: only this rule.
    #[arg(long)]
    rule: Option<String>,
    /// With --history: most changes.
    #[arg(long, short = 'n', default_value_t = 50)]
    limit: usize,
    /// Show the receivers' delivery state instead.
    #[arg(long)]
    notifications: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Runs `skein alerts`.
pub async fn run(cmd: AlertsCmd) -> ExitCode {
    let c = match client(&cmd.api) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let args = cli::alerts::AlertsArgs {
        state: cmd.state,
        history: cmd.history,
        rule: cmd.rule,
        limit: cmd.limit,
        notifications: cmd.notifications,
    };
    let mut out = std::io::stdout().lock();
    finish(cli::alerts::alerts(&c, &args, cmd.api.json, &mut out).await)
}
