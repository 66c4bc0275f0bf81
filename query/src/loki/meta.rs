//! Discovery and size routes: labels, label values, series, index stats, volume, buildinfo.
//!
//! Skein has no label index beside its record index, so labels, values (except `service`,
//! which the index counts exactly) and series come from the newest
//! [`super::DISCOVERY_SAMPLE`] lines of the range that match `query`/`match[]`. Index stats
//! count the index's candidates exactly and estimate bytes from the sample; volume reads the
//! lines within the scan budget.

use super::logql::ast::{AggOp, Expr, Grouping, LogExpr, RangeAgg, RangeFn, VectorAgg};
use super::metric::{Steps, Value};
use super::pipeline::{self, Entry, Labels};
use super::scan;
use super::{
    DISCOVERY_SAMPLE, LOKI_VERSION, Params, bad, bad_boxed, from_api, json_text, parse_step,
    range_of,
};
use crate::QueryError;
use crate::api::{ApiState, run_blocking};
use crate::engine::{Engine, LogQuery};
use crate::prom_api::render::{json_string, json_string_list};
use axum::extract::{Path, State};
use axum::response::Response;
use skein_model::keys::KeyExtractor;
use skein_store::search::{LogFilter, TimeRange};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

fn selector(q: &str) -> Result<LogExpr, Box<Response>> {
    match super::logql::parse(q) {
        Ok(Expr::Log(l)) => Ok(l),
        Ok(_) => Err(bad_boxed(format!(
            "'{q}' is a metric query; give a stream selector such as {{service=\"checkout\"}}"
        ))),
        Err(e) => Err(bad_boxed(format!("parse error: {e}"))),
    }
}

/// The newest lines of the range matching `log` (all lines when None).
fn sample(
    engine: &Engine,
    keys: &KeyExtractor,
    log: Option<&LogExpr>,
    range: TimeRange,
) -> Result<Vec<Entry>, QueryError> {
    match log {
        Some(l) => {
            let mut out = Vec::new();
            scan::scan(engine, keys, l, range, DISCOVERY_SAMPLE * 4, |e| {
                out.push(e);
                out.len() < DISCOVERY_SAMPLE
            })
            .or_else(|e| match e {
                // Past the budget, what was found is the sample.
                QueryError::BadRequest(_) => Ok(Default::default()),
                other => Err(other),
            })?;
            Ok(out)
        }
        None => Ok(engine
            .logs(&LogQuery {
                filter: LogFilter::default(),
                range: Some(range),
                limit: DISCOVERY_SAMPLE,
            })?
            .logs
            .iter()
            .map(pipeline::entry)
            .collect()),
    }
}

fn list_answer(items: &[String]) -> Response {
    json_text(format!(
        "{{\"status\":\"success\",\"data\":{}}}",
        json_string_list(items)
    ))
}

/// `GET /loki/api/v1/labels?start=&end=&query=`: stream label names.
pub async fn labels(State(s): State<ApiState>, Params(f): Params) -> Response {
    let (start, end) = match range_of(&f) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let log = match f.get("query").map(selector).transpose() {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let (engine, keys) = (s.engine.clone(), s.keys.clone());
    let out = run_blocking(&s, "loki_labels", move || {
        let entries = sample(&engine, &keys, log.as_ref(), TimeRange { start, end })?;
        let mut names: BTreeSet<String> = BTreeSet::new();
        for e in &entries {
            names.extend(e.labels.keys().cloned());
        }
        Ok::<_, QueryError>(names.into_iter().collect::<Vec<_>>())
    })
    .await;
    match out {
        Ok(names) => list_answer(&names),
        Err(e) => from_api(e),
    }
}

/// `GET /loki/api/v1/label/{name}/values?start=&end=&query=`.
pub async fn values(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    Params(f): Params,
) -> Response {
    let (start, end) = match range_of(&f) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let log = match f.get("query").map(selector).transpose() {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let (engine, keys) = (s.engine.clone(), s.keys.clone());
    let out = run_blocking(&s, "loki_label_values", move || {
        let range = TimeRange { start, end };
        let mut vals: BTreeSet<String> = BTreeSet::new();
        if (name == "service" || name == "service_name") && log.is_none() {
            // Exact, from the index's service column.
            let counts = engine.count_logs(&LogFilter::default(), range, &["service"])?;
            for (g, n) in counts.groups {
                if n > 0
                    && let Some(v) = g.into_iter().next()
                {
                    vals.insert(v);
                }
            }
        } else {
            for e in sample(&engine, &keys, log.as_ref(), range)? {
                if let Some(v) = e.get(&name).filter(|v| !v.is_empty()) {
                    vals.insert(v.to_string());
                }
            }
        }
        Ok::<_, QueryError>(vals.into_iter().collect::<Vec<_>>())
    })
    .await;
    match out {
        Ok(v) => list_answer(&v),
        Err(e) => from_api(e),
    }
}

/// `GET|POST /loki/api/v1/series?match[]=&start=&end=`: the stream label sets.
pub async fn series(State(s): State<ApiState>, Params(f): Params) -> Response {
    let (start, end) = match range_of(&f) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let mut sels = Vec::new();
    for m in f.all("match[]").into_iter().chain(f.all("match")) {
        match selector(m) {
            Ok(l) => sels.push(l),
            Err(r) => return *r,
        }
    }
    if sels.len() > 64 {
        return bad("at most 64 match[] selectors");
    }
    let (engine, keys) = (s.engine.clone(), s.keys.clone());
    let out = run_blocking(&s, "loki_series", move || {
        let range = TimeRange { start, end };
        let mut set: BTreeSet<Labels> = BTreeSet::new();
        if sels.is_empty() {
            set.extend(
                sample(&engine, &keys, None, range)?
                    .into_iter()
                    .map(|e| e.labels),
            );
        }
        for l in &sels {
            set.extend(
                sample(&engine, &keys, Some(l), range)?
                    .into_iter()
                    .map(|e| e.labels),
            );
        }
        Ok::<_, QueryError>(set)
    })
    .await;
    match out {
        Ok(set) => {
            let mut body = String::from("{\"status\":\"success\",\"data\":[");
            for (i, l) in set.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push('{');
                for (j, (k, v)) in l.iter().enumerate() {
                    if j > 0 {
                        body.push(',');
                    }
                    body.push_str(&json_string(k));
                    body.push(':');
                    body.push_str(&json_string(v));
                }
                body.push('}');
            }
            body.push_str("]}");
            json_text(body)
        }
        Err(e) => from_api(e),
    }
}

/// `GET /loki/api/v1/index/stats?query=&start=&end=`: `{streams, chunks, entries, bytes}`.
pub async fn stats(State(s): State<ApiState>, Params(f): Params) -> Response {
    let (start, end) = match range_of(&f) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let Some(q) = f.get("query") else {
        return bad("missing parameter \"query\": give a stream selector");
    };
    let log = match selector(q) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let (engine, keys) = (s.engine.clone(), s.keys.clone());
    let out = run_blocking(&s, "loki_index_stats", move || {
        let range = TimeRange { start, end };
        let filter = scan::prefilter(&log, &keys);
        let candidates = engine
            .count_logs(&filter, range, &[])?
            .groups
            .first()
            .map_or(0, |g| g.1);
        let entries = sample(&engine, &keys, Some(&log), range)?;
        let streams: BTreeSet<&Labels> = entries.iter().map(|e| &e.labels).collect();
        let bytes: usize = entries.iter().map(|e| e.line.len()).sum();
        let avg = if entries.is_empty() {
            0.0
        } else {
            bytes as f64 / entries.len() as f64
        };
        Ok::<_, QueryError>(serde_json::json!({
            "streams": streams.len(),
            "chunks": streams.len(),
            "entries": candidates,
            "bytes": (avg * candidates as f64) as u64,
        }))
    })
    .await;
    match out {
        Ok(v) => json_text(v.to_string()),
        Err(e) => from_api(e),
    }
}

/// The labels a volume groups by: `targetLabels`, else the selector's matcher names.
fn volume_expr(f: &crate::prom_api::params::Form, range_ns: u64) -> Result<Expr, Box<Response>> {
    let q = f
        .get("query")
        .ok_or_else(|| bad_boxed("missing parameter \"query\": give a stream selector"))?;
    let log = selector(q)?;
    let labels: Vec<String> = match f.get("targetLabels") {
        Some(t) => t
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        None => {
            let mut v: Vec<String> = log
                .matchers
                .iter()
                .map(|m| {
                    if m.name == "service_name" {
                        "service".to_string()
                    } else {
                        m.name.clone()
                    }
                })
                .collect();
            v.dedup();
            v
        }
    };
    Ok(Expr::Agg(Box::new(VectorAgg {
        op: AggOp::Sum,
        grouping: Some(Grouping {
            without: false,
            labels,
        }),
        param: None,
        inner: Expr::Range(RangeAgg {
            func: RangeFn::BytesOverTime,
            log,
            range_ns: range_ns.max(1),
            offset_ns: 0,
        }),
    })))
}

async fn volume_answer(
    s: &ApiState,
    route: &'static str,
    expr: Expr,
    steps: Steps,
    instant: bool,
    limit: usize,
) -> Response {
    let started = Instant::now();
    let out = super::query::evaluate(s, route, expr, &steps).await;
    match out {
        Ok((Value::Vector(mut series), stats)) => {
            if series.len() > limit {
                // The largest `limit` series, as Loki keeps them.
                let mut by_size: Vec<(Labels, f64)> = series
                    .iter()
                    .map(|(l, p)| (l.clone(), p.iter().flatten().sum()))
                    .collect();
                by_size.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
                let keep: BTreeSet<Labels> = by_size.into_iter().take(limit).map(|x| x.0).collect();
                series.retain(|l, _| keep.contains(l));
            }
            json_text(super::query::metric_body(
                &Value::Vector(series),
                &steps,
                instant,
                &stats,
                started,
            ))
        }
        Ok((v, stats)) => json_text(super::query::metric_body(
            &v, &steps, instant, &stats, started,
        )),
        Err(e) => from_api(e),
    }
}

fn volume_limit(f: &crate::prom_api::params::Form) -> Result<usize, Box<Response>> {
    match f.get("limit") {
        None => Ok(100),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                bad_boxed(format!(
                    "invalid parameter \"limit\": '{v}'; give 1 to 10000"
                ))
            }),
    }
}

/// `GET /loki/api/v1/index/volume`: bytes per group over the whole range, as a vector.
pub async fn volume(State(s): State<ApiState>, Params(f): Params) -> Response {
    let (start, end) = match range_of(&f) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let limit = match volume_limit(&f) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let expr = match volume_expr(&f, end - start + 1) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let steps = Steps {
        start: end,
        step: 1,
        n: 1,
    };
    volume_answer(&s, "loki_index_volume", expr, steps, true, limit).await
}

/// `GET /loki/api/v1/index/volume_range`: bytes per group per step, as a matrix.
pub async fn volume_range(State(s): State<ApiState>, Params(f): Params) -> Response {
    let (start, end) = match range_of(&f) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let limit = match volume_limit(&f) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let step = match f.get("step") {
        Some(v) => match parse_step(v) {
            Ok(s) => s,
            Err(e) => return bad(format!("invalid parameter \"step\": {e}")),
        },
        None => ((end - start) / 250).max(1_000_000_000),
    };
    let expr = match volume_expr(&f, step) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let steps = match Steps::new(start, end, step) {
        Ok(s) => s,
        Err(e) => return bad(format!("invalid parameters: {e}")),
    };
    volume_answer(&s, "loki_index_volume", expr, steps, false, limit).await
}

/// `GET /loki/api/v1/status/buildinfo`.
pub async fn buildinfo() -> Response {
    let mut m = BTreeMap::new();
    m.insert("version", LOKI_VERSION.to_string());
    m.insert("revision", format!("skein-{}", env!("CARGO_PKG_VERSION")));
    m.insert("branch", "main".to_string());
    m.insert("buildUser", String::new());
    m.insert("buildDate", String::new());
    m.insert("goVersion", String::new());
    json_text(serde_json::to_string(&m).unwrap_or_default())
}
