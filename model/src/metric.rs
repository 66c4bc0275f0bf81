//! Metric series and samples: what the metrics store keeps and what every metric source
//! (OTLP, span-derived RED figures, agent liveness) hands to it.
//!
//! A series is a name plus a sorted set of labels. A source builds a [`MetricBatch`]: the
//! series it writes ([`SeriesSpec`], each once) and samples pointing at them by index, so a
//! batch of many points of few series carries each label set once.
//!
//! Histograms are stored the way Prometheus stores them, as plain series that any aggregation
//! can read: `<name>_bucket` with an `le` label (cumulative count of values ≤ le, the last
//! bucket `le="+Inf"`), `<name>_sum` and `<name>_count`. Summaries become `<name>` with a
//! `quantile` label, `<name>_sum` and `<name>_count`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of metric a series belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A value that goes up and down.
    #[default]
    Gauge,
    /// A cumulative, monotonic count (resets to zero when the process restarts).
    Counter,
    /// A cumulative sum that may go down (an OTLP non-monotonic sum).
    UpDownCounter,
    /// One part (`_bucket`, `_sum`, `_count`) of a histogram.
    Histogram,
    /// One part (quantile, `_sum`, `_count`) of a summary.
    Summary,
}

impl MetricKind {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
            MetricKind::UpDownCounter => "updown_counter",
            MetricKind::Histogram => "histogram",
            MetricKind::Summary => "summary",
        }
    }

    /// Stable one-byte code for on-disk formats.
    pub fn code(self) -> u8 {
        match self {
            MetricKind::Gauge => 0,
            MetricKind::Counter => 1,
            MetricKind::UpDownCounter => 2,
            MetricKind::Histogram => 3,
            MetricKind::Summary => 4,
        }
    }

    /// The kind of an on-disk code.
    pub fn from_code(c: u8) -> Option<MetricKind> {
        Some(match c {
            0 => MetricKind::Gauge,
            1 => MetricKind::Counter,
            2 => MetricKind::UpDownCounter,
            3 => MetricKind::Histogram,
            4 => MetricKind::Summary,
            _ => return None,
        })
    }
}

/// A series' labels, sorted by name, names unique. Serialized as a JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// Builds labels from pairs in any order; for a repeated name the last value wins. Empty
    /// values are dropped (a label with an empty value is the same as no label, as in
    /// Prometheus).
    pub fn from_pairs<I, K, V>(pairs: I) -> Labels
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut v: Vec<(String, String)> = Vec::new();
        for (k, val) in pairs {
            let (k, val) = (k.into(), val.into());
            if let Some(slot) = v.iter_mut().find(|(n, _)| *n == k) {
                slot.1 = val;
            } else {
                v.push((k, val));
            }
        }
        v.retain(|(_, val)| !val.is_empty());
        v.sort();
        Labels(v)
    }

    /// The value of a label.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// Pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A copy with one label set (or replaced).
    pub fn with(&self, name: &str, value: &str) -> Labels {
        Labels::from_pairs(
            self.iter()
                .filter(|(k, _)| *k != name)
                .chain(std::iter::once((name, value))),
        )
    }

    /// Only the named labels, the others dropped.
    pub fn keep(&self, names: &[String]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|(k, _)| names.iter().any(|n| n == k))
                .cloned()
                .collect(),
        )
    }

    /// The pairs.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        Ok(Labels::from_pairs(m))
    }
}

/// One series a batch writes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesSpec {
    /// Stored series name, suffix included (`http.server.duration_bucket`).
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// The kind of metric it belongs to.
    pub kind: MetricKind,
    /// Unit as sent (`ms`, `By`, `1`), may be empty.
    #[serde(default)]
    pub unit: String,
    /// True for an OTLP delta sum or histogram part: each sample is an increment, and the
    /// store turns it into a running total, so every counter it keeps is cumulative.
    #[serde(default)]
    pub delta: bool,
}

/// One sample of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchSample {
    /// Index into [`MetricBatch::series`].
    pub series: u32,
    /// Milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// The value, any f64: NaN (Prometheus's staleness marker among them) and ±Inf are
    /// kept bit for bit, in JSON as strings ([`exact_f64`]).
    #[serde(with = "exact_f64")]
    pub value: f64,
    /// When the sender started counting (an OTLP point's start time), ms; 0 when unknown.
    /// For the first sample of a new counter or histogram series the store first writes a 0
    /// at this time, so the first increase is not lost (as Prometheus's created-timestamp zero
    /// ingestion does).
    #[serde(default)]
    pub start_ms: i64,
}

/// Series and their samples, the unit a metric source hands to the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricBatch {
    /// The series written, each once.
    pub series: Vec<SeriesSpec>,
    /// The samples.
    pub samples: Vec<BatchSample>,
}

impl MetricBatch {
    /// Adds a series (no check for a repeat) and returns its index.
    pub fn add_series(&mut self, spec: SeriesSpec) -> u32 {
        self.series.push(spec);
        (self.series.len() - 1) as u32
    }

    /// Adds a sample of series `series`.
    pub fn push(&mut self, series: u32, ts_ms: i64, value: f64) {
        self.samples.push(BatchSample {
            series,
            ts_ms,
            value,
            start_ms: 0,
        });
    }

    /// True when there is no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// The family name of a stored series: `x_bucket`, `x_sum`, `x_count` of a histogram or
/// summary are family `x`; every other series is its own family.
pub fn family_name(name: &str, kind: MetricKind) -> &str {
    if matches!(kind, MetricKind::Histogram | MetricKind::Summary) {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                return base;
            }
        }
    }
    name
}

/// Serde of an f64 that keeps every value, for JSON, which has no number for NaN or the
/// infinities (serde_json writes `null`, which does not read back as an f64): a finite value
/// is a number; `+Inf` and `-Inf` are those strings; a NaN is `"NaN"` when it has the bits of
/// [`f64::NAN`], else its bits in hex (`"0x7ff0000000000002"`, Prometheus's staleness
/// marker). Reading takes a number or any of those strings. Use with `#[serde(with =
/// "skein_model::metric::exact_f64")]`.
pub mod exact_f64 {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    /// Writes `v` as described in [the module](self).
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if *v == f64::INFINITY {
            s.serialize_str("+Inf")
        } else if *v == f64::NEG_INFINITY {
            s.serialize_str("-Inf")
        } else if v.to_bits() == f64::NAN.to_bits() {
            s.serialize_str("NaN")
        } else {
            s.serialize_str(&format!("{:#018x}", v.to_bits()))
        }
    }

    /// Reads what [`serialize`] writes (and any JSON number).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_any(ExactF64)
    }

    struct ExactF64;

    impl Visitor<'_> for ExactF64 {
        type Value = f64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number, \"+Inf\", \"-Inf\", \"NaN\" or the bits of a NaN (\"0x7ff0000000000002\")")
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<f64, E> {
            match s {
                "+Inf" | "Inf" => Ok(f64::INFINITY),
                "-Inf" => Ok(f64::NEG_INFINITY),
                "NaN" => Ok(f64::NAN),
                _ => s
                    .strip_prefix("0x")
                    .filter(|h| h.len() == 16)
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                    .map(f64::from_bits)
                    .filter(|v| v.is_nan())
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(s), &self)),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sample_values_keep_their_bits_through_json() {
        let bits = [
            0x7ff0_0000_0000_0002u64, // Prometheus's staleness marker
            f64::NAN.to_bits(),
            0x7ff8_0000_0000_0001, // Go's NaN
            0xfff8_0000_0000_0000, // a negative NaN
            f64::INFINITY.to_bits(),
            f64::NEG_INFINITY.to_bits(),
            (-0.0f64).to_bits(),
            0.0f64.to_bits(),
            1.5f64.to_bits(),
            f64::MAX.to_bits(),
            1, // the smallest subnormal
        ];
        let mut b = MetricBatch::default();
        let id = b.add_series(SeriesSpec {
            name: "x".into(),
            labels: Labels::default(),
            kind: MetricKind::Gauge,
            unit: String::new(),
            delta: false,
        });
        for (i, v) in bits.iter().enumerate() {
            b.push(id, i as i64, f64::from_bits(*v));
        }
        let json = serde_json::to_string(&b).unwrap();
        assert!(!json.contains("null"), "{json}");
        assert!(json.contains(r#""value":"0x7ff0000000000002""#), "{json}");
        assert!(json.contains(r#""value":"NaN""#) && json.contains(r#""value":"-Inf""#));
        let back: MetricBatch = serde_json::from_str(&json).unwrap();
        let got: Vec<u64> = back.samples.iter().map(|s| s.value.to_bits()).collect();
        assert_eq!(got, bits);
        // Numbers as older senders wrote them still read; strings that are not a value do not.
        let old = r#"{"series":[],"samples":[{"series":0,"ts_ms":1,"value":2},{"series":0,"ts_ms":2,"value":-0.5,"start_ms":1}]}"#;
        let back: MetricBatch = serde_json::from_str(old).unwrap();
        assert_eq!((back.samples[0].value, back.samples[1].value), (2.0, -0.5));
        for bad in [
            r#""1.5""#,
            r#""0x3ff0000000000000""#,
            r#""0x7ff""#,
            "null",
            "true",
        ] {
            let text = format!(r#"{{"series":0,"ts_ms":1,"value":{bad}}}"#);
            assert!(serde_json::from_str::<BatchSample>(&text).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_sorted_unique_without_empty_values() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("b", "3"), ("c", "")]);
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![("a", "1"), ("b", "3")]);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
        assert_eq!(l.to_string(), r#"{a="1",b="3"}"#);
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(json, r#"{"a":"1","b":"3"}"#);
        assert_eq!(serde_json::from_str::<Labels>(&json).unwrap(), l);
        assert_eq!(l.with("a", "9").get("a"), Some("9"));
        assert_eq!(l.keep(&["b".into()]).len(), 1);
    }

    #[test]
    fn families() {
        assert_eq!(family_name("d_bucket", MetricKind::Histogram), "d");
        assert_eq!(family_name("d_count", MetricKind::Summary), "d");
        assert_eq!(family_name("d_count", MetricKind::Counter), "d_count");
        for k in [
            MetricKind::Gauge,
            MetricKind::Counter,
            MetricKind::UpDownCounter,
            MetricKind::Histogram,
            MetricKind::Summary,
        ] {
            assert_eq!(MetricKind::from_code(k.code()), Some(k));
        }
    }
}
