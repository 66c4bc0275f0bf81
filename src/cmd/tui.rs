//! `skein tui`: the live terminal dashboard.

use crate::cli::EXIT_ERROR;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub struct TuiCmd {
    /// Query API address.
    #[arg(long, env = "SKEIN_API", default_value = "http://127.0.0.1:7700")]
    api: String,
    /// Bearer token for the query API.
    #[arg(long, env = "SKEIN_QUERY_TOKEN")]
    token: Option<String>,
    /// TLS to an https:// API.
    #[command(flatten)]
    tls: super::TlsArgs,
    /// Time between refreshes (1s to 1m).
    #[arg(long, default_value = "1500ms")]
    refresh: String,
    /// Dashboard file for the metrics view (see dashboards/default.toml, the built-in one).
    #[arg(long)]
    dashboard: Option<PathBuf>,
}

/// Runs `skein tui`. The dashboard runs its own runtime, so this is not async.
pub fn run(cmd: TuiCmd) -> ExitCode {
    let refresh = match skein_model::time::parse_duration(&cmd.refresh) {
        Ok(d) if d >= Duration::from_secs(1) && d <= Duration::from_secs(60) => d,
        Ok(_) => {
            eprintln!("skein tui: --refresh {}: use 1s to 1m", cmd.refresh);
            return ExitCode::from(EXIT_ERROR);
        }
        Err(e) => {
            eprintln!("skein tui: --refresh: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let opts = skein_tui::Options {
        api: cmd.api,
        token: cmd.token,
        tls: cmd.tls.client_tls(),
        refresh,
        dashboard: cmd.dashboard,
    };
    match skein_tui::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skein tui: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
