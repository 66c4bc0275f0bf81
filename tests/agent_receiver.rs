//! End-to-end: the real `skein agent` as the local OTLP endpoint of apps and as a host
//! sampler, shipping to a real collector process. Exports from the real OpenTelemetry SDK
//! (HTTP protobuf and gRPC) arrive with the host's resource attributes added; host metrics
//! arrive; bad requests to the receiver get clear errors; a file of binary garbage, invalid
//! UTF-8 and a 100 MB line does not stop the lines after it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::agent::Agent;
use common::{
    Collector, assert_error_body, client, get_json, log_record, logs_request, post, unique,
    url_with, wait_for,
};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{LogExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prost::Message;
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// How long anything may take to go app → agent → collector → index.
const ARRIVAL: Duration = Duration::from_secs(60);
const AGENT_ID: &str = "recv-agent";
const HOST: &str = "host-under-test";

fn config(dir: &Path, collector: &Collector, host_metrics: bool, sources: &str) -> String {
    format!(
        r#"
[agent]
id = "{AGENT_ID}"
host_name = "{HOST}"
data_dir = "{data}"
[collector]
endpoint = "{endpoint}"
timeout = "5s"
[batch]
max_records = 100
max_wait = "100ms"
[retry]
initial_backoff = "50ms"
max_backoff = "500ms"
[heartbeat]
interval = "500ms"
[host_metrics]
enabled = {host_metrics}
interval = "1s"
{sources}
"#,
        data = dir.join("agent-data").display(),
        endpoint = collector.http_base(),
    )
}

/// One value of a Prometheus text exposition (0 when absent).
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------
// a. SDK exports through the agent
// ---------------------------------------------------------------------------------------

/// How an app talks to the agent.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// OTLP/HTTP protobuf, simple processors.
    Http,
    /// OTLP/gRPC, batch processors.
    Grpc,
}

/// One app's SDK, exporting to the agent.
struct App {
    tracer: SdkTracerProvider,
    logger: SdkLoggerProvider,
}

fn app(agent: &Agent, via: Via, service: &str, host: Option<&str>) -> App {
    let mut r = Resource::builder().with_service_name(service.to_string());
    if let Some(h) = host {
        r = r.with_attribute(KeyValue::new("host.name", h.to_string()));
    }
    let resource = r.build();
    let timeout = Duration::from_secs(10);
    match via {
        Via::Http => {
            let spans = SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("http://{}/v1/traces", agent.addrs.otlp_http))
                .with_timeout(timeout)
                .build()
                .expect("http span exporter");
            let logs = LogExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("http://{}/v1/logs", agent.addrs.otlp_http))
                .with_timeout(timeout)
                .build()
                .expect("http log exporter");
            App {
                tracer: SdkTracerProvider::builder()
                    .with_simple_exporter(spans)
                    .with_resource(resource.clone())
                    .build(),
                logger: SdkLoggerProvider::builder()
                    .with_simple_exporter(logs)
                    .with_resource(resource)
                    .build(),
            }
        }
        Via::Grpc => {
            let endpoint = format!("http://{}", agent.addrs.otlp_grpc);
            let spans = SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .with_timeout(timeout)
                .build()
                .expect("grpc span exporter");
            let logs = LogExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .with_timeout(timeout)
                .build()
                .expect("grpc log exporter");
            App {
                tracer: SdkTracerProvider::builder()
                    .with_batch_exporter(spans)
                    .with_resource(resource.clone())
                    .build(),
                logger: SdkLoggerProvider::builder()
                    .with_batch_exporter(logs)
                    .with_resource(resource)
                    .build(),
            }
        }
    }
}

/// What one app sent.
struct Sent {
    service: String,
    /// The `host.name` the records must carry.
    host: String,
    tag: String,
    trace_id: String,
    span_id: String,
    body: String,
}

/// One server span with a log inside it; flushed and shut down before returning.
fn send(app: App, service: &str, want_host: &str) -> Sent {
    let tag = unique().replace('x', "t");
    let tracer = app.tracer.tracer("recv-test");
    let logger = app.logger.logger("recv-test");
    let span = tracer
        .span_builder(format!("handle {service}"))
        .with_kind(SpanKind::Server)
        .with_attributes([KeyValue::new("tag", tag.clone())])
        .start_with_context(&tracer, &Context::new());
    let cx = Context::new().with_span(span);
    let trace_id = cx.span().span_context().trace_id().to_string();
    let span_id = cx.span().span_context().span_id().to_string();
    let body = format!("{service} says hello {tag}");
    {
        let _guard = cx.clone().attach();
        let mut r = logger.create_log_record();
        r.set_body(AnyValue::from(body.clone()));
        r.set_severity_number(Severity::Info);
        r.set_severity_text("INFO");
        r.set_timestamp(SystemTime::now());
        r.add_attribute("tag", tag.clone());
        logger.emit(r);
    }
    cx.span().end();
    app.tracer.force_flush().expect("flush spans");
    app.logger.force_flush().expect("flush logs");
    app.tracer
        .shutdown()
        .expect("shut down the tracer provider");
    app.logger
        .shutdown()
        .expect("shut down the logger provider");
    Sent {
        service: service.to_string(),
        host: want_host.to_string(),
        tag,
        trace_id,
        span_id,
        body,
    }
}

/// A span or log as served: the app's service, the expected host, the agent's id.
fn check_resource(what: &str, r: &Value, sent: &Sent) {
    assert_eq!(r["service"], sent.service.as_str(), "{what}: service: {r}");
    assert_eq!(r["host"], sent.host.as_str(), "{what}: host: {r}");
    let res = &r["resource"];
    assert_eq!(
        res["service.name"],
        sent.service.as_str(),
        "{what}: the app's service.name is kept: {r}"
    );
    assert_eq!(
        res["host.name"],
        sent.host.as_str(),
        "{what}: resource host.name: {r}"
    );
    assert_eq!(
        res["skein.agent.id"], AGENT_ID,
        "{what}: the agent adds its id: {r}"
    );
}

fn check_arrived(c: &Collector, sent: &Sent) {
    let what = &sent.service;
    // The span and its log, by trace ID.
    let url = format!("{}/api/v1/traces/{}", c.api_base(), sent.trace_id);
    let mut last = Value::Null;
    let ok = wait_for(
        || {
            let (status, body) = get_json(&url);
            let done = status == 200
                && !body["spans"].as_array().is_none_or(Vec::is_empty)
                && !body["logs"].as_array().is_none_or(Vec::is_empty);
            last = body;
            done
        },
        ARRIVAL,
    );
    assert!(ok, "{what}: GET {url} has no span and log; last: {last:#}");
    let spans = last["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 1, "{what}: {last:#}");
    let s = &spans[0];
    assert_eq!(s["span_id"], sent.span_id.as_str(), "{what}: {s}");
    assert_eq!(s["attributes"]["tag"], sent.tag.as_str(), "{what}: {s}");
    check_resource(&format!("{what} span"), s, sent);
    let logs = last["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{what}: {last:#}");
    assert_eq!(logs[0]["body"], sent.body.as_str(), "{what}: {last:#}");
    assert_eq!(logs[0]["span_id"], sent.span_id.as_str(), "{what}");
    check_resource(&format!("{what} log in trace"), &logs[0], sent);

    // The log, by search.
    let url = url_with(
        &c.api_base(),
        "/api/v1/logs",
        &[
            ("q", &format!("tag:{}", sent.tag)),
            ("service", &sent.service),
        ],
    );
    let (status, body) = get_json(&url);
    assert_eq!(status, 200, "{what}: GET {url}: {body}");
    let logs = body["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{what}: GET {url}: {body:#}");
    assert_eq!(logs[0]["body"], sent.body.as_str());
    assert_eq!(logs[0]["trace_id"], sent.trace_id.as_str());
    check_resource(&format!("{what} log by search"), &logs[0], sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exports_through_the_agent_arrive_with_the_host_resource() {
    // The SDK's simple processors and the blocking HTTP clients block: keep them off the
    // reactor, on a thread that still sees the runtime (tonic needs it).
    tokio::task::spawn_blocking(|| {
        let tmp = tempfile::tempdir().unwrap();
        let c = Collector::start(&["--commit-interval-ms", "100"]);
        let agent = Agent::start(tmp.path(), &config(tmp.path(), &c, true, ""));

        let sent = [
            send(
                app(&agent, Via::Http, "recv-http-app", None),
                "recv-http-app",
                HOST,
            ),
            send(
                app(&agent, Via::Grpc, "recv-grpc-app", None),
                "recv-grpc-app",
                HOST,
            ),
            // An app that names its own host keeps it; the agent's id is still added.
            send(
                app(&agent, Via::Http, "recv-own-host", Some("app-host")),
                "recv-own-host",
                "app-host",
            ),
        ];
        for s in &sent {
            check_arrived(&c, s);
        }
        assert!(
            agent.counter("skein_agent_records_sent_total{signal=\"spans\"}") >= 3.0,
            "{}",
            agent.metrics()
        );
        assert!(
            agent.counter("skein_agent_records_sent_total{signal=\"logs\"}") >= 3.0,
            "{}",
            agent.metrics()
        );
    })
    .await
    .expect("sdk scenario");
}

// ---------------------------------------------------------------------------------------
// b. Host metrics
// ---------------------------------------------------------------------------------------

#[test]
fn host_metrics_reach_the_collector() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Collector::start(&[]);
    let before = series(
        &client()
            .get(format!("{}/metrics", c.api_base()))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "skein_received_records_total{signal=\"metrics\"}",
    );
    assert_eq!(before, 0.0, "nothing but the agent sends metrics here");
    let agent = Agent::start(tmp.path(), &config(tmp.path(), &c, true, ""));
    let mut last = String::new();
    let arrived = wait_for(
        || {
            last = client()
                .get(format!("{}/metrics", c.api_base()))
                .send()
                .and_then(|r| r.text())
                .unwrap_or_default();
            series(&last, "skein_received_records_total{signal=\"metrics\"}") > 0.0
        },
        Duration::from_secs(20),
    );
    assert!(
        arrived,
        "the collector counted no metrics records; its /metrics:\n{last}\nagent's:\n{}",
        agent.metrics()
    );
    assert!(
        wait_for(
            || agent.counter("skein_agent_records_sent_total{signal=\"metrics\"}") > 0.0,
            Duration::from_secs(10)
        ),
        "the agent counted no metrics sent:\n{}",
        agent.metrics()
    );
    // They are stored as series with the agent's host and queryable by it.
    let (status, v) = common::get_json(&common::url_with(
        &c.api_base(),
        "/api/v1/metrics/query",
        &[
            ("name", "system.memory.usage"),
            ("agg", "sum"),
            ("match", "system.memory.state=used"),
            ("by", "host"),
            ("start", "5m"),
        ],
    ));
    assert_eq!(status, 200, "{v}");
    let used = v["series"][0]["points"]
        .as_array()
        .and_then(|p| p.last())
        .and_then(|p| p[1].as_f64())
        .unwrap_or(0.0);
    assert!(used > 0.0, "used memory of the host: {v}");
    assert!(
        v["series"][0]["labels"]["host"]
            .as_str()
            .is_some_and(|h| !h.is_empty()),
        "{v}"
    );
}

// ---------------------------------------------------------------------------------------
// c. Bad requests to the receiver
// ---------------------------------------------------------------------------------------

#[test]
fn bad_requests_to_the_receiver_get_400_and_415_and_it_keeps_working() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Collector::start(&["--commit-interval-ms", "100"]);
    let agent = Agent::start(tmp.path(), &config(tmp.path(), &c, false, ""));
    let http = client();
    let url = format!("http://{}/v1/logs", agent.addrs.otlp_http);

    // Garbage protobuf: a varint that never ends, and a field longer than the body.
    for garbage in [vec![0xffu8; 64], vec![0x0a, 0x10, 0x01, 0x02]] {
        let (status, body) =
            post(&http, &url, "application/x-protobuf", None, garbage.clone()).unwrap();
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(
            status,
            400,
            "garbage {garbage:02x?}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_error_body("garbage protobuf", &json);
    }
    // Garbage JSON.
    let (status, body) =
        post(&http, &url, "application/json", None, b"{not json".to_vec()).unwrap();
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert_error_body(
        "garbage json",
        &serde_json::from_slice(&body).unwrap_or(Value::Null),
    );

    // A type that is not OTLP.
    let (status, body) = post(&http, &url, "text/plain", None, b"hello".to_vec()).unwrap();
    assert_eq!(status, 415, "{}", String::from_utf8_lossy(&body));
    assert_error_body(
        "wrong content type",
        &serde_json::from_slice(&body).unwrap_or(Value::Null),
    );
    // An encoding it does not know.
    let (status, body) = post(
        &http,
        &url,
        "application/x-protobuf",
        Some("br"),
        vec![1, 2, 3],
    )
    .unwrap();
    assert_eq!(status, 415, "{}", String::from_utf8_lossy(&body));

    // Still serving: a good request after the bad ones arrives.
    let tag = unique().replace('x', "t");
    let req = logs_request(
        "recv-raw",
        vec![log_record(
            &format!("after the garbage {tag}"),
            9,
            common::now_nanos(),
            vec![common::kv("tag", &tag)],
        )],
    );
    let (status, body) = post(
        &http,
        &url,
        "application/x-protobuf",
        None,
        req.encode_to_vec(),
    )
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let search = url_with(
        &c.api_base(),
        "/api/v1/logs",
        &[("q", &format!("tag:{tag}")), ("service", "recv-raw")],
    );
    let mut last = Value::Null;
    assert!(
        wait_for(
            || {
                let (s, b) = get_json(&search);
                let ok = s == 200 && b["logs"].as_array().is_some_and(|l| l.len() == 1);
                last = b;
                ok
            },
            ARRIVAL
        ),
        "the good request did not arrive: {last:#}"
    );
    // The request's own host.name (recv-raw-host) is kept.
    assert_eq!(last["logs"][0]["host"], "recv-raw-host", "{last:#}");
    assert_eq!(last["logs"][0]["resource"]["skein.agent.id"], AGENT_ID);
}

// ---------------------------------------------------------------------------------------
// d. A file with bad content
// ---------------------------------------------------------------------------------------

/// The bodies of every log of `service` at the collector.
fn bodies(c: &Collector, service: &str) -> Vec<String> {
    let url = url_with(
        &c.api_base(),
        "/api/v1/logs",
        &[("service", service), ("limit", "1000")],
    );
    let (status, body) = get_json(&url);
    if status != 200 {
        return Vec::new();
    }
    body["logs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| l["body"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The pid of the process whose command line holds `needle` (the agent's config path).
fn pid_with_arg(needle: &str) -> Option<u32> {
    for e in std::fs::read_dir("/proc").ok()? {
        let Ok(e) = e else { continue };
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        if args.contains(&b"agent".as_slice()) && args.contains(&needle.as_bytes()) {
            return Some(pid);
        }
    }
    None
}

/// `VmHWM` (peak resident set) of `pid` in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix("VmHWM:")?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

#[test]
fn garbage_invalid_utf8_and_a_100_mb_line_do_not_stop_the_lines_after_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let c = Collector::start(&["--commit-interval-ms", "100"]);
    let path = dir.join("junk.log");
    let tag = unique().replace('x', "t");

    // Binary garbage, an invalid UTF-8 line with NULs in it, then a normal line.
    let mut garbage: Vec<u8> = (0u32..512)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .filter(|b| *b != b'\n')
        .collect();
    garbage.extend_from_slice(&[0, 0, 0xff, 0xfe, 0x1b, b'[', b'2', b'J', 0x7f, 0x80]);
    let invalid: Vec<u8> = [
        b"invalid utf8 ".as_slice(),
        &[0xff, 0xfe],
        b" in the middle ",
        &[0xc3, 0x28],
        b" and a nul ",
        &[0],
        format!(" {tag}").as_bytes(),
    ]
    .concat();
    let first = format!("first normal line after garbage {tag}");
    {
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&garbage).unwrap();
        f.write_all(b"\n").unwrap();
        f.write_all(&invalid).unwrap();
        f.write_all(b"\n").unwrap();
        writeln!(f, "{first}").unwrap();
        f.sync_all().unwrap();
    }

    let source = format!(
        r#"
[[source]]
name = "junk"
paths = ["{}"]
read_from = "beginning"
max_line_bytes = 65536
"#,
        path.display()
    );
    let agent = Agent::start(dir, &config(dir, &c, false, &source));

    // The first lines arrive, the invalid UTF-8 one with replacement characters.
    let want_invalid = String::from_utf8_lossy(&invalid).into_owned();
    assert!(want_invalid.contains('\u{FFFD}'));
    let mut last = Vec::new();
    let ok = wait_for(
        || {
            last = bodies(&c, "junk");
            last.contains(&first)
                && last
                    .iter()
                    .any(|b| b.contains(&tag) && b.contains('\u{FFFD}'))
        },
        ARRIVAL,
    );
    assert!(ok, "the lines after the garbage did not arrive: {last:#?}");
    let got_invalid = last
        .iter()
        .find(|b| b.contains(&tag) && b.starts_with("invalid utf8"))
        .unwrap();
    assert_eq!(
        got_invalid.trim_end(),
        want_invalid.trim_end(),
        "invalid UTF-8 is replaced with U+FFFD, not dropped"
    );

    // Now a 100 MiB line, written in 1 MiB pieces while the agent reads, then a normal line.
    let second = format!("second normal line after the huge one {tag}");
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let chunk = vec![b'y'; 1024 * 1024];
        for _ in 0..100 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\n").unwrap();
        writeln!(f, "{second}").unwrap();
        f.sync_all().unwrap();
    }
    let ok = wait_for(
        || {
            last = bodies(&c, "junk");
            last.contains(&second)
        },
        ARRIVAL,
    );
    assert!(
        ok,
        "the line after the 100 MB line did not arrive; bodies: {:?}",
        last.iter()
            .map(|b| b.chars().take(80).collect::<String>())
            .collect::<Vec<_>>()
    );
    // The huge line arrives cut at max_line_bytes.
    let cut: Vec<&String> = last.iter().filter(|b| b.starts_with("yyyy")).collect();
    assert_eq!(cut.len(), 1, "the huge line arrives once, cut");
    assert!(
        cut[0].len() <= 65536 + 1 && cut[0].len() >= 60_000,
        "cut at max_line_bytes: {} bytes",
        cut[0].len()
    );
    assert!(
        agent.counter("skein_agent_lines_truncated_total{source=\"junk\"}") >= 1.0,
        "{}",
        agent.metrics()
    );
    // Every line arrived once: the garbage one too (replaced, not dropped).
    assert_eq!(
        last.iter().filter(|b| **b == first).count(),
        1,
        "no line twice"
    );
    let garbage_lines: Vec<&String> = last
        .iter()
        .filter(|b| b.contains('\u{FFFD}') && !b.starts_with("invalid utf8"))
        .collect();
    assert_eq!(
        garbage_lines.len(),
        1,
        "the binary garbage line arrives as one record: {garbage_lines:?}"
    );
    assert_eq!(
        last.len(),
        5,
        "garbage, invalid UTF-8, first, the cut line, second; got {:?}",
        last.iter()
            .map(|b| b.chars().take(80).collect::<String>())
            .collect::<Vec<_>>()
    );

    // The 100 MB line was never held in memory.
    let config = agent.config.display().to_string();
    if let Some(pid) = pid_with_arg(&config)
        && let Some(peak) = peak_rss_kib(pid)
    {
        eprintln!("agent pid {pid}: peak RSS {peak} KiB");
        assert!(
            peak < 80 * 1024,
            "the agent's peak RSS is {peak} KiB after a 100 MiB line"
        );
    }
}
