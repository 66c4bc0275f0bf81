//! How a Skein log record looks to LogQL, and the pipeline stages run over it.
//!
//! Labels of a record (all names made Prometheus-safe: every character outside
//! `[A-Za-z0-9_]` becomes `_`):
//! - **stream labels**: `service` (the record's `service.name`), `host` (when known), `level`
//!   (from the OTLP severity number: trace, debug, info, warn, error, fatal; else the
//!   severity text in lower case; else `unknown`), and every other resource attribute
//!   (`deployment.environment` → `deployment_environment`);
//! - **structured metadata**: the record's own attributes, `trace_id` and `span_id`.
//!
//! Selectors and label filters see both. `service_name` is read as `service` (Grafana and
//! Loki's OTLP ingest call it that). A series of a metric query is labelled by the stream
//! labels plus what `json`/`logfmt` extracted; metadata stays out of series labels unless a
//! stage makes it part of them, so `count_over_time` does not split per request.

use super::logql::ast::*;
use skein_model::LogRecord;
use std::collections::BTreeMap;

/// Labels, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// Most labels `json` or `logfmt` add to one line: past it the rest are skipped.
pub const MAX_EXTRACTED: usize = 256;
/// Deepest JSON object `json` flattens.
const MAX_JSON_DEPTH: usize = 16;

/// A record on its way through a pipeline.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Event time, ns.
    pub time: u64,
    /// The line (after `line_format`, if any).
    pub line: String,
    /// Stream labels and labels extracted by stages.
    pub labels: Labels,
    /// Structured metadata: attributes, trace and span IDs.
    pub metadata: Labels,
}

impl Entry {
    /// A label's value: stream and extracted labels first, then metadata.
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = if name == "service_name" {
            "service"
        } else {
            name
        };
        self.labels
            .get(name)
            .or_else(|| self.metadata.get(name))
            .map(String::as_str)
    }
}

/// A Prometheus-safe label name.
pub fn label_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The `level` label of a record.
pub fn level(r: &LogRecord) -> String {
    match r.severity_number {
        1..=4 => "trace".into(),
        5..=8 => "debug".into(),
        9..=12 => "info".into(),
        13..=16 => "warn".into(),
        17..=20 => "error".into(),
        21..=24 => "fatal".into(),
        _ if !r.severity_text.is_empty() => r.severity_text.to_ascii_lowercase(),
        _ => "unknown".into(),
    }
}

/// The stream labels of a record.
pub fn stream_labels(r: &LogRecord) -> Labels {
    let mut l = Labels::new();
    for (k, v) in r.resource.iter() {
        if k == "service.name" || k == "host.name" {
            continue;
        }
        l.insert(label_name(k), value_text(v));
    }
    l.insert("service".into(), r.service.clone());
    if !r.host.is_empty() {
        l.insert("host".into(), r.host.clone());
    }
    l.insert("level".into(), level(r));
    l
}

/// The structured metadata of a record.
pub fn metadata(r: &LogRecord) -> Labels {
    let mut m = Labels::new();
    for (k, v) in r.attributes.iter() {
        m.insert(label_name(k), value_text(v));
    }
    if !r.trace_id.is_empty() {
        m.insert("trace_id".into(), r.trace_id.clone());
    }
    if !r.span_id.is_empty() {
        m.insert("span_id".into(), r.span_id.clone());
    }
    m
}

/// A record as a pipeline entry.
pub fn entry(r: &LogRecord) -> Entry {
    Entry {
        time: r.time_unix_nano,
        line: r.body.clone(),
        labels: stream_labels(r),
        metadata: metadata(r),
    }
}

/// Whether an entry passes the selector's matchers.
pub fn selected(e: &Entry, matchers: &[Matcher]) -> bool {
    matchers.iter().all(|m| m.matches(e.get(&m.name)))
}

/// Runs the stages; None when a stage drops the entry.
pub fn run(mut e: Entry, stages: &[Stage]) -> Option<Entry> {
    for s in stages {
        match s {
            Stage::Line { op, values } => {
                let any = values.iter().any(|v| match &v.re {
                    Some(re) => re.is_match(&e.line),
                    None => e.line.contains(v.text.as_str()),
                });
                let pass = match op {
                    LineOp::Contains | LineOp::Matches => any,
                    LineOp::NotContains | LineOp::NotMatches => !any,
                };
                if !pass {
                    return None;
                }
            }
            Stage::Json(fields) => json(&mut e, fields),
            Stage::Logfmt => logfmt(&mut e),
            Stage::Filter(f) => {
                if !filter(&e, f) {
                    return None;
                }
            }
            Stage::LineFormat(parts) => {
                let mut out = String::new();
                for p in parts {
                    match p {
                        TemplatePart::Text(t) => out.push_str(t),
                        TemplatePart::Label(name) => out.push_str(e.get(name).unwrap_or("")),
                        TemplatePart::Line => out.push_str(&e.line),
                    }
                }
                e.line = out;
            }
            Stage::Drop(items) => {
                for (name, value) in items {
                    for map in [&mut e.labels, &mut e.metadata] {
                        if value.as_ref().is_none_or(|v| map.get(name) == Some(v)) {
                            map.remove(name);
                        }
                    }
                }
            }
            Stage::Keep(names) => {
                e.labels.retain(|k, _| names.contains(k));
                e.metadata.retain(|k, _| names.contains(k));
            }
            Stage::Decolorize => e.line = decolorize(&e.line),
        }
    }
    Some(e)
}

/// Removes ANSI escape sequences (`ESC [ … letter`) from a line.
fn decolorize(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for n in chars.by_ref() {
                if n.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn set_error(e: &mut Entry, kind: &str) {
    e.labels.insert("__error__".into(), kind.into());
}

fn json(e: &mut Entry, fields: &[(String, String)]) {
    let v: serde_json::Value = match serde_json::from_str(&e.line) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => return set_error(e, "JSONParserErr"),
    };
    if fields.is_empty() {
        let mut out = Vec::new();
        flatten("", &v, 0, &mut out);
        for (k, val) in out.into_iter().take(MAX_EXTRACTED) {
            add_extracted(e, k, val);
        }
        return;
    }
    for (label, path) in fields {
        let mut cur = Some(&v);
        for part in json_path(path) {
            cur = match part {
                PathPart::Key(k) => cur.and_then(|c| c.get(k.as_str())),
                PathPart::Index(i) => cur.and_then(|c| c.get(i)),
            };
        }
        if let Some(c) = cur {
            let val = match c {
                serde_json::Value::Object(_) | serde_json::Value::Array(_) => c.to_string(),
                other => value_text(other),
            };
            add_extracted(e, label.clone(), val);
        }
    }
}

/// A parsed label that collides with a stream label gets the `_extracted` suffix, as Loki.
fn add_extracted(e: &mut Entry, name: String, value: String) {
    let name = if e.labels.contains_key(&name) && !e.metadata.contains_key(&name) {
        format!("{name}_extracted")
    } else {
        name
    };
    e.labels.insert(name, value);
}

fn flatten(prefix: &str, v: &serde_json::Value, depth: usize, out: &mut Vec<(String, String)>) {
    if out.len() >= MAX_EXTRACTED {
        return;
    }
    match v {
        serde_json::Value::Object(m) if depth < MAX_JSON_DEPTH => {
            for (k, c) in m {
                let name = if prefix.is_empty() {
                    label_name(k)
                } else {
                    format!("{prefix}_{}", label_name(k))
                };
                flatten(&name, c, depth + 1, out);
            }
        }
        serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
            // Loki skips arrays; objects past the depth limit are skipped too.
        }
        other if !prefix.is_empty() => out.push((prefix.to_string(), value_text(other))),
        _ => {}
    }
}

enum PathPart {
    Key(String),
    Index(usize),
}

/// `a.b[0].c` or `a["b"]` into parts.
fn json_path(path: &str) -> Vec<PathPart> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if !cur.is_empty() {
                    parts.push(PathPart::Key(std::mem::take(&mut cur)));
                }
            }
            '[' => {
                if !cur.is_empty() {
                    parts.push(PathPart::Key(std::mem::take(&mut cur)));
                }
                let mut inner = String::new();
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                    inner.push(n);
                }
                let inner = inner.trim();
                match inner.parse::<usize>() {
                    Ok(i) => parts.push(PathPart::Index(i)),
                    Err(_) => parts.push(PathPart::Key(
                        inner.trim_matches(|c| c == '"' || c == '\'').to_string(),
                    )),
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        parts.push(PathPart::Key(cur));
    }
    parts
}

fn logfmt(e: &mut Entry) {
    let line = e.line.clone();
    let mut rest = line.as_str().trim_start();
    let mut n = 0;
    while !rest.is_empty() && n < MAX_EXTRACTED {
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        rest = &rest[key_end..];
        let value = if let Some(after) = rest.strip_prefix('=') {
            if let Some(q) = after.strip_prefix('"') {
                let mut v = String::new();
                let mut escaped = false;
                let mut end = q.len();
                let mut closed = false;
                for (i, c) in q.char_indices() {
                    if escaped {
                        v.push(match c {
                            'n' => '\n',
                            't' => '\t',
                            c => c,
                        });
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        end = i + 1;
                        closed = true;
                        break;
                    } else {
                        v.push(c);
                    }
                }
                if !closed {
                    return set_error(e, "LogfmtParserErr");
                }
                rest = &q[end..];
                v
            } else {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                rest = &after[end..];
                after[..end].to_string()
            }
        } else {
            String::new()
        };
        if !key.is_empty() {
            add_extracted(e, label_name(key), value);
            n += 1;
        }
        rest = rest.trim_start();
    }
}

/// A label value as a number: plain numbers, or durations (`1.5s`, `200ms`) in seconds.
fn numeric(v: &str) -> Option<f64> {
    if let Ok(n) = v.trim().parse::<f64>() {
        return Some(n);
    }
    super::logql::lexer::parse_duration_ns(v.trim())
        .ok()
        .map(|ns| ns as f64 / 1e9)
}

/// Whether an entry passes a label filter.
pub fn filter(e: &Entry, f: &LabelFilter) -> bool {
    match f {
        LabelFilter::And(a, b) => filter(e, a) && filter(e, b),
        LabelFilter::Or(a, b) => filter(e, a) || filter(e, b),
        LabelFilter::Cmp { name, op, value } => {
            let v = e.get(name);
            match value {
                FilterValue::Text(text, re) => {
                    let v = v.unwrap_or("");
                    match op {
                        CmpOp::Eq => v == text,
                        CmpOp::Ne => v != text,
                        CmpOp::Re => re.as_ref().is_some_and(|r| r.is_match(v)),
                        CmpOp::Nre => !re.as_ref().is_some_and(|r| r.is_match(v)),
                        _ => false,
                    }
                }
                FilterValue::Number(want) | FilterValue::Duration(want) => {
                    let Some(got) = v.and_then(numeric) else {
                        return false;
                    };
                    match op {
                        CmpOp::Eq => got == *want,
                        CmpOp::Ne => got != *want,
                        CmpOp::Gt => got > *want,
                        CmpOp::Ge => got >= *want,
                        CmpOp::Lt => got < *want,
                        CmpOp::Le => got <= *want,
                        CmpOp::Re | CmpOp::Nre => false,
                    }
                }
            }
        }
    }
}
