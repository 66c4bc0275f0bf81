//! Prometheus rule files in the alert engine: `alerts.rule_files` read when changed (a
//! refused file keeps its last good groups running and is read again every 30 s, as the TOML
//! files are), each group evaluated every `interval` (default `alerts.eval_interval`)
//! through the connected PromQL engine, and the alerts put through the same states as the
//! TOML rules' (so silences, inhibition, notifications and the outbox treat them alike).
//!
//! A rule's state key is its file, group, name and labels, so rules of the same name in other
//! groups or files keep their alerts apart, and an edited file keeps the alerts of the rules
//! it still has.

use super::{AlertEngine, Health, Inner, RETRY_BAD_FILES_MS, ms};
use crate::promrules::eval::{EvalContext, Outcome, evaluate_group};
use crate::promrules::{PromGroup, PromKind, PromQuery, RecordSink, expand_rule_files};
use crate::promrules::{load_prom_file, names::fmt_prom_duration};
use crate::rule_types::RuleError;
use crate::state::{Timing, rule_key};
use skein_model::alert_api::{AlertState, AlertTransition, RuleInfo};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// The PromQL engine and the store recording rules write to, as the collector connects them.
pub(crate) struct PromConn {
    query: Arc<dyn PromQuery>,
    sink: Arc<dyn RecordSink>,
}

struct PromFile {
    mtime: Option<SystemTime>,
    groups: Vec<Arc<PromGroup>>,
    errors: Vec<RuleError>,
    read_ms: i64,
}

/// The loaded Prometheus rule files and when each group last ran.
#[derive(Default)]
pub(crate) struct PromState {
    files: BTreeMap<PathBuf, PromFile>,
    list_error: Option<RuleError>,
    /// Last evaluation of each group, by (file, group name).
    last: HashMap<(PathBuf, String), i64>,
}

impl PromState {
    /// Every loaded group, in file order.
    pub(crate) fn groups(&self) -> Vec<Arc<PromGroup>> {
        self.files.values().flat_map(|f| f.groups.clone()).collect()
    }

    /// The refused files' errors.
    pub(crate) fn errors(&self) -> Vec<RuleError> {
        self.list_error
            .iter()
            .cloned()
            .chain(self.files.values().flat_map(|f| f.errors.clone()))
            .collect()
    }
}

/// The state key of each rule of a group; a rule repeated in the group (same name and
/// labels) gets `#2`, `#3`, ...
pub(crate) fn group_keys(g: &PromGroup) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    g.rules
        .iter()
        .map(|r| {
            let base = format!(
                "{}#{}#{}",
                g.file.display(),
                g.name,
                rule_key(&r.name, &r.labels)
            );
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            match *n {
                1 => base,
                n => format!("{base}#{n}"),
            }
        })
        .collect()
}

/// One rule's evaluation: its key, group, index in the group, result and seconds taken.
type Evaluated = (String, Arc<PromGroup>, usize, Result<Outcome, String>, f64);

/// What one round evaluated, and the keys of every loaded rule.
pub(crate) struct PromRound {
    live: Vec<String>,
    results: Vec<Evaluated>,
}

impl AlertEngine {
    /// Connects the PromQL engine that evaluates the Prometheus rules, and the store their
    /// recording rules write to. Until it is called those rules are loaded and listed, and
    /// each evaluation fails saying that no engine is connected. The first connection stays;
    /// false when one was already made.
    pub fn connect_promql(&self, query: Arc<dyn PromQuery>, sink: Arc<dyn RecordSink>) -> bool {
        self.shared.prom.set(PromConn { query, sink }).is_ok()
    }

    /// Reads the Prometheus rule files that are new, changed, or had errors a while ago.
    pub(super) fn prom_reload(&self, now: i64) {
        let files = match expand_rule_files(&self.shared.plan.rule_files) {
            Ok(f) => {
                self.lock().prom.list_error = None;
                f
            }
            Err(e) => {
                let mut g = self.lock();
                if g.prom.list_error.as_ref() != Some(&e) {
                    tracing::error!(error = %e, "rule_files unreadable");
                }
                g.prom.list_error = Some(e);
                return;
            }
        };
        let mut read = Vec::new();
        {
            let g = self.lock();
            for f in &files {
                let mtime = std::fs::metadata(f).and_then(|m| m.modified()).ok();
                let stale = g.prom.files.get(f).is_none_or(|s| {
                    s.mtime != mtime
                        || (!s.errors.is_empty() && now - s.read_ms >= RETRY_BAD_FILES_MS)
                });
                if stale {
                    read.push((f.clone(), mtime));
                }
            }
        }
        let read: Vec<_> = read
            .into_iter()
            .map(|(f, mtime)| {
                let result = load_prom_file(&f);
                (f, mtime, result)
            })
            .collect();
        let mut g = self.lock();
        g.prom.files.retain(|f, _| files.contains(f));
        for (f, mtime, result) in read {
            let old = g.prom.files.get(&f);
            let st = match result {
                Ok(groups) => {
                    let rules: usize = groups.iter().map(|g| g.rules.len()).sum();
                    tracing::info!(file = %f.display(), groups = groups.len(), rules, "Prometheus rule file loaded");
                    PromFile {
                        mtime,
                        groups: groups.into_iter().map(Arc::new).collect(),
                        errors: Vec::new(),
                        read_ms: now,
                    }
                }
                Err(errors) => {
                    if old.is_none_or(|o| o.errors != errors) {
                        for e in &errors {
                            tracing::error!(error = %e, "Prometheus rule file refused");
                        }
                    }
                    // A file that was good keeps its last good groups running.
                    PromFile {
                        mtime,
                        groups: old.map(|o| o.groups.clone()).unwrap_or_default(),
                        errors,
                        read_ms: now,
                    }
                }
            };
            g.prom.files.insert(f, st);
        }
        let live: HashSet<(PathBuf, String)> = g
            .prom
            .groups()
            .iter()
            .map(|gr| (gr.file.clone(), gr.name.clone()))
            .collect();
        g.prom.last.retain(|k, _| live.contains(k));
    }

    /// Evaluates the groups that are due (outside the engine's lock).
    pub(super) fn prom_evaluate(&self, now: i64) -> PromRound {
        let groups = self.lock().prom.groups();
        let plan = &self.shared.plan;
        let conn = self.shared.prom.get();
        let cx = EvalContext {
            query: conn.map(|c| c.query.as_ref()),
            sink: conn.map(|c| c.sink.as_ref()),
            external: &plan.external_labels,
        };
        let mut round = PromRound {
            live: Vec::new(),
            results: Vec::new(),
        };
        for group in groups {
            let keys = group_keys(&group);
            round.live.extend(keys.iter().cloned());
            let interval = ms(group.interval.unwrap_or(plan.eval_interval));
            let id = (group.file.clone(), group.name.clone());
            let last = self.lock().prom.last.get(&id).copied();
            // A little early still counts (a tenth of the interval, at most a second), so that
            // a round that starts a moment before the group's time does not push the group a
            // whole interval on.
            let slack = (interval / 10).min(1_000);
            if last.is_some_and(|l| now - l < interval - slack) {
                continue;
            }
            self.lock().prom.last.insert(id, now);
            let t0 = Instant::now();
            for (i, res) in evaluate_group(&group, &cx, now).into_iter().enumerate() {
                let key = keys.get(i).cloned().unwrap_or_default();
                let secs = t0.elapsed().as_secs_f64();
                round.results.push((key, group.clone(), i, res, secs));
            }
        }
        round
    }

    /// Applies a round's results to the states; adds every loaded rule's key to `live`.
    pub(super) fn prom_apply(
        &self,
        g: &mut Inner,
        round: PromRound,
        now: i64,
        live: &mut HashSet<String>,
    ) -> Vec<AlertTransition> {
        live.extend(round.live);
        let max_alerts = self.shared.plan.max_alerts;
        let mut changes = Vec::new();
        let (mut ok, mut failed) = (0, 0);
        for (key, group, i, res, secs) in round.results {
            let Some(rule) = group.rules.get(i) else {
                continue;
            };
            let mut health = Health {
                last_ms: Some(now),
                seconds: secs,
                error: None,
            };
            match res {
                Ok(Outcome::Alerts(found)) => {
                    let timing = Timing {
                        for_ms: ms(rule.for_),
                        keep_firing_for_ms: ms(rule.keep_firing_for),
                    };
                    let (c, left_out) = g
                        .states
                        .apply(&key, &rule.name, timing, found, now, max_alerts);
                    if left_out > 0 {
                        health.error = Some(format!(
                            "{left_out} label sets not tracked: alerts.max_alerts ({max_alerts}) reached"
                        ));
                    }
                    changes.extend(c);
                }
                Ok(Outcome::Recorded(_)) => {}
                Err(e) => {
                    // States stay as they were: an error is not a resolution.
                    if g.health.get(&key).and_then(|h| h.error.as_ref()) != Some(&e) {
                        tracing::warn!(rule = %rule.name, group = %group.name, file = %group.file.display(), error = %e, "rule evaluation failed");
                    }
                    health.error = Some(e);
                }
            }
            match health.error {
                Some(_) => failed += 1,
                None => ok += 1,
            }
            g.health.insert(key, health);
        }
        self.shared.telemetry.alert_evaluations(ok, failed);
        changes
    }

    /// The Prometheus rules for `GET /api/v1/rules`, with their group.
    pub(crate) fn prom_rule_infos(&self, g: &Inner, name: Option<&String>) -> Vec<RuleInfo> {
        let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
        for a in g.states.alerts.values() {
            let c = counts.entry(a.rule_key.as_str()).or_default();
            match a.state {
                AlertState::Pending => c.0 += 1,
                AlertState::Firing => c.1 += 1,
                _ => {}
            }
        }
        let mut out = Vec::new();
        for group in g.prom.groups() {
            for (rule, key) in group.rules.iter().zip(group_keys(&group)) {
                if name.is_some_and(|n| *n != rule.name) {
                    continue;
                }
                let h = g.health.get(&key).cloned().unwrap_or_default();
                let (pending, firing) = counts.get(key.as_str()).copied().unwrap_or_default();
                let alerting = rule.kind == PromKind::Alerting;
                out.push(RuleInfo {
                    name: rule.name.clone(),
                    file: group.file.display().to_string(),
                    line: rule.line,
                    kind: rule.kind_name().into(),
                    condition: rule.expr.split_whitespace().collect::<Vec<_>>().join(" "),
                    for_duration: fmt_prom_duration(rule.for_),
                    keep_firing_for: fmt_prom_duration(rule.keep_firing_for),
                    labels: rule.labels.clone(),
                    health: match (&h.last_ms, &h.error) {
                        (None, _) => "unknown",
                        (Some(_), Some(_)) => "err",
                        (Some(_), None) => "ok",
                    }
                    .into(),
                    last_error: h.error,
                    last_evaluation_ms: h.last_ms,
                    evaluation_seconds: h.seconds,
                    pending: if alerting { pending } else { 0 },
                    firing: if alerting { firing } else { 0 },
                    group: Some(group.name.clone()),
                });
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "engine_prom_tests.rs"]
mod tests;
