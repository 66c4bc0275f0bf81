//! Skein's spans and logs in Jaeger's trace JSON (the `model/json` shape of Jaeger's query
//! service, which Grafana's Jaeger data source and the Jaeger UI read).
//!
//! - IDs are the lowercase hex Skein keeps; times are microseconds since 1970.
//! - A span's parent is a `CHILD_OF` reference, its links `FOLLOWS_FROM` references.
//! - Tags are the span's attributes plus, as Jaeger's OTLP translation writes them,
//!   `span.kind`, `otel.status_code`, `otel.status_description` and `error=true`.
//! - Each distinct service and resource is one process (`p1`, `p2`, ...) whose tags are the
//!   resource's attributes but `service.name`.
//! - Span events are span logs (`event` = the event's name); so are the trace's log records,
//!   each under the span whose ID it carries, else under the root span, with `event` = the
//!   body, `level` = the severity, then its attributes.

use serde::Serialize;
use skein_model::{Attributes, LogRecord, Span};
use std::collections::HashMap;

/// One tag, log field or process tag.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KeyValue {
    /// Name.
    pub key: String,
    /// `string`, `bool`, `int64` or `float64`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The value, of that type.
    pub value: serde_json::Value,
}

impl KeyValue {
    /// A string tag.
    pub fn string(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.to_string(),
            kind: "string",
            value: serde_json::Value::String(value.to_string()),
        }
    }

    /// A tag from an attribute value: strings, bools, whole numbers (`int64`) and other
    /// numbers (`float64`) keep their type; arrays and maps become their JSON text.
    pub fn of(key: &str, value: &serde_json::Value) -> KeyValue {
        use serde_json::Value;
        let (kind, value) = match value {
            Value::String(_) => ("string", value.clone()),
            Value::Bool(_) => ("bool", value.clone()),
            Value::Number(n) if n.is_i64() => ("int64", value.clone()),
            Value::Number(_) => ("float64", value.clone()),
            Value::Null => ("string", Value::String(String::new())),
            other => ("string", Value::String(other.to_string())),
        };
        KeyValue {
            key: key.to_string(),
            kind,
            value,
        }
    }
}

/// A reference to another span.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    /// `CHILD_OF` (the parent) or `FOLLOWS_FROM` (a link).
    pub ref_type: &'static str,
    /// The other span's trace.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// The other span.
    #[serde(rename = "spanID")]
    pub span_id: String,
}

/// A log of a span: an event or a log record.
#[derive(Debug, Clone, Serialize)]
pub struct Log {
    /// Microseconds since 1970.
    pub timestamp: u64,
    /// Its fields.
    pub fields: Vec<KeyValue>,
}

/// One span.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JaegerSpan {
    /// Trace ID, hex.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// Span ID, hex.
    #[serde(rename = "spanID")]
    pub span_id: String,
    /// The span's name.
    pub operation_name: String,
    /// Parent and links.
    pub references: Vec<Reference>,
    /// Start, microseconds since 1970.
    pub start_time: u64,
    /// Duration, microseconds.
    pub duration: u64,
    /// Tags.
    pub tags: Vec<KeyValue>,
    /// Events and log records, by time.
    pub logs: Vec<Log>,
    /// Key of its process in the trace's `processes`.
    #[serde(rename = "processID")]
    pub process_id: String,
    /// Always none.
    pub warnings: Option<Vec<String>>,
}

/// A process: a service and its resource.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    /// `service.name`.
    pub service_name: String,
    /// The resource's other attributes.
    pub tags: Vec<KeyValue>,
}

/// One trace.
#[derive(Debug, Clone, Serialize)]
pub struct JaegerTrace {
    /// The trace ID (the main one when a correlation key joined several).
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// Spans, parents before children.
    pub spans: Vec<JaegerSpan>,
    /// Processes by key.
    pub processes: std::collections::BTreeMap<String, Process>,
    /// Notes on the answer (cut, several traces joined); none when there are none.
    pub warnings: Option<Vec<String>>,
}

fn micros(ns: u64) -> u64 {
    ns / 1000
}

fn span_tags(s: &Span) -> Vec<KeyValue> {
    let mut tags: Vec<KeyValue> = s
        .attributes
        .iter()
        .map(|(k, v)| KeyValue::of(k, v))
        .collect();
    if !s.kind.is_empty() && s.kind != "unspecified" {
        tags.push(KeyValue::string("span.kind", &s.kind));
    }
    match s.status_code.as_str() {
        "error" => {
            tags.push(KeyValue::string("otel.status_code", "ERROR"));
            tags.push(KeyValue {
                key: "error".into(),
                kind: "bool",
                value: serde_json::Value::Bool(true),
            });
        }
        "ok" => tags.push(KeyValue::string("otel.status_code", "OK")),
        _ => {}
    }
    if !s.status_message.is_empty() {
        tags.push(KeyValue::string(
            "otel.status_description",
            &s.status_message,
        ));
    }
    tags
}

fn attr_fields(attrs: &Attributes) -> impl Iterator<Item = KeyValue> + '_ {
    attrs.iter().map(|(k, v)| KeyValue::of(k, v))
}

/// A log record's level as the span logs show it: Skein's level name of its severity
/// (`error`, `info`), else the severity text as sent; empty when it has neither.
pub fn level(l: &LogRecord) -> &str {
    let level = skein_store::schema::level_of(l.severity_number, &l.severity_text);
    if level.is_empty() {
        l.severity_text.as_str()
    } else {
        level
    }
}

/// A log record as a span log: `event` = body, `level` = severity, `service.name` when the
/// record's service is not the span's, then its attributes.
pub fn log_of_record(l: &LogRecord, span_service: &str) -> Log {
    let mut fields = vec![KeyValue::string("event", &l.body)];
    let level = level(l);
    if !level.is_empty() {
        fields.push(KeyValue::string("level", level));
    }
    if l.service != span_service {
        fields.push(KeyValue::string("service.name", &l.service));
    }
    fields.extend(attr_fields(&l.attributes));
    Log {
        timestamp: micros(l.time_unix_nano),
        fields,
    }
}

/// Builds one Jaeger trace from spans (in tree order, as [`crate::engine::assemble`] gives
/// them) and the log records to attach. `trace_id` names the trace; `warnings` go on it.
pub fn trace(
    trace_id: &str,
    spans: &[Span],
    logs: &[LogRecord],
    warnings: Vec<String>,
) -> JaegerTrace {
    let mut processes = std::collections::BTreeMap::new();
    let mut process_keys: HashMap<(String, String), String> = HashMap::new();
    let mut out: Vec<JaegerSpan> = Vec::with_capacity(spans.len());
    for s in spans {
        let resource_key = serde_json::to_string(s.resource.as_ref()).unwrap_or_default();
        let n = process_keys.len();
        let pid = process_keys
            .entry((s.service.clone(), resource_key))
            .or_insert_with(|| {
                let pid = format!("p{}", n + 1);
                processes.insert(
                    pid.clone(),
                    Process {
                        service_name: s.service.clone(),
                        tags: s
                            .resource
                            .iter()
                            .filter(|(k, _)| k.as_str() != "service.name")
                            .map(|(k, v)| KeyValue::of(k, v))
                            .collect(),
                    },
                );
                pid
            })
            .clone();
        let mut references = Vec::new();
        if !s.parent_span_id.is_empty() {
            references.push(Reference {
                ref_type: "CHILD_OF",
                trace_id: s.trace_id.clone(),
                span_id: s.parent_span_id.clone(),
            });
        }
        for link in &s.links {
            references.push(Reference {
                ref_type: "FOLLOWS_FROM",
                trace_id: link.trace_id.clone(),
                span_id: link.span_id.clone(),
            });
        }
        let logs = s
            .events
            .iter()
            .map(|e| Log {
                timestamp: micros(e.time_unix_nano),
                fields: std::iter::once(KeyValue::string("event", &e.name))
                    .chain(attr_fields(&e.attributes))
                    .collect(),
            })
            .collect();
        out.push(JaegerSpan {
            trace_id: s.trace_id.clone(),
            span_id: s.span_id.clone(),
            operation_name: s.name.clone(),
            references,
            start_time: micros(s.start_unix_nano),
            duration: micros(s.duration_ns),
            tags: span_tags(s),
            logs,
            process_id: pid,
            warnings: None,
        });
    }
    attach_logs(&mut out, spans, trace_id, logs);
    for s in &mut out {
        s.logs.sort_by_key(|l| l.timestamp);
    }
    JaegerTrace {
        trace_id: trace_id.to_string(),
        spans: out,
        processes,
        warnings: (!warnings.is_empty()).then_some(warnings),
    }
}

/// Puts each log record under the span whose ID it carries (the same trace first), else
/// under the root span of `trace_id` (else the first span).
fn attach_logs(out: &mut [JaegerSpan], spans: &[Span], trace_id: &str, logs: &[LogRecord]) {
    for (l, i) in logs.iter().zip(log_placement(spans, trace_id, logs)) {
        if let (Some(target), Some(span)) = (out.get_mut(i), spans.get(i)) {
            target.logs.push(log_of_record(l, &span.service));
        }
    }
}

/// Where each log record goes, an index into `spans` per record: the span whose ID it
/// carries (the same trace first), else the root span of `trace_id` (else the first span).
/// Empty when there are no spans.
pub fn log_placement(spans: &[Span], trace_id: &str, logs: &[LogRecord]) -> Vec<usize> {
    if spans.is_empty() {
        return Vec::new();
    }
    let mut by_id: HashMap<(&str, &str), usize> = HashMap::new();
    let mut by_span: HashMap<&str, usize> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        by_id.insert((s.trace_id.as_str(), s.span_id.as_str()), i);
        by_span.entry(s.span_id.as_str()).or_insert(i);
    }
    let root = spans
        .iter()
        .position(|s| {
            s.trace_id == trace_id
                && (s.parent_span_id.is_empty()
                    || !by_id.contains_key(&(s.trace_id.as_str(), s.parent_span_id.as_str())))
        })
        .or_else(|| spans.iter().position(|s| s.trace_id == trace_id))
        .unwrap_or(0);
    logs.iter()
        .map(|l| {
            if l.span_id.is_empty() {
                None
            } else {
                by_id
                    .get(&(l.trace_id.as_str(), l.span_id.as_str()))
                    .or_else(|| by_span.get(l.span_id.as_str()))
                    .copied()
            }
            .unwrap_or(root)
        })
        .collect()
}
