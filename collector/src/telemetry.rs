//! The collector's own counters, served at `/metrics` in Prometheus text format.
//!
//! Each stage counts what it received, accepted, rejected and failed, per signal. Every metric
//! is registered with HELP text, and rendered, through `skein_telemetry`.

use skein_telemetry::{
    Counter, CounterFamily, Family, GaugeFamily, GaugeU64, Histogram, Labels, Metrics,
    exponential_buckets, label,
};
use std::sync::Arc;

/// Counters shared by every part of the collector.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Metrics,
    received_records: CounterFamily,
    received_bytes: CounterFamily,
    rejected_records: CounterFamily,
    ingest_errors: CounterFamily,
    duplicate_batches: CounterFamily,
    indexed_records: CounterFamily,
    wal_bytes: GaugeU64,
    index_lag: GaugeU64,
    commit_seconds: Histogram,
    query_seconds: Family<Labels, Histogram>,
    metric_samples_refused: CounterFamily,
    tsdb: GaugeFamily,
    derive_skipped: Counter,
    /// The alert engine's counters, in the same registry.
    alerts: skein_alert::AlertTelemetry,
}

fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut m = Metrics::new("skein");
        let received_records = m.counter_family(
            "received_records",
            "Records accepted into the WAL, by signal",
        );
        let received_bytes = m.counter_family(
            "received_bytes",
            "Request bytes received after decompression, by signal",
        );
        let rejected_records = m.counter_family(
            "rejected_records",
            "Records rejected for bad IDs or limits (OTLP partial success), by signal",
        );
        let ingest_errors = m.counter_family(
            "ingest_errors",
            "Ingest requests answered with an error, by signal and reason",
        );
        let duplicate_batches = m.counter_family(
            "duplicate_batches",
            "Batches answered 2xx without storing them again because their skein-batch-id was already stored, by signal",
        );
        let indexed_records = m.counter_family(
            "indexed_records",
            "Records committed to the index, by signal",
        );
        let wal_bytes = m.gauge("wal_bytes", "Bytes in WAL segments");
        let index_lag = m.gauge(
            "index_lag_records",
            "Records acknowledged but not yet searchable",
        );
        let commit_seconds = m.register(
            "commit_seconds",
            "Time of one index commit round",
            seconds_histogram(),
        );
        let metric_samples_refused = m.counter_family(
            "metric_samples_refused",
            "Metric samples the store refused, by reason (out_of_order, series_limit, too_far_ahead); repeats of stored samples are counted as duplicate; native_histogram (refused by remote write)",
        );
        let tsdb = m.gauge_family(
            "tsdb",
            "Metrics store sizes: series, head_samples, blocks, block_samples, block_bytes, block_chunk_bytes, wal_bytes",
        );
        let derive_skipped = m.counter(
            "derive_skipped_batches",
            "Span batches not used for RED figures and the service graph because the deriver was behind",
        );
        let query_seconds = m.register(
            "query_seconds",
            "Query API latency, by route",
            Family::<Labels, Histogram>::new_with_constructor(
                seconds_histogram as fn() -> Histogram,
            ),
        );
        let alerts = skein_alert::AlertTelemetry::register(&mut m);
        Telemetry {
            inner: Arc::new(Inner {
                metrics: m,
                received_records,
                received_bytes,
                rejected_records,
                ingest_errors,
                duplicate_batches,
                indexed_records,
                wal_bytes,
                index_lag,
                commit_seconds,
                query_seconds,
                metric_samples_refused,
                tsdb,
                derive_skipped,
                alerts,
            }),
        }
    }

    fn sig(signal: &str) -> Labels {
        label("signal", signal)
    }

    /// A batch whose id was already stored was answered without storing it again.
    pub fn duplicate_batch(&self, signal: &str) {
        self.inner
            .duplicate_batches
            .get_or_create(&Self::sig(signal))
            .inc();
    }

    /// A batch was acknowledged.
    pub fn received(&self, signal: &str, records: u64, bytes: u64) {
        self.inner
            .received_records
            .get_or_create(&Self::sig(signal))
            .inc_by(records);
        self.inner
            .received_bytes
            .get_or_create(&Self::sig(signal))
            .inc_by(bytes);
    }

    /// Records were rejected inside an accepted request.
    pub fn rejected(&self, signal: &str, records: u64) {
        if records > 0 {
            self.inner
                .rejected_records
                .get_or_create(&Self::sig(signal))
                .inc_by(records);
        }
    }

    /// What the metrics store did with one request's samples.
    pub fn metric_samples(&self, r: &skein_store::tsdb::AppendReport) {
        for (reason, n) in [
            ("out_of_order", r.out_of_order),
            ("series_limit", r.series_limited),
            ("too_far_ahead", r.too_far_ahead),
            ("duplicate", r.duplicates),
        ] {
            if n > 0 {
                self.inner
                    .metric_samples_refused
                    .get_or_create(&label("reason", reason))
                    .inc_by(n);
            }
        }
    }

    /// Samples a receiver did not hand to the store, by reason (remote write's native
    /// histograms).
    pub fn metric_samples_skipped(&self, reason: &str, n: u64) {
        if n > 0 {
            self.inner
                .metric_samples_refused
                .get_or_create(&label("reason", reason))
                .inc_by(n);
        }
    }

    /// The metrics store's sizes.
    pub fn tsdb_stats(&self, st: &skein_store::tsdb::TsdbStats) {
        for (what, v) in [
            ("series", st.series),
            ("head_samples", st.head_samples),
            ("blocks", st.blocks),
            ("block_samples", st.block_samples),
            ("block_bytes", st.block_bytes),
            ("block_chunk_bytes", st.block_chunk_bytes),
            ("wal_bytes", st.wal_bytes),
        ] {
            self.inner.tsdb.get_or_create(&label("size", what)).set(v);
        }
    }

    /// A span batch skipped by the deriver.
    pub fn derive_skipped(&self) {
        self.inner.derive_skipped.inc();
    }

    /// A request failed.
    pub fn ingest_error(&self, signal: &str, reason: &str) {
        self.inner
            .ingest_errors
            .get_or_create(&vec![
                ("signal", signal.to_string()),
                ("reason", reason.to_string()),
            ])
            .inc();
    }

    /// Records were committed.
    pub fn indexed(&self, signal: &str, records: u64) {
        self.inner
            .indexed_records
            .get_or_create(&Self::sig(signal))
            .inc_by(records);
    }

    /// Current WAL size.
    pub fn set_wal_bytes(&self, b: u64) {
        self.inner.wal_bytes.set(b);
    }

    /// Current index lag.
    pub fn set_index_lag(&self, n: u64) {
        self.inner.index_lag.set(n);
    }

    /// One commit round took this long.
    pub fn commit_took(&self, secs: f64) {
        self.inner.commit_seconds.observe(secs);
    }

    /// One query took this long.
    pub fn query_took(&self, route: &str, secs: f64) {
        self.inner
            .query_seconds
            .get_or_create(&label("route", route))
            .observe(secs);
    }

    /// The alert engine's counters (registered in this registry).
    pub fn alerts(&self) -> skein_alert::AlertTelemetry {
        self.inner.alerts.clone()
    }

    /// Everything in Prometheus text format.
    pub fn render(&self) -> String {
        self.inner.metrics.render()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_in_text_format() {
        let t = Telemetry::new();
        t.received("logs", 3, 300);
        t.ingest_error("spans", "bad_request");
        let text = t.render();
        assert!(
            text.contains("skein_received_records_total{signal=\"logs\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("skein_ingest_errors_total{signal=\"spans\",reason=\"bad_request\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn every_metric_has_help() {
        let t = Telemetry::new();
        t.received("logs", 1, 10);
        t.commit_took(0.01);
        t.query_took("search", 0.01);
        t.alerts().alerts(1, 0);
        t.alerts().alert_notifications("ops", "sent", 1);
        let text = t.render();
        assert_eq!(
            skein_telemetry::families_without_help(&text),
            Vec::<String>::new(),
            "{text}"
        );
    }
}
