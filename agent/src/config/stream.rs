//! The `[stream]` section: in a cluster, the agent can publish its batches straight to the
//! cluster's NATS JetStream stream instead of posting them to a collector. Off unless
//! `nats` is set. `prefix` and `partitions` must be the collectors' (`[cluster]`), so a
//! trace's records land in the partition the collectors look in.

use super::Dur;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Publishing to the cluster's stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSection {
    /// NATS server URLs (`nats://host:4222`). Empty (the default): batches go to the collector.
    pub nats: Vec<String>,
    /// The collectors' `cluster.prefix`. Default `skein`.
    pub prefix: String,
    /// The collectors' `cluster.partitions`. Default 8.
    pub partitions: u32,
    /// The collectors' `cluster.max_message_bytes`. Default 900,000.
    pub max_message_bytes: usize,
    /// Time a publish waits for the stream's acknowledgement before it is retried. Default 10s.
    pub publish_timeout: Dur,
}

impl Default for StreamSection {
    fn default() -> Self {
        StreamSection {
            nats: Vec::new(),
            prefix: "skein".into(),
            partitions: 8,
            max_message_bytes: 900_000,
            publish_timeout: Dur(Duration::from_secs(10)),
        }
    }
}

impl StreamSection {
    /// True when the agent publishes to the stream.
    pub fn enabled(&self) -> bool {
        !self.nats.is_empty()
    }

    /// Checks the values; the error names the key and the value.
    pub fn validate(&self) -> Result<(), String> {
        for u in &self.nats {
            if !(u.starts_with("nats://") || u.starts_with("tls://")) {
                return Err(format!(
                    "key stream.nats: value \"{u}\" is not a NATS URL such as nats://10.0.0.1:4222"
                ));
            }
        }
        if self.prefix.is_empty()
            || !self
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "key stream.prefix: value \"{}\" must be letters, digits, - or _ (the collectors' cluster.prefix)",
                self.prefix
            ));
        }
        if !(1..=4096).contains(&self.partitions) {
            return Err(format!(
                "key stream.partitions: value {} must be 1 to 4096 (the collectors' cluster.partitions)",
                self.partitions
            ));
        }
        if !(4096..=64 << 20).contains(&self.max_message_bytes) {
            return Err(format!(
                "key stream.max_message_bytes: value {} must be 4096 to 67108864",
                self.max_message_bytes
            ));
        }
        if self.publish_timeout.0.is_zero() {
            return Err("key stream.publish_timeout: value 0s must be longer than zero".into());
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::config::AgentConfig;

    #[test]
    fn off_by_default_and_bad_values_name_key_and_value() {
        let cfg = AgentConfig::default();
        assert!(!cfg.stream.enabled());
        for (toml, key, value) in [
            (
                "[stream]\nnats = [\"http://x:4222\"]\n",
                "stream.nats",
                "http://x:4222",
            ),
            (
                "[stream]\nnats = [\"nats://x:4222\"]\npartitions = 0\n",
                "stream.partitions",
                "0",
            ),
            (
                "[stream]\nnats = [\"nats://x:4222\"]\nprefix = \"a.b\"\n",
                "stream.prefix",
                "a.b",
            ),
        ] {
            let e = AgentConfig::from_toml(toml).unwrap_err();
            assert!(e.contains(key) && e.contains(value), "{e}");
        }
        let ok =
            AgentConfig::from_toml("[stream]\nnats = [\"nats://10.0.0.1:4222\"]\npartitions = 6\n")
                .unwrap();
        assert!(ok.stream.enabled());
        assert_eq!(ok.stream.partitions, 6);
    }
}
