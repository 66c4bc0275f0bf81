//! The agent's own counters, served at `/metrics` in Prometheus text format on
//! `telemetry.listen` (default 127.0.0.1:7701). Every name starts with `skein_agent_`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(&'static str, String)>;

/// Counters shared by every part of the agent. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    lines_read: Family<Labels, Counter>,
    bytes_read: Family<Labels, Counter>,
    lines_truncated: Family<Labels, Counter>,
    parse_failures: Family<Labels, Counter>,
    read_errors: Family<Labels, Counter>,
    rotations: Family<Labels, Counter>,
    files_open: Gauge<i64>,
    records_buffered: Family<Labels, Counter>,
    records_sent: Family<Labels, Counter>,
    requests_failed: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    records_rejected: Family<Labels, Counter>,
    dropped: Family<Labels, Counter>,
    buffer_bytes: Gauge<u64, AtomicU64>,
    buffer_max_bytes: Gauge<u64, AtomicU64>,
    received: Family<Labels, Counter>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

fn fam() -> Family<Labels, Counter> {
    Family::default()
}

impl Telemetry {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("skein_agent");
        let inner = Inner {
            lines_read: fam(),
            bytes_read: fam(),
            lines_truncated: fam(),
            parse_failures: fam(),
            read_errors: fam(),
            rotations: fam(),
            files_open: Gauge::default(),
            records_buffered: fam(),
            records_sent: fam(),
            requests_failed: fam(),
            retries: fam(),
            records_rejected: fam(),
            dropped: fam(),
            buffer_bytes: Gauge::default(),
            buffer_max_bytes: Gauge::default(),
            received: fam(),
            registry: Registry::default(),
        };
        let reg: [(&str, &str, &Family<Labels, Counter>); 12] = [
            (
                "lines_read",
                "Log records read from files (after multiline joining), by source",
                &inner.lines_read,
            ),
            (
                "bytes_read",
                "Bytes read from files, by source",
                &inner.bytes_read,
            ),
            (
                "lines_truncated",
                "Lines longer than max_line_bytes, cut to the limit, by source",
                &inner.lines_truncated,
            ),
            (
                "parse_failures",
                "Lines that did not parse in the source's format and were shipped as plain text, by source",
                &inner.parse_failures,
            ),
            (
                "read_errors",
                "Files that could not be opened or read (permission, I/O), by source",
                &inner.read_errors,
            ),
            (
                "rotations",
                "File rotations seen, by source and kind (rename, truncate)",
                &inner.rotations,
            ),
            (
                "records_buffered",
                "Records written to the disk buffer, by signal",
                &inner.records_buffered,
            ),
            (
                "records_sent",
                "Records the collector acknowledged, by signal",
                &inner.records_sent,
            ),
            (
                "requests_failed",
                "Requests to the collector that failed, by signal and reason",
                &inner.requests_failed,
            ),
            (
                "retries",
                "Requests retried after a failure, by signal",
                &inner.retries,
            ),
            (
                "records_rejected",
                "Records the collector refused with a 4xx (dropped, not retried), by signal",
                &inner.records_rejected,
            ),
            (
                "dropped",
                "Records dropped, by reason (buffer_full under when_full = drop_oldest, rejected)",
                &inner.dropped,
            ),
        ];
        for (name, help, f) in reg {
            registry.register(name, help, f.clone());
        }
        registry.register(
            "received",
            "Records received by the local OTLP receiver, by signal",
            inner.received.clone(),
        );
        registry.register(
            "files_open",
            "Files being tailed now",
            inner.files_open.clone(),
        );
        registry.register(
            "buffer_bytes",
            "Bytes in the disk buffer (unsent data)",
            inner.buffer_bytes.clone(),
        );
        registry.register(
            "buffer_max_bytes",
            "Size limit of the disk buffer",
            inner.buffer_max_bytes.clone(),
        );
        Telemetry {
            inner: Arc::new(Inner { registry, ..inner }),
        }
    }

    fn by(f: &Family<Labels, Counter>, k: &'static str, v: &str, n: u64) {
        f.get_or_create(&vec![(k, v.to_string())]).inc_by(n);
    }

    /// Records read from a source's files.
    pub fn lines_read(&self, source: &str, n: u64) {
        Self::by(&self.inner.lines_read, "source", source, n);
    }
    /// Bytes read from a source's files.
    pub fn bytes_read(&self, source: &str, n: u64) {
        Self::by(&self.inner.bytes_read, "source", source, n);
    }
    /// A line cut at `max_line_bytes`.
    pub fn line_truncated(&self, source: &str) {
        Self::by(&self.inner.lines_truncated, "source", source, 1);
    }
    /// A line that did not parse in its format.
    pub fn parse_failure(&self, source: &str) {
        Self::by(&self.inner.parse_failures, "source", source, 1);
    }
    /// A file that could not be opened or read.
    pub fn read_error(&self, source: &str) {
        Self::by(&self.inner.read_errors, "source", source, 1);
    }
    /// A rotation (`kind` is `rename` or `truncate`).
    pub fn rotation(&self, source: &str, kind: &'static str) {
        self.inner
            .rotations
            .get_or_create(&vec![("source", source.to_string()), ("kind", kind.into())])
            .inc();
    }
    /// How many files are open.
    pub fn set_files_open(&self, n: usize) {
        self.inner
            .files_open
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    /// Records written to the disk buffer.
    pub fn records_buffered(&self, signal: &str, n: u64) {
        Self::by(&self.inner.records_buffered, "signal", signal, n);
    }
    /// Records acknowledged by the collector.
    pub fn records_sent(&self, signal: &str, n: u64) {
        Self::by(&self.inner.records_sent, "signal", signal, n);
    }
    /// A failed request, by reason (`network`, `timeout`, `status_503`, …).
    pub fn request_failed(&self, signal: &str, reason: &str) {
        self.inner
            .requests_failed
            .get_or_create(&vec![("signal", signal.into()), ("reason", reason.into())])
            .inc();
    }
    /// A retried request.
    pub fn retry(&self, signal: &str) {
        Self::by(&self.inner.retries, "signal", signal, 1);
    }
    /// Records refused by the collector with a 4xx.
    pub fn records_rejected(&self, signal: &str, n: u64) {
        Self::by(&self.inner.records_rejected, "signal", signal, n);
    }
    /// Records dropped, by reason.
    pub fn dropped(&self, reason: &str, n: u64) {
        Self::by(&self.inner.dropped, "reason", reason, n);
    }
    /// Records received by the local OTLP receiver.
    pub fn received(&self, signal: &str, n: u64) {
        Self::by(&self.inner.received, "signal", signal, n);
    }
    /// Current and maximum disk buffer size.
    pub fn set_buffer(&self, bytes: u64, max: u64) {
        self.inner.buffer_bytes.set(bytes);
        self.inner.buffer_max_bytes.set(max);
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.inner.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_in_the_text() {
        let t = Telemetry::new();
        t.lines_read("payment", 3);
        t.dropped("buffer_full", 2);
        t.set_buffer(10, 100);
        let s = t.encode();
        assert!(
            s.contains("skein_agent_lines_read_total{source=\"payment\"} 3"),
            "{s}"
        );
        assert!(s.contains("skein_agent_dropped_total{reason=\"buffer_full\"} 2"));
        assert!(s.contains("skein_agent_buffer_bytes 10"));
    }
}
