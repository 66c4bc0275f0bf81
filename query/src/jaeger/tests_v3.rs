#![allow(clippy::unwrap_used)]

use super::otlp_json::any_value;
use super::params::{DEFAULT_LIMIT, parse_rfc3339};
use super::tests::{BASE, T1, T2, get, state, urlencoding};
use super::v3::search_query;
use crate::metrics::params::Params;
use axum::http::StatusCode;
use serde_json::{Value, json};

/// The test data's hour either side, RFC 3339, as Grafana writes it (unencoded).
const WINDOW: &str =
    "query.start_time_min=2025-12-31T23:00:00Z&query.start_time_max=2026-01-01T01:00:00.5Z";

fn assert_v3_error(status: StatusCode, v: &Value, want: StatusCode, words: &str) {
    assert_eq!(status, want, "{v}");
    assert_eq!(v["error"]["httpCode"], want.as_u16(), "{v}");
    assert_eq!(
        v["error"]["httpStatus"],
        want.canonical_reason().unwrap(),
        "{v}"
    );
    assert!(v["error"]["grpcCode"].as_i64().unwrap() > 0, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains(words), "{words}: {msg}");
    assert!(v.get("result").is_none(), "{v}");
}

fn all_spans(v: &Value) -> Vec<Value> {
    v["result"]["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rs| rs["scopeSpans"].as_array().unwrap().clone())
        .flat_map(|ss| ss["spans"].as_array().unwrap().clone())
        .collect()
}

/// Trace IDs in answer order, each once.
fn trace_ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in all_spans(v) {
        let id = s["traceId"].as_str().unwrap().to_string();
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

fn attr(list: &Value, key: &str) -> Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| a["value"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn rfc3339_times_read_like_gos_rfc3339nano() {
    let ns = |t: &str| parse_rfc3339(t).unwrap();
    assert_eq!(ns("2026-01-01T00:00:00Z"), BASE);
    assert_eq!(ns("2026-01-01T00:00:00.5Z"), BASE + 500_000_000);
    assert_eq!(ns("2026-01-01T00:00:00.123456789Z"), BASE + 123_456_789);
    // Digits past nanoseconds are dropped, as Go does.
    assert_eq!(ns("2026-01-01T00:00:00.1234567891Z"), BASE + 123_456_789);
    assert_eq!(ns("2026-01-01T02:00:00+02:00"), BASE);
    assert_eq!(ns("2025-12-31T19:30:00-04:30"), BASE);
    // The '+' of an offset that form decoding turned into a space.
    assert_eq!(ns("2026-01-01T02:00:00 02:00"), BASE);
    assert_eq!(ns("2024-02-29T00:00:00Z"), 1_709_164_800_000_000_000);
    assert_eq!(ns("1970-01-01T00:00:00Z"), 0);
    assert_eq!(ns("1969-12-31T00:00:00Z"), 0);
    for bad in [
        "",
        "2026-01-01",
        "2026-01-01T00:00:00",
        "2026-01-01 00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2025-02-29T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:00.Z",
        "2026-01-01T00:00:00+0200",
        "2026-01-01T00:00:00Zjunk",
        "1767225600",
        "2026-01-01T00:00:00ü",
    ] {
        let e = parse_rfc3339(bad).unwrap_err();
        assert!(e.contains("RFC 3339"), "{bad}: {e}");
    }
}

#[test]
fn attribute_values_keep_their_otlp_types() {
    assert_eq!(any_value(&json!("a")), json!({"stringValue": "a"}));
    assert_eq!(any_value(&json!(false)), json!({"boolValue": false}));
    assert_eq!(any_value(&json!(-7)), json!({"intValue": "-7"}));
    assert_eq!(any_value(&json!(2.5)), json!({"doubleValue": 2.5}));
    // Past int64: a double, not a wrapped int.
    assert_eq!(
        any_value(&json!(u64::MAX)),
        json!({"doubleValue": u64::MAX as f64})
    );
    assert_eq!(
        any_value(&json!([1, "x"])),
        json!({"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "x"}]}})
    );
    assert_eq!(
        any_value(&json!({"k": true})),
        json!({"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": true}}]}})
    );
    assert_eq!(any_value(&Value::Null), json!({}));
}

#[test]
fn the_search_reads_v3_names_their_camel_case_aliases_and_v1_bounds() {
    let now = BASE + 1_000;
    let p = Params::from_pairs([
        ("query.serviceName", "gateway"),
        ("query.operationName", "GET /order"),
        ("query.durationMin", "1ms"),
        ("query.durationMax", "2s"),
        ("query.startTimeMin", "2026-01-01T00:00:00Z"),
        ("query.startTimeMax", "2026-01-01T01:00:00Z"),
        ("query.num_traces", "7"),
        ("query.attributes", r#"{"http.status_code":"500"}"#),
    ]);
    let (f, range, limit) = search_query(&p, now, 1000).unwrap();
    assert_eq!(f.service.as_deref(), Some("gateway"));
    assert_eq!(f.operation.as_deref(), Some("GET /order"));
    assert_eq!(
        (f.min_duration, f.max_duration),
        (Some(1_000_000), Some(2_000_000_000))
    );
    assert_eq!((range.start, range.end), (BASE, BASE + 3_600_000_000_000));
    assert_eq!(limit, 7);
    assert_eq!(f.tags, vec![("http.status_code".into(), "500".into())]);
    // Defaults: v1's limit and window (2 days back from now).
    let (_, range, limit) = search_query(
        &Params::from_pairs([("query.service_name", "a")]),
        now,
        1000,
    )
    .unwrap();
    assert_eq!(limit, DEFAULT_LIMIT);
    assert_eq!(
        (range.start, range.end),
        (now - 2 * 86_400_000_000_000, now)
    );
    // The engine's max_limit caps search_depth.
    let p = Params::from_pairs([("query.service_name", "a"), ("query.search_depth", "11")]);
    assert!(
        search_query(&p, now, 10)
            .unwrap_err()
            .contains("query.max_limit")
    );
}

#[tokio::test]
async fn services_and_operations_come_in_v3_shape() {
    let (state, _store, _dir) = state();
    let (status, v) = get(&state, "/api/v3/services").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["services"].is_array(), "{v}");
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    for uri in [
        "/api/v3/operations?service=gateway",
        "/api/v3/operations?service=gateway&span_kind=server",
        "/api/v3/operations?service=gateway&spanKind=CLIENT",
    ] {
        let (status, v) = get(&state, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {v}");
        assert!(v["operations"].is_array(), "{uri}: {v}");
    }
    let (status, v) = get(&state, "/api/v3/operations?service=gateway&span_kind=bogus").await;
    assert_v3_error(status, &v, StatusCode::BAD_REQUEST, "span_kind 'bogus'");
    let (status, v) = get(&state, "/api/v3/operations").await;
    assert_v3_error(status, &v, StatusCode::BAD_REQUEST, "service is required");
}

#[tokio::test]
async fn a_trace_by_id_is_otlp_json_with_logs_as_log_events() {
    let (state, _store, _dir) = state();
    let (status, v) = get(&state, &format!("/api/v3/traces/{T1}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let groups = v["result"]["resourceSpans"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "one per service: {v}");
    let service = |g: &Value| attr(&g["resource"]["attributes"], "service.name");
    assert_eq!(service(&groups[0]), json!({"stringValue": "gateway"}));
    assert_eq!(service(&groups[1]), json!({"stringValue": "payment"}));
    assert_eq!(
        attr(&groups[0]["resource"]["attributes"], "host.name"),
        json!({"stringValue": "gateway-1"})
    );
    assert_eq!(groups[0]["scopeSpans"][0]["scope"], json!({}));

    let root = &groups[0]["scopeSpans"][0]["spans"][0];
    assert_eq!(root["traceId"], T1);
    assert_eq!(root["spanId"], "aaaaaaaaaaaaaaaa");
    assert!(root.get("parentSpanId").is_none(), "{root}");
    assert_eq!(root["name"], "GET /order");
    assert_eq!(root["kind"], 2);
    assert_eq!(root["startTimeUnixNano"], BASE.to_string());
    assert_eq!(root["endTimeUnixNano"], (BASE + 40_000_000).to_string());
    assert_eq!(
        attr(&root["attributes"], "http.status_code"),
        json!({"intValue": "500"})
    );
    assert_eq!(root["status"], json!({"code": 0}));

    let pay = &groups[1]["scopeSpans"][0]["spans"][0];
    assert_eq!(pay["parentSpanId"], "aaaaaaaaaaaaaaaa");
    assert_eq!(pay["kind"], 3);
    assert_eq!(
        pay["status"],
        json!({"code": 2, "message": "card declined"})
    );
    assert_eq!(
        attr(&pay["attributes"], "http.status_code"),
        json!({"stringValue": "500"})
    );
    assert_eq!(
        attr(&pay["attributes"], "retry"),
        json!({"boolValue": true})
    );
    assert_eq!(
        attr(&pay["attributes"], "amount"),
        json!({"doubleValue": 12.5})
    );
    assert_eq!(pay["links"], json!([]));

    // The payment span: its event, then the log line that carries its span ID, by time.
    let events = pay["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["name"], "exception");
    assert_eq!(events[0]["timeUnixNano"], (BASE + 5_001_000).to_string());
    assert_eq!(
        events[0]["attributes"],
        json!([{"key": "exception.message", "value": {"stringValue": "declined"}}])
    );
    assert_eq!(events[1]["name"], "log");
    assert_eq!(events[1]["timeUnixNano"], (BASE + 7_000_000).to_string());
    assert_eq!(
        events[1]["attributes"],
        json!([
            {"key": "message", "value": {"stringValue": "bank said no"}},
            {"key": "level", "value": {"stringValue": "error"}},
            {"key": "attempt", "value": {"intValue": "2"}},
        ])
    );
    // The line with only the request ID went under the root span, with its own service.
    let root_events = root["events"].as_array().unwrap();
    assert_eq!(root_events.len(), 1, "{root_events:?}");
    assert_eq!(root_events[0]["name"], "log");
    let a = &root_events[0]["attributes"];
    assert_eq!(attr(a, "message"), json!({"stringValue": "order audited"}));
    assert_eq!(attr(a, "level"), json!({"stringValue": "info"}));
    assert_eq!(attr(a, "service.name"), json!({"stringValue": "audit"}));

    // Grafana's time params (the offset's '+' unencoded) change nothing; the request ID and
    // the upper-case ID find the same trace.
    for uri in [
        format!(
            "/api/v3/traces/{T1}?start_time=2026-01-01T01:00:00+01:00&end_time=2026-01-01T02:00:00.5Z"
        ),
        format!("/api/v3/traces/{}", T1.to_uppercase()),
        "/api/v3/traces/req-9".to_string(),
    ] {
        let (status, same) = get(&state, &uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {same}");
        assert_eq!(same, v, "{uri}");
    }
}

#[tokio::test]
async fn unknown_traces_and_bad_times_are_v3_errors() {
    let (state, _store, _dir) = state();
    let (status, v) = get(&state, "/api/v3/traces/req-unknown").await;
    assert_v3_error(status, &v, StatusCode::NOT_FOUND, "trace not found");
    assert_eq!(v["error"]["grpcCode"], 5);
    let (status, v) = get(&state, &format!("/api/v3/traces/{T1}?start_time=yesterday")).await;
    assert_v3_error(
        status,
        &v,
        StatusCode::BAD_REQUEST,
        "malformed parameter start_time",
    );
    assert_eq!(v["error"]["grpcCode"], 3);
}

#[tokio::test]
async fn the_v3_search_filters_like_v1_and_returns_every_span() {
    let (state, _store, _dir) = state();
    let q = |extra: &str| format!("/api/v3/traces?{extra}&{WINDOW}");
    let (status, v) = get(&state, &q("query.service_name=gateway")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // Newest first, every span of each trace (T1's payment span too).
    assert_eq!(trace_ids(&v), vec![T2, T1]);
    assert_eq!(all_spans(&v).len(), 3);
    assert_eq!(v["result"]["resourceSpans"].as_array().unwrap().len(), 3);

    let attrs = urlencoding(r#"{"http.status_code":"500","error":"true"}"#);
    let (_, v) = get(
        &state,
        &q(&format!(
            "query.service_name=payment&query.attributes={attrs}"
        )),
    )
    .await;
    assert_eq!(trace_ids(&v), vec![T1]);
    assert_eq!(all_spans(&v).len(), 2, "the whole trace");
    // Search answers carry no log lines (as v1's search).
    assert!(all_spans(&v).iter().all(|s| {
        s["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["name"] != "log")
    }));
    for (extra, want) in [
        (
            "query.service_name=gateway&query.duration_min=10ms",
            vec![T1],
        ),
        (
            "query.service_name=gateway&query.duration_max=2.5ms",
            vec![T2],
        ),
        (
            "query.service_name=gateway&query.operation_name=GET%20/health",
            vec![T2],
        ),
        ("query.service_name=gateway&query.search_depth=1", vec![T2]),
        (
            "query.service_name=payment&query.attributes=%7B%22http.status_code%22%3A%22404%22%7D",
            vec![],
        ),
    ] {
        let (status, v) = get(&state, &q(extra)).await;
        assert_eq!(status, StatusCode::OK, "{extra}: {v}");
        assert_eq!(trace_ids(&v), want, "{extra}");
    }
    // A window before the data finds nothing: an empty list, not an error.
    let (status, v) = get(
        &state,
        "/api/v3/traces?query.service_name=gateway&query.start_time_min=2025-01-01T00:00:00Z&query.start_time_max=2025-01-02T00:00:00Z",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"result": {"resourceSpans": []}}));
}

#[tokio::test]
async fn bad_v3_search_parameters_are_400_in_the_gateways_shape() {
    let (state, _store, _dir) = state();
    let cases = [
        ("", "query.service_name is required"),
        (
            "query.service_name=a&query.duration_min=5",
            "query.duration_min",
        ),
        ("query.service_name=a&query.duration_max=1d", "Go durations"),
        (
            "query.service_name=a&query.duration_min=2s&query.duration_max=1s",
            "longer than",
        ),
        ("query.service_name=a&query.search_depth=0", "at least 1"),
        (
            "query.service_name=a&query.search_depth=5000",
            "query.max_limit",
        ),
        (
            "query.service_name=a&query.searchDepth=many",
            "query.searchDepth 'many'",
        ),
        (
            "query.service_name=a&query.start_time_min=yesterday",
            "query.start_time_min",
        ),
        (
            "query.service_name=a&query.start_time_min=2026-01-02T00:00:00Z&query.start_time_max=2026-01-01T00:00:00Z",
            "must be before",
        ),
        (
            "query.service_name=a&query.attributes=%7Bbroken",
            "query.attributes",
        ),
        (
            "query.service_name=a&query.attributes=%7B%22a%22%3A%5B1%5D%7D",
            "string, a number or a bool",
        ),
    ];
    for (extra, words) in cases {
        let (status, v) = get(&state, &format!("/api/v3/traces?{extra}")).await;
        assert_v3_error(status, &v, StatusCode::BAD_REQUEST, words);
    }
    let many: String = (0..=super::params::MAX_TAGS)
        .map(|i| format!("\"k{i}\":\"v\""))
        .collect::<Vec<_>>()
        .join(",");
    let uri = format!(
        "/api/v3/traces?query.service_name=a&query.attributes={}",
        urlencoding(&format!("{{{many}}}"))
    );
    let (status, v) = get(&state, &uri).await;
    assert_v3_error(status, &v, StatusCode::BAD_REQUEST, "fewer tags");
}
