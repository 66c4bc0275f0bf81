//! `skein trace <key>`: one request's whole story, by trace ID or request ID.

use std::io::Write;

use anyhow::{Context, bail};
use skein_client::Client;

use super::render::{self, BAR_WIDTH};
use super::{EXIT_FOUND, EXIT_NOT_FOUND};

/// Looks `key` up and writes the trace: the API's answer as pretty JSON with `json`, else the
/// span tree with its logs (ANSI colors only with `color`). Returns [`EXIT_FOUND`], or
/// [`EXIT_NOT_FOUND`] when nothing is known about the key; API and transport failures are
/// errors (the caller exits with [`super::EXIT_ERROR`]).
pub async fn run(
    client: &Client,
    key: &str,
    json: bool,
    color: bool,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    let key = key.trim();
    if key.is_empty() {
        bail!("empty key: give a trace ID or a request ID");
    }
    let answer = client
        .trace(key)
        .await
        .with_context(|| format!("looking up '{}'", render::sanitize(key)))?;
    let Some(resp) = answer else {
        if !json {
            // On stderr, so that stdout stays empty for scripts, as with ripgrep.
            eprintln!(
                "no trace or log found for '{}' (the key may be wrong, or its data may have \
                 expired)",
                render::sanitize(key)
            );
        }
        return Ok(EXIT_NOT_FOUND);
    };
    if json {
        serde_json::to_writer_pretty(&mut *out, &resp)?;
        writeln!(out)?;
    } else {
        out.write_all(render::trace_text(&resp, color, BAR_WIDTH).as_bytes())?;
    }
    out.flush()?;
    Ok(if resp.spans.is_empty() && resp.logs.is_empty() {
        EXIT_NOT_FOUND
    } else {
        EXIT_FOUND
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cli::render::tests::sample_trace;
    use crate::cli::test_server::serve;
    use skein_model::api::TraceResponse;

    #[tokio::test]
    async fn cli_trace_found_renders_text_and_exits_0() {
        let body = serde_json::to_string(&sample_trace()).unwrap();
        let (base, mut reqs) = serve(200, body).await;
        let client = Client::new(&base, Some("tok".into())).unwrap();
        let mut out = Vec::new();
        let code = run(&client, "req 42/x", false, false, &mut out)
            .await
            .unwrap();
        assert_eq!(code, EXIT_FOUND);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("trace 4bf92f3577b34da6a3ce929d0e0e4736"),
            "{text}"
        );
        assert!(text.contains("└─ payments charge"), "{text}");
        assert!(!text.contains('\x1b'), "{text:?}");
        let head = reqs.recv().await.unwrap();
        assert!(
            head.starts_with("GET /api/v1/traces/req%2042%2Fx HTTP/1.1"),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("authorization: bearer tok"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn cli_trace_json_prints_the_answer() {
        let body = serde_json::to_string(&sample_trace()).unwrap();
        let (base, _reqs) = serve(200, body).await;
        let client = Client::new(&base, None).unwrap();
        let mut out = Vec::new();
        let code = run(&client, "abc", true, true, &mut out).await.unwrap();
        assert_eq!(code, EXIT_FOUND);
        let back: TraceResponse = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, sample_trace());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "{}\n",
                serde_json::to_string_pretty(&sample_trace()).unwrap()
            )
        );
    }

    #[tokio::test]
    async fn cli_trace_not_found_exits_1() {
        let body = r#"{"error":"not_found","message":"nothing for key"}"#.to_string();
        let (base, _reqs) = serve(404, body).await;
        let client = Client::new(&base, None).unwrap();
        let mut out = Vec::new();
        let code = run(&client, "nope", false, false, &mut out).await.unwrap();
        assert_eq!(code, EXIT_NOT_FOUND);
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn cli_trace_api_error_is_an_error() {
        let body = r#"{"error":"unauthorized","message":"missing bearer token"}"#.to_string();
        let (base, _reqs) = serve(401, body).await;
        let client = Client::new(&base, None).unwrap();
        let err = run(&client, "k", false, false, &mut Vec::new())
            .await
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("401 unauthorized: missing bearer token"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn cli_trace_connection_refused_names_the_address() {
        // A port that was just free: nothing listens there any more.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = Client::new(&addr.to_string(), None).unwrap();
        let err = run(&client, "k", false, false, &mut Vec::new())
            .await
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains(&format!("http://{addr}")), "{msg}");
        assert!(msg.contains("collector may not be running"), "{msg}");
    }
}
