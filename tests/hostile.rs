//! The worst client, against the real collector binary: compression bombs of empty records,
//! huge resources repeated over many records, `1e20s` wherever a duration is read, queries
//! nested thousands deep, and a span name that a limit cuts mid-character. After each the
//! collector still answers, its peak memory stays under the documented bound, and it starts
//! again on the same data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Collector, assert_error_body, assert_serving, client, get_json, get_json_with, kv,
    new_trace_id, now_nanos, post, raw_logs_export, span, traces_request, url_with, wait_for,
};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

const PROTOBUF: &str = "application/x-protobuf";
const MIB: u64 = 1024 * 1024;
/// The peak RSS the collector stays under on its defaults (documented in RELIABILITY.md).
const RSS_BOUND: u64 = 1024 * MIB;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Peak resident memory of a process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM value");
    kb * 1024
}

/// One `ResourceLogs` message of `n` empty log records, encoded by hand: building it as
/// structs would take gigabytes in the test itself.
fn bomb_resource_logs(n: usize) -> Vec<u8> {
    let mut scope = Vec::with_capacity(2 * n);
    for _ in 0..n {
        // ScopeLogs.log_records (field 2), an empty message.
        scope.extend_from_slice(&[0x12, 0x00]);
    }
    let mut rl = Resource {
        attributes: vec![kv("service.name", "bomb")],
        ..Default::default()
    }
    .encode_length_delimited_to_vec();
    rl.insert(0, 0x0a); // ResourceLogs.resource (field 1)
    rl.push(0x12); // ResourceLogs.scope_logs (field 2)
    prost::encoding::encode_varint(scope.len() as u64, &mut rl);
    rl.extend_from_slice(&scope);
    rl
}

/// An export request holding [`bomb_resource_logs`].
fn empty_records_bytes(n: usize) -> Vec<u8> {
    let rl = bomb_resource_logs(n);
    let mut out = vec![0x0a]; // ExportLogsServiceRequest.resource_logs (field 1)
    prost::encoding::encode_varint(rl.len() as u64, &mut out);
    out.extend_from_slice(&rl);
    out
}

/// A logs request of `n` empty records under one resource whose `service.name` is `service`.
fn empty_records(n: usize, service: &str, extra: Vec<KeyValue>) -> ExportLogsServiceRequest {
    let mut attributes = vec![kv("service.name", service)];
    attributes.extend(extra);
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes,
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(); n],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn send_logs(c: &Collector, encoding: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let url = format!("{}/v1/logs", c.http_base());
    let (status, bytes) = post(&client(), &url, PROTOBUF, encoding, body)
        .unwrap_or_else(|e| panic!("POST {url}: no answer: {e}"));
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[test]
fn compression_bombs_and_huge_resources_are_refused_within_the_memory_bound() {
    let mut c = Collector::start(&["--commit-interval-ms", "100"]);
    // 16 MiB of empty records (8 million), about 16 KiB gzipped. Before admission by cost
    // this drove the collector to 4.7 GB.
    let bomb = empty_records_bytes(7_000_000);
    assert!(bomb.len() <= 16 * MIB as usize, "{}", bomb.len());
    let zipped = gzip(&bomb);
    for _ in 0..3 {
        let (status, body) = send_logs(&c, Some("gzip"), zipped.clone());
        assert_eq!(status, 413, "{body}");
        assert_error_body("compression bomb", &body);
        let msg = body["message"].as_str().unwrap_or_default();
        assert!(msg.contains("max_records_per_request"), "{msg}");
    }

    // A 1 MiB resource attribute over many records: every NDJSON line would repeat it.
    let big = kv("k8s.pod.annotations", &"a".repeat(MIB as usize));
    let req = empty_records(1_000, "big-resource", vec![big.clone()]);
    let (status, body) = send_logs(&c, Some("gzip"), gzip(&req.encode_to_vec()));
    assert_eq!(status, 413, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("memory_budget_mb")),
        "{body}"
    );
    // One record under it: within the budget, refused by the resource limit.
    let req = empty_records(1, "big-resource", vec![big]);
    let (status, body) = send_logs(&c, None, req.encode_to_vec());
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_resource_bytes")),
        "{body}"
    );

    // The same bomb over gRPC: refused before it is decoded.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let endpoint = c.grpc_endpoint();
    let resource_logs = bomb_resource_logs(7_000_000);
    let err = rt
        .block_on(raw_logs_export(&endpoint, vec![resource_logs], true))
        .expect_err("a bomb over gRPC");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("max_records_per_request"), "{err:?}");

    assert_serving(&c);
    let peak = peak_rss(c.pid());
    eprintln!("peak RSS after the bombs: {} MiB", peak / MIB);
    assert!(
        peak < RSS_BOUND,
        "peak RSS {} MiB is over the bound of {} MiB",
        peak / MIB,
        RSS_BOUND / MIB
    );
    c.restart();
    assert_serving(&c);
}

#[test]
fn durations_past_any_clock_are_refused_everywhere_and_the_collector_stays_up() {
    let c = Collector::start(&["--commit-interval-ms", "100"]);
    assert_serving(&c);
    let api = c.api_base();
    let http = client();
    let huge = "1e20s";
    let gets: [(&str, &str); 9] = [
        ("/api/v1/logs", "start"),
        ("/api/v1/logs", "end"),
        ("/api/v1/traces", "min_duration"),
        ("/api/v1/traces", "max_duration"),
        ("/api/v1/traces", "start"),
        ("/api/v1/metrics/query", "step"),
        ("/api/v1/metrics/query", "start"),
        ("/api/v1/alerts/history", "since"),
        ("/api/v1/logs/context", "time"),
    ];
    for (path, param) in gets {
        let mut params = vec![(param, huge)];
        if path == "/api/v1/metrics/query" {
            params.push(("name", "skein.span.calls"));
        }
        if path == "/api/v1/logs/context" {
            params.push(("service", "checker"));
        }
        let url = url_with(&api, path, &params);
        let (status, body) = get_json_with(&http, &url, None);
        assert_eq!(status, 400, "GET {url}: {body}");
        assert_error_body(&url, &body);
    }
    let silence = serde_json::json!({
        "matchers": [{"name": "alertname", "value": "X", "isRegex": false}],
        "duration": huge,
        "createdBy": "test",
        "comment": "forever and more",
    });
    let resp = http
        .post(format!("{api}/api/v1/silences"))
        .json(&silence)
        .send()
        .expect("POST silence");
    assert_eq!(resp.status().as_u16(), 400);
    assert_serving(&c);
}

#[test]
fn a_query_nested_thousands_deep_is_refused_and_ingest_goes_on() {
    let c = Collector::start(&["--commit-interval-ms", "100"]);
    assert_serving(&c);
    let api = c.api_base();
    for q in [
        format!("{}a{}", "(".repeat(3_000), ")".repeat(3_000)),
        "NOT ".repeat(2_000) + "a",
    ] {
        let url = url_with(&api, "/api/v1/logs", &[("q", &q)]);
        let (status, body) = get_json(&url);
        assert_eq!(status, 400, "{body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("limit of 64")),
            "{body}"
        );
    }
    assert_serving(&c);
}

#[test]
fn a_span_name_cut_mid_character_by_a_limit_does_not_stop_the_next_start() {
    let mut c = Collector::start(&["--commit-interval-ms", "100"]);
    let name = format!("{}é", "a".repeat(65_534));
    let trace = new_trace_id();
    let req = traces_request(
        "cut-service",
        vec![span(&trace, &[7; 8], &[], &name, now_nanos())],
    );
    let url = format!("{}/v1/traces", c.http_base());
    let (status, _) = post(&client(), &url, PROTOBUF, None, req.encode_to_vec()).unwrap();
    assert_eq!(status, 200);
    // The span-derived series exist once the deriver has flushed.
    let ops = format!("{}/api/v1/services/cut-service/operations", c.api_base());
    assert!(
        wait_for(
            || get_json(&ops).1.to_string().contains("aaaa"),
            Duration::from_secs(30)
        ),
        "span-derived operation never appeared: {}",
        get_json(&ops).1
    );
    let (_, body) = get_json(&ops);
    let text = body.to_string();
    assert!(!text.contains(&name), "the label value is cut");
    c.restart();
    assert_serving(&c);
    let ops = format!("{}/api/v1/services/cut-service/operations", c.api_base());
    let (status, body) = get_json(&ops);
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("aaaa"), "{body}");
}

#[test]
fn a_batch_too_large_for_the_wal_is_refused_with_413_not_503() {
    let c = Collector::start(&["--commit-interval-ms", "100"]);
    // 1,100 records under a 60 KiB resource: a small request within every limit, whose NDJSON
    // (each line repeats the resource) is over the WAL's 64 MiB record limit. Before, it got
    // 503 "retry later", which it never could, and failed its fsync group.
    let res = kv("k8s.pod.annotations", &"a".repeat(60 * 1024));
    let req = empty_records(1_100, "wide", vec![res]);
    let (status, body) = send_logs(&c, None, req.encode_to_vec());
    assert_eq!(status, 413, "{body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(msg.contains("write-ahead log record"), "{msg}");
    // Half of it fits, as a client that splits on 413 sends it.
    let res = kv("k8s.pod.annotations", &"a".repeat(60 * 1024));
    let req = empty_records(550, "wide", vec![res]);
    let (status, body) = send_logs(&c, None, req.encode_to_vec());
    assert_eq!(status, 200, "{body}");
    assert_serving(&c);
}
