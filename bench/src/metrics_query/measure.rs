//! Timing a query, and the answers kept to compare the systems.

use crate::util::{self, percentiles_ms};
use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Runs `f` `warmup` times, then `runs` times timed; a histogram of microseconds.
pub(crate) fn time_runs(
    warmup: usize,
    runs: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<hdrhistogram::Histogram<u64>> {
    for _ in 0..warmup {
        f()?;
    }
    let mut h = util::histogram()?;
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        h.record((t.elapsed().as_micros() as u64).max(1))
            .map_err(|e| anyhow!("histogram: {e}"))?;
    }
    Ok(h)
}

/// An answer, as (group labels as text, points by ms), for comparing systems.
pub(crate) type Answer = BTreeMap<String, BTreeMap<i64, f64>>;

/// The timings of one query in one system.
pub(crate) struct Timed {
    pub(crate) hist: hdrhistogram::Histogram<u64>,
    pub(crate) groups: usize,
    pub(crate) points: usize,
    pub(crate) answer: Answer,
    pub(crate) bytes: usize,
}

impl Timed {
    pub(crate) fn p(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    pub(crate) fn line(&self) -> String {
        format!(
            "p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2} ms",
            self.p(0.5),
            self.p(0.9),
            self.p(0.99),
            self.hist.max() as f64 / 1000.0
        )
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        let mut v = percentiles_ms(&self.hist);
        v["groups"] = self.groups.into();
        v["points"] = self.points.into();
        v["answer_bytes"] = self.bytes.into();
        v
    }
}

pub(super) fn our_answer(r: &skein_model::metrics_api::MetricQueryResponse) -> Answer {
    r.series
        .iter()
        .map(|s| {
            let key = s.labels.get("host").map(str::to_string).unwrap_or_default();
            (key, s.points.iter().copied().collect())
        })
        .collect()
}

pub(crate) fn count(a: &Answer) -> (usize, usize) {
    (a.len(), a.values().map(BTreeMap::len).sum())
}

/// A blocking HTTP client.
pub(crate) fn http_client() -> Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .context("HTTP client")
}

/// GET `url`; the body, which must come with a 200.
pub(crate) fn get(client: &reqwest::blocking::Client, url: &str) -> Result<Bytes> {
    let r = client
        .get(url)
        .send()
        .with_context(|| format!("GET {url}"))?;
    let st = r.status();
    let b = r.bytes().with_context(|| format!("read {url}"))?;
    if !st.is_success() {
        bail!(
            "GET {url}: {st}: {}",
            String::from_utf8_lossy(&b[..b.len().min(500)])
        );
    }
    Ok(b)
}

/// The largest difference between two answers over the points both have, and the number of
/// points only one has. Answers of one group each are compared whatever their labels
/// (`max(x{host="h"})` has none in PromQL; Skein keeps the pinned `host`).
pub(super) fn compare(a: &Answer, b: &Answer) -> (f64, usize) {
    if a.len() == 1
        && b.len() == 1
        && let (Some(pa), Some(pb)) = (a.values().next(), b.values().next())
    {
        let (mut diff, mut missing) = (0.0f64, 0usize);
        compare_points(pa, pb, &mut diff, &mut missing);
        return (diff, missing);
    }
    let (mut diff, mut missing) = (0.0f64, 0usize);
    for (k, pa) in a {
        let Some(pb) = b.get(k) else {
            missing += pa.len();
            continue;
        };
        compare_points(pa, pb, &mut diff, &mut missing);
    }
    missing += b
        .iter()
        .filter(|(k, _)| !a.contains_key(*k))
        .map(|(_, p)| p.len())
        .sum::<usize>();
    (diff, missing)
}

fn compare_points(
    a: &BTreeMap<i64, f64>,
    b: &BTreeMap<i64, f64>,
    diff: &mut f64,
    missing: &mut usize,
) {
    for (t, va) in a {
        match b.get(t) {
            Some(vb) => *diff = diff.max((va - vb).abs()),
            None => *missing += 1,
        }
    }
    *missing += b.keys().filter(|t| !a.contains_key(t)).count();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_compare() {
        let mut a = Answer::new();
        a.entry(String::new()).or_default().insert(1, 0.5);
        let mut b = a.clone();
        assert_eq!(compare(&a, &b), (0.0, 0));
        b.entry(String::new()).or_default().insert(2, 0.5);
        assert_eq!(compare(&a, &b).1, 1);
        // One group each: labels do not matter.
        let c = Answer::from([("host-7".to_string(), BTreeMap::from([(1, 0.25)]))]);
        assert_eq!(compare(&a, &c), (0.25, 0));
    }
}
