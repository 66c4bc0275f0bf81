//! OTLP metrics to store series and samples.
//!
//! [`metrics_from_otlp`] turns one OTLP metrics export into a [`MetricBatch`]. Each data point
//! becomes one or more samples; histograms and summaries are spread over the Prometheus-style
//! series described in [`crate::metric`]. A point that breaks a [`MetricLimits`] limit, or that
//! cannot be read, is rejected on its own (OTLP "partial success"); the rest are kept.
//!
//! Labels are the point's attributes plus a few resource attributes under short names
//! (`service`, `host`, `env`, ...). Other resource attributes and scope attributes are not
//! labels: they would make every series of a process unique without helping a query.

use crate::Rejection;
use crate::metric::{BatchSample, Labels, MetricBatch, MetricKind, SeriesSpec};
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::common::v1::{AnyValue, KeyValue, any_value};
use crate::proto::metrics::v1::{
    AggregationTemporality, DataPointFlags, ExponentialHistogramDataPoint, HistogramDataPoint,
    Metric, NumberDataPoint, SummaryDataPoint, metric, number_data_point,
};
use crate::proto::resource::v1::Resource;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// Limits on one series' identity. A point over a limit is rejected, not cut (except label
/// values, which are cut).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricLimits {
    /// Most labels on one series, resource labels included, `le` and `quantile` not
    /// counted. Default 64.
    pub max_labels: usize,
    /// Longest metric name, in bytes. Default 256.
    pub max_name_bytes: usize,
    /// Longest label name, in bytes. Default 128.
    pub max_label_name_bytes: usize,
    /// Longest label value, in bytes; a longer value is cut at a char boundary. Default 1024.
    pub max_label_value_bytes: usize,
}

impl Default for MetricLimits {
    fn default() -> Self {
        MetricLimits {
            max_labels: 64,
            max_name_bytes: 256,
            max_label_name_bytes: 128,
            max_label_value_bytes: 1024,
        }
    }
}

/// Resource attributes that become labels, and their short label names.
const RESOURCE_LABELS: [(&str, &str); 10] = [
    ("service.name", "service"),
    ("service.namespace", "namespace"),
    ("service.instance.id", "instance"),
    ("host.name", "host"),
    ("deployment.environment", "env"),
    // Listed after the old name so that the new one wins when both are sent.
    ("deployment.environment.name", "env"),
    ("skein.agent.id", "agent"),
    ("k8s.namespace.name", "k8s_namespace"),
    ("k8s.pod.name", "pod"),
    ("container.name", "container"),
];

/// Highest scale kept for exponential histograms; finer ones are merged down to it, so that a
/// histogram makes at most 8 bucket series per doubling of the value.
const MAX_EXP_SCALE: i32 = 3;

/// Converts an OTLP metrics export. `now_ms` is the time given to points sent without one.
///
/// Each distinct series (name and labels) is in `batch.series` once; several points of one
/// series give several samples. NaN (Prometheus's staleness marker among them) and infinite
/// values are passed on bit for bit, and the store keeps them; a point flagged "no recorded
/// value" gives no sample.
pub fn metrics_from_otlp(
    req: &ExportMetricsServiceRequest,
    limits: &MetricLimits,
    now_ms: i64,
) -> (MetricBatch, Rejection) {
    let mut out = Builder::with_capacity(most_samples(req));
    let mut rejected = Rejection::default();
    for rm in &req.resource_metrics {
        let res = resource_labels(rm.resource.as_ref(), limits);
        let cx = Ctx {
            res: &res,
            limits,
            now_ms,
        };
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                convert_metric(m, &cx, &mut out, &mut rejected);
            }
        }
    }
    (out.finish(), rejected)
}

/// Counts one rejected point, keeping the first reason.
fn reject(rej: &mut Rejection, reason: impl FnOnce() -> String) {
    rej.count += 1;
    if rej.first_reason.is_none() {
        rej.first_reason = Some(reason());
    }
}

/// What the points of one resource share.
struct Ctx<'r> {
    /// Resource labels (short name, value), values never empty.
    res: &'r [(&'static str, String)],
    limits: &'r MetricLimits,
    now_ms: i64,
}

impl Ctx<'_> {
    /// Point time in ms; 0 means "now".
    fn time(&self, unix_nano: u64) -> i64 {
        if unix_nano == 0 {
            self.now_ms
        } else {
            (unix_nano / 1_000_000) as i64
        }
    }

    /// The labels of a point: its attributes, then the resource labels, which win.
    fn labels(&self, attrs: &[KeyValue]) -> Result<Labels, String> {
        let limits = self.limits;
        let mut pairs: Vec<(String, String)> = Vec::with_capacity(attrs.len() + self.res.len());
        for kv in attrs {
            if kv.key.len() > limits.max_label_name_bytes {
                return Err(format!(
                    "label name '{}' is {} bytes, more than the limit of {}",
                    cut_at_char_boundary(&kv.key, 64),
                    kv.key.len(),
                    limits.max_label_name_bytes
                ));
            }
            let v = value_text(kv.value.as_ref(), limits.max_label_value_bytes);
            if !v.is_empty() {
                pairs.push((kv.key.clone(), v));
            }
        }
        pairs.extend(self.res.iter().map(|(k, v)| ((*k).to_string(), v.clone())));
        if pairs.len() > limits.max_labels {
            // Only repeated names can bring the count back under the limit.
            let mut names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            if names.len() > limits.max_labels {
                return Err(format!(
                    "{} labels, more than the limit of {}",
                    names.len(),
                    limits.max_labels
                ));
            }
        }
        Ok(Labels::from_pairs(pairs))
    }
}

/// The labelled resource attributes of a resource, computed once per `ResourceMetrics`.
fn resource_labels(r: Option<&Resource>, limits: &MetricLimits) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let Some(r) = r else { return out };
    for (attr, short) in RESOURCE_LABELS {
        let Some(kv) = r.attributes.iter().rev().find(|kv| kv.key == attr) else {
            continue;
        };
        let v = value_text(kv.value.as_ref(), limits.max_label_value_bytes);
        if v.is_empty() {
            continue;
        }
        match out.iter_mut().find(|(k, _)| *k == short) {
            Some(slot) => slot.1 = v,
            None => out.push((short, v)),
        }
    }
    out
}

/// An attribute value as label text, cut to `max` bytes: strings as they are, numbers and
/// bools as text, bytes as hex, arrays and maps as compact JSON.
fn value_text(v: Option<&AnyValue>, max: usize) -> String {
    use any_value::Value as V;
    let mut s = match v.and_then(|v| v.value.as_ref()) {
        None => return String::new(),
        Some(V::StringValue(s)) => return cut_at_char_boundary(s, max).to_owned(),
        Some(V::BoolValue(b)) => b.to_string(),
        Some(V::IntValue(i)) => i.to_string(),
        Some(V::DoubleValue(d)) => d.to_string(),
        Some(V::BytesValue(b)) => const_hex::encode(b),
        Some(_) => v
            .map(|v| crate::otlp::any_to_json(v).to_string())
            .unwrap_or_default(),
    };
    let n = cut_at_char_boundary(&s, max).len();
    s.truncate(n);
    s
}

/// The longest start of `s` of at most `max` bytes that ends on a char boundary.
pub fn cut_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut n = max;
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    s.get(..n).unwrap_or_default()
}

/// A bound or quantile as label text: the shortest text that reads back as the same number,
/// whole numbers without ".0", and `+Inf`, `-Inf`, `NaN` as Prometheus writes them.
fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}

/// True for a point flagged "no recorded value" (a series that went stale): skipped.
fn no_value(flags: u32) -> bool {
    flags & DataPointFlags::NoRecordedValueMask as u32 != 0
}

fn is_delta(temporality: i32) -> bool {
    temporality == AggregationTemporality::Delta as i32
}

/// Kind, unit and delta flag of a series, set when it is first seen.
#[derive(Clone, Copy)]
struct Meta<'a> {
    kind: MetricKind,
    unit: &'a str,
    delta: bool,
}

/// The batch being built: series indexed by (name, labels) so each is added once.
struct Builder<'a> {
    index: HashMap<(String, Labels), u32>,
    meta: Vec<Meta<'a>>,
    samples: Vec<BatchSample>,
    /// Start time (ms) of the point being converted, 0 when it has none.
    start_ms: i64,
}

impl<'a> Builder<'a> {
    /// A builder with room for `n` samples and series, so that the index is never rehashed.
    fn with_capacity(n: usize) -> Self {
        Builder {
            index: HashMap::with_capacity(n),
            meta: Vec::with_capacity(n),
            samples: Vec::with_capacity(n),
            start_ms: 0,
        }
    }

    /// Adds a sample, and its series when new. A series seen again keeps its first kind.
    fn push(&mut self, name: String, labels: Labels, meta: Meta<'a>, ts_ms: i64, value: f64) {
        let series = match self.index.entry((name, labels)) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let i = self.meta.len() as u32;
                self.meta.push(meta);
                e.insert(i);
                i
            }
        };
        self.samples.push(BatchSample {
            series,
            ts_ms,
            value,
            start_ms: self.start_ms,
        });
    }

    /// The batch, series in the order first seen. Names and labels move out of the index.
    fn finish(self) -> MetricBatch {
        let mut series: Vec<Option<SeriesSpec>> = Vec::new();
        series.resize_with(self.meta.len(), || None);
        for ((name, labels), i) in self.index {
            if let (Some(slot), Some(m)) = (series.get_mut(i as usize), self.meta.get(i as usize)) {
                *slot = Some(SeriesSpec {
                    name,
                    labels,
                    kind: m.kind,
                    unit: m.unit.to_owned(),
                    delta: m.delta,
                });
            }
        }
        MetricBatch {
            series: series.into_iter().flatten().collect(),
            samples: self.samples,
        }
    }
}

/// At most how many samples a request gives (exponential histograms may give fewer).
fn most_samples(req: &ExportMetricsServiceRequest) -> usize {
    let mut n = 0usize;
    for m in req
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
    {
        n = n.saturating_add(match &m.data {
            Some(metric::Data::Gauge(g)) => g.data_points.len(),
            Some(metric::Data::Sum(s)) => s.data_points.len(),
            Some(metric::Data::Histogram(h)) => h
                .data_points
                .iter()
                .map(|p| p.bucket_counts.len() + 2)
                .sum(),
            Some(metric::Data::ExponentialHistogram(h)) => h
                .data_points
                .iter()
                .map(|p| p.positive.as_ref().map_or(0, |b| b.bucket_counts.len()) + 3)
                .sum(),
            Some(metric::Data::Summary(s)) => s
                .data_points
                .iter()
                .map(|p| p.quantile_values.len() + 2)
                .sum(),
            None => 0,
        });
    }
    n
}

/// Number of points of a metric that carry a value (those a rejection counts).
fn recorded_points(data: &metric::Data) -> u64 {
    fn n<T>(points: &[T], flags: impl Fn(&T) -> u32) -> u64 {
        points.iter().filter(|p| !no_value(flags(p))).count() as u64
    }
    match data {
        metric::Data::Gauge(g) => n(&g.data_points, |p| p.flags),
        metric::Data::Sum(s) => n(&s.data_points, |p| p.flags),
        metric::Data::Histogram(h) => n(&h.data_points, |p| p.flags),
        metric::Data::ExponentialHistogram(h) => n(&h.data_points, |p| p.flags),
        metric::Data::Summary(s) => n(&s.data_points, |p| p.flags),
    }
}

/// Stored names of a histogram's or summary's parts.
struct PartNames {
    bucket: String,
    count: String,
    sum: String,
}

impl PartNames {
    fn new(name: &str) -> Self {
        PartNames {
            bucket: format!("{name}_bucket"),
            count: format!("{name}_count"),
            sum: format!("{name}_sum"),
        }
    }
}

fn convert_metric<'a>(m: &'a Metric, cx: &Ctx, out: &mut Builder<'a>, rej: &mut Rejection) {
    let Some(data) = &m.data else { return };
    let limits = cx.limits;
    let name = m.name.as_str();
    if name.is_empty() || name.len() > limits.max_name_bytes {
        let n = recorded_points(data);
        if n > 0 {
            let first = rej.first_reason.is_none();
            rej.count += n;
            if first {
                rej.first_reason = Some(if name.is_empty() {
                    "metric with an empty name".to_string()
                } else {
                    format!(
                        "metric '{}...': name is {} bytes, more than the limit of {}",
                        cut_at_char_boundary(name, 64),
                        name.len(),
                        limits.max_name_bytes
                    )
                });
            }
        }
        return;
    }
    let unit = m.unit.as_str();
    // Runs one point converter over the points, skipping "no value" points and counting
    // rejections.
    macro_rules! each {
        ($points:expr, |$p:ident| $convert:expr) => {
            for (j, $p) in $points.iter().enumerate() {
                if no_value($p.flags) {
                    continue;
                }
                if let Err(e) = $convert {
                    reject(rej, || format!("metric '{name}' point {j}: {e}"));
                }
            }
        };
    }
    match data {
        metric::Data::Gauge(g) => {
            let meta = Meta {
                kind: MetricKind::Gauge,
                unit,
                delta: false,
            };
            each!(g.data_points, |p| number_point(p, name, meta, cx, out));
        }
        metric::Data::Sum(s) => {
            let meta = Meta {
                kind: if s.is_monotonic {
                    MetricKind::Counter
                } else {
                    MetricKind::UpDownCounter
                },
                unit,
                delta: is_delta(s.aggregation_temporality),
            };
            each!(s.data_points, |p| number_point(p, name, meta, cx, out));
        }
        metric::Data::Histogram(h) => {
            let meta = Meta {
                kind: MetricKind::Histogram,
                unit,
                delta: is_delta(h.aggregation_temporality),
            };
            let names = PartNames::new(name);
            let mut les = LeCache::default();
            each!(h.data_points, |p| histogram_point(
                p, &names, meta, &mut les, cx, out
            ));
        }
        metric::Data::ExponentialHistogram(h) => {
            let meta = Meta {
                kind: MetricKind::Histogram,
                unit,
                delta: is_delta(h.aggregation_temporality),
            };
            let names = PartNames::new(name);
            each!(h.data_points, |p| exp_histogram_point(
                p, &names, meta, cx, out
            ));
        }
        metric::Data::Summary(s) => {
            let meta = Meta {
                kind: MetricKind::Summary,
                unit,
                delta: false,
            };
            let names = PartNames::new(name);
            each!(s.data_points, |p| summary_point(
                p, name, &names, meta, cx, out
            ));
        }
    }
}

/// A point's start time in ms, 0 when it has none.
fn start_ms(unix_nano: u64) -> i64 {
    (unix_nano / 1_000_000) as i64
}

fn number_point<'a>(
    p: &NumberDataPoint,
    name: &str,
    meta: Meta<'a>,
    cx: &Ctx,
    out: &mut Builder<'a>,
) -> Result<(), String> {
    out.start_ms = start_ms(p.start_time_unix_nano);
    let value = match p.value {
        Some(number_data_point::Value::AsDouble(d)) => d,
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        None => return Err("no value".into()),
    };
    let labels = cx.labels(&p.attributes)?;
    out.push(
        name.to_owned(),
        labels,
        meta,
        cx.time(p.time_unix_nano),
        value,
    );
    Ok(())
}

/// `le` texts of the last explicit bounds seen: the points of one histogram nearly always
/// share their bounds, so each bound is written out once per metric.
#[derive(Default)]
struct LeCache {
    bounds: Vec<f64>,
    texts: Vec<String>,
}

impl LeCache {
    fn texts(&mut self, bounds: &[f64]) -> &[String] {
        if self.bounds != bounds || self.texts.len() != bounds.len() {
            self.bounds = bounds.to_vec();
            self.texts = bounds.iter().map(|b| float_text(*b)).collect();
        }
        &self.texts
    }
}

/// Adds `_count` and, when sent, `_sum` of a histogram point.
fn push_count_sum<'a>(
    out: &mut Builder<'a>,
    names: &PartNames,
    labels: Labels,
    meta: Meta<'a>,
    ts: i64,
    count: u64,
    sum: Option<f64>,
) {
    match sum {
        Some(s) => {
            out.push(names.count.clone(), labels.clone(), meta, ts, count as f64);
            out.push(names.sum.clone(), labels, meta, ts, s);
        }
        None => out.push(names.count.clone(), labels, meta, ts, count as f64),
    }
}

fn histogram_point<'a>(
    p: &HistogramDataPoint,
    names: &PartNames,
    meta: Meta<'a>,
    les: &mut LeCache,
    cx: &Ctx,
    out: &mut Builder<'a>,
) -> Result<(), String> {
    out.start_ms = start_ms(p.start_time_unix_nano);
    let bounds = p.explicit_bounds.len();
    if !p.bucket_counts.is_empty() && p.bucket_counts.len() != bounds + 1 {
        return Err(format!(
            "{} bucket counts for {} bounds, there must be one more count than bounds",
            p.bucket_counts.len(),
            bounds
        ));
    }
    let labels = cx.labels(&p.attributes)?;
    let ts = cx.time(p.time_unix_nano);
    if !p.bucket_counts.is_empty() {
        let texts = les.texts(&p.explicit_bounds);
        let le = texts.iter().map(String::as_str).chain(["+Inf"]);
        let mut cum = 0u64;
        for (c, le) in p.bucket_counts.iter().zip(le) {
            cum = cum.saturating_add(*c);
            out.push(
                names.bucket.clone(),
                labels.with("le", le),
                meta,
                ts,
                cum as f64,
            );
        }
    }
    push_count_sum(out, names, labels, meta, ts, p.count, p.sum);
    Ok(())
}

/// `2^e`, exact when `e` is a whole number in the normal range.
fn pow2(e: f64) -> f64 {
    if e.fract() == 0.0 && (-1022.0..=1023.0).contains(&e) {
        f64::from_bits(((e as i64 + 1023) as u64) << 52)
    } else {
        e.exp2()
    }
}

/// Upper bound of bucket `index` at `scale`: `base^(index+1)` with `base = 2^(2^-scale)`.
fn exp_upper_bound(index: i64, scale: i32) -> f64 {
    pow2((index + 1) as f64 * 2f64.powi(-scale))
}

/// Converts an exponential histogram point to `_bucket` (with `le`), `_count` and `_sum`.
///
/// Scales above 3 are first merged down to 3. Every bucket count includes `zero_count`.
/// Negative buckets count only toward `_count` and the `le="+Inf"` bucket (which is
/// `count`): the `le` buckets hold the zero and positive values only.
fn exp_histogram_point<'a>(
    p: &ExponentialHistogramDataPoint,
    names: &PartNames,
    meta: Meta<'a>,
    cx: &Ctx,
    out: &mut Builder<'a>,
) -> Result<(), String> {
    out.start_ms = start_ms(p.start_time_unix_nano);
    if !(-10..=20).contains(&p.scale) {
        return Err(format!("scale {} is outside -10..=20", p.scale));
    }
    let labels = cx.labels(&p.attributes)?;
    let ts = cx.time(p.time_unix_nano);
    let shift = (p.scale - MAX_EXP_SCALE).max(0) as u32;
    let scale = p.scale.min(MAX_EXP_SCALE);
    let mut cum = p.zero_count;
    // A bucket waits here until the next one, so that buckets whose bounds round to the same
    // number (at the far ends of f64) give one series.
    let mut pending: Option<(f64, u64)> = None;
    let flush = |pending: Option<(f64, u64)>, out: &mut Builder<'a>| {
        if let Some((bound, c)) = pending {
            out.push(
                names.bucket.clone(),
                labels.with("le", &float_text(bound)),
                meta,
                ts,
                c as f64,
            );
        }
    };
    if let Some(pos) = &p.positive {
        let offset = i64::from(pos.offset);
        let last = pos.bucket_counts.len().saturating_sub(1);
        for (k, c) in pos.bucket_counts.iter().enumerate() {
            cum = cum.saturating_add(*c);
            let i = offset + k as i64;
            let merged = i >> shift;
            // Several buckets merge into one: emit the running total at the last of them.
            if k != last && (i + 1) >> shift == merged {
                continue;
            }
            let bound = exp_upper_bound(merged, scale);
            if bound.is_infinite() {
                // Past the largest f64: what is left is in +Inf.
                break;
            }
            match pending {
                Some((b, _)) if b == bound => pending = Some((bound, cum)),
                _ => {
                    flush(pending, out);
                    pending = Some((bound, cum));
                }
            }
        }
    }
    flush(pending, out);
    out.push(
        names.bucket.clone(),
        labels.with("le", "+Inf"),
        meta,
        ts,
        p.count as f64,
    );
    push_count_sum(out, names, labels, meta, ts, p.count, p.sum);
    Ok(())
}

fn summary_point<'a>(
    p: &SummaryDataPoint,
    name: &str,
    names: &PartNames,
    meta: Meta<'a>,
    cx: &Ctx,
    out: &mut Builder<'a>,
) -> Result<(), String> {
    out.start_ms = start_ms(p.start_time_unix_nano);
    let labels = cx.labels(&p.attributes)?;
    let ts = cx.time(p.time_unix_nano);
    for q in &p.quantile_values {
        out.push(
            name.to_owned(),
            labels.with("quantile", &float_text(q.quantile)),
            meta,
            ts,
            q.value,
        );
    }
    out.push(names.sum.clone(), labels.clone(), meta, ts, p.sum);
    out.push(names.count.clone(), labels, meta, ts, p.count as f64);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "otlp_metrics_tests.rs"]
mod tests;
