//! The Loki query API over Skein's log index, for Grafana's Loki data source (Explore, log
//! volume, trace-to-logs links, label browser, live tail) and any Loki client.
//!
//! Routes (GET, and form-encoded POST where Loki takes it): `/loki/api/v1/query`,
//! `/loki/api/v1/query_range`, `/loki/api/v1/labels`, `/loki/api/v1/label/{name}/values`,
//! `/loki/api/v1/series`, `/loki/api/v1/index/stats`, `/loki/api/v1/index/volume`,
//! `/loki/api/v1/index/volume_range`, `/loki/api/v1/status/buildinfo` and
//! `/loki/api/v1/tail` (websocket, [`tail`]).
//!
//! LogQL is parsed by a grammar ([`logql`]); how records become streams and labels is in
//! [`pipeline`]; what the index answers and what is scanned is in [`scan`]; metric queries in
//! [`metric`]. Errors are JSON `{"status":"error","errorType","error","message"}` with a 4xx
//! a person can act on (Grafana shows `message`).
//!
//! Bounds: `limit` ≤ [`MAX_LIMIT`] lines; ≤ [`metric::MAX_STEPS`] steps and
//! [`metric::MAX_SERIES`] series; a query reads at most [`scan::DEFAULT_SCAN_BUDGET`] lines;
//! label, value and series discovery read the newest [`DISCOVERY_SAMPLE`] lines of the range.

pub mod logql;
mod meta;
pub mod metric;
pub mod pipeline;
mod query;
pub mod scan;
pub mod tail;
#[cfg(test)]
mod tests;

use crate::api::ApiState;
use crate::prom_api::params::{Form, MAX_FORM_BYTES};
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Most lines one log query returns (Loki's default `max_entries_limit_per_query`).
pub const MAX_LIMIT: usize = 5000;
/// Lines returned when the request gives no `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// Newest lines of the range read to list labels, values and series.
pub const DISCOVERY_SAMPLE: usize = 5000;
/// The Loki version Skein answers as in `buildinfo`: the API it follows.
pub const LOKI_VERSION: &str = "3.0.0";

/// The Loki routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/loki/api/v1/query",
            get(query::instant).post(query::instant),
        )
        .route(
            "/loki/api/v1/query_range",
            get(query::range).post(query::range),
        )
        .route("/loki/api/v1/labels", get(meta::labels).post(meta::labels))
        .route("/loki/api/v1/label/{name}/values", get(meta::values))
        .route("/loki/api/v1/series", get(meta::series).post(meta::series))
        .route(
            "/loki/api/v1/index/stats",
            get(meta::stats).post(meta::stats),
        )
        .route(
            "/loki/api/v1/index/volume",
            get(meta::volume).post(meta::volume),
        )
        .route(
            "/loki/api/v1/index/volume_range",
            get(meta::volume_range).post(meta::volume_range),
        )
        .route("/loki/api/v1/status/buildinfo", get(meta::buildinfo))
        .route("/loki/api/v1/tail", get(tail::tail))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}

/// A Loki error answer.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    let kind = match status {
        StatusCode::BAD_REQUEST => "bad_data",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::NOT_FOUND => "not_found",
        _ => "internal",
    };
    let body = serde_json::json!({
        "status": "error",
        "errorType": kind,
        "error": message,
        "message": message,
    });
    (status, axum::Json(body)).into_response()
}

pub(crate) fn bad(message: impl AsRef<str>) -> Response {
    error(StatusCode::BAD_REQUEST, message.as_ref())
}

/// [`bad`], boxed for `Result`s (a `Response` is large to return by value).
pub(crate) fn bad_boxed(message: impl AsRef<str>) -> Box<Response> {
    Box::new(bad(message))
}

/// An API error from the engine or the query slot, in Loki's shape.
pub(crate) fn from_api(e: crate::api::ApiError) -> Response {
    let (status, _, message) = e.parts();
    let mut r = error(status, message);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    r
}

/// A JSON answer from text already rendered.
pub(crate) fn json_text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The parameters of a request: its query string, and its body when it is a form.
pub(crate) struct Params(pub Form);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Response> {
        crate::prom_api::params::read(req, state)
            .await
            .map(Params)
            .map_err(|e| bad(e.message))
    }
}

fn now_ns() -> u64 {
    skein_model::time::now_unix_nano()
}

/// A time as Loki reads it: a number with a `.` is seconds; an integer is seconds with up to
/// 10 digits, else nanoseconds; otherwise RFC 3339.
pub fn parse_time(v: &str) -> Result<u64, String> {
    let v = v.trim();
    if v.contains('.')
        && let Ok(f) = v.parse::<f64>()
    {
        if !(0.0..=1e10).contains(&f) {
            return Err(format!("'{v}' is out of range"));
        }
        return Ok((f * 1e9).round() as u64);
    }
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = v
            .parse()
            .map_err(|_| format!("'{v}' is too large for a time"))?;
        return if v.len() <= 10 {
            Ok(n.saturating_mul(1_000_000_000))
        } else {
            Ok(n)
        };
    }
    crate::jaeger::params::parse_rfc3339(v).map_err(|e| {
        format!("'{v}' is not a time: use Unix nanoseconds, seconds or RFC 3339 ({e})")
    })
}

/// A step or interval: float seconds or a duration (`60000ms`, `1m`), in ns.
pub fn parse_step(v: &str) -> Result<u64, String> {
    let v = v.trim();
    if let Ok(f) = v.parse::<f64>() {
        if !(f > 0.0 && f <= 1e9) {
            return Err(format!("step '{v}' must be a positive number of seconds"));
        }
        return Ok((f * 1e9).round() as u64);
    }
    let ns = logql::lexer::parse_duration_ns(v)?;
    if ns == 0 {
        return Err(format!("step '{v}' must be positive"));
    }
    Ok(ns)
}

/// Reads `start`/`end` (default: the last hour up to now).
pub(crate) fn range_of(f: &Form) -> Result<(u64, u64), Box<Response>> {
    let end = match f.get("end") {
        Some(v) => {
            parse_time(v).map_err(|e| bad_boxed(format!("invalid parameter \"end\": {e}")))?
        }
        None => now_ns(),
    };
    let start = match f.get("start") {
        Some(v) => {
            parse_time(v).map_err(|e| bad_boxed(format!("invalid parameter \"start\": {e}")))?
        }
        None => end.saturating_sub(3600 * 1_000_000_000),
    };
    if end < start {
        return Err(bad_boxed(
            "invalid parameters: end is before start; give start < end",
        ));
    }
    Ok((start, end))
}

/// Reads `limit` (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]).
pub(crate) fn limit_of(f: &Form) -> Result<usize, Box<Response>> {
    match f.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => match v.parse::<usize>() {
            Ok(0) => Err(bad_boxed("limit must be a positive integer")),
            Ok(n) if n <= MAX_LIMIT => Ok(n),
            Ok(n) => Err(bad_boxed(format!(
                "max entries limit per query exceeded, limit > max_entries_limit ({n} > {MAX_LIMIT})"
            ))),
            Err(_) => Err(bad_boxed(format!(
                "invalid parameter \"limit\": '{v}' is not a positive integer"
            ))),
        },
    }
}
