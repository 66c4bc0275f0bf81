//! One HTTP GET of a target: the `Accept` header Prometheus sends (OpenMetrics first), gzip
//! accepted, the body read up to `body_limit` bytes (and no further: an endless answer is
//! cut there and the scrape fails), then gunzipped up to `body_limit` bytes again. The
//! caller bounds the whole exchange with the job's timeout.

use bytes::Bytes;
use std::io::Read;
use std::time::Duration;

/// The `Accept` header of every scrape: OpenMetrics 1.0 preferred, the text format next.
pub const ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// An answer as received.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The body as sent (possibly gzip).
    pub body: Bytes,
    /// The body is gzip (`Content-Encoding: gzip`).
    pub gzip: bool,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
}

/// An error and what caused it, each cause once, on one line.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

/// GETs `url`; fails on a status other than 2xx, an encoding other than gzip or identity,
/// and a body over `limit` bytes.
pub async fn fetch(
    client: &reqwest::Client,
    url: &reqwest::Url,
    timeout: Duration,
    limit: usize,
) -> Result<Fetched, String> {
    let resp = client
        .get(url.clone())
        .header(http::header::ACCEPT, ACCEPT)
        .header(http::header::ACCEPT_ENCODING, "gzip")
        .header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            format!("{}", timeout.as_secs_f64()),
        )
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("HTTP status {status}"));
    }
    let header = |name: http::header::HeaderName| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
    };
    let content_type = header(http::header::CONTENT_TYPE);
    let gzip = match header(http::header::CONTENT_ENCODING) {
        None => false,
        Some(e) if e.is_empty() || e.eq_ignore_ascii_case("identity") => false,
        Some(e) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip") => true,
        Some(e) => {
            return Err(format!(
                "Content-Encoding \"{e}\" is not supported (gzip or none)"
            ));
        }
    };
    if let Some(n) = resp.content_length()
        && n > limit as u64
    {
        return Err(format!(
            "the answer is {n} bytes, more than body_limit ({limit})"
        ));
    }
    let mut resp = resp;
    let mut body: Vec<u8> = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > limit {
            return Err(format!(
                "the answer is more than body_limit ({limit} bytes)"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        body: Bytes::from(body),
        gzip,
        content_type,
    })
}

/// The body, gunzipped when it is gzip; more than `limit` bytes once unpacked fails.
/// CPU work: blocking threads only.
pub fn unpack(f: &Fetched, limit: usize) -> Result<Bytes, String> {
    if !f.gzip {
        return Ok(f.body.clone());
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&f.body[..])
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("the gzip body cannot be read: {e}"))?;
    if out.len() > limit {
        return Err(format!(
            "the answer is more than body_limit ({limit} bytes) once gunzipped"
        ));
    }
    Ok(Bytes::from(out))
}
