//! Monitoring end to end, over a real collector process: metrics from the real OpenTelemetry
//! SDK exporters (OTLP/HTTP and gRPC) are stored, queried and survive restarts and `kill -9`;
//! spans of a three-service request give the right RED figures and dependency edges (an
//! uninstrumented database and an async hop included); bad metrics and bad queries get clear
//! answers; the CLI shows the same.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Collector, gauge_request, get_json, kv, new_trace_id, now_nanos, post, url_with, wait_for,
};
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_otlp::{MetricExporter, Protocol, WithExportConfig};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::trace::v1::{Status, status};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prost::Message;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// A collector deriving span metrics every second, with a short join window and a low
/// per-metric series limit (for the cardinality test).
fn start() -> (Collector, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("collector.toml");
    std::fs::write(
        &cfg,
        "[metrics]\nderive_interval = \"1s\"\njoin_window = \"2s\"\nmax_series_per_metric = 50\n",
    )
    .unwrap();
    let c = Collector::start(&["--config", cfg.to_str().unwrap()]);
    (c, tmp)
}

fn api(c: &Collector, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    get_json(&url_with(&c.api_base(), path, params))
}

/// Points of every result series, by the series' label value of `label`.
fn points_by(v: &Value, label: &str) -> Vec<(String, Vec<f64>)> {
    v["series"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|s| {
            (
                s["labels"][label].as_str().unwrap_or("").to_string(),
                s["points"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p[1].as_f64().unwrap())
                    .collect(),
            )
        })
        .collect()
}

fn ago(secs: u64) -> String {
    (now_nanos() - secs * 1_000_000_000).to_string()
}

fn meter_provider(exporter: MetricExporter, service: &str) -> SdkMeterProvider {
    SdkMeterProvider::builder()
        .with_periodic_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_string())
                .with_attribute(KeyValue::new("host.name", "web-1"))
                .build(),
        )
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_metrics_are_stored_queried_and_survive_restart_and_kill9() {
    // The gRPC exporter needs a Tokio runtime around it; the checks block, so they run on a
    // blocking thread.
    tokio::task::spawn_blocking(sdk_scenario)
        .await
        .expect("sdk scenario");
}

fn sdk_scenario() {
    let (mut c, _cfg) = start();
    let http = MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/metrics", c.http_base()))
        .build()
        .expect("http metric exporter");
    let provider = meter_provider(http, "checkout");
    let meter = provider.meter("shop");
    let orders = meter.u64_counter("orders.placed").build();
    let duration = meter
        .f64_histogram("checkout.duration")
        .with_unit("ms")
        .build();
    let depth = meter.u64_gauge("queue.depth").build();
    orders.add(5, &[KeyValue::new("region", "eu")]);
    orders.add(2, &[KeyValue::new("region", "us")]);
    duration.record(1.0, &[]);
    depth.record(7, &[]);
    provider.force_flush().expect("first flush");
    orders.add(3, &[KeyValue::new("region", "eu")]);
    for v in 1..=100 {
        duration.record(v as f64, &[]);
    }
    provider.force_flush().expect("second flush");
    provider.shutdown().expect("shutdown");

    // And a second service over gRPC.
    let grpc = MetricExporter::builder()
        .with_tonic()
        .with_endpoint(c.grpc_endpoint())
        .build()
        .expect("grpc metric exporter");
    let provider = meter_provider(grpc, "payment");
    provider
        .meter("pay")
        .u64_counter("payments.made")
        .build()
        .add(4, &[]);
    provider.force_flush().expect("grpc flush");
    provider.shutdown().expect("grpc shutdown");

    let (status, names) = api(&c, "/api/v1/metrics/names", &[]);
    assert_eq!(status, 200, "{names}");
    let kind = |n: &str| {
        names["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == n)
            .map(|m| m["kind"].as_str().unwrap().to_string())
    };
    assert_eq!(kind("orders.placed").as_deref(), Some("counter"), "{names}");
    assert_eq!(kind("checkout.duration").as_deref(), Some("histogram"));
    assert_eq!(kind("queue.depth").as_deref(), Some("gauge"));
    assert_eq!(kind("payments.made").as_deref(), Some("counter"));

    let start = ago(300);
    let end = (now_nanos() + 5_000_000_000).to_string();
    let q = |c: &Collector, name: &str, agg: &str, extra: &[(&str, &str)]| {
        let mut p = vec![
            ("name", name),
            ("agg", agg),
            ("step", "1s"),
            ("start", &start),
            ("end", &end),
        ];
        p.extend_from_slice(extra);
        let (status, v) = api(c, "/api/v1/metrics/query", &p);
        assert_eq!(status, 200, "{name} {agg}: {v}");
        v
    };
    // The counter's last value per region, and its whole increase (the first export counts:
    // the series starts from 0 at the SDK's start time).
    let max = q(&c, "orders.placed", "max", &[("by", "region")]);
    let mut last: Vec<(String, f64)> = points_by(&max, "region")
        .into_iter()
        .map(|(r, p)| (r, *p.last().unwrap()))
        .collect();
    last.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(last, vec![("eu".into(), 8.0), ("us".into(), 2.0)], "{max}");
    let inc = q(&c, "orders.placed", "increase", &[("match", "region=eu")]);
    let total: f64 = points_by(&inc, "region")
        .iter()
        .flat_map(|(_, p)| p.iter())
        .sum();
    assert_eq!(total, 8.0, "{inc}");
    let only = q(
        &c,
        "orders.placed",
        "max",
        &[("match", "region=~u.*"), ("by", "region")],
    );
    assert_eq!(points_by(&only, "region").len(), 1, "{only}");
    assert_eq!(points_by(&only, "region")[0].0, "us");
    // Histogram percentiles from the buckets: values 1..=100 ms (and one 1 ms).
    let p50 = q(&c, "checkout.duration", "p50", &[]);
    let p50 = *points_by(&p50, "").last().unwrap().1.last().unwrap();
    assert!((40.0..=60.0).contains(&p50), "p50 {p50}");
    let p99 = q(&c, "checkout.duration", "p99", &[]);
    let p99 = *points_by(&p99, "").last().unwrap().1.last().unwrap();
    assert!((90.0..=100.0).contains(&p99), "p99 {p99}");
    let g = q(&c, "queue.depth", "max", &[("match", "service=checkout")]);
    assert_eq!(
        points_by(&g, "").last().unwrap().1.last(),
        Some(&7.0),
        "{g}"
    );
    // Labels and values.
    let (_, labels) = api(&c, "/api/v1/metrics/labels", &[("name", "orders.placed")]);
    let labels: Vec<&str> = labels["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    for l in ["region", "service", "host"] {
        assert!(labels.contains(&l), "{labels:?}");
    }
    let (_, values) = api(
        &c,
        "/api/v1/metrics/labels/region/values",
        &[("name", "orders.placed")],
    );
    assert_eq!(values["values"], serde_json::json!(["eu", "us"]));

    // Every series and sample survives a clean restart and a kill -9.
    let before_names = api(&c, "/api/v1/metrics/names", &[]).1;
    let before = [
        q(&c, "orders.placed", "max", &[("by", "region")]),
        q(&c, "checkout.duration", "p99", &[]),
        q(&c, "payments.made", "max", &[]),
    ];
    assert!(c.terminate().success());
    c.restart();
    assert_eq!(api(&c, "/api/v1/metrics/names", &[]).1, before_names);
    assert_eq!(
        q(&c, "orders.placed", "max", &[("by", "region")]),
        before[0]
    );
    assert_eq!(q(&c, "checkout.duration", "p99", &[]), before[1]);
    c.kill9();
    c.restart();
    assert_eq!(api(&c, "/api/v1/metrics/names", &[]).1, before_names);
    assert_eq!(q(&c, "payments.made", "max", &[]), before[2]);
    assert_eq!(
        q(&c, "orders.placed", "max", &[("by", "region")]),
        before[0]
    );
}

/// A span of one request: `ids` is (span, parent; 0 for none), lasting `dur_ms` from `start`.
fn span(
    trace: &[u8],
    ids: (u64, u64),
    name: &str,
    kind: i32,
    start: u64,
    dur_ms: u64,
) -> opentelemetry_proto::tonic::trace::v1::Span {
    let (id, parent) = ids;
    let parent = if parent == 0 {
        vec![]
    } else {
        parent.to_be_bytes().to_vec()
    };
    let mut s = common::span(trace, &id.to_be_bytes(), &parent, name, start);
    s.kind = kind;
    s.end_time_unix_nano = start + dur_ms * 1_000_000;
    s
}

/// The span with an error status.
fn failed(
    mut s: opentelemetry_proto::tonic::trace::v1::Span,
) -> opentelemetry_proto::tonic::trace::v1::Span {
    s.status = Some(Status {
        code: status::StatusCode::Error as i32,
        message: "card declined".into(),
    });
    s
}

const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

/// Sends `n` requests gateway → order → payment (every 10th payment fails), order → the
/// uninstrumented database `orders-db`, and order ⇢ delivery through a queue.
fn send_requests(c: &Collector, n: u64) {
    let http = common::client();
    let mut by_service: std::collections::BTreeMap<&str, Vec<_>> = Default::default();
    for i in 0..n {
        let t = new_trace_id();
        let t0 = now_nanos();
        let b = i * 100 + 1;
        let mut db = span(&t, (b + 4, b + 2), "SELECT orders", CLIENT, t0, 5);
        db.attributes = vec![
            kv("db.system", "postgresql"),
            kv("server.address", "orders-db"),
        ];
        let charge = span(&t, (b + 6, b + 3), "charge", SERVER, t0, 30);
        by_service.entry("gateway").or_default().extend([
            span(&t, (b, 0), "POST /checkout", SERVER, t0, 100),
            span(&t, (b + 1, b), "order.create", CLIENT, t0, 80),
        ]);
        by_service.entry("order").or_default().extend([
            span(&t, (b + 2, b + 1), "create", SERVER, t0, 70),
            span(&t, (b + 3, b + 2), "payment.charge", CLIENT, t0, 40),
            db,
            span(&t, (b + 5, b + 2), "publish delivery", PRODUCER, t0, 2),
        ]);
        by_service
            .entry("payment")
            .or_default()
            .push(if i % 10 == 0 { failed(charge) } else { charge });
        by_service.entry("delivery").or_default().push(span(
            &t,
            (b + 7, b + 5),
            "consume delivery",
            CONSUMER,
            t0,
            10,
        ));
    }
    // Callee services first, so some server spans wait for their client span.
    for svc in ["payment", "delivery", "order", "gateway"] {
        let req = common::traces_request(svc, by_service.remove(svc).unwrap());
        let (status, body) = post(
            &http,
            &format!("{}/v1/traces", c.http_base()),
            "application/x-protobuf",
            None,
            req.encode_to_vec(),
        )
        .unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
}

#[test]
fn a_three_service_request_gives_red_figures_and_edges() {
    let (c, _cfg) = start();
    send_requests(&c, 20);

    // RED per service, derived every second.
    let service = |v: &Value, name: &str| -> Value {
        v["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let ok = wait_for(
        || {
            let (_, v) = api(&c, "/api/v1/services", &[("window", "5m")]);
            ["gateway", "order", "payment", "delivery"]
                .iter()
                .all(|s| service(&v, s)["calls"] == 20)
        },
        Duration::from_secs(20),
    );
    let (_, v) = api(&c, "/api/v1/services", &[("window", "5m")]);
    assert!(ok, "every service has its 20 calls: {v}");
    let payment = service(&v, "payment");
    assert_eq!(payment["errors"], 2, "{payment}");
    assert!((payment["error_rate"].as_f64().unwrap() - 0.1).abs() < 1e-9);
    let p50 = payment["p50_ms"].as_f64().unwrap();
    assert!((25.0..=35.0).contains(&p50), "payment p50 {p50}");
    let gw_p99 = service(&v, "gateway")["p99_ms"].as_f64().unwrap();
    assert!((75.0..=100.0).contains(&gw_p99), "gateway p99 {gw_p99}");
    assert_eq!(service(&v, "gateway")["errors"], 0);
    let (status, ops) = api(
        &c,
        "/api/v1/services/payment/operations",
        &[("window", "5m")],
    );
    assert_eq!(status, 200, "{ops}");
    assert_eq!(ops["operations"][0]["name"], "charge");
    assert_eq!(ops["operations"][0]["calls"], 20);
    assert_eq!(ops["operations"][0]["errors"], 2);
    let (status, _) = api(&c, "/api/v1/services/nosuch/operations", &[]);
    assert_eq!(status, 404);

    // Edges: two sync calls between services, the database nobody instruments (after the
    // 2 s join window), and the async hop through the queue.
    let edge = |v: &Value, caller: &str, callee: &str| -> Value {
        v["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["caller"] == caller && e["callee"] == callee)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let since = ago(300);
    let deps = || api(&c, "/api/v1/dependencies", &[("start", &since)]).1;
    let ok = wait_for(
        || {
            let v = deps();
            edge(&v, "gateway", "order")["calls"] == 20
                && edge(&v, "order", "payment")["calls"] == 20
                && edge(&v, "order", "orders-db")["calls"] == 20
                && edge(&v, "order", "delivery")["calls"] == 20
        },
        Duration::from_secs(20),
    );
    let v = deps();
    assert!(ok, "every edge with its 20 calls: {v}");
    assert_eq!(edge(&v, "gateway", "order")["kind"], "sync");
    assert_eq!(edge(&v, "gateway", "order")["errors"], 0);
    assert_eq!(edge(&v, "order", "payment")["errors"], 2);
    let p50 = edge(&v, "order", "payment")["p50_ms"].as_f64().unwrap();
    assert!((35.0..=50.0).contains(&p50), "order→payment p50 {p50}");
    assert_eq!(edge(&v, "order", "orders-db")["callee_type"], "database");
    assert_eq!(edge(&v, "order", "delivery")["kind"], "async");
    let db = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "orders-db")
        .cloned()
        .unwrap();
    assert_eq!(db["instrumented"], false, "{db}");
    assert_eq!(db["node_type"], "database", "{db}");
    assert!(
        edge(&v, "gateway", "payment").is_null(),
        "no edge skips a hop: {v}"
    );

    // The CLI shows the same.
    let cli = |args: &[&str]| {
        let out = Command::new(common::SKEIN)
            .args(args)
            .args(["--api", &c.api_base()])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = cli(&["services", "--window", "5m"]);
    assert_eq!(code, 0, "{out}{err}");
    for s in ["gateway", "order", "payment", "delivery"] {
        assert!(out.contains(s), "{out}");
    }
    assert!(out.contains("10.0%"), "payment's error rate: {out}");
    let (code, out, err) = cli(&["services", "payment", "--window", "5m"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("charge"), "{out}");
    let (code, out, err) = cli(&["deps", "--since", "5m"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("orders-db (database)"), "{out}");
    assert!(out.contains("~async~>"), "{out}");
    let (code, out, err) = cli(&[
        "metrics",
        "skein.span.calls",
        "--match",
        "service=payment",
        "--agg",
        "max",
        "--since",
        "5m",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(r#"service="payment""#), "{out}");
    assert!(out.contains("last 20"), "{out}");
    let (code, _, err) = cli(&["metrics", "skein.span.calls", "--agg", "median"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("agg"), "{err}");
}

fn send(c: &Collector, req: &ExportMetricsServiceRequest) -> (u16, Vec<u8>) {
    post(
        &common::client(),
        &format!("{}/v1/metrics", c.http_base()),
        "application/x-protobuf",
        None,
        req.encode_to_vec(),
    )
    .unwrap()
}

#[test]
fn bad_metrics_and_bad_queries_get_clear_answers() {
    let (c, _cfg) = start();
    let t = now_nanos();
    // NaN and infinity beside a good point: all three stored as sent (OTLP points may carry
    // them; PromQL reads them as Prometheus does).
    let (status, body) = send(
        &c,
        &gauge_request(
            "temp",
            &[
                (t - 3_000_000_000, 1.0),
                (t - 2_000_000_000, f64::NAN),
                (t - 1_000_000_000, f64::INFINITY),
            ],
            "a",
        ),
    );
    assert_eq!(status, 200);
    let resp = ExportMetricsServiceResponse::decode(&body[..]).unwrap();
    let rejected = resp.partial_success.map_or(0, |p| p.rejected_data_points);
    assert_eq!(rejected, 0);
    // A NaN alone is stored too.
    let (status, _) = send(&c, &gauge_request("temp", &[(t, f64::NAN)], "a"));
    assert_eq!(status, 200);
    // Skein's own views skip them: the answer holds the good point only, as a JSON number.
    let since = ago(60);
    let (status, v) = api(
        &c,
        "/api/v1/metrics/query",
        &[
            ("name", "temp"),
            ("agg", "max"),
            ("step", "1s"),
            ("start", &since),
        ],
    );
    assert_eq!(status, 200, "{v}");
    let values: Vec<f64> = points_by(&v, "").into_iter().flat_map(|(_, p)| p).collect();
    assert_eq!(values, vec![1.0], "{v}");
    // Out of order: older than the stored sample.
    let (status, body) = send(
        &c,
        &gauge_request("temp", &[(t - 60_000_000_000, 5.0)], "a"),
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("not after"));
    // A repeat of a stored sample is accepted silently (a retried request).
    let (status, _) = send(&c, &gauge_request("temp", &[(t - 3_000_000_000, 1.0)], "a"));
    assert_eq!(status, 200);

    // Cardinality: 50 series per metric; the 51st label set and later are refused.
    let hosts: Vec<String> = (0..60).map(|i| format!("h{i}")).collect();
    let mut req = gauge_request("load", &[(t, 1.0)], &hosts[0]);
    for h in &hosts[1..] {
        let mut r = gauge_request("load", &[(t, 1.0)], h).resource_metrics;
        req.resource_metrics.append(&mut r);
    }
    let (status, body) = send(&c, &req);
    assert_eq!(status, 200);
    let partial = ExportMetricsServiceResponse::decode(&body[..])
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_data_points, 10);
    let (status, body) = send(&c, &gauge_request("load", &[(t, 1.0)], "another-host"));
    assert_eq!(status, 400);
    let msg = String::from_utf8_lossy(&body).into_owned();
    assert!(msg.contains("limit of 50 series"), "{msg}");
    let (_, m) = get_json(&format!("{}/metrics", c.api_base()));
    let _ = m; // the /metrics body is text; checked below
    let text = common::client()
        .get(format!("{}/metrics", c.api_base()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(text.contains("series_limit"), "{text}");

    // A counter that resets: increases add up across the reset (10 → 20, reset → 5 → 15).
    let counter = |points: &[(u64, f64)]| ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "restarts.total".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: points
                            .iter()
                            .map(|(t, v)| NumberDataPoint {
                                time_unix_nano: *t,
                                value: Some(number_data_point::Value::AsDouble(*v)),
                                ..Default::default()
                            })
                            .collect(),
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let s = 1_000_000_000u64;
    let (status, _) = send(
        &c,
        &counter(&[
            (t - 40 * s, 10.0),
            (t - 30 * s, 20.0),
            (t - 20 * s, 5.0),
            (t - 10 * s, 15.0),
        ]),
    );
    assert_eq!(status, 200);
    let start = ago(120);
    let (status, v) = api(
        &c,
        "/api/v1/metrics/query",
        &[
            ("name", "restarts.total"),
            ("agg", "increase"),
            ("step", "5s"),
            ("start", &start),
        ],
    );
    assert_eq!(status, 200, "{v}");
    let total: f64 = points_by(&v, "").iter().flat_map(|(_, p)| p.iter()).sum();
    assert_eq!(total, 25.0, "{v}");

    // Queries.
    let bad = |params: &[(&str, &str)], status: u16, says: &str| {
        let (got, v) = api(&c, "/api/v1/metrics/query", params);
        assert_eq!(got, status, "{params:?}: {v}");
        let msg = v["message"].as_str().unwrap_or_default();
        assert!(msg.contains(says), "{params:?}: {msg}");
    };
    bad(&[("name", "temp"), ("agg", "median")], 400, "avg");
    bad(
        &[("name", "temp"), ("step", "1ms"), ("start", "24h")],
        400,
        "11,000",
    );
    bad(&[("name", "nosuch.metric")], 404, "/api/v1/metrics/names");
    bad(&[("name", "temp"), ("match", "host")], 400, "label=value");
    bad(&[("name", "temp"), ("start", "tomorrow-ish")], 400, "start");
}
