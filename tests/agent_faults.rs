//! End-to-end: the real `skein agent` ships through a proxy that misbehaves the way real
//! deployments do, to a real collector, while lines keep coming. First the collector refuses
//! the agent's token (401, as after a token rotation), then the proxy answers 404 (a wrong
//! route), then it refuses batches above a few records as too large (413), then it passes
//! everything. Nothing the agent read may be lost or doubled: every line arrives exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::agent::Agent;
use common::{Collector, get_json, url_with, wait_for};
use prost::Message;
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ARRIVAL: Duration = Duration::from_secs(45);
/// The collector's token after the rotation; the agent keeps sending the old one.
const NEW_TOKEN: &str = "token-after-rotation";
const OLD_TOKEN: &str = "token-before-rotation";
/// Largest batch, in records, the proxy lets through in the 413 phase.
const MAX_RECORDS: usize = 7;

/// What the proxy does with the agent's OTLP requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    /// Passes them on with the agent's (old) token: the collector answers 401.
    OldToken = 0,
    /// Answers 404 itself.
    NotFound = 1,
    /// Answers 413 to batches above `MAX_RECORDS` records, passes on the others.
    SmallOnly = 2,
    /// Passes everything on with the new token.
    Pass = 3,
}

/// The proxy's state, shared with its handler.
struct Proxy {
    mode: AtomicU8,
    upstream: String,
    client: reqwest::Client,
    /// Answers given, by status.
    answers: Mutex<BTreeMap<u16, u64>>,
    /// Largest batch passed on, in records.
    largest: AtomicU64,
}

impl Proxy {
    fn set(&self, m: Mode) {
        self.mode.store(m as u8, Ordering::SeqCst);
    }

    fn answered(&self, status: u16) -> u64 {
        self.answers
            .lock()
            .unwrap()
            .get(&status)
            .copied()
            .unwrap_or(0)
    }

    fn count(&self, status: u16) {
        *self.answers.lock().unwrap().entry(status).or_default() += 1;
    }

    async fn handle(self: Arc<Self>, req: axum::extract::Request) -> axum::response::Response {
        use axum::response::IntoResponse;
        let path = req.uri().path().to_string();
        let headers = req.headers().clone();
        let Ok(body) = axum::body::to_bytes(req.into_body(), 64 << 20).await else {
            return (axum::http::StatusCode::BAD_REQUEST, "unreadable body").into_response();
        };
        let heartbeat = path == "/skein/v1/heartbeat";
        let mode = self.mode.load(Ordering::SeqCst);
        // Heartbeats always get through (the route and token for them were updated first),
        // so the collector's agent list shows what blocks the data.
        let token = if heartbeat || mode != Mode::OldToken as u8 {
            NEW_TOKEN
        } else {
            OLD_TOKEN
        };
        if !heartbeat {
            if mode == Mode::NotFound as u8 {
                self.count(404);
                return (axum::http::StatusCode::NOT_FOUND, "no route to /v1 here").into_response();
            }
            let records = records_in(&headers, &body);
            if mode == Mode::SmallOnly as u8 && records > MAX_RECORDS {
                self.count(413);
                return (axum::http::StatusCode::PAYLOAD_TOO_LARGE, "batch too large")
                    .into_response();
            }
            if mode != Mode::OldToken as u8 {
                self.largest.fetch_max(records as u64, Ordering::SeqCst);
            }
        }
        let mut fwd = self
            .client
            .post(format!("{}{path}", self.upstream))
            .bearer_auth(token)
            .body(body);
        for h in ["content-type", "content-encoding"] {
            if let Some(v) = headers.get(h) {
                fwd = fwd.header(h, v.as_bytes());
            }
        }
        match fwd.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                if !heartbeat {
                    self.count(status);
                }
                let ctype = r
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/octet-stream")
                    .to_string();
                let bytes = r.bytes().await.unwrap_or_default();
                let mut resp = axum::response::Response::new(axum::body::Body::from(bytes));
                *resp.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                resp.headers_mut()
                    .insert("content-type", ctype.parse().unwrap());
                resp
            }
            Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        }
    }
}

/// Log records in an OTLP/HTTP protobuf logs body, compressed as its header says.
fn records_in(headers: &axum::http::HeaderMap, body: &[u8]) -> usize {
    let plain = match headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
    {
        Some("zstd") => zstd::decode_all(body).unwrap(),
        Some("gzip") => {
            use std::io::Read;
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
            out
        }
        _ => body.to_vec(),
    };
    ExportLogsServiceRequest::decode(&plain[..])
        .map(|r| {
            r.resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .map(|sl| sl.log_records.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Starts the proxy in front of `upstream` on its own runtime; returns its address.
fn start_proxy(upstream: String) -> (Arc<Proxy>, SocketAddr, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let proxy = Arc::new(Proxy {
        mode: AtomicU8::new(Mode::OldToken as u8),
        upstream,
        client: reqwest::Client::new(),
        answers: Mutex::default(),
        largest: AtomicU64::new(0),
    });
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let p = proxy.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let p = p.clone();
        async move { p.handle(req).await }
    });
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (proxy, addr, rt)
}

fn append(path: &Path, phase: &str, n: u32) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in 0..n {
        writeln!(
            f,
            r#"{{"msg":"fault line {i}","seq":{i},"phase":"{phase}","pad":"{}"}}"#,
            "p".repeat(64)
        )
        .unwrap();
    }
    f.sync_data().unwrap();
}

/// Every line of `phase` that arrived, as seq → how many times.
fn arrived(c: &Collector, phase: &str) -> BTreeMap<u64, usize> {
    let url = url_with(
        &c.api_base(),
        "/api/v1/logs",
        &[
            ("q", &format!("phase:{phase}")),
            ("service", "faulty"),
            ("limit", "1000"),
            ("since", "30d"),
        ],
    );
    let (status, body) = get_json(&url);
    let mut out = BTreeMap::new();
    if status != 200 {
        return out;
    }
    for l in body["logs"].as_array().cloned().unwrap_or_default() {
        if let Some(s) = l["attributes"]["seq"].as_u64() {
            *out.entry(s).or_default() += 1;
        }
    }
    out
}

fn blocked_gauge(agent: &Agent, reason: &str) -> f64 {
    agent.counter(&format!(
        "skein_agent_shipping_blocked{{reason=\"{reason}\"}}"
    ))
}

#[test]
fn every_line_arrives_exactly_once_through_401_404_and_413_from_a_proxy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let collector = Collector::start(&["--ingest-token", NEW_TOKEN]);
    let (proxy, proxy_addr, _rt) = start_proxy(collector.http_base());
    let log = dir.join("app.log");
    let toml = format!(
        r#"
[agent]
id = "faulty-agent"
data_dir = "{data}"
[collector]
endpoint = "http://{proxy_addr}"
token = "{OLD_TOKEN}"
timeout = "5s"
max_in_flight = 2
[batch]
max_records = 40
max_wait = "100ms"
[retry]
initial_backoff = "20ms"
max_backoff = "300ms"
[heartbeat]
interval = "300ms"
[host_metrics]
enabled = false

[[source]]
name = "faulty"
paths = ["{log}"]
read_from = "beginning"
format = "json"
"#,
        data = dir.join("agent-data").display(),
        log = log.display(),
    );
    append(&log, "p401", 100);
    let agent = Agent::start(dir, &toml);

    // 401: held, shown in the agent's /metrics and in the collector's agent list.
    assert!(
        wait_for(|| proxy.answered(401) >= 5, ARRIVAL),
        "the collector refuses the old token"
    );
    assert!(
        wait_for(|| blocked_gauge(&agent, "status_401") == 1.0, ARRIVAL),
        "{}",
        agent.metrics()
    );
    let agents_url = format!("{}/api/v1/agents", collector.api_base());
    assert!(
        wait_for(
            || {
                let (_, a) = get_json(&agents_url);
                a["agents"][0]["heartbeat"]["shipping_blocked"]
                    .as_str()
                    .is_some_and(|s| s.contains("401"))
            },
            ARRIVAL
        ),
        "the agent list names the block: {}",
        get_json(&agents_url).1
    );
    append(&log, "p404", 100);

    // 404 from the proxy: still held.
    proxy.set(Mode::NotFound);
    assert!(wait_for(|| proxy.answered(404) >= 5, ARRIVAL));
    assert!(
        wait_for(
            || blocked_gauge(&agent, "status_404") == 1.0
                && blocked_gauge(&agent, "status_401") == 0.0,
            ARRIVAL
        ),
        "{}",
        agent.metrics()
    );
    assert!(
        arrived(&collector, "p401").is_empty(),
        "nothing got through yet"
    );
    append(&log, "p413", 100);

    // Batches above MAX_RECORDS refused as too large: split until they fit.
    proxy.set(Mode::SmallOnly);
    for phase in ["p401", "p404", "p413"] {
        let ok = wait_for(|| arrived(&collector, phase).len() == 100, ARRIVAL);
        assert!(
            ok,
            "{phase}: {} of 100 lines arrived\n{}",
            arrived(&collector, phase).len(),
            agent.metrics()
        );
    }
    assert!(proxy.answered(413) > 0, "the big batches were refused");
    assert!(
        proxy.largest.load(Ordering::SeqCst) <= MAX_RECORDS as u64,
        "only parts that fit got through"
    );
    assert!(
        blocked_gauge(&agent, "status_404") == 0.0,
        "the block is lifted: {}",
        agent.metrics()
    );

    // Everything passes again.
    proxy.set(Mode::Pass);
    append(&log, "pass", 100);
    assert!(
        wait_for(|| arrived(&collector, "pass").len() == 100, ARRIVAL),
        "{}",
        agent.metrics()
    );
    assert!(
        wait_for(
            || agent.counter("skein_agent_records_sent_total{signal=\"logs\"}") == 400.0,
            ARRIVAL
        ),
        "{}",
        agent.metrics()
    );

    for phase in ["p401", "p404", "p413", "pass"] {
        let got = arrived(&collector, phase);
        let twice: Vec<_> = got.iter().filter(|(_, n)| **n != 1).collect();
        assert!(
            twice.is_empty(),
            "{phase}: lines not exactly once: {twice:?}"
        );
        assert_eq!(
            got.keys().copied().collect::<Vec<_>>(),
            (0..100).collect::<Vec<u64>>(),
            "{phase}"
        );
    }
    let metrics = agent.metrics();
    assert!(
        !metrics.contains("skein_agent_dropped_total{"),
        "nothing dropped: {metrics}"
    );
    assert!(
        !metrics.contains("skein_agent_records_rejected_total{"),
        "nothing refused: {metrics}"
    );
    let (_, a) = get_json(&agents_url);
    assert!(
        wait_for(
            || get_json(&agents_url).1["agents"][0]["heartbeat"]
                .get("shipping_blocked")
                .is_none(),
            ARRIVAL
        ),
        "the agent list no longer names a block: {a}"
    );
}
