//! `skein metrics`: one metric's points over a time range, or the list of metrics.

use super::{ApiArgs, client, finish, resolve_range};
use crate::cli;
use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct MetricsCmd {
    /// Metric name (a histogram by its base name).
    name: Option<String>,
    /// Label matcher: label=value, label!=value, label=~regex, label!~regex. Repeatable.
    #[arg(long = "match", short = 'm')]
    matchers: Vec<String>,
    /// From (15m, 2h, RFC 3339).
    #[arg(long, default_value = "1h")]
    since: String,
    /// Until (RFC 3339, relative, now).
    #[arg(long)]
    until: Option<String>,
    /// Width of each point (30s, 5m); default: the range over about 240 points.
    #[arg(long)]
    step: Option<String>,
    /// avg, min, max, sum, count, rate, increase, p50, p90, p95, p99.
    #[arg(long, default_value = "avg")]
    agg: String,
    /// Group by these labels (comma-separated).
    #[arg(long)]
    by: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

/// Runs `skein metrics`.
pub async fn run(cmd: MetricsCmd) -> ExitCode {
    let c = match client(&cmd.api) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (since, until) = match resolve_range(&cmd.since, cmd.until.as_deref()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut params: Vec<(&str, &str)> = vec![("start", &since), ("agg", &cmd.agg)];
    if let Some(u) = &until {
        params.push(("end", u));
    }
    if let Some(s) = &cmd.step {
        params.push(("step", s));
    }
    if let Some(b) = &cmd.by {
        params.push(("by", b));
    }
    for m in &cmd.matchers {
        params.push(("match", m));
    }
    let mut out = std::io::stdout().lock();
    finish(cli::monitor::metrics(&c, cmd.name.as_deref(), &params, cmd.api.json, &mut out).await)
}
