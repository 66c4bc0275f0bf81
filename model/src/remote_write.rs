//! Prometheus remote write to store series and samples.
//!
//! [`batch_from_write_request`] turns one decoded [`WriteRequest`] into a [`MetricBatch`],
//! keeping what was sent:
//!
//! - The series name is the `__name__` label; every other label is kept with its name and
//!   value exactly as sent (`job`, `instance`, `le`, `quantile`, ...). Nothing is added, renamed
//!   or cut. A label with an empty value is no label, as in Prometheus.
//! - The kind comes from the request's own metadata when it names the series' family
//!   (`x_total` of counter `x`, `x_bucket`/`x_sum`/`x_count` of histogram `x`, quantiles,
//!   `x_sum`, `x_count` of summary `x`), else the series is a gauge. Prometheus sends
//!   metadata in requests of its own, so its series are usually stored as gauges.
//! - Sample values are passed bit for bit, NaN and infinities included (Prometheus's staleness
//!   marker is a NaN with the bits [`STALE_NAN_BITS`]; the store keeps it as sent and PromQL
//!   reads it as the end of the series), and times are milliseconds as sent.
//! - Native histograms are refused and counted (one rejected record each); exemplars are
//!   ignored.
//!
//! A series that breaks a [`MetricLimits`] limit (too many labels, a name or value too long), has
//! no `__name__`, or names a label twice, is refused with its samples; the rest are kept.

use crate::Rejection;
use crate::metric::{BatchSample, Labels, MetricBatch, MetricKind, SeriesSpec};
use crate::otlp_metrics::{MetricLimits, cut_at_char_boundary};
use crate::prompb::{MetricType, TimeSeries, WriteRequest};
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// The bits of Prometheus's staleness marker: a NaN that says "this series ended here".
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The label that holds the series name.
pub const NAME_LABEL: &str = "__name__";

/// True for Prometheus's staleness marker (exactly its bits, not any NaN).
pub fn is_stale_marker(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One request, converted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Converted {
    /// The series and samples to store.
    pub batch: MetricBatch,
    /// Samples refused here (native histograms among them), with the first reason.
    pub rejection: Rejection,
    /// Native histogram samples refused (also counted in `rejection`).
    pub native_histograms: u64,
}

/// Kind and unit of the families a request's metadata describes.
struct Families<'a>(HashMap<&'a str, (MetricType, &'a str)>);

impl<'a> Families<'a> {
    fn new(req: &'a WriteRequest) -> Self {
        let mut m = HashMap::with_capacity(req.metadata.len());
        for md in &req.metadata {
            if md.metric_family_name.is_empty() {
                continue;
            }
            let t = MetricType::try_from(md.r#type).unwrap_or(MetricType::Unknown);
            m.insert(md.metric_family_name.as_str(), (t, md.unit.as_str()));
        }
        Families(m)
    }

    /// The kind and unit of series `name`: its own family first, then the family its suffix
    /// says it is part of.
    fn kind(&self, name: &str) -> (MetricKind, &'a str) {
        if self.0.is_empty() {
            return (MetricKind::Gauge, "");
        }
        if let Some((t, unit)) = self.0.get(name) {
            let kind = match t {
                MetricType::Counter => MetricKind::Counter,
                // A summary's quantile series carries the family's own name.
                MetricType::Summary => MetricKind::Summary,
                _ => MetricKind::Gauge,
            };
            return (kind, unit);
        }
        let part = |suffix: &str, types: &[MetricType]| {
            let family = name.strip_suffix(suffix)?;
            let (t, unit) = self.0.get(family)?;
            types.contains(t).then_some((*t, *unit))
        };
        use MetricType as T;
        if let Some((_, unit)) = part("_total", &[T::Counter]) {
            return (MetricKind::Counter, unit);
        }
        if let Some((_, unit)) = part("_bucket", &[T::Histogram]) {
            return (MetricKind::Histogram, unit);
        }
        for suffix in ["_sum", "_count"] {
            if let Some((t, unit)) = part(suffix, &[T::Histogram, T::Summary]) {
                let kind = if t == T::Histogram {
                    MetricKind::Histogram
                } else {
                    MetricKind::Summary
                };
                return (kind, unit);
            }
        }
        (MetricKind::Gauge, "")
    }
}

/// Converts one remote-write request. Each distinct series (name and labels) is in
/// `batch.series` once, in the order first seen, and only when it has a sample.
pub fn batch_from_write_request(req: &WriteRequest, limits: &MetricLimits) -> Converted {
    let families = Families::new(req);
    let mut out = Converted::default();
    let samples: usize = req.timeseries.iter().map(|t| t.samples.len()).sum();
    out.batch.samples.reserve(samples);
    let mut index: HashMap<(String, Labels), u32> = HashMap::new();
    for ts in &req.timeseries {
        if !ts.histograms.is_empty() {
            let n = ts.histograms.len() as u64;
            out.native_histograms += n;
            reject(&mut out.rejection, n, || {
                format!(
                    "series {}: {n} native histogram sample(s) refused: Skein stores classic histograms only; set send_native_histograms: false in the sender's remote_write section",
                    series_text(ts)
                )
            });
        }
        if ts.samples.is_empty() {
            continue;
        }
        let (name, labels) = match series_identity(ts, limits) {
            Ok(x) => x,
            Err(why) => {
                let n = ts.samples.len() as u64;
                reject(&mut out.rejection, n, || {
                    format!("series {}: {why}", series_text(ts))
                });
                continue;
            }
        };
        let series = intern(&mut index, &mut out.batch, &families, (name, labels));
        out.batch
            .samples
            .extend(ts.samples.iter().map(|s| BatchSample {
                series,
                ts_ms: s.timestamp,
                value: s.value,
                start_ms: 0,
            }));
    }
    out
}

/// The index of series `key` in `batch`, added when new.
fn intern(
    index: &mut HashMap<(String, Labels), u32>,
    batch: &mut MetricBatch,
    families: &Families<'_>,
    key: (String, Labels),
) -> u32 {
    match index.entry(key) {
        Entry::Occupied(e) => *e.get(),
        Entry::Vacant(e) => {
            let (name, labels) = e.key().clone();
            let (kind, unit) = families.kind(&name);
            let i = batch.add_series(SeriesSpec {
                name,
                labels,
                kind,
                unit: unit.to_owned(),
                delta: false,
            });
            e.insert(i);
            i
        }
    }
}

/// Counts `n` rejected samples, keeping the first reason.
fn reject(rej: &mut Rejection, n: u64, reason: impl FnOnce() -> String) {
    rej.count += n;
    if rej.first_reason.is_none() {
        rej.first_reason = Some(reason());
    }
}

/// The series name and its other labels, checked against the limits; never cut.
fn series_identity(ts: &TimeSeries, limits: &MetricLimits) -> Result<(String, Labels), String> {
    let mut name: Option<&str> = None;
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(ts.labels.len());
    let mut counted = 0usize;
    for l in &ts.labels {
        if l.name.is_empty() {
            return Err("a label has an empty name".into());
        }
        if l.name.len() > limits.max_label_name_bytes {
            return Err(format!(
                "label name '{}...' is {} bytes, more than the limit of {}",
                cut_at_char_boundary(&l.name, 64),
                l.name.len(),
                limits.max_label_name_bytes
            ));
        }
        if l.name == NAME_LABEL {
            if name.is_some() {
                return Err("label __name__ is given twice".into());
            }
            name = Some(&l.value);
            continue;
        }
        if l.value.len() > limits.max_label_value_bytes {
            return Err(format!(
                "the value of label '{}' is {} bytes, more than the limit of {}",
                l.name,
                l.value.len(),
                limits.max_label_value_bytes
            ));
        }
        if pairs.iter().any(|(k, _)| *k == l.name) {
            return Err(format!("label '{}' is given twice", l.name));
        }
        if !l.value.is_empty() && l.name != "le" && l.name != "quantile" {
            counted += 1;
        }
        pairs.push((&l.name, &l.value));
    }
    let name = match name {
        None | Some("") => return Err("no __name__ label (the metric name)".into()),
        Some(n) => n,
    };
    if name.len() > limits.max_name_bytes {
        return Err(format!(
            "the metric name is {} bytes, more than the limit of {}",
            name.len(),
            limits.max_name_bytes
        ));
    }
    if counted > limits.max_labels {
        return Err(format!(
            "{counted} labels, more than the limit of {}",
            limits.max_labels
        ));
    }
    Ok((name.to_owned(), Labels::from_pairs(pairs)))
}

/// A series as text for a message: `name{a="b",...}`, cut to a readable length.
fn series_text(ts: &TimeSeries) -> String {
    let name = ts
        .labels
        .iter()
        .find(|l| l.name == NAME_LABEL)
        .map_or("", |l| l.value.as_str());
    let mut s = cut_at_char_boundary(name, 128).to_owned();
    s.push('{');
    for (i, l) in ts
        .labels
        .iter()
        .filter(|l| l.name != NAME_LABEL)
        .enumerate()
    {
        if i > 0 {
            s.push(',');
        }
        if s.len() > 256 {
            s.push_str("...");
            break;
        }
        s.push_str(cut_at_char_boundary(&l.name, 64));
        s.push_str("=\"");
        s.push_str(cut_at_char_boundary(&l.value, 64));
        s.push('"');
    }
    s.push('}');
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "remote_write_tests.rs"]
mod tests;
