//! Tests of the evaluation core and the range query on series made from samples.

#![allow(clippy::unwrap_used)]

use super::eval::*;
use super::params::Params;
use super::query::*;
use crate::QueryError;
use skein_model::metric::{Labels, MetricKind};
use skein_model::metrics_api::ResultSeries;
use skein_store::tsdb::SelectedSeries;

pub(crate) fn ser(
    name: &str,
    labels: &[(&str, &str)],
    kind: MetricKind,
    samples: &[(i64, f64)],
) -> SelectedSeries {
    SelectedSeries::from_samples(
        name,
        Labels::from_pairs(labels.iter().copied()),
        kind,
        samples,
    )
}

fn gauge(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> SelectedSeries {
    ser("g", labels, MetricKind::Gauge, samples)
}

fn eval(agg: &str, by: &[&str], grid: &Grid, series: &[SelectedSeries]) -> Vec<ResultSeries> {
    let by: Vec<String> = by.iter().map(|s| s.to_string()).collect();
    evaluate("g", false, Agg::parse(agg).unwrap(), &by, grid, series).unwrap()
}

fn err_text(e: QueryError) -> String {
    match e {
        QueryError::BadRequest(m) => m,
        other => panic!("expected a bad request, got {other:?}"),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn assert_points(got: &[(i64, f64)], want: &[(i64, f64)]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.0, w.0, "{got:?} vs {want:?}");
        assert!(close(g.1, w.1), "{got:?} vs {want:?}");
    }
}

#[test]
fn grid_points_are_multiples_of_the_step() {
    let g = Grid::aligned(1005, 5000, 1000);
    assert_eq!((g.first, g.points, g.last()), (2000, 4, 5000));
    let g = Grid::aligned(0, 0, 10);
    assert_eq!((g.first, g.points), (0, 1));
    // No multiple inside: one point at the end.
    let g = Grid::aligned(1, 9, 10);
    assert_eq!((g.points, g.ts(0)), (1, 9));
    // An end past the last multiple gets a point of its own.
    let g = Grid::aligned(-15, 5, 10);
    assert_eq!((g.first, g.points), (-10, 3));
    assert_eq!((g.ts(1), g.ts(2), g.last()), (0, 5, 5));
    let g = Grid::ending_at(100, 10, 3);
    assert_eq!((g.first, g.last()), (80, 100));
    assert_eq!(Grid::single(50, 20).lookback(), MIN_LOOKBACK_MS);
    assert_eq!(Grid::single(0, 600_000).lookback(), 600_000);
}

#[test]
fn default_step_is_at_least_10s_in_whole_seconds() {
    assert_eq!(default_step(3_600_000), 15_000);
    assert_eq!(default_step(0), 10_000);
    assert_eq!(default_step(86_400_000), 360_000);
    assert_eq!(default_step(100_000_000), 417_000);
}

#[test]
fn each_point_covers_the_window_ending_at_it() {
    let s: Vec<(i64, f64)> = (0..=30).map(|t| (t, t as f64)).collect();
    let out = eval("avg", &[], &Grid::aligned(10, 30, 10), &[gauge(&[], &s)]);
    assert_eq!(out.len(), 1);
    assert!(out[0].labels.is_empty());
    // (0,10] holds 1..=10: the sample at 0 belongs to the point at 0, before the start.
    assert_points(&out[0].points, &[(10, 5.5), (20, 15.5), (30, 25.5)]);
    let out = eval("count", &[], &Grid::aligned(10, 30, 10), &[gauge(&[], &s)]);
    assert_points(&out[0].points, &[(10, 1.0), (20, 1.0), (30, 1.0)]);
    // The end (35) is not a multiple: the last point covers (30, 35] only.
    let out = eval("avg", &[], &Grid::aligned(10, 35, 10), &[gauge(&[], &s)]);
    assert_points(&out[0].points, &[(10, 5.5), (20, 15.5), (30, 25.5)]);
    let s: Vec<(i64, f64)> = (0..=40).map(|t| (t, t as f64)).collect();
    let out = eval("max", &[], &Grid::aligned(10, 35, 10), &[gauge(&[], &s)]);
    assert_points(
        &out[0].points,
        &[(10, 10.0), (20, 20.0), (30, 30.0), (35, 35.0)],
    );
}

fn three_gauges() -> Vec<SelectedSeries> {
    vec![
        gauge(
            &[("host", "a"), ("dc", "x")],
            &[(5, 1.0), (10, 3.0), (15, 5.0)],
        ),
        gauge(
            &[("host", "b"), ("dc", "x")],
            &[(8, 10.0), (18, 20.0), (19, 30.0)],
        ),
        gauge(&[("host", "c"), ("dc", "y")], &[(12, 100.0)]),
    ]
}

#[test]
fn gauge_aggregations_across_series() {
    let s = three_gauges();
    let g = Grid::aligned(10, 20, 10);
    let one = |agg: &str| eval(agg, &[], &g, &s).pop().unwrap().points;
    assert_points(&one("avg"), &[(10, 14.0 / 3.0), (20, 38.75)]);
    assert_points(&one("min"), &[(10, 1.0), (20, 5.0)]);
    assert_points(&one("max"), &[(10, 10.0), (20, 100.0)]);
    // sum: the last sample of each series, summed.
    assert_points(&one("sum"), &[(10, 13.0), (20, 135.0)]);
    assert_points(&one("count"), &[(10, 2.0), (20, 3.0)]);
}

#[test]
fn gauge_aggregations_by_a_label() {
    let s = three_gauges();
    let g = Grid::aligned(10, 20, 10);
    let out = eval("avg", &["dc"], &g, &s);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].labels, Labels::from_pairs([("dc", "x")]));
    assert_points(&out[0].points, &[(10, 14.0 / 3.0), (20, 55.0 / 3.0)]);
    // y has no sample in (0,10]: that point is left out.
    assert_eq!(out[1].labels, Labels::from_pairs([("dc", "y")]));
    assert_points(&out[1].points, &[(20, 100.0)]);
    let out = eval("sum", &["dc"], &g, &s);
    assert_points(&out[0].points, &[(10, 13.0), (20, 35.0)]);
    let out = eval("count", &["dc"], &g, &s);
    assert_points(&out[0].points, &[(10, 2.0), (20, 2.0)]);
    // A series without the label groups under its absence.
    let mut s2 = s.clone();
    s2.push(gauge(&[("host", "d")], &[(20, 7.0)]));
    let out = eval("max", &["dc"], &g, &s2);
    assert_eq!(out.len(), 3);
    assert!(out[0].labels.is_empty());
    assert_points(&out[0].points, &[(20, 7.0)]);
}

fn counter(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> SelectedSeries {
    ser("g", labels, MetricKind::Counter, samples)
}

#[test]
fn rate_and_increase_handle_a_counter_reset() {
    let a = counter(
        &[("host", "a")],
        &[
            (0, 10.0),
            (5_000, 12.0),
            (10_000, 15.0),
            (15_000, 3.0), // restarted: 3 new
            (20_000, 5.0),
            (25_000, 9.0),
            (30_000, 19.0),
        ],
    );
    let b = counter(
        &[("host", "b")],
        &(0..=6).map(|i| (i * 5_000, i as f64)).collect::<Vec<_>>(),
    );
    let g = Grid::aligned(10_000, 30_000, 10_000);
    let inc = eval("increase", &[], &g, &[a.clone(), b.clone()]);
    assert_points(
        &inc[0].points,
        &[(10_000, 7.0), (20_000, 7.0), (30_000, 16.0)],
    );
    let rate = eval("rate", &[], &g, &[a.clone(), b]);
    assert_points(
        &rate[0].points,
        &[(10_000, 0.7), (20_000, 0.7), (30_000, 1.6)],
    );
    let only_a = eval("increase", &["host"], &g, &[a]);
    assert_points(
        &only_a[0].points,
        &[(10_000, 5.0), (20_000, 5.0), (30_000, 14.0)],
    );
}

#[test]
fn counter_baseline_only_within_the_lookback() {
    let g = Grid::aligned(410_000, 410_000, 10_000);
    // The sample before the window is 400 s old (more than 5 min): the first sample in the
    // window is the baseline.
    let old = counter(&[], &[(0, 10.0), (401_000, 20.0), (405_000, 25.0)]);
    assert_points(
        &eval("increase", &[], &g, &[old])[0].points,
        &[(410_000, 5.0)],
    );
    let recent = counter(&[], &[(200_000, 10.0), (401_000, 20.0), (405_000, 25.0)]);
    assert_points(
        &eval("increase", &[], &g, &[recent])[0].points,
        &[(410_000, 15.0)],
    );
    // Only a sample before the window: no point.
    let before = counter(&[], &[(399_000, 10.0)]);
    assert!(eval("increase", &[], &g, &[before]).is_empty());
}

/// Histogram `d` with buckets 10, 50, 100, +Inf on two hosts, observed over (0, 60 s].
fn histogram() -> Vec<SelectedSeries> {
    let h = MetricKind::Histogram;
    let mut out = Vec::new();
    for (host, counts, sum) in [
        ("a", [10.0, 30.0, 38.0, 40.0], 1000.0),
        ("b", [0.0, 10.0, 20.0, 20.0], 500.0),
    ] {
        for (le, c) in ["10", "50", "100", "+Inf"].iter().zip(counts) {
            out.push(ser(
                "d_bucket",
                &[("host", host), ("le", le)],
                h,
                &[(0, 0.0), (60_000, c)],
            ));
        }
        out.push(ser(
            "d_sum",
            &[("host", host)],
            h,
            &[(0, 0.0), (60_000, sum)],
        ));
        out.push(ser(
            "d_count",
            &[("host", host)],
            h,
            &[(0, 0.0), (60_000, counts[3])],
        ));
    }
    out
}

fn hist_eval(agg: &str, by: &[&str]) -> Vec<ResultSeries> {
    let by: Vec<String> = by.iter().map(|s| s.to_string()).collect();
    let g = Grid::aligned(60_000, 60_000, 60_000);
    evaluate("d", true, Agg::parse(agg).unwrap(), &by, &g, &histogram()).unwrap()
}

#[test]
fn histogram_percentiles_interpolate_inside_the_bucket() {
    // Summed buckets: le10 10, le50 40, le100 58, +Inf 60.
    // p50: rank 30 falls in (10, 50]: 10 + 40 × (30 − 10) / 30.
    assert_points(
        &hist_eval("p50", &[])[0].points,
        &[(60_000, 10.0 + 40.0 * 20.0 / 30.0)],
    );
    // p90: rank 54 in (50, 100]: 50 + 50 × (54 − 40) / 18.
    assert_points(
        &hist_eval("p90", &[])[0].points,
        &[(60_000, 50.0 + 50.0 * 14.0 / 18.0)],
    );
    // p99: rank 59.4 is past le100 (58): the largest finite bound.
    assert_points(&hist_eval("p99", &[])[0].points, &[(60_000, 100.0)]);
    // Host a alone: le10 10, le50 30, +Inf 40; p50 rank 20: 10 + 40 × 10 / 20.
    let by_host = hist_eval("p50", &["host"]);
    assert_eq!(by_host[0].labels, Labels::from_pairs([("host", "a")]));
    assert_points(&by_host[0].points, &[(60_000, 30.0)]);
}

#[test]
fn histogram_counts_sums_and_averages_read_their_parts() {
    assert_points(&hist_eval("avg", &[])[0].points, &[(60_000, 1500.0 / 60.0)]);
    assert_points(&hist_eval("sum", &[])[0].points, &[(60_000, 1500.0)]);
    assert_points(&hist_eval("increase", &[])[0].points, &[(60_000, 60.0)]);
    assert_points(&hist_eval("rate", &[])[0].points, &[(60_000, 1.0)]);
    assert_points(&hist_eval("count", &[])[0].points, &[(60_000, 2.0)]);
    let g = Grid::aligned(60_000, 60_000, 60_000);
    let e = evaluate("d", true, Agg::Min, &[], &g, &histogram()).unwrap_err();
    assert!(err_text(e).contains("keeps only buckets"));
    assert_eq!(
        stored_names("d", true, Agg::Avg).unwrap(),
        vec!["d_sum".to_string(), "d_count".to_string()]
    );
    assert_eq!(
        stored_names("d", false, Agg::Max).unwrap(),
        vec!["d".to_string()]
    );
}

#[test]
fn histogram_quantile_edge_cases() {
    let inf = f64::INFINITY;
    assert_eq!(
        histogram_quantile(0.5, &[(10.0, 10.0), (inf, 10.0)]),
        Some(5.0)
    );
    assert_eq!(histogram_quantile(0.5, &[(10.0, 10.0), (20.0, 10.0)]), None);
    assert_eq!(histogram_quantile(0.5, &[(10.0, 0.0), (inf, 0.0)]), None);
    assert_eq!(histogram_quantile(0.5, &[(inf, 5.0)]), None);
    // A count that goes down is raised to the one before: (10, 8), (20, 8), (inf, 10).
    let q = histogram_quantile(0.5, &[(10.0, 8.0), (20.0, 6.0), (inf, 10.0)]).unwrap();
    assert!(close(q, 10.0 * 5.0 / 8.0));
    assert_eq!(
        histogram_quantile(0.5, &[(-1.0, 4.0), (inf, 4.0)]),
        Some(-1.0)
    );
    assert_eq!(parse_le("+Inf"), Some(inf));
    assert_eq!(parse_le("0.25"), Some(0.25));
    assert_eq!(parse_le("x"), None);
}

#[test]
fn gauge_percentile_of_raw_samples() {
    let a = gauge(
        &[("h", "a")],
        &(1..=5).map(|i| (i, i as f64)).collect::<Vec<_>>(),
    );
    let b = gauge(
        &[("h", "b")],
        &(6..=10).map(|i| (i, i as f64)).collect::<Vec<_>>(),
    );
    let g = Grid::aligned(10, 10, 10);
    // 1..=10: rank 0.9 × 9 = 8.1 between 9 and 10.
    assert_points(
        &eval("p90", &[], &g, &[a.clone(), b.clone()])[0].points,
        &[(10, 9.1)],
    );
    assert_points(&eval("p50", &[], &g, &[a, b])[0].points, &[(10, 5.5)]);
    let mut v = vec![3.0];
    assert_eq!(quantile(0.99, &mut v), Some(3.0));
    assert_eq!(quantile(0.5, &mut []), None);
}

#[test]
fn other_series_and_non_finite_values_are_left_out() {
    let g = Grid::aligned(10, 10, 10);
    let other = ser("h", &[], MetricKind::Gauge, &[(5, 1.0)]);
    assert!(eval("avg", &[], &g, &[other]).is_empty());
    // Histogram avg over no observations is 0/0: no point.
    let h = MetricKind::Histogram;
    let s = vec![
        ser("d_sum", &[], h, &[(0, 0.0), (10, 0.0)]),
        ser("d_count", &[], h, &[(0, 0.0), (10, 0.0)]),
    ];
    assert!(
        evaluate("d", true, Agg::Avg, &[], &g, &s)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn aggregation_names() {
    assert_eq!(Agg::parse("AVG").unwrap(), Agg::Avg);
    let Agg::Percentile(q) = Agg::parse("p99.9").unwrap() else {
        panic!("not a percentile")
    };
    assert!(close(q, 0.999));
    assert_eq!(Agg::parse("p50").unwrap(), Agg::Percentile(0.5));
    let m = err_text(Agg::parse("median").unwrap_err());
    assert!(m.contains("'median'") && m.contains("avg, min, max, sum, count, rate, increase"));
    for bad in ["p", "p0", "p100", "p1e1", "p.5", "p5.", "p-1", "p9.9.9"] {
        assert!(Agg::parse(bad).is_err(), "{bad}");
    }
}

fn params(pairs: &[(&str, &str)]) -> Params {
    Params::from_pairs(pairs.iter().copied())
}

const NOW_NS: u64 = 1_800_000_000_000_000_000;

#[test]
fn query_parameters_and_defaults() {
    let raw = "name=cpu&match=host%3Dweb-1&match=service%3D~pay.*&by=host,dc&by=zone&by=host";
    let p = Params::parse(Some(raw)).unwrap();
    let q = RangeQuery::from_params(&p, NOW_NS).unwrap();
    assert_eq!(q.name, "cpu");
    assert_eq!(q.matchers.len(), 2);
    assert_eq!(q.by, vec!["host", "dc", "zone"]);
    assert_eq!(q.end, 1_800_000_000_000);
    assert_eq!(q.start, q.end - 3_600_000);
    assert_eq!(q.step, 15_000);
    assert_eq!(q.agg, Agg::Avg);
    let g = q.grid().unwrap();
    assert_eq!(g.first % g.step, 0);
    assert!(g.points == 240 || g.points == 241);
    let q = RangeQuery::from_params(
        &params(&[
            ("name", "x"),
            ("start", "2h"),
            ("end", "1h"),
            ("step", "60"),
            ("agg", "p99"),
        ]),
        NOW_NS,
    )
    .unwrap();
    assert_eq!((q.end - q.start, q.step), (3_600_000, 60_000));
    assert_eq!(q.agg_name, "p99");
}

#[test]
fn bad_parameters_are_400s_that_say_why() {
    let bad = |pairs: &[(&str, &str)]| {
        err_text(RangeQuery::from_params(&params(pairs), NOW_NS).unwrap_err())
    };
    assert!(bad(&[]).contains("name is required"));
    assert!(bad(&[("name", "x"), ("match", "host")]).contains("cannot read matcher"));
    assert!(bad(&[("name", "x"), ("start", "someday")]).contains("start:"));
    assert!(bad(&[("name", "x"), ("start", "1h"), ("end", "2h")]).contains("start is after end"));
    assert!(bad(&[("name", "x"), ("step", "0s")]).contains("longer than zero"));
    assert!(bad(&[("name", "x"), ("agg", "median")]).contains("use avg, min, max"));
}

#[test]
fn step_too_small_names_a_step_that_fits() {
    let q = RangeQuery::from_params(
        &params(&[
            ("name", "x"),
            ("start", "2026-01-01T00:00:00Z"),
            ("end", "2026-01-02T00:00:00Z"),
            ("step", "1s"),
        ]),
        NOW_NS,
    )
    .unwrap();
    let m = err_text(q.grid().unwrap_err());
    assert!(m.contains("86,401 points"), "{m}");
    assert!(m.contains("the most is 11,000"), "{m}");
    assert!(m.contains("step=8s"), "{m}");
    let q = RangeQuery { step: 8_000, ..q };
    assert!(q.grid().unwrap().points <= MAX_POINTS_PER_SERIES);
}

#[test]
fn series_and_answer_limits() {
    let g = Grid::aligned(10, 10, 10);
    let many: Vec<SelectedSeries> = (0..=MAX_SERIES)
        .map(|i| gauge(&[("i", &i.to_string())], &[(10, 1.0)]))
        .collect();
    let e = evaluate("g", false, Agg::Avg, &[], &g, &many).unwrap_err();
    assert!(err_text(e).contains("at most 10,000"));
    // 200 groups × 11,000 points is past 2,000,000.
    let wide = Grid::aligned(1000, 11_000_000, 1000);
    assert_eq!(wide.points, 11_000);
    let groups: Vec<SelectedSeries> = (0..200)
        .map(|i| gauge(&[("i", &i.to_string())], &[(1000, 1.0)]))
        .collect();
    let e = evaluate("g", false, Agg::Avg, &["i".to_string()], &wide, &groups).unwrap_err();
    let m = err_text(e);
    assert!(m.contains("2,000,000") && m.contains("2,200,000"), "{m}");
    assert_eq!(thousands(1234567), "1,234,567");
    assert_eq!(thousands(999), "999");
}

#[test]
fn labels_pinned_by_equality_matchers_name_the_groups() {
    let m = |s: &str| skein_store::tsdb::Matcher::parse(s).unwrap();
    let mut out = vec![
        ResultSeries {
            labels: Labels::from_pairs([("host", "b")]),
            points: vec![(10, 1.0)],
        },
        ResultSeries {
            labels: Labels::default(),
            points: vec![(10, 2.0)],
        },
    ];
    add_pinned_labels(
        &mut out,
        &[m("service=pay"), m("zone=~eu.*"), m("dc!=x"), m("rack=")],
    );
    assert_eq!(
        out[0].labels,
        Labels::from_pairs([("host", "b"), ("service", "pay")])
    );
    assert_eq!(out[1].labels, Labels::from_pairs([("service", "pay")]));
}

/// Many samples take the threaded path; the answer must equal a plain computation.
#[test]
fn threaded_folds_match_a_plain_computation() {
    let n_series = 60;
    let n_samples = 5_000i64;
    let series: Vec<SelectedSeries> = (0..n_series)
        .map(|i| {
            let s: Vec<(i64, f64)> = (0..n_samples)
                .map(|t| (t * 1000, ((t * 7 + i * 13) % 101) as f64 + (t / 997) as f64))
                .collect();
            counter(&[("m", &(i % 3).to_string())], &s)
        })
        .collect();
    let g = Grid::aligned(60_000, n_samples * 1000, 60_000);
    for agg in ["avg", "max", "increase", "count", "p50"] {
        let got = eval(agg, &["m"], &g, &series);
        assert_eq!(got.len(), 3);
        for out in &got {
            let m = out.labels.get("m").unwrap();
            let members: Vec<&SelectedSeries> = series
                .iter()
                .filter(|s| s.labels.get("m") == Some(m))
                .collect();
            for &(t, v) in &out.points {
                // The window ends at t and starts at the multiple of the step before it (the
                // last point, at the range's end, covers less than a step).
                let from = (t + 59_999) / 60_000 * 60_000 - 60_000;
                let mut vals = Vec::new();
                let mut inc = 0.0;
                for s in &members {
                    let mut prev = s.last_at_or_before(from);
                    s.for_each(from + 1, t, |ts, x| {
                        vals.push(x);
                        if let Some((_, p)) = prev {
                            inc += if x >= p { x - p } else { x };
                        }
                        prev = Some((ts, x));
                    });
                }
                let want = match agg {
                    "avg" => vals.iter().sum::<f64>() / vals.len() as f64,
                    "max" => vals.iter().copied().fold(f64::MIN, f64::max),
                    "increase" => inc,
                    "count" => members.len() as f64,
                    _ => quantile(0.5, &mut vals).unwrap(),
                };
                assert!(
                    (v - want).abs() < 1e-6 * want.abs().max(1.0),
                    "{agg} at {t}: {v} vs {want}"
                );
            }
        }
    }
}

/// Prints the time of the speed goal's query (24 h at 10 s, 1,000 series, step 60 s, avg).
/// Run with `cargo test --release -p skein-query --lib speed -- --ignored --nocapture`.
#[test]
#[ignore = "timing printout; run by hand in release"]
fn speed_24h_of_1000_series() {
    let day = 86_400_000i64;
    let series: Vec<SelectedSeries> = (0..1000)
        .map(|i| {
            let s: Vec<(i64, f64)> = (0..8640)
                .map(|t| (t * 10_000, 50.0 + ((t * 31 + i) % 200) as f64 * 0.25))
                .collect();
            gauge(&[("host", &format!("h{}", i % 50))], &s)
        })
        .collect();
    let g = Grid::aligned(0, day, 60_000);
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = std::time::Instant::now();
        let out = evaluate("g", false, Agg::Avg, &[], &g, &series).unwrap();
        times.push(t.elapsed());
        assert_eq!(out[0].points.len(), 1441);
    }
    times.sort();
    println!(
        "avg over 1,000 series × 8,640 samples, step 60 s: median {:?}, worst {:?}, cores {:?}",
        times[times.len() / 2],
        times[times.len() - 1],
        std::thread::available_parallelism()
    );
    // The store's decoding alone, on one thread, for comparison.
    let t = std::time::Instant::now();
    let mut acc = 0.0;
    for s in &series {
        s.for_each(i64::MIN, i64::MAX, |_, v| acc += v);
    }
    println!("decoding alone, one thread: {:?} ({acc})", t.elapsed());
}

/// NaN and infinite samples (Prometheus's staleness markers among them) are skipped as if
/// absent: every aggregation, of plain series and of a histogram's parts, answers exactly as
/// it does over the same series without them, and the answer is valid JSON.
#[test]
fn non_finite_samples_are_skipped_as_if_absent() {
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let odd = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, stale];
    // (dirty, clean): samples every 10 s (a counter-like climb with a reset at 300 s); in the
    // dirty one a non-finite value between some of them, and instead of every sample of
    // (200 s, 260 s] of the first series, so one of its windows has only non-finite values.
    let pair = |name: &str, labels: &[(&str, &str)], i: i64, scale: f64| {
        let (mut dirty, mut clean) = (Vec::new(), Vec::new());
        for t in 0..60i64 {
            let ts = t * 10_000;
            let v = ((t % 30) * 3 + i) as f64 * scale;
            let bad = odd[((t + i) % 4) as usize];
            if i == 0 && (21..=26).contains(&t) {
                dirty.push((ts, bad));
            } else {
                dirty.push((ts, v));
                clean.push((ts, v));
            }
            if (t + i) % 3 == 0 {
                dirty.push((ts + 5_000, bad));
            }
        }
        let kind = if name.starts_with('d') {
            MetricKind::Histogram
        } else {
            MetricKind::Counter
        };
        (
            ser(name, labels, kind, &dirty),
            ser(name, labels, kind, &clean),
        )
    };
    let (mut dirty, mut clean) = (Vec::new(), Vec::new());
    let mut add = |(d, c): (SelectedSeries, SelectedSeries)| {
        dirty.push(d);
        clean.push(c);
    };
    for i in 0..4i64 {
        let host = format!("h{}", i % 2);
        let labels = [("host", host.as_str())];
        add(pair("g", &labels, i, 1.0));
        for (le, scale) in [("1", 0.5), ("+Inf", 1.0)] {
            add(pair("d_bucket", &[("host", &host), ("le", le)], i, scale));
        }
        add(pair("d_sum", &labels, i, 0.25));
        add(pair("d_count", &labels, i, 1.0));
    }
    let mut answers = 0;
    for grid in [
        Grid::aligned(60_000, 590_000, 60_000),
        Grid::aligned(0, 595_000, 10_000),
        Grid::single(250_000, 60_000),
    ] {
        for agg in [
            "avg", "min", "max", "sum", "count", "rate", "increase", "p50", "p99",
        ] {
            for (family, histogram) in [("g", false), ("d", true)] {
                if histogram && (agg == "min" || agg == "max") {
                    continue; // refused: a histogram keeps buckets, not samples
                }
                for by in [&[][..], &["host".to_string()][..]] {
                    let a = Agg::parse(agg).unwrap();
                    let got = evaluate(family, histogram, a, by, &grid, &dirty).unwrap();
                    let want = evaluate(family, histogram, a, by, &grid, &clean).unwrap();
                    assert_eq!(got, want, "{agg} of {family} by {by:?} on {grid:?}");
                    let json = serde_json::to_string(&got).unwrap();
                    assert!(!json.contains("null"), "{json}");
                    answers += got.len();
                }
            }
        }
    }
    assert!(answers > 100, "{answers}");
    // The window of only non-finite values has no point of its own.
    let only = evaluate(
        "g",
        false,
        Agg::Count,
        &[],
        &Grid::single(260_000, 60_000),
        &dirty[..1],
    )
    .unwrap();
    assert!(only.is_empty(), "{only:?}");
}
