//! The agent's own counters, served at `/metrics` in Prometheus text format on
//! `telemetry.listen` (default 127.0.0.1:7701). Every name starts with `skein_agent_`. Every
//! metric is registered with HELP text, and rendered, through `skein_telemetry`.

use skein_telemetry::{CounterFamily, Gauge, GaugeFamily, GaugeU64, Metrics, label};
use std::sync::{Arc, Mutex};

/// Counters shared by every part of the agent. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Metrics,
    lines_read: CounterFamily,
    bytes_read: CounterFamily,
    lines_truncated: CounterFamily,
    parse_failures: CounterFamily,
    read_errors: CounterFamily,
    rotations: CounterFamily,
    files_open: Gauge<i64>,
    records_buffered: CounterFamily,
    records_sent: CounterFamily,
    requests_failed: CounterFamily,
    retries: CounterFamily,
    records_rejected: CounterFamily,
    dropped: CounterFamily,
    buffer_bytes: GaugeU64,
    buffer_max_bytes: GaugeU64,
    received: CounterFamily,
    scrapes: CounterFamily,
    shipping_blocked: GaugeFamily,
    /// Why shipping is blocked now: the gauge's reason and a sentence for people.
    blocked: Mutex<Option<(String, String)>>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut m = Metrics::new("skein_agent");
        let lines_read = m.counter_family(
            "lines_read",
            "Log records read from files (after multiline joining), by source",
        );
        let bytes_read = m.counter_family("bytes_read", "Bytes read from files, by source");
        let lines_truncated = m.counter_family(
            "lines_truncated",
            "Lines longer than max_line_bytes, cut to the limit, by source",
        );
        let parse_failures = m.counter_family(
            "parse_failures",
            "Lines that did not parse in the source's format and were shipped as plain text, by source",
        );
        let read_errors = m.counter_family(
            "read_errors",
            "Files that could not be opened or read (permission, I/O), by source",
        );
        let rotations = m.counter_family(
            "rotations",
            "File rotations seen, by source and kind (rename, truncate)",
        );
        let records_buffered = m.counter_family(
            "records_buffered",
            "Records written to the disk buffer, by signal",
        );
        let records_sent = m.counter_family(
            "records_sent",
            "Records the collector acknowledged, by signal",
        );
        let requests_failed = m.counter_family(
            "requests_failed",
            "Requests to the collector that failed, by signal and reason",
        );
        let retries = m.counter_family("retries", "Requests retried after a failure, by signal");
        let records_rejected = m.counter_family(
            "records_rejected",
            "Records the collector refused for their content, alone or in a partial success (dropped, not retried), by signal",
        );
        let dropped = m.counter_family(
            "dropped",
            "Records dropped, by reason (buffer_full under when_full = drop_oldest; too_large or bad_request: one record the collector refused on its own; partial_success; undecodable)",
        );
        let received = m.counter_family(
            "received",
            "Records received by the local OTLP receiver, by signal",
        );
        let scrapes = m.counter_family(
            "scrapes",
            "Scrapes of [[scrape]] targets, by job and result (ok, failed: up = 0)",
        );
        let shipping_blocked = m.gauge_family(
            "shipping_blocked",
            "1 while the collector refuses batches for a reason that is not their content (401, 403, 404, ...): nothing is dropped, batches wait and are retried; by reason",
        );
        let files_open = m.register("files_open", "Files being tailed now", Gauge::default());
        let buffer_bytes = m.gauge("buffer_bytes", "Bytes in the disk buffer (unsent data)");
        let buffer_max_bytes = m.gauge("buffer_max_bytes", "Size limit of the disk buffer");
        Telemetry {
            inner: Arc::new(Inner {
                metrics: m,
                lines_read,
                bytes_read,
                lines_truncated,
                parse_failures,
                read_errors,
                rotations,
                files_open,
                records_buffered,
                records_sent,
                requests_failed,
                retries,
                records_rejected,
                dropped,
                buffer_bytes,
                buffer_max_bytes,
                received,
                scrapes,
                shipping_blocked,
                blocked: Mutex::new(None),
            }),
        }
    }

    fn by(f: &CounterFamily, k: &'static str, v: &str, n: u64) {
        f.get_or_create(&label(k, v)).inc_by(n);
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
    /// Records refused by the collector for their content.
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
    /// One scrape of a `[[scrape]]` target, succeeded or failed.
    pub fn scrape(&self, job: &str, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.inner
            .scrapes
            .get_or_create(&vec![("job", job.to_string()), ("result", result.into())])
            .inc();
    }
    /// Current and maximum disk buffer size.
    pub fn set_buffer(&self, bytes: u64, max: u64) {
        self.inner.buffer_bytes.set(bytes);
        self.inner.buffer_max_bytes.set(max);
    }

    /// Shipping blocked by a configuration problem (`reason` such as `status_401`, and a
    /// sentence naming it), or no longer blocked (`None`).
    pub fn set_shipping_blocked(&self, now: Option<(&str, &str)>) {
        let Ok(mut g) = self.inner.blocked.lock() else {
            return;
        };
        if let Some((old, _)) = g.as_ref() {
            if now.is_some_and(|(r, _)| r == old) {
                *g = now.map(|(r, d)| (r.to_string(), d.to_string()));
                return;
            }
            self.inner
                .shipping_blocked
                .get_or_create(&label("reason", old))
                .set(0);
        }
        if let Some((reason, _)) = now {
            self.inner
                .shipping_blocked
                .get_or_create(&label("reason", reason))
                .set(1);
        }
        *g = now.map(|(r, d)| (r.to_string(), d.to_string()));
    }

    /// What blocks shipping now, in a sentence, if anything.
    pub fn shipping_blocked(&self) -> Option<String> {
        self.inner
            .blocked
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|(_, d)| d.clone()))
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        self.inner.metrics.render()
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
        t.set_shipping_blocked(Some(("status_401", "the collector answers 401")));
        t.set_shipping_blocked(Some(("status_404", "the collector answers 404")));
        assert_eq!(
            t.shipping_blocked().as_deref(),
            Some("the collector answers 404")
        );
        let s = t.encode();
        assert!(s.contains("skein_agent_shipping_blocked{reason=\"status_401\"} 0"));
        assert!(s.contains("skein_agent_shipping_blocked{reason=\"status_404\"} 1"));
        t.set_shipping_blocked(None);
        assert_eq!(t.shipping_blocked(), None);
        let s = t.encode();
        assert!(s.contains("skein_agent_shipping_blocked{reason=\"status_404\"} 0"));
        assert!(
            s.contains("skein_agent_lines_read_total{source=\"payment\"} 3"),
            "{s}"
        );
        assert!(s.contains("skein_agent_dropped_total{reason=\"buffer_full\"} 2"));
        assert!(s.contains("skein_agent_buffer_bytes 10"));
    }

    #[test]
    fn every_metric_has_help() {
        let t = Telemetry::new();
        t.lines_read("payment", 1);
        t.rotation("payment", "rename");
        t.set_files_open(2);
        t.set_buffer(10, 100);
        let text = t.encode();
        assert_eq!(
            skein_telemetry::families_without_help(&text),
            Vec::<String>::new(),
            "{text}"
        );
    }
}
