//! Ingest in a cluster: a batch's records published to the stream, by partition.
//!
//! Each record goes to subject `<prefix>.<signal>.<partition>`, the partition a stable hash of
//! its trace ID, else its first correlation key, else one per batch (from the batch id when
//! there is one, so a retried batch picks the same partition), so a trace's spans and logs
//! land together. A partition's share of a batch is cut into messages of at most
//! `cluster.max_message_bytes`; each message carries `Nats-Msg-Id` =
//! `<skein-batch-id>:<signal>:<partition>:<part>` when the sender gave a batch id, so a batch
//! sent again within `cluster.duplicate_window_secs` is stored once by JetStream itself. The
//! caller answers 2xx only after every message was acknowledged by the stream (with replicas
//! R, a quorum of NATS servers has it on disk): in cluster mode the stream is the WAL.

use async_nats::jetstream;
use async_nats::jetstream::context::PublishErrorKind;
use bytes::Bytes;
use skein_model::batch::{Batch, ndjson_lines};
use std::time::Duration;

/// The header naming a message payload's compression; absent: not compressed.
pub const ENCODING_HEADER: &str = "Skein-Encoding";
/// Its value for zstd.
pub const ZSTD: &str = "zstd";
/// Payloads smaller than this are sent as they are.
const COMPRESS_FROM: usize = 512;
/// The zstd level: the fastest. A message is stored on every NATS replica and read by every
/// indexer of its partition, so its bytes cost several times; level 1 takes most of the
/// gain for little CPU (BENCHMARKS.md, cluster mode).
const ZSTD_LEVEL: i32 = 1;
/// Largest payload a compressed message may expand to.
pub const MAX_PLAIN_BYTES: usize = 64 << 20;

/// The payload compressed, when that is worth it.
fn compress(payload: &[u8]) -> Option<Vec<u8>> {
    if payload.len() < COMPRESS_FROM {
        return None;
    }
    zstd::bulk::compress(payload, ZSTD_LEVEL)
        .ok()
        .filter(|z| z.len() < payload.len())
}

/// A message's payload as published: decompressed when its headers say so.
pub fn plain_payload<'a>(
    headers: Option<&async_nats::HeaderMap>,
    payload: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, String> {
    let encoding = headers
        .and_then(|h| h.get(ENCODING_HEADER))
        .map(|v| v.as_str());
    match encoding {
        None => Ok(std::borrow::Cow::Borrowed(payload)),
        Some(ZSTD) => zstd::bulk::decompress(payload, MAX_PLAIN_BYTES)
            .map(std::borrow::Cow::Owned)
            .map_err(|e| format!("cannot decompress a message: {e}")),
        Some(other) => Err(format!("unknown message encoding {other:?}")),
    }
}

/// Why a batch was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A record is larger than one message may be.
    #[error("{0}")]
    TooLarge(String),
    /// The stream did not acknowledge in time, or NATS is unreachable.
    #[error("{0}")]
    Unavailable(String),
}

/// What a publish did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Published {
    /// Messages stored.
    pub messages: usize,
    /// Messages JetStream had already (the batch was sent before).
    pub duplicates: usize,
}

/// The partition of a key: CRC-32 of its bytes, modulo the partition count.
pub fn partition_of(key: &str, partitions: u32) -> u32 {
    crc32fast::hash(key.as_bytes()) % partitions.max(1)
}

/// The partition of a record: by trace ID, else first correlation key, else `fallback`.
pub fn record_partition(trace_id: &str, keys: &[String], fallback: u32, partitions: u32) -> u32 {
    if !trace_id.is_empty() {
        return partition_of(trace_id, partitions);
    }
    match keys.iter().find(|k| !k.is_empty()) {
        Some(k) => partition_of(k, partitions),
        None => fallback,
    }
}

/// The signal's name in subjects.
pub fn signal_name(batch: &Batch) -> &'static str {
    match batch {
        Batch::Logs(_) => "logs",
        Batch::Spans(_) => "spans",
    }
}

/// Publishes batches to the stream.
#[derive(Clone)]
pub struct Publisher {
    js: jetstream::Context,
    pub(crate) prefix: String,
    pub(crate) partitions: u32,
    pub(crate) max_message: usize,
    timeout: Duration,
}

/// One message to publish: subject, payload, id.
pub(crate) struct Outgoing {
    pub subject: String,
    pub payload: Vec<u8>,
    pub id: Option<String>,
}

/// Cuts a batch (and its NDJSON payload, one line a record) into messages by partition.
pub(crate) fn plan(
    prefix: &str,
    partitions: u32,
    max_message: usize,
    batch: &Batch,
    payload: &[u8],
    batch_id: Option<&str>,
) -> Vec<Outgoing> {
    let fallback = match batch_id {
        Some(id) => partition_of(id, partitions),
        None => fastrand_u32() % partitions.max(1),
    };
    let parts: Vec<u32> = match batch {
        Batch::Logs(v) => v
            .iter()
            .map(|r| record_partition(&r.trace_id, &r.keys, fallback, partitions))
            .collect(),
        Batch::Spans(v) => v
            .iter()
            .map(|s| record_partition(&s.trace_id, &s.keys, fallback, partitions))
            .collect(),
    };
    let lines: Vec<&[u8]> = ndjson_lines(payload).collect();
    let signal = signal_name(batch);
    let mut per: std::collections::BTreeMap<u32, Vec<&[u8]>> = Default::default();
    for (line, p) in lines.iter().zip(parts) {
        per.entry(p).or_default().push(line);
    }
    let mut out = Vec::new();
    for (p, lines) in per {
        let mut chunk: Vec<u8> = Vec::new();
        let mut n = 0usize;
        let subject = format!("{prefix}.{signal}.{p}");
        let mut flush = |chunk: &mut Vec<u8>, n: &mut usize| {
            if chunk.is_empty() {
                return;
            }
            out.push(Outgoing {
                subject: subject.clone(),
                payload: std::mem::take(chunk),
                id: batch_id.map(|id| format!("{id}:{signal}:{p}:{n}")),
            });
            *n += 1;
        };
        for line in lines {
            if !chunk.is_empty() && chunk.len() + line.len() + 1 > max_message {
                flush(&mut chunk, &mut n);
            }
            chunk.extend_from_slice(line);
            chunk.push(b'\n');
        }
        flush(&mut chunk, &mut n);
    }
    out
}

fn fastrand_u32() -> u32 {
    // The low bits of the clock: only for batches without an id, where any partition will do.
    (skein_model::time::now_unix_nano() as u32).rotate_left(7) ^ std::process::id()
}

impl Publisher {
    /// A publisher to the stream's subjects `<prefix>.<signal>.<partition>`.
    pub fn new(
        js: jetstream::Context,
        prefix: String,
        partitions: u32,
        max_message: usize,
        timeout: Duration,
    ) -> Self {
        Publisher {
            js,
            prefix,
            partitions,
            max_message,
            timeout,
        }
    }

    /// Publishes a batch and waits until the stream acknowledged every message.
    pub async fn publish(
        &self,
        batch: &Batch,
        payload: &[u8],
        batch_id: Option<&str>,
    ) -> Result<Published, PublishError> {
        let messages = plan(
            &self.prefix,
            self.partitions,
            self.max_message,
            batch,
            payload,
            batch_id,
        );
        self.send(messages).await
    }

    /// Publishes messages and waits until the stream acknowledged every one.
    pub(crate) async fn send(&self, messages: Vec<Outgoing>) -> Result<Published, PublishError> {
        let unavailable = |what: String| {
            PublishError::Unavailable(format!(
                "the cluster's stream did not take the batch ({what}); retry later"
            ))
        };
        let work = async {
            let mut acks = Vec::with_capacity(messages.len());
            for m in messages {
                let mut p = jetstream::message::PublishMessage::build();
                p = match compress(&m.payload) {
                    Some(z) => p.payload(Bytes::from(z)).header(ENCODING_HEADER, ZSTD),
                    None => p.payload(Bytes::from(m.payload)),
                };
                if let Some(id) = &m.id {
                    p = p.message_id(id);
                }
                let ack = self
                    .js
                    .send_publish(m.subject, p)
                    .await
                    .map_err(|e| match e.kind() {
                        PublishErrorKind::MaxPayloadExceeded => PublishError::TooLarge(format!(
                            "a record is larger than one NATS message may be ({e}); send smaller records"
                        )),
                        _ => unavailable(e.to_string()),
                    })?;
                acks.push(ack);
            }
            let mut done = Published::default();
            for a in acks {
                let ack = a.await.map_err(|e| unavailable(e.to_string()))?;
                done.messages += 1;
                if ack.duplicate {
                    done.duplicates += 1;
                }
            }
            Ok(done)
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(unavailable(format!(
                "no acknowledgement within {:?} (cluster.publish_timeout_ms)",
                self.timeout
            ))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use skein_model::{LogRecord, Span};
    use std::sync::Arc;

    fn log(trace: &str, keys: &[&str], body: &str) -> LogRecord {
        LogRecord {
            trace_id: trace.into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            body: body.into(),
            ..Default::default()
        }
    }

    #[test]
    fn payloads_are_compressed_and_read_back() {
        let big = b"{\"body\":\"charge failed\"}\n".repeat(100);
        let z = compress(&big).unwrap();
        assert!(z.len() < big.len() / 4, "{} of {}", z.len(), big.len());
        let mut h = async_nats::HeaderMap::new();
        h.insert(ENCODING_HEADER, ZSTD);
        assert_eq!(plain_payload(Some(&h), &z).unwrap().as_ref(), &big[..]);
        // Small payloads go as they are, and a message without the header is read as it is.
        assert!(compress(b"{}").is_none());
        assert_eq!(plain_payload(None, b"abc").unwrap().as_ref(), b"abc");
        // A damaged or unknown encoding is an error, not a panic.
        assert!(plain_payload(Some(&h), b"not zstd").is_err());
        let mut odd = async_nats::HeaderMap::new();
        odd.insert(ENCODING_HEADER, "br");
        assert!(plain_payload(Some(&odd), b"x").is_err());
    }

    #[test]
    fn a_traces_spans_and_logs_land_in_one_partition() {
        let t = "4bf92f3577b34da6a3ce929d0e0e4736";
        let spans = Batch::Spans(Arc::new(vec![Span {
            trace_id: t.into(),
            ..Default::default()
        }]));
        let logs = Batch::Logs(Arc::new(vec![
            log(t, &["req-1"], "a"),
            log("", &["req-9"], "b"),
        ]));
        let p = |b: &Batch| {
            let payload = b.encode();
            plan("skein", 8, 1 << 20, b, &payload, Some("agent:1:ab"))
        };
        let s = p(&spans);
        let l = p(&logs);
        let want = format!("skein.spans.{}", partition_of(t, 8));
        assert_eq!(s[0].subject, want);
        assert!(
            l.iter()
                .any(|m| m.subject == format!("skein.logs.{}", partition_of(t, 8)))
        );
        assert!(
            l.iter()
                .any(|m| m.subject == format!("skein.logs.{}", partition_of("req-9", 8)))
        );
        // Ids come from the batch id: the same batch sent again gets the same ids.
        let again = p(&logs);
        let ids: Vec<_> = l.iter().map(|m| m.id.clone()).collect();
        assert_eq!(ids, again.iter().map(|m| m.id.clone()).collect::<Vec<_>>());
        assert!(
            ids.iter()
                .all(|i| i.as_deref().unwrap().starts_with("agent:1:ab:logs:"))
        );
    }

    #[test]
    fn big_shares_are_cut_into_messages_under_the_limit() {
        let body = "x".repeat(1000);
        let recs: Vec<LogRecord> = (0..200).map(|_| log("t1", &[], &body)).collect();
        let b = Batch::Logs(Arc::new(recs));
        let payload = b.encode();
        let msgs = plan("skein", 4, 64 * 1024, &b, &payload, Some("id"));
        assert!(msgs.len() > 1);
        assert!(msgs.iter().all(|m| m.payload.len() <= 64 * 1024));
        let lines: usize = msgs.iter().map(|m| ndjson_lines(&m.payload).count()).sum();
        assert_eq!(lines, 200, "every record is in exactly one message");
        let ids: std::collections::HashSet<_> = msgs.iter().map(|m| m.id.clone()).collect();
        assert_eq!(ids.len(), msgs.len(), "message ids are distinct");
    }
}
