//! Skein's spans and logs as OTLP/JSON traces (the protobuf JSON mapping of
//! `TracesData`), the answer of Jaeger's HTTP API v3 (`{"result": {"resourceSpans": ...}}`).
//!
//! - IDs are lowercase hex (`traceId`, `spanId`, `parentSpanId`), as OTLP/JSON writes them;
//!   times are Unix nanoseconds as decimal strings (`startTimeUnixNano`, `timeUnixNano`).
//! - `kind` and `status.code` are the enum numbers (server 2, client 3; error 2).
//! - Attribute values keep their type: `stringValue`, `boolValue`, `intValue` (a decimal
//!   string), `doubleValue`, `arrayValue`, `kvlistValue`.
//! - Spans are grouped per trace, then per service and resource (one `resourceSpans` each, its
//!   `service.name` among the resource attributes), in one `scopeSpans`: Skein keeps no
//!   instrumentation scope, so `scope` is empty.
//! - A trace's log records are span events named `log`, each under the span whose ID it
//!   carries, else under the root span (as the v1 routes place span logs), with the
//!   attributes `message` (the line), `level`, `service.name` when the line is another
//!   service's, then the record's attributes.

use super::convert::{level, log_placement};
use serde::Serialize;
use serde_json::{Value, json};
use skein_model::{Attributes, LogRecord, Span};
use std::collections::HashMap;

/// The name of the span events that carry a trace's log records.
pub const LOG_EVENT: &str = "log";

/// `TracesData`: what `result` holds.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TracesData {
    /// One per trace and resource, newest trace first.
    pub resource_spans: Vec<ResourceSpans>,
}

/// The spans of one resource (a service) in one trace.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSpans {
    /// The resource.
    pub resource: Resource,
    /// Always one scope.
    pub scope_spans: Vec<ScopeSpans>,
}

/// A resource: its attributes, `service.name` included.
#[derive(Debug, Clone, Serialize)]
pub struct Resource {
    /// Attributes.
    pub attributes: Vec<KeyValue>,
}

/// Spans of one instrumentation scope.
#[derive(Debug, Clone, Serialize)]
pub struct ScopeSpans {
    /// The scope: empty, Skein does not keep it.
    pub scope: Scope,
    /// Spans, parents before children.
    pub spans: Vec<OtlpSpan>,
}

/// An instrumentation scope (always empty).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scope {}

/// One attribute.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KeyValue {
    /// Name.
    pub key: String,
    /// An `AnyValue` object (`{"stringValue": "..."}`).
    pub value: Value,
}

/// One span.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OtlpSpan {
    /// Hex trace ID.
    pub trace_id: String,
    /// Hex span ID.
    pub span_id: String,
    /// Hex parent span ID; absent for a root span.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub parent_span_id: String,
    /// Operation name.
    pub name: String,
    /// `SpanKind` number: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer,
    /// 5 consumer.
    pub kind: i32,
    /// Start, Unix ns, decimal.
    pub start_time_unix_nano: String,
    /// End, Unix ns, decimal.
    pub end_time_unix_nano: String,
    /// The span's attributes.
    pub attributes: Vec<KeyValue>,
    /// Its events, then the log records as `log` events, by time.
    pub events: Vec<Event>,
    /// Links to other spans.
    pub links: Vec<Link>,
    /// Status.
    pub status: Status,
}

/// A span event.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Unix ns, decimal.
    pub time_unix_nano: String,
    /// Name (`exception`, `log`).
    pub name: String,
    /// Attributes.
    pub attributes: Vec<KeyValue>,
}

/// A link to another span.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// Hex trace ID.
    pub trace_id: String,
    /// Hex span ID.
    pub span_id: String,
    /// Attributes.
    pub attributes: Vec<KeyValue>,
}

/// A span status.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// 0 unset, 1 ok, 2 error.
    pub code: i32,
    /// The message, absent when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// An attribute value as an OTLP/JSON `AnyValue`: whole numbers that fit an int64 are
/// `intValue` strings, other numbers `doubleValue`, arrays and objects `arrayValue` and
/// `kvlistValue`; null is the empty value.
pub fn any_value(v: &Value) -> Value {
    match v {
        Value::String(s) => json!({ "stringValue": s }),
        Value::Bool(b) => json!({ "boolValue": b }),
        Value::Number(n) => match n.as_i64() {
            Some(i) => json!({ "intValue": i.to_string() }),
            None => json!({ "doubleValue": n.as_f64().unwrap_or(0.0) }),
        },
        Value::Array(a) => {
            json!({ "arrayValue": { "values": a.iter().map(any_value).collect::<Vec<_>>() } })
        }
        Value::Object(m) => json!({ "kvlistValue": { "values": attributes(m) } }),
        Value::Null => json!({}),
    }
}

/// Attributes as OTLP/JSON key-values.
pub fn attributes(attrs: &Attributes) -> Vec<KeyValue> {
    attrs.iter().map(|(k, v)| kv(k, v)).collect()
}

fn kv(key: &str, v: &Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: any_value(v),
    }
}

fn string_kv(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: json!({ "stringValue": v }),
    }
}

/// The `SpanKind` number of a kind as Skein stores it.
pub fn kind_number(kind: &str) -> i32 {
    match kind {
        "internal" => 1,
        "server" => 2,
        "client" => 3,
        "producer" => 4,
        "consumer" => 5,
        _ => 0,
    }
}

/// The `StatusCode` number of a status as Skein stores it.
pub fn status_number(code: &str) -> i32 {
    match code {
        "ok" => 1,
        "error" => 2,
        _ => 0,
    }
}

/// A log record as a `log` span event (see the module docs).
pub fn log_event(l: &LogRecord, span_service: &str) -> Event {
    let mut attrs = vec![string_kv("message", &l.body)];
    let level = level(l);
    if !level.is_empty() {
        attrs.push(string_kv("level", level));
    }
    if l.service != span_service {
        attrs.push(string_kv("service.name", &l.service));
    }
    attrs.extend(attributes(&l.attributes));
    Event {
        time_unix_nano: l.time_unix_nano.to_string(),
        name: LOG_EVENT.to_string(),
        attributes: attrs,
    }
}

fn span(s: &Span) -> OtlpSpan {
    OtlpSpan {
        trace_id: s.trace_id.clone(),
        span_id: s.span_id.clone(),
        parent_span_id: s.parent_span_id.clone(),
        name: s.name.clone(),
        kind: kind_number(&s.kind),
        start_time_unix_nano: s.start_unix_nano.to_string(),
        end_time_unix_nano: s.end_unix_nano.to_string(),
        attributes: attributes(&s.attributes),
        events: s
            .events
            .iter()
            .map(|e| Event {
                time_unix_nano: e.time_unix_nano.to_string(),
                name: e.name.clone(),
                attributes: attributes(&e.attributes),
            })
            .collect(),
        links: s
            .links
            .iter()
            .map(|l| Link {
                trace_id: l.trace_id.clone(),
                span_id: l.span_id.clone(),
                attributes: attributes(&l.attributes),
            })
            .collect(),
        status: Status {
            code: status_number(&s.status_code),
            message: s.status_message.clone(),
        },
    }
}

fn resource(s: &Span) -> Resource {
    let mut attrs = attributes(&s.resource);
    if !s.resource.contains_key("service.name") {
        attrs.insert(0, string_kv("service.name", &s.service));
    }
    Resource { attributes: attrs }
}

/// One trace's spans (in tree order, as [`crate::engine::assemble`] gives them) and log
/// records as `resourceSpans`: one per service and resource, in order of first appearance.
/// `trace_id` names the trace whose root span takes the logs that carry no span of it.
pub fn resource_spans(trace_id: &str, spans: &[Span], logs: &[LogRecord]) -> Vec<ResourceSpans> {
    let mut out: Vec<OtlpSpan> = spans.iter().map(span).collect();
    for (l, i) in logs.iter().zip(log_placement(spans, trace_id, logs)) {
        if let (Some(target), Some(s)) = (out.get_mut(i), spans.get(i)) {
            target.events.push(log_event(l, &s.service));
        }
    }
    let mut groups: Vec<ResourceSpans> = Vec::new();
    let mut index: HashMap<(&str, String), usize> = HashMap::new();
    for (s, mut o) in spans.iter().zip(out) {
        // Stable by time; the span's own events and the log lines interleave.
        o.events
            .sort_by_key(|e| e.time_unix_nano.parse::<u64>().unwrap_or(0));
        let key = (
            s.service.as_str(),
            serde_json::to_string(s.resource.as_ref()).unwrap_or_default(),
        );
        let n = groups.len();
        let i = *index.entry(key).or_insert(n);
        if i == n {
            groups.push(ResourceSpans {
                resource: resource(s),
                scope_spans: vec![ScopeSpans {
                    scope: Scope {},
                    spans: Vec::new(),
                }],
            });
        }
        if let Some(scope) = groups.get_mut(i).and_then(|g| g.scope_spans.first_mut()) {
            scope.spans.push(o);
        }
    }
    groups
}
