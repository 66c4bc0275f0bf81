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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    //! The shipper against a real HTTP server on 127.0.0.1 that answers from a script.

    use super::*;
    use crate::buffer::{BodyEncoding, Signal};
    use crate::config::Dur;
    use axum::http::{HeaderMap, StatusCode, Uri};
    use std::collections::VecDeque;
    use std::net::SocketAddr;
    use std::sync::Mutex;
    use std::time::Instant;
    use tokio::net::TcpListener;

    /// One answer of the fake collector: status and optional `Retry-After`.
    type Answer = (u16, Option<&'static str>);

    /// One request the fake collector saw.
    #[derive(Debug, Clone)]
    struct Seen {
        at: Instant,
        path: String,
        body: Vec<u8>,
        encoding: Option<String>,
        status: u16,
    }

    /// A fake collector: answers from `script` first, then `default` forever.
    #[derive(Clone)]
    struct Fake {
        seen: Arc<Mutex<Vec<Seen>>>,
        script: Arc<Mutex<VecDeque<Answer>>>,
        default: Answer,
        /// Requests with this body wait for a permit before they are answered.
        gate: Option<(Vec<u8>, Arc<tokio::sync::Semaphore>)>,
    }

    impl Fake {
        fn new(script: &[Answer], default: Answer) -> Fake {
            Fake {
                seen: Arc::default(),
                script: Arc::new(Mutex::new(script.iter().copied().collect())),
                default,
                gate: None,
            }
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
                        let (status, retry_after) = fake
                            .script
                            .lock()
                            .unwrap()
                            .pop_front()
                            .unwrap_or(fake.default);
                        fake.seen.lock().unwrap().push(Seen {
                            at: Instant::now(),
                            path: uri.path().to_string(),
                            body: body.to_vec(),
                            encoding: headers
                                .get("content-encoding")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string),
                            status,
                        });
                        let mut resp = axum::response::Response::new(axum::body::Body::from(
                            r#"{"error":"scripted","message":"scripted answer"}"#,
                        ));
                        *resp.status_mut() = StatusCode::from_u16(status).unwrap();
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
}
