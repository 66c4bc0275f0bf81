//! Prometheus remote write 1.0 on the OTLP/HTTP listener: `POST /api/v1/write`, a
//! snappy-compressed (block format) protobuf `prometheus.WriteRequest`
//! ([`skein_model::prompb`]), as Prometheus, Grafana Alloy and other remote-write senders ship
//! it.
//!
//! It goes through the same gates as `/v1/metrics`: a place among the requests in flight
//! ([`OtlpSink::admit`]), the ingest token, the body limit (`limits.max_request_bytes`, for
//! the compressed body and for the size its snappy header declares, checked before anything is
//! decompressed), the record limit and memory budget ([`crate::admission`]: every sample, native
//! histogram, metadata entry and empty series is a record), then the sink's
//! [`OtlpSink::remote_write`], counted as signal `metrics`.
//!
//! Answers: 204 when taken (samples refused inside a request that stored some are counted, not
//! reported: a sender cannot act on them). Senders retry 5xx and drop 4xx, so 4xx is kept for
//! requests that can never be taken: 400 malformed or every sample refused, 401 bad token, 413
//! too large, 415 wrong type or encoding (remote write 2.0 included). A request that would fit
//! later (memory budget in use, queues full, too many in flight, a body too slow to arrive)
//! gets 503 with `Retry-After`, never 429 or 408, which senders drop. Error bodies are JSON
//! (`{"error", "message"}`). The `X-Prometheus-Remote-Write-Version` header is not required.

use crate::admission::{Admission, Refusal, remote_write_cost};
use crate::http::{HttpState, collect_body, error, ingest_error, refused, token_refusal};
use crate::sink::{ExportMeta, OtlpSink};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use skein_model::prompb::WriteRequest;
use tokio::sync::OwnedSemaphorePermit;

/// The route.
pub const PATH: &str = "/api/v1/write";

/// The signal name remote write is counted and admitted under.
const SIGNAL: &str = "metrics";

/// Checks the content type and encoding a remote-write 1.0 body must have: a 415 with a JSON
/// message when they are wrong, none when they are right.
fn header_refusal(headers: &HeaderMap) -> Option<Response> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let ctype = text(header::CONTENT_TYPE);
    let mut parts = ctype.split(';').map(str::trim);
    let media = parts.next().unwrap_or("");
    if media != "application/x-protobuf" && media != "application/protobuf" {
        return Some(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            &format!(
                "content type '{ctype}' is not supported: remote write sends application/x-protobuf"
            ),
        ));
    }
    for p in parts {
        if let Some(proto) = p.strip_prefix("proto=")
            && proto.trim_matches('"') != "prometheus.writerequest"
        {
            return Some(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                &format!(
                    "protobuf message '{proto}' is not supported: Skein takes remote write 1.0 (prometheus.WriteRequest); set protobuf_message: prometheus.WriteRequest in the sender's remote_write section"
                ),
            ));
        }
    }
    let encoding = text(header::CONTENT_ENCODING);
    if encoding != "snappy" {
        let what = if encoding.is_empty() {
            "no content encoding".to_string()
        } else {
            format!("content encoding '{encoding}'")
        };
        return Some(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            &format!(
                "{what}: remote write bodies are snappy-compressed (Content-Encoding: snappy)"
            ),
        ));
    }
    None
}

/// Why a snappy body could not be decompressed.
#[derive(Debug)]
pub enum Unsnappy {
    /// Its header declares more than the limit (the size declared).
    TooLarge(usize),
    /// It is not snappy's block format (what is wrong).
    Bad(String),
}

/// Decompresses a snappy block-format body after checking the size its header declares
/// against `max`: a small body cannot make it allocate more. What the route runs off the
/// async workers; public for fuzzing (`fuzz/fuzz_targets/remote_write.rs`).
pub fn unsnappy_blocking(raw: &[u8], max: usize) -> Result<Vec<u8>, Unsnappy> {
    let declared = match snap::raw::decompress_len(raw) {
        Ok(n) => n,
        Err(snap::Error::TooBig { given, .. }) => {
            return Err(Unsnappy::TooLarge(
                usize::try_from(given).unwrap_or(usize::MAX),
            ));
        }
        Err(e) => {
            return Err(Unsnappy::Bad(format!(
                "the body is not snappy (block format): {e}"
            )));
        }
    };
    if declared > max {
        return Err(Unsnappy::TooLarge(declared));
    }
    snap::raw::Decoder::new()
        .decompress_vec(raw)
        .map_err(|e| Unsnappy::Bad(format!("the body is not valid snappy (block format): {e}")))
}

/// [`unsnappy_blocking`] off the async workers.
async fn unsnappy(raw: bytes::Bytes, max: usize) -> Result<Vec<u8>, Unsnappy> {
    match tokio::task::spawn_blocking(move || unsnappy_blocking(&raw, max)).await {
        Ok(r) => r,
        Err(e) => Err(Unsnappy::Bad(format!("decompression failed: {e}"))),
    }
}

/// Measures a decompressed body, reserves its cost from the memory budget and decodes it, off
/// the async workers. The permit is held until the request is answered.
async fn admit_and_decode(
    admission: &Admission,
    body: Vec<u8>,
) -> Result<(WriteRequest, OwnedSemaphorePermit), Refusal> {
    let admission = admission.clone();
    let work = move || {
        let bad = |e: String| {
            Refusal::Malformed(format!(
                "the body is not a valid remote-write protobuf message (prometheus.WriteRequest): {e}"
            ))
        };
        let cost = remote_write_cost(&body).map_err(bad)?;
        let permit = admission.reserve(SIGNAL, cost).map_err(|r| match r {
            Refusal::TooLarge(m) => Refusal::TooLarge(format!(
                "{m} (with Prometheus: lower queue_config.max_samples_per_send)"
            )),
            other => other,
        })?;
        let req = WriteRequest::decode(&body[..]).map_err(|e| bad(e.to_string()))?;
        Ok((req, permit))
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(r) => r,
        Err(e) => Err(Refusal::Malformed(format!("decoding failed: {e}"))),
    }
}

/// `POST /api/v1/write`.
pub(crate) async fn write<S: OtlpSink>(
    State(s): State<HttpState<S>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let _permit = match s.sink.admit(SIGNAL) {
        Ok(p) => p,
        Err(why) => return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &why),
    };
    if let Some(r) = token_refusal(&s, &headers) {
        return r;
    }
    if let Some(r) = header_refusal(&headers) {
        s.sink.bad_request(SIGNAL);
        return r;
    }
    let raw = match collect_body(&s, body).await {
        Ok(b) => b,
        // A body too slow this time may arrive in time on a retry: 503, which senders retry.
        Err(r) if r.status() == StatusCode::REQUEST_TIMEOUT => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "body_timeout",
                "the body did not arrive in time; retry later",
            );
        }
        Err(r) => return r,
    };
    let decoded = match unsnappy(raw, s.max_body).await {
        Ok(d) => d,
        Err(Unsnappy::TooLarge(n)) => {
            s.sink.refused(SIGNAL, &Refusal::TooLarge(String::new()));
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                &format!(
                    "the body decompresses to {n} bytes, more than the limit of {} bytes (limits.max_request_bytes); send smaller batches (with Prometheus: lower queue_config.max_samples_per_send)",
                    s.max_body
                ),
            );
        }
        Err(Unsnappy::Bad(m)) => {
            s.sink.bad_request(SIGNAL);
            return error(StatusCode::BAD_REQUEST, "bad_request", &m);
        }
    };
    let meta = ExportMeta {
        wire_bytes: decoded.len(),
        batch_id: None,
    };
    let (req, _budget) = match admit_and_decode(&s.admission, decoded).await {
        Ok(r) => r,
        Err(r) => {
            s.sink.refused(SIGNAL, &r);
            return match r {
                // Senders drop a 429 unless told to retry it: a 503 is retried by all.
                Refusal::Busy(m) => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &m),
                other => refused(other),
            };
        }
    };
    match s.sink.remote_write(req, meta).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => ingest_error(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "remote_write_tests.rs"]
mod tests;
