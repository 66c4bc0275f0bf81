//! Span metrics: RED figures per service and operation, and the service graph, derived from
//! accepted spans ([`thread`] runs it beside ingest).
//!
//! A [`Deriver`] is fed spans as the collector accepts them ([`Deriver::observe`]) and, once
//! per interval, turns what it saw into plain metric samples for the metrics store
//! ([`Deriver::flush`]). Time comes only from the `now_ms` arguments: it never reads the clock.
//!
//! What it writes (every series cumulative since the Deriver started, unless said otherwise):
//!
//! - per operation, labels `{service, operation}`: `skein.span.calls`, `skein.span.errors`
//!   (counters) and the histogram `skein.span.duration` in ms (`_bucket` with `le`, `_sum`,
//!   `_count`). The calls of a service are its server and consumer spans and its root spans.
//! - the quantiles of the interval just ended, in ms: `skein.span.duration.p50`, `.p90`,
//!   `.p95`, `.p99` (gauges), with `{service, operation}` and with `{service}` alone. Only
//!   for an interval that had calls.
//! - per edge of the service graph, labels `{caller, callee, kind, callee_type}`:
//!   `skein.edge.calls`, `skein.edge.errors` and the histogram `skein.edge.duration`, timed
//!   by the caller's span.
//!
//! [`red`] keeps the per-operation figures, [`graph`] joins caller and callee spans into edges.
//! Both are bounded: at most [`DeriveConfig::max_series`] operations and as many edges, at most
//! [`DeriveConfig::max_pending`] spans waiting for their other half in each join map.

mod graph;
mod red;
#[cfg(test)]
mod tests;
pub mod thread;

use skein_model::Span;
use skein_model::metric::MetricBatch;
use std::time::Duration;

/// Settings of a [`Deriver`].
#[derive(Debug, Clone)]
pub struct DeriveConfig {
    /// How often the owner calls [`Deriver::flush`] (5 s by default). The Deriver does not use it
    /// itself; it is here so the owner reads it from one place.
    pub interval: Duration,
    /// How long a span waits for its other half (a client for its server, and the reverse)
    /// before it is given up (30 s).
    pub join_window: Duration,
    /// Most spans kept waiting in each join map (100,000); the oldest are evicted beyond.
    pub max_pending: usize,
    /// Most operation series (10,000), and separately most edges (10,000). New ones beyond
    /// are ignored.
    pub max_series: usize,
    /// A series with no new call for this long is forgotten (5 min).
    pub idle_after: Duration,
}

impl Default for DeriveConfig {
    fn default() -> Self {
        DeriveConfig {
            interval: Duration::from_secs(5),
            join_window: Duration::from_secs(30),
            max_pending: 100_000,
            max_series: 10_000,
            idle_after: Duration::from_secs(300),
        }
    }
}

/// In a cluster, each partition's worker derives the span metrics of the spans it indexes,
/// into the partition's metrics store: the factory of those derivers.
pub fn deriver_factory(
    interval: Duration,
    join_window: Duration,
) -> skein_cluster::worker::DeriverFactory {
    std::sync::Arc::new(move || {
        Box::new(PartitionDeriver {
            deriver: Deriver::new(DeriveConfig {
                interval,
                join_window,
                ..DeriveConfig::default()
            }),
            step_ms: i64::try_from(interval.as_millis()).unwrap_or(i64::MAX),
        })
    })
}

/// A partition's deriver: a [`Deriver`] whose new counters count from the previous flush on
/// (as on one node, [`thread`]).
struct PartitionDeriver {
    deriver: Deriver,
    step_ms: i64,
}

impl skein_cluster::worker::SpanDeriver for PartitionDeriver {
    fn observe(&mut self, spans: &[skein_model::Span], now_ms: i64) {
        self.deriver.observe(spans, now_ms);
    }
    fn flush(&mut self, now_ms: i64) -> MetricBatch {
        let mut batch = self.deriver.flush(now_ms);
        for s in batch.samples.iter_mut() {
            s.start_ms = s.ts_ms.saturating_sub(self.step_ms);
        }
        batch
    }
}

/// What a [`Deriver`] has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeriveStats {
    /// Spans observed.
    pub spans: u64,
    /// Operation series kept now.
    pub red_series: u64,
    /// Edges kept now.
    pub edge_series: u64,
    /// Caller and callee spans joined (by parent or by link).
    pub edges_matched: u64,
    /// Client and producer spans that got no callee in the join window and became an edge to
    /// an uninstrumented node (a database, a queue, an outside host).
    pub edges_uninstrumented: u64,
    /// Client and producer spans that got no callee in the join window and had no hint of
    /// what they called: dropped.
    pub clients_unmatched: u64,
    /// Spans or joins whose new operation series or edge was refused because the
    /// `max_series` limit was reached (one per refused span or join).
    pub series_dropped: u64,
    /// Spans evicted from a full join map before their window ended.
    pub pending_evicted: u64,
    /// Spans waiting in the join maps now.
    pub pending: u64,
}

/// Derives RED metrics and the service graph from spans. Not thread-safe by itself: the owner
/// puts it behind a lock or in one task.
pub struct Deriver {
    red: red::Red,
    graph: graph::Graph,
    idle_after_ms: i64,
    stats: DeriveStats,
}

impl Deriver {
    /// A Deriver with nothing seen yet.
    pub fn new(cfg: DeriveConfig) -> Deriver {
        Deriver {
            red: red::Red::new(cfg.max_series),
            graph: graph::Graph::new(cfg.max_pending, cfg.max_series, millis(cfg.join_window)),
            idle_after_ms: millis(cfg.idle_after),
            stats: DeriveStats::default(),
        }
    }

    /// Feeds spans as they are accepted (any order, any service mix). `now_ms` is their
    /// arrival time, milliseconds since the Unix epoch.
    pub fn observe(&mut self, spans: &[Span], now_ms: i64) {
        for span in spans {
            self.stats.spans += 1;
            self.red.observe(span, now_ms, &mut self.stats);
            self.graph.observe(span, now_ms, &mut self.stats);
        }
    }

    /// Ends the interval: gives up the join state older than the join window (turning lone
    /// clients with hints into edges to uninstrumented nodes), forgets idle series, and
    /// returns the samples of every active series at `ts = now_ms`. The interval quantiles
    /// start again from nothing.
    pub fn flush(&mut self, now_ms: i64) -> MetricBatch {
        self.graph.expire(now_ms, &mut self.stats);
        self.red.forget_idle(now_ms, self.idle_after_ms);
        self.graph.forget_idle(now_ms, self.idle_after_ms);
        let mut batch = MetricBatch::default();
        self.red.emit(&mut batch, now_ms);
        self.graph.emit(&mut batch, now_ms);
        batch
    }

    /// The counters so far.
    pub fn stats(&self) -> DeriveStats {
        DeriveStats {
            red_series: self.red.len() as u64,
            edge_series: self.graph.edge_count() as u64,
            pending: self.graph.pending() as u64,
            ..self.stats
        }
    }
}

/// A duration in whole milliseconds, saturating.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Longest label value of a span-derived series, in bytes: the same bound as OTLP metric
/// labels (`MetricLimits::max_label_value_bytes`). Span names and service names may be up to
/// the record limit (1 MiB); as labels they are cut at a char boundary.
pub const MAX_LABEL_VALUE_BYTES: usize = 1024;

/// `s` cut to [`MAX_LABEL_VALUE_BYTES`] at a char boundary.
fn label_value(s: &str) -> &str {
    skein_model::cut_at_char_boundary(s, MAX_LABEL_VALUE_BYTES)
}

/// The service of a span, never empty, cut to a label's length.
fn service_of(span: &Span) -> &str {
    if span.service.is_empty() {
        "unknown_service"
    } else {
        label_value(&span.service)
    }
}
