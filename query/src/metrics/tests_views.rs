//! Tests of service health and the dependency graph on series made from samples.

#![allow(clippy::unwrap_used)]

use super::deps::{EdgeSeries, dependencies};
use super::services::{SpanSeries, operations_health, services_health};
use super::tests::ser;
use skein_model::metric::MetricKind;
use skein_store::tsdb::SelectedSeries;

const NOW: i64 = 2_000_000_000;

/// A series sampled every 10 s from `from_s` seconds before NOW to NOW, value `f(i)`.
fn every_10s(
    name: &str,
    labels: &[(&str, &str)],
    from_s: i64,
    f: impl Fn(i64) -> f64,
) -> SelectedSeries {
    let kind = if name.ends_with("_bucket") {
        MetricKind::Histogram
    } else {
        MetricKind::Counter
    };
    let n = from_s / 10;
    let samples: Vec<(i64, f64)> = (0..=n)
        .map(|i| (NOW - from_s * 1000 + i * 10_000, f(i)))
        .collect();
    ser(name, labels, kind, &samples)
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

fn span_series() -> SpanSeries {
    let charge = [("service", "pay"), ("operation", "charge")];
    let refund = [("service", "pay"), ("operation", "refund")];
    let add = [("service", "cart"), ("operation", "add")];
    let b = "skein.span.duration_bucket";
    let bucket = |op: &[(&str, &str)], le: &'static str, per: f64| {
        let mut l = op.to_vec();
        l.push(("le", le));
        every_10s(b, &l, 400, move |i| per * i as f64)
    };
    let old = ser(
        "skein.span.calls",
        &[("service", "old"), ("operation", "x")],
        MetricKind::Counter,
        &[(NOW - 7_200_000, 1.0), (NOW - 7_190_000, 2.0)],
    );
    SpanSeries {
        calls: vec![
            every_10s("skein.span.calls", &charge, 400, |i| 2.0 * i as f64),
            every_10s("skein.span.calls", &refund, 400, |i| i as f64),
            every_10s("skein.span.calls", &add, 400, |i| 5.0 * i as f64),
            old,
        ],
        errors: vec![every_10s("skein.span.errors", &charge, 400, |i| i as f64)],
        buckets: vec![
            bucket(&charge, "100", 2.0),
            bucket(&charge, "1000", 2.0),
            bucket(&charge, "+Inf", 2.0),
            bucket(&refund, "100", 0.0),
            bucket(&refund, "1000", 1.0),
            bucket(&refund, "+Inf", 1.0),
        ],
        p99: vec![every_10s(
            "skein.span.duration.p99",
            &[("service", "pay")],
            400,
            |_| 500.0,
        )],
    }
}

#[test]
fn services_sum_their_operations_over_the_window() {
    let s = services_health(&span_series(), NOW, 60_000).unwrap();
    let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["cart", "pay"]); // "old" had no sample in the last hour
    let pay = &s[1];
    assert_eq!((pay.calls, pay.errors), (18, 6));
    assert!((pay.rate - 0.3).abs() < 1e-9);
    assert!(close(pay.error_rate, 1.0 / 3.0));
    // Summed buckets: le100 12, le1000 18, +Inf 18.
    assert!(close(pay.p50_ms, 75.0), "{:?}", pay.p50_ms);
    assert!(close(
        pay.p99_ms,
        100.0 + 900.0 * (0.99 * 18.0 - 12.0) / 6.0
    ));
    assert_eq!(pay.recent.len(), 30);
    assert_eq!(pay.recent[29].ts_ms, NOW);
    assert_eq!(pay.recent[0].ts_ms, NOW - 290_000);
    for p in &pay.recent {
        assert!((p.rate - 0.3).abs() < 1e-9);
        assert!(close(p.error_rate, 1.0 / 3.0));
        assert!(close(p.p99_ms, 500.0));
    }
    let cart = &s[0];
    assert_eq!((cart.calls, cart.errors), (30, 0));
    assert!(close(cart.error_rate, 0.0));
    assert_eq!(cart.p50_ms, None); // no duration buckets
    assert_eq!(cart.recent[0].p99_ms, None);
}

#[test]
fn operations_of_one_service() {
    let ops = operations_health("pay", &span_series(), NOW, 60_000)
        .unwrap()
        .unwrap();
    let names: Vec<&str> = ops.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, vec!["charge", "refund"]);
    let c = &ops[0];
    assert_eq!((c.calls, c.errors), (12, 6));
    assert!((c.rate - 0.2).abs() < 1e-9);
    assert!(close(c.error_rate, 0.5));
    assert!(close(c.p50_ms, 50.0));
    assert!(close(c.p99_ms, 99.0));
    let r = &ops[1];
    assert_eq!((r.calls, r.errors), (6, 0));
    assert!(close(r.p50_ms, 550.0));
    assert!(close(r.p90_ms, 100.0 + 900.0 * 5.4 / 6.0));
    assert!(
        operations_health("nope", &span_series(), NOW, 60_000)
            .unwrap()
            .is_none()
    );
}

#[test]
fn dependency_graph_over_a_range() {
    let edge = |caller, callee, kind, t| {
        [
            ("caller", caller),
            ("callee", callee),
            ("kind", kind),
            ("callee_type", t),
        ]
    };
    let fp = edge("frontend", "pay", "sync", "service");
    let pg = edge("pay", "postgres", "sync", "database");
    let pk = edge("pay", "kafka", "async", "messaging");
    let bucket = |le: &'static str| {
        let mut l = fp.to_vec();
        l.push(("le", le));
        every_10s("skein.edge.duration_bucket", &l, 1200, |i| i as f64)
    };
    let input = EdgeSeries {
        calls: vec![
            every_10s("skein.edge.calls", &fp, 1200, |i| i as f64),
            every_10s("skein.edge.calls", &pg, 1200, |i| 3.0 * i as f64),
            every_10s("skein.edge.calls", &pk, 1200, |_| 7.0),
        ],
        errors: vec![every_10s("skein.edge.errors", &pg, 1200, |i| i as f64)],
        buckets: vec![bucket("50"), bucket("+Inf")],
        span_calls: vec![
            every_10s(
                "skein.span.calls",
                &[("service", "lonely"), ("operation", "x")],
                1200,
                |i| i as f64,
            ),
            every_10s(
                "skein.span.calls",
                &[("service", "frontend"), ("operation", "y")],
                1200,
                |i| i as f64,
            ),
        ],
    };
    let d = dependencies(&input, NOW - 900_000, NOW).unwrap();
    assert_eq!((d.start_ms, d.end_ms), (NOW - 900_000, NOW));
    // The kafka edge had no calls in the range: left out, and so is its node.
    assert_eq!(d.edges.len(), 2);
    let e0 = &d.edges[0];
    assert_eq!(
        (e0.caller.as_str(), e0.callee.as_str()),
        ("frontend", "pay")
    );
    assert_eq!((e0.calls, e0.errors, e0.error_rate), (90, 0, 0.0));
    assert!(close(e0.p50_ms, 25.0));
    assert!(close(e0.p99_ms, 50.0 * 0.99));
    let e1 = &d.edges[1];
    assert_eq!(
        (
            e1.callee.as_str(),
            e1.kind.as_str(),
            e1.callee_type.as_str()
        ),
        ("postgres", "sync", "database")
    );
    assert_eq!((e1.calls, e1.errors), (270, 90));
    assert!((e1.error_rate - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(e1.p50_ms, None);
    let nodes: Vec<(&str, &str, bool, u64)> = d
        .nodes
        .iter()
        .map(|n| {
            (
                n.name.as_str(),
                n.node_type.as_str(),
                n.instrumented,
                n.calls,
            )
        })
        .collect();
    assert_eq!(
        nodes,
        vec![
            ("frontend", "service", true, 0),
            ("lonely", "service", true, 0),
            ("pay", "service", true, 90),
            ("postgres", "database", false, 270),
        ]
    );
}
