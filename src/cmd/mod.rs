//! The `skein` commands: one module per command, each with its clap arguments and its `run`.
//!
//! A query command's `run` makes a query API client, calls its part of [`crate::cli`] with
//! stdout and turns the result into an exit code. The helpers they share live here.

pub mod agent;
pub mod alerts;
pub mod collector;
pub mod deps;
pub mod hosts;
pub mod metrics;
pub mod rules;
pub mod search;
pub mod services;
pub mod silence;
pub mod tail;
pub mod trace;
pub mod tui;

use crate::cli::EXIT_ERROR;
use clap::Args;
use std::io::IsTerminal;
use std::process::ExitCode;

/// Flags of every command that talks to a collector's query API.
#[derive(Args)]
pub(crate) struct ApiArgs {
    /// Query API address.
    #[arg(long, env = "SKEIN_API", default_value = "http://127.0.0.1:7700")]
    pub(crate) api: String,
    /// Bearer token for the query API.
    #[arg(long, env = "SKEIN_QUERY_TOKEN")]
    pub(crate) token: Option<String>,
    /// PEM file of CA certificates trusted for an https:// API, besides the system's roots.
    #[arg(long, env = "SKEIN_CA_FILE")]
    pub(crate) ca_file: Option<std::path::PathBuf>,
    /// Print the API's JSON answer.
    #[arg(long)]
    pub(crate) json: bool,
    /// Colors: auto (when stdout is a terminal), always, never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    color: String,
}

impl ApiArgs {
    /// Whether to print colors: `auto` colors only a terminal, and never when `NO_COLOR` is set.
    pub(crate) fn color(&self) -> bool {
        match self.color.as_str() {
            "always" => true,
            "never" => false,
            _ => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

/// A query API client, or the exit code after saying why there is none.
pub(crate) fn client(api: &ApiArgs) -> Result<skein_client::Client, ExitCode> {
    skein_client::Client::with_ca(&api.api, api.token.clone(), api.ca_file.as_deref()).map_err(
        |e| {
            eprintln!("skein: {e}");
            ExitCode::from(EXIT_ERROR)
        },
    )
}

/// A command's result as the process's exit code; an error is printed with its causes.
pub(crate) fn finish(result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("skein: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// A `--since`/`--until` value resolved against this machine's clock, as Unix nanoseconds.
fn resolve_time(flag: &str, value: &str) -> Result<String, ExitCode> {
    skein_model::time::parse_time(value, skein_model::time::now_unix_nano())
        .map(|n| n.to_string())
        .map_err(|e| {
            eprintln!("skein: --{flag}: {e}");
            ExitCode::from(EXIT_ERROR)
        })
}

/// `--since` and `--until` resolved (see [`resolve_time`]).
pub(crate) fn resolve_range(
    since: &str,
    until: Option<&str>,
) -> Result<(String, Option<String>), ExitCode> {
    let since = resolve_time("since", since)?;
    let until = until.map(|u| resolve_time("until", u)).transpose()?;
    Ok((since, until))
}
