//! Durability: every batch the collector acknowledged (2xx) survives `kill -9` and a graceful
//! stop, and is found exactly once after the restart, also after a replay of a replay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Collector, client, get_json_with, kv, log_record, logs_request, now_nanos, post, unique,
    url_with, wait_for,
};
use prost::Message;
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Records per batch.
const PER_BATCH: usize = 50;
/// Concurrent senders, so that some requests are in flight when the collector dies.
const SENDERS: usize = 2;

/// A stream of numbered log batches and what became of each.
#[derive(Clone)]
struct Stream {
    tag: String,
    next: Arc<AtomicUsize>,
    /// Batches answered with 2xx.
    acked: Arc<Mutex<BTreeSet<usize>>>,
    /// Batches sent without a 2xx (error status or no answer).
    failed: Arc<Mutex<BTreeSet<usize>>>,
}

impl Stream {
    fn new() -> Stream {
        Stream {
            tag: unique(),
            next: Arc::new(AtomicUsize::new(0)),
            acked: Arc::new(Mutex::new(BTreeSet::new())),
            failed: Arc::new(Mutex::new(BTreeSet::new())),
        }
    }

    fn request_id(&self, batch: usize) -> String {
        format!("req-{}-{batch}", self.tag)
    }

    fn bodies(&self, batch: usize) -> BTreeSet<String> {
        (0..PER_BATCH)
            .map(|i| format!("crash-{}-{batch}-{i}", self.tag))
            .collect()
    }

    /// Batch `batch` as an OTLP/HTTP protobuf body: 50 records with unique bodies, all carrying
    /// the batch's `request_id`.
    fn encode(&self, batch: usize) -> Vec<u8> {
        let rid = self.request_id(batch);
        let now = now_nanos();
        let records = self
            .bodies(batch)
            .into_iter()
            .enumerate()
            .map(|(i, body)| log_record(&body, 9, now + i as u64, vec![kv("request_id", &rid)]))
            .collect();
        logs_request("crash-test", records).encode_to_vec()
    }

    fn acked(&self) -> BTreeSet<usize> {
        self.acked.lock().unwrap().clone()
    }

    fn failed(&self) -> BTreeSet<usize> {
        self.failed.lock().unwrap().clone()
    }
}

/// Sender threads posting batches in a loop until stopped.
struct Senders {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Senders {
    fn start(stream: &Stream, url: String) -> Senders {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..SENDERS)
            .map(|_| {
                let stream = stream.clone();
                let stop = stop.clone();
                let url = url.clone();
                std::thread::spawn(move || {
                    let c = reqwest::blocking::Client::builder()
                        .timeout(Duration::from_secs(30))
                        .build()
                        .expect("client");
                    while !stop.load(Ordering::Acquire) {
                        let b = stream.next.fetch_add(1, Ordering::AcqRel);
                        let body = stream.encode(b);
                        match post(&c, &url, "application/x-protobuf", None, body) {
                            Ok((status, _)) if (200..300).contains(&status) => {
                                stream.acked.lock().unwrap().insert(b);
                            }
                            _ => {
                                stream.failed.lock().unwrap().insert(b);
                                // The collector is gone; do not spin on refused connections.
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                    }
                })
            })
            .collect();
        Senders { stop, handles }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for h in self.handles {
            h.join().expect("sender thread");
        }
    }
}

/// Sends for about a second (at least 10 new acknowledged batches), then stops the collector
/// with `stop` while the senders still run.
fn send_then(c: &mut Collector, stream: &Stream, stop: impl FnOnce(&mut Collector)) {
    let before = stream.acked().len();
    let senders = Senders::start(stream, format!("{}/v1/logs", c.http_base()));
    let flowing = wait_for(
        || stream.acked().len() >= before + 10,
        Duration::from_secs(30),
    );
    if !flowing {
        senders.stop();
        panic!(
            "the collector acknowledged fewer than 10 batches in 30 s (acked {}, failed {})",
            stream.acked().len() - before,
            stream.failed().len()
        );
    }
    std::thread::sleep(Duration::from_millis(800));
    stop(c);
    senders.stop();
    assert!(
        stream.acked().len() > before,
        "no batch was acknowledged before the stop"
    );
}

/// Logs of the trace answer for `key`; empty on 404.
fn trace_logs(c: &Collector, http: &reqwest::blocking::Client, key: &str) -> Vec<String> {
    let (status, body) =
        get_json_with(http, &format!("{}/api/v1/traces/{key}", c.api_base()), None);
    match status {
        200 => body["logs"]
            .as_array()
            .expect("logs array")
            .iter()
            .map(|l| l["body"].as_str().unwrap_or_default().to_string())
            .collect(),
        404 => Vec::new(),
        other => panic!("GET /api/v1/traces/{key}: {other} {body}"),
    }
}

/// Every acknowledged batch is there exactly once; every other batch at most once.
fn verify(c: &Collector, stream: &Stream) {
    let http = client();
    let acked = stream.acked();
    let failed = stream.failed();
    assert!(!acked.is_empty());
    eprintln!(
        "verifying {} acknowledged and {} unacknowledged batches",
        acked.len(),
        failed.len()
    );
    for &b in &acked {
        let rid = stream.request_id(b);
        let want = stream.bodies(b);
        let mut got = Vec::new();
        // Replay and indexing finish soon after the restart; poll only for that.
        let complete = wait_for(
            || {
                got = trace_logs(c, &http, &rid);
                got.len() >= PER_BATCH
            },
            Duration::from_secs(20),
        );
        assert!(
            complete,
            "acknowledged batch {b} ({rid}) has {} of {PER_BATCH} records after the restart: {got:?}",
            got.len()
        );
        let distinct: BTreeSet<String> = got.iter().cloned().collect();
        assert_eq!(
            got.len(),
            distinct.len(),
            "acknowledged batch {b} ({rid}) has duplicate records: {} records, {} distinct",
            got.len(),
            distinct.len()
        );
        assert_eq!(
            distinct, want,
            "acknowledged batch {b} ({rid}): wrong records"
        );

        // The search finds the same 50, once each.
        let q = format!("request_id:\"{rid}\"");
        let url = url_with(
            &c.api_base(),
            "/api/v1/logs",
            &[("q", q.as_str()), ("limit", "1000")],
        );
        let (status, body) = get_json_with(&http, &url, None);
        assert_eq!(status, 200, "GET {url}: {body}");
        let found: Vec<&str> = body["logs"]
            .as_array()
            .expect("logs")
            .iter()
            .filter_map(|l| l["body"].as_str())
            .collect();
        let distinct: HashSet<&str> = found.iter().copied().collect();
        assert_eq!(
            found.len(),
            PER_BATCH,
            "search q={q} finds {} records of acknowledged batch {b}",
            found.len()
        );
        assert_eq!(distinct.len(), PER_BATCH, "search q={q} has duplicates");
    }
    for &b in &failed {
        let rid = stream.request_id(b);
        let got = trace_logs(c, &http, &rid);
        let distinct: BTreeSet<String> = got.iter().cloned().collect();
        assert_eq!(
            got.len(),
            distinct.len(),
            "unacknowledged batch {b} ({rid}) is there more than once: {got:?}"
        );
        assert!(
            distinct.is_subset(&stream.bodies(b)),
            "unacknowledged batch {b} ({rid}) holds foreign records: {got:?}"
        );
    }
}

#[test]
fn kill9_loses_no_acknowledged_batch_and_replays_once() {
    let mut c = Collector::start(&[]);
    let stream = Stream::new();

    // Round 1: kill -9 while batches stream in, restart, check.
    send_then(&mut c, &stream, Collector::kill9);
    c.restart();
    verify(&c, &stream);

    // Round 2: more batches on the replayed store, kill -9 again, replay again.
    send_then(&mut c, &stream, Collector::kill9);
    c.restart();
    verify(&c, &stream);

    // And a clean restart after the replays changes nothing.
    let status = c.terminate();
    assert!(status.success(), "exit after SIGTERM: {status}");
    c.restart();
    verify(&c, &stream);
}

#[test]
fn sigterm_exits_zero_and_keeps_every_acknowledged_batch() {
    // A long commit interval: what is searchable after the restart went through the graceful
    // stop's final commit or the replay, not a timer.
    let mut c = Collector::start(&["--commit-interval-ms", "60000"]);
    let stream = Stream::new();
    let mut status = None;
    send_then(&mut c, &stream, |c| status = Some(c.terminate()));
    let status = status.expect("stopped");
    assert!(
        status.success(),
        "the collector should exit 0 after SIGTERM, got {status}"
    );
    assert_eq!(status.code(), Some(0));
    c.restart();
    verify(&c, &stream);
}

/// Sends `body` (a protobuf logs export) over OTLP/HTTP with `skein-batch-id: id`.
fn send_with_id(c: &Collector, id: &str, body: Vec<u8>) -> (u16, String) {
    let resp = client()
        .post(format!("{}/v1/logs", c.http_base()))
        .header("content-type", "application/x-protobuf")
        .header("skein-batch-id", id)
        .body(body)
        .send()
        .expect("post");
    let status = resp.status().as_u16();
    (status, resp.text().unwrap_or_default())
}

/// Sends `body` over OTLP/gRPC with `skein-batch-id` metadata.
fn send_grpc_with_id(c: &Collector, id: &str, body: &[u8]) -> Result<(), tonic::Status> {
    use opentelemetry_proto::tonic::collector::logs::v1::{
        ExportLogsServiceRequest, ExportLogsServiceResponse,
    };
    let req = ExportLogsServiceRequest::decode(body).expect("request");
    let endpoint = c.grpc_endpoint();
    let id = id.to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let channel = tonic::transport::Channel::from_shared(endpoint)
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.expect("ready");
        let mut request = tonic::Request::new(req);
        request
            .metadata_mut()
            .insert("skein-batch-id", id.parse().expect("ascii"));
        let codec =
            tonic_prost::ProstCodec::<ExportLogsServiceRequest, ExportLogsServiceResponse>::default(
            );
        grpc.unary(
            request,
            tonic::codegen::http::uri::PathAndQuery::from_static(
                "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            ),
            codec,
        )
        .await
        .map(|_| ())
    })
}

/// The collector's count of batches answered without being stored again.
fn duplicate_batches(c: &Collector) -> String {
    c.metrics()
        .lines()
        .filter(|l| l.starts_with("skein_duplicate_batches_total{signal=\"logs\"}"))
        .collect()
}

#[test]
fn a_batch_retried_with_its_id_is_stored_once_over_http_grpc_and_kill_9() {
    let mut c = Collector::start(&[]);
    let stream = Stream::new();
    let body = stream.encode(0);
    let id = format!("crash-{}:0:1", stream.tag);
    assert_eq!(send_with_id(&c, &id, body.clone()).0, 200);
    assert_eq!(send_with_id(&c, &id, body.clone()).0, 200);
    send_grpc_with_id(&c, &id, &body).expect("gRPC retry answered OK");
    assert_eq!(
        duplicate_batches(&c),
        "skein_duplicate_batches_total{signal=\"logs\"} 2"
    );
    // An id that is not one is refused before anything is stored, and says why.
    let (status, answer) = send_with_id(&c, "not an id", stream.encode(1));
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("skein-batch-id"), "{answer}");
    let err = send_grpc_with_id(&c, "not/an/id", &stream.encode(1)).unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");

    // The id outlives the process: start-up reads it back from the WAL.
    c.kill9();
    c.restart();
    assert_eq!(send_with_id(&c, &id, body.clone()).0, 200);
    assert_eq!(
        duplicate_batches(&c),
        "skein_duplicate_batches_total{signal=\"logs\"} 1"
    );
    // The same records under another id are another batch: ids, not contents, decide.
    let other = format!("crash-{}:0:2", stream.tag);
    assert_eq!(send_with_id(&c, &other, stream.encode(2)).0, 200);

    let http = client();
    assert!(
        wait_for(
            || trace_logs(&c, &http, &stream.request_id(2)).len() == PER_BATCH,
            Duration::from_secs(30)
        ),
        "the batch with a new id was not stored"
    );
    let once = trace_logs(&c, &http, &stream.request_id(0));
    assert_eq!(once.len(), PER_BATCH, "stored {} records", once.len());
    assert_eq!(
        once.iter().collect::<HashSet<_>>().len(),
        PER_BATCH,
        "a record was stored twice"
    );
    assert!(trace_logs(&c, &http, &stream.request_id(1)).is_empty());
}
