//! [`OtlpSink`]: where the OTLP transports (HTTP in [`crate::otlp_http`], gRPC in
//! [`crate::otlp_grpc`]) hand decoded export requests. The collector's sink is [`Ingest`]
//! (WAL, then index); the agent's local receiver implements it over its disk buffer, so both
//! share one implementation of the OTLP wire rules.

use crate::ingest::{Accepted, Ingest, IngestError};
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use skein_model::proto::collector::trace::v1::ExportTraceServiceRequest;
use std::future::Future;

/// A destination for decoded OTLP export requests.
pub trait OtlpSink: Clone + Send + Sync + 'static {
    /// A place for one more request (`signal` is `logs`, `spans` or `metrics`), or None when
    /// too many are in flight: the transport answers 503 / UNAVAILABLE. Hold it until the
    /// answer is sent.
    fn admit(&self, signal: &'static str) -> Option<tokio::sync::OwnedSemaphorePermit>;
    /// Counts a request whose body could not be decoded.
    fn bad_request(&self, signal: &'static str);
    /// Takes a logs export; `wire_bytes` is the decoded body size.
    fn logs(
        &self,
        req: ExportLogsServiceRequest,
        wire_bytes: usize,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send;
    /// Takes a traces export.
    fn traces(
        &self,
        req: ExportTraceServiceRequest,
        wire_bytes: usize,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send;
    /// Takes a metrics export.
    fn metrics(
        &self,
        req: ExportMetricsServiceRequest,
        wire_bytes: usize,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send;
}

impl OtlpSink for Ingest {
    fn admit(&self, signal: &'static str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Ingest::admit(self, signal)
    }
    fn bad_request(&self, signal: &'static str) {
        self.telemetry().ingest_error(signal, "bad_request");
    }
    fn logs(
        &self,
        req: ExportLogsServiceRequest,
        wire_bytes: usize,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        Ingest::logs(self, req, wire_bytes)
    }
    fn traces(
        &self,
        req: ExportTraceServiceRequest,
        wire_bytes: usize,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        Ingest::traces(self, req, wire_bytes)
    }
    fn metrics(
        &self,
        req: ExportMetricsServiceRequest,
        wire_bytes: usize,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        Ingest::metrics(self, req, wire_bytes)
    }
}
