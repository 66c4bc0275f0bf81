//! `skein tail`: new log lines as they arrive, over the API's live tail. When the connection
//! drops it reconnects after the last line it printed, so nothing is skipped or repeated;
//! Ctrl-C ends it.

use std::io::Write;
use std::time::Duration;

use skein_client::{Client, ClientError};

use super::render;

/// Arguments of `skein tail`.
#[derive(Debug, Clone, Default)]
pub struct TailArgs {
    /// Full-text query; empty for every line.
    pub query: String,
    /// Only this service.
    pub service: Option<String>,
    /// This level and above.
    pub severity: Option<String>,
    /// Lines of history to start with (0 to 1,000).
    pub back: usize,
    /// Stop after this many lines (0: never).
    pub max_lines: usize,
    /// One JSON object a line: `{"seq":…,"record":{…}}`.
    pub json: bool,
    /// Color the output.
    pub color: bool,
}

/// Longest wait between reconnects.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Follows the tail until `max_lines` (if set); errors other than a dropped connection
/// (a bad query, a wrong token) end it.
pub async fn run(client: &Client, args: &TailArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let back = args.back.to_string();
    let mut params: Vec<(&str, &str)> = vec![("back", &back)];
    if !args.query.trim().is_empty() {
        params.push(("q", &args.query));
    }
    if let Some(s) = &args.service {
        params.push(("service", s));
    }
    if let Some(s) = &args.severity {
        params.push(("severity", s));
    }
    let mut cursor: Option<u64> = None;
    let mut printed = 0usize;
    let mut backoff = Duration::from_millis(250);
    let mut write_err: Option<std::io::Error> = None;
    loop {
        let res = client
            .tail(&params, cursor, |line| {
                cursor = Some(line.seq);
                let text = if args.json {
                    serde_json::json!({"seq": line.seq, "record": line.record}).to_string()
                } else {
                    render::log_line(&line.record, args.color)
                };
                if let Err(e) = writeln!(out, "{text}").and_then(|_| out.flush()) {
                    write_err = Some(e);
                    return false;
                }
                printed += 1;
                backoff = Duration::from_millis(250);
                args.max_lines == 0 || printed < args.max_lines
            })
            .await;
        if let Some(e) = write_err.take() {
            // A closed pipe (`skein tail | head`) ends the tail quietly.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(super::EXIT_FOUND);
            }
            return Err(e.into());
        }
        match res {
            Ok(()) => return Ok(super::EXIT_FOUND),
            Err(e @ (ClientError::Transport(_) | ClientError::Decode(_))) => {
                eprintln!(
                    "skein tail: {e}; reconnecting in {}s",
                    backoff.as_secs_f32()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                // Reconnects never ask for history again.
                if let Some(p) = params.iter_mut().find(|(k, _)| *k == "back") {
                    p.1 = "0";
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}
