//! Evaluating a rule's condition against the stores: which label sets breach, and by what
//! value. Every kind reads only what it needs: metric rules one window of the metrics store,
//! log and trace rules a count over the tantivy indexes' fast fields, absence rules the agent
//! registry or the newest sample of each series.

use super::rules::{AbsentCond, Condition, LogCond, MetricCond, MetricRef, Rule, TraceCond};
use skein_model::alert_api::LabelSet;
use skein_query::QueryError;
use skein_query::engine::Engine;
use skein_query::metric_reads::MetricReads;
use skein_query::metrics::eval::Grid;
use skein_query::metrics::query::{MAX_SERIES, evaluate, resolve, select, stored_names};
use skein_store::agents::AgentRegistry;
use skein_store::search::{LogFilter, SpanFilter, TimeRange};
use skein_store::tsdb::Matcher;
use std::collections::HashMap;
use std::sync::Arc;

/// What conditions read.
#[derive(Clone)]
pub struct Sources {
    /// The metrics store.
    pub tsdb: Arc<dyn MetricReads>,
    /// Logs and spans.
    pub engine: Arc<Engine>,
    /// Agents and their heartbeats.
    pub agents: AgentRegistry,
}

/// A label set of the condition and its value.
pub type Breach = (LabelSet, f64);

/// The label sets for which the rule's condition holds at `now_ms`. `since_ms` is when the
/// rule began to be evaluated: absence of a series never seen counts from then.
pub fn evaluate_rule(
    rule: &Rule,
    src: &Sources,
    now_ms: i64,
    since_ms: i64,
) -> Result<Vec<Breach>, String> {
    match &rule.condition {
        Condition::Metric(c) => metric(c, src, now_ms),
        Condition::Logs(c) => logs(c, src, now_ms),
        Condition::Traces(c) => traces(c, src, now_ms),
        Condition::Absent(c) => absent(c, src, now_ms, since_ms),
    }
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn to_set(labels: &skein_model::metric::Labels) -> LabelSet {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pinned(matchers: &[Matcher]) -> impl Iterator<Item = (String, String)> + '_ {
    matchers
        .iter()
        .filter(|m| m.op == skein_store::tsdb::MatchOp::Eq && !m.value.is_empty())
        .map(|m| (m.label.clone(), m.value.clone()))
}

/// The last window's value per group of one metric reference. A metric with no data yet is
/// no breach, not an error.
fn values(
    r: &MetricRef,
    by: &[String],
    window_ms: i64,
    tsdb: &dyn MetricReads,
    now_ms: i64,
) -> Result<Vec<Breach>, String> {
    let target = match resolve(tsdb, &r.name) {
        Ok(t) => t,
        Err(QueryError::NotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let grid = Grid::single(now_ms, window_ms);
    let names = stored_names(&target.family, target.histogram, r.agg).map_err(|e| e.to_string())?;
    let mut series = Vec::new();
    for n in &names {
        series.extend(
            select(
                tsdb,
                n,
                &r.matchers,
                grid.select_start(),
                grid.last(),
                MAX_SERIES,
            )
            .map_err(|e| e.to_string())?,
        );
    }
    let out = evaluate(&target.family, target.histogram, r.agg, by, &grid, &series)
        .map_err(|e| e.to_string())?;
    Ok(out
        .into_iter()
        .filter_map(|s| {
            let (_, v) = *s.points.last()?;
            let mut l = to_set(&s.labels);
            l.extend(pinned(&r.matchers));
            Some((l, v))
        })
        .collect())
}

fn metric(c: &MetricCond, src: &Sources, now_ms: i64) -> Result<Vec<Breach>, String> {
    let window = ms(c.window);
    let num = values(&c.metric, &c.by, window, src.tsdb.as_ref(), now_ms)?;
    let out: Vec<Breach> = match &c.divide_by {
        None => num,
        Some(d) => {
            let den = values(d, &c.by, window, src.tsdb.as_ref(), now_ms)?;
            // Joined on the `by` labels, which both sides group by.
            let key = |l: &LabelSet| -> Vec<(String, String)> {
                c.by.iter()
                    .map(|b| (b.clone(), l.get(b).cloned().unwrap_or_default()))
                    .collect()
            };
            let den: HashMap<_, f64> = den.iter().map(|(l, v)| (key(l), *v)).collect();
            num.into_iter()
                .filter_map(|(l, v)| {
                    let d = *den.get(&key(&l))?;
                    (d != 0.0).then_some((l, v / d))
                })
                .collect()
        }
    };
    Ok(out.into_iter().filter(|(_, v)| c.when.holds(*v)).collect())
}

fn range(now_ms: i64, window_ms: i64) -> TimeRange {
    let ns = |ms: i64| u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000);
    TimeRange {
        start: ns(now_ms.saturating_sub(window_ms)),
        end: ns(now_ms),
    }
}

/// The counts that pass `when`, labelled with the fixed filter values and then the group's
/// values under the label names of `by`.
fn count_breaches(
    counts: skein_store::count::Counts,
    fixed: &[(&str, &Option<String>)],
    by: &[&str],
    when: &super::rules::Compare,
) -> Vec<Breach> {
    counts
        .groups
        .into_iter()
        .filter_map(|(vals, n)| {
            let mut l = LabelSet::new();
            for (name, v) in fixed {
                if let Some(v) = v {
                    l.insert(name.to_string(), v.clone());
                }
            }
            for (name, v) in by.iter().zip(vals) {
                l.insert(name.to_string(), v);
            }
            let v = n as f64;
            when.holds(v).then_some((l, v))
        })
        .collect()
}

fn logs(c: &LogCond, src: &Sources, now_ms: i64) -> Result<Vec<Breach>, String> {
    let filter = LogFilter {
        text: c.query.clone(),
        service: c.service.clone(),
        min_severity: c.min_severity,
        host: None,
    };
    let by: &[&str] = if c.by_service { &["service"] } else { &[] };
    let counts = src
        .engine
        .count_logs(&filter, range(now_ms, ms(c.window)), by)
        .map_err(|e| e.to_string())?;
    Ok(count_breaches(
        counts,
        &[("service", &c.service)],
        by,
        &c.when,
    ))
}

fn traces(c: &TraceCond, src: &Sources, now_ms: i64) -> Result<Vec<Breach>, String> {
    let filter = SpanFilter {
        service: c.service.clone(),
        operation: c.operation.clone(),
        min_duration: c
            .min_duration
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        max_duration: None,
        error: c.errors_only.then_some(true),
        tags: Vec::new(),
    };
    // Span names are the `name` field in the index and the `operation` label in alerts.
    let mut fields: Vec<&str> = Vec::new();
    let mut labels: Vec<&str> = Vec::new();
    if c.by_service {
        fields.push("service");
        labels.push("service");
    }
    if c.by_operation {
        fields.push("name");
        labels.push("operation");
    }
    let counts = src
        .engine
        .count_spans(&filter, range(now_ms, ms(c.window)), &fields)
        .map_err(|e| e.to_string())?;
    Ok(count_breaches(
        counts,
        &[("service", &c.service), ("operation", &c.operation)],
        &labels,
        &c.when,
    ))
}

fn absent(
    c: &AbsentCond,
    src: &Sources,
    now_ms: i64,
    since_ms: i64,
) -> Result<Vec<Breach>, String> {
    match c {
        AbsentCond::Heartbeat { matchers, after } => {
            let after_s = after.as_secs_f64();
            let mut out = Vec::new();
            for a in src.agents.list().agents {
                let labels = skein_model::metric::Labels::from_pairs([
                    ("agent", a.heartbeat.id.as_str()),
                    ("host", a.heartbeat.host.as_str()),
                ]);
                if a.silent_seconds >= after_s && matchers.iter().all(|m| m.matches(&labels)) {
                    out.push((to_set(&labels), a.silent_seconds));
                }
            }
            Ok(out)
        }
        AbsentCond::Series {
            metric,
            matchers,
            after,
            lookback,
        } => {
            let after = ms(*after);
            let start = now_ms.saturating_sub(ms(*lookback));
            let series = match src.tsdb.metric(metric) {
                Some(_) => select(
                    src.tsdb.as_ref(),
                    metric,
                    matchers,
                    start,
                    now_ms,
                    MAX_SERIES,
                )
                .map_err(|e| e.to_string())?,
                None => Vec::new(),
            };
            // NaN and infinite samples (staleness markers among them) are skipped as if
            // absent, as every metric view of Skein's own does.
            let mut out = Vec::new();
            for s in &series {
                let Some((ts, _)) = s.last_finite_at_or_before(now_ms) else {
                    continue;
                };
                let silent = now_ms - ts;
                if silent >= after {
                    out.push((to_set(&s.labels), silent as f64 / 1000.0));
                }
            }
            let any = series
                .iter()
                .any(|s| s.last_finite_at_or_before(now_ms).is_some());
            if !any && now_ms - since_ms >= after {
                // Nothing at all: one alert with the labels the matchers pin, as
                // Prometheus's absent() does.
                out.push((
                    pinned(matchers).collect(),
                    (now_ms - since_ms) as f64 / 1000.0,
                ));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
#[path = "cond_tests.rs"]
mod tests;
