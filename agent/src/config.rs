//! Agent configuration: a TOML file (`skein agent --config agent.toml`), every field optional
//! with embedded defaults. `agent.example.toml` at the repository root shows every key.
//! [`AgentConfig::from_file`] names the file, the key and the value of whatever is wrong.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod scrape;
mod stream;
#[cfg(test)]
mod tests;
mod tls;
pub use scrape::{ScrapeConfig, ScrapeTarget};
pub use stream::StreamSection;
pub use tls::TlsSection;

/// Everything the agent needs to run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Who this agent is and where it keeps its state.
    pub agent: AgentSection,
    /// Where to ship, and how.
    pub collector: CollectorSection,
    /// In a cluster: publish batches to the NATS JetStream stream instead (heartbeats still
    /// go to `collector.endpoint`).
    pub stream: StreamSection,
    /// How records are grouped into requests.
    pub batch: BatchSection,
    /// Retries of failed requests.
    pub retry: RetrySection,
    /// The disk buffer between reading and shipping.
    pub buffer: BufferSection,
    /// The local OTLP receiver for apps on this host.
    pub receiver: ReceiverSection,
    /// The agent's own `/metrics` endpoint.
    pub telemetry: TelemetrySection,
    /// Heartbeats to the collector.
    pub heartbeat: HeartbeatSection,
    /// Host and process resource metrics.
    pub host_metrics: HostMetricsSection,
    /// TLS on the receiver and telemetry listeners; absent means plain.
    pub tls: TlsSection,
    /// Connection limits of the receiver and telemetry listeners together.
    pub server: skein_model::server::ServerSection,
    /// Log files to tail, as `[[source]]` tables.
    #[serde(rename = "source")]
    pub sources: Vec<SourceConfig>,
    /// Prometheus text / OpenMetrics endpoints to scrape, as `[[scrape]]` tables.
    #[serde(rename = "scrape")]
    pub scrapes: Vec<ScrapeConfig>,
}

/// Identity and state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSection {
    /// The agent's id in the collector's registry. Default: the host name.
    pub id: Option<String>,
    /// The host name put on every record (`host.name`). Default: the system's host name.
    pub host_name: Option<String>,
    /// Checkpoints and the disk buffer live here. Default `./skein-agent-data`.
    pub data_dir: PathBuf,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection {
            id: None,
            host_name: None,
            data_dir: PathBuf::from("./skein-agent-data"),
        }
    }
}

/// Compression of requests to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// zstd (the default): the best ratio for its speed.
    Zstd,
    /// gzip, for collectors or proxies without zstd.
    Gzip,
    /// No compression.
    None,
}

/// The collector to ship to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorSection {
    /// Base URL of the collector's OTLP/HTTP listener; the agent posts to `/v1/logs`,
    /// `/v1/traces`, `/v1/metrics` and `/skein/v1/heartbeat` under it.
    /// Default `http://127.0.0.1:4318`.
    pub endpoint: String,
    /// Bearer token sent on every request (the collector's `auth.ingest_token`).
    pub token: Option<String>,
    /// Timeout of one request. Default 10s.
    pub timeout: Dur,
    /// Request compression. Default zstd.
    pub compression: Compression,
    /// Requests in flight at once; batches are acknowledged in order. Default 4 (measured
    /// best of 2 and 4 in BENCHMARKS.md).
    pub max_in_flight: usize,
    /// With an `https://` endpoint: a PEM file of CA certificates trusted besides the
    /// system's roots.
    pub ca_file: Option<PathBuf>,
    /// With an `https://` endpoint: a PEM client certificate to present (mTLS), with
    /// `client_key_file`.
    pub client_cert_file: Option<PathBuf>,
    /// The PEM private key of `client_cert_file`.
    pub client_key_file: Option<PathBuf>,
    /// Do not check the collector's certificate. For tests only; logged as a warning.
    pub insecure_skip_verify: bool,
}

impl CollectorSection {
    /// The TLS settings of the connection to the collector.
    pub fn tls(&self) -> skein_otlp::tls::ClientTls {
        skein_otlp::tls::ClientTls {
            ca_file: self.ca_file.clone(),
            client_cert_file: self.client_cert_file.clone(),
            client_key_file: self.client_key_file.clone(),
            insecure_skip_verify: self.insecure_skip_verify,
        }
    }

    /// The rustls config for an `https://` endpoint; None for `http://`. The error names the
    /// key and the file.
    pub fn tls_config(&self) -> Result<Option<skein_otlp::tls::rustls::ClientConfig>, String> {
        let tls = self.tls();
        if !self.endpoint.starts_with("https://") {
            if tls != skein_otlp::tls::ClientTls::default() {
                return Err(format!(
                    "key collector.endpoint: value \"{}\" is not https://, but TLS keys \
                     (ca_file, client_cert_file, client_key_file, insecure_skip_verify) are set",
                    self.endpoint
                ));
            }
            return Ok(None);
        }
        skein_otlp::tls::client_config(&tls).map(Some).map_err(|e| {
            let key = match e.path() {
                Some(p) if Some(p) == self.ca_file.as_deref() => "collector.ca_file",
                Some(p) if Some(p) == self.client_cert_file.as_deref() => {
                    "collector.client_cert_file"
                }
                Some(p) if Some(p) == self.client_key_file.as_deref() => {
                    "collector.client_key_file"
                }
                _ => "collector.endpoint",
            };
            match e.path() {
                Some(p) => format!("key {key}: value \"{}\": {e}", p.display()),
                None => format!("key {key}: {e}"),
            }
        })
    }
}

impl Default for CollectorSection {
    fn default() -> Self {
        CollectorSection {
            endpoint: "http://127.0.0.1:4318".into(),
            token: None,
            timeout: Dur::secs(10),
            compression: Compression::Zstd,
            max_in_flight: 4,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            insecure_skip_verify: false,
        }
    }
}

/// Batching: a batch is sent when any one limit is reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchSection {
    /// Most records in one request. Default 2000.
    pub max_records: usize,
    /// Most bytes (encoded, before compression) in one request. Default 1 MiB.
    pub max_bytes: usize,
    /// Longest a record waits for its batch to fill. Default 1s.
    pub max_wait: Dur,
}

impl Default for BatchSection {
    fn default() -> Self {
        BatchSection {
            max_records: 2000,
            max_bytes: 1024 * 1024,
            max_wait: Dur::secs(1),
        }
    }
}

/// Retries with exponential backoff and full jitter; `Retry-After` wins when the collector
/// sends one. Retries never end for retryable errors and for answers about the setup
/// rather than the data (401, 403, 404, ...): the disk buffer holds the data. A batch
/// refused for its content (413, 400, 422) is split instead; see [`crate::ship`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySection {
    /// First backoff. Default 200ms.
    pub initial_backoff: Dur,
    /// Backoff ceiling. Default 30s.
    pub max_backoff: Dur,
}

impl Default for RetrySection {
    fn default() -> Self {
        RetrySection {
            initial_backoff: Dur::millis(200),
            max_backoff: Dur::secs(30),
        }
    }
}

/// What happens when the disk buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Stop reading files and answer 503 to local OTLP clients until there is room.
    /// Nothing is lost: file checkpoints wait.
    Block,
    /// Delete the oldest unsent data to make room, counted in `skein_agent_dropped_total`.
    DropOldest,
}

/// The disk buffer: every batch is written here before it is sent, so a collector outage
/// loses nothing until the buffer is full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferSection {
    /// Size limit of the buffer in MiB. Default 512.
    pub max_mb: u64,
    /// Size of one buffer segment file in MiB. Default 16.
    pub segment_mb: u64,
    /// Policy when the buffer is full. Default block.
    pub when_full: WhenFull,
}

impl Default for BufferSection {
    fn default() -> Self {
        BufferSection {
            max_mb: 512,
            segment_mb: 16,
            when_full: WhenFull::Block,
        }
    }
}

/// The local OTLP receiver. Its ports differ from the collector's (4317/4318) so both can run
/// on one host. Point apps at it with `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4328`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiverSection {
    /// Whether to listen at all. Default true.
    pub enabled: bool,
    /// OTLP/HTTP address. Default 127.0.0.1:4328.
    pub http: String,
    /// OTLP/gRPC address. Default 127.0.0.1:4327.
    pub grpc: String,
    /// Largest request body, after decompression, in bytes. Default 16 MiB.
    pub max_request_bytes: usize,
    /// Requests handled at once; past it, 503 with Retry-After. Default 32.
    pub max_inflight_requests: usize,
}

impl Default for ReceiverSection {
    fn default() -> Self {
        ReceiverSection {
            enabled: true,
            http: "127.0.0.1:4328".into(),
            grpc: "127.0.0.1:4327".into(),
            max_request_bytes: 16 * 1024 * 1024,
            max_inflight_requests: 32,
        }
    }
}

/// The agent's own counters, in Prometheus text format at `/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    /// Address of `/metrics` (and `/healthz`). Empty turns it off. Default 127.0.0.1:7701.
    pub listen: String,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        TelemetrySection {
            listen: "127.0.0.1:7701".into(),
        }
    }
}

/// Heartbeats: id, host, version, sources and buffer fill, sent to the collector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeartbeatSection {
    /// How often. Default 5s.
    pub interval: Dur,
}

impl Default for HeartbeatSection {
    fn default() -> Self {
        HeartbeatSection {
            interval: Dur::secs(5),
        }
    }
}

/// Host and process resource metrics, sampled with sysinfo and sent as OTLP metrics named
/// after the OpenTelemetry host-metrics and process semantic conventions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostMetricsSection {
    /// Whether to sample at all. Default true.
    pub enabled: bool,
    /// Sampling interval. Default 10s.
    pub interval: Dur,
    /// File system types left out of `system.filesystem.*` (pseudo file systems).
    pub exclude_fs_types: Vec<String>,
    /// Processes to watch, grouped per service, as `[[host_metrics.process]]` tables.
    #[serde(rename = "process")]
    pub processes: Vec<ProcessMatch>,
}

impl Default for HostMetricsSection {
    fn default() -> Self {
        HostMetricsSection {
            enabled: true,
            interval: Dur::secs(10),
            exclude_fs_types: [
                "proc",
                "sysfs",
                "devtmpfs",
                "devpts",
                "cgroup",
                "cgroup2",
                "overlay",
                "squashfs",
                "tmpfs",
                "nsfs",
                "tracefs",
                "debugfs",
                "securityfs",
                "pstore",
                "bpf",
                "autofs",
                "mqueue",
                "hugetlbfs",
                "fusectl",
                "configfs",
                "binfmt_misc",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            processes: Vec::new(),
        }
    }
}

/// Processes of one service: matched by executable name or by a regex over the command line
/// (at least one of the two).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessMatch {
    /// The service the matched processes belong to (`service.name`).
    pub service: String,
    /// Exact executable name, as `ps -o comm` shows it.
    #[serde(default)]
    pub name: Option<String>,
    /// Regular expression matched against the whole command line (arguments joined by spaces).
    #[serde(default)]
    pub cmdline: Option<String>,
}

/// Where a file seen for the first time is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    /// The whole file.
    Beginning,
    /// Only what is written after the agent starts. Files that appear while the agent runs
    /// are always read from the beginning.
    End,
}

/// How lines are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object a line.
    Json,
    /// `key=value key2="quoted value"` pairs.
    Logfmt,
    /// The `regex` with named groups.
    Regex,
    /// Plain text: the line is the body.
    Plain,
    /// JSON when the line starts with `{`, else logfmt when it has `key=value` pairs, else plain.
    Auto,
}

/// Where a continuation line attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Attach {
    /// A line matching the pattern belongs to the record before it (stack traces).
    Previous,
    /// A line matching the pattern is continued by the line after it (a trailing `\`).
    Next,
}

/// Multiline joining: lines that match `pattern` are joined with their neighbour, so a stack
/// trace is one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// Regular expression a continuation line matches, e.g. `^\s+(at|\.\.\.)\s|^Caused by:`.
    pub pattern: String,
    /// Where a matching line attaches. Default previous.
    #[serde(default = "default_attach")]
    pub attach: Attach,
    /// Most lines in one record; the record is cut there. Default 500.
    #[serde(default = "default_max_lines")]
    pub max_lines: usize,
    /// A record waiting for more lines is sent after this long without one. Default 1s.
    #[serde(default = "default_multiline_timeout")]
    pub timeout: Dur,
}

fn default_attach() -> Attach {
    Attach::Previous
}
fn default_max_lines() -> usize {
    500
}
fn default_multiline_timeout() -> Dur {
    Dur::secs(1)
}

/// One `[[source]]`: a set of files tailed, parsed and labelled alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Name of the source, used in counters and the heartbeat. Must be unique.
    pub name: String,
    /// Glob patterns of files, e.g. `/var/log/payment/*.log`. Files that appear later are
    /// picked up at the next scan. Links are followed only within a pattern's base directory
    /// (the part before the first wildcard): a matched link leading elsewhere is skipped.
    pub paths: Vec<String>,
    /// Glob patterns of files to leave out (for example compressed rotations `*.gz`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// `service.name` of the records. Default: the source's name.
    #[serde(default)]
    pub service: Option<String>,
    /// Extra attributes put on every record of this source.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where files found at start without a checkpoint are read from. Default end.
    #[serde(default = "default_read_from")]
    pub read_from: ReadFrom,
    /// Line format. Default auto.
    #[serde(default = "default_format")]
    pub format: Format,
    /// Regular expression with named groups, for `format = "regex"`. Groups named like
    /// `timestamp`/`time`, `level`/`severity` and `message`/`msg` fill those fields; the rest
    /// become attributes.
    #[serde(default)]
    pub regex: Option<String>,
    /// Longest line kept, in bytes; the rest is cut and counted. Default 256 KiB.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Multiline joining; none by default.
    #[serde(default)]
    pub multiline: Option<MultilineConfig>,
}

fn default_read_from() -> ReadFrom {
    ReadFrom::End
}
fn default_format() -> Format {
    Format::Auto
}
fn default_max_line_bytes() -> usize {
    256 * 1024
}

impl SourceConfig {
    /// The service name records of this source carry.
    pub fn service_name(&self) -> &str {
        self.service.as_deref().unwrap_or(&self.name)
    }
}

/// A duration written as `500ms`, `5s`, `2m`, `1h`.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Dur(pub Duration);

impl Dur {
    /// Whole seconds.
    pub const fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }
    /// Milliseconds.
    pub const fn millis(ms: u64) -> Dur {
        Dur(Duration::from_millis(ms))
    }
}

impl fmt::Debug for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", String::from(*self))
    }
}

impl TryFrom<String> for Dur {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        skein_model::time::parse_duration(&s)
            .map(Dur)
            .map_err(|_| format!("value \"{s}\" is not a duration such as 500ms, 5s, 2m or 1h"))
    }
}

impl From<Dur> for String {
    fn from(d: Dur) -> String {
        let ms = d.0.as_millis();
        if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        }
    }
}

/// A configuration problem: the file, and what is wrong naming the key and value.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    /// The file, or `defaults`.
    pub file: String,
    /// What is wrong, naming the key and value.
    pub message: String,
}

impl AgentConfig {
    /// Reads and checks a TOML file; absent keys take defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            message: format!("cannot read: {e}"),
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError { file, message })
    }

    /// Parses and checks TOML text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let cfg: AgentConfig =
            toml::from_str(text).map_err(|e| e.to_string().trim().replace('\n', " "))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every value; the error names the key and the value.
    pub fn validate(&self) -> Result<(), String> {
        let ep = &self.collector.endpoint;
        let url = reqwest::Url::parse(ep).map_err(|e| {
            format!("key collector.endpoint: value \"{ep}\" is not a URL such as http://collector:4318 ({e})")
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "key collector.endpoint: value \"{ep}\" must start with http:// or https://"
            ));
        }
        self.collector.tls_config()?;
        self.stream.validate()?;
        self.tls.server()?;
        self.server.validate("server")?;
        if let Some(t) = &self.collector.token
            && (t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(
                "key collector.token: the token is empty or holds spaces or control characters"
                    .into(),
            );
        }
        let mut addrs = vec![];
        if self.receiver.enabled {
            addrs.push(("receiver.http", &self.receiver.http));
            addrs.push(("receiver.grpc", &self.receiver.grpc));
        }
        if !self.telemetry.listen.is_empty() {
            addrs.push(("telemetry.listen", &self.telemetry.listen));
        }
        for (key, v) in addrs {
            v.parse::<SocketAddr>().map_err(|_| {
                format!("key {key}: value \"{v}\" is not an address such as 127.0.0.1:4328")
            })?;
        }
        let positive = [
            (
                "collector.max_in_flight",
                self.collector.max_in_flight as u64,
            ),
            ("batch.max_records", self.batch.max_records as u64),
            ("batch.max_bytes", self.batch.max_bytes as u64),
            ("buffer.max_mb", self.buffer.max_mb),
            ("buffer.segment_mb", self.buffer.segment_mb),
            (
                "receiver.max_request_bytes",
                self.receiver.max_request_bytes as u64,
            ),
            (
                "receiver.max_inflight_requests",
                self.receiver.max_inflight_requests as u64,
            ),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(format!(
                    "key {key}: value 0 is not allowed, it must be at least 1"
                ));
            }
        }
        if self.buffer.segment_mb * 2 > self.buffer.max_mb {
            return Err(format!(
                "key buffer.max_mb: value {} must be at least twice buffer.segment_mb ({})",
                self.buffer.max_mb, self.buffer.segment_mb
            ));
        }
        for (key, d) in [
            ("collector.timeout", self.collector.timeout),
            ("batch.max_wait", self.batch.max_wait),
            ("retry.initial_backoff", self.retry.initial_backoff),
            ("retry.max_backoff", self.retry.max_backoff),
            ("heartbeat.interval", self.heartbeat.interval),
            ("host_metrics.interval", self.host_metrics.interval),
        ] {
            if d.0.is_zero() {
                return Err(format!("key {key}: value \"0s\" is not allowed"));
            }
        }
        if self.retry.max_backoff.0 < self.retry.initial_backoff.0 {
            return Err(format!(
                "key retry.max_backoff: value {:?} is shorter than retry.initial_backoff ({:?})",
                self.retry.max_backoff, self.retry.initial_backoff
            ));
        }
        for (i, p) in self.host_metrics.processes.iter().enumerate() {
            let key = format!("host_metrics.process[{i}]");
            if p.name.is_none() && p.cmdline.is_none() {
                return Err(format!(
                    "key {key}: service \"{}\" needs name or cmdline to match processes",
                    p.service
                ));
            }
            if let Some(re) = &p.cmdline {
                regex::Regex::new(re).map_err(|e| {
                    format!("key {key}.cmdline: value \"{re}\" is not a regular expression: {e}")
                })?;
            }
        }
        scrape::validate_all(&self.scrapes)?;
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            let key = format!("source[{i}]");
            if s.name.is_empty() || !names.insert(s.name.as_str()) {
                return Err(format!(
                    "key {key}.name: value \"{}\" is empty or used by another source",
                    s.name
                ));
            }
            if s.paths.is_empty() {
                return Err(format!(
                    "key {key}.paths: source \"{}\" has no paths",
                    s.name
                ));
            }
            for p in s.paths.iter().chain(&s.exclude) {
                glob::Pattern::new(p).map_err(|e| {
                    format!("key {key}.paths: value \"{p}\" is not a glob pattern: {e}")
                })?;
            }
            if s.max_line_bytes < 64 {
                return Err(format!(
                    "key {key}.max_line_bytes: value {} is too small, the least is 64",
                    s.max_line_bytes
                ));
            }
            match (&s.format, &s.regex) {
                (Format::Regex, None) => {
                    return Err(format!(
                        "key {key}.regex: format = \"regex\" needs a regex with named groups"
                    ));
                }
                (_, Some(re)) => {
                    let r = regex::Regex::new(re).map_err(|e| {
                        format!("key {key}.regex: value \"{re}\" is not a regular expression: {e}")
                    })?;
                    if r.capture_names().flatten().next().is_none() {
                        return Err(format!(
                            "key {key}.regex: value \"{re}\" has no named groups such as (?P<message>.*)"
                        ));
                    }
                }
                _ => {}
            }
            if let Some(m) = &s.multiline {
                regex::Regex::new(&m.pattern).map_err(|e| {
                    format!(
                        "key {key}.multiline.pattern: value \"{}\" is not a regular expression: {e}",
                        m.pattern
                    )
                })?;
                if m.max_lines == 0 {
                    return Err(format!(
                        "key {key}.multiline.max_lines: value 0 is not allowed"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The host name: configured, else the system's.
    pub fn host_name(&self) -> String {
        self.agent
            .host_name
            .clone()
            .or_else(sysinfo::System::host_name)
            .unwrap_or_else(|| "unknown-host".into())
    }

    /// The agent id: configured, else the host name.
    pub fn agent_id(&self) -> String {
        self.agent.id.clone().unwrap_or_else(|| self.host_name())
    }
}
