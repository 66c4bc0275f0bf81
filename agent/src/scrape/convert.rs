//! Scraped samples to OTLP metrics, shaped so that the collector's mapping
//! (`skein_model::otlp_metrics`) stores each series under its exposed name and labels.
//!
//! **Labels.** Each sample keeps its labels as exposed, plus the target's labels: `job`,
//! `instance` and the job's extra `labels`. As with Prometheus' `honor_labels = false`, an
//! exposed label that a target label would overwrite is kept as `exported_<name>` (again
//! prefixed while that name is taken). The points go in a `ResourceMetrics` whose resource has
//! **no attributes**: the collector makes labels of a few resource attributes (`service`,
//! `host`, `agent`, `instance`, ...), so an empty resource adds none, and a scraped series
//! arrives with exactly the labels above.
//!
//! **Kinds**, from `# TYPE`: counter samples (`x`, `x_total`) become monotonic cumulative sums
//! (kind counter); gauge, untyped, unknown, info, stateset and gaugehistogram samples, and
//! every `_created` sample, become gauges. A histogram's `_bucket`, `_count` and `_sum` of one
//! label set become one OTLP histogram point, which the collector stores back as the same
//! `x_bucket{le}`, `x_count`, `x_sum` series (kind histogram, so the query API's percentiles
//! read them); a summary's quantiles, `_sum` and `_count` become one OTLP summary point
//! likewise. The `le` and `quantile` values are written back by the collector as numbers
//! (`1.0` and `1` both become `1`, `1e+06` becomes `1000000`), so these two labels are
//! normalized the same way when a group cannot be an OTLP point: a histogram group without
//! `_count` or a `+Inf` bucket, with buckets that are not whole, non-decreasing counts, or
//! whose samples carry different timestamps (a summary group without `_sum` or `_count`,
//! likewise) is sent sample by sample instead: buckets, `_count` and `_sum` as counters,
//! quantiles as gauges, each under its exposed name.
//!
//! **Values** go as exposed, NaN and ±Inf included (a summary's quantiles are NaN before its
//! first observation): OTLP doubles carry any value and the collector's store keeps them.
//! The parser's NaN is never Prometheus's staleness marker (no exposition can write one).
//!
//! **Times.** A sample's own timestamp, else the scrape's start. Start times are not sent (0):
//! Prometheus answers do not say when a counter started.

use super::parse::{MetricType, Sample};
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use skein_model::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use skein_model::proto::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, metric::Data,
    number_data_point::Value, summary_data_point::ValueAtQuantile,
};
use skein_model::proto::resource::v1::Resource;
use std::collections::HashMap;

/// The instrumentation scope of scraped metrics.
pub const SCOPE_NAME: &str = "skein-agent/scrape";

/// Largest whole number an f64 holds exactly: bucket counts above it are not exact counts.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// One OTLP point and the metric it goes under.
#[derive(Debug, Clone, PartialEq)]
pub enum Point {
    /// A gauge point.
    Gauge(String, NumberDataPoint),
    /// A monotonic cumulative sum point.
    Counter(String, NumberDataPoint),
    /// A histogram point (the name is the family's).
    Histogram(String, HistogramDataPoint),
    /// A summary point (the name is the family's).
    Summary(String, SummaryDataPoint),
}

impl Point {
    fn name(&self) -> &str {
        match self {
            Point::Gauge(n, _) | Point::Counter(n, _) => n,
            Point::Histogram(n, _) | Point::Summary(n, _) => n,
        }
    }

    /// Bytes the point adds to a request, about.
    fn size(&self) -> usize {
        use prost::Message;
        let p = match self {
            Point::Gauge(_, p) | Point::Counter(_, p) => p.encoded_len(),
            Point::Histogram(_, p) => p.encoded_len(),
            Point::Summary(_, p) => p.encoded_len(),
        };
        p + 8
    }

    /// Same metric (name and kind) as another point.
    fn same_metric(&self, m: &Metric) -> bool {
        if self.name() != m.name {
            return false;
        }
        matches!(
            (self, &m.data),
            (Point::Gauge(..), Some(Data::Gauge(_)))
                | (Point::Counter(..), Some(Data::Sum(_)))
                | (Point::Histogram(..), Some(Data::Histogram(_)))
                | (Point::Summary(..), Some(Data::Summary(_)))
        )
    }
}

/// The points of one scrape.
#[derive(Debug, Default)]
pub struct Converted {
    /// Points to send.
    pub points: Vec<Point>,
}

/// A string attribute.
fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
    }
}

/// The exposed labels (empty values dropped, as in Prometheus), exposed names that a target
/// label takes moved to `exported_<name>`, then the target labels.
pub fn with_target_labels(
    mut labels: Vec<(String, String)>,
    target: &[(String, String)],
) -> Vec<(String, String)> {
    labels.retain(|(_, v)| !v.is_empty());
    for (name, _) in target {
        let Some(i) = labels.iter().position(|(k, _)| k == name) else {
            continue;
        };
        let mut new = format!("exported_{name}");
        while labels.iter().any(|(k, _)| *k == new) || target.iter().any(|(k, _)| *k == new) {
            new.insert_str(0, "exported_");
        }
        if let Some(slot) = labels.get_mut(i) {
            slot.0 = new;
        }
    }
    labels.extend(target.iter().cloned());
    labels
}

fn attrs(labels: &[(String, String)]) -> Vec<KeyValue> {
    labels.iter().map(|(k, v)| kv(k, v)).collect()
}

/// ms since the epoch to ns (a time at or before the epoch becomes 1 ns: 0 means "none").
fn ms_to_ns(ms: i64) -> u64 {
    u64::try_from(ms)
        .ok()
        .and_then(|m| m.checked_mul(1_000_000))
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// The text the collector writes for a bound or quantile (see `otlp_metrics`' `float_text`):
/// the shortest that reads back as the same number, `+Inf`, `-Inf`, `NaN`.
fn number_text(f: f64) -> String {
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

/// A `le` or `quantile` value written as the collector writes them; left as it is when it
/// is not a number.
fn normalized(text: &str) -> String {
    match text.parse::<f64>() {
        Ok(f) => number_text(f),
        Err(_) => text.to_string(),
    }
}

fn number(ts: u64, labels: &[(String, String)], v: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs(labels),
        start_time_unix_nano: 0,
        time_unix_nano: ts,
        exemplars: Vec::new(),
        flags: 0,
        value: Some(Value::AsDouble(v)),
    }
}

/// One exposed sample of a histogram or summary group, with its final labels.
struct Part {
    name: String,
    suffix: String,
    labels: Vec<(String, String)>,
    value: f64,
    ts: u64,
}

/// The samples of one histogram or summary label set.
struct Group {
    family: String,
    histogram: bool,
    /// Labels without `le` / `quantile`.
    labels: Vec<(String, String)>,
    parts: Vec<Part>,
}

/// Converts the samples of one scrape; `target` are the target's labels (job, instance,
/// extra), `now` the scrape's start (ns).
pub fn convert(samples: Vec<Sample>, target: &[(String, String)], now: u64) -> Converted {
    let mut out = Converted::default();
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<(String, Vec<(String, String)>), usize> = HashMap::new();
    for s in samples {
        let ts = s.timestamp_ms.map_or(now, ms_to_ns);
        let grouped = match s.ty {
            MetricType::Histogram => matches!(s.suffix(), "_bucket" | "_count" | "_sum"),
            MetricType::Summary => matches!(s.suffix(), "" | "_count" | "_sum"),
            _ => false,
        };
        let family = s.family().to_string();
        let suffix = s.suffix().to_string();
        let ty = s.ty;
        let labels = with_target_labels(s.labels, target);
        if grouped {
            let special = if ty == MetricType::Histogram {
                "le"
            } else {
                "quantile"
            };
            let mut key_labels: Vec<(String, String)> = labels
                .iter()
                .filter(|(k, _)| k != special)
                .cloned()
                .collect();
            key_labels.sort();
            let key = (family.clone(), key_labels);
            let i = match index.get(&key) {
                Some(i) => *i,
                None => {
                    groups.push(Group {
                        family,
                        histogram: ty == MetricType::Histogram,
                        labels: key.1.clone(),
                        parts: Vec::new(),
                    });
                    index.insert(key, groups.len() - 1);
                    groups.len() - 1
                }
            };
            if let Some(g) = groups.get_mut(i) {
                g.parts.push(Part {
                    name: s.name,
                    suffix,
                    labels,
                    value: s.value,
                    ts,
                });
            }
            continue;
        }
        let counter = ty == MetricType::Counter && suffix != "_created";
        let p = number(ts, &labels, s.value);
        out.points.push(if counter {
            Point::Counter(s.name, p)
        } else {
            Point::Gauge(s.name, p)
        });
    }
    for g in groups {
        let one = if g.histogram {
            histogram_point(&g)
        } else {
            summary_point(&g)
        };
        match one {
            Some(p) => out.points.push(p),
            None => sample_by_sample(g, &mut out),
        }
    }
    out
}

/// The one time of a group's parts, if they share it.
fn shared_time(g: &Group) -> Option<u64> {
    let first = g.parts.first()?.ts;
    g.parts.iter().all(|p| p.ts == first).then_some(first)
}

fn whole_count(v: f64) -> Option<u64> {
    (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= MAX_EXACT).then_some(v as u64)
}

/// A histogram group as one OTLP point, when it can be one exactly.
fn histogram_point(g: &Group) -> Option<Point> {
    let ts = shared_time(g)?;
    let mut buckets: Vec<(f64, u64)> = Vec::new();
    let (mut count, mut sum) = (None, None);
    for p in &g.parts {
        match p.suffix.as_str() {
            "_bucket" => {
                let le = p
                    .labels
                    .iter()
                    .find(|(k, _)| k == "le")?
                    .1
                    .parse::<f64>()
                    .ok()?;
                buckets.push((le, whole_count(p.value)?));
            }
            "_count" if count.is_none() => count = Some(whole_count(p.value)?),
            "_sum" if sum.is_none() => sum = Some(p.value),
            _ => return None,
        }
    }
    let count = count?;
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (last_le, _) = *buckets.last()?;
    if last_le != f64::INFINITY {
        return None;
    }
    let mut explicit_bounds = Vec::with_capacity(buckets.len());
    let mut bucket_counts = Vec::with_capacity(buckets.len());
    let mut prev: Option<(f64, u64)> = None;
    for (le, c) in &buckets {
        if le.is_nan() {
            return None;
        }
        let below = match prev {
            Some((ple, pc)) => {
                if ple == *le || *c < pc {
                    return None;
                }
                pc
            }
            None => 0,
        };
        bucket_counts.push(c - below);
        if le.is_finite() || *le == f64::NEG_INFINITY {
            explicit_bounds.push(*le);
        }
        prev = Some((*le, *c));
    }
    Some(Point::Histogram(
        g.family.clone(),
        HistogramDataPoint {
            attributes: attrs(&g.labels),
            start_time_unix_nano: 0,
            time_unix_nano: ts,
            count,
            sum,
            bucket_counts,
            explicit_bounds,
            exemplars: Vec::new(),
            flags: 0,
            min: None,
            max: None,
        },
    ))
}

/// A summary group as one OTLP point, when it can be one exactly.
fn summary_point(g: &Group) -> Option<Point> {
    let ts = shared_time(g)?;
    let mut quantiles: Vec<ValueAtQuantile> = Vec::new();
    let (mut count, mut sum) = (None, None);
    for p in &g.parts {
        match p.suffix.as_str() {
            "" => {
                let q = p
                    .labels
                    .iter()
                    .find(|(k, _)| k == "quantile")?
                    .1
                    .parse::<f64>()
                    .ok()
                    .filter(|q| q.is_finite())?;
                if quantiles.iter().any(|v| v.quantile == q) {
                    return None;
                }
                quantiles.push(ValueAtQuantile {
                    quantile: q,
                    value: p.value,
                });
            }
            "_count" if count.is_none() => count = Some(whole_count(p.value)?),
            "_sum" if sum.is_none() => sum = Some(p.value),
            _ => return None,
        }
    }
    let (count, sum) = (count?, sum?);
    Some(Point::Summary(
        g.family.clone(),
        SummaryDataPoint {
            attributes: attrs(&g.labels),
            start_time_unix_nano: 0,
            time_unix_nano: ts,
            count,
            sum,
            quantile_values: quantiles,
            flags: 0,
        },
    ))
}

/// A group that cannot be one OTLP point: each sample on its own, `le` and `quantile`
/// normalized as the collector would write them.
fn sample_by_sample(g: Group, out: &mut Converted) {
    for mut p in g.parts {
        for (k, v) in p.labels.iter_mut() {
            if k == "le" || k == "quantile" {
                *v = normalized(v);
            }
        }
        let point = number(p.ts, &p.labels, p.value);
        let quantile = !g.histogram && p.suffix.is_empty();
        out.points.push(if quantile {
            Point::Gauge(p.name, point)
        } else {
            Point::Counter(p.name, point)
        });
    }
}

/// What a scrape reports about itself, as Prometheus does: `up`, `scrape_duration_seconds`,
/// `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling`, with the target's
/// labels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// The scrape succeeded.
    pub up: bool,
    /// Seconds from the request to the parsed answer.
    pub duration_s: f64,
    /// Samples in the answer.
    pub scraped: usize,
    /// Samples left after `keep` and `drop`.
    pub kept: usize,
}

/// The report series of one scrape, as gauge points.
pub fn report_points(r: &Report, target: &[(String, String)], now: u64) -> Vec<Point> {
    [
        ("up", if r.up { 1.0 } else { 0.0 }),
        ("scrape_duration_seconds", r.duration_s),
        ("scrape_samples_scraped", r.scraped as f64),
        ("scrape_samples_post_metric_relabeling", r.kept as f64),
    ]
    .into_iter()
    .map(|(name, v)| Point::Gauge(name.to_string(), number(now, target, v)))
    .collect()
}

fn new_metric(p: &Point) -> Metric {
    let data = match p {
        Point::Gauge(..) => Data::Gauge(Gauge {
            data_points: Vec::new(),
        }),
        Point::Counter(..) => Data::Sum(Sum {
            data_points: Vec::new(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        }),
        Point::Histogram(..) => Data::Histogram(Histogram {
            data_points: Vec::new(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
        Point::Summary(..) => Data::Summary(Summary {
            data_points: Vec::new(),
        }),
    };
    Metric {
        name: p.name().to_string(),
        description: String::new(),
        unit: String::new(),
        metadata: Vec::new(),
        data: Some(data),
    }
}

fn add(m: &mut Metric, p: Point) {
    match (&mut m.data, p) {
        (Some(Data::Gauge(g)), Point::Gauge(_, p)) => g.data_points.push(p),
        (Some(Data::Sum(s)), Point::Counter(_, p)) => s.data_points.push(p),
        (Some(Data::Histogram(h)), Point::Histogram(_, p)) => h.data_points.push(p),
        (Some(Data::Summary(s)), Point::Summary(_, p)) => s.data_points.push(p),
        _ => {}
    }
}

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            // No attributes: the collector would make labels of some (see the module doc).
            resource: Some(Resource::default()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    attributes: Vec::new(),
                    dropped_attributes_count: 0,
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// Packs points into export requests of about `max_bytes` each (a single larger point gets
/// a request of its own), consecutive points of one metric under one `Metric`.
pub fn pack(points: Vec<Point>, max_bytes: usize) -> Vec<ExportMetricsServiceRequest> {
    let mut out = Vec::new();
    let mut metrics: Vec<Metric> = Vec::new();
    let mut bytes = 0usize;
    for p in points {
        let size = p.size() + p.name().len();
        if bytes > 0 && bytes + size > max_bytes {
            out.push(request(std::mem::take(&mut metrics)));
            bytes = 0;
        }
        bytes += size;
        match metrics.last_mut() {
            Some(m) if p.same_metric(m) => add(m, p),
            _ => {
                let mut m = new_metric(&p);
                add(&mut m, p);
                metrics.push(m);
            }
        }
    }
    if !metrics.is_empty() {
        out.push(request(metrics));
    }
    out
}
