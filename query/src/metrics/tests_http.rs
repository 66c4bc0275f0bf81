//! Tests of the routes over a real (empty) store: the 400 and 404 answers and the empty
//! successes.

#![allow(clippy::unwrap_used)]

use super::routes;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn app() -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = skein_store::tsdb::Tsdb::open(skein_store::tsdb::TsdbConfig {
        dir: dir.path().join("tsdb"),
        ..Default::default()
    })
    .unwrap();
    (app_over(tsdb, dir.path()), dir)
}

/// The routes over a store, with empty log and span indexes in `dir`.
fn app_over(tsdb: skein_store::tsdb::Tsdb, dir: &std::path::Path) -> Router {
    routes().with_state(crate::test_state::state_over(tsdb, dir))
}

async fn get(app: &Router, uri: &str) -> (StatusCode, serde_json::Value) {
    let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

async fn bad(app: &Router, uri: &str, says: &str) {
    let (s, v) = get(app, uri).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
    assert_eq!(v["error"], "bad_request");
    let m = v["message"].as_str().unwrap();
    assert!(m.contains(says), "{uri}: {m}");
}

#[tokio::test]
async fn metric_query_errors() {
    let (app, _dir) = app();
    let q = "/api/v1/metrics/query";
    bad(&app, q, "name is required").await;
    bad(&app, &format!("{q}?name=x&agg=median"), "use avg, min, max").await;
    bad(
        &app,
        &format!("{q}?name=x&match=host"),
        "cannot read matcher",
    )
    .await;
    bad(&app, &format!("{q}?name=x&start=someday"), "start:").await;
    bad(
        &app,
        &format!("{q}?name=x&start=1h&end=2h"),
        "start is after end",
    )
    .await;
    bad(
        &app,
        &format!("{q}?name=x&start=24h&step=1s"),
        "the most is 11,000",
    )
    .await;
    let (s, v) = get(&app, &format!("{q}?name=nope&match=host%3Dweb-1")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"], "not_found");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("/api/v1/metrics/names")
    );
}

#[tokio::test]
async fn names_and_labels() {
    let (app, _dir) = app();
    let (s, v) = get(&app, "/api/v1/metrics/names").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, serde_json::json!({"metrics": []}));
    let (s, v) = get(&app, "/api/v1/metrics/labels").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, serde_json::json!({"labels": []}));
    let (s, v) = get(&app, "/api/v1/metrics/labels/host/values").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, serde_json::json!({"label": "host", "values": []}));
    let (s, _) = get(&app, "/api/v1/metrics/labels?name=nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = get(&app, "/api/v1/metrics/labels/host/values?name=nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn services_and_dependencies() {
    let (app, _dir) = app();
    let (s, v) = get(&app, "/api/v1/services").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, serde_json::json!({"window_ms": 60000, "services": []}));
    let (s, v) = get(&app, "/api/v1/services?window=5m").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["window_ms"], 300000);
    bad(&app, "/api/v1/services?window=soon", "window:").await;
    bad(&app, "/api/v1/services?window=48h", "24h").await;
    let (s, v) = get(&app, "/api/v1/services/pay/operations").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["message"].as_str().unwrap().contains("/api/v1/services"));
    let (s, v) = get(&app, "/api/v1/dependencies").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["end_ms"].as_i64().unwrap() - v["start_ms"].as_i64().unwrap(),
        900_000
    );
    assert_eq!(v["nodes"], serde_json::json!([]));
    bad(
        &app,
        "/api/v1/dependencies?start=1h&end=2h",
        "start is after end",
    )
    .await;
}

/// Writes a gauge on two hosts and a counter into the store, then reads them over HTTP.
#[tokio::test]
async fn a_range_query_over_the_real_store() {
    use skein_model::metric::{Labels, MetricBatch, MetricKind, SeriesSpec};
    let dir = tempfile::tempdir().unwrap();
    let tsdb = skein_store::tsdb::Tsdb::open(skein_store::tsdb::TsdbConfig {
        dir: dir.path().join("tsdb"),
        ..Default::default()
    })
    .unwrap();
    let now_ms = super::params::ns_to_ms(skein_model::time::now_unix_nano());
    let t0 = (now_ms / 60_000 - 10) * 60_000;
    let mut b = MetricBatch::default();
    let spec = |name: &str, host: &str, kind| SeriesSpec {
        name: name.into(),
        labels: Labels::from_pairs([("host", host)]),
        kind,
        unit: String::new(),
        delta: false,
    };
    let a = b.add_series(spec("cpu", "a", MetricKind::Gauge));
    let c = b.add_series(spec("cpu", "b", MetricKind::Gauge));
    let r = b.add_series(spec("reqs", "a", MetricKind::Counter));
    for i in 0..=60 {
        let ts = t0 + i * 10_000;
        b.push(a, ts, 1.0);
        b.push(c, ts, 3.0);
        b.push(r, ts, (i * 20) as f64);
    }
    let report = tsdb.append(&b).unwrap();
    assert_eq!(report.rejected, 0, "{report:?}");
    let app = &app_over(tsdb, dir.path());
    let range = format!(
        "start={}&end={}&step=60s",
        (t0 + 60_000) as u64 * 1_000_000,
        (t0 + 600_000) as u64 * 1_000_000
    );
    let (s, v) = get(app, &format!("/api/v1/metrics/query?name=cpu&{range}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["step_ms"], 60_000);
    let pts = v["series"][0]["points"].as_array().unwrap();
    assert_eq!(pts.len(), 10, "{v}");
    assert_eq!(pts[0], serde_json::json!([t0 + 60_000, 2.0]));
    let (s, v) = get(
        app,
        &format!("/api/v1/metrics/query?name=cpu&by=host&agg=max&{range}"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["series"][1]["labels"], serde_json::json!({"host": "b"}));
    assert_eq!(v["series"][1]["points"][0][1], 3.0);
    let (s, v) = get(
        app,
        &format!("/api/v1/metrics/query?name=reqs&agg=rate&{range}"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["series"][0]["points"][3][1], 2.0);
    let (s, v) = get(
        app,
        &format!("/api/v1/metrics/query?name=cpu&match=host%3Da&agg=count&{range}"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["series"][0]["points"][0][1], 1.0);
    let (s, v) = get(app, "/api/v1/metrics/names").await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["cpu", "reqs"]);
    let (_, v) = get(app, "/api/v1/metrics/labels/host/values?name=cpu").await;
    assert_eq!(v["values"], serde_json::json!(["a", "b"]));
}

/// A store holding NaN, ±Inf and staleness markers (kept as sent): the query answers valid
/// JSON (no `null`, which the typed client cannot read) with those samples skipped.
#[tokio::test]
async fn non_finite_samples_are_skipped_and_the_answer_is_valid_json() {
    use skein_model::metric::{Labels, MetricBatch, MetricKind, SeriesSpec};
    let dir = tempfile::tempdir().unwrap();
    let tsdb = skein_store::tsdb::Tsdb::open(skein_store::tsdb::TsdbConfig {
        dir: dir.path().join("tsdb"),
        ..Default::default()
    })
    .unwrap();
    let now_ms = super::params::ns_to_ms(skein_model::time::now_unix_nano());
    let t0 = (now_ms / 60_000 - 10) * 60_000;
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let mut b = MetricBatch::default();
    let spec = |name: &str, host: &str, kind| SeriesSpec {
        name: name.into(),
        labels: Labels::from_pairs([("host", host)]),
        kind,
        unit: String::new(),
        delta: false,
    };
    let a = b.add_series(spec("temp", "a", MetricKind::Gauge));
    let gone = b.add_series(spec("temp", "gone", MetricKind::Gauge));
    let r = b.add_series(spec("hits", "a", MetricKind::Counter));
    for i in 0..=60 {
        let ts = t0 + i * 10_000;
        // temp{host=a}: 1 and 3 in turn, with NaN, +Inf, -Inf and a marker between them.
        b.push(a, ts, if i % 2 == 0 { 1.0 } else { 3.0 });
        let odd = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, stale];
        b.push(a, ts + 5_000, odd[i as usize % 4]);
        // temp{host=gone}: only non-finite values.
        b.push(gone, ts, odd[(i as usize + 1) % 4]);
        // hits: 20 a step, with a NaN between two samples now and then.
        b.push(r, ts, (i * 20) as f64);
        if i % 7 == 3 {
            b.push(r, ts + 3_000, f64::NAN);
        }
    }
    let report = tsdb.append(&b).unwrap();
    assert_eq!(report.rejected, 0, "{report:?}");
    let app = &app_over(tsdb, dir.path());
    let range = format!(
        "start={}&end={}&step=60s",
        (t0 + 60_000) as u64 * 1_000_000,
        (t0 + 600_000) as u64 * 1_000_000
    );
    // The raw body: `null` would be a NaN or infinity serde_json could not write.
    let raw = |uri: String| async move {
        let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(!text.contains("null"), "{text}");
        serde_json::from_str::<skein_model::metrics_api::MetricQueryResponse>(&text).unwrap()
    };
    for (agg, want) in [("avg", 2.0), ("min", 1.0), ("max", 3.0), ("count", 1.0)] {
        let v = raw(format!(
            "/api/v1/metrics/query?name=temp&by=host&agg={agg}&{range}"
        ))
        .await;
        // Only host=a: host=gone has no finite sample.
        assert_eq!(v.series.len(), 1, "{agg}: {v:?}");
        assert_eq!(v.series[0].labels, Labels::from_pairs([("host", "a")]));
        assert_eq!(v.series[0].points.len(), 10, "{agg}");
        for p in &v.series[0].points {
            assert_eq!(p.1, want, "{agg} at {}", p.0);
        }
    }
    let v = raw(format!("/api/v1/metrics/query?name=hits&agg=rate&{range}")).await;
    assert_eq!(v.series[0].points.len(), 10);
    for p in &v.series[0].points {
        assert_eq!(p.1, 2.0, "rate at {}", p.0);
    }
}
