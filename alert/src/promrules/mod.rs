//! Prometheus rule files (YAML), loaded beside Skein's TOML rules.
//!
//! A file is `groups: [{name, interval?, limit?, rules: [{alert|record, expr, for?,
//! keep_firing_for?, labels?, annotations?}]}]`, checked as `promtool check rules` (2.42)
//! checks it, every error naming the file and line (and the group and rule). Alerting rules
//! run through the same states, silences, notifications and outbox as the TOML rules;
//! recording rules write their results back as new series.
//!
//! - `yaml` (private): the YAML tree with lines (`saphyr-parser`'s events).
//! - [`names`]: metric and label names, Prometheus durations.
//! - [`parse`]: the checks, into [`PromGroup`]s and [`PromRule`]s.
//! - [`files`]: `alerts.rule_files` globs, expanded and loaded.
//! - [`eval`]: one evaluation of a group through a [`PromQuery`], recording through a
//!   [`RecordSink`].
//!
//! The engine (`skein_query::promql`) and the metrics store are reached only through the
//! two traits below, which the collector connects ([`crate::AlertEngine::connect_promql`]).

pub mod eval;
pub mod files;
mod link;
pub mod names;
pub mod parse;
mod yaml;

pub use files::{expand_rule_files, load_rule_files};
pub use parse::{duplicate_rules, load_prom_file, parse_prom_rules};

use super::template::Template;
use skein_model::metric::{Labels, MetricBatch};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Instant queries in PromQL, as the alert engine asks them.
pub trait PromQuery: Send + Sync {
    /// Evaluates `expr` at `t_ms` (Unix ms): each output sample's labels and value. A scalar
    /// result is one sample with no labels. The error is the engine's message.
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String>;
}

/// Where recording rules write their results (the metrics store).
pub trait RecordSink: Send + Sync {
    /// Stores the samples of one batch.
    fn append(&self, batch: MetricBatch) -> Result<(), String>;
}

/// A group of rules, evaluated in order at one time every `interval`.
#[derive(Debug, Clone)]
pub struct PromGroup {
    /// Group name, unique in its file.
    pub name: String,
    /// File it came from.
    pub file: PathBuf,
    /// 1-based line where the group starts.
    pub line: usize,
    /// How often it is evaluated; None: the engine's `alerts.eval_interval`.
    pub interval: Option<Duration>,
    /// Most alerts (or series) one rule may produce; 0 for no limit.
    pub limit: usize,
    /// Its rules, in file order.
    pub rules: Vec<PromRule>,
}

/// Whether a rule alerts or records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromKind {
    /// `alert:`
    Alerting,
    /// `record:`
    Recording,
}

/// One rule of a group.
#[derive(Debug, Clone)]
pub struct PromRule {
    /// Alerting or recording.
    pub kind: PromKind,
    /// The alert name, or the recorded series' name.
    pub name: String,
    /// The PromQL expression, as written.
    pub expr: String,
    /// 1-based line where the rule starts.
    pub line: usize,
    /// How long the expression must hold before the alert fires (alerting only).
    pub for_: Duration,
    /// How long a firing alert keeps firing once the expression stops returning it.
    pub keep_firing_for: Duration,
    /// Labels as written, added to every alert or recorded series.
    pub labels: BTreeMap<String, String>,
    /// For alerting rules, the labels as templates (`$labels`, `$value`, `$externalLabels`).
    pub label_templates: BTreeMap<String, Template>,
    /// Annotation templates (alerting only).
    pub annotations: BTreeMap<String, Template>,
}

impl PromRule {
    /// "alerting" or "recording".
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            PromKind::Alerting => "alerting",
            PromKind::Recording => "recording",
        }
    }
}

#[cfg(test)]
mod shipped_tests;
#[cfg(test)]
mod tests;
