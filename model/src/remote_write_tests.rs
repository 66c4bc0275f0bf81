//! Tests of [`super::batch_from_write_request`] and of the `prompb` messages.

use super::*;
use crate::prompb::{Label, MetricMetadata, NativeHistogram, Sample};
use prost::Message;

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| Label {
                name: (*n).into(),
                value: (*v).into(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|(t, v)| Sample {
                value: *v,
                timestamp: *t,
            })
            .collect(),
        histograms: vec![],
    }
}

fn meta(family: &str, t: MetricType, unit: &str) -> MetricMetadata {
    MetricMetadata {
        r#type: t as i32,
        metric_family_name: family.into(),
        help: "help".into(),
        unit: unit.into(),
    }
}

fn convert(req: &WriteRequest) -> Converted {
    batch_from_write_request(req, &MetricLimits::default())
}

/// A series as a test compares it: name, labels as pairs, kind.
type Spec = (String, Vec<(String, String)>, MetricKind);

/// Every series of a batch.
fn specs(b: &MetricBatch) -> Vec<Spec> {
    b.series
        .iter()
        .map(|s| (s.name.clone(), s.labels.clone().into_pairs(), s.kind))
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn labels_are_kept_exactly_as_sent() {
    let req = WriteRequest {
        timeseries: vec![
            series(
                &[
                    ("__name__", "http_request_duration_seconds_bucket"),
                    ("job", "api"),
                    ("instance", "10.0.0.1:9090"),
                    ("le", "0.005"),
                    ("service.name", "Ünïcode value with spaces"),
                    ("empty", ""),
                ],
                &[(1_000, 3.0)],
            ),
            series(
                &[
                    ("quantile", "0.99"),
                    ("__name__", "rpc_seconds"),
                    ("Job", "upper"),
                ],
                &[(1_000, 0.25)],
            ),
        ],
        metadata: vec![],
    };
    let c = convert(&req);
    assert_eq!(c.rejection.count, 0, "{:?}", c.rejection);
    assert_eq!(
        specs(&c.batch),
        vec![
            (
                "http_request_duration_seconds_bucket".to_string(),
                pairs(&[
                    ("instance", "10.0.0.1:9090"),
                    ("job", "api"),
                    ("le", "0.005"),
                    ("service.name", "Ünïcode value with spaces"),
                ]),
                MetricKind::Gauge
            ),
            (
                "rpc_seconds".to_string(),
                pairs(&[("Job", "upper"), ("quantile", "0.99")]),
                MetricKind::Gauge
            ),
        ],
        "no service label, no renaming, the empty value dropped as Prometheus does"
    );
    assert_eq!(c.batch.samples.len(), 2);
    assert_eq!(c.batch.samples[1].series, 1);
    assert_eq!(c.batch.samples[1].ts_ms, 1_000);
    assert_eq!(c.batch.samples[1].start_ms, 0);
}

#[test]
fn values_pass_bit_for_bit_staleness_markers_included() {
    let stale = f64::from_bits(STALE_NAN_BITS);
    assert!(stale.is_nan() && is_stale_marker(stale));
    let other_nan = f64::from_bits(0x7ff8_0000_0000_0001);
    assert!(!is_stale_marker(f64::NAN) && !is_stale_marker(other_nan));
    let values = [
        0.0,
        -0.0,
        f64::MIN_POSITIVE / 4.0,
        f64::MAX,
        stale,
        -1.5e-300,
        0.1 + 0.2,
        other_nan,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    let samples: Vec<(i64, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64 * 1000, *v))
        .collect();
    let req = WriteRequest {
        timeseries: vec![
            series(&[("__name__", "v")], &samples),
            // Only a staleness marker: the series ends, and the store is told so.
            series(&[("__name__", "gone"), ("job", "x")], &[(5, stale)]),
        ],
        metadata: vec![],
    };
    let c = convert(&req);
    assert_eq!(c.rejection.count, 0);
    assert_eq!(c.batch.series.len(), 2, "{:?}", c.batch.series);
    let got: Vec<(u32, i64, u64)> = c
        .batch
        .samples
        .iter()
        .map(|s| (s.series, s.ts_ms, s.value.to_bits()))
        .collect();
    let mut want: Vec<(u32, i64, u64)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (0, i as i64 * 1000, v.to_bits()))
        .collect();
    want.push((1, 5, STALE_NAN_BITS));
    assert_eq!(got, want);
}

#[test]
fn the_decoder_keeps_every_bit_of_a_value() {
    // Hand-encoded: an encoder skips a value equal to 0.0, and -0.0 is equal to it.
    for bits in [
        (-0.0f64).to_bits(),
        STALE_NAN_BITS,
        0x7ff8_dead_beef_0001,
        1,
    ] {
        let mut sample = vec![0x09];
        sample.extend_from_slice(&bits.to_le_bytes());
        sample.extend_from_slice(&[0x10, 0x05]);
        let mut ts = vec![0x12, sample.len() as u8];
        ts.extend_from_slice(&sample);
        let mut body = vec![0x0a, ts.len() as u8];
        body.extend_from_slice(&ts);
        let req = WriteRequest::decode(&body[..]).unwrap();
        let s = req.timeseries[0].samples[0];
        assert_eq!((s.value.to_bits(), s.timestamp), (bits, 5));
    }
}

#[test]
fn kinds_come_from_the_requests_metadata() {
    let ts = |name: &str, extra: &[(&str, &str)]| {
        let mut l = vec![("__name__", name)];
        l.extend_from_slice(extra);
        series(&l, &[(1, 1.0)])
    };
    let req = WriteRequest {
        timeseries: vec![
            ts("reqs_total", &[]),
            ts("errors_total", &[]),
            ts("lat_bucket", &[("le", "+Inf")]),
            ts("lat_sum", &[]),
            ts("lat_count", &[]),
            ts("rpc", &[("quantile", "0.5")]),
            ts("rpc_sum", &[]),
            ts("rpc_count", &[]),
            ts("temp", &[]),
            ts("odd", &[]),
            ts("nometa", &[]),
            // A gauge's `_total` is no counter.
            ts("temp_total", &[]),
        ],
        metadata: vec![
            meta("reqs", MetricType::Counter, ""),
            meta("errors_total", MetricType::Counter, ""),
            meta("lat", MetricType::Histogram, "seconds"),
            meta("rpc", MetricType::Summary, ""),
            meta("temp", MetricType::Gauge, "celsius"),
            meta("odd", MetricType::Stateset, ""),
        ],
    };
    let c = convert(&req);
    let kinds: Vec<(String, MetricKind, String)> = c
        .batch
        .series
        .iter()
        .map(|s| (s.name.clone(), s.kind, s.unit.clone()))
        .collect();
    use MetricKind::*;
    let want = [
        ("reqs_total", Counter, ""),
        ("errors_total", Counter, ""),
        ("lat_bucket", Histogram, "seconds"),
        ("lat_sum", Histogram, "seconds"),
        ("lat_count", Histogram, "seconds"),
        ("rpc", Summary, ""),
        ("rpc_sum", Summary, ""),
        ("rpc_count", Summary, ""),
        ("temp", Gauge, "celsius"),
        ("odd", Gauge, ""),
        ("nometa", Gauge, ""),
        ("temp_total", Gauge, ""),
    ];
    let want: Vec<(String, MetricKind, String)> = want
        .iter()
        .map(|(n, k, u)| (n.to_string(), *k, u.to_string()))
        .collect();
    assert_eq!(kinds, want);
    // The store's families: a histogram's parts are one family.
    assert_eq!(crate::metric::family_name("lat_bucket", Histogram), "lat");
}

#[test]
fn bad_series_are_refused_whole_and_the_rest_kept() {
    let long_value = "v".repeat(1025);
    let many: Vec<(String, String)> = (0..65).map(|i| (format!("l{i}"), "x".into())).collect();
    let mut many_refs: Vec<(&str, &str)> = vec![("__name__", "many")];
    many_refs.extend(many.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let req = WriteRequest {
        timeseries: vec![
            series(&[("job", "nameless")], &[(1, 1.0), (2, 2.0)]),
            series(&[("__name__", ""), ("job", "x")], &[(1, 1.0)]),
            series(&[("__name__", "dup"), ("a", "1"), ("a", "2")], &[(1, 1.0)]),
            series(&[("__name__", "n1"), ("__name__", "n2")], &[(1, 1.0)]),
            series(&[("__name__", "long"), ("v", &long_value)], &[(1, 1.0)]),
            series(&[("__name__", "blank"), ("", "x")], &[(1, 1.0)]),
            series(&many_refs, &[(1, 1.0)]),
            series(&[("__name__", "ok"), ("job", "j")], &[(1, 1.0)]),
        ],
        metadata: vec![],
    };
    let c = convert(&req);
    assert_eq!(c.rejection.count, 8);
    let first = c.rejection.first_reason.unwrap();
    assert!(
        first.contains("no __name__") && first.contains("job=\"nameless\""),
        "{first}"
    );
    assert_eq!(
        specs(&c.batch),
        vec![("ok".to_string(), pairs(&[("job", "j")]), MetricKind::Gauge)]
    );
    // 64 labels besides le and quantile are within the limit; the value at the limit is kept
    // whole.
    let at_limit: Vec<(String, String)> = (0..64).map(|i| (format!("l{i}"), "x".into())).collect();
    let value = "w".repeat(1024);
    let mut l: Vec<(&str, &str)> = vec![("__name__", "wide"), ("le", "1"), ("quantile", "1")];
    l.extend(at_limit.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    l.pop();
    l.push(("big", &value));
    let c = convert(&WriteRequest {
        timeseries: vec![series(&l, &[(1, 1.0)])],
        metadata: vec![],
    });
    assert_eq!(c.rejection.count, 0, "{:?}", c.rejection);
    assert_eq!(c.batch.series[0].labels.len(), 66);
    assert_eq!(c.batch.series[0].labels.get("big"), Some(value.as_str()));
}

#[test]
fn native_histograms_are_refused_and_counted() {
    let mut ts = series(&[("__name__", "h"), ("job", "j")], &[(1, 4.0)]);
    ts.histograms = vec![NativeHistogram {}; 3];
    let only = TimeSeries {
        samples: vec![],
        ..ts.clone()
    };
    let c = convert(&WriteRequest {
        timeseries: vec![ts, only],
        metadata: vec![],
    });
    assert_eq!(c.native_histograms, 6);
    assert_eq!(c.rejection.count, 6);
    assert!(
        c.rejection
            .first_reason
            .unwrap()
            .contains("send_native_histograms")
    );
    assert_eq!(c.batch.samples.len(), 1, "the float sample is kept");
}

#[test]
fn a_series_sent_twice_is_one_series() {
    let l = [("__name__", "up"), ("job", "j"), ("instance", "i")];
    let req = WriteRequest {
        timeseries: vec![
            series(&l, &[(1_000, 1.0)]),
            series(&[("__name__", "up"), ("job", "k")], &[(1_000, 0.0)]),
            series(&[l[2], l[0], l[1]], &[(2_000, 1.0)]),
        ],
        metadata: vec![],
    };
    let c = convert(&req);
    assert_eq!(c.batch.series.len(), 2);
    let idx: Vec<u32> = c.batch.samples.iter().map(|s| s.series).collect();
    assert_eq!(idx, vec![0, 1, 0]);
}

#[test]
fn the_wire_form_skips_exemplars_and_refuses_garbage() {
    // A TimeSeries with an exemplar (field 3) the decoder does not declare.
    let mut ts = series(&[("__name__", "x")], &[(7, 2.0)]).encode_to_vec();
    ts.extend_from_slice(&[0x1a, 0x03, 0x11, 0x00, 0x00]);
    // WriteRequest { timeseries: [ts] }
    let mut body = vec![0x0a, ts.len() as u8];
    body.extend_from_slice(&ts);
    let req = WriteRequest::decode(&body[..]).unwrap();
    assert_eq!(req.timeseries[0].samples.len(), 1);
    assert_eq!(convert(&req).batch.samples[0].value, 2.0);
    for bad in [
        &[0x0a, 0x05, 0x01][..],
        &[0xff; 11],
        &[0x0a, 0x02, 0x0a, 0x09],
    ] {
        assert!(WriteRequest::decode(bad).is_err(), "{bad:?}");
    }
    // A label value that is not UTF-8.
    let bad_label = [0x0a, 0x06, 0x0a, 0x04, 0x12, 0x02, 0xff, 0xfe];
    assert!(WriteRequest::decode(&bad_label[..]).is_err());
}
