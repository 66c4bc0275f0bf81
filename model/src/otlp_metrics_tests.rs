//! Tests of the OTLP metrics conversion.

use super::*;
use crate::proto::common::v1::ArrayValue;
use crate::proto::metrics::v1::exponential_histogram_data_point::Buckets;
use crate::proto::metrics::v1::summary_data_point::ValueAtQuantile;
use crate::proto::metrics::v1::{
    ExponentialHistogram, Gauge, Histogram, ResourceMetrics, ScopeMetrics, Sum, Summary,
};

fn val(v: any_value::Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(v) })
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: val(any_value::Value::StringValue(v.into())),
        ..Default::default()
    }
}

fn metric(name: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.into(),
        unit: "ms".into(),
        data: Some(data),
        ..Default::default()
    }
}

fn req(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn run(r: &ExportMetricsServiceRequest) -> (MetricBatch, Rejection) {
    metrics_from_otlp(r, &MetricLimits::default(), 42_000)
}

fn int_point(attrs: Vec<KeyValue>, t_ns: u64, v: i64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        time_unix_nano: t_ns,
        value: Some(number_data_point::Value::AsInt(v)),
        ..Default::default()
    }
}

fn double_point(attrs: Vec<KeyValue>, t_ns: u64, v: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        time_unix_nano: t_ns,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn gauge(points: Vec<NumberDataPoint>) -> metric::Data {
    metric::Data::Gauge(Gauge {
        data_points: points,
    })
}

fn sum(points: Vec<NumberDataPoint>, monotonic: bool, temporality: i32) -> metric::Data {
    metric::Data::Sum(Sum {
        data_points: points,
        aggregation_temporality: temporality,
        is_monotonic: monotonic,
    })
}

/// The series of a name and labels.
fn series<'b>(b: &'b MetricBatch, name: &str, labels: &[(&str, &str)]) -> (u32, &'b SeriesSpec) {
    let want = Labels::from_pairs(labels.iter().copied());
    let i = b
        .series
        .iter()
        .position(|s| s.name == name && s.labels == want)
        .unwrap_or_else(|| panic!("no series {name} {want} in {:#?}", b.series));
    (i as u32, &b.series[i])
}

/// The sample values of a series, in order.
fn values(b: &MetricBatch, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    let (i, _) = series(b, name, labels);
    b.samples
        .iter()
        .filter(|s| s.series == i)
        .map(|s| s.value)
        .collect()
}

/// `le` label and value of each bucket series, in batch order.
fn buckets(b: &MetricBatch, name: &str) -> Vec<(String, f64)> {
    let name = format!("{name}_bucket");
    b.samples
        .iter()
        .filter(|s| b.series[s.series as usize].name == name)
        .map(|s| {
            let le = b.series[s.series as usize].labels.get("le").unwrap();
            (le.to_string(), s.value)
        })
        .collect()
}

#[test]
fn empty_request_gives_empty_batch() {
    let (b, rej) = run(&ExportMetricsServiceRequest::default());
    assert!(b.is_empty() && b.series.is_empty());
    assert_eq!(rej, Rejection::default());
}

#[test]
fn gauge_int_and_double() {
    let r = req(
        vec![],
        vec![metric(
            "cpu.usage",
            gauge(vec![
                int_point(vec![kv("core", "0")], 3_000_000_000, 7),
                double_point(vec![kv("core", "1")], 3_000_000_000, 0.25),
            ]),
        )],
    );
    let (b, rej) = run(&r);
    assert_eq!(rej.count, 0);
    assert_eq!(b.series.len(), 2);
    let (_, s) = series(&b, "cpu.usage", &[("core", "0")]);
    assert_eq!(
        (s.kind, s.delta, s.unit.as_str()),
        (MetricKind::Gauge, false, "ms")
    );
    assert_eq!(values(&b, "cpu.usage", &[("core", "0")]), vec![7.0]);
    assert_eq!(values(&b, "cpu.usage", &[("core", "1")]), vec![0.25]);
    assert!(b.samples.iter().all(|s| s.ts_ms == 3000));
}

#[test]
fn sums_kind_and_delta() {
    let delta = AggregationTemporality::Delta as i32;
    let cumulative = AggregationTemporality::Cumulative as i32;
    let r = req(
        vec![],
        vec![
            metric("a", sum(vec![int_point(vec![], 1, 1)], true, delta)),
            metric("b", sum(vec![int_point(vec![], 1, 2)], true, cumulative)),
            metric(
                "c",
                sum(vec![double_point(vec![], 1, -3.0)], false, cumulative),
            ),
            metric("d", sum(vec![int_point(vec![], 1, 4)], false, 0)),
            metric(
                "e",
                sum(
                    vec![NumberDataPoint::default(), int_point(vec![], 1, 5)],
                    true,
                    delta,
                ),
            ),
        ],
    );
    let (b, rej) = run(&r);
    let kd = |n: &str| {
        let (_, s) = series(&b, n, &[]);
        (s.kind, s.delta)
    };
    assert_eq!(kd("a"), (MetricKind::Counter, true));
    assert_eq!(kd("b"), (MetricKind::Counter, false));
    assert_eq!(kd("c"), (MetricKind::UpDownCounter, false));
    assert_eq!(kd("d"), (MetricKind::UpDownCounter, false));
    assert_eq!(values(&b, "c", &[]), vec![-3.0]);
    // A point without a value is rejected, the other one kept.
    assert_eq!(values(&b, "e", &[]), vec![5.0]);
    assert_eq!(rej.count, 1);
    assert_eq!(rej.first_reason.unwrap(), "metric 'e' point 0: no value");
}

#[test]
fn resource_labels_are_mapped_and_win() {
    let resource = vec![
        kv("service.name", "payment"),
        kv("service.namespace", "shop"),
        kv("service.instance.id", "i-1"),
        kv("host.name", "h1"),
        kv("deployment.environment", "old"),
        kv("deployment.environment.name", "prod"),
        kv("skein.agent.id", "ag"),
        kv("k8s.namespace.name", "ns"),
        kv("k8s.pod.name", "p-1"),
        kv("container.name", "c"),
        kv("telemetry.sdk.name", "opentelemetry"),
    ];
    let attrs = vec![
        kv("service", "ignored"),
        kv("route", "/pay"),
        KeyValue {
            key: "n".into(),
            value: val(any_value::Value::IntValue(-3)),
            ..Default::default()
        },
        KeyValue {
            key: "f".into(),
            value: val(any_value::Value::DoubleValue(1.5)),
            ..Default::default()
        },
        KeyValue {
            key: "ok".into(),
            value: val(any_value::Value::BoolValue(true)),
            ..Default::default()
        },
        KeyValue {
            key: "raw".into(),
            value: val(any_value::Value::BytesValue(vec![0xab, 0x01])),
            ..Default::default()
        },
        KeyValue {
            key: "list".into(),
            value: val(any_value::Value::ArrayValue(ArrayValue {
                values: vec![
                    val(any_value::Value::IntValue(1)).unwrap(),
                    val(any_value::Value::StringValue("x".into())).unwrap(),
                ],
            })),
            ..Default::default()
        },
    ];
    let r = req(
        resource,
        vec![metric("m", gauge(vec![int_point(attrs, 1, 1)]))],
    );
    let (b, rej) = run(&r);
    assert_eq!(rej.count, 0);
    let got: Vec<(&str, &str)> = b.series[0].labels.iter().collect();
    assert_eq!(
        got,
        vec![
            ("agent", "ag"),
            ("container", "c"),
            ("env", "prod"),
            ("f", "1.5"),
            ("host", "h1"),
            ("instance", "i-1"),
            ("k8s_namespace", "ns"),
            ("list", r#"[1,"x"]"#),
            ("n", "-3"),
            ("namespace", "shop"),
            ("ok", "true"),
            ("pod", "p-1"),
            ("raw", "ab01"),
            ("route", "/pay"),
            ("service", "payment"),
        ]
    );
}

#[test]
fn histogram_buckets_are_cumulative() {
    let h = metric::Data::Histogram(Histogram {
        data_points: vec![HistogramDataPoint {
            attributes: vec![kv("route", "/")],
            time_unix_nano: 5_000_000,
            count: 10,
            sum: Some(7.5),
            bucket_counts: vec![1, 2, 3, 4],
            explicit_bounds: vec![0.005, 1.0, 2.5],
            ..Default::default()
        }],
        aggregation_temporality: AggregationTemporality::Delta as i32,
    });
    let (b, rej) = run(&req(vec![], vec![metric("lat", h)]));
    assert_eq!(rej.count, 0);
    assert_eq!(
        buckets(&b, "lat"),
        vec![
            ("0.005".into(), 1.0),
            ("1".into(), 3.0),
            ("2.5".into(), 6.0),
            ("+Inf".into(), 10.0),
        ]
    );
    assert_eq!(values(&b, "lat_count", &[("route", "/")]), vec![10.0]);
    assert_eq!(values(&b, "lat_sum", &[("route", "/")]), vec![7.5]);
    assert_eq!(b.series.len(), 6);
    for s in &b.series {
        assert_eq!(
            (s.kind, s.delta, s.unit.as_str()),
            (MetricKind::Histogram, true, "ms")
        );
    }
    assert!(b.samples.iter().all(|s| s.ts_ms == 5));
}

#[test]
fn histogram_with_bad_bucket_count_is_rejected_alone() {
    let h = metric::Data::Histogram(Histogram {
        data_points: vec![
            HistogramDataPoint {
                count: 3,
                bucket_counts: vec![1, 2],
                explicit_bounds: vec![1.0, 2.0],
                ..Default::default()
            },
            // No buckets and no sum: only `_count`.
            HistogramDataPoint {
                count: 4,
                ..Default::default()
            },
        ],
        aggregation_temporality: AggregationTemporality::Cumulative as i32,
    });
    let (b, rej) = run(&req(vec![], vec![metric("lat", h)]));
    assert_eq!(rej.count, 1);
    let reason = rej.first_reason.unwrap();
    assert!(
        reason.contains("point 0") && reason.contains("2 bucket counts for 2 bounds"),
        "{reason}"
    );
    assert_eq!(b.series.len(), 1);
    assert_eq!(values(&b, "lat_count", &[]), vec![4.0]);
    assert!(!b.series[0].delta);
}

fn exp_histogram(p: ExponentialHistogramDataPoint) -> metric::Data {
    metric::Data::ExponentialHistogram(ExponentialHistogram {
        data_points: vec![p],
        aggregation_temporality: AggregationTemporality::Cumulative as i32,
    })
}

#[test]
fn exponential_histogram_scale_0() {
    let p = ExponentialHistogramDataPoint {
        count: 12,
        sum: Some(20.0),
        scale: 0,
        zero_count: 4,
        // Indexes -1, 0, 1: (0.5, 1], (1, 2], (2, 4].
        positive: Some(Buckets {
            offset: -1,
            bucket_counts: vec![1, 2, 3],
        }),
        negative: Some(Buckets {
            offset: 0,
            bucket_counts: vec![2],
        }),
        ..Default::default()
    };
    let (b, rej) = run(&req(vec![], vec![metric("e", exp_histogram(p))]));
    assert_eq!(rej.count, 0);
    assert_eq!(
        buckets(&b, "e"),
        vec![
            ("1".into(), 5.0),
            ("2".into(), 7.0),
            ("4".into(), 10.0),
            ("+Inf".into(), 12.0),
        ]
    );
    assert_eq!(values(&b, "e_count", &[]), vec![12.0]);
    assert_eq!(values(&b, "e_sum", &[]), vec![20.0]);
    assert!(b.series.iter().all(|s| s.kind == MetricKind::Histogram));
}

#[test]
fn exponential_histogram_scale_5_is_merged_to_scale_3() {
    let p = ExponentialHistogramDataPoint {
        count: 15,
        scale: 5,
        // Scale-5 indexes 0..=3 become scale-3 index 0, index 4 becomes 1.
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: vec![1, 2, 3, 4, 5],
        }),
        ..Default::default()
    };
    let (b, rej) = run(&req(vec![], vec![metric("e", exp_histogram(p))]));
    assert_eq!(rej.count, 0);
    let got = buckets(&b, "e");
    assert_eq!(got.len(), 3, "{got:?}");
    let bound = |s: &str| s.parse::<f64>().unwrap();
    assert!(
        (bound(&got[0].0) - 2f64.powf(0.125)).abs() < 1e-12,
        "{got:?}"
    );
    assert!(
        (bound(&got[1].0) - 2f64.powf(0.25)).abs() < 1e-12,
        "{got:?}"
    );
    assert_eq!((got[0].1, got[1].1), (10.0, 15.0));
    assert_eq!(got[2], ("+Inf".into(), 15.0));
    // No sum sent: no `_sum`.
    assert_eq!(b.series.len(), 4);

    // Negative indexes round down when merged: scale 4, indexes -2..=1 give -1 and 0.
    let p = ExponentialHistogramDataPoint {
        count: 10,
        scale: 4,
        positive: Some(Buckets {
            offset: -2,
            bucket_counts: vec![1, 2, 3, 4],
        }),
        ..Default::default()
    };
    let (b, _) = run(&req(vec![], vec![metric("e", exp_histogram(p))]));
    let got = buckets(&b, "e");
    assert_eq!(
        got,
        vec![
            ("1".into(), 3.0),
            (float_text(2f64.powf(0.125)), 10.0),
            ("+Inf".into(), 10.0)
        ]
    );

    // Out-of-range scale is rejected.
    let p = ExponentialHistogramDataPoint {
        scale: 21,
        ..Default::default()
    };
    let (b, rej) = run(&req(vec![], vec![metric("e", exp_histogram(p))]));
    assert!(b.is_empty());
    assert_eq!(rej.count, 1);
}

#[test]
fn summary_quantiles_sum_and_count() {
    let s = metric::Data::Summary(Summary {
        data_points: vec![SummaryDataPoint {
            time_unix_nano: 1_000_000,
            count: 100,
            sum: 250.0,
            quantile_values: vec![
                ValueAtQuantile {
                    quantile: 0.5,
                    value: 2.0,
                },
                ValueAtQuantile {
                    quantile: 0.99,
                    value: 9.0,
                },
                ValueAtQuantile {
                    quantile: 1.0,
                    value: 12.0,
                },
            ],
            ..Default::default()
        }],
    });
    let (b, rej) = run(&req(vec![], vec![metric("rpc", s)]));
    assert_eq!(rej.count, 0);
    assert_eq!(values(&b, "rpc", &[("quantile", "0.5")]), vec![2.0]);
    assert_eq!(values(&b, "rpc", &[("quantile", "0.99")]), vec![9.0]);
    assert_eq!(values(&b, "rpc", &[("quantile", "1")]), vec![12.0]);
    assert_eq!(values(&b, "rpc_sum", &[]), vec![250.0]);
    assert_eq!(values(&b, "rpc_count", &[]), vec![100.0]);
    assert!(
        b.series
            .iter()
            .all(|s| s.kind == MetricKind::Summary && !s.delta)
    );
}

#[test]
fn no_recorded_value_is_skipped_silently() {
    let stale = NumberDataPoint {
        flags: DataPointFlags::NoRecordedValueMask as u32,
        ..Default::default()
    };
    let r = req(
        vec![],
        vec![
            metric("g", gauge(vec![stale.clone(), int_point(vec![], 1, 1)])),
            // A bad name counts only the points with a value.
            metric("", gauge(vec![stale, int_point(vec![], 1, 1)])),
        ],
    );
    let (b, rej) = run(&r);
    assert_eq!(b.samples.len(), 1);
    assert_eq!(rej.count, 1);
    assert!(rej.first_reason.unwrap().contains("empty name"));
}

#[test]
fn time_zero_means_now_and_nan_passes() {
    let r = req(
        vec![],
        vec![metric(
            "g",
            gauge(vec![
                double_point(vec![], 0, f64::NAN),
                double_point(vec![], 1_700_000_000_123_456_789, f64::INFINITY),
            ]),
        )],
    );
    let (b, rej) = run(&r);
    assert_eq!(rej.count, 0);
    assert_eq!(b.samples[0].ts_ms, 42_000);
    assert!(b.samples[0].value.is_nan());
    assert_eq!(b.samples[1].ts_ms, 1_700_000_000_123);
    assert_eq!(b.samples[1].value, f64::INFINITY);
}

/// NaN (any bits, Prometheus's staleness marker among them), ±Inf and -0 are kept bit for
/// bit in gauges, sums, a histogram's sum and a summary's quantiles and sum; only the "no
/// recorded value" flag means no sample.
#[test]
fn non_finite_values_keep_their_bits_in_every_kind() {
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let odd = [
        stale,
        f64::NAN,
        f64::from_bits(0xfff8_0000_0000_0001),
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
    ];
    let points = |t0: u64| -> Vec<NumberDataPoint> {
        odd.iter()
            .enumerate()
            .map(|(i, v)| double_point(vec![], t0 + i as u64 * 1_000_000, *v))
            .collect()
    };
    let flagged = NumberDataPoint {
        flags: DataPointFlags::NoRecordedValueMask as u32,
        ..double_point(vec![], 9_000_000, stale)
    };
    let mut gauge_points = points(1_000_000);
    gauge_points.push(flagged);
    let h = metric::Data::Histogram(Histogram {
        data_points: vec![HistogramDataPoint {
            time_unix_nano: 1_000_000,
            count: 2,
            sum: Some(f64::INFINITY),
            bucket_counts: vec![1, 1],
            explicit_bounds: vec![1.0],
            ..Default::default()
        }],
        aggregation_temporality: AggregationTemporality::Cumulative as i32,
    });
    let q = metric::Data::Summary(Summary {
        data_points: vec![SummaryDataPoint {
            time_unix_nano: 1_000_000,
            count: 0,
            sum: stale,
            quantile_values: vec![ValueAtQuantile {
                quantile: 0.5,
                value: f64::NAN,
            }],
            ..Default::default()
        }],
    });
    let r = req(
        vec![],
        vec![
            metric("g", gauge(gauge_points)),
            metric(
                "c",
                sum(
                    points(1_000_000),
                    true,
                    AggregationTemporality::Cumulative as i32,
                ),
            ),
            metric("lat", h),
            metric("rpc", q),
        ],
    );
    let (b, rej) = run(&r);
    assert_eq!(rej.count, 0, "{:?}", rej.first_reason);
    let bits = |v: Vec<f64>| -> Vec<u64> { v.into_iter().map(f64::to_bits).collect() };
    let want = bits(odd.to_vec());
    assert_eq!(
        bits(values(&b, "g", &[])),
        want,
        "gauge, the flagged point left out"
    );
    assert_eq!(bits(values(&b, "c", &[])), want, "sum");
    assert_eq!(values(&b, "lat_sum", &[]), vec![f64::INFINITY]);
    assert_eq!(
        bits(values(&b, "rpc", &[("quantile", "0.5")])),
        vec![f64::NAN.to_bits()]
    );
    assert_eq!(bits(values(&b, "rpc_sum", &[])), vec![stale.to_bits()]);
}

#[test]
fn too_long_name_rejects_every_point_of_the_metric() {
    let long = "x".repeat(257);
    let r = req(
        vec![],
        vec![
            metric(
                &long,
                gauge(vec![int_point(vec![], 1, 1), int_point(vec![], 2, 2)]),
            ),
            metric(&"y".repeat(256), gauge(vec![int_point(vec![], 1, 3)])),
        ],
    );
    let (b, rej) = run(&r);
    assert_eq!(rej.count, 2);
    assert!(rej.first_reason.unwrap().contains("257 bytes"));
    assert_eq!(b.series.len(), 1);
    assert_eq!(b.samples.len(), 1);
}

#[test]
fn too_many_labels_or_long_label_name_rejected() {
    let many = |n: usize| -> Vec<KeyValue> { (0..n).map(|i| kv(&format!("k{i}"), "v")).collect() };
    let r = req(
        vec![kv("service.name", "s")],
        vec![metric(
            "g",
            gauge(vec![
                // 63 + service = 64: kept.
                int_point(many(63), 1, 1),
                // 64 + service = 65: rejected.
                int_point(many(64), 1, 2),
                // Repeated names count once; an empty value is no label.
                int_point(
                    [
                        many(60),
                        many(60),
                        vec![kv("empty", "")],
                        vec![kv("service", "x")],
                    ]
                    .concat(),
                    1,
                    3,
                ),
                int_point(vec![kv(&"n".repeat(129), "v")], 1, 4),
            ]),
        )],
    );
    let (b, rej) = run(&r);
    assert_eq!(rej.count, 2);
    assert_eq!(
        rej.first_reason.unwrap(),
        "metric 'g' point 1: 65 labels, more than the limit of 64"
    );
    let kept: Vec<f64> = b.samples.iter().map(|s| s.value).collect();
    assert_eq!(kept, vec![1.0, 3.0]);
    assert_eq!(b.series[0].labels.len(), 64);
    assert_eq!(b.series[1].labels.len(), 61);
}

#[test]
fn series_are_deduplicated_within_a_batch() {
    let h = |t: u64| HistogramDataPoint {
        attributes: vec![kv("a", "1")],
        time_unix_nano: t,
        count: 2,
        sum: Some(1.0),
        bucket_counts: vec![1, 1],
        explicit_bounds: vec![0.5],
        ..Default::default()
    };
    let hist = metric::Data::Histogram(Histogram {
        data_points: vec![h(1_000_000), h(2_000_000)],
        aggregation_temporality: 0,
    });
    let mut r = req(
        vec![],
        vec![
            metric(
                "g",
                gauge(vec![
                    int_point(vec![kv("a", "1"), kv("b", "2")], 1_000_000, 1),
                    int_point(vec![kv("b", "2"), kv("a", "1")], 2_000_000, 2),
                ]),
            ),
            metric("h", hist),
        ],
    );
    // The same series again, from a second resource with the same labels.
    r.resource_metrics.push(r.resource_metrics[0].clone());
    let (b, rej) = run(&r);
    assert_eq!(rej.count, 0);
    // g, h_bucket{le=0.5}, h_bucket{le=+Inf}, h_count, h_sum.
    assert_eq!(b.series.len(), 5);
    assert_eq!(
        values(&b, "g", &[("a", "1"), ("b", "2")]),
        vec![1.0, 2.0, 1.0, 2.0]
    );
    assert_eq!(values(&b, "h_count", &[("a", "1")]).len(), 4);
    assert_eq!(b.samples.len(), 4 + 4 * 4);
    let mut seen = std::collections::HashSet::new();
    assert!(
        b.series
            .iter()
            .all(|s| seen.insert((s.name.clone(), s.labels.clone())))
    );
}

#[test]
fn long_values_are_cut_at_a_char_boundary() {
    let limits = MetricLimits {
        max_label_value_bytes: 4,
        ..MetricLimits::default()
    };
    // "aé" is 3 bytes; the next "é" would end at byte 5.
    let r = req(
        vec![kv("host.name", "héllo")],
        vec![metric(
            "g",
            gauge(vec![int_point(
                vec![
                    kv("s", "aééé"),
                    KeyValue {
                        key: "n".into(),
                        value: val(any_value::Value::IntValue(123_456)),
                        ..Default::default()
                    },
                ],
                1,
                1,
            )]),
        )],
    );
    let (b, rej) = metrics_from_otlp(&r, &limits, 0);
    assert_eq!(rej.count, 0);
    let l = &b.series[0].labels;
    assert_eq!(l.get("s"), Some("aé"));
    assert_eq!(l.get("n"), Some("1234"));
    assert_eq!(l.get("host"), Some("hél"));
}

#[test]
fn float_text_is_shortest() {
    assert_eq!(float_text(0.005), "0.005");
    assert_eq!(float_text(1.0), "1");
    assert_eq!(float_text(2.5), "2.5");
    assert_eq!(float_text(1e6), "1000000");
    assert_eq!(float_text(f64::INFINITY), "+Inf");
    assert_eq!(pow2(-1.0), 0.5);
    assert_eq!(pow2(10.0), 1024.0);
    assert_eq!(exp_upper_bound(-1, 0), 1.0);
    assert_eq!(exp_upper_bound(0, -1), 4.0);
}
