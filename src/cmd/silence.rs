//! `skein silence add|list|expire`: the silences of a collector's alerts.

use super::{ApiArgs, finish};
use crate::cli::alerts::silences_text;
use crate::cli::monitor::emit;
use crate::cli::{EXIT_FOUND, EXIT_NOT_FOUND};
use anyhow::Context;
use clap::Subcommand;
use skein_model::alert_api::{LabelMatcher, NewSilence, rfc3339_ms};
use std::io::Write;
use std::process::ExitCode;

/// `skein silence ...`.
#[derive(Subcommand)]
pub enum SilenceCmd {
    /// Silence alerts whose labels match every matcher
    /// (`skein silence add alertname=HighErrorRate service=payment --for 2h --comment "deploy"`).
    Add {
        /// Matchers: name=value, name!=value, name=~regex, name!~regex.
        #[arg(required = true)]
        matchers: Vec<String>,
        /// How long, from the start.
        #[arg(long = "for", default_value = "1h")]
        duration: String,
        /// Start (RFC 3339); default now.
        #[arg(long)]
        start: Option<String>,
        /// End (RFC 3339); instead of --for.
        #[arg(long)]
        end: Option<String>,
        /// Why.
        #[arg(long, default_value = "")]
        comment: String,
        /// Who; default $USER.
        #[arg(long)]
        author: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Silences: active and pending first, then expired.
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// End a silence now.
    Expire {
        /// The silence's ID.
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Runs `skein silence`.
pub async fn run(cmd: SilenceCmd) -> ExitCode {
    let mut out = std::io::stdout().lock();
    finish(silence(cmd, &mut out).await)
}

async fn silence(cmd: SilenceCmd, out: &mut dyn Write) -> anyhow::Result<u8> {
    match cmd {
        SilenceCmd::Add {
            matchers,
            duration,
            start,
            end,
            comment,
            author,
            api,
        } => {
            let client = api.client()?;
            let matchers = matchers
                .iter()
                .map(|m| LabelMatcher::parse(m).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let now = skein_model::time::now_unix_nano();
            let start = start
                .map(|s| {
                    skein_model::time::parse_time(&s, now)
                        .map(|ns| rfc3339_ms((ns / 1_000_000) as i64))
                        .map_err(|e| anyhow::anyhow!("--start: {e}"))
                })
                .transpose()?;
            let new = NewSilence {
                id: None,
                matchers,
                starts_at: start,
                duration: if end.is_some() { None } else { Some(duration) },
                ends_at: end,
                created_by: author
                    .or_else(|| std::env::var("USER").ok())
                    .unwrap_or_else(|| "skein".into()),
                comment,
            };
            let r = client.add_silence(&new).await.context("silence")?;
            if api.json {
                serde_json::to_writer_pretty(&mut *out, &r)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", r.silence_id)?;
            }
            Ok(EXIT_FOUND)
        }
        SilenceCmd::List { api } => {
            let client = api.client()?;
            let r = client.silences().await.context("silences")?;
            let code = if r.silences.is_empty() {
                EXIT_NOT_FOUND
            } else {
                EXIT_FOUND
            };
            emit(out, api.json, &r, silences_text)?;
            Ok(code)
        }
        SilenceCmd::Expire { id, api } => {
            let client = api.client()?;
            client.expire_silence(&id).await.context("silence")?;
            writeln!(out, "expired {id}")?;
            Ok(EXIT_FOUND)
        }
    }
}
