//! Answers of a range query kept to compare the systems: label set (as text) → points.

use anyhow::{Context, Result, bail};
use skein_model::metric::Labels;
use skein_query::promql::QueryValue;

/// A range query's answer: `{a="1",b="2"}` → value by ms; its series and points.
pub(super) use crate::metrics_query::measure::{Answer, count};

/// The answer of `Engine::range`.
pub(super) fn from_value(v: &QueryValue) -> Result<Answer> {
    let QueryValue::Matrix(m) = v else {
        bail!("a range query gave no matrix: {v:?}");
    };
    Ok(m.iter()
        .map(|s| (s.labels.to_string(), s.points.iter().copied().collect()))
        .collect())
}

/// The answer of `/api/v1/query_range` in Prometheus's envelope (Skein's or Prometheus's).
pub(super) fn from_json(body: &[u8]) -> Result<Answer> {
    let v: serde_json::Value = serde_json::from_slice(body).context("read the answer")?;
    if v["status"] != "success" {
        bail!("the answer is not a success: {v}");
    }
    if v["data"]["resultType"] != "matrix" {
        bail!("the answer is not a matrix: {v}");
    }
    let Some(result) = v["data"]["result"].as_array() else {
        bail!("no data.result in {v}");
    };
    let mut out = Answer::new();
    for s in result {
        let labels = Labels::from_pairs(
            s["metric"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default())),
        );
        let pts = out.entry(labels.to_string()).or_default();
        for p in s["values"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let ts = p[0].as_f64().unwrap_or(0.0);
            let val: f64 = match p[1].as_str().unwrap_or("NaN") {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                x => x.parse().unwrap_or(f64::NAN),
            };
            pts.insert((ts * 1000.0).round() as i64, val);
        }
    }
    Ok(out)
}

/// How two answers differ.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Agreement {
    /// Label sets only one answer has.
    pub(super) series_only_in_one: usize,
    /// Points (of label sets both have) only one answer has.
    pub(super) points_only_in_one: usize,
    /// Points both have.
    pub(super) points_compared: usize,
    /// Of those, values further apart than the tolerance (NaN equals NaN).
    pub(super) values_apart: usize,
    /// Largest relative difference `|a − b| / max(|a|, |b|)` of the points both have.
    pub(super) max_rel_diff: f64,
}

impl Agreement {
    /// Same label sets, same points, every value within the tolerance.
    pub(super) fn agrees(&self) -> bool {
        self.series_only_in_one == 0 && self.points_only_in_one == 0 && self.values_apart == 0
    }

    pub(super) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "agrees": self.agrees(),
            "series_only_in_one": self.series_only_in_one,
            "points_only_in_one": self.points_only_in_one,
            "points_compared": self.points_compared,
            "values_apart": self.values_apart,
            "max_rel_diff": self.max_rel_diff,
        })
    }

    pub(super) fn line(&self) -> String {
        if self.agrees() {
            format!(
                "agree: {} points, largest relative difference {:.1e}",
                self.points_compared, self.max_rel_diff
            )
        } else {
            format!(
                "DIFFER: {} label sets and {} points only in one; {} of {} values apart (largest relative difference {:.1e})",
                self.series_only_in_one,
                self.points_only_in_one,
                self.values_apart,
                self.points_compared,
                self.max_rel_diff
            )
        }
    }
}

/// Compares two answers, values within `tol` relative to the larger.
pub(super) fn compare(a: &Answer, b: &Answer, tol: f64) -> Agreement {
    let mut g = Agreement::default();
    for (k, pa) in a {
        let Some(pb) = b.get(k) else {
            g.series_only_in_one += 1;
            continue;
        };
        for (t, va) in pa {
            let Some(vb) = pb.get(t) else {
                g.points_only_in_one += 1;
                continue;
            };
            g.points_compared += 1;
            if va.is_nan() && vb.is_nan() || va == vb {
                continue;
            }
            let rel = (va - vb).abs() / va.abs().max(vb.abs());
            if rel.is_nan() || rel > tol {
                g.values_apart += 1;
            }
            if rel.is_nan() {
                g.max_rel_diff = f64::INFINITY;
            } else {
                g.max_rel_diff = g.max_rel_diff.max(rel);
            }
        }
        g.points_only_in_one += pb.keys().filter(|t| !pa.contains_key(t)).count();
    }
    g.series_only_in_one += b.keys().filter(|k| !a.contains_key(*k)).count();
    g
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn prometheus_json_and_comparison() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"x":"x1"},"values":[[1700000000,"1.5"],[1700000060,"NaN"]]},
            {"metric":{},"values":[[1700000000.5,"+Inf"]]}]}}"#;
        let a = from_json(body).unwrap();
        assert_eq!(count(&a), (2, 3));
        assert_eq!(a[r#"{x="x1"}"#][&1_700_000_000_000], 1.5);
        assert!(a[r#"{x="x1"}"#][&1_700_000_060_000].is_nan());
        assert_eq!(a["{}"][&1_700_000_000_500], f64::INFINITY);
        assert!(compare(&a, &a, 1e-9).agrees());
        let mut b = a.clone();
        b.get_mut(r#"{x="x1"}"#)
            .unwrap()
            .insert(1_700_000_000_000, 1.5 * (1.0 + 1e-12));
        let g = compare(&a, &b, 1e-9);
        assert!(g.agrees() && g.max_rel_diff > 0.0);
        b.get_mut(r#"{x="x1"}"#)
            .unwrap()
            .insert(1_700_000_000_000, 1.6);
        b.insert(r#"{x="x2"}"#.into(), BTreeMap::new());
        let g = compare(&a, &b, 1e-9);
        assert_eq!((g.values_apart, g.series_only_in_one), (1, 1));
        assert!(!g.agrees());
    }
}
