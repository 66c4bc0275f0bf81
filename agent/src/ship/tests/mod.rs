//! The shipper against a real HTTP server on 127.0.0.1 that answers from a script.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
                    let mut resp = axum::response::Response::new(axum::body::Body::from(answer));
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
            batch_ids: Some("test-agent".into()),
            stream: None,
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

mod blocking;
/// A logs request holding one record per body, the first half under one resource and
/// the rest under another (two scopes there), so splits cross every level.
mod refusals;
