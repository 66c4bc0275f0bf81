//! Prometheus names of stored series.
//!
//! Skein stores series under the names they were sent with. OpenTelemetry names
//! (`http.server.duration`, `skein.span.calls`) are not valid Prometheus names, so PromQL and
//! the Prometheus API see them under the names the OpenTelemetry-to-Prometheus
//! compatibility rules give:
//!
//! - A stored name that is already a valid Prometheus name (`[a-zA-Z_:][a-zA-Z0-9_:]*`:
//!   remote-written, scraped, or an OTLP name without dots) is shown unchanged.
//! - Any other name: every run of characters outside `[a-zA-Z0-9:]` becomes one `_` (leading
//!   and trailing ones dropped, `_` put first when it would start with a digit); then the unit
//!   is appended unless a word of the name already is that unit (`ms` → `milliseconds`, `s` →
//!   `seconds`, `By` → `bytes`, `By/s` → `bytes_per_second`, units in braces such as
//!   `{request}` dropped, `1` → `ratio` on gauges and nothing elsewhere); then counters get
//!   `_total`. Histograms and summaries keep their `_bucket`, `_sum`, `_count` after that.
//!
//! Label names get the same treatment: `http.method` reads as `http_method`
//! ([`prom_label`]).
//!
//! So `skein.span.calls` (a counter, unit `1`) is `skein_span_calls_total`,
//! `skein.span.duration` (a histogram in `ms`) is `skein_span_duration_milliseconds_bucket`,
//! `_sum` and `_count`, and `skein.span.duration.p99` (a gauge in `ms`) is
//! `skein_span_duration_p99_milliseconds`.

use skein_model::metric::MetricKind;
use skein_store::tsdb::MetricInfo;
use std::collections::BTreeMap;

/// Whether `s` is a valid Prometheus metric name.
pub fn is_prom_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Whether `s` is a valid Prometheus label name.
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The Prometheus name of a label name: characters outside `[a-zA-Z0-9_]` become `_`, and a
/// name starting with a digit gets `key_` in front (the OpenTelemetry-to-Prometheus rule).
/// Valid names stay as they are.
pub fn prom_label(name: &str) -> std::borrow::Cow<'_, str> {
    if is_label_name(name) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    }
    if out.is_empty() {
        out.push('_');
    }
    std::borrow::Cow::Owned(out)
}

/// The words of an OpenTelemetry name: runs of `[a-zA-Z0-9:]`.
fn words(name: &str) -> Vec<&str> {
    name.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|w| !w.is_empty())
        .collect()
}

fn main_unit(u: &str) -> Option<&'static str> {
    Some(match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tebibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        _ => return None,
    })
}

fn per_unit(u: &str) -> Option<&'static str> {
    Some(match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// A unit word that is not in the tables: kept when it is made of name characters.
fn plain_unit(u: &str) -> Option<String> {
    let w = words(u).join("_");
    (!w.is_empty()).then_some(w)
}

/// The words a unit adds (`ms` → `["milliseconds"]`, `By/s` → `["bytes", "per", "second"]`).
fn unit_words(unit: &str, kind: MetricKind) -> Vec<String> {
    // Annotations in braces say what is counted; they are not units.
    let mut clean = String::new();
    let mut depth = 0usize;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 => clean.push(c),
            _ => {}
        }
    }
    let clean = clean.trim();
    if clean == "1" {
        return if kind == MetricKind::Gauge {
            vec!["ratio".into()]
        } else {
            Vec::new()
        };
    }
    let (main, per) = match clean.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (clean, None),
    };
    let mut out = Vec::new();
    if !main.is_empty() && main != "1" {
        match main_unit(main) {
            Some(w) => out.push(w.to_string()),
            None => out.extend(plain_unit(main)),
        }
    }
    if let Some(p) = per.filter(|p| !p.is_empty()) {
        let w = per_unit(p).map(str::to_string).or_else(|| plain_unit(p));
        if let Some(w) = w {
            out.push("per".into());
            out.push(w);
        }
    }
    out
}

/// The Prometheus name of a metric family: `name` as sent, its kind and unit. For a histogram
/// or summary it is the base the `_bucket`, `_sum`, `_count` series are named after.
pub fn prom_family(name: &str, kind: MetricKind, unit: &str) -> String {
    if is_prom_name(name) {
        return name.to_string();
    }
    let mut ws: Vec<String> = words(name).into_iter().map(str::to_string).collect();
    let unit_ws = unit_words(unit, kind);
    // The unit is added unless the name already says it.
    let has_unit = !unit_ws.is_empty()
        && ws.len() >= unit_ws.len()
        && ws
            .windows(unit_ws.len())
            .any(|win| win.iter().zip(&unit_ws).all(|(a, b)| a == b));
    if !has_unit {
        ws.extend(unit_ws);
    }
    if kind == MetricKind::Counter && ws.last().map(String::as_str) != Some("total") {
        ws.push("total".into());
    }
    let mut out = ws.join("_");
    if out.is_empty() {
        out.push('_');
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The Prometheus type of a kind, as `/api/v1/metadata` shows it.
pub fn prom_type(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Counter => "counter",
        MetricKind::Gauge | MetricKind::UpDownCounter => "gauge",
        MetricKind::Histogram => "histogram",
        MetricKind::Summary => "summary",
    }
}

/// One Prometheus series name and where it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Stored series name (`skein.span.duration_bucket`).
    pub name: String,
    /// Its kind.
    pub kind: MetricKind,
}

/// One Prometheus metric family, for `/api/v1/metadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    /// Prometheus type (`counter`, `gauge`, `histogram`, `summary`).
    pub kind: &'static str,
    /// Unit as sent.
    pub unit: String,
}

/// Prometheus series names of a store's families, both ways.
#[derive(Debug, Clone, Default)]
pub struct NameMap {
    /// Prometheus series name → the stored series answering to it (usually one; two stored
    /// names may map to the same Prometheus name, such as `a.b` and `a_b`).
    by_prom: BTreeMap<String, Vec<Stored>>,
    /// Prometheus family name → its type and unit.
    families: BTreeMap<String, Family>,
}

impl NameMap {
    /// The map of a list of families (`MetricReads::metrics`).
    pub fn new(infos: &[MetricInfo]) -> NameMap {
        let mut map = NameMap::default();
        for m in infos {
            let base = prom_family(&m.name, m.kind, &m.unit);
            let parts: Vec<(String, String)> = match m.kind {
                MetricKind::Histogram => ["_bucket", "_sum", "_count"]
                    .iter()
                    .map(|s| (format!("{base}{s}"), format!("{}{s}", m.name)))
                    .collect(),
                MetricKind::Summary => ["", "_sum", "_count"]
                    .iter()
                    .map(|s| (format!("{base}{s}"), format!("{}{s}", m.name)))
                    .collect(),
                _ => vec![(base.clone(), m.name.clone())],
            };
            for (prom, stored) in parts {
                let list = map.by_prom.entry(prom).or_default();
                if !list.iter().any(|s| s.name == stored) {
                    list.push(Stored {
                        name: stored,
                        kind: m.kind,
                    });
                }
            }
            map.families.entry(base).or_insert(Family {
                kind: prom_type(m.kind),
                unit: m.unit.clone(),
            });
        }
        map
    }

    /// The stored series answering to a Prometheus series name.
    pub fn stored(&self, prom: &str) -> &[Stored] {
        self.by_prom.get(prom).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every Prometheus series name with its stored series, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Stored])> {
        self.by_prom.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Every Prometheus family with its type and unit, in name order.
    pub fn families(&self) -> impl Iterator<Item = (&str, &Family)> {
        self.families.iter().map(|(k, v)| (k.as_str(), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, kind: MetricKind, unit: &str) -> MetricInfo {
        MetricInfo {
            name: name.into(),
            kind,
            unit: unit.into(),
            series: 1,
        }
    }

    #[test]
    fn otel_names_follow_the_compatibility_rules() {
        use MetricKind::*;
        assert_eq!(
            prom_family("skein.span.calls", Counter, "1"),
            "skein_span_calls_total"
        );
        assert_eq!(
            prom_family("skein.span.duration", Histogram, "ms"),
            "skein_span_duration_milliseconds"
        );
        assert_eq!(
            prom_family("skein.span.duration.p99", Gauge, "ms"),
            "skein_span_duration_p99_milliseconds"
        );
        assert_eq!(
            prom_family("skein.agent.up", Gauge, "1"),
            "skein_agent_up_ratio"
        );
        assert_eq!(
            prom_family("system.network.io", Counter, "By"),
            "system_network_io_bytes_total"
        );
        assert_eq!(
            prom_family("http.server.request.size", Gauge, "By/s"),
            "http_server_request_size_bytes_per_second"
        );
        assert_eq!(
            prom_family("http.server.requests", Counter, "{request}"),
            "http_server_requests_total"
        );
        // The unit is not repeated, nor `total`.
        assert_eq!(
            prom_family("process.cpu.seconds.total", Counter, "s"),
            "process_cpu_seconds_total"
        );
        assert_eq!(
            prom_family("queue.length", UpDownCounter, ""),
            "queue_length"
        );
        assert_eq!(prom_family("9lives.x", Gauge, ""), "_9lives_x");
        assert_eq!(prom_family("a..b--c", Gauge, ""), "a_b_c");
        // Names valid in Prometheus stay as they are, whatever their kind.
        assert_eq!(
            prom_family("node_cpu_seconds_total", Counter, ""),
            "node_cpu_seconds_total"
        );
        assert_eq!(prom_family("requests", Counter, "1"), "requests");
        assert!(is_prom_name("a:b_c9"));
        assert!(!is_prom_name("9a"));
        assert!(!is_prom_name(""));
        assert_eq!(prom_label("http.method"), "http_method");
        assert_eq!(prom_label("2xx"), "key_2xx");
        assert_eq!(prom_label("job"), "job");
        assert!(is_label_name("__name__"));
        assert!(!is_label_name("a:b"));
    }

    #[test]
    fn map_goes_both_ways_with_histogram_parts() {
        let map = NameMap::new(&[
            info("skein.span.duration", MetricKind::Histogram, "ms"),
            info("skein.span.calls", MetricKind::Counter, "1"),
            info("rpc_latency", MetricKind::Summary, "s"),
            info("a.b", MetricKind::Gauge, ""),
            info("a_b", MetricKind::Gauge, ""),
        ]);
        let names = |p: &str| {
            map.stored(p)
                .iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names("skein_span_duration_milliseconds_bucket"),
            ["skein.span.duration_bucket"]
        );
        assert_eq!(
            names("skein_span_duration_milliseconds_count"),
            ["skein.span.duration_count"]
        );
        assert_eq!(names("skein_span_calls_total"), ["skein.span.calls"]);
        assert_eq!(names("rpc_latency"), ["rpc_latency"]);
        assert_eq!(names("rpc_latency_sum"), ["rpc_latency_sum"]);
        assert_eq!(names("a_b"), ["a.b", "a_b"]);
        assert!(names("skein.span.calls").is_empty());
        let fams: Vec<(&str, &str)> = map.families().map(|(n, f)| (n, f.kind)).collect();
        assert!(fams.contains(&("skein_span_duration_milliseconds", "histogram")));
        assert!(fams.contains(&("skein_span_calls_total", "counter")));
    }
}
