//! `skein search`: log search, newest first.

use std::io::Write;

use anyhow::{Context, anyhow, bail};
use skein_client::{Client, LogsQuery};
use skein_model::time::{now_unix_nano, parse_time};

use super::render;
use super::{EXIT_FOUND, EXIT_NOT_FOUND};

/// Arguments of `skein search`.
#[derive(Debug, Clone, Default)]
pub struct SearchArgs {
    /// Full-text query on log bodies; empty for every log in the range.
    pub query: String,
    /// Only this service.
    pub service: Option<String>,
    /// Minimum severity, for example `warn`.
    pub severity: Option<String>,
    /// Start of the range: RFC 3339, relative (`15m` ago), `now` or Unix nanoseconds.
    pub since: Option<String>,
    /// End of the range, same forms.
    pub until: Option<String>,
    /// Most logs to show; 0 leaves the choice to the server.
    pub limit: usize,
    /// Print the API's answer as pretty JSON.
    pub json: bool,
    /// Color the output (ANSI).
    pub color: bool,
}

/// Runs the search and writes one line per log (or the JSON answer). Returns [`EXIT_FOUND`]
/// when some log matched, [`EXIT_NOT_FOUND`] when none did; bad arguments, API and transport
/// failures are errors.
pub async fn run(client: &Client, args: &SearchArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let q = build_query(args, now_unix_nano())?;
    let resp = client.logs(&q).await.context("searching logs")?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &resp)?;
        writeln!(out)?;
    } else {
        for rec in &resp.logs {
            writeln!(out, "{}", render::log_line(rec, args.color))?;
        }
    }
    out.flush()?;
    Ok(if resp.logs.is_empty() {
        EXIT_NOT_FOUND
    } else {
        EXIT_FOUND
    })
}

/// The API query for `args`. Times are resolved here, against this machine's clock, and sent
/// as Unix nanoseconds: `--since 15m` then means what the user sees on their clock, and a
/// typo fails before any request.
fn build_query(args: &SearchArgs, now: u64) -> anyhow::Result<LogsQuery> {
    let time = |flag: &str, value: &Option<String>| -> anyhow::Result<Option<u64>> {
        value
            .as_deref()
            .filter(|v| !v.trim().is_empty())
            .map(|v| parse_time(v, now).map_err(|e| anyhow!("--{flag}: {e}")))
            .transpose()
    };
    let start = time("since", &args.since)?;
    let end = time("until", &args.until)?;
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        bail!("--since is after --until: the time range is empty");
    }
    let non_empty = |v: &Option<String>| v.as_ref().filter(|s| !s.trim().is_empty()).cloned();
    Ok(LogsQuery {
        q: Some(args.query.clone()).filter(|q| !q.trim().is_empty()),
        service: non_empty(&args.service),
        severity: non_empty(&args.severity),
        start: start.map(|n| n.to_string()),
        end: end.map(|n| n.to_string()),
        limit: Some(args.limit).filter(|&l| l > 0),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cli::test_server::serve;
    use skein_model::LogRecord;
    use skein_model::api::LogsResponse;

    const NOW: u64 = 1_795_316_400_000_000_000;

    fn logs() -> LogsResponse {
        LogsResponse {
            logs: vec![
                LogRecord {
                    time_unix_nano: NOW + 2_000_000,
                    service: "checkout".into(),
                    severity_text: "ERROR".into(),
                    body: "payment failed\x1b]0;owned\x07\nstack".into(),
                    trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                    ..Default::default()
                },
                LogRecord {
                    time_unix_nano: NOW,
                    service: "edge".into(),
                    severity_text: "INFO".into(),
                    body: "GET /pay".into(),
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn cli_search_query_resolves_times_and_drops_empties() {
        let args = SearchArgs {
            query: "payment failed".into(),
            service: Some("checkout".into()),
            severity: Some(String::new()),
            since: Some("15m".into()),
            until: Some("now".into()),
            limit: 50,
            ..Default::default()
        };
        let q = build_query(&args, NOW).unwrap();
        assert_eq!(q.q.as_deref(), Some("payment failed"));
        assert_eq!(q.service.as_deref(), Some("checkout"));
        assert_eq!(q.severity, None);
        assert_eq!(q.start, Some((NOW - 15 * 60 * 1_000_000_000).to_string()));
        assert_eq!(q.end, Some(NOW.to_string()));
        assert_eq!(q.limit, Some(50));

        let q = build_query(&SearchArgs::default(), NOW).unwrap();
        assert!(q.q.is_none() && q.start.is_none() && q.limit.is_none());

        let bad = SearchArgs {
            since: Some("yesterday-ish".into()),
            ..Default::default()
        };
        assert!(
            build_query(&bad, NOW)
                .unwrap_err()
                .to_string()
                .contains("--since")
        );
        let inverted = SearchArgs {
            since: Some("now".into()),
            until: Some("1h".into()),
            ..Default::default()
        };
        assert!(build_query(&inverted, NOW).is_err());
    }

    #[tokio::test]
    async fn cli_search_prints_one_safe_line_per_log() {
        let (base, mut reqs) = serve(200, serde_json::to_string(&logs()).unwrap()).await;
        let client = Client::new(&base, None).unwrap();
        let args = SearchArgs {
            query: "payment failed".into(),
            service: Some("checkout".into()),
            limit: 20,
            ..Default::default()
        };
        let mut out = Vec::new();
        assert_eq!(run(&client, &args, &mut out).await.unwrap(), EXIT_FOUND);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "2026-11-22T03:00:00.002Z ERROR checkout payment failed⏎stack trace=4bf92f35\n\
             2026-11-22T03:00:00.000Z INFO  edge GET /pay\n"
        );
        let head = reqs.recv().await.unwrap();
        let line = head.lines().next().unwrap();
        assert!(line.starts_with("GET /api/v1/logs?"), "{line}");
        for part in ["q=payment+failed", "service=checkout", "limit=20"] {
            assert!(line.contains(part), "{line}");
        }
    }

    #[tokio::test]
    async fn cli_search_json_and_no_results() {
        let (base, _r) = serve(200, serde_json::to_string(&logs()).unwrap()).await;
        let client = Client::new(&base, None).unwrap();
        let args = SearchArgs {
            json: true,
            ..Default::default()
        };
        let mut out = Vec::new();
        assert_eq!(run(&client, &args, &mut out).await.unwrap(), EXIT_FOUND);
        let back: LogsResponse = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, logs());

        let (base, _r) = serve(200, r#"{"logs":[]}"#.to_string()).await;
        let client = Client::new(&base, None).unwrap();
        let mut out = Vec::new();
        let code = run(&client, &SearchArgs::default(), &mut out)
            .await
            .unwrap();
        assert_eq!(code, EXIT_NOT_FOUND);
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn cli_search_bad_request_is_an_error() {
        let body = r#"{"error":"bad_request","message":"unknown severity 'loud'"}"#;
        let (base, _r) = serve(400, body.to_string()).await;
        let client = Client::new(&base, None).unwrap();
        let err = run(&client, &SearchArgs::default(), &mut Vec::new())
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("unknown severity"), "{err:#}");
    }
}
