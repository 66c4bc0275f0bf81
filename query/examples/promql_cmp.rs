//! TEMPORARY harness (not to be committed): runs queries over an OpenMetrics file.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
use skein_model::metric::Labels;
use skein_query::promql::source::{RawSeries, SeriesSource};
use skein_query::promql::{Engine, Limits, PromError, QueryValue};
use skein_store::tsdb::Matcher;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::Arc;

struct Mem(Vec<RawSeries>);
impl SeriesSource for Mem {
    fn select(&self, m: &[Matcher], s: i64, e: i64, _max: usize) -> Result<Vec<RawSeries>, PromError> {
        Ok(self.0.iter().filter(|x| m.iter().all(|m| m.matches(&x.labels))).map(|x| RawSeries {
            labels: x.labels.clone(),
            samples: x.samples.iter().copied().filter(|p| p.0 >= s && p.0 <= e).collect(),
        }).collect())
    }
}

fn parse_labels(s: &str) -> Labels {
    // name{a="b",c="d"}
    let (name, rest) = match s.find('{') { Some(i) => (&s[..i], &s[i + 1..s.len() - 1]), None => (s, "") };
    let mut pairs = vec![("__name__".to_string(), name.to_string())];
    for p in rest.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = p.split_once('=').unwrap();
        pairs.push((k.to_string(), v.trim_matches('"').to_string()));
    }
    Labels::from_pairs(pairs)
}

fn fmt(v: f64) -> String {
    if v.is_nan() { "NaN".into() } else if v == f64::INFINITY { "+Inf".into() } else if v == f64::NEG_INFINITY { "-Inf".into() } else { format!("{v}") }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let data = std::fs::read_to_string(&args[1]).unwrap();
    let mut map: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for line in data.lines() {
        if line.starts_with('#') { continue; }
        let mut it = line.rsplitn(3, ' ');
        let ts = it.next().unwrap(); let val = it.next().unwrap(); let sel = it.next().unwrap();
        let v: f64 = match val { "NaN" => f64::NAN, "+Inf" => f64::INFINITY, "-Inf" => f64::NEG_INFINITY, x => x.parse().unwrap() };
        let t = (ts.parse::<f64>().unwrap() * 1000.0).round() as i64;
        map.entry(sel.to_string()).or_default().push((t, v));
    }
    let series: Vec<RawSeries> = map.into_iter().map(|(k, s)| RawSeries { labels: parse_labels(&k), samples: s }).collect();
    let engine = Engine::new(Arc::new(Mem(series)), Limits::default());
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.unwrap();
        let q: serde_json::Value = serde_json::from_str(&line).unwrap();
        let query = q["q"].as_str().unwrap();
        let t0 = std::time::Instant::now();
        let res = if q["type"] == "instant" {
            engine.instant(query, q["t"].as_i64().unwrap())
        } else {
            engine.range(query, q["start"].as_i64().unwrap(), q["end"].as_i64().unwrap(), q["step"].as_i64().unwrap())
        };
        let el = t0.elapsed().as_secs_f64();
        let out = match res {
            Err(e) => serde_json::json!({"error": e.message, "errorType": e.kind.as_str(), "secs": el}),
            Ok(QueryValue::Scalar(t, v)) => serde_json::json!({"resultType": "scalar", "result": [t as f64 / 1000.0, fmt(v)], "secs": el}),
            Ok(QueryValue::String(t, v)) => serde_json::json!({"resultType": "string", "result": [t as f64 / 1000.0, v], "secs": el}),
            Ok(QueryValue::Vector(v)) => serde_json::json!({"resultType": "vector", "secs": el, "result": v.iter().map(|s| serde_json::json!({"metric": s.labels, "value": [s.t as f64 / 1000.0, fmt(s.v)]})).collect::<Vec<_>>()}),
            Ok(QueryValue::Matrix(m)) => serde_json::json!({"resultType": "matrix", "secs": el, "result": m.iter().map(|s| serde_json::json!({"metric": s.labels, "values": s.points.iter().map(|p| serde_json::json!([p.0 as f64 / 1000.0, fmt(p.1)])).collect::<Vec<_>>()})).collect::<Vec<_>>()}),
        };
        println!("{out}");
    }
}
