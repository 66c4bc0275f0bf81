//! Transport-neutral ingest: an OTLP export request in, a durable batch out.
//!
//! HTTP and gRPC both decode their request and call [`Ingest`]; it converts to model records
//! (off the async reactor), writes the batch to the WAL and answers with the OTLP partial
//! success counts. Only the transports map [`IngestError`] to status codes.

use crate::pipeline::{Batch, WriteError, Writer};
use crate::telemetry::Telemetry;
use skein_model::keys::KeyExtractor;
use skein_model::otlp::{logs_from_otlp, metric_points, spans_from_otlp};
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use skein_model::proto::collector::trace::v1::ExportTraceServiceRequest;
use skein_model::{Limits, Rejection};
use skein_store::wal::{Entry, Wal};
use std::sync::{Arc, Mutex};

/// What an accepted request gets back: how many records were rejected and why.
#[derive(Debug, Clone, Default)]
pub struct Accepted {
    /// Records rejected inside the request (OTLP partial success).
    pub rejected: u64,
    /// The first rejection reason.
    pub message: String,
}

/// Why a request was refused as a whole.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// The request is malformed or every record in it is invalid. Not retryable.
    #[error("{0}")]
    BadRequest(String),
    /// The collector cannot take it now. Retryable.
    #[error("{0}")]
    Unavailable(String),
    /// Something inside failed. Retryable.
    #[error("{0}")]
    Internal(String),
}

impl From<WriteError> for IngestError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Failed => IngestError::Internal(e.to_string()),
            _ => IngestError::Unavailable(e.to_string()),
        }
    }
}

/// Shared by every ingest handler.
#[derive(Clone)]
pub struct Ingest {
    /// Requests being handled at once; bounds the memory of bodies in flight
    /// (`limits.max_inflight_requests` × `limits.max_request_bytes`).
    inflight: Arc<tokio::sync::Semaphore>,
    writer: Writer,
    metrics_wal: Arc<Mutex<Wal>>,
    keys: Arc<KeyExtractor>,
    limits: Limits,
    telemetry: Telemetry,
}

/// WAL record kind of a metrics export in the metrics log.
pub const KIND_METRICS: u8 = 3;

impl Ingest {
    /// Ties the parts together.
    pub fn new(
        writer: Writer,
        metrics_wal: Arc<Mutex<Wal>>,
        keys: KeyExtractor,
        limits: Limits,
        telemetry: Telemetry,
        max_inflight: usize,
    ) -> Self {
        Ingest {
            inflight: Arc::new(tokio::sync::Semaphore::new(max_inflight.max(1))),
            writer,
            metrics_wal,
            keys: Arc::new(keys),
            limits,
            telemetry,
        }
    }

    /// A place for one more request, or None when `max_inflight` requests are already being
    /// handled (answer 503 with Retry-After). Hold it until the answer is sent.
    pub fn admit(&self, signal: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let p = self.inflight.clone().try_acquire_owned().ok();
        if p.is_none() {
            self.telemetry.ingest_error(signal, "too_many_requests");
        }
        p
    }

    /// The collector's counters.
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    fn finish(
        &self,
        signal: &str,
        rejection: Rejection,
        accepted: usize,
    ) -> Result<Accepted, IngestError> {
        self.telemetry.rejected(signal, rejection.count);
        if accepted == 0 && rejection.count > 0 {
            self.telemetry.ingest_error(signal, "bad_request");
            return Err(IngestError::BadRequest(format!(
                "every record was rejected ({}); the first: {}",
                rejection.count,
                rejection.first_reason.unwrap_or_default()
            )));
        }
        Ok(Accepted {
            rejected: rejection.count,
            message: rejection.first_reason.unwrap_or_default(),
        })
    }

    fn fail(&self, signal: &str, e: IngestError) -> IngestError {
        let reason = match &e {
            IngestError::BadRequest(_) => "bad_request",
            IngestError::Unavailable(_) => "unavailable",
            IngestError::Internal(_) => "internal",
        };
        self.telemetry.ingest_error(signal, reason);
        e
    }

    /// Accepts a logs export. `wire_bytes` is the decoded body size, for counters.
    pub async fn logs(
        &self,
        req: ExportLogsServiceRequest,
        wire_bytes: usize,
    ) -> Result<Accepted, IngestError> {
        let this = self.clone();
        let (batch, payload, rejection) = tokio::task::spawn_blocking(move || {
            let now = skein_model::time::now_unix_nano();
            let (records, rejection) = logs_from_otlp(&req, &this.keys, &this.limits, now);
            let batch = Batch::Logs(Arc::new(records));
            let payload = batch.encode();
            (batch, payload, rejection)
        })
        .await
        .map_err(|e| {
            self.fail(
                "logs",
                IngestError::Internal(format!("conversion task failed: {e}")),
            )
        })?;
        self.write("logs", batch, payload, rejection, wire_bytes)
            .await
    }

    /// Accepts a traces export.
    pub async fn traces(
        &self,
        req: ExportTraceServiceRequest,
        wire_bytes: usize,
    ) -> Result<Accepted, IngestError> {
        let this = self.clone();
        let (batch, payload, rejection) = tokio::task::spawn_blocking(move || {
            let (spans, rejection) = spans_from_otlp(&req, &this.keys, &this.limits);
            let batch = Batch::Spans(Arc::new(spans));
            let payload = batch.encode();
            (batch, payload, rejection)
        })
        .await
        .map_err(|e| {
            self.fail(
                "spans",
                IngestError::Internal(format!("conversion task failed: {e}")),
            )
        })?;
        self.write("spans", batch, payload, rejection, wire_bytes)
            .await
    }

    async fn write(
        &self,
        signal: &str,
        batch: Batch,
        payload: Vec<u8>,
        rejection: Rejection,
        wire_bytes: usize,
    ) -> Result<Accepted, IngestError> {
        let n = match &batch {
            Batch::Logs(v) => v.len(),
            Batch::Spans(v) => v.len(),
        };
        if n > 0 {
            self.writer
                .write(batch, payload)
                .await
                .map_err(|e| self.fail(signal, e.into()))?;
            self.telemetry.received(signal, n as u64, wire_bytes as u64);
        }
        self.finish(signal, rejection, n)
    }

    /// Accepts a metrics export: kept durably, as received, in the metrics log.
    pub async fn metrics(
        &self,
        req: ExportMetricsServiceRequest,
        wire_bytes: usize,
    ) -> Result<Accepted, IngestError> {
        use prost::Message;
        let points = metric_points(&req);
        if points == 0 {
            return Ok(Accepted::default());
        }
        let wal = self.metrics_wal.clone();
        let result = tokio::task::spawn_blocking(move || {
            let payload = req.encode_to_vec();
            let mut w = wal
                .lock()
                .map_err(|_| IngestError::Internal("metrics log lock poisoned".into()))?;
            w.append_batch(&[Entry {
                kind: KIND_METRICS,
                payload: &payload,
            }])
            .map_err(|e| {
                if e.is_disk_full() {
                    IngestError::Unavailable(
                        "the collector's disk is full or its metrics log is at its size limit; retry later".into(),
                    )
                } else {
                    tracing::error!(error = %e, "metrics log append failed");
                    IngestError::Internal("the metrics log failed".into())
                }
            })
        })
        .await
        .map_err(|e| IngestError::Internal(format!("metrics task failed: {e}")))?;
        result.map_err(|e| self.fail("metrics", e))?;
        self.telemetry
            .received("metrics", points, wire_bytes as u64);
        Ok(Accepted::default())
    }
}
