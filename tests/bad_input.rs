//! Bad input is refused with the right status and a JSON `{"error", "message"}` body, and the
//! collector keeps serving: a valid batch sent after all of them is accepted and searchable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Collector, RawLogsRequest, assert_error_body, client, get_json, get_json_with, hex, kv,
    log_record, logs_request, new_trace_id, now_nanos, post, raw_logs_export, span, traces_request,
    unique, url_with, wait_for,
};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;
use serde_json::{Value, json};
use std::io::Write;
use std::time::Duration;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
const MIB: usize = 1024 * 1024;

/// POSTs and returns the status and the body as JSON (Null when it is not JSON).
fn send(
    c: &Collector,
    path: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let url = format!("{}{path}", c.http_base());
    let (status, bytes) = post(&client(), &url, content_type, encoding, body)
        .unwrap_or_else(|e| panic!("POST {url}: no answer: {e}"));
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Sends a bad request and checks its status and error body; returns the message.
fn refused(
    c: &Collector,
    what: &str,
    path: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
    want: u16,
) -> String {
    let (status, answer) = send(c, path, content_type, encoding, body);
    assert_eq!(status, want, "{what}: status; answer {answer}");
    assert_error_body(what, &answer);
    answer["message"].as_str().unwrap_or_default().to_string()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Sends one valid log batch with a fresh request ID and waits until the trace API finds it.
fn assert_still_serving(c: &Collector) {
    let rid = format!("req-after-{}", unique());
    let body = format!("still serving {rid}");
    let req = logs_request(
        "checker",
        vec![log_record(
            &body,
            9,
            now_nanos(),
            vec![kv("request_id", &rid)],
        )],
    );
    let (status, answer) = send(c, "/v1/logs", PROTOBUF, None, req.encode_to_vec());
    assert_eq!(
        status, 200,
        "a valid batch after the bad ones is refused: {answer}"
    );
    let url = format!("{}/api/v1/traces/{rid}", c.api_base());
    let mut last = Value::Null;
    let found = wait_for(
        || {
            let (s, b) = get_json(&url);
            let ok = s == 200 && b["logs"].as_array().is_some_and(|l| l.len() == 1);
            last = b;
            ok
        },
        Duration::from_secs(20),
    );
    assert!(found, "the valid batch is not searchable: {last}");
    assert_eq!(last["logs"][0]["body"].as_str(), Some(body.as_str()));
}

/// A request holding one log record whose severity_text is not UTF-8.
fn invalid_utf8_logs() -> Vec<u8> {
    let mut rec = log_record("hello", 9, now_nanos(), vec![]);
    rec.severity_text = "x".into();
    let mut bytes = logs_request("utf8", vec![rec]).encode_to_vec();
    // LogRecord.severity_text is field 3, length-delimited: tag 0x1a, length 1, 'x'.
    let at: Vec<usize> = bytes
        .windows(3)
        .enumerate()
        .filter(|(_, w)| *w == [0x1a, 0x01, b'x'])
        .map(|(i, _)| i + 2)
        .collect();
    assert_eq!(at.len(), 1, "severity_text found {} times", at.len());
    bytes[at[0]] = 0xff;
    bytes
}

#[test]
fn otlp_http_refuses_bad_requests_and_keeps_serving() {
    let c = Collector::start(&[
        "--max-request-bytes",
        "1048576",
        "--commit-interval-ms",
        "100",
    ]);
    let now = now_nanos();
    let trace = new_trace_id();
    let valid_logs = logs_request("bad-input", vec![log_record("ok", 9, now, vec![])]);

    // Malformed bodies.
    for path in ["/v1/logs", "/v1/traces", "/v1/metrics"] {
        refused(
            &c,
            &format!("random bytes to {path}"),
            path,
            PROTOBUF,
            None,
            vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02, 0x03],
            400,
        );
        refused(
            &c,
            &format!("malformed JSON to {path}"),
            path,
            JSON,
            None,
            br#"{"resourceLogs": [ {"resource": "#.to_vec(),
            400,
        );
    }
    refused(
        &c,
        "overlong varint",
        "/v1/logs",
        PROTOBUF,
        None,
        vec![0xff; 64],
        400,
    );

    // Content type and encoding.
    refused(
        &c,
        "text/plain",
        "/v1/logs",
        "text/plain",
        None,
        valid_logs.encode_to_vec(),
        415,
    );
    refused(
        &c,
        "unknown content encoding",
        "/v1/logs",
        PROTOBUF,
        Some("br"),
        valid_logs.encode_to_vec(),
        415,
    );
    refused(
        &c,
        "gzip header on a body that is not gzip",
        "/v1/logs",
        PROTOBUF,
        Some("gzip"),
        valid_logs.encode_to_vec(),
        400,
    );

    // Size limits: raw, and after decompression.
    let msg = refused(
        &c,
        "2 MiB body over a 1 MiB limit",
        "/v1/logs",
        PROTOBUF,
        None,
        vec![0u8; 2 * MIB],
        413,
    );
    assert!(msg.contains("1048576"), "names the limit: {msg}");
    let bomb = gzip(&vec![0u8; 2 * MIB]);
    assert!(bomb.len() < 64 * 1024);
    refused(
        &c,
        "gzip body inflating past the limit",
        "/v1/logs",
        PROTOBUF,
        Some("gzip"),
        bomb,
        413,
    );
    let zbomb = zstd::encode_all(&vec![0u8; 2 * MIB][..], 3).unwrap();
    refused(
        &c,
        "zstd body inflating past the limit",
        "/v1/logs",
        PROTOBUF,
        Some("zstd"),
        zbomb,
        413,
    );

    // Invalid records.
    let zero = traces_request("bad-input", vec![span(&[0; 16], &[1; 8], &[], "zero", now)]);
    let msg = refused(
        &c,
        "span with an all-zero trace id",
        "/v1/traces",
        PROTOBUF,
        None,
        zero.encode_to_vec(),
        400,
    );
    assert!(msg.contains("trace_id"), "names the field: {msg}");
    let short = traces_request("bad-input", vec![span(&trace, &[1; 4], &[], "short", now)]);
    let msg = refused(
        &c,
        "span id of 4 bytes",
        "/v1/traces",
        PROTOBUF,
        None,
        short.encode_to_vec(),
        400,
    );
    assert!(msg.contains("span_id"), "names the field: {msg}");
    refused(
        &c,
        "invalid UTF-8 in a string field",
        "/v1/logs",
        PROTOBUF,
        None,
        invalid_utf8_logs(),
        400,
    );
    let attrs: Vec<KeyValue> = (0..10_000).map(|i| kv(&format!("k{i}"), "v")).collect();
    let many = logs_request("bad-input", vec![log_record("many", 9, now, attrs)]);
    let msg = refused(
        &c,
        "10,000 attributes",
        "/v1/logs",
        PROTOBUF,
        None,
        many.encode_to_vec(),
        400,
    );
    assert!(
        msg.contains("512") && msg.contains("limit"),
        "names the limit: {msg}"
    );

    // Unknown endpoint.
    let (status, body) = get_json(&format!("{}/v1/nothing", c.http_base()));
    assert_eq!(status, 404);
    assert_error_body("unknown OTLP path", &body);

    // Partial success: the all-zero span is rejected, the valid one kept (OTLP JSON).
    let good_trace = hex(&new_trace_id());
    let t = now_nanos();
    let mixed = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bad-input"}}]},
        "scopeSpans": [{"spans": [
            {"traceId": "00000000000000000000000000000000", "spanId": "0102030405060708",
             "name": "zero", "kind": 2,
             "startTimeUnixNano": t.to_string(), "endTimeUnixNano": (t + 1000).to_string()},
            {"traceId": good_trace, "spanId": "1112131415161718", "name": "kept", "kind": 2,
             "startTimeUnixNano": t.to_string(), "endTimeUnixNano": (t + 1000).to_string()}
        ]}]
    }]});
    let (status, answer) = send(
        &c,
        "/v1/traces",
        JSON,
        None,
        serde_json::to_vec(&mixed).unwrap(),
    );
    assert_eq!(status, 200, "mixed batch: {answer}");
    let rejected = &answer["partialSuccess"]["rejectedSpans"];
    assert!(
        rejected == &json!(1) || rejected == &json!("1"),
        "partialSuccess.rejectedSpans should be 1: {answer}"
    );
    assert!(
        !answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "partial success names the reason: {answer}"
    );
    // The same in protobuf.
    let mixed = traces_request(
        "bad-input",
        vec![
            span(&[0; 16], &[2; 8], &[], "zero", t),
            span(&new_trace_id(), &[3; 8], &[], "kept too", t),
        ],
    );
    let url = format!("{}/v1/traces", c.http_base());
    let (status, bytes) = post(&client(), &url, PROTOBUF, None, mixed.encode_to_vec()).unwrap();
    assert_eq!(status, 200);
    let resp = ExportTraceServiceResponse::decode(&bytes[..]).expect("protobuf answer");
    assert_eq!(
        resp.partial_success.map(|p| p.rejected_spans),
        Some(1),
        "protobuf partial success"
    );
    let url = format!("{}/api/v1/traces/{good_trace}", c.api_base());
    assert!(
        wait_for(|| get_json(&url).0 == 200, Duration::from_secs(20)),
        "the valid span of the mixed batch is not searchable"
    );
    let (_, kept) = get_json(&url);
    assert_eq!(common::strings(&kept["spans"], "name"), vec!["kept"]);

    assert_still_serving(&c);
}

#[test]
fn oversized_log_body_is_refused_naming_the_limit() {
    let c = Collector::start(&[
        "--max-request-bytes",
        "33554432",
        "--commit-interval-ms",
        "100",
    ]);
    let body = "x".repeat(10 * 1000 * 1000);
    let req = logs_request("bad-input", vec![log_record(&body, 9, now_nanos(), vec![])]);
    let msg = refused(
        &c,
        "10 MB log body",
        "/v1/logs",
        PROTOBUF,
        None,
        req.encode_to_vec(),
        400,
    );
    assert!(
        msg.contains("1048576") && msg.contains("limit"),
        "names the limit: {msg}"
    );
    assert_still_serving(&c);
}

#[test]
fn query_api_refuses_bad_requests() {
    let c = Collector::start(&["--commit-interval-ms", "100"]);
    // Some data first, so that queries reach the index.
    assert_still_serving(&c);
    let api = c.api_base();
    let http = client();
    let bad = |path: &str, params: &[(&str, &str)], want: u16| {
        let url = url_with(&api, path, params);
        let (status, body) = get_json_with(&http, &url, None);
        assert_eq!(status, want, "GET {url}: {body}");
        assert_error_body(&url, &body);
        body["message"].as_str().unwrap_or_default().to_string()
    };
    let msg = bad("/api/v1/logs", &[("q", "foo:(")], 400);
    assert!(msg.contains("foo:("), "quotes the query: {msg}");
    let msg = bad("/api/v1/logs", &[("start", "yesterday-ish")], 400);
    assert!(msg.contains("start"), "{msg}");
    bad("/api/v1/logs", &[("end", "soonish")], 400);
    bad("/api/v1/logs", &[("start", "now"), ("end", "1h")], 400);
    let msg = bad("/api/v1/logs", &[("limit", "999999")], 400);
    assert!(msg.contains("1000"), "names the maximum: {msg}");
    bad("/api/v1/logs", &[("limit", "0")], 400);
    bad("/api/v1/logs", &[("limit", "lots")], 400);
    bad("/api/v1/logs", &[("severity", "loud")], 400);
    bad("/api/v1/traces", &[("min_duration", "forever")], 400);
    bad("/api/v1/traces", &[("error", "maybe")], 400);
    bad("/api/v1/traces", &[("limit", "999999")], 400);
    bad(&format!("/api/v1/traces/req-never-{}", unique()), &[], 404);
    bad("/api/v1/nothing", &[], 404);
    bad("/nothing", &[], 404);

    // Still answering good queries.
    let (status, body) = get_json(&url_with(&api, "/api/v1/logs", &[("q", "serving")]));
    assert_eq!(status, 200, "{body}");
    assert!(!body["logs"].as_array().expect("logs").is_empty());
}

#[test]
fn bad_query_is_refused_before_any_data_arrived() {
    // The syntax of a query does not depend on what is stored: a fresh collector must refuse
    // `foo:(` as well.
    let c = Collector::start(&[]);
    let url = url_with(&c.api_base(), "/api/v1/logs", &[("q", "foo:(")]);
    let (status, body) = get_json(&url);
    assert_eq!(
        status, 400,
        "GET {url} on an empty collector: expected 400, got {status} {body}"
    );
    assert_error_body(&url, &body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_grpc_refuses_bad_requests_and_keeps_serving() {
    let c = tokio::task::spawn_blocking(|| {
        Collector::start(&[
            "--max-request-bytes",
            "1048576",
            "--commit-interval-ms",
            "100",
        ])
    })
    .await
    .unwrap();
    let endpoint = c.grpc_endpoint();
    let mut traces = TraceServiceClient::connect(endpoint.clone())
        .await
        .expect("connect");
    let mut logs = LogsServiceClient::connect(endpoint.clone())
        .await
        .expect("connect");
    let now = now_nanos();

    // All-zero trace ID, alone: InvalidArgument.
    let zero = traces_request("grpc-bad", vec![span(&[0; 16], &[1; 8], &[], "zero", now)]);
    let err = traces.export(zero).await.expect_err("all-zero trace id");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(!err.message().is_empty());

    // Wrong span ID length: InvalidArgument.
    let short = traces_request(
        "grpc-bad",
        vec![span(&new_trace_id(), &[1; 3], &[], "short", now)],
    );
    let err = traces.export(short).await.expect_err("short span id");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");

    // Mixed with a valid span: partial success.
    let mixed = traces_request(
        "grpc-bad",
        vec![
            span(&[0; 16], &[1; 8], &[], "zero", now),
            span(&new_trace_id(), &[4; 8], &[], "kept", now),
        ],
    );
    let resp = traces
        .export(mixed)
        .await
        .expect("mixed batch")
        .into_inner();
    assert_eq!(resp.partial_success.map(|p| p.rejected_spans), Some(1));

    // Too many attributes: InvalidArgument naming the limit.
    let attrs: Vec<KeyValue> = (0..10_000).map(|i| kv(&format!("k{i}"), "v")).collect();
    let many = logs_request("grpc-bad", vec![log_record("many", 9, now, attrs)]);
    let err = logs.export(many).await.expect_err("10,000 attributes");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("512"), "{err:?}");

    // Over the message size limit.
    let big = logs_request(
        "grpc-bad",
        vec![log_record(&"y".repeat(2 * MIB), 9, now, vec![])],
    );
    let err = logs.export(big).await.expect_err("2 MiB message");
    assert!(
        matches!(
            err.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted | tonic::Code::InvalidArgument
        ),
        "over-limit message: {err:?}"
    );

    // Malformed protobuf inside the message, and invalid UTF-8 in a string field.
    let err = raw_logs_export(&endpoint, vec![vec![0x0a, 0xff, 0xff, 0xff, 0x0f]], false)
        .await
        .expect_err("malformed message");
    assert_ne!(err.code(), tonic::Code::Ok, "{err:?}");
    // The outer message still reads with `resource_logs` as bytes; those bytes hold the bad
    // string.
    let raw = RawLogsRequest::decode(&invalid_utf8_logs()[..]).expect("outer message");
    let err = raw_logs_export(&endpoint, raw.resource_logs, false)
        .await
        .expect_err("invalid UTF-8");
    assert_ne!(err.code(), tonic::Code::Ok, "{err:?}");

    // Still serving: a valid export is accepted and searchable.
    let c = tokio::task::spawn_blocking(move || {
        assert_still_serving(&c);
        c
    })
    .await
    .unwrap();
    let rid = format!("req-grpc-{}", unique());
    let ok = logs_request(
        "grpc-bad",
        vec![log_record(
            "grpc ok",
            9,
            now_nanos(),
            vec![kv("request_id", &rid)],
        )],
    );
    let resp = logs.export(ok).await.expect("valid export").into_inner();
    assert!(
        resp.partial_success
            .is_none_or(|p| p.rejected_log_records == 0)
    );
    let url = format!("{}/api/v1/traces/{rid}", c.api_base());
    let found = tokio::task::spawn_blocking(move || {
        let found = wait_for(|| get_json(&url).0 == 200, Duration::from_secs(20));
        drop(c);
        found
    })
    .await
    .unwrap();
    assert!(found, "the valid gRPC export is not searchable");
}

#[test]
fn tokens_guard_ingest_and_query_but_not_health() {
    let c = Collector::start(&[
        "--ingest-token",
        "s3cret",
        "--query-token",
        "q3cret",
        "--commit-interval-ms",
        "100",
    ]);
    let http = client();
    let rid = format!("req-auth-{}", unique());
    let batch = logs_request(
        "auth",
        vec![log_record(
            "authorized",
            9,
            now_nanos(),
            vec![kv("request_id", &rid)],
        )],
    )
    .encode_to_vec();
    let ingest = format!("{}/v1/logs", c.http_base());

    // OTLP/HTTP: none or a wrong token is 401 with a JSON error; the token is 200.
    for token in [None, Some("wrong"), Some("q3cret")] {
        let mut req = http
            .post(&ingest)
            .header("content-type", PROTOBUF)
            .body(batch.clone());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().expect("post");
        assert_eq!(resp.status().as_u16(), 401, "ingest with token {token:?}");
        let body: Value = resp.json().unwrap_or(Value::Null);
        assert_error_body("ingest without token", &body);
    }
    let resp = http
        .post(&ingest)
        .header("content-type", PROTOBUF)
        .bearer_auth("s3cret")
        .body(batch)
        .send()
        .expect("post");
    assert_eq!(resp.status().as_u16(), 200, "ingest with the token");

    // Query API: 401 without the query token, 200 with it; health without.
    let api = c.api_base();
    for path in [
        format!("/api/v1/traces/{rid}"),
        "/api/v1/logs".to_string(),
        "/api/v1/traces".to_string(),
        "/metrics".to_string(),
    ] {
        for token in [None, Some("wrong"), Some("s3cret")] {
            let (status, body) = get_json_with(&http, &format!("{api}{path}"), token);
            assert_eq!(status, 401, "GET {path} with token {token:?}: {body}");
            assert_error_body(&path, &body);
        }
    }
    let trace_url = format!("{api}/api/v1/traces/{rid}");
    assert!(
        wait_for(
            || get_json_with(&http, &trace_url, Some("q3cret")).0 == 200,
            Duration::from_secs(20)
        ),
        "the authorized batch is not found with the query token"
    );
    let (status, _) = get_json_with(&http, &format!("{api}/api/v1/logs"), Some("q3cret"));
    assert_eq!(status, 200);
    for path in ["/healthz", "/readyz"] {
        let (status, body) = get_json_with(&http, &format!("{api}{path}"), None);
        assert_eq!(status, 200, "GET {path} needs no token: {body}");
    }

    // OTLP/gRPC: Unauthenticated without the token, accepted with it.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut logs = LogsServiceClient::connect(c.grpc_endpoint())
            .await
            .expect("connect");
        let req = || {
            logs_request(
                "auth",
                vec![log_record("grpc auth", 9, now_nanos(), vec![])],
            )
        };
        let err = logs.export(req()).await.expect_err("no token");
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
        let mut with = tonic::Request::new(req());
        with.metadata_mut()
            .insert("authorization", "Bearer s3cret".parse().unwrap());
        logs.export(with).await.expect("with the token");
    });
}
