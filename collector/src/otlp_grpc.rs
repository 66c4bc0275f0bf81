//! OTLP/gRPC: the Logs, Trace and Metrics services (tonic), gzip and zstd.

use crate::ingest::IngestError;
use crate::sink::OtlpSink;
use skein_model::proto::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use skein_model::proto::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use skein_model::proto::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use skein_model::proto::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use skein_model::proto::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use skein_model::proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
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

    fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let Some(token) = self.token.as_deref() else {
            return Ok(());
        };
        let header = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if skein_query::api::bearer_matches(header, token) {
            Ok(())
        } else {
            Err(Status::unauthenticated(
                "missing or wrong bearer token: send authorization: Bearer <ingest token>",
            ))
        }
    }
}

impl<S: OtlpSink> GrpcIngest<S> {
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
        self.check(&request)?;
        let _permit = self.admit("logs")?;
        let req = request.into_inner();
        let n = prost::Message::encoded_len(&req);
        let a = self.ingest.logs(req, n).await.map_err(status)?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: (a.rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: i64::try_from(a.rejected).unwrap_or(i64::MAX),
                error_message: a.message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl<S: OtlpSink> TraceService for GrpcIngest<S> {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.check(&request)?;
        let _permit = self.admit("spans")?;
        let req = request.into_inner();
        let n = prost::Message::encoded_len(&req);
        let a = self.ingest.traces(req, n).await.map_err(status)?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: (a.rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: i64::try_from(a.rejected).unwrap_or(i64::MAX),
                error_message: a.message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl<S: OtlpSink> MetricsService for GrpcIngest<S> {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.check(&request)?;
        let _permit = self.admit("metrics")?;
        let req = request.into_inner();
        let n = prost::Message::encoded_len(&req);
        let a = self.ingest.metrics(req, n).await.map_err(status)?;
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: (a.rejected > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: i64::try_from(a.rejected).unwrap_or(i64::MAX),
                error_message: a.message,
            }),
        }))
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
