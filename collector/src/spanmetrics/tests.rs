//! Tests of the span-derived metrics, with spans built by hand and time driven by the tests.
#![allow(clippy::unwrap_used)]

use super::*;
use skein_model::SpanLink;
use skein_model::metric::{Labels, MetricKind};
use std::collections::HashSet;

const T0: i64 = 1_700_000_000_000;
const SEC: i64 = 1_000;

fn span(
    trace: &str,
    id: &str,
    parent: &str,
    service: &str,
    name: &str,
    kind: &str,
    ms: f64,
) -> Span {
    let duration_ns = (ms * 1e6) as u64;
    Span {
        trace_id: trace.into(),
        span_id: id.into(),
        parent_span_id: parent.into(),
        service: service.into(),
        name: name.into(),
        kind: kind.into(),
        start_unix_nano: 1,
        end_unix_nano: 1 + duration_ns,
        duration_ns,
        status_code: "unset".into(),
        ..Default::default()
    }
}

fn error(mut s: Span) -> Span {
    s.status_code = "error".into();
    s
}

fn attrs(mut s: Span, pairs: &[(&str, &str)]) -> Span {
    for (k, v) in pairs {
        s.attributes
            .insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    s
}

fn link(mut s: Span, trace: &str, id: &str) -> Span {
    s.links.push(SpanLink {
        trace_id: trace.into(),
        span_id: id.into(),
        attributes: Default::default(),
    });
    s
}

/// Checks the batch lists each (name, labels) once, with one sample at `ts`.
fn check(b: &MetricBatch, ts: i64) {
    let mut seen = HashSet::new();
    for s in &b.series {
        assert!(
            seen.insert((s.name.clone(), s.labels.clone())),
            "{} {} twice",
            s.name,
            s.labels
        );
    }
    assert_eq!(b.samples.len(), b.series.len());
    for (i, s) in b.samples.iter().enumerate() {
        assert_eq!(s.series as usize, i);
        assert_eq!(s.ts_ms, ts);
    }
}

fn get(b: &MetricBatch, name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
    let labels = Labels::from_pairs(pairs.iter().copied());
    let i = b
        .series
        .iter()
        .position(|s| s.name == name && s.labels == labels)?;
    b.samples
        .iter()
        .find(|s| s.series as usize == i)
        .map(|s| s.value)
}

fn op(service: &str, operation: &str) -> Vec<(&'static str, String)> {
    vec![("service", service.into()), ("operation", operation.into())]
}

fn val(b: &MetricBatch, name: &str, labels: &[(&str, String)]) -> Option<f64> {
    let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    get(b, name, &pairs)
}

fn with_le(labels: &[(&'static str, String)], le: &str) -> Vec<(&'static str, String)> {
    let mut v = labels.to_vec();
    v.push(("le", le.into()));
    v
}

fn edge(caller: &str, callee: &str, kind: &str, callee_type: &str) -> Vec<(&'static str, String)> {
    vec![
        ("caller", caller.into()),
        ("callee", callee.into()),
        ("kind", kind.into()),
        ("callee_type", callee_type.into()),
    ]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= b * 0.01
}

/// gateway(server) → client → order(server) → client → payment(server, error).
fn three_services(trace: &str) -> Vec<Span> {
    vec![
        span(trace, "g1", "", "gateway", "GET /checkout", "server", 100.0),
        span(trace, "g2", "g1", "gateway", "POST /order", "client", 80.0),
        span(trace, "o1", "g2", "order", "POST /order", "server", 70.0),
        span(trace, "o2", "o1", "order", "POST /pay", "client", 40.0),
        error(span(
            trace,
            "p1",
            "o2",
            "payment",
            "POST /pay",
            "server",
            30.0,
        )),
    ]
}

#[test]
fn three_service_trace() {
    let mut d = Deriver::new(DeriveConfig::default());
    d.observe(&three_services("t1"), T0);
    let b = d.flush(T0 + 10 * SEC);
    check(&b, T0 + 10 * SEC);

    let gw = op("gateway", "GET /checkout");
    let ord = op("order", "POST /order");
    let pay = op("payment", "POST /pay");
    assert_eq!(val(&b, "skein.span.calls", &gw), Some(1.0));
    assert_eq!(val(&b, "skein.span.errors", &gw), Some(0.0));
    assert_eq!(val(&b, "skein.span.calls", &ord), Some(1.0));
    assert_eq!(val(&b, "skein.span.calls", &pay), Some(1.0));
    assert_eq!(val(&b, "skein.span.errors", &pay), Some(1.0));
    // The gateway's client span is neither a server span nor a root: not a call.
    assert_eq!(
        val(&b, "skein.span.calls", &op("gateway", "POST /order")),
        None
    );
    assert_eq!(d.stats().red_series, 3);

    assert_eq!(val(&b, "skein.span.duration_count", &pay), Some(1.0));
    assert!(close(
        val(&b, "skein.span.duration_sum", &pay).unwrap(),
        30.0
    ));
    assert_eq!(
        val(&b, "skein.span.duration_bucket", &with_le(&pay, "25")),
        Some(0.0)
    );
    assert_eq!(
        val(&b, "skein.span.duration_bucket", &with_le(&pay, "35")),
        Some(1.0)
    );
    assert_eq!(
        val(&b, "skein.span.duration_bucket", &with_le(&pay, "+Inf")),
        Some(1.0)
    );
    assert!(close(
        val(&b, "skein.span.duration.p99", &gw).unwrap(),
        100.0
    ));
    assert!(close(
        val(&b, "skein.span.duration.p99", &pay).unwrap(),
        30.0
    ));
    assert!(close(
        val(&b, "skein.span.duration.p50", &ord).unwrap(),
        70.0
    ));
    let gw_service = [("service", "gateway".to_string())];
    assert!(close(
        val(&b, "skein.span.duration.p99", &gw_service).unwrap(),
        100.0
    ));

    let go = edge("gateway", "order", "sync", "service");
    let op_ = edge("order", "payment", "sync", "service");
    assert_eq!(val(&b, "skein.edge.calls", &go), Some(1.0));
    assert_eq!(val(&b, "skein.edge.errors", &go), Some(0.0));
    assert_eq!(val(&b, "skein.edge.calls", &op_), Some(1.0));
    assert_eq!(val(&b, "skein.edge.errors", &op_), Some(1.0));
    // Timed by the client span: 80 ms and 40 ms.
    assert!(close(
        val(&b, "skein.edge.duration_sum", &go).unwrap(),
        80.0
    ));
    assert_eq!(
        val(&b, "skein.edge.duration_bucket", &with_le(&go, "75")),
        Some(0.0)
    );
    assert_eq!(
        val(&b, "skein.edge.duration_bucket", &with_le(&go, "100")),
        Some(1.0)
    );
    assert!(close(
        val(&b, "skein.edge.duration_sum", &op_).unwrap(),
        40.0
    ));
    assert_eq!(val(&b, "skein.edge.duration_count", &op_), Some(1.0));
    let s = d.stats();
    assert_eq!((s.spans, s.edges_matched, s.edge_series), (5, 2, 2));

    // After the join window the matched clients leave quietly.
    let b = d.flush(T0 + 40 * SEC);
    check(&b, T0 + 40 * SEC);
    let s = d.stats();
    assert_eq!(
        (s.pending, s.clients_unmatched, s.edges_uninstrumented),
        (0, 0, 0)
    );
    assert_eq!(val(&b, "skein.edge.calls", &go), Some(1.0));
}

#[test]
fn series_kinds_units_and_le_labels() {
    let mut d = Deriver::new(DeriveConfig::default());
    d.observe(&three_services("t1"), T0);
    let b = d.flush(T0);
    let pay = Labels::from_pairs([("service", "payment"), ("operation", "POST /pay")]);
    let les: Vec<&str> = b
        .series
        .iter()
        .filter(|s| {
            s.name == "skein.span.duration_bucket"
                && s.labels.with("le", "x") == pay.with("le", "x")
        })
        .map(|s| s.labels.get("le").unwrap())
        .collect();
    assert_eq!(les.len(), 28);
    assert_eq!(&les[..4], &["0.25", "0.5", "1", "2.5"]);
    assert_eq!(&les[25..], &["30000", "60000", "+Inf"]);
    for s in &b.series {
        let (kind, unit) = match s.name.as_str() {
            "skein.span.calls" | "skein.span.errors" | "skein.edge.calls" | "skein.edge.errors" => {
                (MetricKind::Counter, "1")
            }
            n if n.contains(".duration_") => (MetricKind::Histogram, "ms"),
            n if n.starts_with("skein.span.duration.p") => (MetricKind::Gauge, "ms"),
            n => panic!("unexpected series {n}"),
        };
        assert_eq!(
            (s.kind, s.unit.as_str(), s.delta),
            (kind, unit, false),
            "{}",
            s.name
        );
    }
}

#[test]
fn server_before_its_client() {
    let mut d = Deriver::new(DeriveConfig::default());
    let spans = three_services("t1");
    // payment's server first, then order's client a few seconds later.
    d.observe(&spans[4..5], T0);
    assert_eq!(d.stats().pending, 1);
    d.observe(&spans[3..4], T0 + 5 * SEC);
    let b = d.flush(T0 + 10 * SEC);
    check(&b, T0 + 10 * SEC);
    let e = edge("order", "payment", "sync", "service");
    assert_eq!(val(&b, "skein.edge.calls", &e), Some(1.0));
    assert_eq!(val(&b, "skein.edge.errors", &e), Some(1.0));
    assert_eq!(d.stats().edges_matched, 1);
}

#[test]
fn waiting_server_dropped_after_join_window() {
    let mut d = Deriver::new(DeriveConfig::default());
    let spans = three_services("t1");
    d.observe(&spans[4..5], T0);
    d.flush(T0 + 30 * SEC);
    assert_eq!(d.stats().pending, 0);
    d.observe(&spans[3..4], T0 + 31 * SEC);
    let b = d.flush(T0 + 40 * SEC);
    assert_eq!(
        val(
            &b,
            "skein.edge.calls",
            &edge("order", "payment", "sync", "service")
        ),
        None
    );
    d.flush(T0 + 70 * SEC);
    assert_eq!(d.stats().clients_unmatched, 1);
}

#[test]
fn database_client_becomes_an_edge_after_the_join_window() {
    let mut d = Deriver::new(DeriveConfig::default());
    let q = attrs(
        span("t1", "c1", "o1", "order", "SELECT orders", "client", 12.0),
        &[("db.system", "postgresql"), ("server.address", "db-1")],
    );
    d.observe(&[error(q)], T0);
    let e = edge("order", "db-1", "sync", "database");
    for t in [10, 20] {
        let b = d.flush(T0 + t * SEC);
        assert_eq!(val(&b, "skein.edge.calls", &e), None, "at {t} s");
    }
    let b = d.flush(T0 + 30 * SEC);
    check(&b, T0 + 30 * SEC);
    assert_eq!(val(&b, "skein.edge.calls", &e), Some(1.0));
    assert_eq!(val(&b, "skein.edge.errors", &e), Some(1.0));
    assert!(close(val(&b, "skein.edge.duration_sum", &e).unwrap(), 12.0));
    let s = d.stats();
    assert_eq!(
        (s.edges_uninstrumented, s.edges_matched, s.pending),
        (1, 0, 0)
    );
}

#[test]
fn uninstrumented_peers_by_attributes() {
    let mut d = Deriver::new(DeriveConfig::default());
    d.observe(
        &[
            attrs(
                span("t1", "a", "x", "shop", "charge", "client", 5.0),
                &[("peer.service", "stripe")],
            ),
            attrs(
                span("t1", "b", "x", "shop", "publish", "producer", 1.0),
                &[
                    ("messaging.system", "kafka"),
                    ("messaging.destination.name", "orders"),
                ],
            ),
            attrs(
                span("t1", "c", "x", "shop", "GET", "client", 1.0),
                &[("url.full", "https://api.example.com:443/v1")],
            ),
            span("t1", "d", "x", "shop", "mystery", "client", 1.0),
        ],
        T0,
    );
    let b = d.flush(T0 + 30 * SEC);
    check(&b, T0 + 30 * SEC);
    assert_eq!(
        val(
            &b,
            "skein.edge.calls",
            &edge("shop", "stripe", "sync", "external")
        ),
        Some(1.0)
    );
    assert_eq!(
        val(
            &b,
            "skein.edge.calls",
            &edge("shop", "orders", "async", "messaging")
        ),
        Some(1.0)
    );
    assert_eq!(
        val(
            &b,
            "skein.edge.calls",
            &edge("shop", "api.example.com", "sync", "external")
        ),
        Some(1.0)
    );
    let s = d.stats();
    assert_eq!((s.edges_uninstrumented, s.clients_unmatched), (3, 1));
}

#[test]
fn producer_to_consumer_is_async() {
    let mut d = Deriver::new(DeriveConfig::default());
    let producer = attrs(
        span("t1", "p1", "s1", "shop", "orders publish", "producer", 2.0),
        &[("messaging.system", "kafka")],
    );
    let consumer = span(
        "t1",
        "c1",
        "p1",
        "mailer",
        "orders process",
        "consumer",
        50.0,
    );
    d.observe(&[consumer, producer], T0);
    let b = d.flush(T0 + 40 * SEC);
    check(&b, T0 + 40 * SEC);
    let e = edge("shop", "mailer", "async", "service");
    assert_eq!(val(&b, "skein.edge.calls", &e), Some(1.0));
    assert!(close(val(&b, "skein.edge.duration_sum", &e).unwrap(), 2.0));
    // Matched, so no edge to kafka once it expires.
    assert_eq!(d.stats().edges_uninstrumented, 0);
    assert_eq!(
        val(&b, "skein.span.calls", &op("mailer", "orders process")),
        Some(1.0)
    );
}

#[test]
fn consumer_linking_a_producer_in_another_trace_is_async() {
    let mut d = Deriver::new(DeriveConfig::default());
    let producer = attrs(
        span("t1", "p1", "s1", "shop", "orders publish", "producer", 3.0),
        &[("messaging.system", "kafka")],
    );
    d.observe(&[producer], T0);
    let consumer = link(
        span("t2", "c1", "", "mailer", "orders process", "consumer", 9.0),
        "t1",
        "p1",
    );
    d.observe(&[consumer], T0 + SEC);
    let b = d.flush(T0 + 40 * SEC);
    check(&b, T0 + 40 * SEC);
    let e = edge("shop", "mailer", "async", "service");
    assert_eq!(val(&b, "skein.edge.calls", &e), Some(1.0));
    let s = d.stats();
    assert_eq!((s.edges_matched, s.edges_uninstrumented), (1, 0));
}

#[test]
fn internal_span_linking_another_services_client_is_a_link() {
    let mut d = Deriver::new(DeriveConfig::default());
    // The linking span comes first: it waits for the client.
    let internal = link(
        span("t2", "i1", "r1", "audit", "record", "internal", 1.0),
        "t1",
        "c1",
    );
    d.observe(&[internal], T0);
    let client = error(span("t1", "c1", "s1", "api", "call", "client", 7.0));
    d.observe(&[client], T0 + SEC);
    let b = d.flush(T0 + 10 * SEC);
    check(&b, T0 + 10 * SEC);
    let e = edge("api", "audit", "link", "service");
    assert_eq!(val(&b, "skein.edge.calls", &e), Some(1.0));
    assert_eq!(val(&b, "skein.edge.errors", &e), Some(1.0));
    // A link does not say what the client called: without hints it is unmatched.
    d.flush(T0 + 40 * SEC);
    assert_eq!(d.stats().clients_unmatched, 1);
}

#[test]
fn a_client_is_matched_once_and_never_with_itself() {
    let mut d = Deriver::new(DeriveConfig::default());
    d.observe(
        &[
            span("t1", "c1", "r", "a", "call", "client", 1.0),
            span("t1", "s1", "c1", "b", "serve", "server", 1.0),
            span("t1", "s2", "c1", "b", "serve", "server", 1.0),
            span("t1", "c2", "r", "a", "self", "client", 1.0),
            span("t1", "s3", "c2", "a", "self", "server", 1.0),
        ],
        T0,
    );
    let b = d.flush(T0 + 40 * SEC);
    check(&b, T0 + 40 * SEC);
    assert_eq!(
        val(&b, "skein.edge.calls", &edge("a", "b", "sync", "service")),
        Some(1.0)
    );
    assert_eq!(d.stats().edge_series, 1);
    assert_eq!(d.stats().clients_unmatched, 0);
    assert_eq!(val(&b, "skein.span.calls", &op("b", "serve")), Some(2.0));
}

#[test]
fn counters_are_cumulative_and_idle_series_forgotten() {
    let mut d = Deriver::new(DeriveConfig::default());
    let gw = op("gateway", "GET /checkout");
    let go = edge("gateway", "order", "sync", "service");
    d.observe(&three_services("t1"), T0);
    let b = d.flush(T0 + 10 * SEC);
    assert_eq!(val(&b, "skein.span.calls", &gw), Some(1.0));
    d.observe(&three_services("t2"), T0 + 15 * SEC);
    let b = d.flush(T0 + 20 * SEC);
    assert_eq!(val(&b, "skein.span.calls", &gw), Some(2.0));
    assert_eq!(val(&b, "skein.span.duration_count", &gw), Some(2.0));
    assert_eq!(val(&b, "skein.edge.calls", &go), Some(2.0));
    assert!(val(&b, "skein.span.duration.p99", &gw).is_some());

    // No call in this interval: counters still there, no quantiles.
    let b = d.flush(T0 + 30 * SEC);
    check(&b, T0 + 30 * SEC);
    assert_eq!(val(&b, "skein.span.calls", &gw), Some(2.0));
    assert_eq!(val(&b, "skein.edge.calls", &go), Some(2.0));
    assert_eq!(val(&b, "skein.span.duration.p99", &gw), None);
    assert_eq!(
        val(
            &b,
            "skein.span.duration.p99",
            &[("service", "gateway".into())]
        ),
        None
    );

    // Still there just before idle_after, gone at it.
    let b = d.flush(T0 + 15 * SEC + 299 * SEC);
    assert_eq!(val(&b, "skein.span.calls", &gw), Some(2.0));
    let b = d.flush(T0 + 15 * SEC + 300 * SEC);
    assert!(b.is_empty());
    let s = d.stats();
    assert_eq!((s.red_series, s.edge_series), (0, 0));

    // A comeback starts from zero (a counter reset, which readers handle).
    d.observe(&three_services("t3"), T0 + 400 * SEC);
    let b = d.flush(T0 + 410 * SEC);
    assert_eq!(val(&b, "skein.span.calls", &gw), Some(1.0));
}

#[test]
fn max_series_bounds_operations_and_edges() {
    let cfg = DeriveConfig {
        max_series: 2,
        ..DeriveConfig::default()
    };
    let mut d = Deriver::new(cfg);
    d.observe(
        &[
            span("t1", "a", "", "s", "op1", "server", 1.0),
            span("t1", "b", "", "s", "op2", "server", 1.0),
            span("t1", "c", "", "s", "op3", "server", 1.0),
            span("t1", "d", "", "s", "op1", "server", 1.0),
        ],
        T0,
    );
    let b = d.flush(T0 + SEC);
    check(&b, T0 + SEC);
    assert_eq!(val(&b, "skein.span.calls", &op("s", "op1")), Some(2.0));
    assert_eq!(val(&b, "skein.span.calls", &op("s", "op3")), None);
    assert_eq!(d.stats().red_series, 2);
    assert_eq!(d.stats().series_dropped, 1);

    // Three edges x→y1, x→y2, x→y3: the third is refused.
    for i in 1..=3 {
        let c = format!("c{i}");
        d.observe(
            &[
                span("t2", &c, "r", "x", "call", "client", 1.0),
                span(
                    "t2",
                    &format!("s{i}"),
                    &c,
                    &format!("y{i}"),
                    "op1",
                    "server",
                    1.0,
                ),
            ],
            T0 + 2 * SEC,
        );
    }
    let b = d.flush(T0 + 3 * SEC);
    check(&b, T0 + 3 * SEC);
    assert_eq!(d.stats().edge_series, 2);
    assert_eq!(
        val(&b, "skein.edge.calls", &edge("x", "y3", "sync", "service")),
        None
    );
    // One refused edge, and the three new operations y1..y3/op1 refused too.
    assert_eq!(d.stats().series_dropped, 1 + 1 + 3);
}

#[test]
fn max_pending_bounds_both_join_maps() {
    let cfg = DeriveConfig {
        max_pending: 2,
        ..DeriveConfig::default()
    };
    let mut d = Deriver::new(cfg);
    // Three clients: the oldest is evicted and never joins.
    d.observe(&[span("t1", "c1", "r", "a", "call", "client", 1.0)], T0);
    d.observe(&[span("t1", "c2", "r", "a", "call", "client", 1.0)], T0 + 1);
    d.observe(&[span("t1", "c3", "r", "a", "call", "client", 1.0)], T0 + 2);
    let s = d.stats();
    assert_eq!((s.pending, s.pending_evicted), (2, 1));
    d.observe(
        &[
            span("t1", "s1", "c1", "b", "serve", "server", 1.0),
            span("t1", "s3", "c3", "b", "serve", "server", 1.0),
        ],
        T0 + 3,
    );
    let b = d.flush(T0 + SEC);
    assert_eq!(
        val(&b, "skein.edge.calls", &edge("a", "b", "sync", "service")),
        Some(1.0)
    );
    // s1 waits for c1, which is gone: the waiting map holds it.
    assert_eq!(d.stats().pending, 3);

    // Three servers waiting for parents that never come: one more eviction.
    d.observe(
        &[
            span("t9", "x1", "p1", "b", "serve", "server", 1.0),
            span("t9", "x2", "p2", "b", "serve", "server", 1.0),
        ],
        T0 + 2 * SEC,
    );
    let s = d.stats();
    assert_eq!(s.pending_evicted, 2);
    assert_eq!(s.pending, 4);
    d.flush(T0 + 40 * SEC);
    assert_eq!(d.stats().pending, 0);
}

#[test]
fn quantiles_of_known_durations() {
    let mut d = Deriver::new(DeriveConfig::default());
    let spans: Vec<Span> = (1..=100)
        .map(|i| span("t1", &format!("s{i}"), "", "q", "op", "server", i as f64))
        .collect();
    d.observe(&spans, T0);
    let b = d.flush(T0 + 10 * SEC);
    check(&b, T0 + 10 * SEC);
    let l = op("q", "op");
    let svc = [("service", "q".to_string())];
    for labels in [&l[..], &svc[..]] {
        assert!(close(
            val(&b, "skein.span.duration.p50", labels).unwrap(),
            50.0
        ));
        assert!(close(
            val(&b, "skein.span.duration.p90", labels).unwrap(),
            90.0
        ));
        assert!(close(
            val(&b, "skein.span.duration.p95", labels).unwrap(),
            95.0
        ));
        assert!(close(
            val(&b, "skein.span.duration.p99", labels).unwrap(),
            99.0
        ));
    }
    assert_eq!(
        val(&b, "skein.span.duration_bucket", &with_le(&l, "50")),
        Some(50.0)
    );
    assert_eq!(
        val(&b, "skein.span.duration_bucket", &with_le(&l, "75")),
        Some(75.0)
    );
    assert_eq!(
        val(&b, "skein.span.duration_bucket", &with_le(&l, "100")),
        Some(100.0)
    );
    assert_eq!(
        val(&b, "skein.span.duration_bucket", &with_le(&l, "+Inf")),
        Some(100.0)
    );
    assert!(close(
        val(&b, "skein.span.duration_sum", &l).unwrap(),
        5050.0
    ));
}

#[test]
fn service_quantiles_merge_its_operations() {
    let mut d = Deriver::new(DeriveConfig::default());
    let mut spans: Vec<Span> = (1..=50)
        .map(|i| {
            span(
                "t1",
                &format!("a{i}"),
                "",
                "svc",
                "fast",
                "server",
                i as f64,
            )
        })
        .collect();
    spans.extend((51..=100).map(|i| {
        span(
            "t1",
            &format!("b{i}"),
            "",
            "svc",
            "slow",
            "consumer",
            i as f64,
        )
    }));
    // Another service between them in name order must not mix in.
    spans.push(span("t1", "z", "", "svd", "other", "server", 5000.0));
    d.observe(&spans, T0);
    let b = d.flush(T0);
    check(&b, T0);
    let svc = [("service", "svc".to_string())];
    assert!(close(
        val(&b, "skein.span.duration.p50", &svc).unwrap(),
        50.0
    ));
    assert!(close(
        val(&b, "skein.span.duration.p99", &svc).unwrap(),
        99.0
    ));
    assert!(close(
        val(&b, "skein.span.duration.p99", &op("svc", "fast")).unwrap(),
        50.0
    ));
    let svd = [("service", "svd".to_string())];
    assert!(close(
        val(&b, "skein.span.duration.p50", &svd).unwrap(),
        5000.0
    ));
}

#[test]
fn long_names_become_label_values_cut_at_a_char_boundary() {
    // A span name and a service name far over a label's length, with a two-byte character
    // across the cut: every derived label value is at most the bound and valid UTF-8.
    let long = format!(
        "{}é{}",
        "a".repeat(MAX_LABEL_VALUE_BYTES - 1),
        "b".repeat(70_000)
    );
    let mut d = Deriver::new(DeriveConfig::default());
    d.observe(
        &[
            span("t1", "c", "r", &long, "call", "client", 1.0),
            attrs(
                span("t1", "c2", "r", &long, "q", "client", 1.0),
                &[("peer.service", long.as_str())],
            ),
            span("t1", "s", "c", "svc", &long, "server", 1.0),
        ],
        T0,
    );
    let b = d.flush(T0 + SEC);
    check(&b, T0 + SEC);
    let cut = "a".repeat(MAX_LABEL_VALUE_BYTES - 1);
    assert_eq!(val(&b, "skein.span.calls", &op("svc", &cut)), Some(1.0));
    let mut saw_edge = false;
    for s in &b.series {
        for (k, v) in s.labels.iter() {
            assert!(
                v.len() <= MAX_LABEL_VALUE_BYTES,
                "{} {k}: {} bytes",
                s.name,
                v.len()
            );
            saw_edge |= k == "caller" && v == cut;
        }
    }
    assert!(saw_edge, "the caller service is cut the same way");
}
