//! `skein rules check|list`: check rule files on this machine, as the collector would (TOML
//! and Prometheus rule files, `promtool check rules`'s exit codes), or list the rules a
//! collector runs.

use super::{ApiArgs, finish};
use crate::cli::alerts::rules_text;
use crate::cli::monitor::emit;
use crate::cli::rulecheck::{CHECK_FAILED, check, configured, files_of};
use crate::cli::{EXIT_ERROR, EXIT_FOUND};
use anyhow::Context;
use clap::Subcommand;
use skein_alert::rules::offline_known;
use skein_client::Client;
use skein_model::time::now_ms;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// `skein rules ...`.
#[derive(Subcommand)]
pub enum RulesCmd {
    /// Check rule files: Skein's TOML rules (*.toml) and Prometheus rule files (any other
    /// file; a directory gives its *.toml, *.yml and *.yaml). Prints `<file>: N rules found`
    /// per good file and each error with its file and line; exit 0 when all are good, 1
    /// otherwise (as `promtool check rules`), 2 when the configuration cannot be read.
    Check {
        /// Files or directories; none: the files the configuration's [alerts] section names
        /// (`rules` and `rule_files`).
        files: Vec<PathBuf>,
        /// The collector's TOML configuration, read when no file is given.
        #[arg(long, short = 'c', env = "SKEIN_CONFIG")]
        config: Option<PathBuf>,
        /// Also check metric names against this collector's query API.
        #[arg(long)]
        api: Option<String>,
        /// Bearer token for the query API.
        #[arg(long, env = "SKEIN_QUERY_TOKEN")]
        token: Option<String>,
    },
    /// The rules a collector runs, with their health and last evaluation.
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Runs `skein rules`.
pub async fn run(cmd: RulesCmd) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    finish(rules(cmd, &mut out, &mut err).await)
}

async fn rules(cmd: RulesCmd, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    match cmd {
        RulesCmd::List { api } => {
            let client = api.client()?;
            let r = client.rules().await.context("rules")?;
            let now = now_ms();
            emit(out, api.json, &r, |r| rules_text(r, now))?;
            Ok(if r.errors.is_empty() {
                EXIT_FOUND
            } else {
                EXIT_ERROR
            })
        }
        RulesCmd::Check {
            files,
            config,
            api,
            token,
        } => {
            let files = if !files.is_empty() {
                match files_of(&files) {
                    Ok(f) => f,
                    Err(e) => {
                        writeln!(err, "{e}")?;
                        return Ok(CHECK_FAILED);
                    }
                }
            } else {
                let Some(config) = config else {
                    anyhow::bail!(
                        "rules check: give rule files, or --config (SKEIN_CONFIG) to check the files the collector's configuration names"
                    );
                };
                let (files, problems) = configured(&config).map_err(anyhow::Error::msg)?;
                for p in &problems {
                    writeln!(err, "{p}")?;
                }
                if !problems.is_empty() {
                    return Ok(CHECK_FAILED);
                }
                files
            };
            let names: Option<Vec<String>> = match api {
                Some(a) => {
                    let client = Client::new(&a, token)?;
                    let r = client.metric_names().await.context("metric names")?;
                    Some(r.metrics.into_iter().map(|m| m.name).collect())
                }
                None => None,
            };
            let known = |name: &str| {
                let derived = ["skein.span.", "skein.edge.", "skein.agent."]
                    .iter()
                    .any(|p| name.starts_with(p));
                match &names {
                    _ if derived => offline_known(name),
                    None => offline_known(name),
                    Some(list) => list.iter().any(|n| {
                        n == name
                            || ["_bucket", "_sum", "_count"]
                                .iter()
                                .any(|s| name.strip_suffix(s) == Some(n.as_str()))
                    }),
                }
            };
            Ok(check(&files, &known, out, err)?)
        }
    }
}
