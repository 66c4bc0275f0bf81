//! One evaluation of a group, as Prometheus's rule manager makes it: the rules in file order,
//! all at the same time, a recording rule's series written before the next rule runs.
//!
//! An alerting rule's every output sample is one alert: the sample's labels (without
//! `__name__`), then the rule's labels (templates, rendered with the sample's `$labels`,
//! `$value` and `$externalLabels`; one that renders empty is removed), then `alertname`.
//! Annotations are rendered the same way. The states, `for` and `keep_firing_for` are the
//! TOML rules' ([`crate::state`]). A recording rule writes each sample as a series named by
//! `record`, with the sample's labels and the rule's labels, as a gauge.
//!
//! As in Prometheus, a rule fails (and writes or changes nothing) when two samples end with
//! the same labels, or when it gives more alerts or series than its group's `limit`.

use super::{PromGroup, PromKind, PromQuery, PromRule, RecordSink};
use crate::state::Found;
use skein_model::alert_api::LabelSet;
use skein_model::metric::{Labels, MetricBatch, MetricKind, SeriesSpec};
use std::collections::{BTreeMap, BTreeSet};

/// What one rule's evaluation gave.
pub enum Outcome {
    /// An alerting rule: the alerts its expression returned.
    Alerts(Vec<Found>),
    /// A recording rule: the number of series written.
    Recorded(usize),
}

/// What an evaluation reads and writes.
pub struct EvalContext<'a> {
    /// The PromQL engine; None until the collector connects one.
    pub query: Option<&'a dyn PromQuery>,
    /// Where recording rules write; None until the collector connects one.
    pub sink: Option<&'a dyn RecordSink>,
    /// `$externalLabels`.
    pub external: &'a BTreeMap<String, String>,
}

/// Evaluates every rule of `group` at `t_ms`, in order: one result per rule.
pub fn evaluate_group(
    group: &PromGroup,
    cx: &EvalContext<'_>,
    t_ms: i64,
) -> Vec<Result<Outcome, String>> {
    group
        .rules
        .iter()
        .map(|r| evaluate_rule(r, group.limit, cx, t_ms))
        .collect()
}

/// Evaluates one rule at `t_ms`; `limit` bounds its alerts or series (0: none).
pub fn evaluate_rule(
    rule: &PromRule,
    limit: usize,
    cx: &EvalContext<'_>,
    t_ms: i64,
) -> Result<Outcome, String> {
    let Some(query) = cx.query else {
        return Err("no PromQL engine is connected to the alert engine".to_string());
    };
    let samples = query.instant(&rule.expr, t_ms)?;
    match rule.kind {
        PromKind::Alerting => alerts(rule, samples, cx.external, limit).map(Outcome::Alerts),
        PromKind::Recording => {
            let batch = record_batch(rule, samples, t_ms, limit)?;
            let n = batch.series.len();
            if n > 0 {
                let Some(sink) = cx.sink else {
                    return Err("no metrics store is connected for recording rules".to_string());
                };
                sink.append(batch)?;
            }
            Ok(Outcome::Recorded(n))
        }
    }
}

/// The alerts of an alerting rule's samples.
pub fn alerts(
    rule: &PromRule,
    samples: Vec<(Labels, f64)>,
    external: &BTreeMap<String, String>,
    limit: usize,
) -> Result<Vec<Found>, String> {
    let mut out = Vec::with_capacity(samples.len());
    let mut seen = BTreeSet::new();
    for (labels, value) in samples {
        let data: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut set: LabelSet = data
            .iter()
            .filter(|(k, _)| k.as_str() != "__name__")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, t) in &rule.label_templates {
            let v = t.render_with(&data, value, external);
            if v.is_empty() {
                set.remove(k);
            } else {
                set.insert(k.clone(), v);
            }
        }
        set.insert("alertname".to_string(), rule.name.clone());
        if !seen.insert(set.clone()) {
            return Err(
                "vector contains metrics with the same labelset after applying alert labels"
                    .to_string(),
            );
        }
        let annotations = rule
            .annotations
            .iter()
            .map(|(k, t)| (k.clone(), t.render_with(&data, value, external)))
            .collect();
        out.push(Found {
            labels: set,
            value,
            annotations,
        });
    }
    if limit > 0 && out.len() > limit {
        return Err(format!(
            "exceeded limit of {limit} with {} alerts",
            out.len()
        ));
    }
    Ok(out)
}

/// The series a recording rule writes for its samples at `t_ms`, NaN and infinities
/// included (the store keeps them, as Prometheus does).
pub fn record_batch(
    rule: &PromRule,
    samples: Vec<(Labels, f64)>,
    t_ms: i64,
    limit: usize,
) -> Result<MetricBatch, String> {
    if limit > 0 && samples.len() > limit {
        return Err(format!(
            "exceeded limit of {limit} with {} series",
            samples.len()
        ));
    }
    let mut batch = MetricBatch::default();
    let mut seen = BTreeSet::new();
    for (labels, value) in samples {
        let labels = Labels::from_pairs(
            labels
                .iter()
                .filter(|(k, _)| *k != "__name__")
                .chain(rule.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        );
        if !seen.insert(labels.clone()) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels"
                    .to_string(),
            );
        }
        let i = batch.add_series(SeriesSpec {
            name: rule.name.clone(),
            labels,
            kind: MetricKind::Gauge,
            unit: String::new(),
            delta: false,
        });
        batch.push(i, t_ms, value);
    }
    Ok(batch)
}
