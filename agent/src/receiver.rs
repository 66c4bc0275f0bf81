//! The local OTLP receiver: apps on this host send logs, spans and metrics here (HTTP on
//! 127.0.0.1:4328, gRPC on 127.0.0.1:4327 by default, beside a collector's 4318/4317). The
//! transports are the collector's own ([`skein_otlp`]); this module is their sink: it adds
//! the host's resource
//! attributes, encodes and compresses the request, and appends it to the disk buffer before
//! answering, so an acknowledged export survives an agent restart.

use crate::buffer::{Buffer, BufferError, Signal, compress};
use crate::config::{Compression, WhenFull};
use crate::telemetry::Telemetry;
use prost::Message;
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use skein_model::proto::collector::trace::v1::ExportTraceServiceRequest;
use skein_model::proto::common::v1::{AnyValue, KeyValue, any_value};
use skein_model::proto::resource::v1::Resource;
use skein_otlp::{Accepted, IngestError, OtlpSink};
use std::sync::Arc;

/// The receiver's sink: resource attributes in, disk buffer out.
#[derive(Clone)]
pub struct AgentSink {
    inner: Arc<Inner>,
}

struct Inner {
    buffer: Arc<Buffer>,
    resource: Vec<(String, String)>,
    compression: Compression,
    when_full: WhenFull,
    telemetry: Telemetry,
    inflight: Arc<tokio::sync::Semaphore>,
}

impl AgentSink {
    /// `resource`: attributes added to every resource that lacks them (host.name, …).
    pub fn new(
        buffer: Arc<Buffer>,
        resource: Vec<(String, String)>,
        compression: Compression,
        when_full: WhenFull,
        telemetry: Telemetry,
        max_inflight: usize,
    ) -> Self {
        AgentSink {
            inner: Arc::new(Inner {
                buffer,
                resource,
                compression,
                when_full,
                telemetry,
                inflight: Arc::new(tokio::sync::Semaphore::new(max_inflight.max(1))),
            }),
        }
    }

    async fn store(
        &self,
        signal: Signal,
        records: u64,
        body: Vec<u8>,
    ) -> Result<Accepted, IngestError> {
        if records == 0 {
            return Ok(Accepted::default());
        }
        let inner = self.inner.clone();
        let res = tokio::task::spawn_blocking(move || {
            let (enc, bytes) = compress(&body, inner.compression);
            inner.buffer.append(
                signal,
                u32::try_from(records).unwrap_or(u32::MAX),
                &[],
                enc,
                &bytes,
                inner.when_full == WhenFull::DropOldest,
            )
        })
        .await
        .map_err(|e| IngestError::Internal(format!("buffer task failed: {e}")))?;
        match res {
            Ok(dropped) => {
                if dropped > 0 {
                    self.inner.telemetry.dropped("buffer_full", dropped);
                }
                self.inner.telemetry.received(signal.name(), records);
                self.inner.telemetry.records_buffered(signal.name(), records);
                Ok(Accepted::default())
            }
            Err(BufferError::Full) => Err(IngestError::Unavailable(
                "the agent's disk buffer is full (buffer.max_mb) while the collector is away; retry later".into(),
            )),
            Err(e) => {
                tracing::error!(error = %e, "cannot buffer an OTLP export");
                Err(IngestError::Internal("the agent's disk buffer failed".into()))
            }
        }
    }
}

/// Adds the missing attributes to a resource.
pub fn add_resource(resource: &mut Option<Resource>, attrs: &[(String, String)]) {
    let r = resource.get_or_insert_with(Resource::default);
    for (k, v) in attrs {
        if !r.attributes.iter().any(|kv| &kv.key == k) {
            r.attributes.push(string_kv(k, v));
        }
    }
}

/// A string attribute.
pub fn string_kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key_strindex: 0,
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        }),
    }
}

impl OtlpSink for AgentSink {
    fn admit(&self, signal: &'static str) -> Result<tokio::sync::OwnedSemaphorePermit, String> {
        self.inner
            .inflight
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                self.inner.telemetry.request_failed(signal, "receiver_busy");
                "too many requests in flight (receiver.max_inflight_requests); retry later".into()
            })
    }

    fn bad_request(&self, signal: &'static str) {
        self.inner
            .telemetry
            .request_failed(signal, "receiver_bad_request");
    }

    async fn logs(
        &self,
        mut req: ExportLogsServiceRequest,
        _meta: skein_otlp::ExportMeta,
    ) -> Result<Accepted, IngestError> {
        let mut n = 0u64;
        for rl in &mut req.resource_logs {
            add_resource(&mut rl.resource, &self.inner.resource);
            n += rl
                .scope_logs
                .iter()
                .map(|s| s.log_records.len() as u64)
                .sum::<u64>();
        }
        self.store(Signal::Logs, n, req.encode_to_vec()).await
    }

    async fn traces(
        &self,
        mut req: ExportTraceServiceRequest,
        _meta: skein_otlp::ExportMeta,
    ) -> Result<Accepted, IngestError> {
        let mut n = 0u64;
        for rs in &mut req.resource_spans {
            add_resource(&mut rs.resource, &self.inner.resource);
            n += rs
                .scope_spans
                .iter()
                .map(|s| s.spans.len() as u64)
                .sum::<u64>();
        }
        self.store(Signal::Traces, n, req.encode_to_vec()).await
    }

    async fn metrics(
        &self,
        mut req: ExportMetricsServiceRequest,
        _meta: skein_otlp::ExportMeta,
    ) -> Result<Accepted, IngestError> {
        for rm in &mut req.resource_metrics {
            add_resource(&mut rm.resource, &self.inner.resource);
        }
        let n = skein_model::otlp::metric_points(&req);
        self.store(Signal::Metrics, n, req.encode_to_vec()).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn present_attributes_are_kept() {
        let mut r = Some(Resource {
            attributes: vec![string_kv("host.name", "app-says")],
            ..Default::default()
        });
        add_resource(
            &mut r,
            &[
                ("host.name".into(), "agent-says".into()),
                ("skein.agent.id".into(), "a1".into()),
            ],
        );
        let attrs = r.unwrap().attributes;
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs[0], string_kv("host.name", "app-says"));
        assert_eq!(attrs[1], string_kv("skein.agent.id", "a1"));
    }
}
