//! The `skein` commands: one module per command, each with its clap arguments and its `run`.
//!
//! A query command's `run` makes a query API client, calls its part of [`crate::cli`] with
//! stdout and turns the result into an exit code. The helpers they share live here.

pub mod agent;
pub mod alerts;
pub mod cluster;
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
use skein_client::{Client, ClientTls};
use std::io::IsTerminal;
use std::path::PathBuf;
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
    /// TLS to an https:// API.
    #[command(flatten)]
    pub(crate) tls: TlsArgs,
    /// Print the API's JSON answer.
    #[arg(long)]
    pub(crate) json: bool,
    /// Colors: auto (when stdout is a terminal), always, never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    color: String,
}

/// TLS flags of every command that talks to an `https://` query API (the CLI and the TUI).
#[derive(Args)]
pub(crate) struct TlsArgs {
    /// PEM file of CA certificates trusted for an https:// API, besides the system's roots.
    #[arg(long, env = "SKEIN_CA_FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) to present to an API that asks for one (mTLS); needs
    /// --client-key.
    #[arg(long, env = "SKEIN_CLIENT_CERT", requires = "client_key")]
    pub(crate) client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, env = "SKEIN_CLIENT_KEY", requires = "client_cert")]
    pub(crate) client_key: Option<PathBuf>,
    /// Do not check the API's certificate. Anyone on the network path can then read and change
    /// the traffic, the token included: for tests only.
    #[arg(long)]
    pub(crate) insecure_skip_verify: bool,
}

impl TlsArgs {
    /// The client's TLS set-up. Warns on stderr when the server's certificate will not be
    /// checked.
    pub(crate) fn client_tls(&self) -> ClientTls {
        if self.insecure_skip_verify {
            eprintln!(
                "skein: WARNING: --insecure-skip-verify: the API's certificate is NOT checked; \
                 anyone on the network path can read and change this traffic, the token \
                 included. Use it for tests only."
            );
        }
        ClientTls {
            ca_file: self.ca_file.clone(),
            client_cert_file: self.client_cert.clone(),
            client_key_file: self.client_key.clone(),
            insecure_skip_verify: self.insecure_skip_verify,
        }
    }
}

impl ApiArgs {
    /// A query API client from these flags.
    pub(crate) fn client(&self) -> Result<Client, skein_client::ClientError> {
        Client::with_tls(&self.api, self.token.clone(), &self.tls.client_tls())
    }

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
pub(crate) fn client(api: &ApiArgs) -> Result<Client, ExitCode> {
    api.client().map_err(|e| {
        eprintln!("skein: {e}");
        ExitCode::from(EXIT_ERROR)
    })
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
