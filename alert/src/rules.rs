//! Alert rule files (TOML): the rule types, parsing, and checks that name the file and line.
//!
//! A file holds any number of `[[rule]]` tables. Each has a `name`, optional `for`,
//! `keep_firing_for`, `labels` and `annotations`, and exactly one condition table:
//! `[rule.metric]`, `[rule.logs]`, `[rule.traces]` or `[rule.absent]`.

pub use super::rule_types::*;
use super::rule_types::{SEVERITY_NAMES, edit_distance, fmt_duration};
use super::template::Template;
use serde::Deserialize;
use skein_model::time::parse_duration;
use skein_query::metrics::query::Agg;
use skein_store::tsdb::Matcher;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

/// Parses one file's text. `known_metric` answers whether a metric family name is known;
/// an unknown one is an error that suggests the closest of [`DERIVED_METRICS`] that
/// `known_metric` accepts.
pub fn parse_rules(
    file: &Path,
    text: &str,
    known_metric: &dyn Fn(&str) -> bool,
) -> Result<Vec<Rule>, Vec<RuleError>> {
    parse_rules_with_names(file, text, known_metric, &|| derived_names(known_metric))
}

/// As [`parse_rules`], with `known_names` listing the known metric names (asked only when
/// a name is unknown); the error suggests the 10 closest.
pub fn parse_rules_with_names(
    file: &Path,
    text: &str,
    known_metric: &dyn Fn(&str) -> bool,
    known_names: &dyn Fn() -> Vec<String>,
) -> Result<Vec<Rule>, Vec<RuleError>> {
    let mut cx = Checker {
        file,
        text,
        known_metric,
        known_names,
        errors: Vec::new(),
    };
    let rules = cx.file();
    if cx.errors.is_empty() {
        Ok(rules)
    } else {
        cx.errors.sort_by_key(|e| e.line);
        Err(cx.errors)
    }
}

/// Reads and parses one file (I/O errors are a [`RuleError`] at line 0).
pub fn load_file(
    file: &Path,
    known_metric: &dyn Fn(&str) -> bool,
) -> Result<Vec<Rule>, Vec<RuleError>> {
    load_file_with_names(file, known_metric, &|| derived_names(known_metric))
}

/// As [`load_file`], with `known_names` as in [`parse_rules_with_names`].
pub fn load_file_with_names(
    file: &Path,
    known_metric: &dyn Fn(&str) -> bool,
    known_names: &dyn Fn() -> Vec<String>,
) -> Result<Vec<Rule>, Vec<RuleError>> {
    let io = |e| {
        vec![RuleError::new(
            file,
            0,
            format!("cannot read the rule file: {e}"),
        )]
    };
    let mut text = String::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_FILE_BYTES as u64 + 1).read_to_string(&mut text))
        .map_err(io)?;
    parse_rules_with_names(file, &text, known_metric, known_names)
}

/// Expands paths: a directory gives its `*.toml` files (not recursive, hidden files
/// skipped), sorted; a file is itself. A missing path is a [`RuleError`] at line 0.
pub fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, RuleError> {
    let mut out = Vec::new();
    for p in paths {
        let err = |e| RuleError::new(p, 0, format!("cannot read the rule path: {e}"));
        if !std::fs::metadata(p).map_err(err)?.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut files = Vec::new();
        for entry in std::fs::read_dir(p).map_err(err)? {
            let path = entry.map_err(err)?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !hidden && path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        out.extend(files);
    }
    Ok(out)
}

fn derived_names(known_metric: &dyn Fn(&str) -> bool) -> Vec<String> {
    DERIVED_METRICS
        .iter()
        .filter(|n| known_metric(n))
        .map(|n| n.to_string())
        .collect()
}

// ---- the file as written ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    #[serde(rename = "for")]
    for_: Option<Spanned<String>>,
    keep_firing_for: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    annotations: BTreeMap<String, Spanned<String>>,
    metric: Option<RawMetric>,
    logs: Option<RawLogs>,
    traces: Option<RawTraces>,
    absent: Option<RawAbsent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    name: Spanned<String>,
    #[serde(rename = "match", default)]
    matchers: Vec<Spanned<String>>,
    agg: Option<Spanned<String>>,
    window: Option<Spanned<String>>,
    #[serde(default)]
    by: Vec<Spanned<String>>,
    divide_by: Option<RawRef>,
    when: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRef {
    name: Spanned<String>,
    agg: Option<Spanned<String>>,
    #[serde(rename = "match")]
    matchers: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogs {
    service: Option<Spanned<String>>,
    severity: Option<Spanned<String>>,
    query: Option<String>,
    window: Option<Spanned<String>>,
    #[serde(default)]
    by: Vec<Spanned<String>>,
    when: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTraces {
    service: Option<Spanned<String>>,
    operation: Option<Spanned<String>>,
    min_duration: Option<Spanned<String>>,
    errors: Option<bool>,
    window: Option<Spanned<String>>,
    #[serde(default)]
    by: Vec<Spanned<String>>,
    when: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAbsent {
    heartbeat: Option<Spanned<bool>>,
    metric: Option<Spanned<String>>,
    #[serde(rename = "match", default)]
    matchers: Vec<Spanned<String>>,
    after: Option<Spanned<String>>,
    lookback: Option<Spanned<String>>,
}

// ---- checks ----

const SECTIONS: &str = "[rule.metric], [rule.logs], [rule.traces] or [rule.absent]";
const NEVER: Compare = Compare {
    op: CmpOp::Gt,
    threshold: 0.0,
};

struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
    known_metric: &'a dyn Fn(&str) -> bool,
    known_names: &'a dyn Fn() -> Vec<String>,
    errors: Vec<RuleError>,
}

impl Checker<'_> {
    fn line(&self, offset: usize) -> usize {
        let head = &self.text.as_bytes()[..offset.min(self.text.len())];
        head.iter().filter(|&&b| b == b'\n').count() + 1
    }

    fn err_line(&mut self, line: usize, message: impl Into<String>) {
        self.errors.push(RuleError::new(self.file, line, message));
    }

    /// An error on the line where `at` starts.
    fn err<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        self.err_line(self.line(at.span().start), message);
    }

    fn toml_err(&mut self, e: &toml::de::Error) {
        let line = e.span().map_or(1, |s| self.line(s.start));
        let msg = e.message().lines().map(str::trim).filter(|l| !l.is_empty());
        self.err_line(line, msg.collect::<Vec<_>>().join("; "));
    }

    fn file(&mut self) -> Vec<Rule> {
        if self.text.len() > MAX_FILE_BYTES {
            let msg = format!("the file is over {MAX_FILE_BYTES} bytes; split it");
            self.err_line(0, msg);
            return Vec::new();
        }
        let root = match toml::de::DeTable::parse(self.text) {
            Ok(root) => root.into_inner(),
            Err(e) => {
                self.toml_err(&e);
                return Vec::new();
            }
        };
        let mut tables = Vec::new();
        for (key, value) in root {
            if key.get_ref() != "rule" {
                let k = key.get_ref();
                let msg = format!("unknown key '{k}': a rule file holds [[rule]] tables");
                self.err(&key, msg);
                continue;
            }
            let at = self.line(value.span().start);
            match value.into_inner() {
                DeValue::Array(items) => tables.extend(items),
                _ => self.err_line(at, "'rule' must be an array of tables: write [[rule]]"),
            }
        }
        if let Some(extra) = tables.get(MAX_RULES_PER_FILE) {
            let msg = format!("more than {MAX_RULES_PER_FILE} rules in one file; split it");
            self.err(extra, msg);
            return Vec::new();
        }
        let mut rules: Vec<Rule> = Vec::new();
        let mut seen = HashMap::new();
        for table in tables {
            if !table.get_ref().is_table() {
                self.err(&table, "each rule must be a table: write [[rule]]");
                continue;
            }
            let raw = match RawRule::deserialize(ValueDeserializer::from(table)) {
                Ok(raw) => raw,
                Err(e) => {
                    self.toml_err(&e);
                    continue;
                }
            };
            let Some(rule) = self.rule(raw) else { continue };
            let key = (rule.name.clone(), rule.labels.clone());
            match seen.entry(key) {
                Entry::Occupied(first) => {
                    let (n, f) = (&rule.name, first.get());
                    let msg =
                        format!("rule '{n}' is already defined at line {f} with the same labels");
                    self.err_line(rule.line, msg);
                }
                Entry::Vacant(slot) => {
                    slot.insert(rule.line);
                    rules.push(rule);
                }
            }
        }
        rules
    }

    fn rule(&mut self, raw: RawRule) -> Option<Rule> {
        let before = self.errors.len();
        let line = self.line(raw.name.span().start);
        if !valid_name(raw.name.get_ref(), false) {
            let n = raw.name.get_ref();
            let msg = format!("rule name {n:?} must match [A-Za-z_][A-Za-z0-9_]*");
            self.err(&raw.name, msg);
        }
        let name = raw.name.into_inner();
        let for_ = self.duration("for", raw.for_.as_ref(), Duration::ZERO, false);
        let keep = raw.keep_firing_for.as_ref();
        let keep_firing_for = self.duration("keep_firing_for", keep, Duration::ZERO, false);
        let mut labels = BTreeMap::new();
        for (k, v) in raw.labels {
            if !valid_name(&k, true) {
                let msg = format!("label name {k:?} must match [A-Za-z_][A-Za-z0-9_.]*");
                self.err(&v, msg);
            } else if k == "alertname" {
                let msg = "label 'alertname' is set from the rule's name; remove it";
                self.err(&v, msg);
            }
            labels.insert(k, v.into_inner());
        }
        let mut annotations = BTreeMap::new();
        for (k, v) in raw.annotations {
            if !valid_name(&k, true) {
                let msg = format!("annotation name {k:?} must match [A-Za-z_][A-Za-z0-9_.]*");
                self.err(&v, msg);
            }
            match Template::parse(v.get_ref()) {
                Ok(t) => drop(annotations.insert(k, t)),
                Err(e) => self.err(&v, format!("annotation '{k}': {e}")),
            }
        }
        let mut given = vec![];
        for (on, table) in [
            (raw.metric.is_some(), "[rule.metric]"),
            (raw.logs.is_some(), "[rule.logs]"),
            (raw.traces.is_some(), "[rule.traces]"),
            (raw.absent.is_some(), "[rule.absent]"),
        ] {
            given.extend(on.then_some(table));
        }
        let condition = match (raw.metric, raw.logs, raw.traces, raw.absent) {
            _ if given.len() > 1 => {
                let g = given.join(" and ");
                let msg = format!("rule '{name}' has {g}; a rule has one condition");
                self.err_line(line, msg);
                None
            }
            (Some(m), ..) => Some(Condition::Metric(self.metric(m))),
            (_, Some(l), ..) => Some(Condition::Logs(self.logs(l))),
            (_, _, Some(t), _) => Some(Condition::Traces(self.traces(t))),
            (.., Some(a)) => self.absent(a, line).map(Condition::Absent),
            _ => {
                let msg = format!("rule '{name}' needs a condition, one of {SECTIONS}");
                self.err_line(line, msg);
                None
            }
        };
        if self.errors.len() > before {
            return None;
        }
        Some(Rule {
            name,
            file: self.file.to_path_buf(),
            line,
            condition: condition?,
            for_,
            keep_firing_for,
            labels,
            annotations,
        })
    }

    fn metric(&mut self, m: RawMetric) -> MetricCond {
        let name = self.metric_name("name", &m.name);
        let matchers = self.matchers("match", &m.matchers, None);
        let (agg, agg_name) = self.agg(m.agg.as_ref(), (Agg::Avg, "avg".to_string()));
        let window = self.duration("window", m.window.as_ref(), DEFAULT_WINDOW, true);
        let mut by: Vec<String> = Vec::new();
        for l in &m.by {
            let label = l.get_ref();
            if !valid_name(label, true) {
                self.err(l, format!("by: {label:?} is not a label name"));
            } else if by.contains(label) {
                self.err(l, format!("by: label '{label}' is listed twice"));
            } else {
                by.push(label.clone());
            }
        }
        let divide_by = m.divide_by.map(|d| {
            let matchers = match &d.matchers {
                Some(list) => self.matchers("divide_by.match", list, None),
                None => matchers.clone(),
            };
            let (agg, agg_name) = self.agg(d.agg.as_ref(), (agg, agg_name.clone()));
            let name = self.metric_name("divide_by.name", &d.name);
            MetricRef {
                name,
                matchers,
                agg,
                agg_name,
            }
        });
        let metric = MetricRef {
            name,
            matchers,
            agg,
            agg_name,
        };
        let when = self.compare(&m.when);
        MetricCond {
            metric,
            window,
            by,
            divide_by,
            when,
        }
    }

    fn logs(&mut self, l: RawLogs) -> LogCond {
        let min_severity = l.severity.as_ref().and_then(|s| {
            let n = severity_number(s.get_ref());
            if n.is_none() {
                let v = s.get_ref();
                let msg = format!("severity {v:?} is not one of {}", SEVERITY_NAMES);
                self.err(s, msg);
            }
            n
        });
        let mut by_service = false;
        for b in &l.by {
            if b.get_ref() == "service" {
                by_service = true;
            } else {
                let v = b.get_ref();
                let msg = format!("by: logs can be grouped only by service, not {v:?}");
                self.err(b, msg);
            }
        }
        LogCond {
            service: self.non_empty("service", l.service),
            min_severity,
            query: l.query.filter(|q| !q.trim().is_empty()),
            window: self.duration("window", l.window.as_ref(), DEFAULT_WINDOW, true),
            by_service,
            when: self.compare(&l.when),
        }
    }

    fn traces(&mut self, t: RawTraces) -> TraceCond {
        let (mut by_service, mut by_operation) = (false, false);
        for b in &t.by {
            match b.get_ref().as_str() {
                "service" => by_service = true,
                "operation" => by_operation = true,
                v => self.err(
                    b,
                    format!("by: traces group only by service and operation, not {v:?}"),
                ),
            }
        }
        let min = t.min_duration.as_ref();
        let min_duration =
            min.map(|d| self.duration("min_duration", Some(d), Duration::ZERO, false));
        TraceCond {
            service: self.non_empty("service", t.service),
            operation: self.non_empty("operation", t.operation),
            min_duration,
            errors_only: t.errors.unwrap_or(false),
            window: self.duration("window", t.window.as_ref(), DEFAULT_WINDOW, true),
            by_service,
            by_operation,
            when: t.when.as_ref().map_or(NEVER, |w| self.compare(w)),
        }
    }

    fn absent(&mut self, a: RawAbsent, line: usize) -> Option<AbsentCond> {
        let after = self.duration("after", a.after.as_ref(), DEFAULT_AFTER, true);
        let heartbeat = a.heartbeat.as_ref().is_some_and(|h| *h.get_ref());
        match (heartbeat, &a.metric) {
            (true, Some(m)) => {
                let msg = "[rule.absent] takes heartbeat = true or metric = \"...\", not both";
                self.err(m, msg);
                None
            }
            (false, None) => {
                let msg = "[rule.absent] needs heartbeat = true or metric = \"...\"";
                self.err_line(line, msg);
                None
            }
            (true, None) => {
                if let Some(l) = &a.lookback {
                    let msg = "lookback applies only to the metric form of [rule.absent]";
                    self.err(l, msg);
                }
                let matchers = self.matchers("match", &a.matchers, Some(&["agent", "host"]));
                Some(AbsentCond::Heartbeat { matchers, after })
            }
            (false, Some(m)) => {
                let metric = self.metric_name("metric", m);
                let matchers = self.matchers("match", &a.matchers, None);
                let lookback = a.lookback.as_ref();
                let lookback = self.duration("lookback", lookback, DEFAULT_LOOKBACK, true);
                if lookback <= after {
                    let (l, af) = (fmt_duration(lookback), fmt_duration(after));
                    let msg = format!("lookback ({l}) must be longer than after ({af})");
                    match &a.lookback {
                        Some(at) => self.err(at, msg),
                        None => self.err(m, msg),
                    }
                }
                Some(AbsentCond::Series {
                    metric,
                    matchers,
                    after,
                    lookback,
                })
            }
        }
    }

    /// `value` read as a duration, or `default`; `positive` refuses 0.
    fn duration(
        &mut self,
        key: &str,
        value: Option<&Spanned<String>>,
        default: Duration,
        positive: bool,
    ) -> Duration {
        let Some(v) = value else { return default };
        match parse_duration(v.get_ref()) {
            Ok(d) if positive && d.is_zero() => {
                self.err(v, format!("{key} = {:?} must be above 0", v.get_ref()));
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.err(v, format!("{key}: {e}"));
                default
            }
        }
    }

    fn compare(&mut self, when: &Spanned<String>) -> Compare {
        Compare::parse(when.get_ref()).unwrap_or_else(|e| {
            self.err(when, e);
            NEVER
        })
    }

    fn agg(&mut self, value: Option<&Spanned<String>>, default: (Agg, String)) -> (Agg, String) {
        let Some(v) = value else { return default };
        match Agg::parse(v.get_ref()) {
            Ok(agg) => (agg, v.get_ref().trim().to_ascii_lowercase()),
            Err(e) => {
                self.err(v, e.to_string());
                default
            }
        }
    }

    /// Parses matchers; `only` limits the labels they may name.
    fn matchers(
        &mut self,
        key: &str,
        list: &[Spanned<String>],
        only: Option<&[&str]>,
    ) -> Vec<Matcher> {
        let mut out = Vec::new();
        for m in list {
            match Matcher::parse(m.get_ref()) {
                Ok(x) if only.is_some_and(|o| !o.contains(&x.label.as_str())) => {
                    let (allowed, l) = (only.unwrap_or_default().join(" and "), &x.label);
                    let msg =
                        format!("{key}: a heartbeat has only the labels {allowed}, not '{l}'");
                    self.err(m, msg);
                }
                Ok(x) => out.push(x),
                Err(e) => self.err(m, format!("{key}: {e}")),
            }
        }
        out
    }

    fn metric_name(&mut self, key: &str, name: &Spanned<String>) -> String {
        let n = name.get_ref().trim();
        if n.is_empty() || n.contains(|c: char| c.is_whitespace() || "{}[]\"".contains(c)) {
            self.err(name, format!("{key}: {n:?} is not a metric name"));
        } else if !(self.known_metric)(n) {
            let mut names = (self.known_names)();
            names.sort_by_cached_key(|k| (edit_distance(n, k), k.clone()));
            names.truncate(10);
            let known = match names.is_empty() {
                true => String::new(),
                false => format!("; known: {}", names.join(", ")),
            };
            self.err(name, format!("{key}: unknown metric '{n}'{known}"));
        }
        n.to_string()
    }

    fn non_empty(&mut self, key: &str, value: Option<Spanned<String>>) -> Option<String> {
        let v = value?;
        if v.get_ref().trim().is_empty() {
            self.err(&v, format!("{key} must not be empty; leave it out instead"));
            return None;
        }
        Some(v.into_inner())
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`, with dots after the first character when `dots`.
fn valid_name(name: &str, dots: bool) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (dots && c == '.'))
}

/// OTLP severity number of a name (case-insensitive; "warning" is "warn").
fn severity_number(name: &str) -> Option<i32> {
    let n = name.trim().to_ascii_lowercase();
    let n = if n == "warning" { "warn" } else { n.as_str() };
    let i = SEVERITY_NAMES.split(", ").position(|s| s == n)?;
    Some(i as i32 * 4 + 1)
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
