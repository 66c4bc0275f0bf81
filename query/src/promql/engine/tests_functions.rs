//! Tests of functions: range-vector functions (rate and its extrapolation, counter resets,
//! the `*_over_time` family, regression, holt_winters), element-wise math, label and date
//! functions, histogram_quantile.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests_support::*;
use crate::promql::ErrorType;

#[test]
fn promql_rate_extrapolates_to_window_edges() {
    // A counter +10 every 10 s from 0 s: 0, 10, 20, ...
    let e = engine(vec![ramp("c", &[], 10, 0.0, 10.0, 100)]);
    // Window [0 s, 60 s] holds 7 samples 0..60 covering the whole window: 60 / 60 s = 1.
    assert_vector(&vector(&e, "rate(c[1m])", 60.0), &[("{}", 1.0)]);
    assert_vector(&vector(&e, "increase(c[1m])", 60.0), &[("{}", 60.0)]);
    // Window [5 s, 65 s]: samples 10..=60 (sampled 50 s, change 50); both edges are 5 s away,
    // within 1.1 intervals, so it extrapolates to 60 s: 60, rate 1.
    assert_vector(&vector(&e, "increase(c[1m])", 65.0), &[("{}", 60.0)]);
    // First sample at 0 s valued 0: the zero point limits extrapolation at the start.
    let e = engine(vec![series("c", &[], 0, 10, &[0.0, 10.0])]);
    // Window [-50 s, 10 s]: change 10 over 10 s. The start is 50 s away, but a counter at 0
    // would have been zero right at the first sample, so nothing is added before it; the end
    // is 0 s away. Extrapolated to 10 s: increase 10, rate 10 over the 60 s range.
    assert_vector(&vector(&e, "increase(c[1m])", 10.0), &[("{}", 10.0)]);
    approx(vector(&e, "rate(c[1m])", 10.0)[0].1, 10.0 / 60.0);
}

#[test]
fn promql_rate_half_interval_extrapolation() {
    // Samples at 30, 40, 50 s valued 5, 6, 7 (not a counter starting at zero).
    let e = engine(vec![series("c", &[], 30, 10, &[5.0, 6.0, 7.0])]);
    // Window [0 s, 60 s]: change 2 over 20 s, average interval 10 s (threshold 11 s).
    // Start is 30 s away: the zero point (5/2*20 = 50 s) is farther, so add 5 s; end is 10 s
    // away (< 11 s): add 10 s. 35 s → 2 * 35/20 = 3.5.
    assert_vector(&vector(&e, "increase(c[1m])", 60.0), &[("{}", 3.5)]);
    // delta does not use the zero point and works on gauges the same way here.
    assert_vector(&vector(&e, "delta(c[1m])", 60.0), &[("{}", 3.5)]);
    // One sample is not enough.
    assert_vector(&vector(&e, "rate(c[5s])", 50.0), &[]);
}

#[test]
fn promql_rate_counter_resets() {
    // 0, 10, 20, reset to 5, 15 every 10 s: increase 10 + 10 + 5 + 10 = 35 over 40 s.
    let e = engine(vec![series(
        "c",
        &[("a", "b")],
        0,
        10,
        &[0.0, 10.0, 20.0, 5.0, 15.0],
    )]);
    // Window [0 s, 40 s] is covered: 35.
    assert_vector(
        &vector(&e, "increase(c[40s])", 40.0),
        &[("{a=\"b\"}", 35.0)],
    );
    assert_vector(
        &vector(&e, "rate(c[40s])", 40.0),
        &[("{a=\"b\"}", 35.0 / 40.0)],
    );
    assert_vector(&vector(&e, "resets(c[1m])", 40.0), &[("{a=\"b\"}", 1.0)]);
    // delta ignores resets: 15 - 0.
    assert_vector(&vector(&e, "delta(c[40s])", 40.0), &[("{a=\"b\"}", 15.0)]);
    // irate from the last two samples, 5 then 15: (15 - 5) / 10 s.
    assert_vector(&vector(&e, "irate(c[1m])", 40.0), &[("{a=\"b\"}", 1.0)]);
    // At 30 s the last two are 20, 5: a reset, so irate is 5 / 10 s.
    assert_vector(&vector(&e, "irate(c[1m])", 30.0), &[("{a=\"b\"}", 0.5)]);
    // idelta is the plain difference: 5 - 20.
    assert_vector(&vector(&e, "idelta(c[1m])", 30.0), &[("{a=\"b\"}", -15.0)]);
}

#[test]
fn promql_rate_in_range_query_matches_instant() {
    let e = engine(vec![
        ramp("c", &[("i", "1")], 15, 3.0, 7.0, 400),
        series(
            "c",
            &[("i", "2")],
            0,
            15,
            &[1.0, 5.0, 2.0, 9.0, 30.0, 31.0, 50.0, 0.5, 4.0],
        ),
    ]);
    let m = matrix(&e, "rate(c[1m])", 0, 600, 30);
    for (labels, points) in &m {
        for (t, v) in points {
            let inst = vector(&e, "rate(c[1m])", *t as f64);
            let (_, iv) = inst.iter().find(|(l, _)| l == labels).unwrap();
            approx(*v, *iv);
        }
    }
    assert_eq!(m.len(), 2);
}

#[test]
fn promql_over_time_functions() {
    let e = engine(vec![series(
        "g",
        &[("a", "x")],
        0,
        10,
        &[1.0, 4.0, 2.0, 8.0, 5.0],
    )]);
    let at = |q: &str| vector(&e, q, 40.0);
    let l = "{a=\"x\"}";
    assert_vector(&at("avg_over_time(g[1m])"), &[(l, 4.0)]);
    assert_vector(&at("min_over_time(g[1m])"), &[(l, 1.0)]);
    assert_vector(&at("max_over_time(g[1m])"), &[(l, 8.0)]);
    assert_vector(&at("sum_over_time(g[1m])"), &[(l, 20.0)]);
    assert_vector(&at("count_over_time(g[1m])"), &[(l, 5.0)]);
    // Keeps the metric name, unlike the others.
    assert_vector(
        &at("last_over_time(g[1m])"),
        &[("{__name__=\"g\", a=\"x\"}", 5.0)],
    );
    assert_vector(&at("present_over_time(g[1m])"), &[(l, 1.0)]);
    // Sorted 1 2 4 5 8; rank 0.5 * 4 = 2 → 4; rank 0.9 * 4 = 3.6 → 5 + 0.6 * 3.
    assert_vector(&at("quantile_over_time(0.5, g[1m])"), &[(l, 4.0)]);
    assert_vector(&at("quantile_over_time(0.9, g[1m])"), &[(l, 6.8)]);
    assert_vector(
        &at("quantile_over_time(-1, g[1m])"),
        &[(l, f64::NEG_INFINITY)],
    );
    // Population variance of 1 4 2 8 5 (mean 4): (9 + 0 + 4 + 16 + 1) / 5 = 6.
    assert_vector(&at("stdvar_over_time(g[1m])"), &[(l, 6.0)]);
    assert_vector(&at("stddev_over_time(g[1m])"), &[(l, 6f64.sqrt())]);
    // 1→4, 4→2, 2→8, 8→5: four changes, two decreases.
    assert_vector(&at("changes(g[1m])"), &[(l, 4.0)]);
    assert_vector(&at("resets(g[1m])"), &[(l, 2.0)]);
    // Windows with nothing give nothing.
    assert_vector(&vector(&e, "avg_over_time(g[1m])", 1000.0), &[]);
}

#[test]
fn promql_absent_and_absent_over_time() {
    let e = engine(vec![series("m", &[("job", "a")], 0, 10, &[1.0])]);
    assert_vector(&vector(&e, "absent(m)", 0.0), &[]);
    // Labels come from the equality matchers.
    assert_vector(
        &vector(&e, "absent(nope{job=\"x\", instance=~\"i.*\"})", 0.0),
        &[("{job=\"x\"}", 1.0)],
    );
    // Two equality matchers on one label give no label.
    assert_vector(
        &vector(&e, "absent(nope{a=\"b\", a=\"c\"})", 0.0),
        &[("{}", 1.0)],
    );
    assert_vector(&vector(&e, "absent(sum(nope))", 0.0), &[("{}", 1.0)]);
    assert_vector(&vector(&e, "absent_over_time(m[1m])", 30.0), &[]);
    assert_vector(
        &vector(&e, "absent_over_time(m{job=\"a\"}[1m])", 61.0),
        &[("{job=\"a\"}", 1.0)],
    );
    // In a range query, only the steps where nothing is present.
    let m = matrix(&e, "absent_over_time(m[30s])", 0, 60, 15);
    assert_eq!(m, vec![("{}".to_string(), vec![(45, 1.0), (60, 1.0)])]);
}

#[test]
fn promql_deriv_and_predict_linear() {
    // y = 2 + 0.5 t (t in s), every 10 s.
    let e = engine(vec![series("g", &[], 0, 10, &[2.0, 7.0, 12.0, 17.0])]);
    assert_vector(&vector(&e, "deriv(g[1m])", 30.0), &[("{}", 0.5)]);
    // At 30 s the line is at 17; 60 s later 47.
    assert_vector(
        &vector(&e, "predict_linear(g[1m], 60)", 30.0),
        &[("{}", 47.0)],
    );
    // Evaluated at 40 s the intercept is at 40 s (22); 10 s ahead: 27.
    assert_vector(
        &vector(&e, "predict_linear(g[1m], 10)", 40.0),
        &[("{}", 27.0)],
    );
    // A constant series has slope 0.
    let e = engine(vec![series("k", &[], 0, 10, &[3.0, 3.0, 3.0])]);
    assert_vector(&vector(&e, "deriv(k[1m])", 20.0), &[("{}", 0.0)]);
}

#[test]
fn promql_holt_winters() {
    // 1, 2, 4 with sf = 0.5, tf = 0.5: s1 = 1, b = 1; i=1: s = 0.5*2 + 0.5*(1+1) = 2;
    // i=2: b = 0.5*(2-1) + 0.5*1 = 1, s = 0.5*4 + 0.5*(2+1) = 3.5.
    let e = engine(vec![series("g", &[], 0, 10, &[1.0, 2.0, 4.0])]);
    assert_vector(
        &vector(&e, "holt_winters(g[1m], 0.5, 0.5)", 20.0),
        &[("{}", 3.5)],
    );
    let err = error(&e, "holt_winters(g[1m], 1, 0.5)", 20.0);
    assert_eq!(err.kind, ErrorType::Execution);
    assert_eq!(
        err.message,
        "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000"
    );
}

#[test]
fn promql_math_functions_drop_the_name() {
    let e = engine(vec![series("m", &[("a", "b")], 0, 10, &[-2.5])]);
    let l = "{a=\"b\"}";
    let one = |q: &str| vector(&e, q, 0.0);
    assert_vector(&one("abs(m)"), &[(l, 2.5)]);
    assert_vector(&one("ceil(m)"), &[(l, -2.0)]);
    assert_vector(&one("floor(m)"), &[(l, -3.0)]);
    // Ties round up: -2.5 → -2.
    assert_vector(&one("round(m)"), &[(l, -2.0)]);
    assert_vector(&one("round(m, 2)"), &[(l, -2.0)]);
    assert_vector(&one("round(m, 0.2)"), &[(l, -2.4)]);
    assert_vector(&one("sgn(m)"), &[(l, -1.0)]);
    assert_vector(&one("exp(abs(m))"), &[(l, 2.5f64.exp())]);
    assert_vector(&one("ln(abs(m))"), &[(l, 2.5f64.ln())]);
    assert_vector(&one("log2(abs(m))"), &[(l, 2.5f64.log2())]);
    assert_vector(&one("log10(abs(m))"), &[(l, 2.5f64.log10())]);
    assert_vector(&one("sqrt(m)"), &[(l, f64::NAN)]);
    assert_vector(&one("clamp(m, -1, 1)"), &[(l, -1.0)]);
    assert_vector(&one("clamp(m, 1, -1)"), &[]);
    assert_vector(&one("clamp_min(m, 0)"), &[(l, 0.0)]);
    assert_vector(&one("clamp_max(m, -3)"), &[(l, -3.0)]);
    assert_vector(&one("deg(m)"), &[(l, -2.5 * 180.0 / std::f64::consts::PI)]);
    assert_vector(&one("rad(m)"), &[(l, -2.5 * std::f64::consts::PI / 180.0)]);
    for (f, want) in [
        ("sin", (-2.5f64).sin()),
        ("cos", (-2.5f64).cos()),
        ("tan", (-2.5f64).tan()),
        ("atan", (-2.5f64).atan()),
        ("sinh", (-2.5f64).sinh()),
        ("cosh", (-2.5f64).cosh()),
        ("tanh", (-2.5f64).tanh()),
        ("asinh", (-2.5f64).asinh()),
    ] {
        assert_vector(&one(&format!("{f}(m)")), &[(l, want)]);
    }
    assert_vector(&one("asin(m / 5)"), &[(l, (-0.5f64).asin())]);
    assert_vector(&one("acos(m / 5)"), &[(l, (-0.5f64).acos())]);
    assert_vector(&one("atanh(m / 5)"), &[(l, (-0.5f64).atanh())]);
    assert_vector(&one("acosh(abs(m))"), &[(l, 2.5f64.acosh())]);
    assert_eq!(scalar(&e, "pi()", 0.0), std::f64::consts::PI);
    // Native-histogram functions give nothing for float samples.
    assert_vector(&one("histogram_count(m)"), &[]);
    assert_vector(&one("histogram_sum(m)"), &[]);
    assert_vector(&one("histogram_fraction(0, 1, m)"), &[]);
    // Two series that end up with the same labels at the same time are an error.
    let e = engine(vec![
        series("x", &[("a", "b")], 0, 10, &[1.0]),
        series("y", &[("a", "b")], 0, 10, &[2.0]),
    ]);
    let err = error(&e, "abs({a=\"b\"})", 0.0);
    assert_eq!(
        err.message,
        "vector cannot contain metrics with the same labelset"
    );
}

#[test]
fn promql_same_labels_at_different_times_merge() {
    // x only at 0 s, y only from 400 s on: abs() of both is one series in a range query.
    let e = engine(vec![
        series("x", &[("a", "b")], 0, 10, &[-1.0]),
        series("y", &[("a", "b")], 400, 10, &[-2.0]),
    ]);
    let m = matrix(&e, "abs({a=\"b\"})", 0, 400, 200);
    assert_eq!(
        m,
        vec![(
            "{a=\"b\"}".to_string(),
            vec![(0, 1.0), (200, 1.0), (400, 2.0)]
        )]
    );
}

#[test]
fn promql_time_scalar_vector_timestamp() {
    let e = engine(vec![
        series("m", &[("i", "1")], 0, 7, &[1.0, 2.0]),
        series("m", &[("i", "2")], 0, 7, &[3.0]),
    ]);
    assert_eq!(scalar(&e, "time()", 12.5), 12.5);
    // Two series: scalar() is NaN.
    assert!(scalar(&e, "scalar(m)", 10.0).is_nan());
    assert_eq!(scalar(&e, "scalar(m{i=\"2\"})", 10.0), 3.0);
    assert_vector(&vector(&e, "vector(time())", 3.0), &[("{}", 3.0)]);
    // timestamp() of a selector: the sample's time (7 s), not the evaluation time.
    assert_vector(
        &vector(&e, "timestamp(m{i=\"1\"})", 10.0),
        &[("{i=\"1\"}", 7.0)],
    );
    // Of another expression: the evaluation time.
    assert_vector(
        &vector(&e, "timestamp(m{i=\"1\"} + 1)", 10.0),
        &[("{i=\"1\"}", 10.0)],
    );
}

#[test]
fn promql_label_replace_and_join() {
    let e = engine(vec![series(
        "up",
        &[("job", "api-1"), ("env", "prod")],
        0,
        10,
        &[1.0],
    )]);
    assert_vector(
        &vector(
            &e,
            "label_replace(up, \"svc\", \"$1/$2\", \"job\", \"(.*)-(.*)\")",
            0.0,
        ),
        &[(
            "{__name__=\"up\", env=\"prod\", job=\"api-1\", svc=\"api/1\"}",
            1.0,
        )],
    );
    // No match: unchanged. An empty replacement removes the label.
    assert_vector(
        &vector(
            &e,
            "label_replace(up, \"svc\", \"x\", \"job\", \"nomatch\")",
            0.0,
        ),
        &[("{__name__=\"up\", env=\"prod\", job=\"api-1\"}", 1.0)],
    );
    assert_vector(
        &vector(&e, "label_replace(up, \"env\", \"\", \"job\", \".*\")", 0.0),
        &[("{__name__=\"up\", job=\"api-1\"}", 1.0)],
    );
    assert_vector(
        &vector(
            &e,
            "label_join(up, \"both\", \"|\", \"env\", \"job\", \"missing\")",
            0.0,
        ),
        &[(
            "{__name__=\"up\", both=\"prod|api-1|\", env=\"prod\", job=\"api-1\"}",
            1.0,
        )],
    );
    let err = error(&e, "label_replace(up, \"1x\", \"\", \"job\", \".*\")", 0.0);
    assert_eq!(
        err.message,
        "invalid destination label name in label_replace(): 1x"
    );
    let err = error(&e, "label_replace(up, \"x\", \"\", \"job\", \"(\")", 0.0);
    assert_eq!(
        err.message,
        "invalid regular expression in label_replace(): ("
    );
}

#[test]
fn promql_date_functions() {
    // 2024-02-29T13:45:30Z.
    let t = 1_709_214_330.0;
    let e = engine(vec![series("ts", &[], 0, 10, &[t])]);
    let one = |q: &str| vector(&e, q, 0.0);
    assert_vector(&one("year(ts)"), &[("{}", 2024.0)]);
    assert_vector(&one("month(ts)"), &[("{}", 2.0)]);
    assert_vector(&one("day_of_month(ts)"), &[("{}", 29.0)]);
    assert_vector(&one("day_of_week(ts)"), &[("{}", 4.0)]);
    assert_vector(&one("day_of_year(ts)"), &[("{}", 60.0)]);
    assert_vector(&one("days_in_month(ts)"), &[("{}", 29.0)]);
    assert_vector(&one("hour(ts)"), &[("{}", 13.0)]);
    assert_vector(&one("minute(ts)"), &[("{}", 45.0)]);
    // Without an argument: the evaluation time.
    assert_vector(&vector(&e, "hour()", 7200.0), &[("{}", 2.0)]);
    assert_vector(&vector(&e, "year()", 0.0), &[("{}", 1970.0)]);
}

#[test]
fn promql_sort_keeps_order_in_instant_queries() {
    let e = engine(vec![
        series("m", &[("i", "a")], 0, 10, &[3.0]),
        series("m", &[("i", "b")], 0, 10, &[f64::NAN]),
        series("m", &[("i", "c")], 0, 10, &[1.0]),
        series("m", &[("i", "d")], 0, 10, &[2.0]),
    ]);
    let names =
        |q: &str| -> Vec<String> { vector(&e, q, 0.0).into_iter().map(|(l, _)| l).collect() };
    let l = |i: &str| format!("{{__name__=\"m\", i=\"{i}\"}}");
    // NaN sorts last both ways.
    assert_eq!(names("sort(m)"), vec![l("c"), l("d"), l("a"), l("b")]);
    assert_eq!(names("sort_desc(m)"), vec![l("a"), l("d"), l("c"), l("b")]);
    // The order survives operations on top, as in Prometheus: NaN is dropped by `> 0`.
    let bare = |i: &str| format!("{{i=\"{i}\"}}");
    assert_eq!(names("sort_desc(m) > 0"), vec![l("a"), l("d"), l("c")]);
    assert_eq!(
        names("sort(m) * 2"),
        vec![bare("c"), bare("d"), bare("a"), bare("b")]
    );
    assert_eq!(names("topk(2, m) > 0"), vec![l("a"), l("d")]);
    // Without sort/topk/bottomk the answer is sorted by labels.
    assert_eq!(
        names("-m"),
        vec![bare("a"), bare("b"), bare("c"), bare("d")]
    );
}

#[test]
fn promql_histogram_quantile() {
    // Cumulative buckets: 10 below 0.1, 20 below 0.5, 40 below 1, 40 in all.
    let b = |le: &str, v: f64| series("h_bucket", &[("le", le), ("job", "a")], 0, 10, &[v]);
    let e = engine(vec![
        b("0.1", 10.0),
        b("0.5", 20.0),
        b("1", 40.0),
        b("+Inf", 40.0),
    ]);
    let q = |phi: f64| vector(&e, &format!("histogram_quantile({phi}, h_bucket)"), 0.0);
    // Rank 20 of 40 is the top of the second bucket: 0.5.
    assert_vector(&q(0.5), &[("{job=\"a\"}", 0.5)]);
    // Rank 4 falls in the first bucket, interpolated from 0: 0.1 * 4/10.
    assert_vector(&q(0.1), &[("{job=\"a\"}", 0.04)]);
    // Rank 30: third bucket, 0.5 + 0.5 * (10/20).
    assert_vector(&q(0.75), &[("{job=\"a\"}", 0.75)]);
    // Rank 40 is found in the third bucket (count >= rank): its upper bound.
    assert_vector(&q(1.0), &[("{job=\"a\"}", 1.0)]);
    assert_vector(&q(-0.5), &[("{job=\"a\"}", f64::NEG_INFINITY)]);
    assert_vector(&q(1.5), &[("{job=\"a\"}", f64::INFINITY)]);
    // Without the +Inf bucket: NaN.
    let e2 = engine(vec![b("0.1", 10.0), b("1", 40.0)]);
    assert_vector(
        &vector(&e2, "histogram_quantile(0.5, h_bucket)", 0.0),
        &[("{job=\"a\"}", f64::NAN)],
    );
    // No observations: NaN.
    let e3 = engine(vec![b("1", 0.0), b("+Inf", 0.0)]);
    assert_vector(
        &vector(&e3, "histogram_quantile(0.5, h_bucket)", 0.0),
        &[("{job=\"a\"}", f64::NAN)],
    );
}

#[test]
fn promql_histogram_quantile_monotonicity_and_inf_bucket() {
    // Buckets dip (le=1 counts fewer than le=0.5): treated as 30, 30 (the envelope).
    let b = |le: &str, v: f64| series("h_bucket", &[("le", le)], 0, 10, &[v]);
    let e = engine(vec![
        b("0.5", 30.0),
        b("1", 25.0),
        b("2", 60.0),
        b("+Inf", 100.0),
    ]);
    // Rank 45: bucket le=2 (30..60): 1 + 1 * (15/30) = 1.5.
    assert_vector(
        &vector(&e, "histogram_quantile(0.45, h_bucket)", 0.0),
        &[("{}", 1.5)],
    );
    // Rank 90 lies in +Inf: the second-highest bound, 2.
    assert_vector(
        &vector(&e, "histogram_quantile(0.9, h_bucket)", 0.0),
        &[("{}", 2.0)],
    );
    // Series without a readable le are ignored.
    let e = engine(vec![b("0.5", 30.0), b("x", 1.0), b("+Inf", 60.0)]);
    assert_vector(
        &vector(&e, "histogram_quantile(0.25, h_bucket)", 0.0),
        &[("{}", 0.25)],
    );
}

#[test]
fn promql_histogram_quantile_over_rates_in_range_query() {
    // Two histograms summed by le: bucket rates add up.
    let mut s = Vec::new();
    for (inst, scale) in [("1", 1.0), ("2", 3.0)] {
        for (le, per_step) in [("0.1", 1.0), ("1", 3.0), ("+Inf", 4.0)] {
            s.push(ramp(
                "h_bucket",
                &[("le", le), ("inst", inst)],
                15,
                0.0,
                per_step * scale,
                100,
            ));
        }
    }
    let e = engine(s);
    let m = matrix(
        &e,
        "histogram_quantile(0.5, sum by (le) (rate(h_bucket[1m])))",
        300,
        600,
        60,
    );
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].1.len(), 6);
    // Rates per second are proportional to 4 / 12 / 16 (of 16 in all): rank 8 lies in le=1
    // (4..12): 0.1 + 0.9 * (4/8).
    for (_, v) in &m[0].1 {
        approx(*v, 0.55);
    }
}
