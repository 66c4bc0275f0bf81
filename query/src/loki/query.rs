//! `/loki/api/v1/query` and `/loki/api/v1/query_range`: log queries answer with streams,
//! metric queries with a vector, matrix or scalar, in Loki's envelope with its `stats`.

use super::logql::ast::Expr;
use super::metric::{Eval, Steps, Value};
use super::pipeline::Labels;
use super::scan::{self, DEFAULT_SCAN_BUDGET, ScanStats};
use super::{
    Params, bad, bad_boxed, from_api, json_text, limit_of, parse_step, parse_time, range_of,
};
use crate::QueryError;
use crate::api::{ApiState, run_blocking};
use crate::prom_api::render::{float, json_string};
use axum::extract::State;
use axum::response::Response;
use skein_store::search::TimeRange;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

/// Which end a log query starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Newest first (Loki's default).
    Backward,
    /// Oldest first.
    Forward,
}

fn direction(f: &crate::prom_api::params::Form) -> Result<Direction, Box<Response>> {
    match f.get("direction").map(str::to_ascii_lowercase).as_deref() {
        None | Some("backward") => Ok(Direction::Backward),
        Some("forward") => Ok(Direction::Forward),
        Some(other) => Err(bad_boxed(format!(
            "invalid parameter \"direction\": '{other}'; use forward or backward"
        ))),
    }
}

fn parsed(f: &crate::prom_api::params::Form) -> Result<Expr, Box<Response>> {
    let q = f.get("query").ok_or_else(|| {
        bad_boxed("missing parameter \"query\": give a LogQL query such as {service=\"checkout\"}")
    })?;
    super::logql::parse(q).map_err(|e| bad_boxed(format!("parse error: {e}")))
}

/// `GET|POST /loki/api/v1/query`: an instant query.
pub async fn instant(State(s): State<ApiState>, Params(f): Params) -> Response {
    let expr = match parsed(&f) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    if !expr.is_metric() {
        return bad(
            "log queries are not supported as an instant query type, please change your query to a range query type",
        );
    }
    let t = match f.get("time") {
        Some(v) => match parse_time(v) {
            Ok(t) => t,
            Err(e) => return bad(format!("invalid parameter \"time\": {e}")),
        },
        None => skein_model::time::now_unix_nano(),
    };
    let steps = Steps {
        start: t,
        step: 1,
        n: 1,
    };
    metric_answer(&s, "loki_query", expr, steps, true).await
}

/// `GET|POST /loki/api/v1/query_range`.
pub async fn range(State(s): State<ApiState>, Params(f): Params) -> Response {
    let expr = match parsed(&f) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let (start, end) = match range_of(&f) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    if let Expr::Log(log) = expr {
        let limit = match limit_of(&f) {
            Ok(l) => l,
            Err(r) => return *r,
        };
        let dir = match direction(&f) {
            Ok(d) => d,
            Err(r) => return *r,
        };
        let keys = s.keys.clone();
        let engine = s.engine.clone();
        let started = Instant::now();
        let out = run_blocking(&s, "loki_query_range", move || {
            let mut entries = Vec::new();
            let range = TimeRange { start, end };
            let stats = if dir == Direction::Backward {
                scan::scan(&engine, &keys, &log, range, DEFAULT_SCAN_BUDGET, |e| {
                    entries.push(e);
                    entries.len() < limit
                })?
            } else {
                // Forward: the oldest `limit` lines. The index reads newest first, so read
                // them all (within the scan budget) and keep the oldest.
                let st = scan::scan(&engine, &keys, &log, range, DEFAULT_SCAN_BUDGET, |e| {
                    entries.push(e);
                    true
                })?;
                entries.reverse();
                entries.truncate(limit);
                st
            };
            Ok::<_, QueryError>((entries, stats))
        })
        .await;
        return match out {
            Ok((entries, stats)) => json_text(streams_body(&entries, dir, &stats, started)),
            Err(e) => from_api(e),
        };
    }
    let step = match f.get("step").or(f.get("interval")) {
        Some(v) => match parse_step(v) {
            Ok(s) => s,
            Err(e) => return bad(format!("invalid parameter \"step\": {e}")),
        },
        // Loki's default: a 250th of the range, at least one second.
        None => ((end - start) / 250).max(1_000_000_000) / 1_000_000_000 * 1_000_000_000,
    };
    let steps = match Steps::new(start, end, step) {
        Ok(s) => s,
        Err(e) => return bad(format!("invalid parameters: {e}")),
    };
    metric_answer(&s, "loki_query_range", expr, steps, false).await
}

/// Evaluates a metric expression on a blocking thread under the query limits.
pub(super) async fn evaluate(
    s: &ApiState,
    route: &'static str,
    expr: Expr,
    steps: &Steps,
) -> Result<(Value, ScanStats), crate::api::ApiError> {
    let keys = s.keys.clone();
    let engine = s.engine.clone();
    let st = steps.clone();
    run_blocking(s, route, move || {
        let mut ev = Eval {
            engine: &engine,
            keys: &keys,
            budget: DEFAULT_SCAN_BUDGET,
            stats: ScanStats::default(),
        };
        let v = ev.eval(&expr, &st)?;
        Ok::<_, QueryError>((v, ev.stats))
    })
    .await
}

async fn metric_answer(
    s: &ApiState,
    route: &'static str,
    expr: Expr,
    steps: Steps,
    instant: bool,
) -> Response {
    let started = Instant::now();
    match evaluate(s, route, expr, &steps).await {
        Ok((v, stats)) => json_text(metric_body(&v, &steps, instant, &stats, started)),
        Err(e) => from_api(e),
    }
}

fn seconds(out: &mut String, ns: u64) {
    // Seconds with up to millisecond precision, as Loki writes sample times.
    let ms = ns / 1_000_000;
    crate::prom_api::render::time(out, ms as i64);
}

fn labels_json(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, (k, v)) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(k));
        out.push(':');
        out.push_str(&json_string(v));
    }
    out.push('}');
}

fn stats_json(out: &mut String, stats: &ScanStats, returned: usize, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    let per_sec = |n: usize| {
        if secs > 0.0 {
            (n as f64 / secs) as u64
        } else {
            0
        }
    };
    let _ = write!(
        out,
        "\"stats\":{{\"summary\":{{\"bytesProcessedPerSecond\":{},\"linesProcessedPerSecond\":{},\"totalBytesProcessed\":{},\"totalLinesProcessed\":{},\"execTime\":{},\"queueTime\":0,\"subqueries\":0,\"totalEntriesReturned\":{},\"splits\":0,\"shards\":0}}}}",
        per_sec(stats.bytes),
        per_sec(stats.read),
        stats.bytes,
        stats.read,
        secs,
        returned
    );
}

/// The streams answer: entries grouped by their full label set (stream labels, metadata and
/// extracted labels, as Loki answers without `categorize-labels`).
pub fn streams_body(
    entries: &[super::pipeline::Entry],
    dir: Direction,
    stats: &ScanStats,
    started: Instant,
) -> String {
    let mut streams: BTreeMap<Labels, Vec<(u64, &str)>> = BTreeMap::new();
    for e in entries {
        let mut l = e.labels.clone();
        for (k, v) in &e.metadata {
            l.entry(k.clone()).or_insert_with(|| v.clone());
        }
        streams
            .entry(l)
            .or_default()
            .push((e.time, e.line.as_str()));
    }
    let mut out =
        String::from("{\"status\":\"success\",\"data\":{\"resultType\":\"streams\",\"result\":[");
    for (i, (l, vals)) in streams.iter_mut().enumerate() {
        match dir {
            Direction::Backward => vals.sort_by_key(|v| std::cmp::Reverse(v.0)),
            Direction::Forward => vals.sort_by_key(|v| v.0),
        }
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"stream\":");
        labels_json(&mut out, l);
        out.push_str(",\"values\":[");
        for (j, (t, line)) in vals.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let _ = write!(out, "[\"{t}\",{}]", json_string(line));
        }
        out.push_str("]}");
    }
    out.push_str("],");
    stats_json(&mut out, stats, entries.len(), started);
    out.push_str("}}");
    out
}

/// The metric answer: a vector (instant), a matrix (range) or a scalar.
pub fn metric_body(
    v: &Value,
    steps: &Steps,
    instant: bool,
    stats: &ScanStats,
    started: Instant,
) -> String {
    let mut out = String::from("{\"status\":\"success\",\"data\":{");
    let mut returned = 0;
    match v {
        Value::Scalar(vals) if instant => {
            out.push_str("\"resultType\":\"scalar\",\"result\":[");
            seconds(&mut out, steps.start);
            let _ = write!(
                out,
                ",\"{}\"]",
                float(vals.first().copied().unwrap_or(f64::NAN))
            );
            returned = 1;
        }
        Value::Scalar(vals) => {
            out.push_str("\"resultType\":\"matrix\",\"result\":[{\"metric\":{},\"values\":[");
            for (i, x) in vals.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('[');
                seconds(&mut out, steps.at(i));
                let _ = write!(out, ",\"{}\"]", float(*x));
            }
            out.push_str("]}]");
            returned = 1;
        }
        Value::Vector(series) if instant => {
            out.push_str("\"resultType\":\"vector\",\"result\":[");
            let mut first = true;
            for (l, pts) in series {
                let Some(Some(x)) = pts.first() else { continue };
                if !first {
                    out.push(',');
                }
                first = false;
                returned += 1;
                out.push_str("{\"metric\":");
                labels_json(&mut out, l);
                out.push_str(",\"value\":[");
                seconds(&mut out, steps.start);
                let _ = write!(out, ",\"{}\"]}}", float(*x));
            }
            out.push(']');
        }
        Value::Vector(series) => {
            out.push_str("\"resultType\":\"matrix\",\"result\":[");
            let mut first = true;
            for (l, pts) in series {
                if pts.iter().all(Option::is_none) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                returned += 1;
                out.push_str("{\"metric\":");
                labels_json(&mut out, l);
                out.push_str(",\"values\":[");
                let mut f2 = true;
                for (i, p) in pts.iter().enumerate() {
                    let Some(x) = p else { continue };
                    if !f2 {
                        out.push(',');
                    }
                    f2 = false;
                    out.push('[');
                    seconds(&mut out, steps.at(i));
                    let _ = write!(out, ",\"{}\"]", float(*x));
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push(',');
    stats_json(&mut out, stats, returned, started);
    out.push_str("}}");
    out
}
