//! LogQL and the Loki routes over a real (temporary) log index.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::logql::ast::*;
use super::logql::parse;
use super::pipeline::{self, Entry, Labels};
use super::scan::prefilter;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use skein_model::LogRecord;
use skein_model::keys::KeyExtractor;
use tower::ServiceExt;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// Time of the newest test line, ns (whole seconds).
const T: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

fn rec(t: u64, service: &str, sev: i32, body: &str, attrs: &[(&str, &str)]) -> LogRecord {
    let mut a = skein_model::Attributes::new();
    for (k, v) in attrs {
        a.insert((*k).into(), serde_json::Value::String((*v).into()));
    }
    let mut keys = Vec::new();
    KeyExtractor::new(&Default::default()).add_from_attributes(&a, &mut keys);
    LogRecord {
        time_unix_nano: t,
        service: service.into(),
        host: "h1".into(),
        severity_number: sev,
        body: body.into(),
        attributes: a,
        keys,
        ..Default::default()
    }
}

/// 60 lines over one minute: payment (one error per 10 lines, one with the trace ID and a
/// request ID), checkout (JSON and logfmt lines).
fn app() -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = skein_store::tsdb::Tsdb::open(skein_store::tsdb::TsdbConfig {
        dir: dir.path().join("tsdb"),
        ..Default::default()
    })
    .unwrap();
    let mut batch = Vec::new();
    for i in 0..30u64 {
        let t = T - (59 - 2 * i) * SEC;
        let sev = if i % 10 == 0 { 17 } else { 9 };
        let mut r = rec(t, "payment", sev, &format!("charge {i} done"), &[]);
        if i == 7 {
            r = rec(
                t,
                "payment",
                17,
                "card declined by bank",
                &[("request_id", "req-777"), ("user", "u1")],
            );
            r.trace_id = TRACE.into();
        }
        batch.push(r);
        let body = if i % 2 == 0 {
            format!(
                "{{\"status\":{},\"path\":\"/cart\",\"took\":\"{}ms\"}}",
                200 + i,
                i * 10
            )
        } else {
            format!("level=info status={} msg=\"cart ok\"", 500 + i)
        };
        batch.push(rec(t + SEC, "checkout", 9, &body, &[]));
    }
    let state = crate::test_state::state_with_logs(tsdb, dir.path(), &batch);
    (super::routes().with_state(state), dir)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, serde_json::Value) {
    let r = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = r.status();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("{uri}: not JSON: {}", String::from_utf8_lossy(&body)));
    (status, v)
}

fn q(query: &str) -> String {
    let start = T - 120 * SEC;
    let end = T + SEC;
    format!(
        "/loki/api/v1/query_range?{}",
        serde_urlencoded::to_string([
            ("query", query),
            ("start", &start.to_string()),
            ("end", &end.to_string()),
            ("limit", "1000"),
            ("step", "60000ms"),
        ])
        .unwrap()
    )
}

/// Every line of a streams answer: (stream labels, ns, line).
fn lines(v: &serde_json::Value) -> Vec<(serde_json::Value, u64, String)> {
    assert_eq!(v["status"], "success", "{v}");
    assert_eq!(v["data"]["resultType"], "streams", "{v}");
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().unwrap() {
        for e in s["values"].as_array().unwrap() {
            out.push((
                s["stream"].clone(),
                e[0].as_str().unwrap().parse().unwrap(),
                e[1].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

#[test]
fn the_grammar_reads_what_grafana_sends() {
    for ok in [
        r#"{service="payment"}"#,
        r#"{service_name=~"pay.*", level!="debug"} |= "declined" != "test" |~ `card \d+` !~ "x""#,
        r#"{service="a"} |= "a" or "b""#,
        r#"{service="a"} | json | status >= 500 and path="/cart" or took > 250ms"#,
        r#"{service="a"} | logfmt | line_format "{{.status}} {{ .msg }} {{__line__}}""#,
        r#"{service="a"} | json status="response.code", first="items[0]" | drop __error__, x="1""#,
        r#"sum by (level, detected_level) (count_over_time({label="value"} | drop __error__[1m]))"#,
        r#"sum(rate({service="a"}[5m])) by (host)"#,
        r#"topk(5, sum by (service) (bytes_over_time({service=~".+"}[1h] offset 5m)))"#,
        "vector(1)+vector(1)",
        r#"count_over_time({a="b"}[1m]) / 2 > bool 1"#,
        r#"{service="payment"} | trace_id="4bf92f3577b34da6a3ce929d0e0e4736""#,
        "# a comment\n{a=\"b\"}",
    ] {
        parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for (bad, says) in [
        ("", "empty"),
        (r#"{service="a""#, "'}'"),
        (r#"{service=""}"#, "at least one matcher"),
        (r#"{service="a"} | unwrap latency"#, "unwrap"),
        (r#"sum_over_time({a="b"} | unwrap x [1m])"#, "unwrap"),
        (r#"count_over_time({a="b"})"#, "range"),
        (r#"{a=~"("}"#, "regular expression"),
        (
            r#"{a="b"} | line_format "{{ printf "%s" .x }}""#,
            "line_format",
        ),
        (r#"sum({a="b"})"#, "metric query inside"),
        (r#"count_over_time({a="b"}[1m]) + on(x) vector(1)"#, "on()"),
        ("{a=\"b\\q\"}", "escape"),
    ] {
        let e = parse(bad).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
    let deep = format!("{}vector(1){}", "(".repeat(500), ")".repeat(500));
    assert!(parse(&deep).unwrap_err().contains("nests deeper"));
    let long = format!("{{a=\"{}\"}}", "x".repeat(20_000));
    assert!(parse(&long).unwrap_err().contains("bytes"));
}

#[test]
fn precedence_follows_promql() {
    let Expr::Binary(b) = parse("vector(1) + vector(2) * vector(3)").unwrap() else {
        panic!()
    };
    assert_eq!(b.op, BinOp::Add);
    let Expr::Binary(b) = parse("vector(2) ^ vector(3) ^ vector(2)").unwrap() else {
        panic!()
    };
    assert!(matches!(b.lhs, Expr::Vector(_)), "^ is right-associative");
}

fn entry(line: &str) -> Entry {
    let mut labels = Labels::new();
    labels.insert("service".into(), "a".into());
    Entry {
        time: 1,
        line: line.into(),
        labels,
        metadata: Labels::new(),
    }
}

fn stages(q: &str) -> Vec<Stage> {
    match parse(q).unwrap() {
        Expr::Log(l) => l.stages,
        _ => panic!(),
    }
}

#[test]
fn parsers_and_filters_work_on_lines() {
    let e = pipeline::run(
        entry(r#"{"status":503,"req":{"path":"/pay","ms":"1.5s"},"service":"x","tags":[1]}"#),
        &stages(r#"{a="b"} | json | status >= 500 | req_ms > 1s | req_path =~ "/p.*""#),
    )
    .expect("passes");
    assert_eq!(e.labels["status"], "503");
    assert_eq!(
        e.labels["service_extracted"], "x",
        "a clash gets _extracted"
    );
    assert!(!e.labels.contains_key("tags"), "arrays are skipped");
    assert!(
        pipeline::run(
            entry(r#"{"status":200}"#),
            &stages(r#"{a="b"} | json | status >= 500"#)
        )
        .is_none()
    );
    let e = pipeline::run(
        entry(r#"{"a":{"b":[10,20]}}"#),
        &stages(r#"{a="b"} | json x="a.b[1]""#),
    )
    .unwrap();
    assert_eq!(e.labels["x"], "20");
    let e = pipeline::run(entry("not json"), &stages(r#"{a="b"} | json"#)).unwrap();
    assert_eq!(e.labels["__error__"], "JSONParserErr");
    let e = pipeline::run(
        entry(r#"level=warn msg="a \"quoted\" word" n=3 flag"#),
        &stages(r#"{a="b"} | logfmt | line_format "{{.level}}: {{.msg}} ({{.n}})""#),
    )
    .unwrap();
    assert_eq!(e.line, r#"warn: a "quoted" word (3)"#);
    assert_eq!(e.labels["flag"], "");
    assert!(pipeline::run(entry("x"), &stages(r#"{a="b"} |= "y" or "x""#)).is_some());
    assert!(pipeline::run(entry("x"), &stages(r#"{a="b"} != "x""#)).is_none());
    assert!(pipeline::run(entry("ab12"), &stages(r#"{a="b"} |~ "b\\d""#)).is_some());
    let e = pipeline::run(
        entry("\x1b[31mred\x1b[0m"),
        &stages(r#"{a="b"} | decolorize"#),
    )
    .unwrap();
    assert_eq!(e.line, "red");
    let e = pipeline::run(entry("k=v"), &stages(r#"{a="b"} | logfmt | keep k"#)).unwrap();
    assert_eq!(e.labels.keys().collect::<Vec<_>>(), vec!["k"]);
}

#[test]
fn key_filters_are_pushed_to_the_index() {
    let keys = KeyExtractor::new(&Default::default());
    let Expr::Log(l) = parse(&format!(
        r#"{{service="payment"}} |= "x" | trace_id="{TRACE}""#
    ))
    .unwrap() else {
        panic!()
    };
    let f = prefilter(&l, &keys);
    assert_eq!(f.service.as_deref(), Some("payment"));
    assert_eq!(f.text.unwrap(), format!("+trace_id:\"{TRACE}\""));
    let Expr::Log(l) = parse(r#"{host="h1"} | request_id="r-1" | user="u""#).unwrap() else {
        panic!()
    };
    let f = prefilter(&l, &keys);
    assert_eq!(f.host.as_deref(), Some("h1"));
    let text = f.text.unwrap();
    assert!(text.contains("keys:\"r-1\""), "{text}");
    assert!(!text.contains("\"u\""), "user is not a key: {text}");
    // After json, labels may come from the line: nothing more is pushed down.
    let Expr::Log(l) = parse(r#"{service="a"} | json | request_id="r-1""#).unwrap() else {
        panic!()
    };
    assert!(prefilter(&l, &keys).text.is_none());
}

#[tokio::test]
async fn a_trace_id_or_request_id_filter_finds_its_line() {
    let (app, _d) = app();
    for query in [
        format!(r#"{{service="payment"}} | trace_id="{TRACE}""#),
        r#"{service="payment"} | request_id="req-777""#.to_string(),
        r#"{service_name="payment"} |= "declined""#.to_string(),
    ] {
        let (s, v) = get(&app, &q(&query)).await;
        assert_eq!(s, StatusCode::OK, "{query}: {v}");
        let l = lines(&v);
        assert_eq!(l.len(), 1, "{query}: {v}");
        assert_eq!(l[0].2, "card declined by bank");
        assert_eq!(l[0].0["service"], "payment");
        assert_eq!(l[0].0["level"], "error");
        assert_eq!(l[0].0["request_id"], "req-777", "metadata is in the stream");
        assert_eq!(l[0].0["trace_id"], TRACE);
        assert!(v["data"]["stats"]["summary"]["totalLinesProcessed"].is_u64());
    }
}

#[tokio::test]
async fn log_queries_page_limit_and_order() {
    let (app, _d) = app();
    let (_, v) = get(&app, &q(r#"{service="payment"}"#)).await;
    let l = lines(&v);
    assert_eq!(l.len(), 30);
    let uri = q(r#"{service="payment"} |= "charge""#).replace("limit=1000", "limit=5");
    let (_, v) = get(&app, &uri).await;
    let l = lines(&v);
    assert_eq!(l.len(), 5);
    let newest = T - SEC;
    assert_eq!(
        l.iter().map(|x| x.1).max().unwrap(),
        newest,
        "backward: newest first"
    );
    let (_, v) = get(&app, &format!("{uri}&direction=forward")).await;
    let l = lines(&v);
    assert_eq!(
        l.iter().map(|x| x.1).min().unwrap(),
        T - 59 * SEC,
        "forward: oldest"
    );
    let (_, v) = get(
        &app,
        &q(r#"{service="checkout"} | json | status >= 220 | line_format "{{.path}} {{.status}}""#),
    )
    .await;
    let l = lines(&v);
    assert_eq!(l.len(), 5, "statuses 220..228 of the JSON lines: {v}");
    assert!(l.iter().all(|x| x.2.starts_with("/cart 2")));
    let (_, v) = get(&app, &q(r#"{service="checkout"} | logfmt | status > 520"#)).await;
    assert_eq!(lines(&v).len(), 5, "statuses 521..529: {v}");
}

#[tokio::test]
async fn metric_queries_count_per_step() {
    let (app, _d) = app();
    let (s, v) = get(
        &app,
        &q(r#"sum by (level) (count_over_time({service="payment"} | drop __error__[1m]))"#),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    let result = v["data"]["result"].as_array().unwrap();
    let level = |name: &str| {
        result
            .iter()
            .find(|r| r["metric"]["level"] == name)
            .unwrap_or_else(|| panic!("no {name}: {v}"))
    };
    // The step at T covers (T-60s, T]: every payment line. 3 errors (i = 0, 10, 20) + the
    // declined line.
    let at_t = |r: &serde_json::Value| {
        r["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p[0].as_f64().unwrap() as u64 == T / SEC)
            .map(|p| p[1].as_str().unwrap().to_string())
    };
    assert_eq!(at_t(level("error")).as_deref(), Some("4"));
    assert_eq!(at_t(level("info")).as_deref(), Some("26"));
    let (_, v) = get(&app, &q(r#"sum(rate({service="payment"}[1m]))"#)).await;
    let r = &v["data"]["result"][0];
    assert_eq!(at_t(r).as_deref(), Some("0.5"), "{v}");
    let (_, v) = get(
        &app,
        &q(r#"topk(1, sum by (service) (count_over_time({host="h1"}[1m])))"#),
    )
    .await;
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1, "{v}");
    let (_, v) = get(
        &app,
        &q(r#"count_over_time({service="payment"} |= "declined"[1m]) > 5"#),
    )
    .await;
    assert!(v["data"]["result"].as_array().unwrap().is_empty(), "{v}");
}

#[tokio::test]
async fn grafanas_health_check_answers_two() {
    let (app, _d) = app();
    let uri =
        "/loki/api/v1/query?query=vector%281%29%2Bvector%281%29&time=4000000000&direction=backward";
    let (s, v) = get(&app, uri).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(v["data"]["result"][0]["value"][1], "2");
    // Loki reads an integer of up to 10 digits as seconds, so Grafana's "4000000000"
    // (4 s in ns) is 4e9 s; Skein reads it the same way.
    assert_eq!(v["data"]["result"][0]["value"][0].as_f64(), Some(4e9));
    let (s, v) = get(&app, "/loki/api/v1/query?query=%7Ba%3D%22b%22%7D").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["message"].as_str().unwrap().contains("range query"),
        "{v}"
    );
}

#[tokio::test]
async fn discovery_routes_list_labels_values_and_series() {
    let (app, _d) = app();
    let range = format!("start={}&end={}", T - 120 * SEC, T + SEC);
    let (_, v) = get(&app, &format!("/loki/api/v1/labels?{range}")).await;
    let names: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["host", "level", "service"], "{v}");
    let (_, v) = get(&app, &format!("/loki/api/v1/label/service/values?{range}")).await;
    assert_eq!(v["data"], serde_json::json!(["checkout", "payment"]));
    let (_, v) = get(
        &app,
        &format!("/loki/api/v1/label/level/values?{range}&query=%7Bservice%3D%22payment%22%7D"),
    )
    .await;
    assert_eq!(v["data"], serde_json::json!(["error", "info"]));
    let (_, v) = get(
        &app,
        &format!("/loki/api/v1/series?{range}&match[]=%7Bservice%3D%22checkout%22%7D"),
    )
    .await;
    assert_eq!(
        v["data"],
        serde_json::json!([{"host": "h1", "level": "info", "service": "checkout"}])
    );
    let (_, v) = get(
        &app,
        &format!("/loki/api/v1/index/stats?{range}&query=%7Bservice%3D%22payment%22%7D"),
    )
    .await;
    assert_eq!(v["entries"], 30, "{v}");
    assert_eq!(v["streams"], 2, "{v}");
    assert!(v["bytes"].as_u64().unwrap() > 300, "{v}");
    let (_, v) = get(
        &app,
        &format!("/loki/api/v1/index/volume?{range}&query=%7Bservice%3D~%22.%2B%22%7D"),
    )
    .await;
    let res = v["data"]["result"].as_array().unwrap();
    assert_eq!(res.len(), 2, "{v}");
    let (_, v) = get(&app, "/loki/api/v1/status/buildinfo").await;
    assert_eq!(v["version"], super::LOKI_VERSION);
}

#[tokio::test]
async fn bad_requests_get_a_message() {
    let (app, _d) = app();
    for (uri, says) in [
        ("/loki/api/v1/query_range".to_string(), "missing parameter"),
        (q("{service=\"a\""), "parse error"),
        (
            q("{service=\"a\"}").replace("limit=1000", "limit=100000"),
            "max entries",
        ),
        (
            q("{service=\"a\"}").replace("limit=1000", "limit=x"),
            "limit",
        ),
        (
            format!(
                "{}&start=9&end=1",
                q("{service=\"a\"}").split("&start").next().unwrap()
            ),
            "end is before start",
        ),
        (
            q("count_over_time({service=\"a\"}[1m])").replace("step=60000ms", "step=1ns"),
            "steps",
        ),
        (q("{service=\"a\"}") + "&direction=sideways", "direction"),
        ("/loki/api/v1/index/stats".to_string(), "missing parameter"),
    ] {
        let (s, v) = get(&app, &uri).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert_eq!(v["status"], "error");
        let m = v["message"].as_str().unwrap();
        assert!(m.contains(says), "{uri}: {m}");
    }
}

#[test]
fn times_read_as_loki_reads_them() {
    use super::parse_time;
    assert_eq!(
        parse_time("1700000000").unwrap(),
        1_700_000_000 * SEC,
        "10 digits: s"
    );
    assert_eq!(parse_time("1700000000000000000").unwrap(), T, "more: ns");
    assert_eq!(parse_time("1700000000.5").unwrap(), T + SEC / 2, "a dot: s");
    assert_eq!(parse_time("2023-11-14T22:13:20Z").unwrap(), T);
    assert_eq!(parse_time("2023-11-15T00:13:20+02:00").unwrap(), T);
    assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
}
