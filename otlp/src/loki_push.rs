//! Loki's push API on the OTLP/HTTP listener: `POST /loki/api/v1/push`, as Promtail, Grafana
//! Alloy (`loki.write`), Vector's and Fluent Bit's Loki outputs and the `python-logging-loki`
//! package (with `version="1"`) send it. Each entry becomes one OTLP log record and the push
//! one OTLP logs export, handed to the sink's [`OtlpSink::logs`]: the same path as `/v1/logs`
//! (WAL before the answer, cluster mode, correlation keys, indexing), counted as signal `logs`.
//!
//! # Bodies
//!
//! - `Content-Type: application/json`, with no `Content-Encoding`, `gzip` or `deflate` (raw
//!   deflate, as Loki reads it): `{"streams":[{"stream":{"job":"api"},"values":[["<unix epoch
//!   ns as a string>","<line>"],["<ns>","<line>",{"trace_id":"..."}]]}]}`. Label and metadata
//!   values are strings (numbers and booleans are taken as their JSON text).
//! - `Content-Type: application/x-protobuf` (or `application/protobuf`), snappy block format,
//!   `Content-Encoding` absent or `snappy`: `logproto.PushRequest` ([`skein_model::lokipb`]),
//!   each stream's labels as text, `{job="api", env="prod"}` ([`labels`]).
//!
//! # Mapping
//!
//! - A stream is a resource: every label is a resource attribute under its own name. Its
//!   `service.name` is the first non-empty of the labels `service_name` (what Loki itself
//!   sets), `service`, `app`, `job` (none: `unknown_service`, as for OTLP); its `host.name` the
//!   first of `host`, `hostname`, `instance`.
//! - An entry is a log record: the line is its body; the timestamp (nanoseconds) its time
//!   (`0`, or a protobuf entry without one, reads as unset: the time received); its structured
//!   metadata its attributes. `trace_id` (or `traceid`, `traceID`) in metadata is its trace ID
//!   when it is 32 hex digits, `span_id` its span ID when 16.
//! - A `level`, `severity` or `detected_level` in metadata, else among the stream's labels, is
//!   its severity: the text as sent, the number of the level it names (debug 5, info 9, warn
//!   13, error 17, fatal and critical 21; other words 0).
//! - Correlation keys come from the attributes as for OTLP, labels included: a `request_id`
//!   label or metadata pair finds the line in `GET /api/v1/traces/{request id}`.
//!
//! # Gates and answers
//!
//! As Loki answers: 204 when taken. The same gates as `/api/v1/write`
//! ([`crate::remote_write`]): a place among the requests in flight, the ingest token (as
//! `Authorization: Bearer <token>`, or as the password of basic auth, which is all some Loki
//! clients can send), the body limit (`limits.max_request_bytes`) on the compressed body and
//! on the decompressed one (snappy: the size its header declares, checked before
//! decompressing; gzip and deflate: read with a cap of one byte past the limit), then the record
//! limit and memory budget ([`crate::admission`]): protobuf entries are counted on the wire
//! before decoding ([`crate::admission::loki_push_cost`]), JSON ones after decoding and before
//! anything is mapped. A stream's label text is at most [`labels::MAX_LABELS_TEXT`] bytes and
//! [`labels::MAX_LABELS`] labels; an entry's metadata the same.
//!
//! Errors are JSON `{"error", "message"}` saying what is wrong and where (`stream 2, entry 5:
//! timestamp ...`): 400 malformed body, bad labels, names or timestamps (the whole push, as
//! Loki refuses it), 401 bad token, 413 too large (body or records), 415 wrong content type or
//! encoding, 503 with `Retry-After` when the collector cannot take it now (too many in flight,
//! memory budget in use, queues full, a body too slow to arrive): Loki clients retry 5xx and
//! 429 and drop other 4xx.

#[path = "loki_push_labels.rs"]
pub mod labels;
#[path = "loki_push_map.rs"]
pub mod map;

use crate::admission::{Admission, Cost, Refusal, loki_json_cost, loki_push_cost};
use crate::http::{HttpState, collect_body, error, ingest_error, refused, token_refusal};
use crate::sink::{ExportMeta, OtlpSink};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use map::{Format, Push, decode};
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use std::io::Read;
use tokio::sync::OwnedSemaphorePermit;

/// The route.
pub const PATH: &str = "/loki/api/v1/push";

/// The signal a push is counted and admitted under.
const SIGNAL: &str = "logs";

/// How a body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Not at all.
    None,
    /// Snappy block format (every protobuf push).
    Snappy,
    /// gzip (`Content-Encoding: gzip`).
    Gzip,
    /// Raw deflate (`Content-Encoding: deflate`, read as Loki reads it).
    Deflate,
}

/// A 415's kind and message.
type Unsupported = (&'static str, String);

fn unsupported(kind: &'static str, message: String) -> Unsupported {
    (kind, message)
}

/// The format and compression of a push from its headers, or what a 415 says is taken.
fn body_kind(headers: &HeaderMap) -> Result<(Format, Compression), Unsupported> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let ctype = text(header::CONTENT_TYPE);
    let media = ctype.split(';').next().unwrap_or("").trim();
    let encoding = text(header::CONTENT_ENCODING);
    match media {
        "application/json" => match encoding.as_str() {
            "" | "identity" => Ok((Format::Json, Compression::None)),
            "gzip" => Ok((Format::Json, Compression::Gzip)),
            "deflate" => Ok((Format::Json, Compression::Deflate)),
            other => Err(unsupported(
                "unsupported_encoding",
                format!(
                    "content encoding '{other}' is not supported for JSON pushes: send gzip, deflate or none (snappy goes with application/x-protobuf)"
                ),
            )),
        },
        "application/x-protobuf" | "application/protobuf" => match encoding.as_str() {
            "" | "snappy" => Ok((Format::Protobuf, Compression::Snappy)),
            other => Err(unsupported(
                "unsupported_encoding",
                format!(
                    "content encoding '{other}' is not supported for protobuf pushes: their bodies are snappy (block format), with Content-Encoding snappy or none"
                ),
            )),
        },
        _ => Err(unsupported(
            "unsupported_media_type",
            format!(
                "content type '{ctype}' is not supported: a Loki push is application/json or application/x-protobuf (snappy)"
            ),
        )),
    }
}

/// The password of `Authorization: Basic <base64 of user:password>`, if that is the header.
fn basic_password(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(b64.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(_, p)| p.to_string())
}

/// Standard base64 (padding optional); None when it is not.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The ingest token, as a bearer token or as the password of basic auth.
fn loki_token_refusal<S>(s: &HttpState<S>, headers: &HeaderMap) -> Option<Response> {
    token_refusal(s, headers)?;
    if let (Some(token), Some(password)) = (s.token.as_deref(), basic_password(headers))
        && skein_model::auth::bearer_matches(Some(&format!("Bearer {password}")), token)
    {
        return None;
    }
    Some(error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or wrong ingest token: send Authorization: Bearer <ingest token>, or basic auth with the ingest token as the password",
    ))
}

/// Why a body could not be decompressed.
#[derive(Debug)]
pub enum Unpack {
    /// It is larger than the limit once decompressed (the size, when it is declared).
    TooLarge(Option<usize>),
    /// It is not what its encoding says (what is wrong).
    Bad(String),
}

/// Decompresses a body with at most `max` bytes out: snappy's declared size is checked before
/// anything is decompressed; gzip and deflate are read with a cap of one byte past `max`. What
/// the route runs off the async workers; public for fuzzing (`fuzz/fuzz_targets/loki_push.rs`).
pub fn unpack_blocking(raw: &[u8], c: Compression, max: usize) -> Result<Vec<u8>, Unpack> {
    let capped = |r: &mut dyn Read, name: &str| {
        let mut out = Vec::new();
        r.take(max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| Unpack::Bad(format!("the body is not valid {name}: {e}")))?;
        if out.len() > max {
            return Err(Unpack::TooLarge(None));
        }
        Ok(out)
    };
    match c {
        Compression::None => Ok(raw.to_vec()),
        Compression::Snappy => {
            crate::remote_write::unsnappy_blocking(raw, max).map_err(|e| match e {
                crate::remote_write::Unsnappy::TooLarge(n) => Unpack::TooLarge(Some(n)),
                crate::remote_write::Unsnappy::Bad(m) => Unpack::Bad(m),
            })
        }
        Compression::Gzip => capped(&mut flate2::read::MultiGzDecoder::new(raw), "gzip"),
        Compression::Deflate => capped(&mut flate2::read::DeflateDecoder::new(raw), "deflate"),
    }
}

/// The cost of a decompressed body before it is decoded: protobuf entries counted on the
/// wire; JSON its bytes and containers only (entries are counted once decoded).
pub fn wire_cost(format: Format, body: &[u8]) -> Result<Cost, String> {
    match format {
        Format::Json => Ok(loki_json_cost(body)),
        Format::Protobuf => loki_push_cost(body).map_err(|e| {
            format!("the body is not a Loki push in protobuf (logproto.PushRequest): {e}")
        }),
    }
}

/// Measures, reserves, decodes, measures again and maps a decompressed body, off the async
/// workers. The permit is held until the request is answered.
async fn admit_and_map(
    admission: &Admission,
    format: Format,
    body: Vec<u8>,
) -> Result<(ExportLogsServiceRequest, OwnedSemaphorePermit), Refusal> {
    let admission = admission.clone();
    let work = move || {
        let pre = wire_cost(format, &body).map_err(Refusal::Malformed)?;
        let mut permit = admission.reserve(SIGNAL, pre)?;
        let push: Push = decode(format, &body).map_err(Refusal::Malformed)?;
        drop(body);
        let cost = push.cost();
        if cost.records > pre.records || cost.bytes > pre.bytes {
            permit.merge(admission.reserve(
                SIGNAL,
                Cost {
                    records: cost.records,
                    bytes: cost.bytes.saturating_sub(pre.bytes),
                },
            )?);
        }
        let req = push.into_otlp().map_err(Refusal::Malformed)?;
        Ok((req, permit))
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(r) => r,
        Err(e) => Err(Refusal::Malformed(format!("decoding failed: {e}"))),
    }
}

/// `POST /loki/api/v1/push`.
pub(crate) async fn push<S: OtlpSink>(
    State(s): State<HttpState<S>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let _permit = match s.sink.admit(SIGNAL) {
        Ok(p) => p,
        Err(why) => return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &why),
    };
    if let Some(r) = loki_token_refusal(&s, &headers) {
        return r;
    }
    let (format, compression) = match body_kind(&headers) {
        Ok(k) => k,
        Err((kind, message)) => {
            s.sink.bad_request(SIGNAL);
            return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, kind, &message);
        }
    };
    let raw = match collect_body(&s, body).await {
        Ok(b) => b,
        // A body too slow this time may arrive in time on a retry: 503, which clients retry.
        Err(r) if r.status() == StatusCode::REQUEST_TIMEOUT => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "body_timeout",
                "the body did not arrive in time; retry later",
            );
        }
        Err(r) => return r,
    };
    let max = s.max_body;
    let unpacked =
        match tokio::task::spawn_blocking(move || unpack_blocking(&raw, compression, max)).await {
            Ok(r) => r,
            Err(e) => Err(Unpack::Bad(format!("decompression failed: {e}"))),
        };
    let decoded = match unpacked {
        Ok(d) => d,
        Err(Unpack::TooLarge(n)) => {
            s.sink.refused(SIGNAL, &Refusal::TooLarge(String::new()));
            let size = n.map_or_else(
                || "more than the limit".to_string(),
                |n| format!("{n} bytes"),
            );
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                &format!(
                    "the body decompresses to {size}, more than the limit of {max} bytes (limits.max_request_bytes); send smaller batches (Promtail: lower client batchsize)"
                ),
            );
        }
        Err(Unpack::Bad(m)) => {
            s.sink.bad_request(SIGNAL);
            return error(StatusCode::BAD_REQUEST, "bad_request", &m);
        }
    };
    let meta = ExportMeta {
        wire_bytes: decoded.len(),
        batch_id: None,
    };
    let (req, _budget) = match admit_and_map(&s.admission, format, decoded).await {
        Ok(r) => r,
        Err(r) => {
            s.sink.refused(SIGNAL, &r);
            return match r {
                // Overload is a 503 with Retry-After, which every Loki client retries.
                Refusal::Busy(m) => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &m),
                other => refused(other),
            };
        }
    };
    match s.sink.logs(req, meta).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => ingest_error(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "loki_push_tests.rs"]
mod tests;
