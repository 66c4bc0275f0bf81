//! The generated samples (a counter and a classic histogram on one time grid), the two
//! queries, and the samples written to Skein's store and to an OpenMetrics file.

use super::PromqlQueryArgs;
use crate::datagen::Rng;
use crate::prom_peer::OmWriter;
use anyhow::{Context, Result, bail};
use skein_model::metric::{Labels, MetricBatch, MetricKind, SeriesSpec};
use skein_store::tsdb::Tsdb;
use std::path::Path;

/// The counter (a valid Prometheus name, so Skein shows it unchanged).
pub(super) const COUNTER: &str = "bench_requests_total";
/// The histogram family; its series are `_bucket`, `_sum` and `_count`.
pub(super) const HISTOGRAM: &str = "bench_latency_seconds";
/// Upper bounds of the histogram's buckets, as the `le` label writes them.
pub(super) const LE: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf",
];

/// One series: stored (and Prometheus) name, labels in order, a value at each grid time.
pub(super) struct Series {
    pub(super) name: String,
    pub(super) kind: MetricKind,
    pub(super) labels: Vec<(&'static str, String)>,
    pub(super) values: Vec<f64>,
}

/// Every series on one grid: `n` times, `interval_ms` apart, the last at `end_ms`.
pub(super) struct Data {
    pub(super) end_ms: i64,
    pub(super) interval_ms: i64,
    pub(super) n: usize,
    pub(super) series: Vec<Series>,
    /// Counter series with a reset (value back near 0 once).
    pub(super) resets: usize,
}

impl Data {
    /// The samples of `a`, from its seed; the grid ends at the last whole minute before now.
    pub(super) fn make(a: &PromqlQueryArgs) -> Result<Data> {
        if a.x_values == 0 || a.i_values == 0 || a.histograms == 0 {
            bail!("--x-values, --i-values and --histograms must be above 0");
        }
        if a.interval_secs == 0 || a.hours == 0 {
            bail!("--interval-secs and --hours must be above 0");
        }
        let interval_ms = (a.interval_secs * 1000) as i64;
        let end_ms = (skein_model::time::now_ms() / 60_000 - 1) * 60_000;
        let n = (a.hours * 3600 / a.interval_secs) as usize;
        let mut rng = Rng::new(a.seed);
        let mut series = Vec::new();
        let counters = a.x_values * a.i_values;
        // Which counters reset, and where: spread over the series, in the middle 80 % of time.
        let every = (counters / a.resets.max(1)).max(1);
        let mut resets = 0;
        for j in 0..counters {
            let (x, i) = (j / a.i_values, j % a.i_values);
            // Requests per interval: a level per series, random around it.
            let level = 1 + rng.below(40);
            let reset_at = (a.resets > 0 && j % every == every / 2 && resets < a.resets)
                .then(|| n / 10 + rng.below((n * 8 / 10).max(1) as u64) as usize);
            resets += usize::from(reset_at.is_some());
            let mut v = rng.below(1000) as f64;
            let values = (0..n)
                .map(|k| {
                    if Some(k) == reset_at {
                        v = 0.0;
                    }
                    v += rng.below(2 * level + 1) as f64;
                    v
                })
                .collect();
            series.push(Series {
                name: COUNTER.into(),
                kind: MetricKind::Counter,
                labels: vec![("x", format!("x{x}")), ("i", i.to_string())],
                values,
            });
        }
        let bounds: Vec<f64> = LE
            .iter()
            .map(|s| s.parse().unwrap_or(f64::INFINITY))
            .collect();
        for h in 0..a.histograms {
            // A typical latency per label set; observations are exponential around it.
            let scale = 0.005 + 0.2 * rng.unit() * rng.unit();
            let per = 1 + rng.below(20);
            let mut buckets = vec![vec![0.0; n]; LE.len()];
            let (mut count, mut sum) = (vec![0.0; n], vec![0.0; n]);
            let mut cum = vec![0u64; LE.len()];
            let (mut c, mut s) = (0u64, 0.0f64);
            for k in 0..n {
                for _ in 0..rng.below(2 * per + 1) {
                    let x = -scale * (1.0 - rng.unit()).ln();
                    let x = (x * 1e6).round() / 1e6;
                    let b = bounds
                        .iter()
                        .position(|&le| x <= le)
                        .unwrap_or(LE.len() - 1);
                    for c in &mut cum[b..] {
                        *c += 1;
                    }
                    c += 1;
                    s += x;
                }
                for (col, &v) in buckets.iter_mut().zip(&cum) {
                    col[k] = v as f64;
                }
                count[k] = c as f64;
                sum[k] = (s * 1e6).round() / 1e6;
            }
            let i = h.to_string();
            for (le, values) in LE.iter().zip(buckets) {
                series.push(Series {
                    name: format!("{HISTOGRAM}_bucket"),
                    kind: MetricKind::Histogram,
                    labels: vec![("i", i.clone()), ("le", le.to_string())],
                    values,
                });
            }
            for (suffix, values) in [("_sum", sum), ("_count", count)] {
                series.push(Series {
                    name: format!("{HISTOGRAM}{suffix}"),
                    kind: MetricKind::Histogram,
                    labels: vec![("i", i.clone())],
                    values,
                });
            }
        }
        Ok(Data {
            end_ms,
            interval_ms,
            n,
            series,
            resets,
        })
    }

    /// Time of the `k`-th sample, ms.
    pub(super) fn ts(&self, k: usize) -> i64 {
        self.end_ms - (self.n - 1 - k) as i64 * self.interval_ms
    }

    /// Samples in all.
    pub(super) fn samples(&self) -> u64 {
        (self.series.len() * self.n) as u64
    }

    /// Writes every sample to `tsdb` in time order, batches of about `batch` samples (whole
    /// grid times of every series), and persists it to a block.
    pub(super) fn load(&self, tsdb: &Tsdb, batch: usize) -> Result<()> {
        let specs: Vec<SeriesSpec> = self
            .series
            .iter()
            .map(|s| SeriesSpec {
                name: s.name.clone(),
                labels: Labels::from_pairs(s.labels.iter().map(|(k, v)| (*k, v.as_str()))),
                kind: s.kind,
                unit: if s.kind == MetricKind::Histogram {
                    "s".into()
                } else {
                    "1".into()
                },
                delta: false,
            })
            .collect();
        let per_batch = (batch / specs.len()).max(1);
        let mut k = 0;
        while k < self.n {
            let hi = (k + per_batch).min(self.n);
            let mut b = MetricBatch {
                series: specs.clone(),
                samples: Vec::with_capacity((hi - k) * specs.len()),
            };
            for j in k..hi {
                let ts = self.ts(j);
                for (i, s) in self.series.iter().enumerate() {
                    b.push(i as u32, ts, s.values[j]);
                }
            }
            let r = tsdb.append(&b).context("append")?;
            if r.rejected > 0 {
                bail!(
                    "the store refused {} samples: {:?}",
                    r.rejected,
                    r.first_reason
                );
            }
            k = hi;
        }
        tsdb.persist().context("persist")
    }

    /// Writes every sample as OpenMetrics text; its size.
    pub(super) fn write_openmetrics(&self, path: &Path) -> Result<u64> {
        let mut w = OmWriter::create(path)?;
        let mut family = "";
        for s in &self.series {
            let (fam, kind) = match s.kind {
                MetricKind::Counter => {
                    (COUNTER.strip_suffix("_total").unwrap_or(COUNTER), "counter")
                }
                _ => (HISTOGRAM, "histogram"),
            };
            if fam != family {
                w.family(fam, kind)?;
                family = fam;
            }
            let labels: Vec<(&str, &str)> =
                s.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            w.series(
                &s.name,
                &labels,
                s.values.iter().enumerate().map(|(k, v)| (self.ts(k), *v)),
            )?;
        }
        w.finish()
    }
}

/// One query, the same PromQL for both systems.
pub(super) struct QueryDef {
    pub(super) key: &'static str,
    pub(super) promql: String,
}

/// The two queries.
pub(super) fn queries(range: &str) -> Vec<QueryDef> {
    vec![
        QueryDef {
            key: "sum_rate",
            promql: format!("sum by (x) (rate({COUNTER}[{range}]))"),
        },
        QueryDef {
            key: "hist_p99",
            promql: format!(
                "histogram_quantile(0.99, sum by (le) (rate({HISTOGRAM}_bucket[{range}])))"
            ),
        },
    ]
}

/// The query window in ms: the newest sample's time (a whole minute) rounded down to the
/// step, and `hours` before it.
pub(super) fn window_ms(d: &Data, a: &PromqlQueryArgs) -> (i64, i64) {
    let step_ms = (a.step_secs.max(1) * 1000) as i64;
    let end = d.end_ms / step_ms * step_ms;
    (end - (a.hours * 3600 * 1000) as i64, end)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        a: PromqlQueryArgs,
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_counters_reset_as_asked() {
        let cli = Cli::parse_from([
            "x",
            "--hours",
            "1",
            "--x-values",
            "2",
            "--i-values",
            "5",
            "--histograms",
            "2",
            "--resets",
            "2",
        ]);
        let d = Data::make(&cli.a).unwrap();
        assert_eq!(d.n, 240);
        assert_eq!(d.series.len(), 10 + 2 * 12);
        assert_eq!(d.resets, 2);
        let drops = d.series[..10]
            .iter()
            .filter(|s| s.values.windows(2).any(|w| w[1] < w[0]))
            .count();
        assert_eq!(drops, 2);
        let h = &d.series[10..22];
        for k in 0..d.n {
            for b in 1..LE.len() {
                assert!(h[b].values[k] >= h[b - 1].values[k]);
            }
            // `+Inf` equals `_count`.
            assert_eq!(h[LE.len() - 1].values[k], h[11].values[k]);
            if k > 0 {
                assert!(h[0].values[k] >= h[0].values[k - 1]);
            }
        }
        assert_eq!(d.ts(d.n - 1) % 60_000, 0);
        let (start, end) = window_ms(&d, &cli.a);
        assert_eq!(end - start, 3_600_000);
        // Same seed, same samples.
        let again = Data::make(&cli.a).unwrap();
        assert_eq!(again.series[3].values, d.series[3].values);
    }
}
