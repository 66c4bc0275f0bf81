//! Transport-neutral ingest: an OTLP export request in, a durable batch out.
//!
//! HTTP and gRPC both decode their request and call [`Ingest`] (so does Prometheus remote
//! write, [`Ingest::remote_write`]); it converts to model records (off the async reactor),
//! writes the batch to the WAL and answers with the OTLP partial success counts. Only the
//! transports map [`IngestError`] to status codes.

use crate::dedupe::{Claim, Claimed, Seen};
use crate::memory::MemoryLimit;
use crate::pipeline::{Batch, WriteError, Writer};
use crate::spanmetrics::thread::DeriveSender;
use crate::telemetry::Telemetry;
use skein_model::keys::KeyExtractor;
use skein_model::metric::MetricBatch;
use skein_model::otlp::{logs_from_otlp, spans_from_otlp};
use skein_model::otlp_metrics::{MetricLimits, metrics_from_otlp};
use skein_model::prompb::WriteRequest;
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use skein_model::proto::collector::trace::v1::ExportTraceServiceRequest;
use skein_model::remote_write::batch_from_write_request;
use skein_model::{Limits, Rejection};
use skein_otlp::{Accepted, ExportMeta, IngestError, OtlpSink};
use skein_store::StoreError;
use skein_store::tsdb::Tsdb;
use std::future::Future;
use std::sync::Arc;

impl From<WriteError> for IngestError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Failed => IngestError::Internal(e.to_string()),
            WriteError::TooLarge { .. } => IngestError::TooLarge(e.to_string()),
            _ => IngestError::Unavailable(e.to_string()),
        }
    }
}

/// What admits a request: the in-flight cap, the window of stored batch ids, the memory
/// limit.
pub struct Guards {
    /// Requests handled at once (`limits.max_inflight_requests`).
    pub max_inflight: usize,
    /// Ids of stored batches.
    pub seen: Seen,
    /// The memory limit.
    pub memory: MemoryLimit,
}

/// Whether to write a batch.
enum Write {
    /// Write it; with its claimed id, when it has one.
    Go(Option<Claimed>),
    /// Its id is stored already: answer as taken.
    Stored,
}

/// Shared by every ingest handler.
#[derive(Clone)]
pub struct Ingest {
    /// Requests being handled at once; bounds the memory of bodies in flight
    /// (`limits.max_inflight_requests` × `limits.max_request_bytes`).
    inflight: Arc<tokio::sync::Semaphore>,
    /// Its size.
    max_inflight: usize,
    writer: Writer,
    tsdb: Tsdb,
    derive: Option<DeriveSender>,
    keys: Arc<KeyExtractor>,
    limits: Limits,
    telemetry: Telemetry,
    /// Ids of stored batches, so a retried batch is stored once.
    seen: Seen,
    /// Over it, new requests are refused.
    memory: MemoryLimit,
    /// In cluster mode: batches go to the JetStream stream instead of the local WAL.
    cluster: Option<skein_cluster::Publisher>,
}

impl Ingest {
    /// Ties the parts together.
    pub fn new(
        writer: Writer,
        tsdb: Tsdb,
        derive: Option<DeriveSender>,
        keys: KeyExtractor,
        limits: Limits,
        telemetry: Telemetry,
        guards: Guards,
    ) -> Self {
        let Guards {
            max_inflight,
            seen,
            memory,
        } = guards;
        Ingest {
            inflight: Arc::new(tokio::sync::Semaphore::new(max_inflight.max(1))),
            max_inflight: max_inflight.max(1),
            writer,
            tsdb,
            derive,
            keys: Arc::new(keys),
            limits,
            telemetry,
            seen,
            memory,
            cluster: None,
        }
    }

    /// Cluster mode: logs, spans and metric samples are published to the stream (which then
    /// is the WAL; JetStream's duplicate window stores a retried batch once) instead of the
    /// local WAL and metrics store. Span metrics are then derived by the nodes that index
    /// each partition, not here.
    pub fn with_cluster(mut self, publisher: skein_cluster::Publisher) -> Self {
        self.cluster = Some(publisher);
        self.derive = None;
        self
    }

    /// Claims the request's batch id, if it has one.
    fn claim(&self, signal: &str, meta: &ExportMeta) -> Result<Write, IngestError> {
        let Some(id) = &meta.batch_id else {
            return Ok(Write::Go(None));
        };
        if self.cluster.is_some() {
            // The stream's duplicate window does this cluster-wide.
            return Ok(Write::Go(None));
        }
        match self.seen.claim(id) {
            Claim::New(c) => Ok(Write::Go(Some(c))),
            Claim::Stored => {
                self.telemetry.duplicate_batch(signal);
                Ok(Write::Stored)
            }
            Claim::Writing => Err(self.fail(
                signal,
                IngestError::Unavailable(format!(
                    "a batch with skein-batch-id {id} is being written now; retry later"
                )),
            )),
        }
    }

    /// A place for one more request, or why there is none: `max_inflight` requests are
    /// already being handled, or the collector is over its memory limit and one is (answer
    /// 503 with Retry-After). Over the limit it takes one request at a time: what it holds
    /// may be allocator slack that refusing cannot free, so ingest never stops for good, and
    /// one request at a time lets the queues drain. Hold it until the answer is sent.
    pub fn admit(&self, signal: &str) -> Result<tokio::sync::OwnedSemaphorePermit, String> {
        if self.memory.over() && self.inflight.available_permits() < self.max_inflight {
            self.telemetry.ingest_error(signal, "memory_limit");
            return Err(format!(
                "the collector is over its memory limit ({} MiB in use, limits.memory_limit_mb = {}); retry later",
                self.memory.last_bytes() >> 20,
                self.memory.limit_mb()
            ));
        }
        self.inflight.clone().try_acquire_owned().map_err(|_| {
            self.telemetry.ingest_error(signal, "too_many_requests");
            "too many requests in flight (limits.max_inflight_requests); retry later".into()
        })
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
            IngestError::TooLarge(_) => "too_large",
            IngestError::Unavailable(_) => "unavailable",
            IngestError::Internal(_) => "internal",
        };
        self.telemetry.ingest_error(signal, reason);
        e
    }

    /// Accepts a logs export.
    pub async fn logs(
        &self,
        req: ExportLogsServiceRequest,
        meta: ExportMeta,
    ) -> Result<Accepted, IngestError> {
        let Write::Go(claim) = self.claim("logs", &meta)? else {
            return Ok(Accepted::default());
        };
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
        self.write("logs", batch, payload, rejection, &meta, claim)
            .await
    }

    /// Accepts a traces export.
    pub async fn traces(
        &self,
        req: ExportTraceServiceRequest,
        meta: ExportMeta,
    ) -> Result<Accepted, IngestError> {
        let Write::Go(claim) = self.claim("spans", &meta)? else {
            return Ok(Accepted::default());
        };
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
        let spans = match &batch {
            Batch::Spans(v) => Some(v.clone()),
            Batch::Logs(_) => None,
        };
        let accepted = self
            .write("spans", batch, payload, rejection, &meta, claim)
            .await?;
        if let (Some(d), Some(spans)) = (&self.derive, spans)
            && !spans.is_empty()
        {
            d.send(spans);
        }
        Ok(accepted)
    }

    async fn write(
        &self,
        signal: &str,
        batch: Batch,
        payload: Vec<u8>,
        rejection: Rejection,
        meta: &ExportMeta,
        claim: Option<Claimed>,
    ) -> Result<Accepted, IngestError> {
        let wire_bytes = meta.wire_bytes;
        let n = match &batch {
            Batch::Logs(v) => v.len(),
            Batch::Spans(v) => v.len(),
        };
        if n > 0
            && let Some(publisher) = &self.cluster
        {
            let id = meta.batch_id.as_ref().map(|b| b.as_str());
            let done = publisher.publish(&batch, &payload, id).await.map_err(|e| {
                let e = match e {
                    skein_cluster::PublishError::TooLarge(m) => IngestError::TooLarge(m),
                    skein_cluster::PublishError::Unavailable(m) => IngestError::Unavailable(m),
                };
                self.fail(signal, e)
            })?;
            if done.messages > 0 && done.duplicates == done.messages {
                self.telemetry.duplicate_batch(signal);
            } else {
                self.telemetry.received(signal, n as u64, wire_bytes as u64);
            }
            return self.finish(signal, rejection, n);
        }
        if n > 0 {
            self.writer
                .write(batch, payload, claim.as_ref().map(|c| c.id().clone()))
                .await
                .map_err(|e| self.fail(signal, e.into()))?;
            self.telemetry.received(signal, n as u64, wire_bytes as u64);
            // Durable now: a retry is answered from the window. (A batch with nothing valid
            // in it drops its claim: a retry gets the same answer again.)
            if let Some(c) = claim {
                c.stored();
            }
        }
        self.finish(signal, rejection, n)
    }

    /// Accepts a metrics export: converted to series and samples and stored in the metrics
    /// store (its WAL fsynced) before the answer. Refused samples (out of order, past a series
    /// limit, too far ahead, malformed points; NaN and infinite values are kept) are reported
    /// as a partial success; a request of which nothing could be stored is a bad request.
    pub async fn metrics(
        &self,
        req: ExportMetricsServiceRequest,
        meta: ExportMeta,
    ) -> Result<Accepted, IngestError> {
        self.store_metrics(
            move || {
                let now_ms = skein_model::time::now_ms();
                metrics_from_otlp(&req, &MetricLimits::default(), now_ms)
            },
            meta,
        )
        .await
    }

    /// Accepts a Prometheus remote-write request: series and samples with their labels and
    /// values as sent ([`skein_model::remote_write`]), then the same path as
    /// [`Ingest::metrics`]. Native histograms are refused, counted in
    /// `skein_metric_samples_refused_total{reason="native_histogram"}`.
    pub async fn remote_write(
        &self,
        req: WriteRequest,
        meta: ExportMeta,
    ) -> Result<Accepted, IngestError> {
        let telemetry = self.telemetry.clone();
        self.store_metrics(
            move || {
                let c = batch_from_write_request(&req, &MetricLimits::default());
                telemetry.metric_samples_skipped("native_histogram", c.native_histograms);
                (c.batch, c.rejection)
            },
            meta,
        )
        .await
    }

    /// Converts (off the async workers, with `convert`) and stores one request's metric
    /// samples: published to the stream in cluster mode, else appended to the metrics store.
    async fn store_metrics<F>(&self, convert: F, meta: ExportMeta) -> Result<Accepted, IngestError>
    where
        F: FnOnce() -> (MetricBatch, Rejection) + Send + 'static,
    {
        let wire_bytes = meta.wire_bytes;
        if let Some(publisher) = &self.cluster {
            let (batch, rejection) = tokio::task::spawn_blocking(convert)
                .await
                .map_err(|e| IngestError::Internal(format!("metrics task failed: {e}")))?;
            let n = batch.samples.len();
            if n > 0 {
                let id = meta.batch_id.as_ref().map(|b| b.as_str());
                let done = publisher.publish_metrics(&batch, id).await.map_err(|e| {
                    let e = match e {
                        skein_cluster::PublishError::TooLarge(m) => IngestError::TooLarge(m),
                        skein_cluster::PublishError::Unavailable(m) => IngestError::Unavailable(m),
                    };
                    self.fail("metrics", e)
                })?;
                if done.messages > 0 && done.duplicates == done.messages {
                    self.telemetry.duplicate_batch("metrics");
                } else {
                    self.telemetry
                        .received("metrics", n as u64, wire_bytes as u64);
                }
            }
            // Samples the partition's store refuses (out of order) are logged there: the
            // answer is sent once the stream has them.
            return self.finish("metrics", rejection, n);
        }
        let tsdb = self.tsdb.clone();
        let result = tokio::task::spawn_blocking(move || {
            let (batch, rejection) = convert();
            if batch.is_empty() {
                return Ok((rejection, None));
            }
            let report = tsdb.append(&batch).map_err(|e| match e {
                StoreError::Wal(w) if w.is_disk_full() => IngestError::Unavailable(
                    "the collector's disk is full or its metrics WAL is at its size limit (wal.metrics_max_mb); retry later".into(),
                ),
                other => {
                    tracing::error!(error = %other, "metrics store append failed");
                    IngestError::Internal("the metrics store failed".into())
                }
            })?;
            Ok((rejection, Some(report)))
        })
        .await
        .map_err(|e| IngestError::Internal(format!("metrics task failed: {e}")))?;
        let (mut rejection, report) = result.map_err(|e| self.fail("metrics", e))?;
        let mut stored = 0u64;
        if let Some(r) = report {
            stored = r.accepted + r.duplicates;
            rejection.count += r.rejected;
            if rejection.first_reason.is_none() {
                rejection.first_reason = r.first_reason.clone();
            }
            self.telemetry.metric_samples(&r);
        }
        if stored > 0 {
            self.telemetry
                .received("metrics", stored, wire_bytes as u64);
        }
        self.finish("metrics", rejection, stored as usize)
    }
}

impl OtlpSink for Ingest {
    fn admit(&self, signal: &'static str) -> Result<tokio::sync::OwnedSemaphorePermit, String> {
        Ingest::admit(self, signal)
    }
    fn bad_request(&self, signal: &'static str) {
        self.telemetry().ingest_error(signal, "bad_request");
    }
    fn logs(
        &self,
        req: ExportLogsServiceRequest,
        meta: ExportMeta,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        Ingest::logs(self, req, meta)
    }
    fn traces(
        &self,
        req: ExportTraceServiceRequest,
        meta: ExportMeta,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        Ingest::traces(self, req, meta)
    }
    fn metrics(
        &self,
        req: ExportMetricsServiceRequest,
        meta: ExportMeta,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        Ingest::metrics(self, req, meta)
    }
    fn takes_remote_write(&self) -> bool {
        true
    }
    fn takes_loki_push(&self) -> bool {
        true
    }
    fn remote_write(
        &self,
        req: WriteRequest,
        meta: ExportMeta,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        Ingest::remote_write(self, req, meta)
    }
}
