//! Tests of selection: lookback edges, staleness, offset, `@`, subqueries, range queries and
//! limits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::Limits;
use super::tests_support::*;
use crate::promql::source::RawSeries;
use crate::promql::{ErrorType, QueryValue};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// `metric` sampled every 10 s from 0: 0, 1, 2, ... (Prometheus's `0+1x1000`).
fn counting() -> RawSeries {
    ramp("metric", &[("job", "1")], 10, 0.0, 1.0, 1001)
}

#[test]
fn promql_instant_selector_takes_newest_sample_in_lookback() {
    let e = engine(vec![series("m", &[], 0, 10, &[1.0, 2.0, 3.0])]);
    // Between samples: the newest one at or before t.
    assert_vector(&vector(&e, "m", 15.0), &[("{__name__=\"m\"}", 2.0)]);
    // Exactly on a sample.
    assert_vector(&vector(&e, "m", 20.0), &[("{__name__=\"m\"}", 3.0)]);
    // The last sample (20 s) is still seen 5 minutes later: the window is closed on the left.
    assert_vector(&vector(&e, "m", 320.0), &[("{__name__=\"m\"}", 3.0)]);
    // One millisecond later it is out of the window.
    assert_vector(&vector(&e, "m", 320.001), &[]);
    // Before the first sample there is nothing.
    assert_vector(&vector(&e, "m", -1.0), &[]);
}

#[test]
fn promql_lookback_is_configurable() {
    let limits = Limits {
        lookback_ms: 60_000,
        ..Limits::default()
    };
    let e = engine_with(vec![series("m", &[], 0, 10, &[7.0])], limits);
    assert_vector(&vector(&e, "m", 60.0), &[("{__name__=\"m\"}", 7.0)]);
    assert_vector(&vector(&e, "m", 61.0), &[]);
}

#[test]
fn promql_stale_marker_ends_a_series() {
    // Prometheus's staleness test: 0 1 stale 2 every 10 s.
    let e = engine(vec![series(
        "metric",
        &[],
        0,
        10,
        &[0.0, 1.0, stale(), 2.0],
    )]);
    assert_vector(
        &vector(&e, "metric", 10.0),
        &[("{__name__=\"metric\"}", 1.0)],
    );
    // The newest sample is the marker: nothing.
    assert_vector(&vector(&e, "metric", 20.0), &[]);
    assert_vector(&vector(&e, "metric", 25.0), &[]);
    assert_vector(
        &vector(&e, "metric", 30.0),
        &[("{__name__=\"metric\"}", 2.0)],
    );
    // Range selections drop markers: 0, 1, 2 in [−30 s, 30 s].
    assert_vector(
        &vector(&e, "count_over_time(metric[1m])", 30.0),
        &[("{}", 3.0)],
    );
    // Only the marker is in [10 s, 20 s] besides the sample at 10 s.
    assert_vector(
        &vector(&e, "count_over_time(metric[10s])", 20.0),
        &[("{}", 1.0)],
    );
    assert_vector(&vector(&e, "count_over_time(metric[1s])", 20.0), &[]);
    // In a range query the steps where the marker is newest have no point.
    let m = matrix(&e, "metric", 0, 40, 10);
    assert_eq!(
        m,
        vec![(
            "{__name__=\"metric\"}".to_string(),
            vec![(0, 0.0), (10, 1.0), (30, 2.0), (40, 2.0)]
        )]
    );
}

#[test]
fn promql_offset_shifts_the_evaluation_time() {
    let e = engine(vec![counting()]);
    // At 100 s the value is 10; 50 s earlier it was 5.
    assert_vector(
        &vector(&e, "metric offset 50s", 100.0),
        &[("{__name__=\"metric\", job=\"1\"}", 5.0)],
    );
    // A negative offset looks ahead.
    assert_vector(
        &vector(&e, "metric offset -50s", 100.0),
        &[("{__name__=\"metric\", job=\"1\"}", 15.0)],
    );
    // Range selector with offset: samples 30..=40 s → values 3 and 4 (window [30 s, 40 s]).
    assert_vector(
        &vector(&e, "sum_over_time(metric[10s] offset 60s)", 100.0),
        &[("{job=\"1\"}", 7.0)],
    );
}

#[test]
fn promql_at_modifier_fixes_the_time() {
    let e = engine(vec![counting()]);
    let l = "{__name__=\"metric\", job=\"1\"}";
    assert_vector(&vector(&e, "metric @ 100", 10.0), &[(l, 10.0)]);
    assert_vector(&vector(&e, "metric @ 100 offset 50s", 10.0), &[(l, 5.0)]);
    assert_vector(&vector(&e, "metric offset -50s @ 0", 10.0), &[(l, 5.0)]);
    // [0 s, 100 s] holds 0..=10: sum 55.
    assert_vector(
        &vector(&e, "sum_over_time(metric[100s] @ 100)", 25.0),
        &[("{job=\"1\"}", 55.0)],
    );
    // In a range query, @ start() / @ end() are the query's start and end on every step.
    let m = matrix(&e, "metric @ start()", 100, 300, 100);
    assert_eq!(
        m,
        vec![(l.to_string(), vec![(100, 10.0), (200, 10.0), (300, 10.0)])]
    );
    let m = matrix(&e, "metric @ end()", 100, 300, 100);
    assert_eq!(
        m,
        vec![(l.to_string(), vec![(100, 30.0), (200, 30.0), (300, 30.0)])]
    );
    // timestamp() of a selector with @ is the sample's own time.
    assert_vector(
        &vector(&e, "timestamp(metric @ 10)", 600.0),
        &[("{job=\"1\"}", 10.0)],
    );
}

#[test]
fn promql_subquery_steps_are_aligned_to_absolute_time() {
    let e = engine(vec![ramp("metric1", &[], 10, 0.0, 1.0, 1001)]);
    // Steps 970, 980, 990, 1000 (the window is closed): 97 + 98 + 99 + 100.
    assert_vector(
        &vector(&e, "sum_over_time(metric1[30s:10s])", 1000.0),
        &[("{}", 394.0)],
    );
    // With a 5 s step every value but the last (100 at 1000 s) is seen twice.
    assert_vector(
        &vector(&e, "sum_over_time(metric1[30s:5s])", 1000.0),
        &[("{}", 688.0)],
    );
    // offset 9s: the window is [971 s, 1001 s]; steps 980, 990, 1000 → 98 + 99 + 100.
    assert_vector(
        &vector(&e, "sum_over_time(metric1[30s:10s] offset 9s)", 1010.0),
        &[("{}", 297.0)],
    );
    // No step: Prometheus's default evaluation interval, 1 minute. Steps 1200 and 1260 s in
    // [1200 s, 1290 s]: 120 + 126.
    assert_vector(
        &vector(&e, "sum_over_time(metric1[90s:])", 1290.0),
        &[("{}", 246.0)],
    );
    // A subquery at the top of an instant query is a matrix of its steps.
    match e.instant("metric1[30s:10s]", 1_000_000).unwrap() {
        QueryValue::Matrix(m) => {
            assert_eq!(m.len(), 1);
            assert_eq!(
                m[0].points,
                vec![
                    (970_000, 97.0),
                    (980_000, 98.0),
                    (990_000, 99.0),
                    (1_000_000, 100.0)
                ]
            );
        }
        other => panic!("expected a matrix, got {other:?}"),
    }
}

#[test]
fn promql_subquery_in_range_query_matches_instant_queries() {
    // Each step of a range query sees the same aligned subquery steps as an instant query
    // at that time (steps at multiples of 20 s, whatever the outer step).
    let e = engine(vec![ramp("metric1", &[], 10, 0.0, 1.0, 1001)]);
    let q = "sum_over_time(metric1[45s:20s] offset 5s)";
    let m = matrix(&e, q, 100, 400, 33);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].1.len(), 10);
    for (t, v) in &m[0].1 {
        assert_eq!(vector(&e, q, *t as f64), vec![("{}".to_string(), *v)]);
    }
    // At 100 s: window [50 s, 95 s], steps 60 and 80 → 6 + 8.
    assert_eq!(m[0].1[0], (100, 14.0));
}

#[test]
fn promql_subquery_with_at_and_nesting() {
    let e = engine(vec![counting()]);
    // 10 * (1 + ... + 9) + 10: values 1..=10 each held for 10 one-second steps in (0, 100].
    assert_vector(
        &vector(&e, "sum_over_time(metric[100s:1s] @ 100)", 25.0),
        &[("{job=\"1\"}", 460.0)],
    );
    // The inner selector has its own @, so each of the 5 subquery steps sees 55.
    assert_vector(
        &vector(
            &e,
            "sum_over_time(sum_over_time(metric[100s] @ 100)[100s:25s] @ 50)",
            100.0,
        ),
        &[("{job=\"1\"}", 275.0)],
    );
}

#[test]
fn promql_range_selector_at_top_is_a_closed_window() {
    let e = engine(vec![counting()]);
    match e.instant("metric[20s]", 100_000).unwrap() {
        QueryValue::Matrix(m) => {
            assert_eq!(m.len(), 1);
            assert_eq!(m[0].labels.get("__name__"), Some("metric"));
            assert_eq!(
                m[0].points,
                vec![(80_000, 8.0), (90_000, 9.0), (100_000, 10.0)]
            );
        }
        other => panic!("expected a matrix, got {other:?}"),
    }
}

#[test]
fn promql_range_query_is_sorted_and_skips_empty_series() {
    let e = engine(vec![
        series("m", &[("i", "b")], 0, 60, &[1.0, 2.0, 3.0]),
        series("m", &[("i", "a")], 0, 60, &[4.0]),
        // Only after the query's range: no series in the answer.
        series("m", &[("i", "c")], 10_000, 60, &[5.0]),
    ]);
    let m = matrix(&e, "m", 0, 120, 60);
    assert_eq!(
        m,
        vec![
            (
                "{__name__=\"m\", i=\"a\"}".to_string(),
                vec![(0, 4.0), (60, 4.0), (120, 4.0)]
            ),
            (
                "{__name__=\"m\", i=\"b\"}".to_string(),
                vec![(0, 1.0), (60, 2.0), (120, 3.0)]
            ),
        ]
    );
    // A scalar query gives one series without labels.
    let m = matrix(&e, "time()", 0, 120, 60);
    assert_eq!(
        m,
        vec![("{}".to_string(), vec![(0, 0.0), (60, 60.0), (120, 120.0)])]
    );
}

#[test]
fn promql_range_query_selects_each_series_once() {
    let source = Arc::new(MemSource {
        series: vec![counting()],
        ..MemSource::default()
    });
    let e = super::Engine::new(source.clone(), Limits::default());
    let q = "sum(rate(metric[1m])) + sum(metric)";
    e.range(q, 0, 10_000_000, 15_000).unwrap();
    // Two selectors, 667 steps: two reads.
    assert_eq!(source.selects.load(Ordering::Relaxed), 2);
}

#[test]
fn promql_range_query_limits_and_type_errors() {
    let e = engine(vec![counting()]);
    let err = e.range("metric", 0, 11_001_000, 1000).unwrap_err();
    assert_eq!(err.kind, ErrorType::BadData);
    assert!(
        err.message
            .contains("exceeded maximum resolution of 11,000 points")
    );
    // Exactly 11,000 intervals is allowed.
    assert!(e.range("metric", 0, 11_000_000, 1000).is_ok());
    let err = e.range("metric[5m]", 0, 60_000, 1000).unwrap_err();
    assert_eq!(err.kind, ErrorType::BadData);
    assert_eq!(
        err.message,
        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
    );
    assert_eq!(
        e.range("metric", 0, 60_000, 0).unwrap_err().kind,
        ErrorType::BadData
    );
    assert_eq!(
        e.range("metric", 60_000, 0, 1000).unwrap_err().kind,
        ErrorType::BadData
    );
}

#[test]
fn promql_selector_needs_a_non_empty_matcher() {
    let e = engine(vec![counting()]);
    for q in ["{job=~\".*\"}", "{job=\"\"}", "{job!=\"x\"}"] {
        let err = error(&e, q, 10.0);
        assert_eq!(err.kind, ErrorType::BadData, "{q}");
        assert!(
            err.message.contains("at least one non-empty matcher"),
            "{q}: {}",
            err.message
        );
    }
    // One non-empty matcher is enough, even with an empty-matching one beside it.
    assert_eq!(vector(&e, "{job=\"1\", x=~\".*\"}", 10.0).len(), 1);
}

#[test]
fn promql_parse_errors_are_bad_data() {
    let e = engine(vec![]);
    for q in [
        "sum(",
        "foo{",
        "rate(foo)",
        "1 +",
        "foo[5m] + 1",
        "unknown_fn(foo)",
    ] {
        assert_eq!(error(&e, q, 0.0).kind, ErrorType::BadData, "{q}");
    }
}

#[test]
fn promql_sample_limit() {
    let limits = Limits {
        max_samples: 100,
        ..Limits::default()
    };
    let e = engine_with(vec![counting()], limits);
    // 1001 raw samples are more than 100.
    let err = e.range("metric", 0, 10_000_000, 10_000).unwrap_err();
    assert_eq!(err.kind, ErrorType::Execution);
    assert_eq!(
        err.message,
        "query processing would load too many samples into memory in query execution"
    );
    // A small window fits.
    assert_eq!(
        vector(&e, "count_over_time(metric[30s])", 100.0),
        vec![("{job=\"1\"}".to_string(), 4.0)]
    );
}

#[test]
fn promql_series_limit() {
    let limits = Limits {
        max_series: 2,
        ..Limits::default()
    };
    let e = engine_with(
        (0..3)
            .map(|i| series("m", &[("i", &i.to_string())], 0, 10, &[1.0]))
            .collect(),
        limits,
    );
    assert_eq!(error(&e, "m", 0.0).kind, ErrorType::Execution);
    assert_eq!(vector(&e, "m{i!=\"0\"}", 0.0).len(), 2);
}

#[test]
fn promql_timeout() {
    let limits = Limits {
        timeout: Duration::ZERO,
        ..Limits::default()
    };
    let e = engine_with(vec![counting()], limits);
    let err = error(&e, "metric", 10.0);
    assert_eq!(err.kind, ErrorType::Timeout);
    assert_eq!(err.message, "query timed out in expression evaluation");
}

#[test]
fn promql_literals_and_strings() {
    let e = engine(vec![]);
    assert_eq!(scalar(&e, "1 + 2 * 3", 0.0), 7.0);
    // Power is right-associative and binds tighter than unary minus.
    assert_eq!(scalar(&e, "2 ^ 3 ^ 2", 0.0), 512.0);
    assert_eq!(scalar(&e, "-2 ^ 2", 0.0), -4.0);
    assert_eq!(
        e.instant("\"hi\"", 5000).unwrap(),
        QueryValue::String(5000, "hi".into())
    );
    assert_eq!(
        e.instant("time()", 5000).unwrap(),
        QueryValue::Scalar(5000, 5.0)
    );
}
