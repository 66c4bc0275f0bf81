//! Log records and spans as Skein stores and serves them.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Attributes as a JSON object: OTLP `AnyValue`s mapped to JSON (strings, numbers, booleans,
/// arrays, objects; bytes as lowercase hex).
pub type Attributes = serde_json::Map<String, serde_json::Value>;

/// One log line with the resource it came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Event time. When the sender gave none, the observed time, else the time Skein received it.
    pub time_unix_nano: u64,
    /// When the sender (an agent, an SDK) saw the record.
    #[serde(default)]
    pub observed_time_unix_nano: u64,
    /// `service.name` of the resource, or `unknown_service`.
    pub service: String,
    /// `host.name` of the resource, empty when unknown.
    #[serde(default)]
    pub host: String,
    /// Severity as the sender wrote it, for example `ERROR`.
    #[serde(default)]
    pub severity_text: String,
    /// OTLP severity number, 1 (TRACE) to 24 (FATAL4); 0 when unset.
    #[serde(default)]
    pub severity_number: i32,
    /// The message. Structured (map or array) bodies are kept as compact JSON text.
    #[serde(default)]
    pub body: String,
    /// Lowercase hex trace ID, empty when the record has none.
    #[serde(default)]
    pub trace_id: String,
    /// Lowercase hex span ID, empty when the record has none.
    #[serde(default)]
    pub span_id: String,
    /// The record's own attributes.
    #[serde(default)]
    pub attributes: Attributes,
    /// The resource's attributes (service.name and host.name included), shared by every
    /// record of the resource.
    #[serde(default)]
    pub resource: Arc<Attributes>,
    /// Correlation keys other than its own trace ID: request IDs and the like (see
    /// [`crate::keys`]). The trace ID is a key too, kept once, in `trace_id`.
    #[serde(default)]
    pub keys: Vec<String>,
}

/// One span with the resource it came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// Lowercase hex trace ID (32 characters).
    pub trace_id: String,
    /// Lowercase hex span ID (16 characters).
    pub span_id: String,
    /// Lowercase hex parent span ID, empty for a root span.
    #[serde(default)]
    pub parent_span_id: String,
    /// `service.name` of the resource, or `unknown_service`.
    pub service: String,
    /// `host.name` of the resource, empty when unknown.
    #[serde(default)]
    pub host: String,
    /// Operation name.
    pub name: String,
    /// `internal`, `server`, `client`, `producer`, `consumer` or `unspecified`.
    pub kind: String,
    /// Start time.
    pub start_unix_nano: u64,
    /// End time.
    pub end_unix_nano: u64,
    /// End minus start, 0 when the end is before the start.
    pub duration_ns: u64,
    /// `unset`, `ok` or `error`.
    pub status_code: String,
    /// Status message, usually the error.
    #[serde(default)]
    pub status_message: String,
    /// The span's own attributes.
    #[serde(default)]
    pub attributes: Attributes,
    /// The resource's attributes, shared by every span of the resource.
    #[serde(default)]
    pub resource: Arc<Attributes>,
    /// Events recorded during the span (exceptions, for example).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<SpanEvent>,
    /// Links to other spans.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<SpanLink>,
    /// Correlation keys other than its own trace ID (see [`LogRecord::keys`]).
    #[serde(default)]
    pub keys: Vec<String>,
}

impl Span {
    /// True when the span's status is error.
    pub fn is_error(&self) -> bool {
        self.status_code == "error"
    }
}

/// An event inside a span.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    /// When it happened.
    pub time_unix_nano: u64,
    /// Its name, for example `exception`.
    pub name: String,
    /// Its attributes.
    #[serde(default)]
    pub attributes: Attributes,
}

/// A link from a span to another span.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanLink {
    /// Lowercase hex trace ID of the linked span.
    pub trace_id: String,
    /// Lowercase hex span ID of the linked span.
    pub span_id: String,
    /// The link's attributes.
    #[serde(default)]
    pub attributes: Attributes,
}
