//! Jaeger's query HTTP API on the query port, so Grafana's Jaeger data source (and the
//! Jaeger UI) reads Skein's traces:
//!
//! - `GET /api/services`: service names (the data source's health check calls it);
//! - `GET /api/services/{service}/operations`: operation names;
//! - `GET /api/operations?service=&spanKind=`: `[{"name", "spanKind"}]`;
//! - `GET /api/traces?service=&operation=&tags=&minDuration=&maxDuration=&limit=&start=&end=&lookback=`:
//!   whole traces with a span matching every condition ([`params`] reads them as Jaeger does);
//! - `GET /api/traces/{id}`: one trace, by trace ID or by any correlation key (a request
//!   ID), with the trace's log records as span logs ([`convert`]);
//! - `GET /api/dependencies?endTs=&lookback=` (ms): `[{"parent", "child", "callCount"}]`;
//! - Jaeger's HTTP API v3 under `/api/v3/` (services, operations, a trace, a search) in
//!   OTLP/JSON, which newer Grafana releases call ([`v3`], [`otlp_json`]).
//!
//! Answers use Jaeger's envelope `{"data", "total", "limit", "offset", "errors"}`; errors
//! are `{"data": null, ..., "errors": [{"code", "msg"}]}` with the same HTTP status. Every
//! route runs on a blocking thread with the query API's time limit and places, and reads
//! through [`crate::reads`] and [`crate::metric_reads`], so in a cluster any node answers.
//!
//! Bounds: `limit` at most the engine's `query.max_limit` (1,000; 400 past it), 20 when
//! absent; tags at most [`params::MAX_TAGS`], each name and value at most
//! [`params::MAX_TAG_BYTES`]; the same for v3 (`query.search_depth` is `limit`). Not served:
//! Jaeger's gRPC query API, `/api/archive`, the metrics routes of Jaeger's monitor tab.

pub mod convert;
pub mod otlp_json;
pub mod params;
pub mod search;
pub mod v3;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_v3;

use crate::QueryError;
use crate::api::{ApiError, ApiState, run_blocking};
use crate::metrics::params::Params;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use skein_model::time::{now_ms, now_unix_nano};
use skein_store::search::{SpanFilter, TimeRange};

/// The routes (the caller adds authentication and the state).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/services", get(services))
        .route(
            "/api/services/{service}/operations",
            get(service_operations),
        )
        .route("/api/operations", get(operations))
        .route("/api/traces", get(traces))
        .route("/api/traces/{id}", get(trace))
        .route("/api/dependencies", get(dependencies))
        .merge(v3::routes())
}

/// Jaeger's answer envelope.
#[derive(Debug, Serialize)]
pub struct Envelope<T> {
    /// The answer.
    pub data: T,
    /// How many items `data` holds.
    pub total: usize,
    /// Always 0.
    pub limit: usize,
    /// Always 0.
    pub offset: usize,
    /// Always none on success.
    pub errors: Option<Vec<JaegerErrorItem>>,
}

/// One error of Jaeger's envelope.
#[derive(Debug, Clone, Serialize)]
pub struct JaegerErrorItem {
    /// The HTTP status.
    pub code: u16,
    /// What went wrong and what to do.
    pub msg: String,
}

fn ok<T: Serialize>(data: Vec<T>) -> Response {
    let total = data.len();
    axum::Json(Envelope {
        data,
        total,
        limit: 0,
        offset: 0,
        errors: None,
    })
    .into_response()
}

/// An error answer in Jaeger's shape.
#[derive(Debug)]
pub struct JaegerError {
    status: StatusCode,
    msg: String,
}

impl JaegerError {
    fn bad(msg: impl Into<String>) -> Self {
        JaegerError {
            status: StatusCode::BAD_REQUEST,
            msg: msg.into(),
        }
    }

    fn not_found(msg: impl Into<String>) -> Self {
        JaegerError {
            status: StatusCode::NOT_FOUND,
            msg: msg.into(),
        }
    }
}

impl From<ApiError> for JaegerError {
    fn from(e: ApiError) -> Self {
        let (status, _, msg) = e.parts();
        JaegerError {
            status,
            msg: msg.to_string(),
        }
    }
}

impl From<QueryError> for JaegerError {
    fn from(e: QueryError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for JaegerError {
    fn into_response(self) -> Response {
        let body = Envelope::<Option<()>> {
            data: None,
            total: 0,
            limit: 0,
            offset: 0,
            errors: Some(vec![JaegerErrorItem {
                code: self.status.as_u16(),
                msg: self.msg,
            }]),
        };
        let mut r = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

fn parse(raw: Option<String>) -> Result<Params, JaegerError> {
    Params::parse(raw.as_deref()).map_err(JaegerError::from)
}

async fn services(State(s): State<ApiState>) -> Result<Response, JaegerError> {
    let engine = s.engine.clone();
    let tsdb = s.metric_reads.clone();
    let names = run_blocking(&s, "jaeger_services", move || {
        search::services(&engine, tsdb.as_ref(), now_unix_nano())
    })
    .await?;
    Ok(ok(names))
}

async fn service_operations(
    State(s): State<ApiState>,
    Path(service): Path<String>,
) -> Result<Response, JaegerError> {
    let engine = s.engine.clone();
    let ops = run_blocking(&s, "jaeger_operations", move || {
        search::operations(&engine, &service, None, false, now_unix_nano())
    })
    .await?;
    Ok(ok(ops.into_iter().map(|o| o.name).collect::<Vec<_>>()))
}

async fn operations(
    State(s): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, JaegerError> {
    let p = parse(raw)?;
    let service = p
        .get("service")
        .ok_or_else(|| {
            JaegerError::bad("service is required: /api/operations?service=<name>&spanKind=server")
        })?
        .to_string();
    let kind = match p.get("spanKind") {
        None => None,
        Some(k) => {
            let k = k.to_ascii_lowercase();
            if !search::SPAN_KINDS.contains(&k.as_str()) {
                return Err(JaegerError::bad(format!(
                    "spanKind '{k}' is not a span kind: use server, client, producer, consumer or internal (or leave it out)"
                )));
            }
            Some(k)
        }
    };
    let engine = s.engine.clone();
    let ops = run_blocking(&s, "jaeger_operations", move || {
        search::operations(&engine, &service, kind.as_deref(), true, now_unix_nano())
    })
    .await?;
    Ok(ok(ops))
}

/// The span filter, window and limit of `GET /api/traces`.
pub fn search_query(
    p: &Params,
    now_ns: u64,
    max_limit: usize,
) -> Result<(SpanFilter, TimeRange, usize), String> {
    let service = p.get("service").map(str::to_string);
    if service.is_none() && p.get("tags").is_none() && p.all("tag").next().is_none() {
        // Jaeger itself requires a service; tags alone are enough here (Skein indexes them).
        return Err(
            "service is required (or tags): /api/traces?service=<name>&limit=20; /api/services lists the services"
                .into(),
        );
    }
    let tags = params::parse_tags(p.get("tags"), p.all("tag"))?;
    let min_duration = params::duration_ns(p, "minDuration")?;
    let max_duration = params::duration_ns(p, "maxDuration")?;
    if let (Some(lo), Some(hi)) = (min_duration, max_duration)
        && lo > hi
    {
        return Err("minDuration is longer than maxDuration: no span could match".into());
    }
    let (start, end) = params::search_window(p, now_ns)?;
    let filter = SpanFilter {
        service,
        operation: p.get("operation").map(str::to_string),
        min_duration,
        max_duration,
        error: None,
        tags,
    };
    Ok((
        filter,
        TimeRange { start, end },
        params::limit(p, max_limit)?,
    ))
}

async fn traces(
    State(s): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, JaegerError> {
    let p = parse(raw)?;
    let (filter, range, limit) =
        search_query(&p, now_unix_nano(), s.engine.limits().max_limit).map_err(JaegerError::bad)?;
    let engine = s.engine.clone();
    let found = run_blocking(&s, "jaeger_traces", move || {
        search::find_traces(&engine, &filter, range, limit)
    })
    .await?;
    Ok(ok(found))
}

async fn trace(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Response, JaegerError> {
    // `start` and `end` (Grafana sends them when "trace ID time params" is on) are not
    // needed: a trace is found by its key in every split.
    let key = id.trim().to_string();
    if key.is_empty() {
        return Err(JaegerError::bad("the trace ID is empty"));
    }
    let engine = s.engine.clone();
    let k = key.clone();
    let found = run_blocking(&s, "jaeger_trace", move || {
        search::trace_by_key(&engine, &k)
    })
    .await?;
    match found {
        Some(t) => Ok(ok(vec![t])),
        None => Err(JaegerError::not_found(format!(
            "trace not found: no span carries '{key}' as its trace ID or a correlation key (request ID); check the ID, the time it was sent and the retention. Log lines alone are at /api/v1/traces/{key}"
        ))),
    }
}

async fn dependencies(
    State(s): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, JaegerError> {
    let p = parse(raw)?;
    let (start, end) = params::dependency_window(&p, now_ms()).map_err(JaegerError::bad)?;
    let tsdb = s.metric_reads.clone();
    let deps = run_blocking(&s, "jaeger_dependencies", move || {
        search::dependencies(tsdb.as_ref(), start, end)
    })
    .await?;
    Ok(ok(deps))
}
