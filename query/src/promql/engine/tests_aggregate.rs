//! Tests of aggregations: every operator, `by` / `without`, output labels, topk/bottomk order,
//! count_values, parameters evaluated per step.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests_support::*;
use crate::promql::ErrorType;
use crate::promql::source::RawSeries;

/// `http_requests` with job, instance, group (Prometheus's aggregator test data, one sample).
fn requests() -> Vec<RawSeries> {
    let s = |job: &str, inst: &str, group: &str, v: f64| {
        series(
            "http_requests",
            &[("job", job), ("instance", inst), ("group", group)],
            0,
            10,
            &[v],
        )
    };
    vec![
        s("api-server", "0", "production", 100.0),
        s("api-server", "1", "production", 200.0),
        s("api-server", "0", "canary", 300.0),
        s("api-server", "1", "canary", 400.0),
        s("app-server", "0", "production", 500.0),
        s("app-server", "1", "production", 600.0),
        s("app-server", "0", "canary", 700.0),
        s("app-server", "1", "canary", 800.0),
    ]
}

#[test]
fn promql_sum_avg_count_by_and_without() {
    let e = engine(requests());
    assert_vector(
        &vector(&e, "sum by (job) (http_requests)", 0.0),
        &[
            ("{job=\"api-server\"}", 1000.0),
            ("{job=\"app-server\"}", 2600.0),
        ],
    );
    // `without` drops the listed labels and the metric name.
    assert_vector(
        &vector(&e, "sum without (instance) (http_requests)", 0.0),
        &[
            ("{group=\"canary\", job=\"api-server\"}", 700.0),
            ("{group=\"canary\", job=\"app-server\"}", 1500.0),
            ("{group=\"production\", job=\"api-server\"}", 300.0),
            ("{group=\"production\", job=\"app-server\"}", 1100.0),
        ],
    );
    assert_vector(&vector(&e, "sum(http_requests)", 0.0), &[("{}", 3600.0)]);
    assert_vector(&vector(&e, "avg(http_requests)", 0.0), &[("{}", 450.0)]);
    assert_vector(
        &vector(&e, "count by (group) (http_requests)", 0.0),
        &[("{group=\"canary\"}", 4.0), ("{group=\"production\"}", 4.0)],
    );
    assert_vector(
        &vector(&e, "group by (job) (http_requests)", 0.0),
        &[("{job=\"api-server\"}", 1.0), ("{job=\"app-server\"}", 1.0)],
    );
    // A grouping label missing from a series groups it under the empty value.
    assert_vector(
        &vector(&e, "sum by (nope) (http_requests)", 0.0),
        &[("{}", 3600.0)],
    );
    // The modifier may follow the arguments.
    assert_vector(
        &vector(&e, "max(http_requests) by (group)", 0.0),
        &[
            ("{group=\"canary\"}", 800.0),
            ("{group=\"production\"}", 600.0),
        ],
    );
    assert_vector(
        &vector(&e, "min by (group) (http_requests)", 0.0),
        &[
            ("{group=\"canary\"}", 300.0),
            ("{group=\"production\"}", 100.0),
        ],
    );
    // Nothing in, nothing out.
    assert_vector(&vector(&e, "sum(nothing)", 0.0), &[]);
}

#[test]
fn promql_stddev_stdvar_quantile() {
    let e = engine(requests());
    // api-server: 100 200 300 400, mean 250, population variance 12500.
    assert_vector(
        &vector(&e, "stdvar by (job) (http_requests)", 0.0),
        &[
            ("{job=\"api-server\"}", 12500.0),
            ("{job=\"app-server\"}", 12500.0),
        ],
    );
    assert_vector(
        &vector(&e, "stddev by (job) (http_requests)", 0.0),
        &[
            ("{job=\"api-server\"}", 12500f64.sqrt()),
            ("{job=\"app-server\"}", 12500f64.sqrt()),
        ],
    );
    // Rank 0.3 * 3 = 0.9 between 100 and 200: 190; app-server 500..800: 590.
    assert_vector(
        &vector(&e, "quantile by (job) (0.3, http_requests)", 0.0),
        &[
            ("{job=\"api-server\"}", 190.0),
            ("{job=\"app-server\"}", 590.0),
        ],
    );
    assert_vector(
        &vector(&e, "quantile(2, http_requests)", 0.0),
        &[("{}", f64::INFINITY)],
    );
    assert_vector(
        &vector(&e, "quantile(NaN, http_requests)", 0.0),
        &[("{}", f64::NAN)],
    );
}

#[test]
fn promql_min_max_with_nan() {
    let e = engine(vec![
        series("m", &[("i", "1")], 0, 10, &[f64::NAN]),
        series("m", &[("i", "2")], 0, 10, &[5.0]),
        series("m", &[("i", "3")], 0, 10, &[2.0]),
    ]);
    // A NaN is replaced by any later value.
    assert_vector(&vector(&e, "max(m)", 0.0), &[("{}", 5.0)]);
    assert_vector(&vector(&e, "min(m)", 0.0), &[("{}", 2.0)]);
    assert_vector(&vector(&e, "sum(m)", 0.0), &[("{}", f64::NAN)]);
}

#[test]
fn promql_avg_with_infinities() {
    let e = engine(vec![
        series("m", &[("i", "1")], 0, 10, &[f64::INFINITY]),
        series("m", &[("i", "2")], 0, 10, &[5.0]),
        series("m", &[("i", "3")], 0, 10, &[f64::INFINITY]),
    ]);
    // The incremental mean keeps +Inf rather than turning it into NaN.
    assert_vector(&vector(&e, "avg(m)", 0.0), &[("{}", f64::INFINITY)]);
}

#[test]
fn promql_topk_bottomk_keep_labels_and_order() {
    let e = engine(requests());
    let got = vector(&e, "topk(3, http_requests)", 0.0);
    let l = |job: &str, inst: &str, group: &str| {
        format!(
            "{{__name__=\"http_requests\", group=\"{group}\", instance=\"{inst}\", job=\"{job}\"}}"
        )
    };
    // Highest first, with the metric name kept.
    assert_eq!(
        got,
        vec![
            (l("app-server", "1", "canary"), 800.0),
            (l("app-server", "0", "canary"), 700.0),
            (l("app-server", "1", "production"), 600.0),
        ]
    );
    let got = vector(&e, "bottomk by (group) (1, http_requests)", 0.0);
    // Groups in the order they first appear in the (label-sorted) input: canary first.
    assert_eq!(
        got,
        vec![
            (l("api-server", "0", "canary"), 300.0),
            (l("api-server", "0", "production"), 100.0)
        ]
    );
    assert_vector(&vector(&e, "topk(0, http_requests)", 0.0), &[]);
    // k is truncated: 1.9 → 1.
    assert_eq!(vector(&e, "topk(1.9, http_requests)", 0.0).len(), 1);
    let err = error(&e, "topk(NaN, http_requests)", 0.0);
    assert_eq!(err.kind, ErrorType::Execution);
    assert_eq!(err.message, "Scalar value NaN overflows int64");
    let err = error(&e, "topk(1e20, http_requests)", 0.0);
    assert_eq!(err.message, "Scalar value 1e+20 overflows int64");
}

#[test]
fn promql_topk_prefers_numbers_over_nan() {
    let e = engine(vec![
        series("m", &[("i", "1")], 0, 10, &[f64::NAN]),
        series("m", &[("i", "2")], 0, 10, &[1.0]),
        series("m", &[("i", "3")], 0, 10, &[2.0]),
    ]);
    let got = vector(&e, "topk(2, m)", 0.0);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1, 2.0);
    assert_eq!(got[1].1, 1.0);
    let got = vector(&e, "bottomk(2, m)", 0.0);
    assert_eq!(got.iter().map(|x| x.1).collect::<Vec<_>>(), vec![1.0, 2.0]);
}

#[test]
fn promql_topk_in_range_query_follows_each_step() {
    // a rises 0, 10, 20; b stays 15: the top one changes between steps.
    let e = engine(vec![
        series("m", &[("i", "a")], 0, 60, &[0.0, 10.0, 20.0]),
        series("m", &[("i", "b")], 0, 60, &[15.0, 15.0, 15.0]),
    ]);
    let m = matrix(&e, "topk(1, m)", 0, 120, 60);
    assert_eq!(
        m,
        vec![
            ("{__name__=\"m\", i=\"a\"}".to_string(), vec![(120, 20.0)]),
            (
                "{__name__=\"m\", i=\"b\"}".to_string(),
                vec![(0, 15.0), (60, 15.0)]
            ),
        ]
    );
    // k from a scalar expression, per step: count(m) - 1 = 1.
    let m = matrix(&e, "bottomk(scalar(count(m)) - 1, m)", 0, 120, 60);
    assert_eq!(m[0].1, vec![(0, 0.0), (60, 10.0)]);
}

#[test]
fn promql_count_values() {
    let e = engine(vec![
        series("v", &[("i", "1")], 0, 10, &[2.0]),
        series("v", &[("i", "2")], 0, 10, &[2.0]),
        series("v", &[("i", "3")], 0, 10, &[0.5]),
        series("v", &[("i", "4")], 0, 10, &[f64::INFINITY]),
    ]);
    assert_vector(
        &vector(&e, "count_values(\"value\", v)", 0.0),
        &[
            ("{value=\"+Inf\"}", 1.0),
            ("{value=\"0.5\"}", 1.0),
            ("{value=\"2\"}", 2.0),
        ],
    );
    // `without` keeps the other labels.
    assert_vector(
        &vector(&e, "count_values without (i) (\"value\", v)", 0.0),
        &[
            ("{value=\"+Inf\"}", 1.0),
            ("{value=\"0.5\"}", 1.0),
            ("{value=\"2\"}", 2.0),
        ],
    );
    assert_vector(
        &vector(&e, "count_values by (i) (\"value\", v{i=\"1\"})", 0.0),
        &[("{i=\"1\", value=\"2\"}", 1.0)],
    );
    let err = error(&e, "count_values(\"1x\", v)", 0.0);
    assert_eq!(err.message, "invalid label name \"1x\"");
}

#[test]
fn promql_sum_of_rates_by_label_over_a_range() {
    // Two counters per x, +1 and +3 per 15 s: rate 1/15 and 3/15 per second.
    let mut s = Vec::new();
    for x in ["a", "b"] {
        s.push(ramp("m", &[("x", x), ("i", "1")], 15, 0.0, 1.0, 200));
        s.push(ramp("m", &[("x", x), ("i", "2")], 15, 0.0, 3.0, 200));
    }
    let e = engine(s);
    let m = matrix(&e, "sum by (x) (rate(m[5m]))", 600, 1800, 60);
    assert_eq!(m.len(), 2);
    for (labels, points) in &m {
        assert!(labels == "{x=\"a\"}" || labels == "{x=\"b\"}");
        assert_eq!(points.len(), 21);
        for (_, v) in points {
            approx(*v, 4.0 / 15.0);
        }
    }
}
