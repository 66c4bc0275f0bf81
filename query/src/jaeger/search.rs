//! What the Jaeger routes ask of the engine and the metrics store: services, operations,
//! trace search, one trace by any key, dependencies. Each runs on a blocking thread.

use super::convert::{self, JaegerTrace};
use crate::QueryError;
use crate::engine::{Engine, tree_order};
use crate::metric_reads::MetricReads;
use crate::reads::{Read, ReadResult};
use serde::Serialize;
use skein_model::Span;
use skein_model::api::TraceResponse;
use skein_store::search::{SpanFilter, TimeRange};
use std::collections::{BTreeMap, BTreeSet};

/// Services and operations are the ones with spans in this window before now: 1 day (plus,
/// for services, every service the span metrics have a series of).
pub const SEEN_WINDOW_NS: u64 = 24 * 3600 * 1_000_000_000;

/// The span kinds Jaeger's `spanKind` names, as Skein stores them.
pub const SPAN_KINDS: [&str; 5] = ["server", "client", "producer", "consumer", "internal"];

/// An operation of `/api/operations`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// The span name.
    pub name: String,
    /// `server`, `client`, `producer`, `consumer`, `internal` or empty.
    pub span_kind: String,
}

/// An edge of `/api/dependencies`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// The caller.
    pub parent: String,
    /// What it called.
    pub child: String,
    /// Calls in the window.
    pub call_count: u64,
}

fn seen_window(now_ns: u64) -> TimeRange {
    TimeRange {
        start: now_ns.saturating_sub(SEEN_WINDOW_NS),
        end: u64::MAX,
    }
}

fn first_values(counts: skein_store::count::Counts) -> BTreeSet<String> {
    counts
        .groups
        .into_iter()
        .filter_map(|(values, _)| values.into_iter().next())
        .filter(|v| !v.is_empty())
        .collect()
}

/// Service names, sorted: services with spans in the last [`SEEN_WINDOW_NS`] and services
/// the span metrics have series of.
pub fn services(
    engine: &Engine,
    tsdb: &dyn MetricReads,
    now_ns: u64,
) -> Result<Vec<String>, QueryError> {
    let counted = engine.count_spans(&SpanFilter::default(), seen_window(now_ns), &["service"])?;
    let mut names = first_values(counted);
    names.extend(tsdb.label_values("service", Some(crate::metrics::services::CALLS)));
    Ok(names.into_iter().collect())
}

/// Operation names of a service with spans in the last [`SEEN_WINDOW_NS`], with their kind
/// when `with_kinds` (one count per kind) or only of `kind` when given.
pub fn operations(
    engine: &Engine,
    service: &str,
    kind: Option<&str>,
    with_kinds: bool,
    now_ns: u64,
) -> Result<Vec<Operation>, QueryError> {
    let count = |kind: Option<&str>| {
        let filter = SpanFilter {
            service: Some(service.to_string()),
            tags: kind
                .map(|k| vec![("span.kind".to_string(), k.to_string())])
                .unwrap_or_default(),
            ..Default::default()
        };
        engine
            .count_spans(&filter, seen_window(now_ns), &["name"])
            .map(first_values)
    };
    let mut out = BTreeSet::new();
    match (kind, with_kinds) {
        (Some(k), _) => {
            for name in count(Some(k))? {
                out.insert(Operation {
                    name,
                    span_kind: k.to_string(),
                });
            }
        }
        (None, true) => {
            let mut kinded = BTreeSet::new();
            for k in SPAN_KINDS {
                for name in count(Some(k))? {
                    kinded.insert(name.clone());
                    out.insert(Operation {
                        name,
                        span_kind: k.to_string(),
                    });
                }
            }
            // Spans of no known kind (unspecified) are listed with an empty kind.
            for name in count(None)? {
                if !kinded.contains(&name) {
                    out.insert(Operation {
                        name,
                        span_kind: String::new(),
                    });
                }
            }
        }
        (None, false) => {
            for name in count(None)? {
                out.insert(Operation {
                    name,
                    span_kind: String::new(),
                });
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// The spans of one trace a search found, in tree order.
#[derive(Debug, Clone)]
pub struct FoundTrace {
    /// The trace ID.
    pub trace_id: String,
    /// Its spans, parents before children.
    pub spans: Vec<Span>,
    /// Notes on the answer (the read was cut); empty when there are none.
    pub warnings: Vec<String>,
}

/// A trace search: the newest traces (at most `limit`) with a span matching `filter` in
/// `range`, each whole, newest first.
pub fn find_traces(
    engine: &Engine,
    filter: &SpanFilter,
    range: TimeRange,
    limit: usize,
) -> Result<Vec<JaegerTrace>, QueryError> {
    Ok(find_trace_spans(engine, filter, range, limit)?
        .into_iter()
        .map(|t| convert::trace(&t.trace_id, &t.spans, &[], t.warnings))
        .collect())
}

/// The spans of [`find_traces`], before conversion (the v3 routes convert them to OTLP).
pub fn find_trace_spans(
    engine: &Engine,
    filter: &SpanFilter,
    range: TimeRange,
    limit: usize,
) -> Result<Vec<FoundTrace>, QueryError> {
    // Several matching spans often share a trace: read more spans than traces wanted, as
    // the engine's own trace search does.
    let span_limit = limit.saturating_mul(20).clamp(100, 20_000);
    let found = match engine.reads().read(&Read::SearchSpans {
        filter: filter.clone(),
        range,
        limit: span_limit,
    })? {
        ReadResult::Spans { found } => found,
        _ => return Err(wrong()),
    };
    let mut ids: Vec<String> = Vec::new();
    // Checked again here: a node that predates tags ignores them in its index query.
    for s in found.records.iter().filter(|s| filter.matches_tags(s)) {
        if ids.len() >= limit {
            break;
        }
        if !ids.contains(&s.trace_id) {
            ids.push(s.trace_id.clone());
        }
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let per_trace = engine.limits().max_trace_records;
    let all = match engine.reads().read(&Read::SpansByTraceIds {
        ids: ids.clone(),
        limit: per_trace.saturating_mul(ids.len()),
    })? {
        ReadResult::Spans { found } => found,
        _ => return Err(wrong()),
    };
    let mut per: BTreeMap<String, Vec<Span>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for s in all.records {
        if seen.insert((s.trace_id.clone(), s.span_id.clone())) {
            per.entry(s.trace_id.clone()).or_default().push(s);
        }
    }
    let mut traces: Vec<(u64, FoundTrace)> = Vec::with_capacity(ids.len());
    for id in ids {
        let spans = tree_order(per.remove(&id).unwrap_or_default());
        let start = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
        let mut warnings = Vec::new();
        if all.truncated {
            warnings.push(cut_warning(per_trace));
        }
        traces.push((
            start,
            FoundTrace {
                trace_id: id,
                spans,
                warnings,
            },
        ));
    }
    traces.sort_by_key(|(start, _)| std::cmp::Reverse(*start));
    Ok(traces.into_iter().map(|(_, t)| t).collect())
}

fn cut_warning(max: usize) -> String {
    format!(
        "the answer was cut at {max} records (query.max_trace_records); some spans or log lines are missing"
    )
}

fn wrong() -> QueryError {
    QueryError::Internal("a store read answered with the wrong kind".into())
}

/// One trace by trace ID or any correlation key (a request ID), with its log records as
/// span logs. None when no span carries the key or its trace.
pub fn trace_by_key(engine: &Engine, key: &str) -> Result<Option<JaegerTrace>, QueryError> {
    Ok(trace_response_by_key(engine, key)?
        .map(|(t, warnings)| convert::trace(&t.trace_id, &t.spans, &t.logs, warnings)))
}

/// The engine's answer for a key (spans in tree order and the log records), with the
/// warnings of [`trace_by_key`]; None when no span carries the key or its trace.
pub fn trace_response_by_key(
    engine: &Engine,
    key: &str,
) -> Result<Option<(TraceResponse, Vec<String>)>, QueryError> {
    let Some(t) = engine.trace(key)? else {
        return Ok(None);
    };
    if t.spans.is_empty() {
        return Ok(None);
    }
    let mut warnings = Vec::new();
    let traces: BTreeSet<&str> = t.spans.iter().map(|s| s.trace_id.as_str()).collect();
    if traces.len() > 1 {
        warnings.push(format!(
            "the key '{key}' joins {} traces ({}); their spans are shown together",
            traces.len(),
            traces.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if t.truncated {
        warnings.push(cut_warning(engine.limits().max_trace_records));
    }
    Ok(Some((t, warnings)))
}

/// The service graph of `(start_ms, end_ms]` from the span-derived edge series: calls per
/// caller and callee, summed over the kinds of call.
pub fn dependencies(
    tsdb: &dyn MetricReads,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<Dependency>, QueryError> {
    let graph = crate::metrics::deps::run(tsdb, start_ms, end_ms)?;
    let mut calls: BTreeMap<(String, String), u64> = BTreeMap::new();
    for e in graph.edges {
        *calls.entry((e.caller, e.callee)).or_default() += e.calls;
    }
    Ok(calls
        .into_iter()
        .map(|((parent, child), call_count)| Dependency {
            parent,
            child,
            call_count,
        })
        .collect())
}
