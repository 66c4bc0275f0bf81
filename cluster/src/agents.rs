//! Agents known to the whole cluster. An agent sends its heartbeats to one node; every node's
//! `GET /api/v1/agents`, and the alert engine's absence rules wherever it runs, see it.
//!
//! The node that takes a heartbeat writes it, with the time it was received, to the bucket
//! `<prefix>-agents` under `agent.<agent id in hex>`. Every node follows the bucket (its last
//! values at start, then every change) and merges what it reads into its own registry,
//! keeping the newest heartbeat of each agent. The bucket keeps a value for
//! [`KEEP`] after its last write and at most [`MAX_BUCKET_BYTES`] in all; the registry's own
//! bounds (`skein_store::agents::MAX_AGENTS`) apply on every node.

use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use skein_model::api::Heartbeat;
use skein_store::agents::AgentRegistry;
use std::time::Duration;

/// How long the bucket keeps an agent's last heartbeat after it was written.
pub const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most bytes the bucket holds (the oldest values leave first).
pub const MAX_BUCKET_BYTES: i64 = 256 << 20;

#[derive(Serialize, Deserialize)]
struct Seen {
    seen_unix_nano: u64,
    heartbeat: Heartbeat,
}

/// Writes heartbeats taken here to the bucket. Cheap to clone.
#[derive(Clone)]
pub struct AgentShare {
    kv: kv::Store,
    timeout: Duration,
}

fn key(id: &str) -> String {
    let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("agent.{hex}")
}

impl AgentShare {
    /// Makes sure the bucket exists and starts merging it into `registry`.
    pub async fn open(
        js: &jetstream::Context,
        prefix: &str,
        replicas: usize,
        registry: AgentRegistry,
        timeout: Duration,
    ) -> Result<AgentShare, String> {
        let cfg = kv::Config {
            bucket: format!("{prefix}-agents"),
            history: 1,
            max_age: KEEP,
            max_bytes: MAX_BUCKET_BYTES,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        };
        let kv = crate::bucket(js, cfg, "cannot create the agents bucket").await?;
        tokio::spawn(follow(kv.clone(), registry));
        Ok(AgentShare { kv, timeout })
    }

    /// Writes a heartbeat received here at `seen` (unix nanoseconds). A failure is logged:
    /// the agent's next heartbeat writes again.
    pub async fn publish(&self, heartbeat: Heartbeat, seen_unix_nano: u64) {
        let k = key(&heartbeat.id);
        let bytes = match serde_json::to_vec(&Seen {
            seen_unix_nano,
            heartbeat,
        }) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode a heartbeat for the cluster");
                return;
            }
        };
        match tokio::time::timeout(self.timeout, self.kv.put(k, bytes)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot share a heartbeat with the cluster"),
            Err(_) => {
                tracing::warn!("cannot share a heartbeat with the cluster: no answer in time")
            }
        }
    }
}

/// Follows the bucket for as long as the process runs, merging every heartbeat into the
/// registry; starts again after a second when the watch ends.
async fn follow(kv: kv::Store, registry: AgentRegistry) {
    loop {
        match kv.watch_with_history(">").await {
            Ok(mut watch) => {
                while let Some(entry) = watch.next().await {
                    let Ok(entry) = entry else {
                        break;
                    };
                    if entry.operation != kv::Operation::Put {
                        continue;
                    }
                    match serde_json::from_slice::<Seen>(&entry.value) {
                        Ok(s) => {
                            if let Err(e) = registry.merge(s.heartbeat, s.seen_unix_nano) {
                                tracing::debug!(error = %e, "a shared heartbeat was not taken");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(key = %entry.key, error = %e, "a shared heartbeat is unreadable");
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot follow the cluster's agents"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
