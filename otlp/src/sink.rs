//! [`OtlpSink`]: where the OTLP transports (HTTP in [`crate::http`], gRPC in [`crate::grpc`])
//! hand decoded export requests. The collector's sink writes to its WAL, then its index; the
//! agent's local receiver writes to its disk buffer. Both share one implementation of the OTLP
//! wire rules through this trait.
//!
//! [`Signal`] names what differs between logs, traces and metrics (request and response types,
//! which sink method takes them, how partial success is spelled), so each transport has one
//! handler for all three.

use skein_model::prompb::WriteRequest;
use skein_model::proto::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use skein_model::proto::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use skein_model::proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::future::Future;

/// What an accepted request gets back: how many records were rejected and why.
#[derive(Debug, Clone, Default)]
pub struct Accepted {
    /// Records rejected inside the request (OTLP partial success).
    pub rejected: u64,
    /// The first rejection reason.
    pub message: String,
}

/// What the transport knows of a request besides its records.
#[derive(Debug, Clone, Default)]
pub struct ExportMeta {
    /// The decoded body size, for counters.
    pub wire_bytes: usize,
    /// The sender's batch identity ([`skein_model::batch_id`]), when it gave one: a sink that
    /// keeps ids stores a batch once however often it is retried.
    pub batch_id: Option<skein_model::batch_id::BatchId>,
}

/// Why a request was refused as a whole. Transport-neutral: only the transports map it to
/// status codes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// The request is malformed or every record in it is invalid. Not retryable.
    #[error("{0}")]
    BadRequest(String),
    /// The request can never be taken as it is (it would not fit a limit such as the WAL's
    /// record size); send it in smaller pieces. Not retryable as it is.
    #[error("{0}")]
    TooLarge(String),
    /// The sink cannot take it now. Retryable.
    #[error("{0}")]
    Unavailable(String),
    /// Something inside failed. Retryable.
    #[error("{0}")]
    Internal(String),
}

/// A destination for decoded OTLP export requests.
pub trait OtlpSink: Clone + Send + Sync + 'static {
    /// A place for one more request (`signal` is `logs`, `spans` or `metrics`), or why there
    /// is none now (too many in flight, over the memory limit): the transport answers 503 /
    /// UNAVAILABLE with that message and a retry hint. Hold it until the answer is sent.
    fn admit(&self, signal: &'static str) -> Result<tokio::sync::OwnedSemaphorePermit, String>;
    /// Counts a request whose body could not be decoded.
    fn bad_request(&self, signal: &'static str);
    /// Counts a request refused before decoding (malformed, too large, over the memory
    /// budget). The default counts malformed ones as bad requests.
    fn refused(&self, signal: &'static str, why: &crate::admission::Refusal) {
        if matches!(why, crate::admission::Refusal::Malformed(_)) {
            self.bad_request(signal);
        }
    }
    /// Takes a logs export.
    fn logs(
        &self,
        req: ExportLogsServiceRequest,
        meta: ExportMeta,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send;
    /// Takes a traces export.
    fn traces(
        &self,
        req: ExportTraceServiceRequest,
        meta: ExportMeta,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send;
    /// Takes a metrics export.
    fn metrics(
        &self,
        req: ExportMetricsServiceRequest,
        meta: ExportMeta,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send;
    /// Whether this sink takes Prometheus remote write: the OTLP/HTTP router serves
    /// `POST /api/v1/write` ([`crate::remote_write`]) only when it does. Default: no (the
    /// agent's receiver forwards OTLP only).
    fn takes_remote_write(&self) -> bool {
        false
    }
    /// Whether the OTLP/HTTP router serves Loki's push API (`POST /loki/api/v1/push`,
    /// [`crate::loki_push`]), whose pushes arrive as logs exports through
    /// [`OtlpSink::logs`]. Default: no (the agent's receiver takes OTLP only).
    fn takes_loki_push(&self) -> bool {
        false
    }
    /// Takes a decoded Prometheus remote-write request (counted as signal `metrics`). The
    /// default refuses it; a sink that answers [`OtlpSink::takes_remote_write`] with true
    /// overrides this.
    fn remote_write(
        &self,
        req: WriteRequest,
        meta: ExportMeta,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        let _ = (req, meta);
        std::future::ready(Err(IngestError::BadRequest(
            "this receiver does not take Prometheus remote write".into(),
        )))
    }
}

/// One OTLP signal as the transports see it.
pub trait Signal: Send + Sync + 'static {
    /// The name used in counters, admission and errors: `logs`, `spans` or `metrics`.
    const NAME: &'static str;
    /// The gRPC service that takes it, as in its path (`/<service>/Export`).
    const GRPC_SERVICE: &'static str;
    /// The export request.
    type Request: prost::Message + Default + serde::de::DeserializeOwned + Send + 'static;
    /// The export response.
    type Response: prost::Message + serde::Serialize + Send + 'static;
    /// Hands a decoded request to the sink method for this signal.
    fn export<S: OtlpSink>(
        sink: &S,
        req: Self::Request,
        meta: ExportMeta,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send;
    /// The response for an accepted request: partial success only when records were rejected.
    fn response(accepted: Accepted) -> Self::Response;
    /// What a protobuf body of this signal costs to handle, measured before decoding.
    fn wire_cost(body: &[u8]) -> Result<crate::admission::Cost, String> {
        crate::admission::records_cost(body)
    }
}

fn rejected(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Log records (`/v1/logs`, `LogsService`).
pub struct Logs;
/// Spans (`/v1/traces`, `TraceService`).
pub struct Traces;
/// Metric data points (`/v1/metrics`, `MetricsService`).
pub struct Metrics;

impl Signal for Logs {
    const NAME: &'static str = "logs";
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    type Request = ExportLogsServiceRequest;
    type Response = ExportLogsServiceResponse;
    fn export<S: OtlpSink>(
        sink: &S,
        req: Self::Request,
        meta: ExportMeta,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        sink.logs(req, meta)
    }
    fn response(a: Accepted) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: (a.rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected(a.rejected),
                error_message: a.message,
            }),
        }
    }
}

impl Signal for Traces {
    const NAME: &'static str = "spans";
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    type Request = ExportTraceServiceRequest;
    type Response = ExportTraceServiceResponse;
    fn export<S: OtlpSink>(
        sink: &S,
        req: Self::Request,
        meta: ExportMeta,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        sink.traces(req, meta)
    }
    fn response(a: Accepted) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: (a.rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected(a.rejected),
                error_message: a.message,
            }),
        }
    }
}

impl Signal for Metrics {
    const NAME: &'static str = "metrics";
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    type Request = ExportMetricsServiceRequest;
    type Response = ExportMetricsServiceResponse;
    fn export<S: OtlpSink>(
        sink: &S,
        req: Self::Request,
        meta: ExportMeta,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        sink.metrics(req, meta)
    }
    fn wire_cost(body: &[u8]) -> Result<crate::admission::Cost, String> {
        crate::admission::metrics_cost(body)
    }
    fn response(a: Accepted) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: (a.rejected > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: rejected(a.rejected),
                error_message: a.message,
            }),
        }
    }
}
