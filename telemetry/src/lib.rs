//! Skein's own metrics, as the collector and the agent serve them at `/metrics`.
//!
//! [`Metrics`] registers each metric under a name prefix with its HELP text, and renders them
//! all in the Prometheus text format (version 0.0.4, served as [`CONTENT_TYPE`]). The metrics
//! themselves are `prometheus-client`'s counters, gauges and histograms, and series are told
//! apart by [`Labels`].
//!
//! `prometheus-client` writes OpenMetrics, where a counter family is named without `_total`
//! and its samples with it. The Prometheus text format, and so `promtool check metrics`, takes
//! the samples' name as the family's: it would see `x_total` without HELP. So
//! [`Metrics::render`] names counter families as their samples. [`families_without_help`]
//! finds the families of a text that lack HELP, for tests.

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::{Metric, Registry};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;

pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// The labels of one series: name and value pairs, printed in this order.
pub type Labels = Vec<(&'static str, String)>;

/// Counters by labels.
pub type CounterFamily = Family<Labels, Counter>;

/// A gauge of a whole number that is never negative.
pub type GaugeU64 = Gauge<u64, AtomicU64>;

/// [`GaugeU64`]s by labels.
pub type GaugeFamily = Family<Labels, GaugeU64>;

/// The content type of the text [`Metrics::render`] makes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Labels of one name and value.
pub fn label(name: &'static str, value: &str) -> Labels {
    vec![(name, value.to_string())]
}

/// The metrics of one program, each registered with HELP text.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// No metrics yet; every name will start with `prefix` and `_`.
    pub fn new(prefix: &str) -> Metrics {
        Metrics {
            registry: Registry::with_prefix(prefix),
        }
    }

    /// Registers `metric` as `name` with `help` and returns it. The help is one sentence
    /// without its final period (one is added).
    pub fn register<M: Metric + Clone>(&mut self, name: &str, help: &str, metric: M) -> M {
        self.registry.register(name, help, metric.clone());
        metric
    }

    /// A new counter, registered. Its samples are named `<prefix>_<name>_total`.
    pub fn counter(&mut self, name: &str, help: &str) -> Counter {
        self.register(name, help, Counter::default())
    }

    /// A new family of counters, registered. Its samples are named `<prefix>_<name>_total`.
    pub fn counter_family(&mut self, name: &str, help: &str) -> CounterFamily {
        self.register(name, help, CounterFamily::default())
    }

    /// A new gauge, registered.
    pub fn gauge(&mut self, name: &str, help: &str) -> GaugeU64 {
        self.register(name, help, GaugeU64::default())
    }

    /// A new family of gauges, registered.
    pub fn gauge_family(&mut self, name: &str, help: &str) -> GaugeFamily {
        self.register(name, help, GaugeFamily::default())
    }

    /// Every metric in the Prometheus text format; empty if they cannot be encoded.
    pub fn render(&self) -> String {
        let mut open_metrics = String::new();
        if encode(&mut open_metrics, &self.registry).is_err() {
            return String::new();
        }
        prometheus_text(&open_metrics)
    }
}

/// `prometheus-client`'s OpenMetrics text in the Prometheus text format: counter families take
/// their samples' name (`x_total`), and the `# UNIT` and `# EOF` lines, which that format does
/// not have, go. Sample lines stay as they are.
fn prometheus_text(open_metrics: &str) -> String {
    let counters: HashSet<&str> = open_metrics
        .lines()
        .filter_map(|l| {
            let (name, kind) = l.strip_prefix("# TYPE ")?.split_once(' ')?;
            (kind == "counter").then_some(name)
        })
        .collect();
    let mut out = String::with_capacity(open_metrics.len() + 16 * counters.len());
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let counter_line = ["# HELP ", "# TYPE "].into_iter().find_map(|p| {
            let (name, rest) = line.strip_prefix(p)?.split_once(' ')?;
            counters.contains(name).then_some((p, name, rest))
        });
        match counter_line {
            Some((p, name, rest)) => {
                out.push_str(p);
                out.push_str(name);
                out.push_str("_total ");
                out.push_str(rest);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The metric families of `text` (Prometheus text format) without HELP, or with an empty one,
/// in the order they first appear. As `promtool check metrics` reads it, a sample belongs to
/// the family of its own name, except the `_bucket`, `_sum` and `_count` samples of a
/// histogram or summary.
pub fn families_without_help(text: &str) -> Vec<String> {
    let mut helped = HashSet::new();
    let mut kinds = HashMap::new();
    let mut families: Vec<&str> = Vec::new();
    for line in text.lines() {
        let family = if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            if !help.trim().trim_end_matches('.').trim().is_empty() {
                helped.insert(name);
            }
            name
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            kinds.insert(name, kind);
            name
        } else if line.starts_with('#') || line.trim().is_empty() {
            continue;
        } else {
            let name = line.split(['{', ' ']).next().unwrap_or(line);
            ["_bucket", "_sum", "_count"]
                .into_iter()
                .find_map(|suffix| {
                    let base = name.strip_suffix(suffix)?;
                    matches!(kinds.get(base), Some(&"histogram" | &"summary")).then_some(base)
                })
                .unwrap_or(name)
        };
        if !families.contains(&family) {
            families.push(family);
        }
    }
    families
        .into_iter()
        .filter(|f| !helped.contains(f))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_help_and_counters_are_named_as_their_samples() {
        let mut m = Metrics::new("t");
        m.counter_family("requests", "Requests, by route")
            .get_or_create(&label("route", "/x"))
            .inc();
        m.counter("restarts", "Restarts").inc();
        m.counter_family("unused", "Never counted");
        m.gauge("bytes", "Bytes held").set(3);
        m.gauge_family("sizes", "Sizes, by part")
            .get_or_create(&label("part", "head"))
            .set(2);
        m.register(
            "seconds",
            "Time taken",
            Histogram::new(exponential_buckets(0.001, 2.0, 3)),
        )
        .observe(0.002);
        let text = m.render();
        assert_eq!(families_without_help(&text), Vec::<String>::new(), "{text}");
        assert!(
            text.contains(
                "# HELP t_requests_total Requests, by route.\n\
                 # TYPE t_requests_total counter\n\
                 t_requests_total{route=\"/x\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE t_bytes gauge\nt_bytes 3\n"), "{text}");
        assert!(
            text.contains("t_seconds_bucket{le=\"0.002\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
    }

    #[test]
    fn families_without_help_are_found() {
        // OpenMetrics naming (the counter's family without `_total`), an empty help, none.
        let text = "# HELP t_requests Requests.\n# TYPE t_requests counter\nt_requests_total 1\n\
                    # HELP t_empty .\n# TYPE t_empty gauge\nt_empty 1\n\
                    # TYPE t_bare gauge\nt_bare 2\n\
                    # HELP t_h Time.\n# TYPE t_h histogram\nt_h_bucket{le=\"+Inf\"} 1\nt_h_sum 1\nt_h_count 1\n";
        assert_eq!(
            families_without_help(text),
            ["t_requests_total", "t_empty", "t_bare"]
        );
    }
}
