//! The `[cluster]` section of the collector's configuration. With `nats` empty (the default)
//! the collector runs alone, exactly as without this section.

use serde::{Deserialize, Serialize};

/// Cluster mode: NATS JetStream as the shared log, partitions indexed by the nodes that hold
/// their leases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// NATS server URLs (`nats://host:4222`). Empty: single node, no NATS. Default empty.
    pub nats: Vec<String>,
    /// This node's name, unique in the cluster ([A-Za-z0-9_-], at most 64). Default: the host
    /// name.
    pub node: String,
    /// Names the stream (upper-cased), the subjects `<prefix>.<signal>.<partition>` and the
    /// key-value bucket `<prefix>-cluster`. Default `skein`.
    pub prefix: String,
    /// Partitions of the stream. Fixed for a stream's life: changing it moves records to new
    /// partitions. The most nodes that share indexing usefully. Default 8.
    pub partitions: u32,
    /// Copies of the stream and the bucket on NATS servers (JetStream R). 3 with a
    /// 3-server NATS cluster: an acknowledged batch is on a quorum's disks. Default 1.
    pub replicas: usize,
    /// Collector nodes that index each partition; queries read one of them. Default 2.
    pub index_replicas: usize,
    /// How other nodes reach this node's query API (`http://host:7700`). Default: the bound
    /// API address (fine on one host; set it when nodes are on several hosts).
    pub advertise_url: String,
    /// A lease not renewed for this long is free for another node. Default 6000.
    pub lease_ttl_ms: u64,
    /// Records older than this leave the stream; a node that takes a partition over builds
    /// it from what the stream still holds. Default 168 (7 days).
    pub stream_max_age_hours: u64,
    /// Most MiB the stream holds (oldest records leave first); 0: no size limit. Default 0.
    pub stream_max_mb: u64,
    /// A batch sent again with the same `skein-batch-id` within this window is stored once
    /// (JetStream's duplicate window). Default 600.
    pub duplicate_window_secs: u64,
    /// Largest message published, in bytes; a partition's share of a batch is cut into
    /// messages of at most this size. Must fit the NATS servers' `max_payload` (1 MiB by
    /// default). Default 900,000.
    pub max_message_bytes: usize,
    /// Messages one fetch of a partition's consumer takes at most. Default 256.
    pub fetch_batch: usize,
    /// Time a publish waits for JetStream's acknowledgement; past it the client gets 503.
    /// Default 10000.
    pub publish_timeout_ms: u64,
    /// Time a node waits for another node's answer to a store read before it counts that
    /// partition as missing. Default 5000.
    pub read_timeout_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nats: Vec::new(),
            node: String::new(),
            prefix: "skein".into(),
            partitions: 8,
            replicas: 1,
            index_replicas: 2,
            advertise_url: String::new(),
            lease_ttl_ms: 6000,
            stream_max_age_hours: 168,
            stream_max_mb: 0,
            duplicate_window_secs: 600,
            max_message_bytes: 900_000,
            fetch_batch: 256,
            publish_timeout_ms: 10_000,
            read_timeout_ms: 5000,
        }
    }
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl ClusterConfig {
    /// True when cluster mode is on.
    pub fn enabled(&self) -> bool {
        !self.nats.is_empty()
    }

    /// The node name, the host name when none is set.
    pub fn node_name(&self) -> String {
        if !self.node.is_empty() {
            return self.node.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        let clean: String = host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .take(64)
            .collect();
        if clean.is_empty() {
            "node".into()
        } else {
            clean
        }
    }

    /// Checks every key; the error names the key and the value.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        for u in &self.nats {
            if !(u.starts_with("nats://") || u.starts_with("tls://")) || u.len() < 8 {
                return Err(format!(
                    "key cluster.nats: value \"{u}\" is not a NATS URL such as nats://127.0.0.1:4222"
                ));
            }
        }
        if !self.node.is_empty() && !name_ok(&self.node) {
            return Err(format!(
                "key cluster.node: value \"{}\" must be 1 to 64 of A-Z a-z 0-9 - _",
                self.node
            ));
        }
        if !name_ok(&self.prefix) || self.prefix.len() > 32 {
            return Err(format!(
                "key cluster.prefix: value \"{}\" must be 1 to 32 of A-Z a-z 0-9 - _",
                self.prefix
            ));
        }
        let ranges: [(&str, u64, u64, u64); 9] = [
            ("cluster.partitions", self.partitions as u64, 1, 1024),
            ("cluster.replicas", self.replicas as u64, 1, 5),
            ("cluster.index_replicas", self.index_replicas as u64, 1, 5),
            ("cluster.lease_ttl_ms", self.lease_ttl_ms, 1000, 600_000),
            (
                "cluster.stream_max_age_hours",
                self.stream_max_age_hours,
                1,
                24 * 3650,
            ),
            (
                "cluster.duplicate_window_secs",
                self.duplicate_window_secs,
                1,
                86_400,
            ),
            (
                "cluster.max_message_bytes",
                self.max_message_bytes as u64,
                64 * 1024,
                64 * 1024 * 1024,
            ),
            ("cluster.fetch_batch", self.fetch_batch as u64, 1, 10_000),
            (
                "cluster.publish_timeout_ms",
                self.publish_timeout_ms,
                100,
                600_000,
            ),
        ];
        for (key, v, lo, hi) in ranges {
            if v < lo || v > hi {
                return Err(format!(
                    "key {key}: value {v} is out of range; use {lo} to {hi}"
                ));
            }
        }
        if self.read_timeout_ms < 100 || self.read_timeout_ms > 600_000 {
            return Err(format!(
                "key cluster.read_timeout_ms: value {} is out of range; use 100 to 600000",
                self.read_timeout_ms
            ));
        }
        let u = &self.advertise_url;
        if !(u.is_empty() || u.starts_with("http://") || u.starts_with("https://")) {
            return Err(format!(
                "key cluster.advertise_url: value \"{}\" is not a URL such as http://10.0.0.5:7700",
                self.advertise_url
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_errors_name_key_and_value() {
        assert!(!ClusterConfig::default().enabled());
        assert!(ClusterConfig::default().validate().is_ok());
        let mut c = ClusterConfig {
            nats: vec!["nats://127.0.0.1:4222".into()],
            ..Default::default()
        };
        assert!(c.validate().is_ok());
        c.partitions = 0;
        let e = c.validate().unwrap_err();
        assert!(e.contains("cluster.partitions") && e.contains('0'), "{e}");
        c.partitions = 8;
        c.nats = vec!["127.0.0.1:4222".into()];
        let e = c.validate().unwrap_err();
        assert!(
            e.contains("cluster.nats") && e.contains("127.0.0.1:4222"),
            "{e}"
        );
        c.nats = vec!["nats://a:1".into()];
        c.node = "bad name".into();
        assert!(c.validate().unwrap_err().contains("cluster.node"));
    }
}
