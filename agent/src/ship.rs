//! Shipping: batches go from the disk buffer to the collector over OTLP/HTTP (protobuf,
//! compressed as buffered), up to `collector.max_in_flight` at once, acknowledged in buffer
//! order.
//!
//! - 2xx: sent. The batch's file positions are handed to `on_ack` (checkpoints advance only
//!   now: at-least-once) and the buffer cursor moves past it.
//! - 408, 429, 5xx, network errors, timeouts: retried forever with exponential backoff and
//!   full jitter between `retry.initial_backoff` and `retry.max_backoff`; a `Retry-After`
//!   header (seconds) wins, capped at 5 minutes. The buffer holds the data meanwhile.
//! - Any other 4xx: the collector will never take this batch. It is logged with the
//!   collector's message, counted in `skein_agent_records_rejected_total`, and skipped.

use crate::buffer::{Batch, Buffer};
use crate::config::RetrySection;
use crate::tail::FileId;
use crate::telemetry::Telemetry;
use futures::stream::{FuturesOrdered, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Called with the file positions of every acknowledged (or permanently refused) batch.
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
    Sent,
    Rejected,
    /// Shutdown came while it was failing: not acknowledged, sent again after restart.
    Abandoned,
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
                            self.target.clone(),
                            b,
                            self.retry.clone(),
                            self.telemetry.clone(),
                            stop.clone(),
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
            Outcome::Sent => {
                self.telemetry.records_sent(signal, u64::from(b.records));
            }
            Outcome::Rejected => {
                self.telemetry
                    .records_rejected(signal, u64::from(b.records));
                self.telemetry.dropped("rejected", u64::from(b.records));
            }
            Outcome::Abandoned => return,
        }
        (self.on_ack)(&b.positions);
        if let Err(e) = self.buffer.ack(b.seq + 1) {
            tracing::error!(error = %e, "cannot move the buffer cursor");
        }
    }
}

/// Sends one batch until it is sent, refused for good, or shutdown comes while it fails.
async fn send(
    target: Target,
    mut batch: Batch,
    retry: RetrySection,
    telemetry: Telemetry,
    stop: watch::Receiver<bool>,
) -> (Batch, Outcome) {
    let signal = batch.signal.name();
    let mut backoff = retry.initial_backoff.0;
    let body = bytes::Bytes::from(std::mem::take(&mut batch.body));
    loop {
        let mut req = target
            .post(batch.signal.path())
            .header("content-type", "application/x-protobuf")
            .body(body.clone());
        if let Some(enc) = batch.encoding.header() {
            req = req.header("content-encoding", enc);
        }
        let wait = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    tracing::debug!(
                        seq = batch.seq,
                        records = batch.records,
                        signal,
                        "batch acknowledged"
                    );
                    return (batch, Outcome::Sent);
                }
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
                let code = status.as_u16();
                telemetry.request_failed(signal, &format!("status_{code}"));
                let retryable = code == 408 || code == 429 || status.is_server_error();
                if !retryable {
                    let text = resp.text().await.unwrap_or_default();
                    tracing::error!(
                        status = code,
                        records = batch.records,
                        signal,
                        answer = %text.chars().take(500).collect::<String>(),
                        "the collector refused a batch; it is dropped, not retried"
                    );
                    return (batch, Outcome::Rejected);
                }
                tracing::warn!(
                    status = code,
                    signal,
                    "the collector cannot take a batch now; retrying"
                );
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
                telemetry.request_failed(signal, reason);
                tracing::warn!(error = %e, signal, "cannot reach the collector; retrying");
                None
            }
        };
        if *stop.borrow() {
            return (batch, Outcome::Abandoned);
        }
        let sleep = wait.unwrap_or_else(|| {
            // Full jitter: anywhere between zero and the current backoff.
            let ms = u64::try_from(backoff.as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            Duration::from_millis(fastrand::u64(0..=ms))
        });
        backoff = (backoff * 2).min(retry.max_backoff.0);
        telemetry.retry(signal);
        let mut s = stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = s.wait_for(|v| *v) => return (batch, Outcome::Abandoned),
        }
    }
}
