//! JSON shapes of the query API, shared by the server (skein-query) and its clients (the CLI,
//! the TUI).

use crate::{LogRecord, Span};
use serde::{Deserialize, Serialize};

/// `GET /api/v1/traces/{key}`: one request's whole story.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceResponse {
    /// The trace the key belongs to (the one with the most spans when several share the key).
    pub trace_id: String,
    /// Every trace ID found for the key, the main one first. More than one when a request ID
    /// spans retries, for example.
    #[serde(default)]
    pub trace_ids: Vec<String>,
    /// Services that took part, in order of first appearance.
    pub services: Vec<String>,
    /// Spans in tree order: parent before children, siblings by start time.
    pub spans: Vec<Span>,
    /// Logs by time.
    pub logs: Vec<LogRecord>,
    /// True when a bound cut the answer (see the API docs for the bounds).
    #[serde(default)]
    pub truncated: bool,
}

/// `GET /api/v1/logs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogsResponse {
    /// Matching logs, newest first.
    pub logs: Vec<LogRecord>,
}

/// One trace in `GET /api/v1/traces`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceSummary {
    /// The trace ID.
    pub trace_id: String,
    /// Service of the root span (or of the earliest span when the root is missing).
    pub root_service: String,
    /// Name of the root span.
    pub root_name: String,
    /// Start of the earliest span.
    pub start_unix_nano: u64,
    /// From the earliest start to the latest end.
    pub duration_ns: u64,
    /// Number of spans.
    pub span_count: usize,
    /// True when any span has error status.
    pub error: bool,
    /// Services that took part.
    pub services: Vec<String>,
}

/// `GET /api/v1/traces`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TracesResponse {
    /// Matching traces, newest first.
    pub traces: Vec<TraceSummary>,
}

/// Every error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A short kind: `bad_request`, `not_found`, `unauthorized`, `unavailable`, `internal`.
    pub error: String,
    /// What went wrong and what to do about it.
    pub message: String,
}
