//! Skein's OTLP transports: OTLP/HTTP ([`http`]: protobuf or JSON, gzip or zstd) and OTLP/gRPC
//! ([`grpc`]: tonic, gzip or zstd) over one [`OtlpSink`], and Prometheus remote write 1.0
//! ([`remote_write`]) and Loki's push API ([`loki_push`], mapped to OTLP logs) on the
//! OTLP/HTTP listener for a sink that takes them (the collector's).
//!
//! The collector's sink writes to its WAL and index; the agent's local receiver writes to its
//! disk buffer. Both call [`serve`], so they accept exactly the same wire forms, apply the same
//! limits and give the same errors. Each transport has one handler for all three signals
//! ([`Signal`]), and the ingest token is checked the same way on both ([`auth`]).
//!
//! The trade-off: the sink sees decoded protobuf messages, not records, so the transports stay
//! free of the model's validation and of any storage; the price is one decode per request
//! before the sink can refuse it.

pub mod admission;
pub mod auth;
pub mod grpc;
pub mod http;
pub mod loki_push;
pub mod remote_write;
pub mod sink;

pub use admission::{Admission, AdmissionLimits};
pub use sink::{Accepted, ExportMeta, IngestError, Logs, Metrics, OtlpSink, Signal, Traces};
/// The TLS set-up the listeners are built with, for the collector and the agent.
pub use skein_tls as tls;

use skein_tls::server::Listener;
use std::sync::Arc;
use tokio::sync::watch;

/// What [`serve`] needs besides the sink and the listeners.
#[derive(Clone)]
pub struct ServeConfig {
    /// Largest request body or gRPC message, compressed or not, in bytes.
    pub max_body: usize,
    /// Required bearer token, if any.
    pub token: Option<Arc<str>>,
    /// Records per request and the memory budget of requests in flight, shared by both
    /// transports.
    pub admission: AdmissionLimits,
    /// More routes on the OTLP/HTTP listener (the collector's heartbeat route), behind their
    /// own checks.
    pub extra_http: axum::Router,
}

/// A transport that stopped with an error: which, and why.
#[derive(Debug, thiserror::Error)]
#[error("{transport} server: {message}")]
pub struct ServeError {
    /// `otlp_http` or `otlp_grpc`.
    pub transport: &'static str,
    /// The cause.
    pub message: String,
}

/// Serves OTLP/HTTP on `http` and OTLP/gRPC on `grpc` over `sink` until `stop` turns true.
/// Each listener is plain TCP or TLS ([`skein_tls::server::Listener`]). Both stop accepting at
/// once and finish the requests in flight before this returns.
pub async fn serve<S: OtlpSink>(
    sink: S,
    http: Listener,
    grpc: Listener,
    cfg: ServeConfig,
    stop: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let wait = |rx: &watch::Receiver<bool>| {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    };
    let admission = Admission::new(cfg.admission);
    let app = http::router(http::HttpState {
        sink: sink.clone(),
        max_body: cfg.max_body,
        token: cfg.token.clone(),
        admission: admission.clone(),
    })
    .merge(cfg.extra_http);
    let (logs, traces, metrics) = grpc::services(
        grpc::GrpcIngest::new(sink, cfg.token, admission),
        cfg.max_body,
    );
    let grpc_app = tonic::service::Routes::new(logs)
        .add_service(traces)
        .add_service(metrics)
        .into_axum_router();
    let (h, g) = tokio::join!(
        async {
            skein_tls::serve::serve(http, app, wait(&stop))
                .await
                .map_err(|e| ServeError {
                    transport: "otlp_http",
                    message: e.to_string(),
                })
        },
        async {
            skein_tls::serve::serve(grpc, grpc_app, wait(&stop))
                .await
                .map_err(|e| ServeError {
                    transport: "otlp_grpc",
                    message: e.to_string(),
                })
        }
    );
    h.and(g)
}
