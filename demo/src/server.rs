//! What every service shares: the server span middleware, health and fault endpoints,
//! JSON errors, and the run loop from bound listener to flushed shutdown.

use crate::client::Peers;
use crate::fault::{Fault, FaultCell};
use crate::log_file::{LogFile, MAX_LOG_BYTES};
use crate::telemetry::Telemetry;
use crate::{DemoError, ServiceConfig, ServiceName, propagation, request_id, services};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;
use tracing::instrument::WithSubscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Largest request or response body a service takes, in bytes (64 KiB).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler of a service can reach.
pub(crate) struct Common {
    /// Which service this is.
    pub(crate) name: ServiceName,
    /// The subscriber all of the service's work runs under.
    pub(crate) dispatch: tracing::Dispatch,
    /// The fault in force.
    pub(crate) fault: FaultCell,
    /// The client for calls to other services.
    pub(crate) peers: Peers,
}

/// The request ID of the request being handled (a request extension).
#[derive(Clone, Debug)]
pub(crate) struct RequestId(pub(crate) String);

/// Serves `cfg.name` on an already bound listener until `shutdown` completes.
pub(crate) async fn serve(
    cfg: ServiceConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), DemoError> {
    let bound = listener.local_addr().map_err(DemoError::Serve)?;
    let log = LogFile::open(&cfg.log_file, MAX_LOG_BYTES)?;
    let peers = Peers::new(cfg.addresses.clone())?;
    let telemetry = Telemetry::start(&cfg, log)?;
    let common = Arc::new(Common {
        name: cfg.name,
        dispatch: telemetry.dispatch.clone(),
        fault: FaultCell::default(),
        peers,
    });
    let built = services::build(common.clone());
    let app = built
        .router
        .route_layer(from_fn_with_state(common.clone(), observe))
        .merge(admin_routes(common.clone()))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    let service = cfg.name.as_str();
    tracing::dispatcher::with_default(&common.dispatch, || {
        tracing::info!(service, address = %bound, "service started");
    });
    on_ready(bound);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    for task in built.tasks {
        task.abort();
    }
    tracing::dispatcher::with_default(&common.dispatch, || match &served {
        Ok(()) => tracing::info!(service, "service stopped"),
        Err(e) => tracing::error!(service, error = %e, "service stopped with an error"),
    });
    drop(common);
    telemetry.shutdown().await;
    served.map_err(DemoError::Serve)
}

/// `GET /healthz` and `GET`/`POST /admin/fault`: no spans, no log lines.
fn admin_routes(common: Arc<Common>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/admin/fault", get(get_fault).post(post_fault))
        .with_state(common)
}

async fn get_fault(State(common): State<Arc<Common>>) -> Json<Fault> {
    Json(common.fault.get())
}

async fn post_fault(State(common): State<Arc<Common>>, body: Bytes) -> Response {
    let fault: Fault = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body must be a fault like {{\"delay_ms\": 0, \"error_rate\": 0.5}}: {e}"
                ),
            );
        }
    };
    if let Err(message) = fault.validate() {
        return json_error(StatusCode::BAD_REQUEST, message);
    }
    common.fault.set(fault);
    Json(fault).into_response()
}

/// A JSON error answer: `{"error": message}`.
pub(crate) fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() });
    (status, Json(body)).into_response()
}

/// An answer with a JSON body that is already serialized (passed on from a peer).
pub(crate) fn raw_json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The server span middleware: runs the request under the service's subscriber and a span
/// `"{METHOD} {route}"` whose parent is the incoming `traceparent`; sets the request ID on
/// the span, the request and the response; logs one line when the answer is ready.
async fn observe(State(common): State<Arc<Common>>, req: Request, next: Next) -> Response {
    let dispatch = common.dispatch.clone();
    observed(req, next).with_subscriber(dispatch).await
}

async fn observed(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    let rid = request_id::from_headers(req.headers()).unwrap_or_else(request_id::generate);
    let name = format!("{method} {route}");
    let span = tracing::info_span!(
        "server",
        otel.name = %name,
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = Empty,
        otel.status_code = Empty,
        request_id = %rid,
    );
    let _ = span.set_parent(propagation::extract(req.headers()));
    req.extensions_mut().insert(RequestId(rid.clone()));
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let code = status.as_u16();
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::error!(route = %name, status = code, duration_ms, "request failed");
        } else if status.is_client_error() {
            tracing::warn!(route = %name, status = code, duration_ms, "request refused");
        } else {
            tracing::info!(route = %name, status = code, duration_ms, "request done");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert(request_id::HEADER, v);
    }
    resp
}
