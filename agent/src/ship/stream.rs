//! Shipping straight to the cluster's NATS JetStream stream (`[stream]`), as a collector
//! would publish the same batch: the buffered OTLP body is converted to records with the
//! default correlation keys (those of `collector.example.toml`'s `[correlation]`), published
//! by partition with ids from the batch id, and acknowledged only once the stream has every
//! message. What the HTTP path does with answers maps to the stream's outcomes:
//! - every message acknowledged: taken (records the conversion refused are counted as
//!   partial success);
//! - a message larger than NATS takes: refused for its content, so the part is split in
//!   halves down to single records, as for a 413;
//! - no acknowledgement in `stream.publish_timeout`, or NATS unreachable: retried with the same
//!   backoff, the buffer holding the data.

use super::split::decompress;
use super::{PartEnd, Sender};
use crate::buffer::Signal;
use prost::Message;
use skein_model::batch::Batch;
use skein_model::keys::KeyExtractor;
use skein_model::otlp::{logs_from_otlp, spans_from_otlp};
use skein_model::otlp_metrics::{MetricLimits, metrics_from_otlp};
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use skein_model::proto::collector::trace::v1::ExportTraceServiceRequest;
use skein_stream::{PublishError, Publisher};
use std::sync::Arc;
use std::time::Duration;

/// Where the stream path publishes.
#[derive(Clone)]
pub struct StreamTarget {
    /// The publisher (a JetStream context on the agent's NATS connection).
    pub publisher: Publisher,
    /// Correlation keys, as the collectors extract them by default.
    pub keys: Arc<KeyExtractor>,
}

/// What converting a part gave: records or samples, ready to publish.
enum Converted {
    Records(Batch, Vec<u8>, u64, String),
    Samples(skein_model::metric::MetricBatch, u64, String),
}

fn convert(st: &StreamTarget, signal: Signal, plain: &[u8]) -> Option<Converted> {
    let now = skein_model::time::now_unix_nano();
    let limits = skein_model::Limits::default();
    Some(match signal {
        Signal::Logs => {
            let req = ExportLogsServiceRequest::decode(plain).ok()?;
            let (records, rej) = logs_from_otlp(&req, &st.keys, &limits, now);
            let batch = Batch::Logs(Arc::new(records));
            let payload = batch.encode();
            let why = rej.first_reason.unwrap_or_default();
            Converted::Records(batch, payload, rej.count, why)
        }
        Signal::Traces => {
            let req = ExportTraceServiceRequest::decode(plain).ok()?;
            let (spans, rej) = spans_from_otlp(&req, &st.keys, &limits);
            let batch = Batch::Spans(Arc::new(spans));
            let payload = batch.encode();
            let why = rej.first_reason.unwrap_or_default();
            Converted::Records(batch, payload, rej.count, why)
        }
        Signal::Metrics => {
            let req = ExportMetricsServiceRequest::decode(plain).ok()?;
            let now_ms = skein_model::time::now_ms();
            let (batch, rej) = metrics_from_otlp(&req, &MetricLimits::default(), now_ms);
            let why = rej.first_reason.unwrap_or_default();
            Converted::Samples(batch, rej.count, why)
        }
    })
}

/// Publishes one part until the stream has it, it is refused for its content, or shutdown
/// comes.
pub(super) async fn send_part(
    s: &Sender,
    st: &StreamTarget,
    signal: Signal,
    id: Option<String>,
    part: &super::Part,
) -> PartEnd {
    let name = signal.name();
    let plain = decompress(part.encoding, &part.body);
    let Some(converted) = plain.as_deref().and_then(|p| convert(st, signal, p)) else {
        return PartEnd::Refused {
            status: 400,
            answer: "the buffered batch could not be decoded".into(),
        };
    };
    let mut backoff = s.retry.initial_backoff.0;
    loop {
        let published = match &converted {
            Converted::Records(batch, payload, ..) => {
                st.publisher.publish(batch, payload, id.as_deref()).await
            }
            Converted::Samples(batch, ..) => {
                st.publisher.publish_metrics(batch, id.as_deref()).await
            }
        };
        match published {
            Ok(_) => {
                s.telemetry.set_shipping_blocked(None);
                let (rejected, message) = match &converted {
                    Converted::Records(_, _, n, m) | Converted::Samples(_, n, m) => (*n, m.clone()),
                };
                tracing::debug!(
                    records = part.records,
                    signal = name,
                    "batch stored in the stream"
                );
                return PartEnd::Taken { rejected, message };
            }
            Err(PublishError::TooLarge(m)) => {
                return PartEnd::Refused {
                    status: 413,
                    answer: m,
                };
            }
            Err(PublishError::Unavailable(m)) => {
                s.telemetry.request_failed(name, "stream");
                tracing::warn!(error = %m, signal = name, "the cluster's stream cannot take a batch now; retrying");
            }
        }
        if *s.stop.borrow() {
            return PartEnd::Abandoned;
        }
        // Full jitter: anywhere between zero and the current backoff.
        let ms = u64::try_from(backoff.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let sleep = Duration::from_millis(fastrand::u64(0..=ms));
        backoff = (backoff * 2).min(s.retry.max_backoff.0);
        s.telemetry.retry(name);
        let mut stop = s.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = stop.wait_for(|v| *v) => return PartEnd::Abandoned,
        }
    }
}
