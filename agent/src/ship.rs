//! Shipping: batches go from the disk buffer to the collector over OTLP/HTTP (protobuf,
//! compressed as buffered), up to `collector.max_in_flight` at once, acknowledged in buffer
//! order. A batch is finished when every record in it was either taken by the collector or
//! refused for what it holds; only then are its file positions handed to `on_ack`
//! (checkpoints advance only now: at-least-once) and the buffer cursor moves past it.
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
//! A stop while a batch is failing leaves it unacknowledged: it is sent again after restart
//! (parts of a split batch already taken are then sent twice, as at-least-once allows).

use crate::buffer::{Batch, BodyEncoding, Buffer, Signal, compress};
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

/// Longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Most bytes of an answer read (a partial success or an error message).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Largest uncompressed batch decoded to split it. Batches are far smaller (the file path
/// cuts them at `batch.max_bytes`, the receiver at its `max_request_bytes`).
const MAX_SPLIT_BYTES: usize = 256 * 1024 * 1024;

/// Called with the file positions of every finished batch.
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
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut next = self.buffer.cursor();
        let mut inflight = FuturesOrdered::new();
        loop {
            let stopping = *stop.borrow();
            if !stopping {
                while inflight.len() < self.max_in_flight.max(1) {
                    let want = self.max_in_flight.max(1) - inflight.len();
                    let batches = match self.buffer.read(next, want) {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot read the disk buffer");
                            Vec::new()
                        }
                    };
                    if batches.is_empty() {
                        break;
                    }
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
            }
            if inflight.is_empty() {
                if stopping {
                    return;
                }
                tokio::select! {
                    _ = self.buffer.appended.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            tokio::select! {
                done = inflight.next() => {
                    if let Some((batch, outcome)) = done {
                        self.finish(batch, outcome);
                    }
                }
                _ = stop.changed(), if !stopping => {}
            }
        }
    }

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
        if let Err(e) = self.buffer.ack(b.seq + 1) {
            tracing::error!(error = %e, "cannot move the buffer cursor");
        }
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
        match send_part(&s, signal, &part).await {
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
async fn send_part(s: &Sender, signal: Signal, part: &Part) -> PartEnd {
    let name = signal.name();
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

/// Splits a part in two halves by records, off the async workers. `None` when it cannot be
/// decoded or holds fewer than two records.
async fn split_part(signal: Signal, part: Part) -> Option<[Part; 2]> {
    tokio::task::spawn_blocking(move || split(signal, part.encoding, &part.body))
        .await
        .ok()
        .flatten()
}

/// The uncompressed body, if it decompresses to at most [`MAX_SPLIT_BYTES`].
fn decompress(encoding: BodyEncoding, body: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let limit = u64::try_from(MAX_SPLIT_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut out = Vec::new();
    match encoding {
        BodyEncoding::Identity => return Some(body.to_vec()),
        BodyEncoding::Zstd => zstd::stream::read::Decoder::new(body)
            .ok()?
            .take(limit)
            .read_to_end(&mut out)
            .ok()?,
        BodyEncoding::Gzip => flate2::read::GzDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out)
            .ok()?,
    };
    (out.len() <= MAX_SPLIT_BYTES).then_some(out)
}

/// An encoded request as a part, compressed like the part it came from.
fn part(plain: &[u8], encoding: BodyEncoding, records: u64) -> Part {
    let how = match encoding {
        BodyEncoding::Identity => Compression::None,
        BodyEncoding::Zstd => Compression::Zstd,
        BodyEncoding::Gzip => Compression::Gzip,
    };
    let (encoding, body) = compress(plain, how);
    Part {
        body: Bytes::from(body),
        encoding,
        records,
    }
}

/// Splits an encoded export request in two halves by records (log records, spans, metric
/// points), keeping their order and each record's resource and scope.
fn split(signal: Signal, encoding: BodyEncoding, body: &[u8]) -> Option<[Part; 2]> {
    let plain = decompress(encoding, body)?;
    let (first, second, n) = match signal {
        Signal::Logs => {
            let mut a = ExportLogsServiceRequest::decode(&plain[..]).ok()?;
            let n = units(&a.resource_logs);
            if n < 2 {
                return None;
            }
            let b = ExportLogsServiceRequest {
                resource_logs: split_vec(&mut a.resource_logs, n / 2),
            };
            (a.encode_to_vec(), b.encode_to_vec(), n)
        }
        Signal::Traces => {
            let mut a = ExportTraceServiceRequest::decode(&plain[..]).ok()?;
            let n = units(&a.resource_spans);
            if n < 2 {
                return None;
            }
            let b = ExportTraceServiceRequest {
                resource_spans: split_vec(&mut a.resource_spans, n / 2),
            };
            (a.encode_to_vec(), b.encode_to_vec(), n)
        }
        Signal::Metrics => {
            let mut a = ExportMetricsServiceRequest::decode(&plain[..]).ok()?;
            let n = units(&a.resource_metrics);
            if n < 2 {
                return None;
            }
            let b = ExportMetricsServiceRequest {
                resource_metrics: split_vec(&mut a.resource_metrics, n / 2),
            };
            (a.encode_to_vec(), b.encode_to_vec(), n)
        }
    };
    drop(plain);
    Some([
        part(&first, encoding, n / 2),
        part(&second, encoding, n - n / 2),
    ])
}

/// A level of an export request that holds records (log records, spans, metric points).
trait Level: Sized {
    /// Records under it.
    fn units(&self) -> u64;
    /// Keeps its first `n` records (0 < n < units) and returns the others under a copy of
    /// what surrounds them (resource, scope, metric name).
    fn split_off(&mut self, n: u64) -> Self;
}

fn units<T: Level>(v: &[T]) -> u64 {
    v.iter().map(Level::units).sum()
}

/// Keeps the first `n` records of a list of levels and returns the others, in order.
fn split_vec<T: Level>(v: &mut Vec<T>, n: u64) -> Vec<T> {
    let mut seen = 0u64;
    for i in 0..v.len() {
        let u = v[i].units();
        if seen + u == n {
            return v.split_off(i + 1);
        }
        if seen + u > n {
            let tail = v[i].split_off(n - seen);
            let mut rest = v.split_off(i + 1);
            rest.insert(0, tail);
            return rest;
        }
        seen += u;
    }
    Vec::new()
}

/// Keeps the first `n` records of a list of records and returns the others.
fn split_leaves<T>(v: &mut Vec<T>, n: u64) -> Vec<T> {
    let at = usize::try_from(n).unwrap_or(usize::MAX).min(v.len());
    v.split_off(at)
}

/// A copy of `x` without its `field`, which `x` keeps; cloning only what surrounds it.
macro_rules! shell {
    ($x:expr, $field:ident) => {{
        let kept = std::mem::take(&mut $x.$field);
        let shell = $x.clone();
        $x.$field = kept;
        shell
    }};
}

macro_rules! level {
    ($t:ty, $field:ident, records) => {
        impl Level for $t {
            fn units(&self) -> u64 {
                self.$field.len() as u64
            }
            fn split_off(&mut self, n: u64) -> Self {
                let mut rest = shell!(self, $field);
                rest.$field = split_leaves(&mut self.$field, n);
                rest
            }
        }
    };
    ($t:ty, $field:ident) => {
        impl Level for $t {
            fn units(&self) -> u64 {
                units(&self.$field)
            }
            fn split_off(&mut self, n: u64) -> Self {
                let mut rest = shell!(self, $field);
                rest.$field = split_vec(&mut self.$field, n);
                rest
            }
        }
    };
}

level!(ResourceLogs, scope_logs);
level!(ScopeLogs, log_records, records);
level!(ResourceSpans, scope_spans);
level!(ScopeSpans, spans, records);
level!(ResourceMetrics, scope_metrics);
level!(ScopeMetrics, metrics);

impl Level for Metric {
    fn units(&self) -> u64 {
        (match &self.data {
            Some(metric::Data::Gauge(g)) => g.data_points.len(),
            Some(metric::Data::Sum(s)) => s.data_points.len(),
            Some(metric::Data::Histogram(h)) => h.data_points.len(),
            Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(metric::Data::Summary(s)) => s.data_points.len(),
            None => 0,
        }) as u64
    }

    fn split_off(&mut self, n: u64) -> Self {
        let mut rest = shell!(self, data);
        rest.data = match &mut self.data {
            Some(metric::Data::Gauge(g)) => {
                let mut r = shell!(g, data_points);
                r.data_points = split_leaves(&mut g.data_points, n);
                Some(metric::Data::Gauge(r))
            }
            Some(metric::Data::Sum(s)) => {
                let mut r = shell!(s, data_points);
                r.data_points = split_leaves(&mut s.data_points, n);
                Some(metric::Data::Sum(r))
            }
            Some(metric::Data::Histogram(h)) => {
                let mut r = shell!(h, data_points);
                r.data_points = split_leaves(&mut h.data_points, n);
                Some(metric::Data::Histogram(r))
            }
            Some(metric::Data::ExponentialHistogram(h)) => {
                let mut r = shell!(h, data_points);
                r.data_points = split_leaves(&mut h.data_points, n);
                Some(metric::Data::ExponentialHistogram(r))
            }
            Some(metric::Data::Summary(s)) => {
                let mut r = shell!(s, data_points);
                r.data_points = split_leaves(&mut s.data_points, n);
                Some(metric::Data::Summary(r))
            }
            None => None,
        };
        rest
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    //! The shipper against a real HTTP server on 127.0.0.1 that answers from a script.

    use super::*;
    use crate::buffer::{BodyEncoding, Signal};
    use crate::config::Dur;
    use axum::http::{HeaderMap, StatusCode, Uri};
    use prost::Message;
    use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
    use skein_model::proto::common::v1::{AnyValue, any_value};
    use skein_model::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use skein_model::proto::resource::v1::Resource;
    use std::collections::VecDeque;
    use std::net::SocketAddr;
    use std::sync::Mutex;
    use std::time::Instant;
    use tokio::net::TcpListener;

    /// One answer of the fake collector: status and optional `Retry-After`.
    type Answer = (u16, Option<&'static str>);

    /// Answers chosen from a request's path and uncompressed body; `None` leaves the
    /// answer to the script.
    type Judge = Arc<dyn Fn(&str, &[u8]) -> Option<(u16, Vec<u8>)> + Send + Sync>;

    /// One request the fake collector saw.
    #[derive(Debug, Clone)]
    struct Seen {
        at: Instant,
        path: String,
        body: Vec<u8>,
        /// The body uncompressed.
        plain: Vec<u8>,
        encoding: Option<String>,
        status: u16,
    }

    /// A fake collector: answers from `judge`, then `script`, then `default` forever.
    #[derive(Clone)]
    struct Fake {
        seen: Arc<Mutex<Vec<Seen>>>,
        script: Arc<Mutex<VecDeque<Answer>>>,
        default: Arc<Mutex<Answer>>,
        judge: Option<Judge>,
        /// Requests with this body wait for a permit before they are answered.
        gate: Option<(Vec<u8>, Arc<tokio::sync::Semaphore>)>,
    }

    impl Fake {
        fn new(script: &[Answer], default: Answer) -> Fake {
            Fake {
                seen: Arc::default(),
                script: Arc::new(Mutex::new(script.iter().copied().collect())),
                default: Arc::new(Mutex::new(default)),
                judge: None,
                gate: None,
            }
        }

        fn judged(
            judge: impl Fn(&str, &[u8]) -> Option<(u16, Vec<u8>)> + Send + Sync + 'static,
        ) -> Fake {
            let mut f = Fake::new(&[], (200, None));
            f.judge = Some(Arc::new(judge));
            f
        }

        fn set_default(&self, a: Answer) {
            *self.default.lock().unwrap() = a;
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }

        /// Attempts made for the batch whose body is `body`.
        fn attempts(&self, body: &[u8]) -> Vec<Seen> {
            self.seen().into_iter().filter(|s| s.body == body).collect()
        }

        /// Bodies answered 2xx, in the order they arrived.
        fn delivered(&self) -> Vec<Vec<u8>> {
            self.seen()
                .into_iter()
                .filter(|s| (200..300).contains(&s.status))
                .map(|s| s.body)
                .collect()
        }

        /// Uncompressed bodies answered 2xx on `path`, in the order they arrived.
        fn delivered_plain(&self, path: &str) -> Vec<Vec<u8>> {
            self.seen()
                .into_iter()
                .filter(|s| (200..300).contains(&s.status) && s.path == path)
                .map(|s| s.plain)
                .collect()
        }

        /// Serves on `listener` until the test ends.
        fn serve(&self, listener: TcpListener) {
            let fake = self.clone();
            let app = axum::Router::new().fallback(
                move |uri: Uri, headers: HeaderMap, body: bytes::Bytes| {
                    let fake = fake.clone();
                    async move {
                        if let Some((gated, sem)) = &fake.gate
                            && body.as_ref() == gated.as_slice()
                        {
                            sem.acquire().await.unwrap().forget();
                        }
                        let encoding = headers
                            .get("content-encoding")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        let plain = match encoding.as_deref() {
                            Some("zstd") => zstd::decode_all(body.as_ref()).unwrap(),
                            Some("gzip") => {
                                use std::io::Read;
                                let mut out = Vec::new();
                                flate2::read::GzDecoder::new(body.as_ref())
                                    .read_to_end(&mut out)
                                    .unwrap();
                                out
                            }
                            _ => body.to_vec(),
                        };
                        let judged = fake.judge.as_ref().and_then(|j| j(uri.path(), &plain));
                        let (status, retry_after, answer) = match judged {
                            Some((status, answer)) => (status, None, answer),
                            None => {
                                let (status, retry_after) = fake
                                    .script
                                    .lock()
                                    .unwrap()
                                    .pop_front()
                                    .unwrap_or(*fake.default.lock().unwrap());
                                let answer = if (200..300).contains(&status) {
                                    Vec::new()
                                } else {
                                    br#"{"error":"scripted","message":"scripted answer"}"#.to_vec()
                                };
                                (status, retry_after, answer)
                            }
                        };
                        fake.seen.lock().unwrap().push(Seen {
                            at: Instant::now(),
                            path: uri.path().to_string(),
                            body: body.to_vec(),
                            plain,
                            encoding,
                            status,
                        });
                        let mut resp =
                            axum::response::Response::new(axum::body::Body::from(answer));
                        *resp.status_mut() = StatusCode::from_u16(status).unwrap();
                        if (200..300).contains(&status) {
                            resp.headers_mut()
                                .insert("content-type", "application/x-protobuf".parse().unwrap());
                        }
                        if let Some(ra) = retry_after {
                            resp.headers_mut()
                                .insert("retry-after", ra.parse().unwrap());
                        }
                        resp
                    }
                },
            );
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
        }

        /// Starts serving on a free port; returns its address.
        async fn start(&self) -> SocketAddr {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            self.serve(l);
            addr
        }
    }

    fn file(n: u64) -> FileId {
        FileId {
            dev: 1,
            ino: n,
            fp: 7,
        }
    }

    fn body(i: u64) -> Vec<u8> {
        format!("batch-{i}").into_bytes()
    }

    /// A buffer in `dir` holding `n` log batches: batch i has 10 + i records, body
    /// `batch-i` and the position (file i, 100 * (i + 1)).
    /// Returns the buffer and the seq of its first batch (the cursor before any ack).
    fn buffer(dir: &std::path::Path, n: u64) -> (Arc<Buffer>, u64) {
        let b = Buffer::open(dir, 1 << 20, 1 << 16).unwrap();
        for i in 0..n {
            let records = u32::try_from(10 + i).unwrap();
            b.append(
                Signal::Logs,
                records,
                &[(file(i), 100 * (i + 1))],
                BodyEncoding::Identity,
                &body(i),
                false,
            )
            .unwrap();
        }
        let first = b.read(0, 1).unwrap()[0].seq;
        assert_eq!(b.cursor(), first);
        (Arc::new(b), first)
    }

    /// What `on_ack` was given, call by call.
    type Acks = Arc<Mutex<Vec<Vec<(FileId, u64)>>>>;

    struct Running {
        acks: Acks,
        telemetry: Telemetry,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Running {
        fn acks(&self) -> Vec<Vec<(FileId, u64)>> {
            self.acks.lock().unwrap().clone()
        }

        /// Stops the shipper and waits (bounded) for `run` to return.
        async fn stop(self) {
            self.stop.send(true).unwrap();
            tokio::time::timeout(Duration::from_secs(10), self.task)
                .await
                .expect("Shipper::run returns after stop")
                .unwrap();
        }
    }

    fn ship(
        buffer: &Arc<Buffer>,
        addr: SocketAddr,
        retry: RetrySection,
        max_in_flight: usize,
    ) -> Running {
        let acks: Acks = Arc::default();
        let a = acks.clone();
        let telemetry = Telemetry::new();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let shipper = Shipper {
            target: Target {
                client,
                endpoint: format!("http://{addr}"),
                token: None,
            },
            buffer: buffer.clone(),
            retry,
            max_in_flight,
            telemetry: telemetry.clone(),
            on_ack: Arc::new(move |p: &[(FileId, u64)]| a.lock().unwrap().push(p.to_vec())),
        };
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(shipper.run(rx));
        Running {
            acks,
            telemetry,
            stop,
            task,
        }
    }

    fn fast_retry() -> RetrySection {
        RetrySection {
            initial_backoff: Dur::millis(10),
            max_backoff: Dur::millis(50),
        }
    }

    /// Polls `cond` every 10 ms for up to 20 s.
    async fn until(what: &str, mut cond: impl FnMut() -> bool) {
        let started = Instant::now();
        while !cond() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn retry_after_is_honoured_then_the_batch_is_delivered_and_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let (buf, first) = buffer(dir.path(), 2);
        let fake = Fake::new(&[(503, Some("1")), (503, Some("1"))], (200, None));
        let addr = fake.start().await;
        // The default backoff (200 ms) is far below Retry-After: the gap proves the header won.
        let run = ship(&buf, addr, RetrySection::default(), 1);
        until("both batches acknowledged", || buf.cursor() == first + 2).await;

        let tries = fake.attempts(&body(0));
        assert_eq!(tries.len(), 3, "two 503s then a 200: {tries:?}");
        assert_eq!(
            tries.iter().map(|s| s.status).collect::<Vec<_>>(),
            vec![503, 503, 200]
        );
        assert!(
            tries
                .iter()
                .all(|s| s.path == "/v1/logs" && s.encoding.is_none())
        );
        let gap = tries[1].at - tries[0].at;
        assert!(
            gap >= Duration::from_millis(900),
            "Retry-After: 1 waits about a second, not {gap:?}"
        );
        let gap = tries[2].at - tries[1].at;
        assert!(gap >= Duration::from_millis(900), "second wait {gap:?}");
        assert_eq!(fake.attempts(&body(1)).len(), 1);
        assert_eq!(fake.delivered(), vec![body(0), body(1)]);
        assert_eq!(
            run.acks(),
            vec![vec![(file(0), 100)], vec![(file(1), 200)]],
            "on_ack gets each batch's positions, in buffer order"
        );
        assert!(buf.read(0, 10).unwrap().is_empty(), "nothing left to send");
        let text = run.telemetry.encode();
        assert!(
            text.contains("skein_agent_records_sent_total{signal=\"logs\"} 21"),
            "{text}"
        );
        assert!(
            text.contains("skein_agent_retries_total{signal=\"logs\"} 2"),
            "{text}"
        );
        run.stop().await;
    }

    #[tokio::test]
    async fn a_400_drops_the_batch_after_one_attempt_and_the_next_one_goes() {
        let dir = tempfile::tempdir().unwrap();
        let (buf, first) = buffer(dir.path(), 2);
        let fake = Fake::new(&[(400, None)], (200, None));
        let addr = fake.start().await;
        let run = ship(&buf, addr, fast_retry(), 1);
        until("both batches finished", || buf.cursor() == first + 2).await;
        // Give a wrongly retried batch time to show up again.
        tokio::time::sleep(Duration::from_millis(300)).await;

        assert_eq!(
            fake.attempts(&body(0)).len(),
            1,
            "a 400 is not retried: {:?}",
            fake.seen()
        );
        assert_eq!(fake.delivered(), vec![body(1)]);
        assert_eq!(
            buf.cursor(),
            first + 2,
            "the cursor moved past the refused batch"
        );
        // A refused batch is never coming back: its lines are done, so its positions are
        // handed on like a sent batch's.
        assert_eq!(run.acks(), vec![vec![(file(0), 100)], vec![(file(1), 200)]]);
        let text = run.telemetry.encode();
        assert!(
            text.contains("skein_agent_records_rejected_total{signal=\"logs\"} 10"),
            "{text}"
        );
        assert!(
            text.contains("skein_agent_records_sent_total{signal=\"logs\"} 11"),
            "{text}"
        );
        assert!(
            !text.contains("skein_agent_retries_total{signal=\"logs\"}"),
            "no retry was counted: {text}"
        );
        run.stop().await;
    }

    #[tokio::test]
    async fn a_429_without_retry_after_is_retried_with_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let (buf, first) = buffer(dir.path(), 1);
        let fake = Fake::new(&[(429, None), (429, None), (500, None)], (200, None));
        let addr = fake.start().await;
        let run = ship(&buf, addr, fast_retry(), 1);
        until("the batch acknowledged", || buf.cursor() == first + 1).await;

        let statuses: Vec<u16> = fake.attempts(&body(0)).iter().map(|s| s.status).collect();
        assert_eq!(statuses, vec![429, 429, 500, 200]);
        assert_eq!(run.acks(), vec![vec![(file(0), 100)]]);
        let text = run.telemetry.encode();
        assert!(
            text.contains("skein_agent_retries_total{signal=\"logs\"} 3"),
            "{text}"
        );
        assert!(text.contains("reason=\"status_429\""), "{text}");
        assert!(
            !text.contains("skein_agent_records_rejected_total{"),
            "a 429 is not a refusal: {text}"
        );
        run.stop().await;
    }

    #[tokio::test]
    async fn a_collector_that_is_down_then_up_gets_every_batch_in_buffer_order() {
        let dir = tempfile::tempdir().unwrap();
        let (buf, first) = buffer(dir.path(), 4);
        // A port with nobody listening: connections are refused.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let run = ship(&buf, addr, fast_retry(), 1);
        until("connection errors counted", || {
            run.telemetry
                .encode()
                .contains("skein_agent_retries_total{signal=\"logs\"}")
        })
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(buf.cursor(), first, "nothing is acknowledged while down");
        assert!(run.acks().is_empty());
        let text = run.telemetry.encode();
        assert!(text.contains("reason=\"connect\""), "{text}");

        let fake = Fake::new(&[], (200, None));
        let l = TcpListener::bind(addr).await.unwrap();
        fake.serve(l);
        until("every batch acknowledged", || buf.cursor() == first + 4).await;
        assert_eq!(
            fake.delivered(),
            (0..4).map(body).collect::<Vec<_>>(),
            "delivered in buffer order, once each"
        );
        assert_eq!(
            run.acks(),
            (0..4)
                .map(|i| vec![(file(i), 100 * (i + 1))])
                .collect::<Vec<_>>()
        );
        run.stop().await;
    }

    #[tokio::test]
    async fn acknowledgements_follow_buffer_order_with_several_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let (buf, first) = buffer(dir.path(), 4);
        // The first batch's answer is held back until the test lets it go; the later ones
        // are answered at once.
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let mut fake = Fake::new(&[], (200, None));
        fake.gate = Some((body(0), gate.clone()));
        let addr = fake.start().await;
        let run = ship(&buf, addr, fast_retry(), 4);
        until("the later batches answered", || fake.delivered().len() == 3).await;
        assert_eq!(fake.delivered(), (1..4).map(body).collect::<Vec<_>>());
        // Let the shipper see those answers; none of them may be acknowledged before batch 0.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(buf.cursor(), first, "the cursor waits for the oldest batch");
        assert!(run.acks().is_empty(), "{:?}", run.acks());

        gate.add_permits(1);
        until("every batch acknowledged", || buf.cursor() == first + 4).await;
        assert_eq!(
            run.acks(),
            (0..4)
                .map(|i| vec![(file(i), 100 * (i + 1))])
                .collect::<Vec<_>>(),
            "positions are handed on in buffer order even when later batches finish first"
        );
        assert_eq!(fake.attempts(&body(0)).len(), 1);
        run.stop().await;
    }

    #[tokio::test]
    async fn stop_while_failing_returns_promptly_without_acknowledging() {
        let dir = tempfile::tempdir().unwrap();
        let (buf, first) = buffer(dir.path(), 2);
        // Always 503 with a long Retry-After: the shipper is asleep when the stop comes.
        let fake = Fake::new(&[], (503, Some("30")));
        let addr = fake.start().await;
        let run = ship(&buf, addr, fast_retry(), 1);
        until("a first attempt", || !fake.seen().is_empty()).await;
        let acks = run.acks.clone();
        run.stop().await;

        assert_eq!(buf.cursor(), first, "the failing batch is not acknowledged");
        assert!(acks.lock().unwrap().is_empty(), "on_ack was not called");
        assert!(fake.delivered().is_empty());
        assert_eq!(fake.attempts(&body(0)).len(), 1);
        assert!(fake.attempts(&body(1)).is_empty());
        let left = buf.read(0, 10).unwrap();
        assert_eq!(
            left.iter().map(|b| b.body.clone()).collect::<Vec<_>>(),
            vec![body(0), body(1)],
            "both batches are still there for the next start"
        );
    }

    /// A logs request holding one record per body, the first half under one resource and
    /// the rest under another (two scopes there), so splits cross every level.
    fn logs_request(bodies: &[String]) -> ExportLogsServiceRequest {
        let rec = |b: &String| LogRecord {
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(b.clone())),
            }),
            ..Default::default()
        };
        let half = bodies.len() / 2;
        let quarter = half + (bodies.len() - half) / 2;
        let scope = |recs: &[String]| ScopeLogs {
            log_records: recs.iter().map(rec).collect(),
            ..Default::default()
        };
        ExportLogsServiceRequest {
            resource_logs: vec![
                ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![crate::receiver::string_kv("service.name", "a")],
                        ..Default::default()
                    }),
                    scope_logs: vec![scope(&bodies[..half])],
                    ..Default::default()
                },
                ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![crate::receiver::string_kv("service.name", "b")],
                        ..Default::default()
                    }),
                    scope_logs: vec![scope(&bodies[half..quarter]), scope(&bodies[quarter..])],
                    ..Default::default()
                },
            ],
        }
    }

    /// The record bodies of an uncompressed logs request, with their service, in order.
    fn records_in(plain: &[u8]) -> Vec<String> {
        let req = ExportLogsServiceRequest::decode(plain).unwrap();
        let mut out = Vec::new();
        for rl in &req.resource_logs {
            let service = match &rl.resource.as_ref().unwrap().attributes[0].value {
                Some(AnyValue {
                    value: Some(any_value::Value::StringValue(s)),
                }) => s.clone(),
                other => panic!("service {other:?}"),
            };
            for sl in &rl.scope_logs {
                for r in &sl.log_records {
                    match &r.body {
                        Some(AnyValue {
                            value: Some(any_value::Value::StringValue(s)),
                        }) => out.push(format!("{service}/{s}")),
                        other => panic!("body {other:?}"),
                    }
                }
            }
        }
        out
    }

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    /// What `records_in` gives for every record of `logs_request(bodies)`.
    fn expected(bodies: &[String]) -> Vec<String> {
        records_in(&logs_request(bodies).encode_to_vec())
    }

    /// A buffer holding one zstd logs batch per entry of `batches`; batch i ends file i at
    /// 100 * (i + 1).
    fn logs_buffer(dir: &std::path::Path, batches: &[Vec<String>]) -> (Arc<Buffer>, u64) {
        let b = Buffer::open(dir, 1 << 24, 1 << 20).unwrap();
        for (i, bodies) in batches.iter().enumerate() {
            let i = i as u64;
            let (enc, body) = crate::buffer::compress(
                &logs_request(bodies).encode_to_vec(),
                crate::config::Compression::Zstd,
            );
            b.append(
                Signal::Logs,
                u32::try_from(bodies.len()).unwrap(),
                &[(file(i), 100 * (i + 1))],
                enc,
                &body,
                false,
            )
            .unwrap();
        }
        let first = b.read(0, 1).unwrap()[0].seq;
        (Arc::new(b), first)
    }

    /// Log records in an uncompressed logs request.
    fn count_logs(plain: &[u8]) -> usize {
        records_in(plain).len()
    }

    #[tokio::test]
    async fn auth_and_routing_errors_hold_the_batch_until_the_collector_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let batches = vec![names("x", 3), names("y", 4)];
        let (buf, first) = logs_buffer(dir.path(), &batches);
        let fake = Fake::new(&[], (401, None));
        let addr = fake.start().await;
        let run = ship(&buf, addr, fast_retry(), 2);
        until("several refused attempts", || fake.seen().len() >= 6).await;
        assert_eq!(buf.cursor(), first, "nothing is acknowledged while refused");
        assert!(run.acks().is_empty(), "{:?}", run.acks());
        let text = run.telemetry.encode();
        assert!(
            text.contains("skein_agent_shipping_blocked{reason=\"status_401\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("skein_agent_records_rejected_total{"),
            "{text}"
        );
        assert!(!text.contains("skein_agent_dropped_total{"), "{text}");

        for status in [403, 404, 405, 415] {
            let before = fake.seen().len();
            fake.set_default((status, None));
            until("attempts with the new status", || {
                fake.seen()[before..]
                    .iter()
                    .filter(|s| s.status == status)
                    .count()
                    >= 2
            })
            .await;
            let text = run.telemetry.encode();
            assert!(
                text.contains(&format!(
                    "skein_agent_shipping_blocked{{reason=\"status_{status}\"}} 1"
                )),
                "{text}"
            );
            assert!(
                text.contains("skein_agent_shipping_blocked{reason=\"status_401\"} 0"),
                "one reason at a time: {text}"
            );
            assert_eq!(buf.cursor(), first);
        }

        fake.set_default((200, None));
        until("both batches acknowledged", || buf.cursor() == first + 2).await;
        let got: Vec<String> = fake
            .delivered_plain("/v1/logs")
            .iter()
            .flat_map(|p| records_in(p))
            .collect();
        let want: Vec<String> = batches.iter().flat_map(|b| expected(b)).collect();
        let (mut got, mut want) = (got, want);
        got.sort();
        want.sort();
        assert_eq!(
            got, want,
            "every record once (two batches in flight: any order)"
        );
        assert_eq!(run.acks(), vec![vec![(file(0), 100)], vec![(file(1), 200)]]);
        let text = run.telemetry.encode();
        assert!(
            text.contains("skein_agent_records_sent_total{signal=\"logs\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("skein_agent_shipping_blocked{reason=\"status_415\"} 0"),
            "the block is lifted: {text}"
        );
        assert!(
            !text.contains("skein_agent_records_rejected_total{"),
            "{text}"
        );
        run.stop().await;
    }

    #[tokio::test]
    async fn a_batch_refused_as_too_large_is_split_until_every_part_fits() {
        let dir = tempfile::tempdir().unwrap();
        let batches = vec![names("r", 11), names("s", 2)];
        let (buf, first) = logs_buffer(dir.path(), &batches);
        let fake = Fake::judged(|_, plain| (count_logs(plain) > 3).then(|| (413, Vec::new())));
        let addr = fake.start().await;
        let run = ship(&buf, addr, fast_retry(), 2);
        until("both batches acknowledged", || buf.cursor() == first + 2).await;

        let got: Vec<String> = fake
            .delivered_plain("/v1/logs")
            .iter()
            .flat_map(|p| records_in(p))
            .collect();
        let want: Vec<String> = batches.iter().flat_map(|b| expected(b)).collect();
        let mut sorted = got.clone();
        sorted.sort();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(sorted, want_sorted, "every record once");
        // The second batch may go while the first is being split; within a batch, the
        // records keep their order.
        let firsts: Vec<&String> = got.iter().filter(|r| r.contains("/r")).collect();
        assert_eq!(firsts, want[..11].iter().collect::<Vec<_>>(), "in order");
        assert!(
            fake.seen()
                .iter()
                .all(|s| s.encoding.as_deref() == Some("zstd")),
            "parts are compressed like the batch"
        );
        assert_eq!(run.acks(), vec![vec![(file(0), 100)], vec![(file(1), 200)]]);
        let text = run.telemetry.encode();
        assert!(
            text.contains("skein_agent_records_sent_total{signal=\"logs\"} 13"),
            "{text}"
        );
        assert!(
            !text.contains("skein_agent_records_rejected_total{"),
            "{text}"
        );
        assert!(!text.contains("skein_agent_dropped_total{"), "{text}");
        run.stop().await;
    }

    #[tokio::test]
    async fn a_single_record_still_too_large_is_dropped_alone_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut bodies = names("r", 6);
        bodies[2] = "x".repeat(10_000);
        let (buf, first) = logs_buffer(dir.path(), &[bodies.clone()]);
        let fake = Fake::judged(|_, plain| (plain.len() > 5_000).then(|| (413, Vec::new())));
        let addr = fake.start().await;
        let run = ship(&buf, addr, fast_retry(), 1);
        until("the batch finished", || buf.cursor() == first + 1).await;

        let got: Vec<String> = fake
            .delivered_plain("/v1/logs")
            .iter()
            .flat_map(|p| records_in(p))
            .collect();
        let mut want = expected(&bodies);
        want.remove(2);
        assert_eq!(got, want);
        assert_eq!(run.acks(), vec![vec![(file(0), 100)]]);
        let text = run.telemetry.encode();
        assert!(
            text.contains("skein_agent_records_sent_total{signal=\"logs\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("skein_agent_records_rejected_total{signal=\"logs\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("skein_agent_dropped_total{reason=\"too_large\"} 1"),
            "{text}"
        );
        run.stop().await;
    }

    #[tokio::test]
    async fn a_400_is_narrowed_to_the_bad_record_and_only_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut bodies = names("r", 9);
        bodies[6] = "bad".into();
        let (buf, first) = logs_buffer(dir.path(), &[bodies.clone(), names("s", 2)]);
        let fake = Fake::judged(|_, plain| {
            records_in(plain)
                .iter()
                .any(|r| r.ends_with("/bad"))
                .then(|| (400, Vec::new()))
        });
        let addr = fake.start().await;
        let run = ship(&buf, addr, fast_retry(), 1);
        until("both batches finished", || buf.cursor() == first + 2).await;

        let got: Vec<String> = fake
            .delivered_plain("/v1/logs")
            .iter()
            .flat_map(|p| records_in(p))
            .collect();
        let mut want = expected(&bodies);
        want.remove(6);
        want.extend(expected(&names("s", 2)));
        assert_eq!(got, want);
        let text = run.telemetry.encode();
        assert!(
            text.contains("skein_agent_records_rejected_total{signal=\"logs\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("skein_agent_dropped_total{reason=\"bad_request\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("skein_agent_records_sent_total{signal=\"logs\"} 10"),
            "{text}"
        );
        run.stop().await;
    }

    #[tokio::test]
    async fn records_refused_in_a_partial_success_are_counted_and_the_rest_is_sent() {
        use skein_model::proto::collector::logs::v1::{
            ExportLogsPartialSuccess, ExportLogsServiceResponse,
        };
        let dir = tempfile::tempdir().unwrap();
        let (buf, first) = logs_buffer(dir.path(), &[names("r", 10)]);
        let fake = Fake::judged(|_, _| {
            let answer = ExportLogsServiceResponse {
                partial_success: Some(ExportLogsPartialSuccess {
                    rejected_log_records: 3,
                    error_message: "three records are too old".into(),
                }),
            };
            Some((200, answer.encode_to_vec()))
        });
        let addr = fake.start().await;
        let run = ship(&buf, addr, fast_retry(), 1);
        until("the batch acknowledged", || buf.cursor() == first + 1).await;
        assert_eq!(fake.seen().len(), 1, "a partial success is not retried");
        assert_eq!(run.acks(), vec![vec![(file(0), 100)]]);
        let text = run.telemetry.encode();
        assert!(
            text.contains("skein_agent_records_sent_total{signal=\"logs\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("skein_agent_records_rejected_total{signal=\"logs\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("skein_agent_dropped_total{reason=\"partial_success\"} 3"),
            "{text}"
        );
        run.stop().await;
    }

    #[tokio::test]
    async fn spans_and_metrics_from_the_local_receiver_are_split_too() {
        use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
        use skein_model::proto::collector::trace::v1::ExportTraceServiceRequest;
        use skein_model::proto::metrics::v1::{
            Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric,
            number_data_point,
        };
        use skein_model::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
        use skein_otlp::OtlpSink;

        let dir = tempfile::tempdir().unwrap();
        let buf = Arc::new(Buffer::open(dir.path(), 1 << 24, 1 << 20).unwrap());
        let sink = crate::receiver::AgentSink::new(
            buf.clone(),
            vec![("host.name".into(), "h1".into())],
            crate::config::Compression::Gzip,
            crate::config::WhenFull::Block,
            Telemetry::new(),
            4,
        );
        let span = |n: usize| Span {
            name: format!("span-{n}"),
            trace_id: vec![1; 16],
            span_id: vec![u8::try_from(n).unwrap() + 1; 8],
            ..Default::default()
        };
        let traces = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: (0..3).map(span).collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: (3..7).map(span).collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        };
        let point = |v: i64| NumberDataPoint {
            time_unix_nano: 1,
            value: Some(number_data_point::Value::AsInt(v)),
            ..Default::default()
        };
        let gauge = |name: &str, from: i64| Metric {
            name: name.into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: (from..from + 3).map(point).collect(),
            })),
            ..Default::default()
        };
        let metrics = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![gauge("g1", 0), gauge("g2", 10)],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        sink.traces(traces, 0).await.unwrap();
        sink.metrics(metrics, 0).await.unwrap();
        let first = buf.cursor();

        // Two spans or two points at most per request.
        let fake = Fake::judged(|path, plain| {
            let n = match path {
                "/v1/traces" => ExportTraceServiceRequest::decode(plain)
                    .unwrap()
                    .resource_spans
                    .iter()
                    .flat_map(|r| &r.scope_spans)
                    .map(|s| s.spans.len())
                    .sum::<usize>(),
                "/v1/metrics" => skein_model::otlp::metric_points(
                    &ExportMetricsServiceRequest::decode(plain).unwrap(),
                ) as usize,
                _ => 0,
            };
            (n > 2).then(|| (413, Vec::new()))
        });
        let addr = fake.start().await;
        let run = ship(&buf, addr, fast_retry(), 2);
        until("both batches acknowledged", || buf.cursor() == first + 2).await;

        let mut spans = Vec::new();
        for p in fake.delivered_plain("/v1/traces") {
            let req = ExportTraceServiceRequest::decode(&p[..]).unwrap();
            for rs in req.resource_spans {
                let attrs = rs.resource.unwrap().attributes;
                assert_eq!(attrs, vec![crate::receiver::string_kv("host.name", "h1")]);
                for ss in rs.scope_spans {
                    spans.extend(ss.spans.into_iter().map(|s| s.name));
                }
            }
        }
        assert_eq!(
            spans,
            (0..7).map(|n| format!("span-{n}")).collect::<Vec<_>>()
        );
        let mut points = Vec::new();
        for p in fake.delivered_plain("/v1/metrics") {
            let req = ExportMetricsServiceRequest::decode(&p[..]).unwrap();
            for rm in req.resource_metrics {
                for sm in rm.scope_metrics {
                    for m in sm.metrics {
                        let Some(metric::Data::Gauge(g)) = m.data else {
                            panic!("a gauge")
                        };
                        for dp in g.data_points {
                            let Some(number_data_point::Value::AsInt(v)) = dp.value else {
                                panic!("an int")
                            };
                            points.push(format!("{}={v}", m.name));
                        }
                    }
                }
            }
        }
        assert_eq!(
            points,
            ["g1=0", "g1=1", "g1=2", "g2=10", "g2=11", "g2=12"],
            "every point once, in order"
        );
        let text = run.telemetry.encode();
        assert!(
            text.contains("skein_agent_records_sent_total{signal=\"spans\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("skein_agent_records_sent_total{signal=\"metrics\"} 6"),
            "{text}"
        );
        run.stop().await;
    }
}
