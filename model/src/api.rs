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

/// `GET /api/v1/logs/context`: the lines around one line, from the same service and host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogContextResponse {
    /// Earlier lines, oldest first.
    pub before: Vec<LogRecord>,
    /// The line's moment and later, oldest first.
    pub after: Vec<LogRecord>,
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

/// `POST /skein/v1/heartbeat` on the collector's OTLP/HTTP port: an agent says it is alive.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The agent's id (default: its host name). At most 256 bytes.
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// The agent's version.
    pub version: String,
    /// When the agent started, unix nanoseconds.
    #[serde(default)]
    pub started_unix_nano: u64,
    /// Its file sources.
    #[serde(default)]
    pub sources: Vec<SourceStatus>,
    /// Disk buffer fill.
    #[serde(default)]
    pub buffer: BufferStatus,
    /// Latest host figures, when host metrics are on.
    #[serde(default)]
    pub host_summary: Option<HostSummary>,
    /// Why the agent holds its batches, when the collector refuses them for a reason other
    /// than their content (a token it does not take, a path a proxy does not know): one
    /// sentence. Absent while shipping works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_blocked: Option<String>,
    /// The identity (subject CN, else first DNS name) of the client certificate the heartbeat
    /// came with, when the collector requires client certificates. Set by the collector, which
    /// then also keys the agent by it: an agent cannot report as another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

/// One file source in a heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// Source name.
    pub name: String,
    /// Service its records carry.
    pub service: String,
    /// Files tailed now.
    pub files: u64,
}

/// Disk buffer fill in a heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BufferStatus {
    /// Bytes of unsent data.
    pub bytes: u64,
    /// The buffer's size limit.
    pub max_bytes: u64,
}

/// Latest host figures in a heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HostSummary {
    /// Host CPU use, 0 to 1.
    pub cpu_utilization: f64,
    /// Memory in use, bytes.
    pub memory_used_bytes: u64,
    /// Memory in all, bytes.
    pub memory_total_bytes: u64,
    /// One-minute load average.
    pub load1: f64,
}

/// One agent in `GET /api/v1/agents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// `up`, or `down` when no heartbeat came for `down_after`.
    pub state: String,
    /// Last heartbeat, RFC 3339.
    pub last_seen: String,
    /// Last heartbeat, unix nanoseconds.
    pub last_seen_unix_nano: u64,
    /// Seconds since the last heartbeat.
    pub silent_seconds: f64,
    /// The last heartbeat itself.
    pub heartbeat: Heartbeat,
}

/// `GET /api/v1/agents`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentsResponse {
    /// Every agent ever seen (until forgotten), by id.
    pub agents: Vec<AgentStatus>,
    /// Silence after which an agent is down, seconds.
    pub down_after_seconds: f64,
}

/// One host in `GET /api/v1/hosts`: its agents' state and its latest resource figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostStatus {
    /// Host name.
    pub host: String,
    /// `up` when any of its agents is up, else `down`.
    pub state: String,
    /// Ids of the agents on it.
    pub agents: Vec<String>,
    /// Newest heartbeat from it, RFC 3339.
    pub last_seen: String,
    /// Seconds since that heartbeat.
    pub silent_seconds: f64,
    /// CPU use, 0 to 1, from the newest heartbeat with host figures.
    pub cpu_utilization: Option<f64>,
    /// Memory in use, bytes.
    pub memory_used_bytes: Option<u64>,
    /// Memory in all, bytes.
    pub memory_total_bytes: Option<u64>,
    /// One-minute load average.
    pub load1: Option<f64>,
    /// Unsent bytes in its agents' disk buffers.
    pub buffer_bytes: u64,
}

/// `GET /api/v1/hosts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostsResponse {
    /// Every host with an agent, by name.
    pub hosts: Vec<HostStatus>,
}
