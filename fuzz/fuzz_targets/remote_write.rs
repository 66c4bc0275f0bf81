//! Prometheus remote-write bodies through what `POST /api/v1/write` and the collector run:
//! snappy (`otlp::remote_write::unsnappy_blocking`, the size the header declares checked
//! against the body limit), the admission cost (`otlp::admission::remote_write_cost`), the
//! decode of `prompb::WriteRequest`, and the conversion to series and samples
//! (`model::remote_write::batch_from_write_request`), with default limits or tight ones.
//! The first byte: bit 0 set, the rest is a protobuf body compressed here with snap (so
//! mutations reach the decoder); clear, the rest is the body as sent. Bit 1: tight limits.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message;
use skein_model::metric::{Labels, MetricKind};
use skein_model::otlp_metrics::MetricLimits;
use skein_model::prompb::{TimeSeries, WriteRequest};
use skein_model::remote_write::{NAME_LABEL, batch_from_write_request};
use skein_otlp::admission::remote_write_cost;
use skein_otlp::remote_write::unsnappy_blocking;
use std::collections::HashSet;

/// The body limit (`limits.max_request_bytes` is 16 MiB; 4 MiB keeps runs fast).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The series name and the other labels a series is stored with, from what was sent.
fn sent_identity(ts: &TimeSeries) -> (String, Labels) {
    let name = ts
        .labels
        .iter()
        .find(|l| l.name == NAME_LABEL)
        .map(|l| l.value.clone())
        .unwrap_or_default();
    let labels = Labels::from_pairs(
        ts.labels
            .iter()
            .filter(|l| l.name != NAME_LABEL)
            .map(|l| (l.name.as_str(), l.value.as_str())),
    );
    (name, labels)
}

fuzz_target!(|data: &[u8]| {
    if data.len() > skein_fuzz::MAX_INPUT {
        return;
    }
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let compressed;
    let wire: &[u8] = if mode & 1 == 1 {
        compressed = snap::raw::Encoder::new()
            .compress_vec(rest)
            .expect("snap compresses any input");
        &compressed
    } else {
        rest
    };
    let Ok(body) = unsnappy_blocking(wire, MAX_BODY) else {
        return;
    };
    assert!(body.len() <= MAX_BODY, "never more than the limit");
    if mode & 1 == 1 {
        assert_eq!(body, rest, "snappy reads back what it wrote");
    }
    let Ok(cost) = remote_write_cost(&body) else {
        return;
    };
    let Ok(req) = WriteRequest::decode(&body[..]) else {
        return;
    };
    let samples: usize = req.timeseries.iter().map(|t| t.samples.len()).sum();
    let histograms: usize = req.timeseries.iter().map(|t| t.histograms.len()).sum();
    let records = samples + histograms + req.metadata.len();
    assert!(
        cost.records >= records as u64,
        "admission counts every record that decodes ({} < {records})",
        cost.records
    );

    let limits = if mode & 2 == 2 {
        MetricLimits {
            max_labels: 2,
            max_name_bytes: 16,
            max_label_name_bytes: 8,
            max_label_value_bytes: 8,
        }
    } else {
        MetricLimits::default()
    };
    let c = batch_from_write_request(&req, &limits);
    assert_eq!(c.native_histograms, histograms as u64);
    assert_eq!(
        c.batch.samples.len() as u64 + c.rejection.count,
        (samples + histograms) as u64,
        "every sample is kept or counted as rejected"
    );
    // Each series once, each with a sample.
    let mut seen = HashSet::new();
    for s in &c.batch.series {
        assert!(
            seen.insert((s.name.as_str(), &s.labels)),
            "a series is in the batch once"
        );
        if req.metadata.is_empty() {
            assert_eq!(s.kind, MetricKind::Gauge, "without metadata, a gauge");
        }
    }
    let mut used = vec![false; c.batch.series.len()];
    // Labels out equal labels in: series by series, in order, each sample where it was sent.
    let mut kept = c.batch.samples.iter();
    for ts in &req.timeseries {
        let alone = batch_from_write_request(
            &WriteRequest {
                timeseries: vec![ts.clone()],
                metadata: Vec::new(),
            },
            &limits,
        );
        if alone.batch.samples.is_empty() {
            assert_eq!(
                alone.rejection.count,
                (ts.samples.len() + ts.histograms.len()) as u64,
                "a series refused is counted whole"
            );
            continue;
        }
        let (name, labels) = sent_identity(ts);
        assert_eq!(alone.batch.series.len(), 1);
        assert_eq!(alone.batch.series[0].name, name, "the name is kept as sent");
        assert_eq!(
            alone.batch.series[0].labels, labels,
            "labels are kept as sent"
        );
        for sent in &ts.samples {
            let got = kept
                .next()
                .expect("a sample of a series kept is in the batch");
            let spec = &c.batch.series[got.series as usize];
            used[got.series as usize] = true;
            assert_eq!(spec.name, name, "the name is kept as sent");
            assert_eq!(spec.labels, labels, "labels are kept as sent");
            assert_eq!(got.ts_ms, sent.timestamp);
            assert_eq!(
                got.value.to_bits(),
                sent.value.to_bits(),
                "values bit for bit"
            );
        }
    }
    assert!(kept.next().is_none(), "no sample that was not sent");
    assert!(used.iter().all(|u| *u), "every series has a sample");
    for (i, spec) in c.batch.series.iter().enumerate() {
        skein_fuzz::check_series_round_trip(i as u32, spec);
    }
});
