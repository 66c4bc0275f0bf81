//! Collector configuration: a TOML file (`--config`) with every field optional, embedded
//! defaults, and flags on top. [`CollectorConfig::validate`] names the bad key and value.

use serde::{Deserialize, Serialize};
use skein_model::{KeyConfig, Limits};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything the collector needs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorConfig {
    /// Where the WAL, indexes and metrics live. Default `./skein-data`.
    pub data_dir: PathBuf,
    /// Listening addresses.
    pub listen: ListenConfig,
    /// Bearer tokens; empty means none required.
    pub auth: AuthConfig,
    /// Request and record limits.
    pub limits: LimitsConfig,
    /// Write-ahead log.
    pub wal: WalSection,
    /// Indexing.
    pub index: IndexSection,
    /// How long data is kept.
    pub retention: RetentionSection,
    /// Which attributes carry correlation keys.
    pub correlation: KeyConfig,
    /// Query limits.
    pub query: QuerySection,
    /// The registry of agents.
    pub agents: AgentsSection,
    /// The metrics store and the metrics derived from spans.
    pub metrics: MetricsSection,
    /// Alert rules, receivers, routing and silences' bounds.
    pub alerts: skein_alert::config::AlertsSection,
    /// TLS on the three listeners; absent means plain HTTP and gRPC.
    pub tls: TlsSection,
    /// Connection limits of the three listeners together.
    pub server: skein_model::server::ServerSection,
    /// Cluster mode (NATS JetStream); off unless `cluster.nats` is set.
    pub cluster: skein_cluster::ClusterConfig,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            data_dir: PathBuf::from("./skein-data"),
            listen: ListenConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            wal: WalSection::default(),
            index: IndexSection::default(),
            retention: RetentionSection::default(),
            correlation: KeyConfig::default(),
            query: QuerySection::default(),
            agents: AgentsSection::default(),
            metrics: MetricsSection::default(),
            alerts: skein_alert::config::AlertsSection::default(),
            tls: TlsSection::default(),
            server: skein_model::server::ServerSection::default(),
            cluster: skein_cluster::ClusterConfig::default(),
        }
    }
}

pub use skein_otlp::tls::section::TlsSection;

/// The metrics store (`<data_dir>/tsdb`) and the metrics derived from spans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Samples older than this are deleted (whole blocks at a time). Default `15d`.
    pub retention: String,
    /// How often the in-memory head is written to a block file. Default `1h`.
    pub block_duration: String,
    /// Series one metric may have; samples of further label sets are refused (partial success,
    /// or 400 when nothing in the request is accepted). Default 10,000.
    pub max_series_per_metric: usize,
    /// Series in the whole store. Default 1,000,000.
    pub max_series: usize,
    /// MiB of block files kept in memory for queries. Default 256.
    pub cache_mb: u64,
    /// Interval of the RED figures and service graph derived from spans. Default `5s` (alert
    /// rules over these series run right after each write, so this bounds their delay).
    pub derive_interval: String,
    /// How long a client span waits for its server span before its callee counts as not
    /// instrumented (a database, an outside API). Default `30s`.
    pub join_window: String,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            retention: "15d".into(),
            block_duration: "1h".into(),
            max_series_per_metric: 10_000,
            max_series: 1_000_000,
            cache_mb: 256,
            derive_interval: "5s".into(),
            join_window: "30s".into(),
        }
    }
}

/// Listening addresses. Port 0 picks a free port (the collector logs the real one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// OTLP/HTTP. Default 127.0.0.1:4318.
    pub otlp_http: String,
    /// OTLP/gRPC. Default 127.0.0.1:4317.
    pub otlp_grpc: String,
    /// Query API. Default 127.0.0.1:7700.
    pub api: String,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            otlp_http: "127.0.0.1:4318".into(),
            otlp_grpc: "127.0.0.1:4317".into(),
            api: "127.0.0.1:7700".into(),
        }
    }
}

/// Bearer tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Required on OTLP requests when set (`Authorization: Bearer <token>`).
    pub ingest_token: Option<String>,
    /// Required on query API requests (not /healthz and /readyz) when set.
    pub query_token: Option<String>,
}

/// Request and record limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest OTLP request body, after decompression, in bytes. Default 16 MiB.
    pub max_request_bytes: usize,
    /// Batches waiting for the WAL writer; past this, ingest answers 503 with Retry-After.
    /// Default 256.
    pub ingest_queue: usize,
    /// Batches written to the WAL and waiting for the indexer. Default 64.
    pub index_queue: usize,
    /// OTLP requests handled at once (HTTP and gRPC together); past it, 503 with Retry-After.
    /// With `max_request_bytes` it bounds the memory of bodies in flight. Default 64.
    pub max_inflight_requests: usize,
    /// Most attributes on one record; a record over it is rejected. Default 512.
    pub max_attributes: usize,
    /// Largest log body or attribute value in bytes. Default 1 MiB.
    pub max_value_bytes: usize,
    /// Most events plus links on one span. Default 1024.
    pub max_span_events: usize,
    /// Largest resource (its attributes, encoded) of a log record or span, in bytes; records
    /// under a larger one are rejected. Every stored record repeats its resource. Default
    /// 64 KiB.
    pub max_resource_bytes: usize,
    /// Most records (log records, spans or metric samples: one per histogram bucket) in one
    /// OTLP request; a larger request is refused with 413 before it is decoded. Default
    /// 100,000.
    pub max_records_per_request: u64,
    /// Memory for OTLP requests being decoded and converted at once, in MiB, estimated from
    /// each request's records and sizes before it is decoded. A request that does not fit now
    /// gets 429 (gRPC: RESOURCE_EXHAUSTED with retry info); one larger than the whole budget
    /// gets 413. Default 256.
    pub memory_budget_mb: u64,
    /// How long the id of a stored batch (the `skein-batch-id` header the agent sends) is
    /// remembered, in seconds: a retry of it within this time is answered 2xx and not stored
    /// again. Default 600.
    pub dedupe_window_secs: u64,
    /// The collector's memory limit in MiB: above it (anonymous resident memory, the heap;
    /// the index files the kernel maps do not count) ingest takes one request at a time and
    /// answers the others 503 with `Retry-After` until memory is back under 90 % of it, while
    /// queries are still answered
    /// (`collector/src/memory.rs`). It must hold what the other limits let grow:
    /// `index.writer_memory_mb` for the logs writer and half of it for the spans writer,
    /// `limits.memory_budget_mb` and `metrics.cache_mb`. 0 turns it off. Default 1536.
    pub memory_limit_mb: u64,
    /// Most batch ids remembered; past it the oldest go first, so the window is shorter under
    /// a flood of batches. About 200 bytes each. Default 200,000 (about 40 MiB at most).
    pub dedupe_max_ids: u64,
}

impl LimitsConfig {
    /// The admission limits of the OTLP transports.
    pub fn admission(&self) -> skein_otlp::AdmissionLimits {
        skein_otlp::AdmissionLimits {
            max_records_per_request: self.max_records_per_request,
            memory_budget_bytes: self.memory_budget_mb.saturating_mul(1024 * 1024),
        }
    }

    /// The per-record limits.
    pub fn record(&self) -> Limits {
        Limits {
            max_attributes: self.max_attributes,
            max_value_bytes: self.max_value_bytes,
            max_span_events: self.max_span_events,
            max_resource_bytes: self.max_resource_bytes,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_request_bytes: 16 * 1024 * 1024,
            ingest_queue: 256,
            index_queue: 64,
            max_inflight_requests: 64,
            max_attributes: Limits::default().max_attributes,
            max_value_bytes: Limits::default().max_value_bytes,
            max_span_events: Limits::default().max_span_events,
            max_resource_bytes: Limits::default().max_resource_bytes,
            max_records_per_request: skein_otlp::AdmissionLimits::default().max_records_per_request,
            memory_budget_mb: skein_otlp::AdmissionLimits::default().memory_budget_bytes >> 20,
            memory_limit_mb: 1536,
            dedupe_window_secs: 600,
            dedupe_max_ids: 200_000,
        }
    }
}

/// How the WAL syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WalSync {
    /// fsync before every acknowledgement (batches that arrive together share one fsync).
    Batch,
    /// fsync at most every `sync_interval_ms`: faster, and a machine crash (not a process
    /// crash) may lose the last interval.
    Interval,
}

/// Write-ahead log settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalSection {
    /// `batch` (default) or `interval`.
    pub sync: WalSync,
    /// With `interval`: milliseconds between fsyncs. Default 100.
    pub sync_interval_ms: u64,
    /// Segment file size in MiB. Default 64.
    pub segment_mb: u64,
    /// Most MiB the WAL may hold (records not yet indexed); past it ingest answers 503.
    /// Default 2048.
    pub max_mb: u64,
    /// Most MiB of the metrics WAL (samples not yet in a block); past it metrics ingest answers
    /// 503. A block is written early when the WAL passes half of it. Default 4096.
    pub metrics_max_mb: u64,
}

impl Default for WalSection {
    fn default() -> Self {
        WalSection {
            sync: WalSync::Batch,
            sync_interval_ms: 100,
            segment_mb: 64,
            max_mb: 2048,
            metrics_max_mb: 4096,
        }
    }
}

/// Indexing settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexSection {
    /// Milliseconds between commits while records arrive: how soon a record is searchable.
    /// Default 500.
    pub commit_interval_ms: u64,
    /// Close a split after this long (`1h`). Default 1h.
    pub split_max_age: String,
    /// Indexing memory per signal, MiB. Default 256 for logs; spans get half.
    pub writer_memory_mb: usize,
    /// Indexing threads per signal. Default 2.
    pub indexing_threads: usize,
    /// Doc-store block size in KiB before zstd compression: larger stores less and reads a
    /// record back slower. Default 64.
    pub docstore_block_kb: usize,
}

impl Default for IndexSection {
    fn default() -> Self {
        IndexSection {
            commit_interval_ms: 500,
            split_max_age: "1h".into(),
            writer_memory_mb: 256,
            indexing_threads: 2,
            docstore_block_kb: 64,
        }
    }
}

/// Retention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSection {
    /// Delete splits whose newest record is older than this (`7d`; `0` keeps all). Default 7d.
    pub max_age: String,
    /// Most MiB each of logs and spans may take; oldest splits go first (0: no limit).
    /// Default 0.
    pub max_mb: u64,
}

impl Default for RetentionSection {
    fn default() -> Self {
        RetentionSection {
            max_age: "7d".into(),
            max_mb: 0,
        }
    }
}

/// Query limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuerySection {
    /// Largest `limit` a search accepts. Default 1000.
    pub max_limit: usize,
    /// Most records one trace answer holds (spans plus logs). Default 10000.
    pub max_trace_records: usize,
    /// A query running longer than this gets 503 and its work is stopped. Milliseconds,
    /// default 10000.
    pub timeout_ms: u64,
    /// Queries running at once; more wait for a place within their time limit, then get 503
    /// with Retry-After. Default 8. (Live tails have their own limit.)
    pub max_concurrent: usize,
}

impl Default for QuerySection {
    fn default() -> Self {
        QuerySection {
            max_limit: 1000,
            max_trace_records: 10_000,
            timeout_ms: 10_000,
            max_concurrent: 8,
        }
    }
}

/// The registry of agents (`GET /api/v1/agents`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentsSection {
    /// An agent without a heartbeat for this long is down (`15s`). Default 15s.
    pub down_after: String,
}

impl Default for AgentsSection {
    fn default() -> Self {
        AgentsSection {
            down_after: "15s".into(),
        }
    }
}

/// A configuration problem: file, key, value, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    /// The file, or `flags`/`defaults`.
    pub source_name: String,
    /// What is wrong, naming the key and value.
    pub message: String,
}

impl CollectorConfig {
    /// Reads a TOML file; absent keys take defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: name.clone(),
            message: format!("cannot read: {e}"),
        })?;
        let cfg: CollectorConfig = toml::from_str(&text).map_err(|e| ConfigError {
            source_name: name.clone(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        cfg.validate().map_err(|message| ConfigError {
            source_name: name,
            message,
        })?;
        Ok(cfg)
    }

    /// The spans index writer's memory for a logs writer of `logs_mb`.
    pub fn spans_writer_mb(logs_mb: usize) -> usize {
        (logs_mb / 2).max(32)
    }

    /// MiB the limits known ahead let the collector hold: both index writers, the decoding
    /// budget and the metrics cache.
    pub fn known_memory_mb(&self) -> u64 {
        let w = self.index.writer_memory_mb as u64;
        w + Self::spans_writer_mb(self.index.writer_memory_mb) as u64
            + self.limits.memory_budget_mb
            + self.metrics.cache_mb
    }

    /// Checks every value; the error names the key and the value.
    pub fn validate(&self) -> Result<(), String> {
        self.cluster.validate()?;
        for (key, v) in [
            ("listen.otlp_http", &self.listen.otlp_http),
            ("listen.otlp_grpc", &self.listen.otlp_grpc),
            ("listen.api", &self.listen.api),
        ] {
            v.parse::<SocketAddr>().map_err(|_| {
                format!("key {key}: value \"{v}\" is not an address such as 127.0.0.1:4318")
            })?;
        }
        let positive = [
            (
                "limits.max_request_bytes",
                self.limits.max_request_bytes as u64,
            ),
            ("limits.ingest_queue", self.limits.ingest_queue as u64),
            ("limits.index_queue", self.limits.index_queue as u64),
            (
                "limits.max_inflight_requests",
                self.limits.max_inflight_requests as u64,
            ),
            ("limits.max_attributes", self.limits.max_attributes as u64),
            ("limits.max_value_bytes", self.limits.max_value_bytes as u64),
            (
                "limits.max_resource_bytes",
                self.limits.max_resource_bytes as u64,
            ),
            (
                "limits.max_records_per_request",
                self.limits.max_records_per_request,
            ),
            ("limits.memory_budget_mb", self.limits.memory_budget_mb),
            ("limits.dedupe_window_secs", self.limits.dedupe_window_secs),
            ("limits.dedupe_max_ids", self.limits.dedupe_max_ids),
            ("wal.sync_interval_ms", self.wal.sync_interval_ms),
            ("wal.segment_mb", self.wal.segment_mb),
            ("wal.max_mb", self.wal.max_mb),
            ("wal.metrics_max_mb", self.wal.metrics_max_mb),
            ("index.commit_interval_ms", self.index.commit_interval_ms),
            ("index.indexing_threads", self.index.indexing_threads as u64),
            (
                "index.docstore_block_kb",
                self.index.docstore_block_kb as u64,
            ),
            ("query.max_limit", self.query.max_limit as u64),
            (
                "query.max_trace_records",
                self.query.max_trace_records as u64,
            ),
            ("query.timeout_ms", self.query.timeout_ms),
            ("query.max_concurrent", self.query.max_concurrent as u64),
            (
                "metrics.max_series_per_metric",
                self.metrics.max_series_per_metric as u64,
            ),
            ("metrics.max_series", self.metrics.max_series as u64),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(format!(
                    "key {key}: value 0 is not allowed, it must be at least 1"
                ));
            }
        }
        if self.limits.max_request_bytes > 1024 * 1024 * 1024 {
            return Err(format!(
                "key limits.max_request_bytes: value {} is over the ceiling of 1 GiB",
                self.limits.max_request_bytes
            ));
        }
        if self.index.writer_memory_mb < 32 {
            return Err(format!(
                "key index.writer_memory_mb: value {} is too small, the least is 32",
                self.index.writer_memory_mb
            ));
        }
        let known = self.known_memory_mb();
        if self.limits.memory_limit_mb > 0 && self.limits.memory_limit_mb < known {
            return Err(format!(
                "key limits.memory_limit_mb: value {} is less than the {known} MiB the other limits let the collector hold (index.writer_memory_mb {} for the logs writer + {} for the spans writer + limits.memory_budget_mb {} + metrics.cache_mb {}); raise it or lower those",
                self.limits.memory_limit_mb,
                self.index.writer_memory_mb,
                Self::spans_writer_mb(self.index.writer_memory_mb),
                self.limits.memory_budget_mb,
                self.metrics.cache_mb,
            ));
        }
        if self.wal.segment_mb > self.wal.max_mb {
            return Err(format!(
                "key wal.segment_mb: value {} is larger than wal.max_mb ({})",
                self.wal.segment_mb, self.wal.max_mb
            ));
        }
        self.split_max_age()?;
        self.retention_max_age()?;
        self.agents_down_after()?;
        self.metrics_durations()?;
        self.alerts.plan()?;
        self.tls.server()?;
        self.server.validate("server")?;
        for (key, t) in [
            ("auth.ingest_token", &self.auth.ingest_token),
            ("auth.query_token", &self.auth.query_token),
        ] {
            if let Some(t) = t
                && (t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()))
            {
                return Err(format!(
                    "key {key}: the token is empty or holds spaces or control characters"
                ));
            }
        }
        Ok(())
    }

    /// `index.split_max_age` as a duration.
    pub fn split_max_age(&self) -> Result<Duration, String> {
        let d = skein_model::time::parse_duration(&self.index.split_max_age).map_err(|e| {
            format!(
                "key index.split_max_age: value \"{}\": {e}",
                self.index.split_max_age
            )
        })?;
        if d < Duration::from_secs(1) {
            return Err(format!(
                "key index.split_max_age: value \"{}\" is shorter than 1s",
                self.index.split_max_age
            ));
        }
        Ok(d)
    }

    /// `metrics.retention`, `metrics.block_duration`, `metrics.derive_interval` and
    /// `metrics.join_window`.
    pub fn metrics_durations(&self) -> Result<(Duration, Duration, Duration, Duration), String> {
        let d = |key: &str, v: &str, least: Duration| match skein_model::time::parse_duration(v) {
            Ok(d) if d >= least => Ok(d),
            Ok(_) => Err(format!(
                "key {key}: value \"{v}\" is shorter than {}",
                humantime::format_duration(least)
            )),
            Err(e) => Err(format!("key {key}: value \"{v}\": {e}")),
        };
        Ok((
            d(
                "metrics.retention",
                &self.metrics.retention,
                Duration::from_secs(60),
            )?,
            d(
                "metrics.block_duration",
                &self.metrics.block_duration,
                Duration::from_secs(10),
            )?,
            d(
                "metrics.derive_interval",
                &self.metrics.derive_interval,
                Duration::from_secs(1),
            )?,
            d(
                "metrics.join_window",
                &self.metrics.join_window,
                Duration::from_secs(1),
            )?,
        ))
    }

    /// `agents.down_after` as a duration.
    pub fn agents_down_after(&self) -> Result<Duration, String> {
        let v = &self.agents.down_after;
        match skein_model::time::parse_duration(v) {
            Ok(d) if !d.is_zero() => Ok(d),
            _ => Err(format!(
                "key agents.down_after: value \"{v}\" is not a duration such as 15s or 1m"
            )),
        }
    }

    /// `retention.max_age` as a duration; None when `0` (keep everything).
    pub fn retention_max_age(&self) -> Result<Option<Duration>, String> {
        if self.retention.max_age.trim() == "0" {
            return Ok(None);
        }
        skein_model::time::parse_duration(&self.retention.max_age)
            .map(Some)
            .map_err(|e| {
                format!(
                    "key retention.max_age: value \"{}\": {e}",
                    self.retention.max_age
                )
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        CollectorConfig::default().validate().unwrap();
    }

    #[test]
    fn example_file_parses() {
        let text = include_str!("../../collector.example.toml");
        let cfg: CollectorConfig = toml::from_str(text).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.listen.api, "127.0.0.1:7700");
        let plan = cfg.alerts.plan().unwrap();
        let route = plan.route.unwrap();
        assert_eq!(route.receiver, "team-chat");
        assert_eq!(route.children.len(), 1);
        assert_eq!(route.children[0].timing.group_wait, Duration::from_secs(10));
        assert_eq!(
            route.children[0].timing.repeat_interval,
            Duration::from_secs(4 * 3600)
        );
        assert_eq!(plan.inhibit.len(), 1);
        assert_eq!(plan.receivers[0].headers.len(), 1);
    }

    #[test]
    fn bad_values_name_key_and_value() {
        let mut c = CollectorConfig::default();
        c.listen.api = "localhost".into();
        let e = c.validate().unwrap_err();
        assert!(e.contains("listen.api") && e.contains("localhost"), "{e}");

        let mut c = CollectorConfig::default();
        c.retention.max_age = "forever".into();
        let e = c.validate().unwrap_err();
        assert!(
            e.contains("retention.max_age") && e.contains("forever"),
            "{e}"
        );

        let mut c = CollectorConfig::default();
        c.wal.max_mb = 0;
        assert!(c.validate().unwrap_err().contains("wal.max_mb"));

        let mut c = CollectorConfig::default();
        c.tls.cert_file = Some("/no/such/cert.pem".into());
        let e = c.validate().unwrap_err();
        assert!(
            e.contains("tls.cert_file") && e.contains("needs tls.key_file"),
            "{e}"
        );
        c.tls.key_file = Some("/no/such/key.pem".into());
        let e = c.validate().unwrap_err();
        assert!(
            e.contains("tls.cert_file") && e.contains("/no/such/cert.pem"),
            "{e}"
        );
        let mut c = CollectorConfig::default();
        c.tls.client_ca_file = Some("/ca.pem".into());
        assert!(c.validate().unwrap_err().contains("tls.client_ca_file"));
    }

    #[test]
    fn unknown_keys_and_bad_enums_are_errors() {
        let e = toml::from_str::<CollectorConfig>("[wal]\nsync = \"sometimes\"\n").unwrap_err();
        assert!(
            e.to_string().contains("sometimes") || e.to_string().contains("variant"),
            "{e}"
        );
        let e = toml::from_str::<CollectorConfig>("[index]\ncommit_every = 3\n").unwrap_err();
        assert!(e.to_string().contains("commit_every"), "{e}");
    }
}
