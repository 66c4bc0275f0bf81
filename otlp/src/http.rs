//! OTLP/HTTP: `POST /v1/logs`, `/v1/traces`, `/v1/metrics`, protobuf or JSON bodies, gzip,
//! zstd or no compression, as the OTLP specification says. When the sink takes them (the
//! collector's), Prometheus remote write ([`crate::remote_write`]) and Loki's push API
//! ([`crate::loki_push`]) share the listener.
//!
//! Successful answers use the request's encoding. Errors are JSON (`{"error", "message"}`)
//! with the status the specification asks for: 400 malformed, 401 bad token, 413 too large
//! (the body, its records or its cost: [`crate::admission`]), 415 unsupported type or
//! encoding, 429 with `Retry-After` when the memory budget is in use, 503 with `Retry-After`
//! when the collector cannot take it.

use crate::admission::{Admission, Encoding, Refusal, admit_and_decode};
use crate::auth::authorized;
use crate::sink::{ExportMeta, IngestError, Logs, Metrics, OtlpSink, Signal, Traces};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::BodyExt;
use std::io::Read;
use std::sync::Arc;

/// State of the OTLP/HTTP router.
#[derive(Clone)]
pub struct HttpState<S> {
    /// Where decoded requests go.
    pub sink: S,
    /// Largest body, compressed or not, in bytes.
    pub max_body: usize,
    /// Required bearer token, if any.
    pub token: Option<Arc<str>>,
    /// The memory budget and record limit, shared with the gRPC transport.
    pub admission: Admission,
}

/// The OTLP/HTTP router, with Prometheus remote write (`POST /api/v1/write`,
/// [`crate::remote_write`]) and Loki's push API (`POST /loki/api/v1/push`,
/// [`crate::loki_push`]) when the sink takes them.
pub fn router<S: OtlpSink>(state: HttpState<S>) -> Router {
    let remote_write = state.sink.takes_remote_write();
    let loki = state.sink.takes_loki_push();
    let mut r = Router::new()
        .route("/v1/logs", post(export::<Logs, S>))
        .route("/v1/traces", post(export::<Traces, S>))
        .route("/v1/metrics", post(export::<Metrics, S>));
    if remote_write {
        r = r.route(
            crate::remote_write::PATH,
            post(crate::remote_write::write::<S>),
        );
    }
    if loki {
        r = r.route(crate::loki_push::PATH, post(crate::loki_push::push::<S>));
    }
    r.fallback(move || not_found(remote_write, loki))
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "OTLP/HTTP endpoints take POST",
            )
        })
        .with_state(state)
}

async fn not_found(remote_write: bool, loki: bool) -> Response {
    let mut also = String::new();
    if remote_write {
        also.push_str(", Prometheus remote write at POST /api/v1/write");
    }
    if loki {
        also.push_str(", Loki push at POST /loki/api/v1/push");
    }
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!(
            "no such endpoint; OTLP/HTTP takes POST /v1/logs, /v1/traces and /v1/metrics{also}"
        ),
    )
}

/// A JSON error answer.
pub fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": kind, "message": message });
    let mut r = (status, axum::Json(body)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// The ingest token check: a 401 with a JSON message when the bearer token is missing or
/// wrong, none when it is right.
pub(crate) fn token_refusal<S>(state: &HttpState<S>, headers: &HeaderMap) -> Option<Response> {
    if authorized(headers, state.token.as_deref()) {
        return None;
    }
    Some(error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or wrong bearer token: send Authorization: Bearer <ingest token>",
    ))
}

/// The answer to a body over `max` bytes, compressed or not.
pub(crate) fn too_large(max: usize) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &format!(
            "the body is larger than the limit of {max} bytes (limits.max_request_bytes); send smaller batches"
        ),
    )
}

/// Reads a request body of at most `state.max_body` bytes, as sent (still compressed).
pub(crate) async fn collect_body<S>(
    state: &HttpState<S>,
    body: Body,
) -> Result<bytes::Bytes, Response> {
    match http_body_util::Limited::new(body, state.max_body)
        .collect()
        .await
    {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return Err(too_large(state.max_body));
            }
            if skein_tls::serve::is_body_timeout(e.as_ref()) {
                return Err(error(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    &e.to_string(),
                ));
            }
            Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("could not read the body: {e}"),
            ))
        }
    }
}

/// Reads, checks and decompresses a request body.
async fn read_body<S>(
    state: &HttpState<S>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Encoding, Vec<u8>), Response> {
    if let Some(r) = token_refusal(state, headers) {
        return Err(r);
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let encoding = match ctype.as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        other => {
            return Err(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                &format!(
                    "content type '{other}' is not supported: use application/x-protobuf or application/json"
                ),
            ));
        }
    };
    let raw = collect_body(state, body).await?;
    let content_encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let codec = match content_encoding.as_str() {
        "" | "identity" | "none" => return Ok((encoding, raw.to_vec())),
        "gzip" | "x-gzip" => Codec::Gzip,
        "zstd" => Codec::Zstd,
        other => {
            return Err(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                &format!("content encoding '{other}' is not supported: use gzip, zstd or none"),
            ));
        }
    };
    let decoded = bounded_decode(codec, raw, state.max_body)
        .await
        .map_err(|e| match e {
            DecodeFail::TooLarge => too_large(state.max_body),
            DecodeFail::Bad(m) => error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("the {} body is not valid: {m}", codec.name()),
            ),
        })?;
    Ok((encoding, decoded))
}

enum DecodeFail {
    TooLarge,
    Bad(String),
}

#[derive(Clone, Copy)]
enum Codec {
    Gzip,
    Zstd,
}

impl Codec {
    fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
        }
    }
}

/// Decompresses off the reactor, reading at most one byte past `max` so a small bomb cannot
/// grow without bound, and checks the size.
async fn bounded_decode(
    codec: Codec,
    raw: bytes::Bytes,
    max: usize,
) -> Result<Vec<u8>, DecodeFail> {
    let limit = max as u64 + 1;
    let work = move || -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        match codec {
            Codec::Gzip => flate2::read::MultiGzDecoder::new(&raw[..])
                .take(limit)
                .read_to_end(&mut out)?,
            Codec::Zstd => zstd::stream::read::Decoder::new(&raw[..])?
                .take(limit)
                .read_to_end(&mut out)?,
        };
        Ok(out)
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(out)) if out.len() > max => Err(DecodeFail::TooLarge),
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(DecodeFail::Bad(e.to_string())),
        Err(e) => Err(DecodeFail::Bad(e.to_string())),
    }
}

/// The answer to a request the admission check refused.
pub(crate) fn refused(r: Refusal) -> Response {
    match r {
        Refusal::Malformed(m) => error(StatusCode::BAD_REQUEST, "bad_request", &m),
        Refusal::TooLarge(m) => error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", &m),
        Refusal::Busy(m) => error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", &m),
    }
}

pub(crate) fn ingest_error(e: IngestError) -> Response {
    match e {
        IngestError::BadRequest(m) => error(StatusCode::BAD_REQUEST, "bad_request", &m),
        IngestError::TooLarge(m) => error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", &m),
        IngestError::Unavailable(m) => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &m),
        IngestError::Internal(m) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "internal",
            &format!("{m}; retry later"),
        ),
    }
}

fn answer<T>(encoding: Encoding, msg: T) -> Response
where
    T: prost::Message + serde::Serialize,
{
    match encoding {
        Encoding::Protobuf => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            msg.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => {
            // An absent partial success is `{}`, not `{"partialSuccess": null}`.
            let mut v = serde_json::to_value(&msg).unwrap_or_default();
            if let serde_json::Value::Object(m) = &mut v {
                m.retain(|_, x| !x.is_null());
            }
            (StatusCode::OK, axum::Json(v)).into_response()
        }
    }
}

/// One handler for every signal: a place in flight, token, body, cost and decoding, the
/// sink, the answer.
async fn export<G: Signal, S: OtlpSink>(
    State(s): State<HttpState<S>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let _permit = match s.sink.admit(G::NAME) {
        Ok(p) => p,
        Err(why) => return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &why),
    };
    let (enc, bytes) = match read_body(&s, &headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let batch_id = match headers.get(skein_model::batch_id::HEADER) {
        None => None,
        Some(v) => match v
            .to_str()
            .map_err(|_| "the skein-batch-id header is not ASCII".to_string())
            .and_then(skein_model::batch_id::BatchId::parse)
        {
            Ok(id) => Some(id),
            Err(e) => {
                s.sink.bad_request(G::NAME);
                return error(StatusCode::BAD_REQUEST, "bad_request", &e);
            }
        },
    };
    let meta = ExportMeta {
        wire_bytes: bytes.len(),
        batch_id,
    };
    let (req, _budget) = match admit_and_decode::<G>(&s.admission, enc, bytes).await {
        Ok(r) => r,
        Err(r) => {
            s.sink.refused(G::NAME, &r);
            return refused(r);
        }
    };
    match G::export(&s.sink, req, meta).await {
        Ok(accepted) => answer(enc, G::response(accepted)),
        Err(e) => ingest_error(e),
    }
}
