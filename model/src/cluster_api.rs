//! The cluster's status as `GET /api/v1/cluster` gives it (and `skein cluster status` reads).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a node says about itself (also its value in the cluster's key-value bucket).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeInfo {
    /// Its name.
    pub name: String,
    /// Its query API.
    pub url: String,
    /// Partitions it indexes that have caught up with the stream.
    pub ready: Vec<u32>,
    /// Messages not yet indexed, per partition it holds.
    pub lag: BTreeMap<u32, u64>,
    /// The last stream sequence committed, per partition it holds.
    pub committed: BTreeMap<u32, u64>,
}

/// `GET /api/v1/cluster`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The node that answered.
    pub node: String,
    /// Partitions in the stream.
    pub partitions: u32,
    /// Index replicas per partition.
    pub index_replicas: usize,
    /// The node running the alert engine.
    pub alert_leader: Option<String>,
    /// Live nodes.
    pub nodes: Vec<NodeInfo>,
    /// Each partition's holders.
    pub partition_owners: Vec<PartitionStatus>,
    /// The stream; none when it could not be read.
    pub stream: Option<StreamStatus>,
}

/// One partition.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PartitionStatus {
    /// The partition.
    pub partition: u32,
    /// Its holders.
    pub owners: Vec<OwnerStatus>,
}

/// One holder of a partition.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OwnerStatus {
    /// Node.
    pub node: String,
    /// Caught up with the stream.
    pub ready: bool,
    /// Messages not yet indexed.
    pub lag: u64,
    /// Last stream sequence committed.
    pub committed: u64,
}

/// The stream's state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamStatus {
    /// Its name.
    pub name: String,
    /// Messages held.
    pub messages: u64,
    /// Bytes held.
    pub bytes: u64,
    /// Oldest sequence held.
    pub first_seq: u64,
    /// Newest sequence.
    pub last_seq: u64,
    /// Its replicas on NATS servers.
    pub replicas: usize,
    /// The NATS servers holding it: leader first.
    pub servers: Vec<String>,
}
