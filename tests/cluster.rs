//! Cluster mode over real processes: three NATS servers in a JetStream cluster (stream and
//! bucket with three replicas) and three `skein collector` processes with `[cluster]` set.
//! A trace whose spans and logs enter through different nodes comes back whole from any node,
//! also by request ID; a retried batch is stored once; `kill -9` of a collector while ingest
//! runs loses no acknowledged record; stopping a NATS server does not stop ingest; an answer
//! missing partitions says so. A real agent ships to one node and every node lists it; another
//! publishes straight to the stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::agent::Agent;
use common::nats::NatsCluster;
use common::{
    Collector, client, get_json, hex, kv, log_record, logs_request, new_trace_id, now_nanos, span,
    traces_request, unique, url_with, wait_for,
};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{LogExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const PARTITIONS: u32 = 6;

fn config(nats: &NatsCluster, node: &str, ttl_ms: u64) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("collector.toml");
    let urls: Vec<String> = nats.urls().iter().map(|u| format!("\"{u}\"")).collect();
    std::fs::write(
        &path,
        format!(
            "[index]\ncommit_interval_ms = 200\n\n[metrics]\nderive_interval = \"1s\"\n\n[cluster]\nnats = [{}]\nnode = \"{node}\"\npartitions = {PARTITIONS}\nreplicas = 3\nindex_replicas = 2\nlease_ttl_ms = {ttl_ms}\n",
            urls.join(", ")
        ),
    )
    .unwrap();
    let p = path.to_string_lossy().to_string();
    (dir, p)
}

struct Nodes {
    nats: NatsCluster,
    nodes: Vec<Collector>,
    _configs: Vec<tempfile::TempDir>,
}

impl Nodes {
    fn start(ttl_ms: u64) -> Nodes {
        let nats = NatsCluster::start(3);
        let mut nodes = Vec::new();
        let mut configs = Vec::new();
        for i in 0..3 {
            let (dir, path) = config(&nats, &format!("n{i}"), ttl_ms);
            nodes.push(Collector::start(&["--config", &path]));
            configs.push(dir);
        }
        let me = Nodes {
            nats,
            nodes,
            _configs: configs,
        };
        me.wait_balanced(&[0, 1, 2]);
        me
    }

    /// Waits until every live node is ready and sees every partition with two caught-up
    /// owners among the live nodes.
    fn wait_balanced(&self, live: &[usize]) {
        let names: HashSet<String> = live.iter().map(|i| format!("n{i}")).collect();
        let balanced = |i: usize| {
            let base = self.nodes[i].api_base();
            if get_json(&format!("{base}/readyz")).0 != 200 {
                return false;
            }
            let (code, s) = get_json(&format!("{base}/api/v1/cluster"));
            let parts = s["partition_owners"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            code == 200
                && parts.len() == PARTITIONS as usize
                && parts.iter().all(|p| {
                    let owners = p["owners"].as_array().cloned().unwrap_or_default();
                    owners.len() == 2.min(live.len())
                        && owners.iter().all(|o| {
                            o["ready"] == true && names.contains(o["node"].as_str().unwrap_or(""))
                        })
                })
        };
        let ok = wait_for(
            || live.iter().all(|i| balanced(*i)),
            Duration::from_secs(90),
        );
        if !ok {
            let (_, s) = get_json(&format!(
                "{}/api/v1/cluster",
                self.nodes[live[0]].api_base()
            ));
            panic!(
                "the cluster did not balance: {s:#}\n{}\n{}",
                self.nodes
                    .iter()
                    .map(|n| n.output())
                    .collect::<Vec<_>>()
                    .join("\n---\n"),
                self.nats.output()
            );
        }
    }
}

/// POSTs a protobuf export, optionally with a batch id; the status.
fn export(url: &str, body: Vec<u8>, batch_id: Option<&str>) -> u16 {
    let mut req = client()
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(body);
    if let Some(id) = batch_id {
        req = req.header("skein-batch-id", id);
    }
    req.send().map(|r| r.status().as_u16()).unwrap_or(0)
}

fn logs_body(rid: &str, trace: Option<&[u8; 16]>, body: &str) -> Vec<u8> {
    let mut rec = log_record(body, 9, now_nanos(), vec![kv("request_id", rid)]);
    if let Some(t) = trace {
        rec.trace_id = t.to_vec();
    }
    prost::Message::encode_to_vec(&logs_request("payment", vec![rec]))
}

#[test]
fn a_trace_entering_through_different_nodes_comes_back_whole_from_any_node() {
    let c = Nodes::start(6000);
    let trace = new_trace_id();
    let rid = format!("req-{}", unique());
    let now = now_nanos();
    // The root span through node 0, its child through node 1, two logs through node 2: one
    // with the trace ID, one tied only by the request ID.
    let mut root = span(&trace, &[1; 8], &[], "POST /orders", now);
    root.attributes.push(kv("request_id", &rid));
    let child = span(&trace, &[2; 8], &[1; 8], "charge", now + 1_000_000);
    let send = |node: usize, path: &str, body: Vec<u8>| {
        let url = format!("{}{path}", c.nodes[node].http_base());
        assert_eq!(export(&url, body, None), 200, "{url}");
    };
    send(
        0,
        "/v1/traces",
        prost::Message::encode_to_vec(&traces_request("gateway", vec![root])),
    );
    send(
        1,
        "/v1/traces",
        prost::Message::encode_to_vec(&traces_request("payment", vec![child])),
    );
    send(2, "/v1/logs", logs_body(&rid, Some(&trace), "charged"));
    send(2, "/v1/logs", logs_body(&rid, None, "legacy line"));

    for key in [hex(&trace), rid.clone()] {
        for n in &c.nodes {
            let url = format!("{}/api/v1/traces/{key}", n.api_base());
            let whole = wait_for(
                || {
                    let (code, t) = get_json(&url);
                    code == 200
                        && t["spans"].as_array().map_or(0, |a| a.len()) == 2
                        && t["logs"].as_array().map_or(0, |a| a.len()) == 2
                },
                Duration::from_secs(60),
            );
            let (_, t) = get_json(&url);
            assert!(whole, "{url} is not whole: {t:#}");
            assert!(t.get("partial").is_none(), "a whole answer is not partial");
            assert_eq!(t["trace_id"], hex(&trace));
        }
    }
    // Grafana's data sources through every node: the Jaeger trace with both log lines under
    // its spans, a Jaeger search, and the Loki API's lines by request ID.
    for n in &c.nodes {
        let base = n.api_base();
        let (code, j) = get_json(&format!("{base}/api/traces/{}", hex(&trace)));
        assert_eq!(code, 200, "{j:#}");
        let spans = j["data"][0]["spans"].as_array().unwrap();
        assert_eq!(spans.len(), 2, "{j:#}");
        let logs: usize = spans
            .iter()
            .map(|s| s["logs"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(logs, 2, "both lines under the trace's spans: {j:#}");
        let (code, found) = get_json(&url_with(
            &base,
            "/api/traces",
            &[("service", "gateway"), ("lookback", "1h"), ("limit", "50")],
        ));
        assert_eq!(code, 200, "{found:#}");
        assert!(
            found["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["traceID"] == hex(&trace)),
            "{found:#}"
        );
        let (code, l) = get_json(&url_with(
            &base,
            "/loki/api/v1/query_range",
            &[(
                "query",
                &format!("{{service=~\".+\"}} | request_id=\"{rid}\""),
            )],
        ));
        assert_eq!(code, 200, "{l:#}");
        let lines: usize = l["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["values"].as_array().unwrap().len())
            .sum();
        assert_eq!(lines, 2, "{base}: {l:#}");
        assert!(l.get("partial").is_none(), "{l:#}");
    }
    // The other Jaeger and Loki routes answer through every node with what the others took in.
    for n in &c.nodes {
        let base = n.api_base();
        let ok = |path: &str, params: &[(&str, &str)]| {
            let (code, v) = get_json(&url_with(&base, path, params));
            assert_eq!(code, 200, "{base}{path}: {v:#}");
            assert!(v.get("partial").is_none(), "{base}{path}: {v:#}");
            v
        };
        let v = ok("/api/services", &[]);
        assert!(
            v["data"].as_array().unwrap().iter().any(|s| s == "payment"),
            "{v:#}"
        );
        let v = ok("/api/services/gateway/operations", &[]);
        assert!(
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == "POST /orders"),
            "{v:#}"
        );
        let v = ok(&format!("/api/v3/traces/{}", hex(&trace)), &[]);
        assert_eq!(
            v["result"]["resourceSpans"].as_array().unwrap().len(),
            2,
            "{v:#}"
        );
        let v = ok("/api/v3/services", &[]);
        assert!(
            v["services"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == "gateway"),
            "{v:#}"
        );
        let v = ok("/loki/api/v1/label/service/values", &[]);
        assert!(
            v["data"].as_array().unwrap().iter().any(|s| s == "payment"),
            "{v:#}"
        );
        let v = ok("/loki/api/v1/labels", &[]);
        assert!(
            v["data"].as_array().unwrap().iter().any(|s| s == "level"),
            "{v:#}"
        );
        let sel = "{service=\"payment\"}";
        let v = ok("/loki/api/v1/series", &[("match[]", sel)]);
        assert!(!v["data"].as_array().unwrap().is_empty(), "{v:#}");
        let v = ok("/loki/api/v1/index/stats", &[("query", sel)]);
        assert!(v["entries"].as_u64().unwrap() >= 2, "{v:#}");
        let v = ok("/loki/api/v1/index/volume", &[("query", sel)]);
        assert_eq!(
            v["data"]["result"][0]["metric"]["service"], "payment",
            "{v:#}"
        );
        let v = ok(
            "/loki/api/v1/query",
            &[("query", "sum(count_over_time({service=\"payment\"}[1h]))")],
        );
        assert!(
            v["data"]["result"][0]["value"][1]
                .as_str()
                .unwrap()
                .parse::<f64>()
                .unwrap()
                >= 2.0,
            "{v:#}"
        );
    }
    // Loki push into node 0, read back through node 2's Loki API by request ID.
    let push_rid = format!("req-loki-{}", unique());
    let push = serde_json::json!({"streams": [{
        "stream": {"service_name": "loki-pushed", "request_id": push_rid},
        "values": [[now_nanos().to_string(), "pushed through n0"]],
    }]});
    let resp = client()
        .post(format!("{}/loki/api/v1/push", c.nodes[0].http_base()))
        .header("content-type", "application/json")
        .body(push.to_string())
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let q = url_with(
        &c.nodes[2].api_base(),
        "/loki/api/v1/query_range",
        &[(
            "query",
            &format!("{{service=\"loki-pushed\"}} | request_id=\"{push_rid}\""),
        )],
    );
    assert!(
        wait_for(
            || get_json(&q).1["data"]["result"][0]["values"][0][1] == "pushed through n0",
            Duration::from_secs(30)
        ),
        "a Loki push into n0 is not read through n2: {}",
        get_json(&q).1
    );

    // Span-derived metrics: each node derives those of the spans it took in, and any node's
    // services view and metric queries add every node's share.
    for n in &c.nodes {
        let base = n.api_base();
        let listed = wait_for(
            || {
                let (_, s) = get_json(&format!("{base}/api/v1/services?window=5m"));
                let names: HashSet<String> = s["services"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x["name"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                names.contains("gateway") && names.contains("payment")
            },
            Duration::from_secs(60),
        );
        let (_, s) = get_json(&format!("{base}/api/v1/services?window=5m"));
        assert!(listed, "{base} does not list both services: {s:#}");
        assert!(s.get("partial").is_none(), "{s:#}");
    }
    // Metric samples are partitioned by series: sent to one node, read through another.
    let t = now_nanos();
    let req = common::gauge_request("queue.depth", &[(t - 2_000_000_000, 3.0), (t, 5.0)], "h1");
    let url = format!("{}/v1/metrics", c.nodes[0].http_base());
    assert_eq!(
        export(&url, prost::Message::encode_to_vec(&req), Some("metrics-1")),
        200
    );
    let q = format!(
        "{}/api/v1/metrics/query?name=queue.depth&agg=max&step=60s",
        c.nodes[2].api_base()
    );
    assert!(
        wait_for(
            || {
                let (code, r) = get_json(&q);
                code == 200
                    && r["series"][0]["points"]
                        .as_array()
                        .is_some_and(|p| !p.is_empty())
            },
            Duration::from_secs(30)
        ),
        "a metric sent to n0 is not read through n2: {}",
        get_json(&q).1
    );
    let (_, r) = get_json(&q);
    let points = r["series"][0]["points"].as_array().unwrap();
    assert_eq!(points.last().unwrap()[1], 5.0, "{r:#}");
    // Prometheus remote write into one node, read through another with PromQL and the
    // series API.
    let rw = skein_model::prompb::WriteRequest {
        timeseries: vec![skein_model::prompb::TimeSeries {
            labels: [("__name__", "rw_depth"), ("job", "cluster-test")]
                .iter()
                .map(|(n, v)| skein_model::prompb::Label {
                    name: (*n).into(),
                    value: (*v).into(),
                })
                .collect(),
            samples: vec![skein_model::prompb::Sample {
                value: 11.0,
                timestamp: (t / 1_000_000) as i64,
            }],
            histograms: vec![],
        }],
        ..Default::default()
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&prost::Message::encode_to_vec(&rw))
        .unwrap();
    let resp = client()
        .post(format!("{}/api/v1/write", c.nodes[0].http_base()))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let q = format!("{}/api/v1/query?query=rw_depth", c.nodes[2].api_base());
    assert!(
        wait_for(
            || get_json(&q).1["data"]["result"][0]["value"][1] == "11",
            Duration::from_secs(30)
        ),
        "a remote-written sample sent to n0 is not read through n2: {}",
        get_json(&q).1
    );
    let (_, r) = get_json(&format!(
        "{}/api/v1/series?match[]=rw_depth",
        c.nodes[1].api_base()
    ));
    assert_eq!(r["data"][0]["job"], "cluster-test", "{r:#}");

    // The same sample through PromQL on the other nodes, under its Prometheus name.
    for node in [1, 2] {
        let q = format!(
            "{}/api/v1/query?query=queue_depth%7Bhost%3D%22h1%22%7D",
            c.nodes[node].api_base()
        );
        let (code, r) = get_json(&q);
        assert_eq!(code, 200, "{r:#}");
        assert_eq!(r["status"], "success", "{r:#}");
        assert_eq!(r["data"]["result"][0]["value"][1], "5", "{r:#}");
        assert_eq!(r["data"]["result"][0]["metric"]["__name__"], "queue_depth");
    }

    // The real OpenTelemetry SDK: a span exported to node 0, a log inside it to node 1, both
    // found through node 2 by the span's request ID.
    let sdk_rid = format!("req-sdk-{}", unique());
    let tracer = SdkTracerProvider::builder()
        .with_simple_exporter(
            SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/traces", c.nodes[0].http_base()))
                .build()
                .unwrap(),
        )
        .with_resource(Resource::builder().with_service_name("checkout").build())
        .build();
    let logger = SdkLoggerProvider::builder()
        .with_simple_exporter(
            LogExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/logs", c.nodes[1].http_base()))
                .build()
                .unwrap(),
        )
        .with_resource(Resource::builder().with_service_name("checkout").build())
        .build();
    {
        let t = tracer.tracer("checkout");
        let span = t
            .span_builder("POST /checkout")
            .with_attributes([KeyValue::new("request_id", sdk_rid.clone())])
            .start(&t);
        let cx = Context::new().with_span(span);
        let _guard = cx.clone().attach();
        let l = logger.logger("checkout");
        let mut r = l.create_log_record();
        r.set_body(AnyValue::from("checkout accepted".to_string()));
        r.set_severity_number(Severity::Info);
        l.emit(r);
        cx.span().end();
    }
    tracer.force_flush().unwrap();
    logger.force_flush().unwrap();
    let url = format!("{}/api/v1/traces/{sdk_rid}", c.nodes[2].api_base());
    let whole = wait_for(
        || {
            let (code, t) = get_json(&url);
            code == 200
                && t["spans"].as_array().map_or(0, |a| a.len()) == 1
                && t["logs"].as_array().map_or(0, |a| a.len()) == 1
        },
        Duration::from_secs(60),
    );
    assert!(whole, "{:#}", get_json(&url).1);
    tracer.shutdown().unwrap();
    logger.shutdown().unwrap();

    // The same batch sent twice, through two nodes, with one batch id: stored once.
    let dup = format!("req-dup-{}", unique());
    let body = logs_body(&dup, None, "sent twice");
    let id = format!("test-agent:{}:cafe", unique());
    for n in [0, 1] {
        let url = format!("{}/v1/logs", c.nodes[n].http_base());
        assert_eq!(export(&url, body.clone(), Some(&id)), 200);
    }
    let url = format!("{}/api/v1/traces/{dup}", c.nodes[2].api_base());
    assert!(wait_for(
        || get_json(&url).0 == 200,
        Duration::from_secs(60)
    ));
    std::thread::sleep(Duration::from_millis(800));
    let (_, t) = get_json(&url);
    assert_eq!(t["logs"].as_array().map_or(0, |a| a.len()), 1, "{t:#}");
    let metrics = c.nodes[1].metrics();
    assert!(
        metrics.contains("skein_duplicate_batches_total{signal=\"logs\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("skein_cluster_consumer_lag{partition="));

    // A span batch retried through another node is counted once in the span metrics too.
    let t2 = new_trace_id();
    let body = prost::Message::encode_to_vec(&traces_request(
        "retried",
        vec![span(&t2, &[7; 8], &[], "GET /retry", now_nanos())],
    ));
    let id = format!("batch-{}", unique());
    for node in [0, 1] {
        let url = format!("{}/v1/traces", c.nodes[node].http_base());
        assert_eq!(export(&url, body.clone(), Some(&id)), 200);
    }
    let calls = || {
        let (_, s) = get_json(&format!(
            "{}/api/v1/services?window=5m",
            c.nodes[2].api_base()
        ));
        s["services"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == "retried"))
            .map(|x| x["calls"].as_u64().unwrap_or(0))
    };
    assert!(
        wait_for(|| calls().is_some(), Duration::from_secs(30)),
        "the retried service is not listed"
    );
    // Two more derive rounds: a second count would show by now.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        calls(),
        Some(1),
        "a retried span batch was not counted once: {:#}",
        get_json(&format!(
            "{}/api/v1/metrics/query?name=skein.span.calls&agg=max&by=service,operation&step=1s&match=service%3Dretried",
            c.nodes[2].api_base()
        ))
        .1
    );

    // PromQL sees the span metric once, whichever partitions derived it.
    let q = format!(
        "{}/api/v1/query?query=sum(skein_span_calls_total%7Bservice%3D%22retried%22%7D)",
        c.nodes[1].api_base()
    );
    let (code, r) = get_json(&q);
    assert_eq!(code, 200, "{r:#}");
    assert_eq!(r["data"]["result"][0]["value"][1], "1", "{r:#}");

    // The node-to-node read route refuses what it cannot serve, with a JSON reason.
    let reads = format!("{}/internal/v1/reads", c.nodes[0].api_base());
    for body in [
        "not json".to_string(),
        r#"{"partitions":[0],"read":{"op":"search_logs","filter":{},"range":{"start":0,"end":1},"limit":18446744073709551615}}"#.to_string(),
        r#"{"partitions":[99],"read":{"op":"last_log_seq"}}"#.to_string(),
    ] {
        let r = client()
            .post(&reads)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{body}");
        let v: serde_json::Value = r.json().unwrap();
        common::assert_error_body("internal read", &v);
    }
    let metric_reads = format!("{}/internal/v1/metrics", c.nodes[0].api_base());
    for body in [
        "[]".to_string(),
        r#"{"read":"select","name":"x","matchers":[],"start":0,"end":1,"max_series":18446744073709551615}"#.to_string(),
        r#"{"read":"select","name":"x","matchers":[{"label":"a","op":"=~","value":"("}],"start":0,"end":1,"max_series":10}"#.to_string(),
    ] {
        let r = client()
            .post(&metric_reads)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{body}");
        let v: serde_json::Value = r.json().unwrap();
        common::assert_error_body("internal metric read", &v);
    }

    // `skein cluster status` through any node: three nodes, every partition with two owners,
    // one alert engine.
    let api = c.nodes[2].api_base();
    let r = common::run_skein(&["cluster", "status", "--api", &api], &[]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    for n in ["n0", "n1", "n2"] {
        assert!(r.stdout.contains(n), "{}", r.stdout);
    }
    assert!(!r.stdout.contains("NONE"), "{}", r.stdout);
    let r = common::run_skein(&["cluster", "status", "--api", &api, "--json"], &[]);
    let s: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let leader = s["alert_leader"].as_str().unwrap_or_default().to_string();
    assert!(["n0", "n1", "n2"].contains(&leader.as_str()), "{s:#}");
    let leaders: Vec<String> = c
        .nodes
        .iter()
        .filter(|n| n.metrics().contains("\nskein_cluster_alert_leader 1\n"))
        .map(|n| n.api_base())
        .collect();
    assert_eq!(leaders.len(), 1, "exactly one node runs the alert engine");

    // A real agent ships to one node: its lines are found by request ID through another, and
    // every node lists the agent (heartbeats are shared through the cluster).
    let dir = tempfile::tempdir().unwrap();
    let rid = format!("agent-{}", unique());
    std::fs::write(
        dir.path().join("app.log"),
        format!("{{\"msg\":\"order placed\",\"level\":\"info\",\"request_id\":\"{rid}\"}}\n"),
    )
    .unwrap();
    let toml = format!(
        "[agent]\nid = \"cluster-agent\"\ndata_dir = \"{data}\"\n[collector]\nendpoint = \"{endpoint}\"\n[batch]\nmax_wait = \"100ms\"\n[heartbeat]\ninterval = \"500ms\"\n[host_metrics]\nenabled = false\n\n[[source]]\nname = \"shop\"\npaths = [\"{dir}/app.log\"]\nread_from = \"beginning\"\nformat = \"json\"\n",
        data = dir.path().join("agent-data").display(),
        endpoint = c.nodes[0].http_base(),
        dir = dir.path().display(),
    );
    let agent = Agent::start(dir.path(), &toml);
    let other = c.nodes[2].api_base();
    let found = wait_for(
        || {
            let (code, t) = get_json(&format!("{other}/api/v1/traces/{rid}"));
            code == 200 && t["logs"].as_array().is_some_and(|l| !l.is_empty())
        },
        Duration::from_secs(60),
    );
    assert!(
        found,
        "the agent's line was not found through n2:\n{}",
        agent.output()
    );
    // An agent may publish straight to the stream: its collector endpoint answers nothing
    // here, so what is found came through NATS.
    let dir2 = tempfile::tempdir().unwrap();
    let rid2 = format!("direct-{}", unique());
    std::fs::write(
        dir2.path().join("app.log"),
        format!("{{\"msg\":\"paid\",\"level\":\"info\",\"request_id\":\"{rid2}\"}}\n"),
    )
    .unwrap();
    let nats_urls: Vec<String> = c.nats.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let toml = format!(
        "[agent]\nid = \"direct-agent\"\ndata_dir = \"{data}\"\n[collector]\nendpoint = \"http://127.0.0.1:9\"\n[stream]\nnats = [{nats}]\npartitions = {PARTITIONS}\n[batch]\nmax_wait = \"100ms\"\n[host_metrics]\nenabled = false\n\n[[source]]\nname = \"pay\"\npaths = [\"{dir}/app.log\"]\nread_from = \"beginning\"\nformat = \"json\"\n",
        data = dir2.path().join("agent-data").display(),
        nats = nats_urls.join(", "),
        dir = dir2.path().display(),
    );
    let direct = Agent::start(dir2.path(), &toml);
    let found = wait_for(
        || {
            let (code, t) = get_json(&format!("{other}/api/v1/traces/{rid2}"));
            code == 200 && t["logs"].as_array().is_some_and(|l| l.len() == 1)
        },
        Duration::from_secs(60),
    );
    assert!(
        found,
        "the direct agent's line was not found:\n{}",
        direct.output()
    );
    let listed = |base: &str| {
        let (_, a) = get_json(&format!("{base}/api/v1/agents"));
        a["agents"].as_array().is_some_and(|l| {
            l.iter()
                .any(|x| x["heartbeat"]["id"] == "cluster-agent" && x["state"] == "up")
        })
    };
    for n in &c.nodes {
        let base = n.api_base();
        assert!(
            wait_for(|| listed(&base), Duration::from_secs(30)),
            "{base} does not list the agent"
        );
    }
}

#[test]
fn killing_a_collector_and_stopping_a_nats_server_lose_no_acknowledged_record() {
    let mut c = Nodes::start(6000);
    let urls: Vec<String> = c.nodes.iter().map(|n| n.http_base()).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let urls = urls[..2].to_vec();
        std::thread::spawn(move || {
            // Like an agent: every batch retried with its id until it is acknowledged.
            let mut acked = Vec::new();
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let rid = format!("req-k-{i}-{}", unique());
                let trace = new_trace_id();
                let body = logs_body(&rid, Some(&trace), "during failures");
                let id = format!("writer:{i}:0");
                let started = Instant::now();
                loop {
                    let url = format!("{}/v1/logs", urls[i % urls.len()]);
                    if export(&url, body.clone(), Some(&id)) == 200 {
                        acked.push(rid.clone());
                        break;
                    }
                    assert!(
                        started.elapsed() < Duration::from_secs(30),
                        "a batch was refused for 30 s"
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            acked
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    // A metric sample acknowledged by the node about to die.
    let t = now_nanos();
    let req = common::gauge_request("disk.free", &[(t, 42.0)], "doomed");
    let url = format!("{}/v1/metrics", c.nodes[2].http_base());
    assert_eq!(
        export(&url, prost::Message::encode_to_vec(&req), Some("m-doomed")),
        200
    );
    c.nodes[2].kill9();
    let killed = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    // One NATS server of three stops: the stream keeps a quorum.
    c.nats.stop(2);
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, std::sync::atomic::Ordering::Release);
    let acked = writer.join().unwrap();
    assert!(
        acked.len() > 50,
        "only {} batches acknowledged",
        acked.len()
    );

    // Every acknowledged record is found through both survivors, and not as a partial answer.
    c.wait_balanced(&[0, 1]);
    println!(
        "partitions rebalanced {:?} after the kill",
        killed.elapsed()
    );
    for n in [0, 1] {
        let base = c.nodes[n].api_base();
        for rid in &acked {
            let url = format!("{base}/api/v1/traces/{rid}");
            let found = wait_for(
                || {
                    let (code, t) = get_json(&url);
                    code == 200
                        && t.get("partial").is_none()
                        && t["logs"].as_array().map_or(0, |a| a.len()) == 1
                },
                Duration::from_secs(60),
            );
            let (code, t) = get_json(&url);
            assert!(found, "{rid}: {code} {t:#}\n{}", c.nodes[n].output());
        }
    }
    println!(
        "{} acknowledged records whole on both survivors {:?} after the kill",
        acked.len(),
        killed.elapsed()
    );
    // The metric sample the dead node acknowledged is read through both survivors.
    for n in [0, 1] {
        let q = format!(
            "{}/api/v1/metrics/query?name=disk.free&agg=max&step=60s",
            c.nodes[n].api_base()
        );
        let (code, r) = get_json(&q);
        assert_eq!(code, 200, "{r:#}");
        assert!(r.get("partial").is_none(), "{r:#}");
        let last = r["series"][0]["points"]
            .as_array()
            .and_then(|p| p.last().cloned());
        assert_eq!(
            last.map(|p| p[1].clone()),
            Some(serde_json::json!(42.0)),
            "{r:#}"
        );
    }

    // The killed node comes back, rebuilds what it takes over from the stream, answers whole.
    c.nats.restart(2);
    c.nodes[2].restart();
    c.wait_balanced(&[0, 1, 2]);
    let last = acked.last().unwrap();
    let (code, t) = get_json(&format!("{}/api/v1/traces/{last}", c.nodes[2].api_base()));
    assert_eq!(code, 200, "{t:#}");
    assert_eq!(t["logs"].as_array().map_or(0, |a| a.len()), 1);
}

#[test]
fn an_answer_without_a_live_owner_for_some_partitions_says_which() {
    // Long leases: the dead nodes' partitions stay theirs, so the survivor cannot read them.
    let mut c = Nodes::start(60_000);
    let (_, s) = get_json(&format!("{}/api/v1/cluster", c.nodes[2].api_base()));
    let held: HashSet<u64> = s["partition_owners"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["owners"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["node"] == "n2")
        })
        .map(|p| p["partition"].as_u64().unwrap())
        .collect();
    assert!(held.len() < PARTITIONS as usize, "{s:#}");
    c.nodes[0].kill9();
    c.nodes[1].kill9();
    let url = format!("{}/api/v1/logs?limit=10", c.nodes[2].api_base());
    let (code, body) = get_json(&url);
    assert_eq!(code, 200, "{body:#}");
    assert_eq!(body["partial"], true, "{body:#}");
    let missing: HashSet<u64> = body["missing_partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    let expected: HashSet<u64> = (0..PARTITIONS as u64)
        .filter(|p| !held.contains(p))
        .collect();
    assert_eq!(missing, expected, "{body:#}");
    // Metric reads go to every partition too: the same ones are named.
    let (code, body) = get_json(&format!("{}/api/v1/metrics/names", c.nodes[2].api_base()));
    assert_eq!(code, 200, "{body:#}");
    assert_eq!(body["partial"], true, "{body:#}");
    let missing: HashSet<u64> = body["missing_partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert_eq!(missing, expected, "{body:#}");
}
