//! Jaeger's HTTP API v3 (the JSON form of its `api_v3` query service), which newer Grafana
//! releases call:
//!
//! - `GET /api/v3/services`: `{"services": [...]}`;
//! - `GET /api/v3/operations?service=&span_kind=`: `{"operations": [{"name", "spanKind"}]}`;
//! - `GET /api/v3/traces/{trace_id}` (`start_time`, `end_time` accepted, not needed): one
//!   trace by trace ID or any correlation key, with its log records as `log` span events;
//! - `GET /api/v3/traces?query.service_name=&query.operation_name=&query.attributes=&query.duration_min=&query.duration_max=&query.start_time_min=&query.start_time_max=&query.search_depth=`:
//!   every span of the matching traces, newest trace first.
//!
//! Traces answer `{"result": {"resourceSpans": [...]}}` in OTLP/JSON ([`super::otlp_json`]);
//! errors `{"error": {"grpcCode", "httpCode", "message", "httpStatus"}}` with the same HTTP
//! status. Parameters take Jaeger's newer camelCase names too (`query.serviceName`,
//! `query.searchDepth`, `spanKind`, `startTime`), and `query.num_traces`. The search reads
//! the v1 route's way ([`super::search`], [`super::params`]) with its bounds:
//! `query.search_depth` is v1's `limit`.

use super::otlp_json::{self, TracesData};
use super::{params, search};
use crate::QueryError;
use crate::api::{ApiError, ApiState, run_blocking};
use crate::metrics::params::Params;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use skein_model::time::now_unix_nano;
use skein_store::search::{SpanFilter, TimeRange};

/// The v3 routes (the caller adds authentication and the state).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v3/services", get(services))
        .route("/api/v3/operations", get(operations))
        .route("/api/v3/traces", get(find_traces))
        .route("/api/v3/traces/{trace_id}", get(trace))
}

/// `{"result": ...}`: how the v3 gateway wraps traces.
#[derive(Debug, Serialize)]
pub struct V3Result<T> {
    /// The answer.
    pub result: T,
}

/// `{"services": [...]}`.
#[derive(Debug, Serialize)]
pub struct V3Services {
    /// Service names, sorted.
    pub services: Vec<String>,
}

/// `{"operations": [...]}`.
#[derive(Debug, Serialize)]
pub struct V3Operations {
    /// Operations with their span kind.
    pub operations: Vec<search::Operation>,
}

/// The error body of the v3 gateway.
#[derive(Debug, Serialize)]
pub struct V3ErrorBody {
    /// What went wrong.
    pub error: V3ErrorDetails,
}

/// The details of a v3 error.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct V3ErrorDetails {
    /// The gRPC status code of the same failure (3 invalid argument, 5 not found, ...).
    pub grpc_code: i32,
    /// The HTTP status.
    pub http_code: u16,
    /// What went wrong and what to do.
    pub message: String,
    /// The HTTP status's reason (`Bad Request`).
    pub http_status: String,
}

/// An error answer in the v3 shape.
#[derive(Debug)]
pub struct V3Error {
    status: StatusCode,
    message: String,
}

impl V3Error {
    fn bad(message: impl Into<String>) -> Self {
        V3Error {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl From<ApiError> for V3Error {
    fn from(e: ApiError) -> Self {
        let (status, _, message) = e.parts();
        V3Error {
            status,
            message: message.to_string(),
        }
    }
}

impl From<QueryError> for V3Error {
    fn from(e: QueryError) -> Self {
        ApiError::from(e).into()
    }
}

/// The gRPC code grpc-gateway maps to an HTTP status.
fn grpc_code(status: StatusCode) -> i32 {
    match status.as_u16() {
        400 => 3,
        401 => 16,
        403 => 7,
        404 => 5,
        409 => 10,
        429 => 8,
        501 => 12,
        503 => 14,
        504 => 4,
        _ => 13,
    }
}

impl IntoResponse for V3Error {
    fn into_response(self) -> Response {
        let body = V3ErrorBody {
            error: V3ErrorDetails {
                grpc_code: grpc_code(self.status),
                http_code: self.status.as_u16(),
                message: self.message,
                http_status: self.status.canonical_reason().unwrap_or("").to_string(),
            },
        };
        let mut r = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

fn parse(raw: Option<String>) -> Result<Params, V3Error> {
    Params::parse(raw.as_deref()).map_err(V3Error::from)
}

/// The first of `names` given, with the name it was given as.
fn first<'a>(p: &'a Params, names: &[&'static str]) -> Option<(&'static str, &'a str)> {
    names.iter().find_map(|n| p.get(n).map(|v| (*n, v)))
}

const SERVICE: [&str; 2] = ["query.service_name", "query.serviceName"];
const OPERATION: [&str; 2] = ["query.operation_name", "query.operationName"];
const ATTRIBUTES: [&str; 1] = ["query.attributes"];
const DURATION_MIN: [&str; 2] = ["query.duration_min", "query.durationMin"];
const DURATION_MAX: [&str; 2] = ["query.duration_max", "query.durationMax"];
const TIME_MIN: [&str; 2] = ["query.start_time_min", "query.startTimeMin"];
const TIME_MAX: [&str; 2] = ["query.start_time_max", "query.startTimeMax"];
const DEPTH: [&str; 3] = [
    "query.search_depth",
    "query.searchDepth",
    "query.num_traces",
];
const SPAN_KIND: [&str; 2] = ["span_kind", "spanKind"];
const TRACE_START: [&str; 2] = ["start_time", "startTime"];
const TRACE_END: [&str; 2] = ["end_time", "endTime"];

fn duration(p: &Params, names: &[&'static str]) -> Result<Option<u64>, String> {
    first(p, names)
        .map(|(name, v)| {
            params::parse_go_duration(v)
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                .map_err(|e| format!("malformed parameter {name}: {e}"))
        })
        .transpose()
}

fn time(p: &Params, names: &[&'static str]) -> Result<Option<u64>, String> {
    first(p, names)
        .map(|(name, v)| {
            params::parse_rfc3339(v).map_err(|e| format!("malformed parameter {name}: {e}"))
        })
        .transpose()
}

/// The span filter, window and trace count of `GET /api/v3/traces`. Without
/// `query.start_time_max` the window ends now; without `query.start_time_min` it starts
/// [`params::DEFAULT_SEARCH_LOOKBACK`] before its end (Jaeger requires both; Grafana sends
/// both).
pub fn search_query(
    p: &Params,
    now_ns: u64,
    max_limit: usize,
) -> Result<(SpanFilter, TimeRange, usize), String> {
    let service = first(p, &SERVICE).map(|(_, v)| v.to_string());
    let attrs = first(p, &ATTRIBUTES).map(|(_, v)| v);
    if service.is_none() && attrs.is_none() {
        return Err(
            "query.service_name is required (or query.attributes): /api/v3/traces?query.service_name=<name>&query.start_time_min=<RFC 3339>&query.start_time_max=<RFC 3339>; /api/v3/services lists the services"
                .into(),
        );
    }
    let tags = params::parse_tags(attrs, [])
        .map_err(|e| format!("malformed parameter query.attributes: {e}"))?;
    let min_duration = duration(p, &DURATION_MIN)?;
    let max_duration = duration(p, &DURATION_MAX)?;
    if let (Some(lo), Some(hi)) = (min_duration, max_duration)
        && lo > hi
    {
        return Err(
            "query.duration_min is longer than query.duration_max: no span could match".into(),
        );
    }
    let end = time(p, &TIME_MAX)?.unwrap_or(now_ns);
    let back = u64::try_from(params::DEFAULT_SEARCH_LOOKBACK.as_nanos()).unwrap_or(u64::MAX);
    let start = time(p, &TIME_MIN)?.unwrap_or(end.saturating_sub(back));
    if start >= end {
        return Err("query.start_time_min must be before query.start_time_max".into());
    }
    let (depth_name, depth) = match first(p, &DEPTH) {
        Some((n, v)) => (n, Some(v)),
        None => (DEPTH[0], None),
    };
    let limit = params::limit_of(depth_name, depth, max_limit)?;
    let filter = SpanFilter {
        service,
        operation: first(p, &OPERATION).map(|(_, v)| v.to_string()),
        min_duration,
        max_duration,
        error: None,
        tags,
    };
    Ok((filter, TimeRange { start, end }, limit))
}

fn ok_traces(data: TracesData) -> Response {
    axum::Json(V3Result { result: data }).into_response()
}

async fn services(State(s): State<ApiState>) -> Result<Response, V3Error> {
    let engine = s.engine.clone();
    let tsdb = s.metric_reads.clone();
    let services = run_blocking(&s, "jaeger_v3_services", move || {
        search::services(&engine, tsdb.as_ref(), now_unix_nano())
    })
    .await?;
    Ok(axum::Json(V3Services { services }).into_response())
}

async fn operations(
    State(s): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, V3Error> {
    let p = parse(raw)?;
    let service = p
        .get("service")
        .ok_or_else(|| {
            V3Error::bad("service is required: /api/v3/operations?service=<name>&span_kind=server")
        })?
        .to_string();
    let kind = match first(&p, &SPAN_KIND) {
        None => None,
        Some((name, k)) => {
            let k = k.to_ascii_lowercase();
            if !search::SPAN_KINDS.contains(&k.as_str()) {
                return Err(V3Error::bad(format!(
                    "{name} '{k}' is not a span kind: use server, client, producer, consumer or internal (or leave it out)"
                )));
            }
            Some(k)
        }
    };
    let engine = s.engine.clone();
    let operations = run_blocking(&s, "jaeger_v3_operations", move || {
        search::operations(&engine, &service, kind.as_deref(), true, now_unix_nano())
    })
    .await?;
    Ok(axum::Json(V3Operations { operations }).into_response())
}

async fn find_traces(
    State(s): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, V3Error> {
    let p = parse(raw)?;
    let (filter, range, limit) =
        search_query(&p, now_unix_nano(), s.engine.limits().max_limit).map_err(V3Error::bad)?;
    let engine = s.engine.clone();
    let data = run_blocking(&s, "jaeger_v3_traces", move || {
        let found = search::find_trace_spans(&engine, &filter, range, limit)?;
        let mut data = TracesData::default();
        for t in &found {
            data.resource_spans
                .extend(otlp_json::resource_spans(&t.trace_id, &t.spans, &[]));
        }
        Ok(data)
    })
    .await?;
    Ok(ok_traces(data))
}

async fn trace(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, V3Error> {
    // `start_time` and `end_time` (Grafana sends them when "trace ID time params" is on) are
    // read to refuse malformed ones, as Jaeger does, and not needed: a trace is found by its
    // key in every split.
    let p = parse(raw)?;
    time(&p, &TRACE_START).map_err(V3Error::bad)?;
    time(&p, &TRACE_END).map_err(V3Error::bad)?;
    let key = id.trim().to_string();
    if key.is_empty() {
        return Err(V3Error::bad("the trace ID is empty"));
    }
    let engine = s.engine.clone();
    let k = key.clone();
    let found = run_blocking(&s, "jaeger_v3_trace", move || {
        Ok(
            search::trace_response_by_key(&engine, &k)?.map(|(t, _)| TracesData {
                resource_spans: otlp_json::resource_spans(&t.trace_id, &t.spans, &t.logs),
            }),
        )
    })
    .await?;
    match found {
        Some(data) => Ok(ok_traces(data)),
        None => Err(V3Error {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "trace not found: no span carries '{key}' as its trace ID or a correlation key (request ID); check the ID, the time it was sent and the retention. Log lines alone are at /api/v1/traces/{key}"
            ),
        }),
    }
}
