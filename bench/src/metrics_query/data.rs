//! The generated samples and the four queries, in Skein's and in PromQL's words.

use super::{MetricsQueryArgs, NAME, PROM_NAME};
use crate::datagen::Rng;
use anyhow::{Result, bail};

/// The samples: `values[series][k]` at `ts(k)`.
pub(super) struct Data {
    pub(super) hosts: usize,
    interval_ms: i64,
    end_ms: i64,
    pub(super) n: usize,
    pub(super) values: Vec<Vec<f64>>,
}

impl Data {
    pub(super) fn make(a: &MetricsQueryArgs) -> Result<Data> {
        if a.series == 0 || a.hosts == 0 || a.interval_secs == 0 || a.hours == 0 {
            bail!("--series, --hosts, --interval-secs and --hours must be above 0");
        }
        let interval_ms = (a.interval_secs * 1000) as i64;
        let end_ms = skein_model::time::now_ms() / interval_ms * interval_ms;
        let n = (a.hours * 3600 / a.interval_secs) as usize;
        let mut rng = Rng::new(a.seed);
        let values = (0..a.series)
            .map(|_| {
                // A level the series comes back to (an idle or a busy host), and noise.
                let level = 0.03 + 0.8 * rng.unit() * rng.unit();
                let mut v = level;
                (0..n)
                    .map(|_| {
                        v += 0.1 * (level - v) + 0.06 * (rng.unit() - 0.5);
                        v = v.clamp(0.0, 1.0);
                        (v * 1000.0).round() / 1000.0
                    })
                    .collect()
            })
            .collect();
        Ok(Data {
            hosts: a.hosts,
            interval_ms,
            end_ms,
            n,
            values,
        })
    }

    pub(super) fn ts(&self, k: usize) -> i64 {
        self.end_ms - (self.n - 1 - k) as i64 * self.interval_ms
    }

    pub(super) fn host(&self, i: usize) -> String {
        format!("host-{}", i % self.hosts)
    }

    pub(super) fn cpu(&self, i: usize) -> String {
        (i / self.hosts).to_string()
    }

    pub(super) fn samples(&self) -> u64 {
        (self.values.len() * self.n) as u64
    }
}

/// One of the four queries in each system's words.
pub(super) struct QueryDef {
    pub(super) key: &'static str,
    pub(super) ours: String,
    pub(super) prom: String,
    /// The PromQL reading the same samples as Skein's, if there is one.
    pub(super) prom_same: Option<String>,
}

pub(super) fn queries(d: &Data, step_secs: u64) -> Vec<QueryDef> {
    let h7 = format!("host-{}", 7 % d.hosts);
    let step = format!("step={step_secs}s");
    let w = format!("[{}s]", step_secs.saturating_sub(1).max(1));
    vec![
        QueryDef {
            key: "avg",
            ours: format!("name={NAME}&agg=avg&{step}"),
            prom: format!("avg({PROM_NAME})"),
            prom_same: Some(format!("avg(avg_over_time({PROM_NAME}{w}))")),
        },
        QueryDef {
            key: "avg_by_host",
            ours: format!("name={NAME}&agg=avg&by=host&{step}"),
            prom: format!("avg by (host) ({PROM_NAME})"),
            prom_same: Some(format!("avg by (host) (avg_over_time({PROM_NAME}{w}))")),
        },
        QueryDef {
            key: "p99",
            ours: format!("name={NAME}&agg=p99&{step}"),
            prom: format!("quantile(0.99, {PROM_NAME})"),
            prom_same: None,
        },
        QueryDef {
            key: "max_host7",
            ours: format!(
                "name={NAME}&agg=max&match={}&{step}",
                enc(&format!("host={h7}"))
            ),
            prom: format!("max({PROM_NAME}{{host=\"{h7}\"}})"),
            prom_same: Some(format!(
                "max(max_over_time({PROM_NAME}{{host=\"{h7}\"}}{w}))"
            )),
        },
    ]
}

/// Percent-encodes a query-string value (everything but unreserved characters).
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query window in ns: the last multiple of the step at or before the newest sample,
/// and `hours` before it.
pub(super) fn window_ns(d: &Data, a: &MetricsQueryArgs) -> (u64, u64) {
    let step_ms = (a.step_secs.max(1) * 1000) as i64;
    let end = d.end_ms / step_ms * step_ms;
    let start = end - (a.hours * 3600 * 1000) as i64;
    (start as u64 * 1_000_000, end as u64 * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_query_values() {
        assert_eq!(enc("host=host-7"), "host%3Dhost-7");
        assert_eq!(enc("avg by (host) (x)"), "avg%20by%20%28host%29%20%28x%29");
    }
}
