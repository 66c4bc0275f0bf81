//! RED figures (rate, errors, duration) per service and operation, and the cumulative
//! counters and histogram both operations and edges are written with.

use super::{DeriveStats, service_of};
use hdrhistogram::Histogram;
use skein_model::Span;
use skein_model::metric::{Labels, MetricBatch, MetricKind, SeriesSpec};
use std::collections::BTreeMap;

/// Upper bounds of the duration buckets, in ms. A last bucket, `+Inf`, follows.
pub(super) const BOUNDS_MS: [f64; 27] = [
    0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 25.0, 35.0, 50.0, 75.0, 100.0, 150.0, 250.0, 350.0,
    500.0, 750.0, 1000.0, 1500.0, 2500.0, 5000.0, 7500.0, 10000.0, 15000.0, 30000.0, 60000.0,
];

/// Number of buckets, `+Inf` included.
const BUCKETS: usize = BOUNDS_MS.len() + 1;

/// Lowest and highest value the interval histograms hold, in µs (1 µs to 1 hour).
const HIST_LOW_US: u64 = 1;
const HIST_HIGH_US: u64 = 3_600_000_000;

/// The interval quantiles written, with their name suffixes.
const QUANTILES: [(f64, &str); 4] = [(0.5, "p50"), (0.9, "p90"), (0.95, "p95"), (0.99, "p99")];

/// The `le` label of bucket `i`: whole numbers without ".0", the last one `+Inf`.
fn le_text(i: usize) -> String {
    match BOUNDS_MS.get(i) {
        Some(b) => format!("{b}"),
        None => "+Inf".to_string(),
    }
}

/// An empty interval histogram in µs, or None if hdrhistogram refuses the bounds (it does not).
pub(super) fn new_interval_hist() -> Option<Histogram<u64>> {
    Histogram::<u64>::new_with_bounds(HIST_LOW_US, HIST_HIGH_US, 2).ok()
}

/// Records a duration into an interval histogram, clamped into its range.
fn record_us(h: &mut Histogram<u64>, duration_ns: u64) {
    let us = (duration_ns / 1_000).clamp(HIST_LOW_US, HIST_HIGH_US);
    h.saturating_record(us);
}

/// Adds one series and its one sample to a batch.
pub(super) fn push_one(
    batch: &mut MetricBatch,
    name: String,
    labels: Labels,
    kind: MetricKind,
    unit: &str,
    ts_ms: i64,
    value: f64,
) {
    let i = batch.add_series(SeriesSpec {
        name,
        labels,
        kind,
        unit: unit.to_string(),
        delta: false,
    });
    batch.push(i, ts_ms, value);
}

/// Cumulative calls, errors and duration histogram of one operation or edge.
#[derive(Debug, Clone)]
pub(super) struct Totals {
    calls: u64,
    errors: u64,
    /// Count per bucket (not cumulative over bounds; made so when written).
    buckets: [u64; BUCKETS],
    sum_ms: f64,
    /// When the last call was recorded, ms.
    pub(super) last_ms: i64,
}

impl Totals {
    /// Nothing recorded yet.
    pub(super) fn new(now_ms: i64) -> Totals {
        Totals {
            calls: 0,
            errors: 0,
            buckets: [0; BUCKETS],
            sum_ms: 0.0,
            last_ms: now_ms,
        }
    }

    /// Records one call.
    pub(super) fn record(&mut self, duration_ns: u64, error: bool, now_ms: i64) {
        let ms = duration_ns as f64 / 1e6;
        let i = BOUNDS_MS.partition_point(|b| *b < ms);
        if let Some(slot) = self.buckets.get_mut(i) {
            *slot += 1;
        }
        self.calls += 1;
        if error {
            self.errors += 1;
        }
        self.sum_ms += ms;
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// Writes `<base>.calls`, `<base>.errors` and `<base>.duration_{bucket,sum,count}`.
    pub(super) fn emit(&self, batch: &mut MetricBatch, base: &str, labels: &Labels, ts_ms: i64) {
        let counter = |batch: &mut MetricBatch, what: &str, v: u64| {
            push_one(
                batch,
                format!("{base}.{what}"),
                labels.clone(),
                MetricKind::Counter,
                "1",
                ts_ms,
                v as f64,
            );
        };
        counter(batch, "calls", self.calls);
        counter(batch, "errors", self.errors);
        let mut cumulative = 0u64;
        for (i, n) in self.buckets.iter().enumerate() {
            cumulative += n;
            push_one(
                batch,
                format!("{base}.duration_bucket"),
                labels.with("le", &le_text(i)),
                MetricKind::Histogram,
                "ms",
                ts_ms,
                cumulative as f64,
            );
        }
        let hist = |batch: &mut MetricBatch, suffix: &str, v: f64| {
            push_one(
                batch,
                format!("{base}.duration_{suffix}"),
                labels.clone(),
                MetricKind::Histogram,
                "ms",
                ts_ms,
                v,
            );
        };
        hist(batch, "sum", self.sum_ms);
        hist(batch, "count", self.calls as f64);
    }
}

/// Writes the quantile gauges of an interval histogram, if it holds any value.
fn emit_quantiles(batch: &mut MetricBatch, h: &Histogram<u64>, labels: &Labels, ts_ms: i64) {
    if h.is_empty() {
        return;
    }
    for (q, suffix) in QUANTILES {
        push_one(
            batch,
            format!("skein.span.duration.{suffix}"),
            labels.clone(),
            MetricKind::Gauge,
            "ms",
            ts_ms,
            h.value_at_quantile(q) as f64 / 1_000.0,
        );
    }
}

/// One operation: its totals and the histogram of the current interval (None until the
/// interval's first call, so idle operations cost no histogram).
struct Op {
    totals: Totals,
    interval: Option<Histogram<u64>>,
}

/// The RED figures of every operation seen, keyed by (service, operation).
pub(super) struct Red {
    ops: BTreeMap<(String, String), Op>,
    max_series: usize,
}

impl Red {
    /// Nothing seen yet.
    pub(super) fn new(max_series: usize) -> Red {
        Red {
            ops: BTreeMap::new(),
            max_series,
        }
    }

    /// Operations kept.
    pub(super) fn len(&self) -> usize {
        self.ops.len()
    }

    /// Counts the span if it is a call of its service: a server or consumer span, or a root.
    pub(super) fn observe(&mut self, span: &Span, now_ms: i64, stats: &mut DeriveStats) {
        let is_call =
            matches!(span.kind.as_str(), "server" | "consumer") || span.parent_span_id.is_empty();
        if !is_call {
            return;
        }
        let operation = if span.name.is_empty() {
            "unknown_operation"
        } else {
            super::label_value(&span.name)
        };
        let key = (service_of(span).to_string(), operation.to_string());
        if !self.ops.contains_key(&key) && self.ops.len() >= self.max_series {
            stats.series_dropped += 1;
            return;
        }
        let op = self.ops.entry(key).or_insert_with(|| Op {
            totals: Totals::new(now_ms),
            interval: None,
        });
        op.totals.record(span.duration_ns, span.is_error(), now_ms);
        if op.interval.is_none() {
            op.interval = new_interval_hist();
        }
        if let Some(h) = op.interval.as_mut() {
            record_us(h, span.duration_ns);
        }
    }

    /// Forgets the operations with no call for `idle_ms`.
    pub(super) fn forget_idle(&mut self, now_ms: i64, idle_ms: i64) {
        self.ops
            .retain(|_, op| now_ms.saturating_sub(op.totals.last_ms) < idle_ms);
    }

    /// Writes every operation's series, and the quantiles of the interval per operation and
    /// per service; the interval histograms start again empty.
    pub(super) fn emit(&mut self, batch: &mut MetricBatch, ts_ms: i64) {
        // Operations are in (service, operation) order, so one service's come together:
        // their interval histograms are added into `acc` and written when the service ends.
        let mut acc: Option<(String, Histogram<u64>)> = None;
        for ((service, operation), op) in self.ops.iter_mut() {
            if acc.as_ref().is_some_and(|(s, _)| s != service)
                && let Some((s, h)) = acc.take()
            {
                emit_quantiles(batch, &h, &Labels::from_pairs([("service", s)]), ts_ms);
            }
            let labels = Labels::from_pairs([
                ("service", service.as_str()),
                ("operation", operation.as_str()),
            ]);
            op.totals.emit(batch, "skein.span", &labels, ts_ms);
            if let Some(h) = op.interval.take() {
                emit_quantiles(batch, &h, &labels, ts_ms);
                match acc.as_mut() {
                    // Same bounds on both sides: adding cannot fail.
                    Some((_, a)) => {
                        let _ = a.add(&h);
                    }
                    None => acc = Some((service.clone(), h)),
                }
            }
        }
        if let Some((s, h)) = acc {
            emit_quantiles(batch, &h, &Labels::from_pairs([("service", s)]), ts_ms);
        }
    }
}
