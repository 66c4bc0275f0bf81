//! Shipping: batches go from the disk buffer to the collector over OTLP/HTTP (protobuf,
//! compressed as buffered), up to `collector.max_in_flight` at once, acknowledged in buffer
//! order. A batch is finished when every record in it was either taken by the collector or
//! refused for what it holds; only then are its file positions handed to `on_ack`
//! (checkpoints advance only now) and the buffer cursor moves past it.
//!
//! Every request carries a `skein-batch-id` ([`batch_id_prefix`] of the agent id, the batch's
//! buffer seq, the CRC-32 of the body sent): the same each time the same bytes are sent, so
//! a batch sent again (after a `kill -9`, or a timeout the collector had in fact answered) is
//! stored once by the collector.
//!
//! What each answer does:
//! - 2xx: taken. Records the answer's OTLP partial success names as rejected are dropped,
//!   counted in `skein_agent_records_rejected_total` and `skein_agent_dropped_total{reason=
//!   "partial_success"}`, with the collector's message in the log; the rest are sent.
//! - 408, 429, 5xx, network errors, timeouts: retried forever with exponential backoff and
//!   full jitter between `retry.initial_backoff` and `retry.max_backoff`; a `Retry-After`
//!   header (seconds) wins, capped at 5 minutes. The buffer holds the data meanwhile.
//! - 413 (too large), 400 (malformed) and 422: about the data, so sending the same bytes
//!   again cannot help. The part is split in two halves by records (keeping each record's
//!   resource and scope), and each half is sent the same way, in order, down to single
//!   records. Only a single record that is still refused is dropped, counted in
//!   `skein_agent_records_rejected_total` and `skein_agent_dropped_total{reason="too_large"}`
//!   or `{reason="bad_request"}`, with a log line. A part that cannot be decoded to split
//!   (never happens unless the buffer files were damaged) is dropped the same way, reason
//!   `undecodable`.
//! - Any other status (401, 403 after a token rotation, 404 from a proxy path, 405, 415, …):
//!   a configuration problem, not a problem of the data. Nothing is dropped: the batch holds
//!   and is retried with the same capped backoff until the answer changes, while
//!   `skein_agent_shipping_blocked{reason="status_401"}` is 1 and the heartbeat names the
//!   problem. The buffer keeps filling meanwhile, bounded by `buffer.max_mb` and
//!   `buffer.when_full` as in an outage.
//!
//! With `[stream]` set, batches are published to the cluster's NATS JetStream stream instead
//! ([`stream`]), with the same ids, order and retries.
//!
//! A stop while a batch is failing leaves it unacknowledged: it is sent again after restart
//! (parts of a split batch already taken are split the same way and carry the same ids, so
//! the collector does not store them twice).

use crate::buffer::{Batch, BodyEncoding, Buffer, BufferError, Signal, compress};
use crate::config::{Compression, RetrySection};
use crate::tail::FileId;
use crate::telemetry::Telemetry;
use bytes::Bytes;
use futures::stream::{FuturesOrdered, StreamExt};
use prost::Message;
use skein_model::proto::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use skein_model::proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use skein_model::proto::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use skein_model::proto::logs::v1::{ResourceLogs, ScopeLogs};
use skein_model::proto::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics, metric};
use skein_model::proto::trace::v1::{ResourceSpans, ScopeSpans};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

mod split;
mod stream;
#[cfg(test)]
mod tests;

use split::split_part;
pub use stream::StreamTarget;

/// Longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Most bytes of an answer read (a partial success or an error message).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Largest uncompressed batch decoded to split it. Batches are far smaller (the file path
/// cuts them at `batch.max_bytes`, the receiver at its `max_request_bytes`).
const MAX_SPLIT_BYTES: usize = 256 * 1024 * 1024;

/// Called with the file positions of every finished batch, on the shipper's async task: it
/// must not block (no file I/O, no lock held across one).
pub type OnAck = Arc<dyn Fn(&[(FileId, u64)]) + Send + Sync>;

/// Where and how to send.
#[derive(Clone)]
pub struct Target {
    /// HTTP client (timeouts set).
    pub client: reqwest::Client,
    /// Base URL, no trailing slash.
    pub endpoint: String,
    /// Bearer token.
    pub token: Option<String>,
    /// The first part of every batch id this shipper sends (`skein-batch-id`: this prefix,
    /// the batch's buffer seq, the CRC-32 of the body), from [`batch_id_prefix`]. A batch sent
    /// again after a `kill -9` (its acknowledgement was not saved yet) carries the same id,
    /// and the collector stores it once. None sends no id.
    pub batch_ids: Option<String>,
    /// `[stream]`: batches go to the cluster's stream instead of `endpoint`.
    pub stream: Option<StreamTarget>,
}

/// The agent's part of its batch ids: its id with every character outside letters, digits,
/// `.`, `_`, `-` made `_`, at most 64 characters.
pub fn batch_id_prefix(agent_id: &str) -> String {
    agent_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

/// The id of one part of a batch: unique per agent, buffer seq and body, the same each time
/// the same part is sent.
fn batch_id(prefix: &str, seq: u64, body: &[u8]) -> String {
    format!("{prefix}:{seq}:{:08x}", crc32fast::hash(body))
}

impl Target {
    /// A POST to `path` with the token set.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        let r = self.client.post(format!("{}{path}", self.endpoint));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }
}

/// How one batch ended.
enum Outcome {
    /// Every record was taken (`sent`) or refused for good (`refused`).
    Done { sent: u64, refused: u64 },
    /// Shutdown came while it was failing: not acknowledged, sent again after restart.
    Abandoned,
}

/// What an HTTP status asks of the shipper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Taken.
    Taken,
    /// The collector cannot take it now: retry.
    Retry,
    /// Refused for what the request holds: split, down to single records.
    Refused,
    /// A configuration problem (token, path, proxy): hold and retry, drop nothing.
    Hold,
}

fn verdict(code: u16) -> Verdict {
    match code {
        200..=299 => Verdict::Taken,
        408 | 429 | 500..=599 => Verdict::Retry,
        400 | 413 | 422 => Verdict::Refused,
        _ => Verdict::Hold,
    }
}

/// The shipping loop.
pub struct Shipper {
    /// Where to send.
    pub target: Target,
    /// What to send.
    pub buffer: Arc<Buffer>,
    /// Backoff settings.
    pub retry: RetrySection,
    /// Requests in flight at once.
    pub max_in_flight: usize,
    /// Counters.
    pub telemetry: Telemetry,
    /// Checkpoint hook.
    pub on_ack: OnAck,
}

impl Shipper {
    /// Runs until `stop` turns true, then finishes the requests in flight (bounded by the
    /// request timeout) and returns.
    ///
    /// This task does no file I/O and takes no lock held across one: buffer reads run on a
    /// blocking thread (one at a time, at most `max_in_flight` batches each), while answers
    /// keep being taken and acknowledged; an acknowledgement only moves the buffer's
    /// in-memory cursor and calls `on_ack`. Saving both is the agent's saver's job.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let max = self.max_in_flight.max(1);
        let mut next = self.buffer.cursor();
        let mut inflight = FuturesOrdered::new();
        // The buffer read under way, if any.
        let mut reading: Option<tokio::task::JoinHandle<Result<Vec<Batch>, BufferError>>> = None;
        // The last read found nothing new: wait for an append (or a short timer) first.
        let mut drained = false;
        loop {
            let stopping = *stop.borrow();
            if !stopping && !drained && reading.is_none() && inflight.len() < max {
                let (buffer, from, want) = (self.buffer.clone(), next, max - inflight.len());
                reading = Some(tokio::task::spawn_blocking(move || buffer.read(from, want)));
            }
            if stopping && inflight.is_empty() {
                // A read under way ends on its own; its batches stay in the buffer.
                return;
            }
            tokio::select! {
                read = async {
                    match reading.as_mut() {
                        Some(h) => h.await,
                        None => std::future::pending().await,
                    }
                }, if reading.is_some() && !stopping =>
                {
                    reading = None;
                    let batches = match read {
                        Ok(Ok(b)) => b,
                        Ok(Err(e)) => {
                            tracing::error!(error = %e, "cannot read the disk buffer");
                            Vec::new()
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "the disk buffer read failed");
                            Vec::new()
                        }
                    };
                    drained = batches.is_empty();
                    for b in batches {
                        next = b.seq + 1;
                        inflight.push_back(send(
                            Sender {
                                target: self.target.clone(),
                                retry: self.retry.clone(),
                                telemetry: self.telemetry.clone(),
                                stop: stop.clone(),
                            },
                            b,
                        ));
                    }
                }
                done = inflight.next(), if !inflight.is_empty() => {
                    if let Some((batch, outcome)) = done {
                        self.finish(batch, outcome);
                    }
                }
                _ = self.buffer.appended.notified(), if drained => drained = false,
                _ = tokio::time::sleep(Duration::from_millis(250)), if drained => drained = false,
                _ = stop.changed(), if !stopping => {}
            }
        }
    }

    /// Counts a finished batch and acknowledges it: `on_ack`, then the buffer's cursor. Both
    /// are in memory; no file is touched here.
    fn finish(&self, b: Batch, outcome: Outcome) {
        tracing::debug!(seq = b.seq, positions = ?b.positions, "batch finished");
        let signal = b.signal.name();
        match outcome {
            Outcome::Done { sent, refused } => {
                if sent > 0 {
                    self.telemetry.records_sent(signal, sent);
                }
                if refused > 0 {
                    self.telemetry.records_rejected(signal, refused);
                }
            }
            Outcome::Abandoned => return,
        }
        (self.on_ack)(&b.positions);
        self.buffer.ack(b.seq + 1);
    }
}

/// What one batch's sending needs.
struct Sender {
    target: Target,
    retry: RetrySection,
    telemetry: Telemetry,
    stop: watch::Receiver<bool>,
}

/// A part of a batch: the whole batch, or a half of a part the collector refused.
#[derive(Clone)]
struct Part {
    body: Bytes,
    encoding: BodyEncoding,
    records: u64,
}

/// How the collector answered one part, once retrying was over.
enum PartEnd {
    /// Taken; `rejected` of its records were refused one by one (partial success).
    Taken { rejected: u64, message: String },
    /// Refused for what it holds (400, 413, 422).
    Refused { status: u16, answer: String },
    /// Shutdown came while it was failing.
    Abandoned,
}

/// Sends one batch until each of its records is taken or refused for good, or shutdown
/// comes while it fails.
async fn send(s: Sender, mut batch: Batch) -> (Batch, Outcome) {
    let signal = batch.signal;
    let name = signal.name();
    // A stack: the next part to send is the last one.
    let mut parts = vec![Part {
        body: Bytes::from(std::mem::take(&mut batch.body)),
        encoding: batch.encoding,
        records: u64::from(batch.records),
    }];
    let (mut sent, mut refused) = (0u64, 0u64);
    while let Some(part) = parts.pop() {
        match send_part(&s, signal, batch.seq, &part).await {
            PartEnd::Abandoned => return (batch, Outcome::Abandoned),
            PartEnd::Taken { rejected, message } => {
                let rejected = rejected.min(part.records);
                sent += part.records - rejected;
                if rejected > 0 {
                    refused += rejected;
                    s.telemetry.dropped("partial_success", rejected);
                    tracing::error!(
                        rejected,
                        records = part.records,
                        signal = name,
                        answer = %message.chars().take(500).collect::<String>(),
                        "the collector took a batch but refused some of its records; those are dropped"
                    );
                }
            }
            PartEnd::Refused { status, answer } => {
                let records = part.records;
                let halves = if records > 1 {
                    split_part(signal, part).await
                } else {
                    None
                };
                if let Some([first, second]) = halves {
                    tracing::debug!(
                        status,
                        records,
                        signal = name,
                        "the collector refused a batch for its content; sending it in halves"
                    );
                    parts.push(second);
                    parts.push(first);
                    continue;
                }
                let reason = if records > 1 {
                    "undecodable"
                } else if status == 413 {
                    "too_large"
                } else {
                    "bad_request"
                };
                refused += records;
                s.telemetry.dropped(reason, records);
                tracing::error!(
                    status,
                    records,
                    signal = name,
                    reason,
                    answer = %answer.chars().take(500).collect::<String>(),
                    "the collector refused a record on its own; it is dropped, not retried"
                );
            }
        }
    }
    (batch, Outcome::Done { sent, refused })
}

/// Sends one part until it is taken or refused for its content, or shutdown comes.
async fn send_part(s: &Sender, signal: Signal, seq: u64, part: &Part) -> PartEnd {
    let name = signal.name();
    let id = s
        .target
        .batch_ids
        .as_deref()
        .map(|prefix| batch_id(prefix, seq, &part.body));
    if let Some(st) = &s.target.stream {
        return stream::send_part(s, st, signal, id, part).await;
    }
    let mut backoff = s.retry.initial_backoff.0;
    loop {
        let mut req = s
            .target
            .post(signal.path())
            .header("content-type", "application/x-protobuf")
            .body(part.body.clone());
        if let Some(enc) = part.encoding.header() {
            req = req.header("content-encoding", enc);
        }
        if let Some(id) = &id {
            req = req.header(skein_model::batch_id::HEADER, id.as_str());
        }
        let wait = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let code = status.as_u16();
                let v = verdict(code);
                if v != Verdict::Hold {
                    // The endpoint and the token work: whatever blocked shipping is over.
                    s.telemetry.set_shipping_blocked(None);
                }
                if v == Verdict::Taken {
                    let answer = read_answer(resp).await;
                    let (rejected, message) = partial_success(signal, &answer);
                    tracing::debug!(records = part.records, signal = name, "batch acknowledged");
                    return PartEnd::Taken { rejected, message };
                }
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
                s.telemetry.request_failed(name, &format!("status_{code}"));
                let answer = String::from_utf8_lossy(&read_answer(resp).await).into_owned();
                let answer: String = answer.chars().take(500).collect();
                match v {
                    Verdict::Refused => {
                        return PartEnd::Refused {
                            status: code,
                            answer,
                        };
                    }
                    Verdict::Hold => {
                        let reason = format!("status_{code}");
                        let detail = format!(
                            "the collector answers {code} to {}: {answer}",
                            signal.path()
                        );
                        tracing::warn!(
                            status = code,
                            signal = name,
                            answer = %answer,
                            "the collector refuses batches for a reason that is not their content \
                             (token, address, proxy); holding them and retrying, nothing is dropped"
                        );
                        s.telemetry.set_shipping_blocked(Some((&reason, &detail)));
                    }
                    _ => tracing::warn!(
                        status = code,
                        signal = name,
                        "the collector cannot take a batch now; retrying"
                    ),
                }
                retry_after
            }
            Err(e) => {
                let reason = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "network"
                };
                s.telemetry.request_failed(name, reason);
                tracing::warn!(error = %e, signal = name, "cannot reach the collector; retrying");
                None
            }
        };
        if *s.stop.borrow() {
            return PartEnd::Abandoned;
        }
        let sleep = wait.unwrap_or_else(|| {
            // Full jitter: anywhere between zero and the current backoff.
            let ms = u64::try_from(backoff.as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            Duration::from_millis(fastrand::u64(0..=ms))
        });
        backoff = (backoff * 2).min(s.retry.max_backoff.0);
        s.telemetry.retry(name);
        let mut stop = s.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = stop.wait_for(|v| *v) => return PartEnd::Abandoned,
        }
    }
}

/// The start of an answer's body, at most [`MAX_ANSWER_BYTES`]; empty when it cannot be read.
async fn read_answer(mut resp: reqwest::Response) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < MAX_ANSWER_BYTES {
        match resp.chunk().await {
            Ok(Some(c)) => out.extend_from_slice(&c[..c.len().min(MAX_ANSWER_BYTES - out.len())]),
            _ => break,
        }
    }
    out
}

/// Records rejected in a 2xx answer (OTLP partial success, protobuf as asked for) and the
/// collector's message. An answer that is empty or not one (a proxy's) rejects nothing.
fn partial_success(signal: Signal, answer: &[u8]) -> (u64, String) {
    let found = match signal {
        Signal::Logs => ExportLogsServiceResponse::decode(answer)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_log_records, p.error_message)),
        Signal::Traces => ExportTraceServiceResponse::decode(answer)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_spans, p.error_message)),
        Signal::Metrics => ExportMetricsServiceResponse::decode(answer)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_data_points, p.error_message)),
    };
    match found {
        Some((n, m)) => (u64::try_from(n).unwrap_or(0), m),
        None => (0, String::new()),
    }
}
