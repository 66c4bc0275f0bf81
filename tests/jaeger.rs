//! Grafana's Jaeger data source against a real collector: spans and logs sent over
//! OTLP/HTTP, then the requests Grafana makes (its health check, the services and operations
//! of the query editor, a search with tags, durations, limit and a time range in µs, a
//! trace by ID, a trace by request ID, the dependency graph), each answer checked for the
//! fields Grafana reads; then the same over Jaeger's HTTP API v3, which newer Grafana
//! releases call (its `grpc_client.go`), each answer checked for the OTLP/JSON fields
//! Grafana decodes (`types/grpc_types.go`) and reads (`utils/grpc_utils.go`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Collector, client, get_json_with, hex, kv, log_record, logs_request, new_trace_id, now_nanos,
    post, span, traces_request, unique, url_with, wait_for,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::{Status, status};
use prost::Message;
use serde_json::{Value, json};
use std::time::Duration;

const TOKEN: &str = "grafana-q";
const SERVER: i32 = 2;
const CLIENT: i32 = 3;

fn int(key: &str, v: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

fn send(c: &Collector, path: &str, body: Vec<u8>) {
    let (status, bytes) = post(
        &client(),
        &format!("{}{path}", c.http_base()),
        "application/x-protobuf",
        None,
        body,
    )
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
}

/// What the collector answers Grafana, with Grafana's bearer token.
fn grafana(c: &Collector, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    get_json_with(
        &client(),
        &url_with(&c.api_base(), path, params),
        Some(TOKEN),
    )
}

fn tag<'a>(span: &'a Value, key: &str) -> &'a Value {
    span["tags"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["key"] == key))
        .map(|t| &t["value"])
        .unwrap_or(&Value::Null)
}

fn span_named<'a>(trace: &'a Value, name: &str) -> &'a Value {
    trace["spans"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["operationName"] == name))
        .unwrap_or_else(|| panic!("no span {name} in {trace}"))
}

fn log_events(span: &Value) -> Vec<String> {
    span["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["key"] == "event")
                .map(|f| f["value"].as_str().unwrap().to_string())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn grafanas_jaeger_requests_get_the_shapes_it_parses() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        "[metrics]\nderive_interval = \"1s\"\njoin_window = \"2s\"\n",
    )
    .unwrap();
    let c = Collector::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--query-token",
        TOKEN,
        "--commit-interval-ms",
        "100",
    ]);

    // One request: gateway GET /order (40 ms, request ID) → its client span → payment
    // charge (500, error, an exception event); a log line under the charge span and one
    // that carries only the request ID. Another trace: a fast health check.
    let t = new_trace_id();
    let t2 = new_trace_id();
    let rid = format!("req-{}", unique());
    let t0 = now_nanos() - 1_000_000_000;
    let mut root = span(&t, &[1; 8], &[], "GET /order", t0);
    root.end_time_unix_nano = t0 + 40_000_000;
    root.attributes = vec![kv("request.id", &rid), int("http.status_code", 200)];
    let mut call = span(&t, &[2; 8], &[1; 8], "payment.charge", t0 + 1_000_000);
    call.kind = CLIENT;
    call.end_time_unix_nano = t0 + 31_000_000;
    let mut charge = span(&t, &[3; 8], &[2; 8], "charge", t0 + 2_000_000);
    charge.kind = SERVER;
    charge.end_time_unix_nano = t0 + 30_000_000;
    charge.attributes = vec![int("http.status_code", 500)];
    charge.status = Some(Status {
        code: status::StatusCode::Error as i32,
        message: "card declined".into(),
    });
    charge.events = vec![Event {
        time_unix_nano: t0 + 3_000_000,
        name: "exception".into(),
        attributes: vec![kv("exception.message", "declined")],
        ..Default::default()
    }];
    let mut health = span(&t2, &[4; 8], &[], "GET /health", t0 + 5_000_000);
    health.end_time_unix_nano = t0 + 6_000_000;
    send(
        &c,
        "/v1/traces",
        traces_request("payment", vec![charge]).encode_to_vec(),
    );
    send(
        &c,
        "/v1/traces",
        traces_request("gateway", vec![root, call, health]).encode_to_vec(),
    );
    let mut declined = log_record("bank said no", 17, t0 + 4_000_000, vec![]);
    declined.trace_id = t.to_vec();
    declined.span_id = vec![3; 8];
    send(
        &c,
        "/v1/logs",
        logs_request("payment", vec![declined]).encode_to_vec(),
    );
    let received = log_record(
        "order received",
        9,
        t0 + 500_000,
        vec![kv("request.id", &rid)],
    );
    send(
        &c,
        "/v1/logs",
        logs_request("gateway", vec![received]).encode_to_vec(),
    );
    let tid = hex(&t);

    // Everything is behind the query token, as Grafana's data source sends it.
    let (status, _) = get_json_with(&client(), &format!("{}/api/services", c.api_base()), None);
    assert_eq!(status, 401);

    // The health check: GET /api/services, some services there.
    let ok = wait_for(
        || {
            let (_, v) = grafana(&c, "/api/services", &[]);
            v["data"] == json!(["gateway", "payment"])
                && grafana(&c, &format!("/api/traces/{tid}"), &[]).1["data"][0]["spans"]
                    .as_array()
                    .is_some_and(|s| s.len() == 3)
        },
        Duration::from_secs(30),
    );
    let (status, v) = grafana(&c, "/api/services", &[]);
    assert!(
        ok,
        "the services and the trace are searchable: {status} {v}"
    );
    assert_eq!(v["total"], 2);
    assert_eq!(
        (v["limit"].clone(), v["offset"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(v["errors"], Value::Null);

    // The query editor's operations.
    let (status, v) = grafana(&c, "/api/services/gateway/operations", &[]);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["data"],
        json!(["GET /health", "GET /order", "payment.charge"])
    );
    let (_, v) = grafana(&c, "/api/services/payment/operations", &[]);
    assert_eq!(v["data"], json!(["charge"]));
    let (_, v) = grafana(
        &c,
        "/api/operations",
        &[("service", "gateway"), ("spanKind", "client")],
    );
    assert_eq!(
        v["data"],
        json!([{"name": "payment.charge", "spanKind": "client"}])
    );

    // The search, as Grafana's backend builds it: tags as a JSON object, Go durations, a
    // limit, start and end in µs.
    let start = ((t0 - 60_000_000_000) / 1000).to_string();
    let end = ((now_nanos() + 60_000_000_000) / 1000).to_string();
    let search = |extra: &[(&str, &str)]| {
        let mut p = vec![("start", start.as_str()), ("end", end.as_str())];
        p.extend_from_slice(extra);
        grafana(&c, "/api/traces", &p)
    };
    let tags = r#"{"http.status_code":"500","error":"true"}"#;
    let (status, v) = search(&[
        ("service", "payment"),
        ("tags", tags),
        ("minDuration", "1.2ms"),
        ("maxDuration", "2s"),
        ("limit", "20"),
    ]);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["total"], 1, "{v}");
    let found = &v["data"][0];
    assert_eq!(found["traceID"], tid.as_str());
    assert_eq!(
        found["spans"].as_array().unwrap().len(),
        3,
        "the whole trace"
    );
    // The frontend's older form: tag=k:v and lookback=custom.
    let (_, v) = search(&[
        ("service", "gateway"),
        ("tag", "http.status_code:200"),
        ("lookback", "custom"),
    ]);
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["data"][0]["traceID"], tid.as_str());
    for miss in [
        vec![
            ("service", "payment"),
            ("tags", r#"{"http.status_code":"404"}"#),
        ],
        vec![("service", "payment"), ("minDuration", "100ms")],
        vec![
            ("service", "gateway"),
            ("operation", "GET /order"),
            ("maxDuration", "100us"),
        ],
    ] {
        let (status, v) = search(&miss);
        assert_eq!((status, v["data"].clone()), (200, json!([])), "{miss:?}");
    }
    let (_, v) = search(&[("service", "gateway"), ("limit", "1")]);
    assert_eq!(v["total"], 1);
    assert_eq!(v["data"][0]["traceID"], hex(&t2), "newest first");

    // The trace by ID: Jaeger's JSON with µs times, references, processes and the logs.
    let (status, v) = grafana(&c, &format!("/api/traces/{tid}"), &[]);
    assert_eq!(status, 200, "{v}");
    let trace = &v["data"][0];
    assert_eq!(trace["traceID"], tid.as_str());
    let root = span_named(trace, "GET /order");
    assert_eq!(root["spanID"], hex(&[1; 8]));
    assert_eq!(root["traceID"], tid.as_str());
    assert_eq!(root["startTime"], t0 / 1000);
    assert_eq!(root["duration"], 40_000);
    assert_eq!(root["references"], json!([]));
    assert_eq!(tag(root, "request.id"), &json!(rid));
    assert_eq!(tag(root, "span.kind"), "server");
    let charge = span_named(trace, "charge");
    assert_eq!(
        charge["references"],
        json!([{"refType": "CHILD_OF", "traceID": tid, "spanID": hex(&[2; 8])}])
    );
    assert_eq!(charge["duration"], 28_000);
    assert_eq!(tag(charge, "http.status_code"), 500);
    assert_eq!(tag(charge, "error"), true);
    let processes = trace["processes"].as_object().unwrap();
    let service_of = |s: &Value| processes[s["processID"].as_str().unwrap()]["serviceName"].clone();
    assert_eq!(service_of(root), "gateway");
    assert_eq!(service_of(charge), "payment");
    for p in processes.values() {
        assert!(p["tags"].is_array(), "{p}");
    }
    // The log lines under their spans: the charge's own (by span ID) after its event; the
    // line with only the request ID under the root, timestamps in µs.
    assert_eq!(log_events(charge), vec!["exception", "bank said no"]);
    assert_eq!(charge["logs"][1]["timestamp"], (t0 + 4_000_000) / 1000);
    let level = charge["logs"][1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "level")
        .cloned();
    assert_eq!(
        level,
        Some(json!({"key": "level", "type": "string", "value": "error"}))
    );
    assert_eq!(log_events(root), vec!["order received"]);
    assert_eq!(root["logs"][0]["timestamp"], (t0 + 500_000) / 1000);

    // The same trace by its request ID.
    let (status, by_rid) = grafana(&c, &format!("/api/traces/{rid}"), &[]);
    assert_eq!(status, 200, "{by_rid}");
    assert_eq!(by_rid, v);

    // The dependency graph: endTs and lookback in ms, from the derived edges.
    let end_ms = (now_nanos() / 1_000_000 + 60_000).to_string();
    let deps = || {
        grafana(
            &c,
            "/api/dependencies",
            &[("endTs", end_ms.as_str()), ("lookback", "3600000")],
        )
        .1
    };
    let want = json!([{"parent": "gateway", "child": "payment", "callCount": 1}]);
    let ok = wait_for(|| deps()["data"] == want, Duration::from_secs(30));
    assert!(ok, "the edge gateway → payment: {}", deps());

    // Bad parameters: 400 in Jaeger's error shape; an unknown trace 404.
    let (status, v) = search(&[("service", "payment"), ("minDuration", "5")]);
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["data"], Value::Null);
    assert_eq!(v["errors"][0]["code"], 400);
    assert!(
        v["errors"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("minDuration"),
        "{v}"
    );
    let (status, v) = grafana(&c, "/api/traces/req-nobody-sent", &[]);
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["errors"][0]["code"], 404);

    grafanas_v3_requests(&c, &tid, &hex(&t2), &rid, t0);
}

/// GET of a URL built as Grafana builds it: `path`, the encoded `params`, then `raw` appended
/// unencoded (Grafana appends its RFC 3339 times that way).
fn grafana_raw(c: &Collector, path: &str, params: &[(&str, &str)], raw: &str) -> (u16, Value) {
    let mut url = url_with(&c.api_base(), path, params);
    if !raw.is_empty() {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(raw);
    }
    get_json_with(&client(), &url, Some(TOKEN))
}

/// Go's `time.RFC3339Nano` of a Unix-ns time, in UTC.
fn rfc3339(ns: u64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_nanos(ns);
    humantime::format_rfc3339_nanos(t).to_string()
}

fn otlp_attr<'a>(list: &'a Value, key: &str) -> &'a Value {
    list.as_array()
        .and_then(|a| a.iter().find(|kv| kv["key"] == key))
        .map(|kv| &kv["value"])
        .unwrap_or(&Value::Null)
}

/// Every span of a v3 answer with its resource's `service.name`, after checking each field
/// has the JSON type Grafana's structs decode (a wrong type fails its whole decode): IDs and
/// nanosecond times as strings, `kind` and `status.code` as numbers, and every
/// `resourceSpans` with a first scope holding a first span (Grafana's search sort reads
/// `ScopeSpans[0].Spans[0]`).
fn v3_spans(v: &Value) -> Vec<(String, Value)> {
    assert!(v.get("error").is_none(), "{v}");
    let mut out = Vec::new();
    for rs in v["result"]["resourceSpans"]
        .as_array()
        .expect("resourceSpans")
    {
        let service = otlp_attr(&rs["resource"]["attributes"], "service.name")["stringValue"]
            .as_str()
            .expect("service.name")
            .to_string();
        assert!(rs["scopeSpans"][0]["spans"][0].is_object(), "{rs}");
        for ss in rs["scopeSpans"].as_array().unwrap() {
            assert!(ss["scope"].is_object(), "{ss}");
            for s in ss["spans"].as_array().unwrap() {
                for id in ["traceId", "spanId", "name"] {
                    assert!(s[id].is_string(), "{id}: {s}");
                }
                assert!(s["parentSpanId"].is_null() || s["parentSpanId"].is_string());
                assert!(s["kind"].is_i64(), "{s}");
                assert!(s["status"]["code"].is_i64(), "{s}");
                for t in ["startTimeUnixNano", "endTimeUnixNano"] {
                    assert!(s[t].as_str().unwrap().parse::<i64>().is_ok(), "{t}: {s}");
                }
                for e in s["events"].as_array().unwrap() {
                    assert!(e["timeUnixNano"].as_str().unwrap().parse::<i64>().is_ok());
                    assert!(e["name"].is_string() && e["attributes"].is_array(), "{e}");
                }
                for l in s["links"].as_array().unwrap() {
                    assert!(l["traceId"].is_string() && l["spanId"].is_string(), "{l}");
                }
                for a in s["attributes"].as_array().unwrap() {
                    let val = &a["value"];
                    assert!(
                        val["intValue"].is_null() || val["intValue"].is_string(),
                        "{a}"
                    );
                }
                out.push((service.clone(), s.clone()));
            }
        }
    }
    out
}

fn v3_span<'a>(spans: &'a [(String, Value)], name: &str) -> &'a (String, Value) {
    spans
        .iter()
        .find(|(_, s)| s["name"] == name)
        .unwrap_or_else(|| panic!("no span {name} in {spans:?}"))
}

fn v3_trace_ids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for (_, s) in v3_spans(v) {
        let id = s["traceId"].as_str().unwrap().to_string();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// Grafana's v3 requests (`grpc_client.go`): services, operations with `service=`, the
/// trace by ID with and without `start_time`/`end_time`, the search with `query.*`
/// parameters and unencoded RFC 3339 times.
fn grafanas_v3_requests(c: &Collector, tid: &str, t2: &str, rid: &str, t0: u64) {
    // Services: Grafana reads `services`.
    let (status, v) = grafana(c, "/api/v3/services", &[]);
    assert_eq!(
        (status, v.clone()),
        (200, json!({"services": ["gateway", "payment"]}))
    );

    // Operations: Grafana sends service= and reads each `name`.
    let (status, v) = grafana(c, "/api/v3/operations", &[("service", "gateway")]);
    assert_eq!(status, 200, "{v}");
    let ops = v["operations"].as_array().unwrap();
    let mut names: Vec<&str> = ops.iter().map(|o| o["name"].as_str().unwrap()).collect();
    names.dedup();
    assert_eq!(names, vec!["GET /health", "GET /order", "payment.charge"]);
    assert!(
        ops.contains(&json!({"name": "payment.charge", "spanKind": "client"})),
        "{v}"
    );

    // The trace by ID: OTLP/JSON, services on the resources, logs as `log` events.
    let (status, v) = grafana(c, &format!("/api/v3/traces/{tid}"), &[]);
    assert_eq!(status, 200, "{v}");
    let spans = v3_spans(&v);
    assert_eq!(spans.len(), 3, "{v}");
    let (service, root) = v3_span(&spans, "GET /order");
    assert_eq!(service, "gateway");
    assert_eq!(root["traceId"], tid);
    assert_eq!(root["spanId"], hex(&[1; 8]));
    assert!(root.get("parentSpanId").is_none(), "{root}");
    assert_eq!(root["kind"], SERVER);
    assert_eq!(root["startTimeUnixNano"], t0.to_string());
    assert_eq!(root["endTimeUnixNano"], (t0 + 40_000_000).to_string());
    assert_eq!(
        otlp_attr(&root["attributes"], "request.id"),
        &json!({"stringValue": rid})
    );
    assert_eq!(
        otlp_attr(&root["attributes"], "http.status_code"),
        &json!({"intValue": "200"})
    );
    let (service, charge) = v3_span(&spans, "charge");
    assert_eq!(service, "payment");
    assert_eq!(charge["parentSpanId"], hex(&[2; 8]));
    assert_eq!(
        charge["status"],
        json!({"code": 2, "message": "card declined"})
    );
    let events: Vec<&str> = charge["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(events, vec!["exception", "log"]);
    let log = &charge["events"][1];
    assert_eq!(log["timeUnixNano"], (t0 + 4_000_000).to_string());
    assert_eq!(
        otlp_attr(&log["attributes"], "message"),
        &json!({"stringValue": "bank said no"})
    );
    assert_eq!(
        otlp_attr(&log["attributes"], "level"),
        &json!({"stringValue": "error"})
    );
    assert_eq!(root["events"].as_array().unwrap().len(), 1, "{root}");
    assert_eq!(
        otlp_attr(&root["events"][0]["attributes"], "message"),
        &json!({"stringValue": "order received"})
    );
    assert_eq!(v3_span(&spans, "payment.charge").1["kind"], CLIENT);

    // With Grafana's "trace ID time params": start_time and end_time appended unencoded (an
    // offset's '+' arrives as a space); by the request ID: the same answer.
    let start = rfc3339(t0 - 60_000_000_000);
    let end = rfc3339(now_nanos() + 60_000_000_000);
    let path = format!("/api/v3/traces/{tid}");
    for raw in [
        format!("start_time={start}&end_time={end}"),
        format!("start_time={}+00:00&end_time={end}", &start[..19]),
    ] {
        let (status, same) = grafana_raw(c, &path, &[], &raw);
        assert_eq!((status, &same), (200, &v), "{raw}");
    }
    let (status, by_rid) = grafana(c, &format!("/api/v3/traces/{rid}"), &[]);
    assert_eq!((status, &by_rid), (200, &v));

    // The search: query.* encoded, then the times appended unencoded, as Grafana does.
    let times = format!("query.start_time_min={start}&query.start_time_max={end}");
    let search = |params: &[(&str, &str)]| grafana_raw(c, "/api/v3/traces", params, &times);
    let (status, v) = search(&[
        (
            "query.attributes",
            r#"{"error":"true","http.status_code":"500"}"#,
        ),
        ("query.duration_max", "2s"),
        ("query.duration_min", "1.2ms"),
        ("query.service_name", "payment"),
    ]);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v3_trace_ids(&v), vec![tid.to_string()]);
    assert_eq!(v3_spans(&v).len(), 3, "the whole trace: {v}");
    let (_, v) = search(&[("query.service_name", "gateway")]);
    assert_eq!(
        v3_trace_ids(&v),
        vec![t2.to_string(), tid.to_string()],
        "newest first"
    );
    let (_, v) = search(&[
        ("query.operation_name", "GET /order"),
        ("query.service_name", "gateway"),
    ]);
    assert_eq!(v3_trace_ids(&v), vec![tid.to_string()]);
    let (_, v) = search(&[
        ("query.search_depth", "1"),
        ("query.service_name", "gateway"),
    ]);
    assert_eq!(v3_trace_ids(&v), vec![t2.to_string()]);
    for miss in [
        vec![
            ("query.attributes", r#"{"http.status_code":"404"}"#),
            ("query.service_name", "payment"),
        ],
        vec![
            ("query.duration_min", "100ms"),
            ("query.service_name", "payment"),
        ],
    ] {
        let (status, v) = search(&miss);
        assert_eq!(
            (status, v),
            (200, json!({"result": {"resourceSpans": []}})),
            "{miss:?}"
        );
    }

    // Errors: the gateway's {"error": {"httpCode", "message"}} with the same status.
    let (status, v) = search(&[
        ("query.duration_min", "5"),
        ("query.service_name", "payment"),
    ]);
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["httpCode"], 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("query.duration_min"),
        "{v}"
    );
    let (status, v) = grafana(c, "/api/v3/traces/req-nobody-sent", &[]);
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"]["httpCode"], 404);
    let (status, _) = get_json_with(
        &client(),
        &format!("{}/api/v3/services", c.api_base()),
        None,
    );
    assert_eq!(status, 401, "behind the query token");
}
