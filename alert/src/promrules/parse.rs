//! The checks of a Prometheus rule file, as `promtool check rules` (2.42) makes them: unknown
//! keys, group names (not empty, unique in the file), exactly one of `alert` and `record`,
//! `expr` set and valid PromQL (the `promql-parser` crate), recording rule names valid metric
//! names, label and annotation names valid, `for`, `keep_firing_for` and `annotations` only
//! on alerting rules, durations in Prometheus's syntax, and the templates of an alerting
//! rule's labels and annotations. Every error names the file and line, and the group and
//! rule it is in. Skein's templates are a subset of Go's ([`crate::template`]): a template
//! Prometheus accepts but Skein cannot render is refused here, saying what is supported.

use super::names::{parse_prom_duration, valid_label_name, valid_metric_name};
use super::yaml::{self, Node, Value};
use super::{PromGroup, PromKind, PromRule};
use crate::rule_types::{MAX_FILE_BYTES, MAX_RULES_PER_FILE, RuleError};
use crate::template::Template;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// Checks one file's text: its groups, or every error found.
pub fn parse_prom_rules(file: &Path, text: &str) -> Result<Vec<PromGroup>, Vec<RuleError>> {
    // The YAML and PromQL parsers are other crates: should one panic on some input, the file
    // is refused rather than the collector stopped.
    let checked = std::panic::catch_unwind(|| {
        let mut cx = Checker {
            file,
            errors: Vec::new(),
            rules: 0,
        };
        let groups = cx.file(text);
        (groups, cx.errors)
    });
    match checked {
        Ok((groups, errors)) if errors.is_empty() => Ok(groups),
        Ok((_, mut errors)) => {
            errors.sort_by_key(|e| e.line);
            Err(errors)
        }
        Err(_) => Err(vec![RuleError::new(
            file,
            0,
            "a parser failed on this file; it is refused",
        )]),
    }
}

/// Reads and checks one file (an I/O error is a [`RuleError`] at line 0).
pub fn load_prom_file(file: &Path) -> Result<Vec<PromGroup>, Vec<RuleError>> {
    let mut text = String::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_FILE_BYTES as u64 + 1).read_to_string(&mut text))
        .map_err(|e| {
            vec![RuleError::new(
                file,
                0,
                format!("cannot read the rule file: {e}"),
            )]
        })?;
    parse_prom_rules(file, &text)
}

/// Rules defined twice in the same group (same name and labels), as promtool's lint
/// reports them: warnings, not errors.
pub fn duplicate_rules(groups: &[PromGroup]) -> Vec<String> {
    let mut out = Vec::new();
    for g in groups {
        let mut seen: HashMap<(&str, &BTreeMap<String, String>), usize> = HashMap::new();
        for r in &g.rules {
            match seen.get(&(r.name.as_str(), &r.labels)) {
                Some(first) => out.push(format!(
                    "{}:{}: group {:?}: rule {:?} repeats the rule at line {first} (same name and labels)",
                    g.file.display(),
                    r.line,
                    g.name,
                    r.name
                )),
                None => drop(seen.insert((r.name.as_str(), &r.labels), r.line)),
            }
        }
    }
    out
}

const GROUP_KEYS: &str = "name, interval, limit and rules";
const RULE_KEYS: &str = "alert, record, expr, for, keep_firing_for, labels and annotations";

/// A rule's keys as found, before they are checked.
#[derive(Default)]
struct RawRule<'n> {
    alert: Option<&'n Node>,
    record: Option<&'n Node>,
    expr: Option<&'n Node>,
    for_: Option<&'n Node>,
    keep: Option<&'n Node>,
    labels: Option<&'n Node>,
    annotations: Option<&'n Node>,
}

struct Checker<'a> {
    file: &'a Path,
    errors: Vec<RuleError>,
    rules: usize,
}

impl Checker<'_> {
    fn err(&mut self, line: usize, message: impl Into<String>) {
        self.errors.push(RuleError::new(self.file, line, message));
    }

    fn file(&mut self, text: &str) -> Vec<PromGroup> {
        if text.len() > MAX_FILE_BYTES {
            self.err(
                0,
                format!("the file is over {MAX_FILE_BYTES} bytes; split it"),
            );
            return Vec::new();
        }
        let root = match yaml::parse(text) {
            Ok(Some(root)) => root,
            Ok(None) => return Vec::new(),
            Err(e) => {
                self.err(e.line, e.message);
                return Vec::new();
            }
        };
        let Value::Map(entries) = &root.value else {
            let kind = root.kind();
            let msg = format!("a rule file is a mapping with the key groups, not {kind}");
            self.err(root.line, msg);
            return Vec::new();
        };
        let mut groups = Vec::new();
        for (k, v) in entries {
            match k.text() {
                Some("groups") => groups = self.groups(v),
                other => {
                    let name = other.unwrap_or_default();
                    let msg = format!("field {name:?} not found: a rule file holds only groups");
                    self.err(k.line, msg);
                }
            }
        }
        groups
    }

    fn groups(&mut self, node: &Node) -> Vec<PromGroup> {
        let items = match &node.value {
            _ if node.is_null() => return Vec::new(),
            Value::Seq(items) => items,
            _ => {
                let msg = format!("groups must be a list of groups, not {}", node.kind());
                self.err(node.line, msg);
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        for item in items {
            let Some(g) = self.group(item) else { continue };
            if g.name.is_empty() {
                self.err(g.line, "group name must not be empty");
            } else if let Some(first) = names.get(&g.name) {
                let msg = format!(
                    "group name {:?} is repeated in the same file (first at line {first})",
                    g.name
                );
                self.err(g.line, msg);
            } else {
                names.insert(g.name.clone(), g.line);
            }
            out.push(g);
        }
        out
    }

    fn group(&mut self, node: &Node) -> Option<PromGroup> {
        let Value::Map(entries) = &node.value else {
            let msg = format!(
                "each group must be a mapping ({GROUP_KEYS}), not {}",
                node.kind()
            );
            self.err(node.line, msg);
            return None;
        };
        let (mut name, mut interval, mut limit, mut rules) = (None, None, None, None);
        for (k, v) in entries {
            match k.text().unwrap_or_default() {
                "name" => name = Some(v),
                "interval" => interval = Some(v),
                "limit" => limit = Some(v),
                "rules" => rules = Some(v),
                other => {
                    let msg =
                        format!("field {other:?} not found in a group: a group has {GROUP_KEYS}");
                    self.err(k.line, msg);
                }
            }
        }
        let name = match name {
            None => String::new(),
            Some(n) => self.text(n, "group name", "").unwrap_or_default(),
        };
        let at = format!("group {name:?}: ");
        let interval = interval
            .filter(|i| !i.is_null())
            .and_then(|i| self.duration(i, "interval", &at))
            .filter(|d| !d.is_zero());
        let limit = limit
            .filter(|l| !l.is_null())
            .map_or(0, |l| self.limit(l, &at));
        let mut g = PromGroup {
            name,
            file: self.file.to_path_buf(),
            line: node.line,
            interval,
            limit,
            rules: Vec::new(),
        };
        match rules.map(|r| (r, &r.value)) {
            None => {}
            Some((r, _)) if r.is_null() => {}
            Some((_, Value::Seq(items))) => {
                for (i, item) in items.iter().enumerate() {
                    self.rules += 1;
                    if self.rules > MAX_RULES_PER_FILE {
                        let msg =
                            format!("more than {MAX_RULES_PER_FILE} rules in one file; split it");
                        self.err(item.line, msg);
                        return None;
                    }
                    if let Some(rule) = self.rule(item, &g.name, i + 1) {
                        g.rules.push(rule);
                    }
                }
            }
            Some((r, _)) => {
                let msg = format!("{at}rules must be a list of rules, not {}", r.kind());
                self.err(r.line, msg);
            }
        }
        Some(g)
    }

    fn rule(&mut self, node: &Node, group: &str, index: usize) -> Option<PromRule> {
        let Value::Map(entries) = &node.value else {
            let msg = format!(
                "group {group:?}, rule {index}: a rule must be a mapping ({RULE_KEYS}), not {}",
                node.kind()
            );
            self.err(node.line, msg);
            return None;
        };
        let before = self.errors.len();
        let mut raw = RawRule::default();
        let mut unknown = Vec::new();
        for (k, v) in entries {
            let slot = match k.text().unwrap_or_default() {
                "alert" => &mut raw.alert,
                "record" => &mut raw.record,
                "expr" => &mut raw.expr,
                "for" => &mut raw.for_,
                "keep_firing_for" => &mut raw.keep,
                "labels" => &mut raw.labels,
                "annotations" => &mut raw.annotations,
                _ => {
                    unknown.push(k);
                    continue;
                }
            };
            *slot = Some(v);
        }
        let mut name_of = |n: Option<&Node>, key| n.and_then(|n| self.text(n, key, ""));
        let alert = name_of(raw.alert, "alert").unwrap_or_default();
        let record = name_of(raw.record, "record").unwrap_or_default();
        let name = if alert.is_empty() { &record } else { &alert };
        let at = format!("group {group:?}, rule {index}, {name:?}: ");
        for k in unknown {
            let other = k.text().unwrap_or_default();
            let msg = format!("{at}field {other:?} not found in a rule: a rule has {RULE_KEYS}");
            self.err(k.line, msg);
        }
        let line_of = |n: Option<&Node>| n.map_or(node.line, |n| n.line);
        let kind = match (alert.is_empty(), record.is_empty()) {
            (false, false) => {
                let msg = format!("{at}only one of 'record' and 'alert' must be set");
                self.err(line_of(raw.record), msg);
                PromKind::Alerting
            }
            (true, true) => {
                let msg = format!("{at}one of 'record' or 'alert' must be set");
                self.err(node.line, msg);
                PromKind::Alerting
            }
            (false, true) => PromKind::Alerting,
            (true, false) => PromKind::Recording,
        };
        let expr = raw
            .expr
            .and_then(|e| self.text(e, "expr", &at))
            .unwrap_or_default();
        if expr.trim().is_empty() {
            let msg = format!("{at}field 'expr' must be set in rule");
            self.err(line_of(raw.expr), msg);
        } else if let Err(e) = promql_parser::parser::parse(&expr) {
            let e = e.trim().replace('\n', "; ");
            let msg = format!("{at}could not parse expression: {e}");
            self.err(line_of(raw.expr), msg);
        }
        let mut dur = |n: Option<&Node>, key: &str| {
            n.filter(|n| !n.is_null())
                .and_then(|n| self.duration(n, key, &at))
                .unwrap_or(Duration::ZERO)
        };
        let for_ = dur(raw.for_, "for");
        let keep_firing_for = dur(raw.keep, "keep_firing_for");
        let labels = self.text_map(raw.labels, "labels", &at);
        let annotations = self.text_map(raw.annotations, "annotations", &at);
        if kind == PromKind::Recording {
            let rec_line = line_of(raw.record);
            for (set, key) in [
                (!annotations.is_empty(), "annotations"),
                (!for_.is_zero(), "for"),
                (!keep_firing_for.is_zero(), "keep_firing_for"),
            ] {
                if set {
                    let msg = format!("{at}invalid field '{key}' in recording rule");
                    self.err(rec_line, msg);
                }
            }
            if !valid_metric_name(&record) {
                let hint = match record.contains(['{', '}']) {
                    true => "; braces belong in expr",
                    false => "",
                };
                let msg = format!("{at}invalid recording rule name: {record}{hint}");
                self.err(rec_line, msg);
            }
        }
        let labels_line = line_of(raw.labels);
        for k in labels.keys() {
            if !valid_label_name(k) || k == "__name__" {
                self.err(labels_line, format!("{at}invalid label name: {k}"));
            }
        }
        let ann_line = line_of(raw.annotations);
        for k in annotations.keys() {
            if !valid_label_name(k) {
                self.err(ann_line, format!("{at}invalid annotation name: {k}"));
            }
        }
        let (mut label_templates, mut templates) = (BTreeMap::new(), BTreeMap::new());
        if kind == PromKind::Alerting {
            for (what, map, line, out) in [
                ("label", &labels, labels_line, &mut label_templates),
                ("annotation", &annotations, ann_line, &mut templates),
            ] {
                for (k, v) in map {
                    match Template::parse(v) {
                        Ok(t) => drop(out.insert(k.clone(), t)),
                        Err(e) => {
                            let msg = format!("{at}{what} {k:?}: {e}");
                            self.errors.push(RuleError::new(self.file, line, msg));
                        }
                    }
                }
            }
        }
        if self.errors.len() > before {
            return None;
        }
        Some(PromRule {
            kind,
            name: name.clone(),
            expr,
            line: node.line,
            for_,
            keep_firing_for,
            labels,
            label_templates,
            annotations: templates,
        })
    }

    /// A scalar's text; an error for a list or a mapping.
    fn text(&mut self, node: &Node, key: &str, at: &str) -> Option<String> {
        match node.text() {
            Some(t) => Some(t.to_string()),
            None => {
                let msg = format!("{at}{key} must be text, not {}", node.kind());
                self.err(node.line, msg);
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, key: &str, at: &str) -> Option<Duration> {
        let text = self.text(node, key, at)?;
        match parse_prom_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(node.line, format!("{at}{key}: {e}"));
                None
            }
        }
    }

    /// `limit`: a whole number written plain; 0 or less is no limit.
    fn limit(&mut self, node: &Node, at: &str) -> usize {
        if let Value::Scalar { text, plain: true } = &node.value
            && let Ok(n) = text.parse::<i64>()
        {
            return usize::try_from(n).unwrap_or(0);
        }
        let shown = node.text().unwrap_or("(not text)");
        let msg = format!("{at}limit: {shown:?} is not a whole number");
        self.err(node.line, msg);
        0
    }

    /// `labels` or `annotations`: names to text (a null value is "").
    fn text_map(&mut self, node: Option<&Node>, key: &str, at: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(node) = node.filter(|n| !n.is_null()) else {
            return out;
        };
        let Value::Map(entries) = &node.value else {
            let msg = format!(
                "{at}{key} must be a mapping of names to text, not {}",
                node.kind()
            );
            self.err(node.line, msg);
            return out;
        };
        for (k, v) in entries {
            let name = k.text().unwrap_or_default().to_string();
            if let Some(value) = self.text(v, &format!("{key}: the value of {name:?}"), at) {
                out.insert(name, value);
            }
        }
        out
    }
}
