#![allow(clippy::unwrap_used)]

use super::params::{MAX_TAGS, parse_go_duration, parse_tags};
use crate::api::{ApiState, router};
use crate::engine::{Engine, QueryLimits};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use skein_model::{LogRecord, Span, SpanEvent};
use skein_store::search::{SpanFilter, TimeRange, search_spans};
use skein_store::{Logs, Spans, SplitConfig, SplitStore};
use std::sync::Arc;
use tower::ServiceExt;

pub(super) const T1: &str = "0af7651916cd43dd8448eb211c80319c";
pub(super) const T2: &str = "1bf7651916cd43dd8448eb211c80319d";
/// 2026-01-01, Unix ns.
pub(super) const BASE: u64 = 1_767_225_600_000_000_000;

fn attrs(v: Value) -> skein_model::Attributes {
    v.as_object().unwrap().clone()
}

fn span(trace: &str, id: &str, parent: &str, service: &str, name: &str, ms: u64) -> Span {
    let start = BASE + ms * 1_000_000;
    Span {
        trace_id: trace.into(),
        span_id: id.into(),
        parent_span_id: parent.into(),
        service: service.into(),
        name: name.into(),
        kind: "server".into(),
        start_unix_nano: start,
        end_unix_nano: start + 2_500_000,
        duration_ns: 2_500_000,
        status_code: "unset".into(),
        resource: Arc::new(attrs(
            json!({"service.name": service, "host.name": format!("{service}-1")}),
        )),
        keys: vec![],
        ..Default::default()
    }
}

/// Two traces: T1 (gateway root with request ID req-9, payment child with a 500 and an
/// error status, an event) and T2 (a fast gateway span). Logs: one under the payment span,
/// one carrying only the request ID.
pub(super) fn data() -> (Vec<Span>, Vec<LogRecord>) {
    let mut root = span(T1, "aaaaaaaaaaaaaaaa", "", "gateway", "GET /order", 0);
    root.duration_ns = 40_000_000;
    root.end_unix_nano = root.start_unix_nano + 40_000_000;
    root.attributes = attrs(json!({"request.id": "req-9", "http.status_code": 500}));
    root.keys = vec!["req-9".into()];
    let mut pay = span(
        T1,
        "bbbbbbbbbbbbbbbb",
        "aaaaaaaaaaaaaaaa",
        "payment",
        "charge",
        5,
    );
    pay.kind = "client".into();
    pay.status_code = "error".into();
    pay.status_message = "card declined".into();
    pay.attributes = attrs(json!({"http.status_code": "500", "retry": true, "amount": 12.5}));
    pay.events = vec![SpanEvent {
        time_unix_nano: pay.start_unix_nano + 1_000,
        name: "exception".into(),
        attributes: attrs(json!({"exception.message": "declined"})),
    }];
    let mut fast = span(T2, "cccccccccccccccc", "", "gateway", "GET /health", 100);
    fast.attributes = attrs(json!({"http.status_code": 200}));
    let under_pay = LogRecord {
        time_unix_nano: pay.start_unix_nano + 2_000_000,
        service: "payment".into(),
        severity_number: 17,
        severity_text: "ERROR".into(),
        body: "bank said no".into(),
        trace_id: T1.into(),
        span_id: "bbbbbbbbbbbbbbbb".into(),
        attributes: attrs(json!({"attempt": 2})),
        ..Default::default()
    };
    let by_request = LogRecord {
        time_unix_nano: BASE + 30_000_000,
        service: "audit".into(),
        severity_number: 9,
        body: "order audited".into(),
        keys: vec!["req-9".into()],
        ..Default::default()
    };
    (vec![root, pay, fast], vec![under_pay, by_request])
}

pub(super) fn state() -> (ApiState, SplitStore<Spans>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut logs = SplitStore::<Logs>::open(dir.path(), SplitConfig::small()).unwrap();
    let mut spans = SplitStore::<Spans>::open(dir.path(), SplitConfig::small()).unwrap();
    let (s, l) = data();
    spans.add(&s).unwrap();
    logs.add(&l).unwrap();
    spans.commit(1).unwrap();
    logs.commit(1).unwrap();
    let engine = Engine::new(
        logs.split_list(),
        logs.fields().clone(),
        spans.split_list(),
        spans.fields().clone(),
        QueryLimits::default(),
    );
    let tsdb = skein_store::tsdb::Tsdb::open(skein_store::tsdb::TsdbConfig {
        dir: dir.path().join("tsdb"),
        ..Default::default()
    })
    .unwrap();
    // The shared test state (empty stores of its own), over these indexes.
    let mut state = crate::test_state::state_over(tsdb, &dir.path().join("unused"));
    state.engine = Arc::new(engine);
    (state, spans, dir)
}

pub(super) async fn get(state: &ApiState, uri: &str) -> (StatusCode, Value) {
    let resp = router(state.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// `start` and `end` of the test data's day, µs, as Grafana sends them.
fn window() -> String {
    format!(
        "start={}&end={}",
        BASE / 1000 - 3_600_000_000,
        BASE / 1000 + 3_600_000_000
    )
}

fn ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn assert_jaeger_error(status: StatusCode, v: &Value, want: StatusCode, words: &str) {
    assert_eq!(status, want, "{v}");
    assert_eq!(v["data"], Value::Null, "{v}");
    assert_eq!(v["total"], 0);
    assert_eq!(v["errors"][0]["code"], want.as_u16());
    let msg = v["errors"][0]["msg"].as_str().unwrap();
    assert!(msg.contains(words), "{msg}");
}

#[test]
fn tags_are_read_from_json_and_from_repeated_tag_params() {
    let t = parse_tags(Some(r#"{"http.status_code":"500","error":"true"}"#), []).unwrap();
    assert_eq!(
        t,
        vec![
            ("error".to_string(), "true".to_string()),
            ("http.status_code".to_string(), "500".to_string())
        ]
    );
    let t = parse_tags(
        Some(r#"{"n": 5, "ok": false}"#),
        ["db.system:postgresql", "a:b:c"],
    )
    .unwrap();
    assert_eq!(
        t,
        vec![
            ("n".to_string(), "5".to_string()),
            ("ok".to_string(), "false".to_string()),
            ("db.system".to_string(), "postgresql".to_string()),
            ("a".to_string(), "b:c".to_string()),
        ]
    );
    assert!(parse_tags(Some("{}"), []).unwrap().is_empty());
}

#[test]
fn bad_tags_are_refused_with_a_way_to_fix_them() {
    let err =
        |json: Option<&str>, legacy: &[&str]| parse_tags(json, legacy.iter().copied()).unwrap_err();
    assert!(err(Some("http.status_code=500"), &[]).contains("JSON object"));
    assert!(err(Some(r#"{"a":[1]}"#), &[]).contains("string, a number or a bool"));
    assert!(err(None, &["nocolon"]).contains("name:value"));
    assert!(err(None, &[":v"]).contains("empty name"));
    assert!(err(Some(r#"{"error":"maybe"}"#), &[]).contains("true"));
    assert!(err(Some(r#"{"a\u0001b":"x"}"#), &[]).contains("control character"));
    let long = format!(r#"{{"k":"{}"}}"#, "v".repeat(300));
    assert!(err(Some(&long), &[]).contains("256 bytes"));
    let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("k{i}:v")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(err(None, &many).contains("fewer tags"));
    let huge = format!(r#"{{"k":"{}"}}"#, "v".repeat(9000));
    assert!(err(Some(&huge), &[]).contains("bytes"));
}

#[test]
fn go_durations_read_like_go() {
    let ns = |s: &str| parse_go_duration(s).unwrap().as_nanos();
    assert_eq!(ns("1.2ms"), 1_200_000);
    assert_eq!(ns("100us"), 100_000);
    assert_eq!(ns("100µs"), 100_000);
    assert_eq!(ns("100μs"), 100_000);
    assert_eq!(ns("2s"), 2_000_000_000);
    assert_eq!(ns("1h30m"), 5_400_000_000_000);
    assert_eq!(ns("1.5h"), 5_400_000_000_000);
    assert_eq!(ns(".5s"), 500_000_000);
    assert_eq!(ns("7ns"), 7);
    assert_eq!(ns("0"), 0);
    assert_eq!(ns("+3ms"), 3_000_000);
    assert_eq!(ns(" 250ms "), 250_000_000);
    for bad in [
        "", "5", "-1s", "1d", "1.2 ms", "abc", "1e3s", "ms", ".s", "9999999h",
    ] {
        let e = parse_go_duration(bad).unwrap_err();
        assert!(e.contains("Go durations"), "{bad}: {e}");
    }
}

#[test]
fn the_tag_query_finds_what_the_span_check_accepts() {
    let (_state, store, _dir) = state();
    let (all, _) = data();
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("http.status_code", "500")],
        vec![("http.status_code", "200")],
        vec![("http.status_code", "500"), ("error", "true")],
        vec![("error", "false")],
        vec![("retry", "true")],
        vec![("amount", "12.5")],
        vec![("host.name", "payment-1")],
        vec![("span.kind", "CLIENT")],
        vec![("otel.status_code", "ERROR")],
        vec![("request.id", "req-9")],
        vec![("request.id", "req-")],
        vec![("nothing", "x")],
        vec![("bad\u{0}name", "x")],
    ];
    for tags in cases {
        let filter = SpanFilter {
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        let mut found: Vec<String> = search_spans(
            &store.split_list(),
            store.fields(),
            &filter,
            TimeRange::ALL,
            100,
        )
        .unwrap()
        .records
        .into_iter()
        .map(|s| s.span_id)
        .collect();
        found.sort();
        let want: Vec<String> = all
            .iter()
            .filter(|s| filter.matches_tags(s))
            .map(|s| s.span_id.clone())
            .collect();
        assert_eq!(found, want, "{tags:?}");
    }
}

#[test]
fn a_filter_without_tags_has_the_wire_form_of_older_nodes() {
    let f = SpanFilter {
        service: Some("a".into()),
        ..Default::default()
    };
    let v = serde_json::to_value(&f).unwrap();
    assert!(v.get("tags").is_none(), "{v}");
    let old: SpanFilter = serde_json::from_str(
        r#"{"service":"a","operation":null,"min_duration":null,"max_duration":null,"error":null}"#,
    )
    .unwrap();
    assert!(old.tags.is_empty());
    let many = crate::reads::Read::SearchSpans {
        filter: SpanFilter {
            tags: vec![("a".into(), "b".into()); skein_store::search::MAX_SPAN_TAGS + 1],
            ..Default::default()
        },
        range: TimeRange::ALL,
        limit: 10,
    };
    assert!(many.check().unwrap_err().contains("tags"));
}

#[tokio::test]
async fn services_and_operations_come_in_jaegers_envelope() {
    let (state, _store, _dir) = state();
    // The data is from 2026-01-01; "now" for the seen window is later in tests run after
    // that, so these routes are checked over data timed now in the end-to-end test. Here:
    // the shapes.
    let (status, v) = get(&state, "/api/services").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["data"].is_array(), "{v}");
    assert_eq!(v["total"], v["data"].as_array().unwrap().len());
    assert_eq!(v["limit"], 0);
    assert_eq!(v["offset"], 0);
    assert_eq!(v["errors"], Value::Null);
    let (status, v) = get(&state, "/api/services/gateway/operations").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["data"].is_array());
    let (status, v) = get(&state, "/api/operations?service=gateway&spanKind=bogus").await;
    assert_jaeger_error(status, &v, StatusCode::BAD_REQUEST, "spanKind");
    let (status, v) = get(&state, "/api/operations").await;
    assert_jaeger_error(status, &v, StatusCode::BAD_REQUEST, "service is required");
}

#[tokio::test]
async fn search_filters_by_tags_durations_and_window() {
    let (state, _store, _dir) = state();
    let w = window();
    let q = |extra: &str| format!("/api/traces?{w}&{extra}");
    let (status, v) = get(&state, &q("service=gateway")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(ids(&v), vec![T1, T2]);
    assert_eq!(v["total"], 2);
    // Newest first.
    assert_eq!(v["data"][0]["traceID"], T2);

    let tags = urlencoding(r#"{"http.status_code":"500","error":"true"}"#);
    let (_, v) = get(&state, &q(&format!("service=payment&tags={tags}"))).await;
    assert_eq!(ids(&v), vec![T1]);
    // The whole trace comes back, not only the matching span.
    assert_eq!(v["data"][0]["spans"].as_array().unwrap().len(), 2);
    let (_, v) = get(&state, &q("service=gateway&tag=http.status_code:200")).await;
    assert_eq!(ids(&v), vec![T2]);
    let (_, v) = get(&state, &q("service=gateway&minDuration=10ms")).await;
    assert_eq!(ids(&v), vec![T1]);
    let (_, v) = get(&state, &q("service=gateway&maxDuration=2.5ms")).await;
    assert_eq!(ids(&v), vec![T2]);
    let (_, v) = get(&state, &q("service=gateway&operation=GET%20/health")).await;
    assert_eq!(ids(&v), vec![T2]);
    let (_, v) = get(&state, &q("service=gateway&limit=1")).await;
    assert_eq!(ids(&v), vec![T2]);
    // A window before the data finds nothing; lookback without start counts back from end.
    let (_, v) = get(&state, "/api/traces?service=gateway&start=1&end=2").await;
    assert_eq!(v["data"], json!([]));
    let end = BASE / 1000 + 3_600_000_000;
    let (_, v) = get(
        &state,
        &format!("/api/traces?service=gateway&end={end}&lookback=2h"),
    )
    .await;
    assert_eq!(ids(&v), vec![T1, T2]);
}

pub(super) fn urlencoding(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).unwrap()[2..].to_string()
}

#[tokio::test]
async fn bad_search_parameters_are_400_in_jaegers_shape() {
    let (state, _store, _dir) = state();
    let cases = [
        ("/api/traces", "service is required"),
        ("/api/traces?service=a&minDuration=5", "no unit"),
        ("/api/traces?service=a&maxDuration=1d", "Go durations"),
        (
            "/api/traces?service=a&minDuration=2s&maxDuration=1s",
            "longer than maxDuration",
        ),
        ("/api/traces?service=a&limit=0", "at least 1"),
        ("/api/traces?service=a&limit=5000", "query.max_limit"),
        ("/api/traces?service=a&limit=many", "whole number"),
        ("/api/traces?service=a&start=yesterday", "microseconds"),
        ("/api/traces?service=a&start=10&end=5", "after end"),
        ("/api/traces?service=a&tags=%7Bbroken", "JSON object"),
        ("/api/traces?service=a&tag=nocolon", "name:value"),
        ("/api/traces?service=a&lookback=forever", "lookback"),
        ("/api/dependencies?lookback=-5", "lookback"),
        ("/api/dependencies?endTs=soon", "milliseconds"),
    ];
    for (uri, words) in cases {
        let (status, v) = get(&state, uri).await;
        assert_jaeger_error(status, &v, StatusCode::BAD_REQUEST, words);
    }
}

#[tokio::test]
async fn a_trace_by_id_is_jaegers_json_with_logs_under_their_spans() {
    let (state, _store, _dir) = state();
    let (status, v) = get(&state, &format!("/api/traces/{T1}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["total"], 1);
    let t = &v["data"][0];
    assert_eq!(t["traceID"], T1);
    let spans = t["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2);
    let root = &spans[0];
    assert_eq!(root["spanID"], "aaaaaaaaaaaaaaaa");
    assert_eq!(root["operationName"], "GET /order");
    assert_eq!(root["references"], json!([]));
    assert_eq!(root["startTime"], BASE / 1000);
    assert_eq!(root["duration"], 40_000);
    let pay = &spans[1];
    assert_eq!(
        pay["references"],
        json!([{"refType": "CHILD_OF", "traceID": T1, "spanID": "aaaaaaaaaaaaaaaa"}])
    );
    assert_eq!(pay["startTime"], BASE / 1000 + 5_000);
    assert_eq!(pay["duration"], 2_500);
    let tag = |s: &Value, k: &str| -> Value {
        s["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == k)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        tag(pay, "http.status_code"),
        json!({"key": "http.status_code", "type": "string", "value": "500"})
    );
    assert_eq!(tag(root, "http.status_code")["type"], "int64");
    assert_eq!(tag(root, "http.status_code")["value"], 500);
    assert_eq!(
        tag(pay, "retry"),
        json!({"key": "retry", "type": "bool", "value": true})
    );
    assert_eq!(tag(pay, "amount")["type"], "float64");
    assert_eq!(tag(pay, "error")["value"], true);
    assert_eq!(tag(pay, "otel.status_code")["value"], "ERROR");
    assert_eq!(
        tag(pay, "otel.status_description")["value"],
        "card declined"
    );
    assert_eq!(tag(pay, "span.kind")["value"], "client");

    // Processes: one per service, service.name not repeated among the tags.
    let procs = t["processes"].as_object().unwrap();
    assert_eq!(procs.len(), 2);
    let p_root = &procs[root["processID"].as_str().unwrap()];
    assert_eq!(p_root["serviceName"], "gateway");
    assert_eq!(
        p_root["tags"],
        json!([{"key": "host.name", "type": "string", "value": "gateway-1"}])
    );
    assert_eq!(
        procs[pay["processID"].as_str().unwrap()]["serviceName"],
        "payment"
    );

    // The payment span: its event, then the log record that carries its span ID, by time.
    let logs = pay["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert_eq!(logs[0]["timestamp"], BASE / 1000 + 5_001);
    assert_eq!(
        logs[0]["fields"][0],
        json!({"key": "event", "type": "string", "value": "exception"})
    );
    assert_eq!(logs[1]["timestamp"], BASE / 1000 + 7_000);
    assert_eq!(
        logs[1]["fields"],
        json!([
            {"key": "event", "type": "string", "value": "bank said no"},
            {"key": "level", "type": "string", "value": "error"},
            {"key": "attempt", "type": "int64", "value": 2},
        ])
    );
    // The log with only the request ID went under the root span, with its own service.
    let root_logs = root["logs"].as_array().unwrap();
    assert_eq!(root_logs.len(), 1, "{root_logs:?}");
    assert_eq!(root_logs[0]["fields"][0]["value"], "order audited");
    assert_eq!(root_logs[0]["fields"][1]["value"], "info");
    assert_eq!(
        root_logs[0]["fields"][2],
        json!({"key": "service.name", "type": "string", "value": "audit"})
    );
}

#[tokio::test]
async fn a_trace_is_found_by_its_request_id_too() {
    let (state, _store, _dir) = state();
    let (status, by_req) = get(&state, "/api/traces/req-9").await;
    assert_eq!(status, StatusCode::OK, "{by_req}");
    let (_, by_id) = get(&state, &format!("/api/traces/{}", T1.to_uppercase())).await;
    assert_eq!(by_req, by_id);
    let (status, v) = get(&state, "/api/traces/req-unknown").await;
    assert_jaeger_error(status, &v, StatusCode::NOT_FOUND, "trace not found");
}

#[tokio::test]
async fn dependencies_are_empty_without_derived_edges() {
    let (state, _store, _dir) = state();
    let (status, v) = get(
        &state,
        "/api/dependencies?endTs=1767225600000&lookback=3600000",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["data"], json!([]));
    assert_eq!(v["total"], 0);
}

#[test]
fn services_and_operations_are_the_ones_with_spans_in_the_last_day() {
    let (state, _store, _dir) = state();
    let (e, tsdb) = (state.engine.as_ref(), state.metric_reads.as_ref());
    let now = BASE + 3_600_000_000_000;
    assert_eq!(
        super::search::services(e, tsdb, now).unwrap(),
        vec!["gateway", "payment"]
    );
    // A day later, nothing was seen in the last day.
    let later = BASE + 2 * super::search::SEEN_WINDOW_NS;
    assert!(super::search::services(e, tsdb, later).unwrap().is_empty());
    let names = |ops: Vec<super::search::Operation>| -> Vec<(String, String)> {
        ops.into_iter().map(|o| (o.name, o.span_kind)).collect()
    };
    let op = |n: &str, k: &str| (n.to_string(), k.to_string());
    let all = super::search::operations(e, "gateway", None, false, now).unwrap();
    assert_eq!(
        names(all),
        vec![op("GET /health", ""), op("GET /order", "")]
    );
    let kinded = super::search::operations(e, "payment", None, true, now).unwrap();
    assert_eq!(names(kinded), vec![op("charge", "client")]);
    let server = super::search::operations(e, "payment", Some("server"), true, now).unwrap();
    assert!(server.is_empty());
}
