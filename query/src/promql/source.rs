//! Where the engine reads series from.

use super::PromError;
use skein_model::metric::{Labels, MetricKind};
use skein_store::tsdb::Matcher;

/// One series with its raw samples.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSeries {
    /// Labels, with the Prometheus metric name as `__name__`.
    pub labels: Labels,
    /// `(time ms, value)`, times strictly increasing.
    pub samples: Vec<(i64, f64)>,
}

/// A read of series for the engine.
pub trait SeriesSource: Send + Sync {
    /// Every series whose labels (`__name__` included) pass all `matchers`, with its samples
    /// in `[start, end]` (ms, both ends included). At least one matcher must not match the
    /// empty string (Prometheus's rule; the engine checks it before calling). More than
    /// `max_series` series is an `execution` error that says so.
    fn select(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        max_series: usize,
    ) -> Result<Vec<RawSeries>, PromError>;
}

/// The metrics store (one node's, or a cluster's through the fan-out) as a [`SeriesSource`]:
/// Prometheus names are mapped to stored names ([`super::names`]), and label sets repeated
/// by several partitions of a cluster (span-derived series) are merged into one series.
pub struct StoreSource {
    reads: std::sync::Arc<dyn crate::metric_reads::MetricReads>,
}

impl StoreSource {
    /// A source over `reads`.
    pub fn new(reads: std::sync::Arc<dyn crate::metric_reads::MetricReads>) -> StoreSource {
        StoreSource { reads }
    }

    /// The store's reads.
    pub fn reads(&self) -> std::sync::Arc<dyn crate::metric_reads::MetricReads> {
        self.reads.clone()
    }

    /// The name map of the store as it is now.
    pub fn names(&self) -> super::names::NameMap {
        super::names::NameMap::new(&self.reads.metrics())
    }
}

fn store_error(e: skein_store::StoreError) -> PromError {
    match e {
        skein_store::StoreError::BadQuery(m) => PromError::execution(m),
        skein_store::StoreError::TimedOut => PromError::timeout(e.to_string()),
        other => PromError::unavailable(other.to_string()),
    }
}

impl StoreSource {
    /// Calls `f(prometheus name, series)` for every stored series passing `matchers` with
    /// chunks overlapping `[start, end]`, at most `max_series` of them (more is an error).
    fn each(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        max_series: usize,
        mut f: impl FnMut(&str, skein_store::tsdb::SelectedSeries) -> usize,
    ) -> Result<(), PromError> {
        use skein_store::tsdb::MatchOp;
        let map = self.names();
        let (by_name, rest): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| m.label == "__name__");
        let name_ok = |prom: &str| {
            let l = Labels::from_pairs([("__name__", prom)]);
            by_name.iter().all(|m| m.matches(&l))
        };
        let names: Vec<(&str, &[super::names::Stored])> =
            match by_name.iter().find(|m| m.op == MatchOp::Eq) {
                Some(eq) => vec![(eq.value.as_str(), map.stored(&eq.value))],
                None => map.iter().collect(),
            };
        let mut seen = 0usize;
        for (prom, stored) in names {
            if !name_ok(prom) {
                continue;
            }
            for s in stored {
                let left = max_series.saturating_sub(seen);
                let pushed = push_down(self.reads.as_ref(), s, &rest);
                let picked = self
                    .reads
                    .select(&s.name, &pushed, start, end, left)
                    .map_err(store_error)?;
                for mut series in picked {
                    if series.chunks.is_empty() {
                        continue;
                    }
                    series.labels = prom_labels(&series.labels);
                    if !rest.iter().all(|m| m.matches(&series.labels)) {
                        continue;
                    }
                    seen = f(prom, series);
                    if seen > max_series {
                        return Err(PromError::execution(format!(
                            "more than {max_series} series match the selector; add a label matcher to narrow it"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// The label sets (`__name__` included) of the series passing `matchers` with data in
    /// `[start, end]` (by chunk: samples are not decoded), sorted, without repeats.
    pub fn series(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        max_series: usize,
    ) -> Result<Vec<Labels>, PromError> {
        let mut out = std::collections::BTreeSet::new();
        self.each(matchers, start, end, max_series, |prom, s| {
            out.insert(s.labels.with("__name__", prom));
            out.len()
        })?;
        Ok(out.into_iter().collect())
    }
}

/// Labels with Prometheus label names.
fn prom_labels(l: &Labels) -> Labels {
    if l.iter().all(|(k, _)| super::names::is_label_name(k)) {
        return l.clone();
    }
    Labels::from_pairs(
        l.iter()
            .map(|(k, v)| (super::names::prom_label(k).into_owned(), v.to_string())),
    )
}

/// The matchers the store can apply itself: a matcher on a Prometheus label name is
/// rewritten to the one stored name it comes from (`http_method` → `http.method`); when two
/// stored names give the same Prometheus name it is left to the check after the read.
fn push_down(
    reads: &dyn crate::metric_reads::MetricReads,
    s: &super::names::Stored,
    matchers: &[&Matcher],
) -> Vec<Matcher> {
    if matchers.is_empty() {
        return Vec::new();
    }
    let family = skein_model::metric::family_name(&s.name, s.kind);
    let stored = reads.label_names(Some(family));
    let mut out = Vec::with_capacity(matchers.len());
    for m in matchers {
        let from: Vec<&String> = stored
            .iter()
            .filter(|n| super::names::prom_label(n) == m.label.as_str())
            .collect();
        match from.as_slice() {
            [] => out.push((*m).clone()),
            [one] if one.as_str() == m.label => out.push((*m).clone()),
            [one] => {
                if let Ok(r) = Matcher::new(one, m.op, &m.value) {
                    out.push(r);
                }
            }
            _ => {}
        }
    }
    out
}

impl SeriesSource for StoreSource {
    fn select(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        max_series: usize,
    ) -> Result<Vec<RawSeries>, PromError> {
        // Label set → parts (one per stored series carrying it: partitions, or two stored
        // names with the same Prometheus name).
        let mut parts: std::collections::BTreeMap<Labels, Vec<Part>> =
            std::collections::BTreeMap::new();
        self.each(matchers, start, end, max_series, |prom, series| {
            let mut samples: Vec<(i64, f64)> = Vec::new();
            series.for_each(start, end, |t, v| match samples.last_mut() {
                Some(last) if last.0 >= t => {
                    if last.0 == t {
                        last.1 = v;
                    }
                }
                _ => samples.push((t, v)),
            });
            if !samples.is_empty() {
                let labels = series.labels.with("__name__", prom);
                parts
                    .entry(labels)
                    .or_default()
                    .push((series.kind, samples));
            }
            parts.len()
        })?;
        Ok(parts
            .into_iter()
            .map(|(labels, p)| RawSeries {
                labels,
                samples: merge_parts(p),
            })
            .collect())
    }
}

/// A stored series' kind and samples: one part of a Prometheus series.
type Part = (MetricKind, Vec<(i64, f64)>);

/// One series from the parts that carry its label set. Counters and histogram parts are
/// summed as step functions (at each time, the sum of every part's newest value), so the
/// result is the cumulative count of all of them; other kinds take the union, a later part
/// winning at an equal time.
fn merge_parts(mut parts: Vec<Part>) -> Vec<(i64, f64)> {
    if parts.len() == 1 {
        return parts.pop().map(|(_, s)| s).unwrap_or_default();
    }
    let sum = parts
        .iter()
        .all(|(k, _)| matches!(k, MetricKind::Counter | MetricKind::Histogram));
    let mut times: Vec<i64> = parts
        .iter()
        .flat_map(|(_, s)| s.iter().map(|p| p.0))
        .collect();
    times.sort_unstable();
    times.dedup();
    if !sum {
        let mut by: std::collections::BTreeMap<i64, f64> = std::collections::BTreeMap::new();
        for (_, s) in parts {
            by.extend(s);
        }
        return by.into_iter().collect();
    }
    let mut at = vec![0usize; parts.len()];
    let mut out = Vec::with_capacity(times.len());
    for t in times {
        let mut total = 0.0;
        for (i, (_, s)) in parts.iter().enumerate() {
            while at[i] < s.len() && s[at[i]].0 <= t {
                at[i] += 1;
            }
            if at[i] > 0 {
                total += s[at[i] - 1].1;
            }
        }
        out.push((t, total));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use skein_model::metric::{MetricBatch, SeriesSpec};
    use skein_store::tsdb::{MatchOp, Tsdb, TsdbConfig};
    use std::sync::Arc;

    #[test]
    fn partition_repeats_of_a_counter_sum_as_step_functions() {
        let a = vec![(10, 1.0), (30, 3.0)];
        let b = vec![(20, 10.0), (30, 20.0), (40, 25.0)];
        let got = merge_parts(vec![(MetricKind::Counter, a), (MetricKind::Counter, b)]);
        assert_eq!(got, vec![(10, 1.0), (20, 11.0), (30, 23.0), (40, 28.0)]);
        let g = merge_parts(vec![
            (MetricKind::Gauge, vec![(10, 1.0), (20, 2.0)]),
            (MetricKind::Gauge, vec![(20, 5.0)]),
        ]);
        assert_eq!(g, vec![(10, 1.0), (20, 5.0)]);
    }

    #[test]
    fn selects_by_prometheus_name_from_a_real_store() {
        let dir = tempfile::tempdir().unwrap();
        let db = Tsdb::open(TsdbConfig {
            dir: dir.path().to_path_buf(),
            ..TsdbConfig::default()
        })
        .unwrap();
        let mut b = MetricBatch::default();
        let spec = |name: &str, kind, svc: &str| SeriesSpec {
            name: name.into(),
            labels: Labels::from_pairs([("service", svc)]),
            kind,
            unit: "1".into(),
            delta: false,
        };
        let calls = b.add_series(spec("skein.span.calls", MetricKind::Counter, "payment"));
        let other = b.add_series(spec("skein.span.calls", MetricKind::Counter, "order"));
        let up = b.add_series(spec("up", MetricKind::Gauge, "payment"));
        let dotted = b.add_series(SeriesSpec {
            labels: Labels::from_pairs([("http.method", "GET"), ("2xx", "yes")]),
            ..spec("rpc.latency", MetricKind::Gauge, "x")
        });
        let now = skein_model::time::now_unix_nano() as i64 / 1_000_000;
        for i in 0..5 {
            b.push(calls, now - 50_000 + i * 10_000, i as f64);
            b.push(other, now - 50_000 + i * 10_000, 2.0 * i as f64);
            b.push(up, now - 50_000 + i * 10_000, 1.0);
            b.push(dotted, now - 50_000 + i * 10_000, 7.0);
        }
        db.append(&b).unwrap();
        let src = StoreSource::new(Arc::new(db));
        let m = |l: &str, op, v: &str| Matcher::new(l, op, v).unwrap();
        let got = src
            .select(
                &[
                    m("__name__", MatchOp::Eq, "skein_span_calls_total"),
                    m("service", MatchOp::Eq, "payment"),
                ],
                now - 60_000,
                now,
                10,
            )
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].labels.get("__name__"),
            Some("skein_span_calls_total")
        );
        assert_eq!(got[0].samples.len(), 5);
        assert_eq!(got[0].samples[4].1, 4.0);
        // The stored name is not a Prometheus name.
        let none = src
            .select(
                &[m("__name__", MatchOp::Eq, "skein.span.calls")],
                now - 60_000,
                now,
                10,
            )
            .unwrap();
        assert!(none.is_empty());
        // A regular expression on the name picks every matching family.
        let all = src
            .select(
                &[m("__name__", MatchOp::Re, "skein_.*|up")],
                now - 60_000,
                now,
                10,
            )
            .unwrap();
        assert_eq!(all.len(), 3);
        // Label names read as Prometheus names, and select by them.
        let got = src
            .select(
                &[
                    m("__name__", MatchOp::Eq, "rpc_latency_ratio"),
                    m("http_method", MatchOp::Eq, "GET"),
                ],
                now - 60_000,
                now,
                10,
            )
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels.get("key_2xx"), Some("yes"));
        assert_eq!(got[0].labels.get("http.method"), None);
        let none = src
            .select(
                &[
                    m("__name__", MatchOp::Eq, "rpc_latency_ratio"),
                    m("http_method", MatchOp::Eq, "POST"),
                ],
                now - 60_000,
                now,
                10,
            )
            .unwrap();
        assert!(none.is_empty());
        // The series limit holds across families.
        let err = src
            .select(
                &[m("service", MatchOp::Re, "payment|order")],
                now - 60_000,
                now,
                2,
            )
            .unwrap_err();
        assert_eq!(err.kind, super::super::ErrorType::Execution);
    }

    /// NaN, ±Inf and staleness markers go through a real store and come out as Prometheus
    /// gives them: a marker ends its series at once (not after the lookback), NaN and
    /// infinities are values like any other.
    #[test]
    fn staleness_markers_and_non_finite_values_read_as_in_prometheus() {
        use crate::promql::{Engine, Limits, QueryValue};
        let dir = tempfile::tempdir().unwrap();
        let db = Tsdb::open(TsdbConfig {
            dir: dir.path().to_path_buf(),
            ..TsdbConfig::default()
        })
        .unwrap();
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let t0 = (skein_model::time::now_unix_nano() / 1_000_000) as i64 - 120_000;
        let mut b = MetricBatch::default();
        let mut add = |host: &str, samples: &[(i64, f64)]| {
            let id = b.add_series(SeriesSpec {
                name: "temp".into(),
                labels: Labels::from_pairs([("host", host)]),
                kind: MetricKind::Gauge,
                unit: String::new(),
                delta: false,
            });
            for (t, v) in samples {
                b.push(id, t0 + t, *v);
            }
        };
        add("a", &[(0, 1.0), (10_000, 2.0), (20_000, stale)]);
        add(
            "b",
            &[
                (0, f64::NAN),
                (10_000, f64::INFINITY),
                (20_000, f64::NEG_INFINITY),
            ],
        );
        add("c", &[(20_000, f64::NAN)]);
        let r = db.append(&b).unwrap();
        assert_eq!((r.accepted, r.rejected), (7, 0), "{r:?}");
        let engine = Engine::new(Arc::new(StoreSource::new(Arc::new(db))), Limits::default());
        let vector = |q: &str, t: i64| -> Vec<(String, f64)> {
            match engine.instant(q, t0 + t).unwrap() {
                QueryValue::Vector(v) => v
                    .into_iter()
                    .map(|s| (s.labels.get("host").unwrap_or("").to_string(), s.v))
                    .collect(),
                other => panic!("{q}: {other:?}"),
            }
        };
        let bits = |v: Vec<(String, f64)>| -> Vec<(String, u64)> {
            v.into_iter().map(|(h, x)| (h, x.to_bits())).collect()
        };
        let h = |s: &str| s.to_string();
        // Before the marker the last value holds; at the marker and after it the series is
        // gone at once, though its last sample is well within the 5-minute lookback.
        assert_eq!(
            vector("temp", 19_999),
            vec![(h("a"), 2.0), (h("b"), f64::INFINITY)]
        );
        let at_marker = vector("temp", 20_000);
        assert_eq!(at_marker.len(), 2, "{at_marker:?}");
        assert_eq!(at_marker[0], (h("b"), f64::NEG_INFINITY));
        assert!(at_marker[1].0 == "c" && at_marker[1].1.is_nan());
        assert_eq!(
            bits(vector("temp", 60_000)),
            bits(vec![(h("b"), f64::NEG_INFINITY), (h("c"), f64::NAN)])
        );
        // NaN is a value: it is counted, compares false (but `!=` true, as in Go), and makes
        // a sum NaN.
        assert_eq!(
            vector("count_over_time(temp[1m])", 20_000),
            vec![(h("a"), 2.0), (h("b"), 3.0), (h("c"), 1.0)]
        );
        assert_eq!(vector("temp > 0", 0), vec![(h("a"), 1.0)]);
        assert_eq!(
            bits(vector("temp != 0", 0)),
            bits(vec![(h("a"), 1.0), (h("b"), f64::NAN)])
        );
        assert_eq!(
            vector("temp > 0", 10_000),
            vec![(h("a"), 2.0), (h("b"), f64::INFINITY)]
        );
        assert_eq!(vector("sum(temp)", 10_000), vec![(h(""), f64::INFINITY)]);
        let sum = vector("sum(temp)", 20_000);
        assert!(sum.len() == 1 && sum[0].1.is_nan(), "{sum:?}");
        // A range query: a's points stop at the marker, b's -Inf holds through the lookback.
        match engine.range("temp", t0, t0 + 40_000, 10_000).unwrap() {
            QueryValue::Matrix(m) => {
                let a: Vec<(i64, f64)> = m[0].points.iter().map(|p| (p.0 - t0, p.1)).collect();
                assert_eq!(a, vec![(0, 1.0), (10_000, 2.0)]);
                let b: Vec<(i64, u64)> = m[1]
                    .points
                    .iter()
                    .map(|p| (p.0 - t0, p.1.to_bits()))
                    .collect();
                let inf = f64::INFINITY.to_bits();
                let ninf = f64::NEG_INFINITY.to_bits();
                assert_eq!(
                    b[1..],
                    [
                        (10_000, inf),
                        (20_000, ninf),
                        (30_000, ninf),
                        (40_000, ninf)
                    ]
                );
                assert!(f64::from_bits(b[0].1).is_nan());
                assert_eq!(m[2].points.len(), 3);
            }
            other => panic!("{other:?}"),
        }
    }
}
