//! What a read of the metrics store returns: matchers that pick series, and the picked
//! series with their compressed chunks, decoded only as the caller walks them.

use super::chunk::{ChunkIter, ChunkWriter};
use bytes::Bytes;
use skein_model::metric::{Labels, MetricKind};

/// How a [`Matcher`] compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `label=value`
    Eq,
    /// `label!=value`
    Ne,
    /// `label=~regex` (the whole value must match)
    Re,
    /// `label!~regex`
    NotRe,
}

/// One condition on a label. A missing label has the value "" (as in Prometheus), so
/// `host!=web-1` keeps series without a `host` label and `host=` picks them.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub label: String,
    /// Comparison.
    pub op: MatchOp,
    /// Value or regular expression.
    pub value: String,
    re: Option<regex::Regex>,
}

impl Matcher {
    /// A matcher; a regular expression is compiled here and anchored at both ends.
    pub fn new(label: &str, op: MatchOp, value: &str) -> Result<Matcher, String> {
        let re = match op {
            MatchOp::Re | MatchOp::NotRe => Some(
                regex::RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("bad regular expression for label {label}: {e}"))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            label: label.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    /// Parses `label=value`, `label!=value`, `label=~re` or `label!~re`.
    pub fn parse(s: &str) -> Result<Matcher, String> {
        let bad = || {
            format!(
                "cannot read matcher {s:?}: write label=value, label!=value, label=~regex or label!~regex"
            )
        };
        let (idx, op, len) = [
            ("!~", MatchOp::NotRe),
            ("=~", MatchOp::Re),
            ("!=", MatchOp::Ne),
        ]
        .iter()
        .find_map(|(tok, op)| s.find(tok).map(|i| (i, *op, 2)))
        .or_else(|| s.find('=').map(|i| (i, MatchOp::Eq, 1)))
        .ok_or_else(bad)?;
        let label = s[..idx].trim();
        if label.is_empty() {
            return Err(bad());
        }
        let value = s[idx + len..].trim().trim_matches('"');
        Matcher::new(label, op, value)
    }

    /// Whether a series' labels pass.
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.label).unwrap_or("");
        match (self.op, &self.re) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::Ne, _) => v != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(v),
            (MatchOp::NotRe, Some(re)) => !re.is_match(v),
            _ => false,
        }
    }
}

/// A compressed chunk and the times it covers.
#[derive(Debug, Clone)]
pub struct ChunkRef {
    /// First sample time (ms).
    pub min_ts: i64,
    /// Last sample time (ms).
    pub max_ts: i64,
    /// The chunk ([`super::chunk`] format); a cheap view into a block or a copy of a head chunk.
    pub data: Bytes,
}

/// A series picked by [`super::Tsdb::select`]: its identity and its chunks in time order.
#[derive(Debug, Clone)]
pub struct SelectedSeries {
    /// Stored series name (`x_bucket` for a histogram's buckets).
    pub name: String,
    /// Its labels.
    pub labels: Labels,
    /// Its metric kind.
    pub kind: MetricKind,
    /// Chunks overlapping the selected range, oldest first, not overlapping each other.
    pub chunks: Vec<ChunkRef>,
}

impl SelectedSeries {
    /// A series made from samples (times increasing), for tests and tools.
    pub fn from_samples(
        name: &str,
        labels: Labels,
        kind: MetricKind,
        samples: &[(i64, f64)],
    ) -> SelectedSeries {
        let mut chunks = Vec::new();
        let mut w = ChunkWriter::new();
        for &(t, v) in samples {
            if w.is_full() {
                chunks.push(ChunkRef {
                    min_ts: w.first_ts(),
                    max_ts: w.last_ts(),
                    data: w.bytes().into(),
                });
                w = ChunkWriter::new();
            }
            w.push(t, v);
        }
        if !w.is_empty() {
            chunks.push(ChunkRef {
                min_ts: w.first_ts(),
                max_ts: w.last_ts(),
                data: w.bytes().into(),
            });
        }
        SelectedSeries {
            name: name.to_string(),
            labels,
            kind,
            chunks,
        }
    }

    /// Calls `f(ts, value)` for every sample with `start <= ts <= end`, in time order.
    pub fn for_each(&self, start: i64, end: i64, mut f: impl FnMut(i64, f64)) {
        for c in &self.chunks {
            if c.max_ts < start || c.min_ts > end {
                continue;
            }
            for (t, v) in ChunkIter::new(&c.data) {
                if t > end {
                    break;
                }
                if t >= start {
                    f(t, v);
                }
            }
        }
    }

    /// The last sample at or before `ts`, if any.
    pub fn last_at_or_before(&self, ts: i64) -> Option<(i64, f64)> {
        let c = self.chunks.iter().rev().find(|c| c.min_ts <= ts)?;
        ChunkIter::new(&c.data).take_while(|(t, _)| *t <= ts).last()
    }

    /// The last sample at or before `ts` whose value is a finite number, if any: for readers
    /// that skip NaN and infinite values (staleness markers among them) as if absent.
    pub fn last_finite_at_or_before(&self, ts: i64) -> Option<(i64, f64)> {
        self.chunks
            .iter()
            .rev()
            .filter(|c| c.min_ts <= ts)
            .find_map(|c| {
                ChunkIter::new(&c.data)
                    .take_while(|(t, _)| *t <= ts)
                    .filter(|(_, v)| v.is_finite())
                    .last()
            })
    }

    /// Upper bound of the samples in the chunks (a sizing hint).
    pub fn sample_count_hint(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| ChunkIter::count(&c.data) as usize)
            .sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn matchers() {
        let l = Labels::from_pairs([("host", "web-1"), ("service", "payment")]);
        let m = |s: &str| Matcher::parse(s).unwrap().matches(&l);
        assert!(m("host=web-1"));
        assert!(!m("host=web-2"));
        assert!(m("host!=web-2"));
        assert!(m("service=~pay.*"));
        assert!(!m("service=~pay"));
        assert!(m("service!~order|coupon"));
        assert!(m("zone="));
        assert!(!m("zone!="));
        assert!(m(r#"host="web-1""#));
        assert!(Matcher::parse("host").is_err());
        assert!(Matcher::parse("=x").is_err());
        assert!(Matcher::parse("a=~(").is_err());
    }

    #[test]
    fn ranges_and_lookback() {
        let samples: Vec<(i64, f64)> = (0..1000).map(|i| (i * 10, i as f64)).collect();
        let s = SelectedSeries::from_samples("x", Labels::default(), MetricKind::Gauge, &samples);
        assert!(s.chunks.len() >= 4);
        let mut got = Vec::new();
        s.for_each(2395, 2420, |t, v| got.push((t, v)));
        assert_eq!(got, vec![(2400, 240.0), (2410, 241.0), (2420, 242.0)]);
        assert_eq!(s.last_at_or_before(2405), Some((2400, 240.0)));
        assert_eq!(s.last_at_or_before(-1), None);
        assert_eq!(s.sample_count_hint(), 1000);
    }

    #[test]
    fn the_last_finite_sample_skips_nan_and_infinities_across_chunks() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        // 240 finite samples fill the first chunk; the second holds only non-finite ones.
        let mut samples: Vec<(i64, f64)> = (0..240).map(|i| (i * 10, i as f64)).collect();
        samples.extend([(2400, f64::NAN), (2410, f64::INFINITY), (2420, stale)]);
        samples.push((2430, -0.0));
        let s = SelectedSeries::from_samples("x", Labels::default(), MetricKind::Gauge, &samples);
        assert_eq!(s.chunks.len(), 2);
        assert_eq!(
            s.last_at_or_before(2425).map(|p| p.1.to_bits()),
            Some(stale.to_bits())
        );
        assert_eq!(s.last_finite_at_or_before(2425), Some((2390, 239.0)));
        assert_eq!(
            s.last_finite_at_or_before(2430)
                .map(|p| (p.0, p.1.to_bits())),
            Some((2430, (-0.0f64).to_bits()))
        );
        assert_eq!(s.last_finite_at_or_before(-1), None);
        let only_nan = SelectedSeries::from_samples(
            "x",
            Labels::default(),
            MetricKind::Gauge,
            &[(5, f64::NAN)],
        );
        assert_eq!(only_nan.last_finite_at_or_before(10), None);
    }
}
