//! The query API router (axum).
//!
//! Routes: `GET /api/v1/traces/{key}`, `GET /api/v1/logs`, `GET /api/v1/traces`, `GET /healthz`,
//! `GET /readyz`, `GET /metrics`. Every error is JSON `{"error", "message"}`; 5xx bodies do not
//! leak internals (those go to the log). Queries run on blocking threads with a time limit.

use crate::QueryError;
use crate::engine::{Engine, LogQuery, TraceQuery};
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use skein_model::api::ErrorBody;
use skein_model::time::{now_unix_nano, parse_duration, parse_time};
use skein_store::search::{LogFilter, SpanFilter, TimeRange};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Renders the process's metrics in Prometheus text format.
pub type MetricsFn = Arc<dyn Fn() -> String + Send + Sync>;
/// Records one query's latency under a route label.
pub type ObserveFn = Arc<dyn Fn(&'static str, f64) + Send + Sync>;

/// Shared state of the router.
#[derive(Clone)]
pub struct ApiState {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Required bearer token for `/api` and `/metrics`, if any.
    pub token: Option<Arc<str>>,
    /// Set once start-up (WAL replay) is done.
    pub ready: Arc<AtomicBool>,
    /// `/metrics` text.
    pub metrics: MetricsFn,
    /// Latency observer.
    pub observe: ObserveFn,
    /// Time limit of one query.
    pub timeout: Duration,
}

/// An API error answer.
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error: kind.into(),
                message: message.into(),
            },
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::BadRequest(m) => ApiError::bad(m),
            QueryError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            QueryError::Unavailable(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
            }
            QueryError::Internal(m) => {
                tracing::error!(error = %m, "query failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the query failed inside the collector; its log has the details",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

/// The router.
pub fn router(state: ApiState) -> Router {
    let protected = Router::new()
        .route("/api/v1/traces/{key}", get(trace))
        .route("/api/v1/traces", get(traces))
        .route("/api/v1/logs", get(logs))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .merge(protected)
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint; see /api/v1/logs, /api/v1/traces, /api/v1/traces/{key}",
            )
        })
        .with_state(state)
}

async fn auth(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    if let Some(token) = s.token.as_deref() {
        let ok = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .is_some_and(|t| {
                let (a, b) = (t.trim().as_bytes(), token.as_bytes());
                a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
            });
        if !ok {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong bearer token: send Authorization: Bearer <query token>",
            )
            .into_response();
        }
    }
    next.run(req).await
}

async fn readyz(State(s): State<ApiState>) -> Response {
    if s.ready.load(Ordering::Acquire) {
        axum::Json(serde_json::json!({"status": "ready"})).into_response()
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "starting: replaying the write-ahead log",
        )
        .into_response()
    }
}

async fn metrics(State(s): State<ApiState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        (s.metrics)(),
    )
        .into_response()
}

/// Runs a query on a blocking thread with the time limit, and records its latency.
async fn run<T, F>(s: &ApiState, route: &'static str, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&Engine) -> Result<T, QueryError> + Send + 'static,
    T: Send + 'static,
{
    let engine = s.engine.clone();
    let started = Instant::now();
    let task = tokio::task::spawn_blocking(move || f(&engine));
    let out = match tokio::time::timeout(s.timeout, task).await {
        Ok(Ok(r)) => r.map_err(ApiError::from),
        Ok(Err(e)) => Err(ApiError::from(QueryError::Internal(e.to_string()))),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the query ran longer than {:?}; narrow it with a time range, a service or a smaller limit",
                s.timeout
            ),
        )),
    };
    (s.observe)(route, started.elapsed().as_secs_f64());
    out
}

async fn trace(State(s): State<ApiState>, Path(key): Path<String>) -> Result<Response, ApiError> {
    let k = key.clone();
    let found = run(&s, "trace", move |e| e.trace(&k)).await?;
    match found {
        Some(t) => Ok(axum::Json(t).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no span or log carries the key '{key}' (a trace ID or a request ID); check the key, or the time it was sent and the retention"
            ),
        )),
    }
}

type Params = HashMap<String, String>;

fn param<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn time_range(p: &Params) -> Result<Option<TimeRange>, ApiError> {
    let now = now_unix_nano();
    let start = param(p, "start")
        .map(|t| parse_time(t, now).map_err(|e| ApiError::bad(format!("start: {e}"))))
        .transpose()?;
    let end = param(p, "end")
        .map(|t| parse_time(t, now).map_err(|e| ApiError::bad(format!("end: {e}"))))
        .transpose()?;
    if start.is_none() && end.is_none() {
        return Ok(None);
    }
    let r = TimeRange {
        start: start.unwrap_or(0),
        end: end.unwrap_or(u64::MAX),
    };
    if r.start > r.end {
        return Err(ApiError::bad("start is after end"));
    }
    Ok(Some(r))
}

fn limit(p: &Params, default: usize, max: usize) -> Result<usize, ApiError> {
    match param(p, "limit") {
        None => Ok(default.min(max)),
        Some(t) => match t.parse::<usize>() {
            Ok(0) => Err(ApiError::bad("limit must be at least 1")),
            Ok(n) if n > max => Err(ApiError::bad(format!(
                "limit {n} is over the maximum of {max} (query.max_limit); narrow the search instead"
            ))),
            Ok(n) => Ok(n),
            Err(_) => Err(ApiError::bad(format!("limit '{t}' is not a whole number"))),
        },
    }
}

async fn logs(
    State(s): State<ApiState>,
    Query(p): Query<Params>,
) -> Result<axum::Json<skein_model::api::LogsResponse>, ApiError> {
    let min_severity = param(&p, "severity")
        .map(|v| {
            skein_model::otlp::severity_number_of(v).ok_or_else(|| {
                ApiError::bad(format!(
                    "severity '{v}' is not a level: use trace, debug, info, warn, error or fatal (that level and above)"
                ))
            })
        })
        .transpose()?;
    let q = LogQuery {
        filter: LogFilter {
            text: param(&p, "q").map(str::to_string),
            service: param(&p, "service").map(str::to_string),
            min_severity,
        },
        range: time_range(&p)?,
        limit: limit(&p, 100, s.engine.limits().max_limit)?,
    };
    Ok(axum::Json(run(&s, "logs", move |e| e.logs(&q)).await?))
}

async fn traces(
    State(s): State<ApiState>,
    Query(p): Query<Params>,
) -> Result<axum::Json<skein_model::api::TracesResponse>, ApiError> {
    let dur = |name: &str| -> Result<Option<u64>, ApiError> {
        param(&p, name)
            .map(|v| {
                parse_duration(v)
                    .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                    .map_err(|e| ApiError::bad(format!("{name}: {e}")))
            })
            .transpose()
    };
    let error = match param(&p, "error") {
        None => None,
        Some("true") | Some("1") => Some(true),
        Some("false") | Some("0") => Some(false),
        Some(v) => return Err(ApiError::bad(format!("error '{v}' must be true or false"))),
    };
    let q = TraceQuery {
        filter: SpanFilter {
            service: param(&p, "service").map(str::to_string),
            operation: param(&p, "operation").map(str::to_string),
            min_duration: dur("min_duration")?,
            max_duration: dur("max_duration")?,
            error,
        },
        range: time_range(&p)?,
        limit: limit(&p, 20, s.engine.limits().max_limit)?,
    };
    Ok(axum::Json(run(&s, "traces", move |e| e.traces(&q)).await?))
}
