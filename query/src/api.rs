//! The query API router (axum).
//!
//! Routes: `GET /api/v1/traces/{key}`, `GET /api/v1/logs`, `GET /api/v1/traces`,
//! `GET /api/v1/agents`, `GET /api/v1/hosts`, the metrics, services and dependency routes of
//! [`crate::metrics::http`], `GET /healthz`,
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
use skein_model::auth::bearer_matches;
use skein_model::time::{now_unix_nano, parse_duration, parse_time};
use skein_store::agents::AgentRegistry;
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
    /// Time limit of one query, waiting for a place included; past it the query's work is
    /// stopped ([`skein_model::deadline`]) and the client gets 503.
    pub timeout: Duration,
    /// Places for queries running at once (`query.max_concurrent`); a query waits for one
    /// within its time limit.
    pub slots: Arc<tokio::sync::Semaphore>,
    /// Agents and their heartbeats.
    pub agents: AgentRegistry,
    /// The metrics store's reads: the store itself on one node, every node's in a cluster.
    pub metric_reads: std::sync::Arc<dyn crate::metric_reads::MetricReads>,
    /// Which attribute names carry correlation keys (the collector's `[correlation]`), so
    /// LogQL label filters on them are answered from the key index.
    pub keys: Arc<skein_model::keys::KeyExtractor>,
}

/// An API error answer.
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error: kind.into(),
                message: message.into(),
            },
        }
    }

    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// The status, the kind and the message (the Prometheus routes answer in their own shape).
    pub(crate) fn parts(&self) -> (StatusCode, &str, &str) {
        (self.status, &self.body.error, &self.body.message)
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
    build(state, None)
}

/// The router with more routes (the collector's alert routes) behind the same bearer token.
/// `extra` must hold at least one route.
pub fn router_with(state: ApiState, extra: Router) -> Router {
    build(state, Some(extra))
}

fn build(state: ApiState, extra: Option<Router>) -> Router {
    let extra = extra.map(|e| e.route_layer(middleware::from_fn_with_state(state.clone(), auth)));
    let protected = Router::new()
        .route("/api/v1/traces/{key}", get(trace))
        .route("/api/v1/traces", get(traces))
        .route("/api/v1/logs", get(logs))
        .route("/api/v1/logs/tail", get(crate::live::tail))
        .route("/api/v1/logs/context", get(context))
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/hosts", get(hosts))
        .merge(crate::metrics::http::routes())
        .merge(crate::prom_api::routes())
        .merge(crate::loki::routes())
        .merge(crate::jaeger::routes())
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    let app = Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        // Prometheus's own health routes and its root, which Prometheus clients probe
        // (prometheus-api-client's connection check asks for `/`).
        .route(
            "/-/healthy",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/-/ready", get(readyz))
        .route(
            "/",
            get(|| async {
                axum::Json(serde_json::json!({
                    "status": "ok",
                    "service": "skein query API",
                    "see": ["/api/v1/query", "/api/v1/traces", "/api/v1/logs", "/healthz"],
                }))
            }),
        )
        .merge(protected)
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint; see /api/v1/logs, /api/v1/traces, /api/v1/traces/{key}, /api/v1/services, /api/v1/dependencies, /api/v1/metrics/query, /api/v1/metrics/names, /api/v1/hosts, /api/v1/agents, /api/v1/alerts, /api/v1/rules, /api/v1/silences",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method; searches take GET, silences also POST and DELETE",
            )
        })
        .with_state(state);
    let app = match extra {
        Some(e) => app.merge(e),
        None => app,
    };
    app.layer(middleware::from_fn(crate::partial::mark))
}

async fn auth(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    if let Some(token) = s.token.as_deref() {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !bearer_matches(header, token) {
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
            "starting: replaying the write-ahead log (in a cluster: catching up the partitions this node owns)",
        )
        .into_response()
    }
}

async fn agents(State(s): State<ApiState>) -> Response {
    axum::Json(s.agents.list()).into_response()
}

async fn hosts(State(s): State<ApiState>) -> Response {
    axum::Json(s.agents.hosts()).into_response()
}

async fn metrics(State(s): State<ApiState>) -> Response {
    (
        [(header::CONTENT_TYPE, skein_telemetry::CONTENT_TYPE)],
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
    run_blocking(s, route, move || f(&engine)).await
}

/// Runs `f` on a blocking thread with the query time limit, and records its latency under
/// `route`. For every handler whose work reads the disk or decodes much.
pub(crate) async fn run_blocking<T, F>(
    s: &ApiState,
    route: &'static str,
    f: F,
) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, QueryError> + Send + 'static,
    T: Send + 'static,
{
    let started = Instant::now();
    let deadline = started + s.timeout;
    let timed_out = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the query ran longer than {:?} and was stopped; narrow it with a time range, a service or a smaller limit",
                s.timeout
            ),
        )
    };
    let out = match tokio::time::timeout_at(deadline.into(), s.slots.clone().acquire_owned()).await
    {
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "every place for queries (query.max_concurrent) stayed taken for {:?}; retry shortly",
                s.timeout
            ),
        )),
        Ok(Err(_)) => Err(ApiError::from(QueryError::Internal(
            "the query limiter was closed".into(),
        ))),
        Ok(Ok(permit)) => {
            // The blocking work keeps its place until it returns, which it does soon after
            // the deadline: the store's read loops stop there.
            let task = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                crate::partial::take_missing();
                let r = skein_model::deadline::with_deadline(deadline, f);
                (r, crate::partial::take_missing())
            });
            match tokio::time::timeout_at(deadline.into(), task).await {
                Ok(Ok((r, missing))) => {
                    crate::partial::report(missing);
                    r.map_err(ApiError::from)
                }
                Ok(Err(e)) => Err(ApiError::from(QueryError::Internal(e.to_string()))),
                Err(_) => Err(timed_out()),
            }
        }
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
            host: None,
        },
        range: time_range(&p)?,
        limit: limit(&p, 100, s.engine.limits().max_limit)?,
    };
    Ok(axum::Json(run(&s, "logs", move |e| e.logs(&q)).await?))
}

/// Most lines on each side of `GET /api/v1/logs/context`.
pub const MAX_CONTEXT: usize = 500;

async fn context(
    State(s): State<ApiState>,
    Query(p): Query<Params>,
) -> Result<axum::Json<skein_model::api::LogContextResponse>, ApiError> {
    let service = param(&p, "service").ok_or_else(|| {
        ApiError::bad("service is required: the service of the line whose context you want")
    })?;
    let time = param(&p, "time").ok_or_else(|| {
        ApiError::bad("time is required: the line's time_unix_nano (or RFC 3339)")
    })?;
    let time =
        parse_time(time, now_unix_nano()).map_err(|e| ApiError::bad(format!("time: {e}")))?;
    let count = |name: &str| -> Result<usize, ApiError> {
        match param(&p, name) {
            None => Ok(10),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n <= MAX_CONTEXT => Ok(n),
                _ => Err(ApiError::bad(format!(
                    "{name} '{v}' must be a whole number from 0 to {MAX_CONTEXT}"
                ))),
            },
        }
    };
    let (before, after) = (count("before")?, count("after")?);
    let filter = LogFilter {
        text: None,
        service: Some(service.to_string()),
        min_severity: None,
        host: param(&p, "host").map(str::to_string),
    };
    Ok(axum::Json(
        run(&s, "logs_context", move |e| {
            e.logs_around(&filter, time, before, after)
        })
        .await?,
    ))
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
            tags: Vec::new(),
        },
        range: time_range(&p)?,
        limit: limit(&p, 20, s.engine.limits().max_limit)?,
    };
    Ok(axum::Json(run(&s, "traces", move |e| e.traces(&q)).await?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::engine::QueryLimits;
    use axum::body::Body;
    use axum::http::Request as HttpRequest;
    use http_body_util::BodyExt;
    use skein_model::{LogRecord, Span};
    use skein_store::{Logs, Spans, SplitConfig, SplitStore};
    use tower::ServiceExt;

    fn cfg() -> SplitConfig {
        SplitConfig::small()
    }

    /// A router over real (temporary) indexes holding one trace: a root span with a request
    /// ID, a child span, and a log that carries only the request ID.
    fn app(token: Option<&str>) -> (Router, tempfile::TempDir) {
        let (state, dir) = state(token);
        let extra = Router::new().route("/api/v1/extra", get(|| async { "extra" }));
        (router_with(state, extra), dir)
    }

    /// The state behind [`app`].
    fn state(token: Option<&str>) -> (ApiState, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut logs = SplitStore::<Logs>::open(dir.path(), cfg()).unwrap();
        let mut spans = SplitStore::<Spans>::open(dir.path(), cfg()).unwrap();
        let t = "0af7651916cd43dd8448eb211c80319c".to_string();
        let span = |id: &str, parent: &str, start: u64, keys: Vec<String>| Span {
            trace_id: t.clone(),
            span_id: id.into(),
            parent_span_id: parent.into(),
            service: "gateway".into(),
            name: format!("op-{id}"),
            start_unix_nano: start,
            end_unix_nano: start + 100,
            duration_ns: 100,
            status_code: "unset".into(),
            keys,
            ..Default::default()
        };
        spans
            .add(&[
                span("bbbbbbbbbbbbbbbb", "aaaaaaaaaaaaaaaa", 20, vec![t.clone()]),
                span("aaaaaaaaaaaaaaaa", "", 10, vec![t.clone(), "req-1".into()]),
            ])
            .unwrap();
        logs.add(&[LogRecord {
            time_unix_nano: 30,
            service: "payment".into(),
            body: "declined by bank".into(),
            keys: vec!["req-1".into()],
            ..Default::default()
        }])
        .unwrap();
        logs.commit(1).unwrap();
        spans.commit(1).unwrap();
        let engine = Engine::new(
            logs.split_list(),
            logs.fields().clone(),
            spans.split_list(),
            spans.fields().clone(),
            QueryLimits::default(),
        );
        let state = ApiState {
            engine: Arc::new(engine),
            token: token.map(Arc::from),
            ready: Arc::new(AtomicBool::new(true)),
            metrics: Arc::new(|| "skein_up 1\n".to_string()),
            observe: Arc::new(|_, _| {}),
            timeout: Duration::from_secs(5),
            slots: Arc::new(tokio::sync::Semaphore::new(4)),
            agents: AgentRegistry::in_memory(Duration::from_secs(15)),
            metric_reads: Arc::new(
                skein_store::tsdb::Tsdb::open(skein_store::tsdb::TsdbConfig {
                    dir: dir.path().join("tsdb"),
                    ..Default::default()
                })
                .unwrap(),
            ),
            keys: Arc::new(skein_model::keys::KeyExtractor::new(&Default::default())),
        };
        (state, dir)
    }

    async fn call(
        app: &Router,
        method: &str,
        uri: &str,
        auth: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = HttpRequest::builder().method(method).uri(uri);
        if let Some(a) = auth {
            req = req.header("authorization", format!("Bearer {a}"));
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, v)
    }

    #[tokio::test]
    async fn trace_by_request_id_joins_the_log_and_orders_spans() {
        let (app, _dir) = app(None);
        let (status, v) = call(&app, "GET", "/api/v1/traces/req-1", None).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["trace_id"], "0af7651916cd43dd8448eb211c80319c");
        let ids: Vec<&str> = v["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["span_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"]);
        assert_eq!(v["logs"][0]["body"], "declined by bank");
        assert_eq!(v["services"], serde_json::json!(["gateway", "payment"]));
    }

    #[tokio::test]
    async fn errors_are_json_with_the_right_status() {
        let (app, _dir) = app(None);
        let (s, v) = call(&app, "GET", "/api/v1/traces/nope", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(v["error"], "not_found");
        let (s, v) = call(&app, "GET", "/api/v1/logs?q=service:(", None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(v["message"].as_str().unwrap().contains("cannot read query"));
        let (s, v) = call(&app, "GET", "/api/v1/logs?start=someday", None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, v) = call(&app, "POST", "/api/v1/logs", None).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(v["error"], "method_not_allowed");
        let (s, _) = call(&app, "GET", "/nowhere", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn query_token_guards_the_api_but_not_health() {
        let (app, _dir) = app(Some("q-token"));
        let (s, v) = call(&app, "GET", "/api/v1/logs", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(v["error"], "unauthorized");
        let (s, _) = call(&app, "GET", "/api/v1/logs", Some("wrong")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, v) = call(&app, "GET", "/api/v1/logs?q=declined", Some("q-token")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["logs"].as_array().unwrap().len(), 1);
        let (s, _) = call(&app, "GET", "/healthz", None).await;
        assert_eq!(s, StatusCode::OK);
        // Routes added by the collector (alerts) sit behind the same token.
        let (s, _) = call(&app, "GET", "/api/v1/extra", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn trace_search_summarizes() {
        let (app, _dir) = app(None);
        let (s, v) = call(
            &app,
            "GET",
            "/api/v1/traces?service=gateway&min_duration=50ns",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let t = &v["traces"][0];
        assert_eq!(t["span_count"], 2);
        assert_eq!(t["root_name"], "op-aaaaaaaaaaaaaaaa");
        let (s, v) = call(&app, "GET", "/api/v1/traces?min_duration=1h", None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(v["traces"].as_array().unwrap().is_empty());
    }

    #[test]
    fn a_query_past_its_deadline_stops_in_the_store() {
        let (s, _dir) = state(None);
        assert!(matches!(s.engine.trace("req-1"), Ok(Some(_))));
        let past = Instant::now();
        let stopped = skein_model::deadline::with_deadline(past, || s.engine.trace("req-1"));
        assert!(
            matches!(stopped, Err(QueryError::Unavailable(_))),
            "{stopped:?}"
        );
        let stopped = skein_model::deadline::with_deadline(past, || {
            s.engine.logs(&crate::engine::LogQuery {
                filter: LogFilter::default(),
                range: None,
                limit: 10,
            })
        });
        assert!(matches!(stopped, Err(QueryError::Unavailable(_))));
    }

    #[tokio::test]
    async fn queries_wait_for_a_place_and_a_timed_out_one_gives_its_place_back() {
        let (mut s, _dir) = state(None);
        s.slots = Arc::new(tokio::sync::Semaphore::new(1));
        s.timeout = Duration::from_millis(300);
        let app = router(s.clone());

        // Every place taken: 503 busy, with Retry-After.
        let held = s.slots.clone().acquire_owned().await.unwrap();
        let (status, body) = call(&app, "GET", "/api/v1/traces/req-1", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"], "busy", "{body}");
        drop(held);
        assert_eq!(
            call(&app, "GET", "/api/v1/traces/req-1", None).await.0,
            StatusCode::OK
        );

        // Work that runs until its deadline: the client gets 503 at the deadline and the work
        // stops there, so the only place is free again for the next query.
        let r = run_blocking(&s, "test", || {
            loop {
                if skein_model::deadline::expired() {
                    return Err::<(), _>(QueryError::Unavailable("stopped".into()));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .await;
        assert!(r.is_err());
        let (status, body) = call(&app, "GET", "/api/v1/traces/req-1", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}
