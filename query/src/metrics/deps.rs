//! The dependency graph over a time range, from the span-derived edge series:
//! `skein.edge.calls`, `skein.edge.errors` (counters) and the histogram `skein.edge.duration`
//! (ms), labels `{caller, callee, kind, callee_type}`.
//!
//! The whole range is one window: counts are counter increases over it, percentiles come from
//! the bucket increases. Edges without calls in the range are left out. Services whose
//! `skein.span.calls` have a sample in the range are nodes even without edges.

use super::eval::{Grid, Op, aggregate, bucket_quantiles, group};
use super::query::select;
use super::services::{CALLS, MAX_DERIVED_SERIES};
use crate::QueryError;
use crate::metric_reads::MetricReads;
use skein_model::metrics_api::{DepEdge, DepNode, DependenciesResponse};
use skein_store::tsdb::SelectedSeries;
use std::collections::BTreeMap;

/// Calls per edge (counter).
pub const EDGE_CALLS: &str = "skein.edge.calls";
/// Failed calls per edge (counter).
pub const EDGE_ERRORS: &str = "skein.edge.errors";
/// Buckets of the edge duration histogram (ms, as the caller timed it).
pub const EDGE_DURATION_BUCKET: &str = "skein.edge.duration_bucket";
/// Range when `start` is not given: 15 minutes before `end`.
pub const DEFAULT_RANGE_MS: i64 = 15 * 60_000;

/// The labels that name an edge.
const EDGE_LABELS: [&str; 4] = ["caller", "callee", "kind", "callee_type"];

/// The series the graph is built from.
#[derive(Debug, Clone, Default)]
pub struct EdgeSeries {
    /// `skein.edge.calls`.
    pub calls: Vec<SelectedSeries>,
    /// `skein.edge.errors`.
    pub errors: Vec<SelectedSeries>,
    /// `skein.edge.duration_bucket`.
    pub buckets: Vec<SelectedSeries>,
    /// `skein.span.calls` (for services without edges).
    pub span_calls: Vec<SelectedSeries>,
}

#[derive(Default)]
struct NodeAcc {
    instrumented: bool,
    calls: f64,
    /// Calls received per callee type.
    types: BTreeMap<String, f64>,
}

fn whole(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        x.round() as u64
    } else {
        0
    }
}

/// Builds the graph of `(start, end]`.
pub fn dependencies(
    input: &EdgeSeries,
    start_ms: i64,
    end_ms: i64,
) -> Result<DependenciesResponse, QueryError> {
    let grid = Grid::single(end_ms, end_ms - start_ms);
    let by: Vec<String> = EDGE_LABELS.iter().map(|s| s.to_string()).collect();
    let calls = aggregate(Op::Increase, &group(&input.calls, &by), &grid)?;
    let errors = aggregate(Op::Increase, &group(&input.errors, &by), &grid)?;
    let pct = bucket_quantiles(
        &group(&input.buckets, &by),
        &grid,
        &[0.5, 0.9, 0.95, 0.99],
        usize::MAX,
    )?;
    let mut nodes: BTreeMap<String, NodeAcc> = BTreeMap::new();
    let mut edges = Vec::new();
    for (g, labels) in calls.groups.iter().enumerate() {
        let (Some(caller), Some(callee)) = (labels.get("caller"), labels.get("callee")) else {
            continue;
        };
        let n = whole(calls.get(g, 0).unwrap_or(0.0));
        if n == 0 {
            continue;
        }
        let e = whole(errors.lookup(labels, 0).unwrap_or(0.0)).min(n);
        let kind = labels.get("kind").unwrap_or("");
        let callee_type = labels.get("callee_type").unwrap_or("service");
        let p = |i: usize| pct.get(i).and_then(|t| t.lookup(labels, 0));
        edges.push(DepEdge {
            caller: caller.to_string(),
            callee: callee.to_string(),
            kind: kind.to_string(),
            callee_type: callee_type.to_string(),
            calls: n,
            errors: e,
            error_rate: e as f64 / n as f64,
            p50_ms: p(0),
            p90_ms: p(1),
            p95_ms: p(2),
            p99_ms: p(3),
        });
        nodes.entry(caller.to_string()).or_default().instrumented = true;
        let c = nodes.entry(callee.to_string()).or_default();
        c.calls += n as f64;
        *c.types.entry(callee_type.to_string()).or_default() += n as f64;
    }
    edges.sort_by(|a, b| {
        (&a.caller, &a.callee, &a.kind, &a.callee_type).cmp(&(
            &b.caller,
            &b.callee,
            &b.kind,
            &b.callee_type,
        ))
    });
    let seen = aggregate(
        Op::Count,
        &group(&input.span_calls, &["service".to_string()]),
        &grid,
    )?;
    for (g, labels) in seen.groups.iter().enumerate() {
        if let Some(s) = labels.get("service")
            && seen.get(g, 0).is_some()
        {
            nodes.entry(s.to_string()).or_default().instrumented = true;
        }
    }
    let nodes = nodes
        .into_iter()
        .map(|(name, acc)| {
            let node_type = if acc.instrumented {
                "service".to_string()
            } else {
                acc.types
                    .iter()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or_else(|| "external".to_string(), |(t, _)| t.clone())
            };
            DepNode {
                name,
                node_type,
                instrumented: acc.instrumented,
                calls: whole(acc.calls),
            }
        })
        .collect();
    Ok(DependenciesResponse {
        start_ms,
        end_ms,
        nodes,
        edges,
    })
}

/// Reads the series of the graph of `(start, end]`.
pub fn load(tsdb: &dyn MetricReads, start_ms: i64, end_ms: i64) -> Result<EdgeSeries, QueryError> {
    let grid = Grid::single(end_ms, end_ms - start_ms);
    let from = grid.select_start();
    let read = |name: &str, from: i64| select(tsdb, name, &[], from, end_ms, MAX_DERIVED_SERIES);
    Ok(EdgeSeries {
        calls: read(EDGE_CALLS, from)?,
        errors: read(EDGE_ERRORS, from)?,
        buckets: read(EDGE_DURATION_BUCKET, from)?,
        span_calls: read(CALLS, start_ms + 1)?,
    })
}

/// `GET /api/v1/dependencies`: start must be before end.
pub fn run(
    tsdb: &dyn MetricReads,
    start_ms: i64,
    end_ms: i64,
) -> Result<DependenciesResponse, QueryError> {
    if start_ms >= end_ms {
        return Err(QueryError::BadRequest(
            "start must be before end: the graph covers the calls between them".into(),
        ));
    }
    let input = load(tsdb, start_ms, end_ms)?;
    dependencies(&input, start_ms, end_ms)
}
