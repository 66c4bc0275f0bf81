//! The Prometheus routes over a real store: envelopes, each route's answer, the errors.

#![allow(clippy::unwrap_used)]

use super::routes;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use skein_model::metric::{Labels, MetricBatch, MetricKind, SeriesSpec};
use std::time::Duration;
use tower::ServiceExt;

/// Newest sample time of the store the tests read (whole seconds).
const T: i64 = 1_700_000_000_000;

/// A store with `skein.span.calls` (a counter, two services) and `up` (a gauge, Prometheus
/// name), a sample every 10 s for 5 minutes up to [`T`].
fn app() -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = skein_store::tsdb::Tsdb::open(skein_store::tsdb::TsdbConfig {
        dir: dir.path().join("tsdb"),
        retention: Duration::from_secs(100 * 365 * 86_400),
        ..Default::default()
    })
    .unwrap();
    let mut b = MetricBatch::default();
    let spec = |name: &str, kind, unit: &str, svc: &str| SeriesSpec {
        name: name.into(),
        labels: Labels::from_pairs([("service", svc), ("job", "demo")]),
        kind,
        unit: unit.into(),
        delta: false,
    };
    let pay = b.add_series(spec(
        "skein.span.calls",
        MetricKind::Counter,
        "1",
        "payment",
    ));
    let ord = b.add_series(spec("skein.span.calls", MetricKind::Counter, "1", "order"));
    let up = b.add_series(spec("up", MetricKind::Gauge, "", "payment"));
    for i in 0..=30 {
        let t = T - 300_000 + i * 10_000;
        b.push(pay, t, i as f64);
        b.push(ord, t, 2.0 * i as f64);
        b.push(up, t, 1.0);
    }
    let rep = tsdb.append(&b).unwrap();
    assert_eq!(rep.accepted, 93, "{rep:?}");
    let state = crate::test_state::state_over(tsdb, dir.path());
    (routes().with_state(state), dir)
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, v)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, serde_json::Value) {
    call(
        app,
        Request::builder().uri(uri).body(Body::empty()).unwrap(),
    )
    .await
}

async fn post(app: &Router, uri: &str, form: &str) -> (StatusCode, serde_json::Value) {
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap();
    call(app, req).await
}

fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("q", s)]).unwrap()[2..].to_string()
}

async fn bad(app: &Router, uri: &str, says: &str) {
    let (s, v) = get(app, uri).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "bad_data");
    let m = v["error"].as_str().unwrap();
    assert!(m.contains(says), "{uri}: {m}");
}

#[tokio::test]
async fn instant_query_reads_otel_names_as_prometheus_names() {
    let (app, _dir) = app();
    let q = enc(r#"skein_span_calls_total{service="payment"}"#);
    let (s, v) = get(&app, &format!("/api/v1/query?query={q}&time=1700000000")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "vector");
    let r = &v["data"]["result"];
    assert_eq!(r.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(r[0]["metric"]["__name__"], "skein_span_calls_total");
    assert_eq!(r[0]["metric"]["service"], "payment");
    assert_eq!(r[0]["value"], serde_json::json!([1700000000, "30"]));
    // A sum over both services, through a form POST.
    let (s, v) = post(
        &app,
        "/api/v1/query",
        &format!(
            "query={}&time=1700000000",
            enc("sum(skein_span_calls_total)")
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["result"][0]["value"][1], "90");
    // A scalar.
    let (_, v) = get(&app, "/api/v1/query?query=1%2B1&time=1700000000.5").await;
    assert_eq!(v["data"]["resultType"], "scalar");
    assert_eq!(v["data"]["result"], serde_json::json!([1700000000.5, "2"]));
}

#[tokio::test]
async fn range_query_gives_a_matrix_at_each_step() {
    let (app, _dir) = app();
    let q = enc(r#"rate(skein_span_calls_total{service="order"}[1m])"#);
    let uri = format!("/api/v1/query_range?query={q}&start=1699999880&end=1700000000&step=60");
    let (s, v) = get(&app, &uri).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    let series = v["data"]["result"].as_array().unwrap();
    assert_eq!(series.len(), 1);
    // rate drops the name; the order counter grows 2 every 10 s: 0.2 per second.
    assert!(series[0]["metric"].get("__name__").is_none());
    let values = series[0]["values"].as_array().unwrap();
    assert_eq!(values.len(), 3);
    assert_eq!(values[0][0], 1699999880);
    for p in values {
        let x: f64 = p[1].as_str().unwrap().parse().unwrap();
        assert!((x - 0.2).abs() < 1e-9, "{p}");
    }
}

#[tokio::test]
async fn series_labels_values_and_metadata() {
    let (app, _dir) = app();
    let m = enc(r#"{__name__=~"skein_.+"}"#);
    let (s, v) = get(&app, &format!("/api/v1/series?match[]={m}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let list = v["data"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{v}");
    assert_eq!(list[0]["__name__"], "skein_span_calls_total");
    let svcs: Vec<&str> = list
        .iter()
        .map(|l| l["service"].as_str().unwrap())
        .collect();
    assert_eq!(svcs, ["order", "payment"]);
    bad(&app, "/api/v1/series", "no match[]").await;
    bad(
        &app,
        &format!("/api/v1/series?match[]={}", enc("{job=~\".*\"}")),
        "non-empty",
    )
    .await;

    let (_, v) = get(&app, "/api/v1/labels").await;
    let names: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(names, ["__name__", "job", "service"]);
    let (_, v) = get(&app, "/api/v1/label/__name__/values").await;
    assert_eq!(
        v["data"],
        serde_json::json!(["skein_span_calls_total", "up"])
    );
    let (_, v) = get(
        &app,
        &format!("/api/v1/label/service/values?match[]={}", enc("up")),
    )
    .await;
    assert_eq!(v["data"], serde_json::json!(["payment"]));
    bad(&app, "/api/v1/label/a-b/values", "invalid label name").await;

    let (_, v) = get(&app, "/api/v1/metadata").await;
    assert_eq!(v["data"]["skein_span_calls_total"][0]["type"], "counter");
    assert_eq!(v["data"]["up"][0]["type"], "gauge");
    let (_, v) = get(&app, "/api/v1/metadata?metric=up").await;
    assert_eq!(v["data"].as_object().unwrap().len(), 1);

    let (s, v) = get(&app, "/api/v1/status/buildinfo").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"]["version"], super::PROMETHEUS_VERSION);
}

#[tokio::test]
async fn errors_use_prometheus_types() {
    let (app, _dir) = app();
    bad(&app, &format!("/api/v1/query?query={}", enc("sum(")), "").await;
    bad(&app, "/api/v1/query", "query").await;
    bad(&app, "/api/v1/query?query=up&time=soon", "time").await;
    let base = format!("/api/v1/query_range?query={}", enc("up"));
    bad(&app, &format!("{base}&start=10&end=20"), "step").await;
    bad(
        &app,
        &format!("{base}&start=10&end=20&step=0"),
        "zero or negative",
    )
    .await;
    bad(
        &app,
        &format!("{base}&start=20&end=10&step=1"),
        "before start",
    )
    .await;
    bad(&app, &format!("{base}&start=0&end=100000&step=1"), "11,000").await;
    // A range vector cannot be a range query's answer.
    bad(
        &app,
        &format!(
            "/api/v1/query_range?query={}&start=10&end=20&step=1",
            enc("up[5m]")
        ),
        "",
    )
    .await;
}
