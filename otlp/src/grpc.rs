//! OTLP/gRPC: the Logs, Trace and Metrics services (tonic), gzip and zstd.

use crate::auth::check_grpc;
use crate::sink::{IngestError, Logs, Metrics, OtlpSink, Signal, Traces};
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use skein_model::proto::collector::logs::v1::ExportLogsServiceResponse;
use skein_model::proto::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use skein_model::proto::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use skein_model::proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use skein_model::proto::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use skein_model::proto::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::sync::Arc;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

/// The gRPC services' shared state.
#[derive(Clone)]
pub struct GrpcIngest<S> {
    ingest: S,
    token: Option<Arc<str>>,
}

impl<S: OtlpSink> GrpcIngest<S> {
    /// Wraps the sink.
    pub fn new(ingest: S, token: Option<Arc<str>>) -> Self {
        GrpcIngest { ingest, token }
    }

    /// One handler for every signal: token, admission, the sink, the answer.
    async fn handle<G: Signal>(
        &self,
        request: Request<G::Request>,
    ) -> Result<Response<G::Response>, Status> {
        check_grpc(&request, self.token.as_deref())?;
        let _permit = self.admit(G::NAME)?;
        let req = request.into_inner();
        let n = prost::Message::encoded_len(&req);
        let accepted = G::export(&self.ingest, req, n).await.map_err(status)?;
        Ok(Response::new(G::response(accepted)))
    }

    fn admit(&self, signal: &'static str) -> Result<tokio::sync::OwnedSemaphorePermit, Status> {
        self.ingest.admit(signal).ok_or_else(|| {
            Status::unavailable(
                "too many requests in flight (limits.max_inflight_requests); retry later",
            )
        })
    }
}

fn status(e: IngestError) -> Status {
    match e {
        IngestError::BadRequest(m) => Status::invalid_argument(m),
        IngestError::Unavailable(m) => Status::unavailable(m),
        IngestError::Internal(m) => Status::unavailable(format!("{m}; retry later")),
    }
}

#[tonic::async_trait]
impl<S: OtlpSink> LogsService for GrpcIngest<S> {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.handle::<Logs>(request).await
    }
}

#[tonic::async_trait]
impl<S: OtlpSink> TraceService for GrpcIngest<S> {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.handle::<Traces>(request).await
    }
}

#[tonic::async_trait]
impl<S: OtlpSink> MetricsService for GrpcIngest<S> {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.handle::<Metrics>(request).await
    }
}

/// The three OTLP gRPC services over one sink.
pub type Services<S> = (
    LogsServiceServer<GrpcIngest<S>>,
    TraceServiceServer<GrpcIngest<S>>,
    MetricsServiceServer<GrpcIngest<S>>,
);

/// The three services, with compression and the message size limit set.
pub fn services<S: OtlpSink>(svc: GrpcIngest<S>, max_message: usize) -> Services<S> {
    let logs = LogsServiceServer::new(svc.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(max_message);
    let traces = TraceServiceServer::new(svc.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(max_message);
    let metrics = MetricsServiceServer::new(svc)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(max_message);
    (logs, traces, metrics)
}
