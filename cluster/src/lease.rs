//! Who owns what: nodes and partition leases in a JetStream key-value bucket.
//!
//! The bucket `<prefix>-cluster` keeps each value for `cluster.lease_ttl_ms` after its last
//! write (the bucket's max age), so a node that stops renewing loses its keys by itself:
//! - `node.<name>`: the node's [`NodeInfo`] (query URL, partitions caught up, their lag),
//!   written every tick.
//! - `lease.<p>.<r>`: replica slot `r` of partition `p` (`r < index_replicas`), value the
//!   holder's name. Taken with create (only if absent), renewed with update at the revision
//!   last seen (compare-and-set): a failed renewal means the slot was lost.
//!
//! Every tick (a third of the TTL) a node renews its slots, reads the bucket into a
//! [`View`], and balances: with `n` live nodes each aims at `ceil(partitions × replicas / n)`
//! slots, never two slots of one partition; over the target it gives one slot back a tick, so
//! a joining node gets its share and a leaving one's share is taken once its keys expire.

use crate::worker::{self, LocalPartition, WorkerConfig};
use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// What a node says about itself.
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

/// The cluster as last read from the bucket.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Live nodes by name.
    pub nodes: BTreeMap<String, NodeInfo>,
    /// Holders of each partition's slots (index = partition).
    pub owners: Vec<Vec<String>>,
}

/// This node's part: its partitions, the view, readiness.
pub struct Membership {
    /// This node.
    pub node: String,
    /// Its query URL.
    pub url: String,
    /// Partitions in the stream.
    pub partitions: u32,
    /// Slots per partition.
    pub replicas: usize,
    /// Partitions indexed here.
    pub local: RwLock<BTreeMap<u32, Arc<LocalPartition>>>,
    /// The last view.
    pub view: RwLock<View>,
    /// Lease revisions of the slots held: key -> revision.
    held: tokio::sync::Mutex<BTreeMap<String, (u32, u64)>>,
}

fn read<T: Clone>(l: &RwLock<T>) -> T {
    match l.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

fn write<T>(l: &RwLock<T>, v: T) {
    match l.write() {
        Ok(mut g) => *g = v,
        Err(p) => *p.into_inner() = v,
    }
}

impl Membership {
    /// A node with nothing held yet.
    pub fn new(node: String, url: String, partitions: u32, replicas: usize) -> Self {
        Membership {
            node,
            url,
            partitions,
            replicas,
            local: RwLock::new(BTreeMap::new()),
            view: RwLock::new(View::default()),
            held: tokio::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Partitions indexed here now.
    pub fn local(&self) -> BTreeMap<u32, Arc<LocalPartition>> {
        read(&self.local)
    }

    /// The last view of the cluster.
    pub fn view(&self) -> View {
        read(&self.view)
    }

    /// True when every partition held here has caught up with the stream.
    pub fn caught_up(&self) -> bool {
        self.local()
            .values()
            .all(|p| p.caught_up.load(Ordering::Acquire))
    }

    fn info(&self) -> NodeInfo {
        let local = self.local();
        NodeInfo {
            name: self.node.clone(),
            url: self.url.clone(),
            ready: local
                .iter()
                .filter(|(_, p)| p.caught_up.load(Ordering::Acquire))
                .map(|(k, _)| *k)
                .collect(),
            lag: local
                .iter()
                .map(|(k, p)| (*k, p.lag.load(Ordering::Relaxed)))
                .collect(),
            committed: local
                .iter()
                .map(|(k, p)| (*k, p.committed.load(Ordering::Relaxed)))
                .collect(),
        }
    }

    /// One tick: announce, renew, read, balance. Errors are logged; the next tick tries again.
    pub async fn tick(self: &Arc<Self>, kv: &kv::Store, workers: &WorkerConfig) {
        let info = self.info();
        if let Ok(v) = serde_json::to_vec(&info)
            && let Err(e) = kv.put(format!("node.{}", self.node), Bytes::from(v)).await
        {
            tracing::warn!(error = %e, "cannot announce this node to the cluster");
            return;
        }
        // Renew what is held; a failed compare-and-set means the slot is someone else's now.
        let mut held = self.held.lock().await;
        let mut lost = Vec::new();
        for (key, (p, rev)) in held.iter_mut() {
            match kv.update(key, Bytes::from(self.node.clone()), *rev).await {
                Ok(r) => *rev = r,
                Err(e) => {
                    tracing::warn!(key, error = %e, "lost a partition lease");
                    lost.push((key.clone(), *p));
                }
            }
        }
        for (key, p) in &lost {
            held.remove(key);
            if !held.values().any(|(q, _)| q == p) {
                self.stop_partition(*p).await;
            }
        }
        let Some((view, free)) = self.read_bucket(kv).await else {
            return;
        };
        write(&self.view, view.clone());
        let live = view.nodes.len().max(1);
        let total = self.partitions as usize * self.replicas;
        let target = total.div_ceil(live);
        if held.len() > target {
            // Give one back: the partition with the most replicas elsewhere first.
            if let Some((key, (p, rev))) = held
                .iter()
                .max_by_key(|(_, (p, _))| view.owners.get(*p as usize).map_or(0, |o| o.len()))
                .map(|(k, v)| (k.clone(), *v))
            {
                held.remove(&key);
                self.stop_partition(p).await;
                let _ = kv.delete_expect_revision(&key, Some(rev)).await;
                tracing::info!(partition = p, "gave a partition lease back to balance the cluster");
            }
            return;
        }
        let mine: BTreeSet<u32> = held.values().map(|(p, _)| *p).collect();
        let start = crate::publish::partition_of(&self.node, self.partitions);
        for i in 0..self.partitions {
            if held.len() >= target {
                break;
            }
            let p = (start + i) % self.partitions;
            if mine.contains(&p) {
                continue;
            }
            let Some(r) = free.get(&p).and_then(|slots| slots.first()) else {
                continue;
            };
            let key = format!("lease.{p}.{r}");
            match kv.create(&key, Bytes::from(self.node.clone())).await {
                Ok(rev) => {
                    tracing::info!(partition = p, slot = r, "took a partition lease");
                    match self.start_partition(p, workers).await {
                        Ok(()) => {
                            held.insert(key, (p, rev));
                        }
                        Err(e) => {
                            tracing::error!(partition = p, error = %e, "cannot open the partition; giving the lease back");
                            let _ = kv.delete_expect_revision(&key, Some(rev)).await;
                        }
                    }
                }
                Err(e) => tracing::debug!(key, error = %e, "slot taken meanwhile"),
            }
        }
    }

    /// The bucket as a view, and the free slots per partition.
    async fn read_bucket(&self, kv: &kv::Store) -> Option<(View, BTreeMap<u32, Vec<usize>>)> {
        let mut keys = match kv.keys().await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the cluster's keys");
                return None;
            }
        };
        let mut names = Vec::new();
        while let Some(k) = keys.next().await {
            match k {
                Ok(k) => names.push(k),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list the cluster's keys");
                    return None;
                }
            }
        }
        let mut view = View {
            nodes: BTreeMap::new(),
            owners: vec![Vec::new(); self.partitions as usize],
        };
        let mut taken: BTreeSet<(u32, usize)> = BTreeSet::new();
        for name in names {
            let Ok(Some(entry)) = kv.entry(name.clone()).await else {
                continue;
            };
            if entry.operation != kv::Operation::Put {
                continue;
            }
            if let Some(node) = name.strip_prefix("node.") {
                if let Ok(info) = serde_json::from_slice::<NodeInfo>(&entry.value) {
                    view.nodes.insert(node.to_string(), info);
                }
            } else if let Some(rest) = name.strip_prefix("lease.") {
                let mut it = rest.split('.');
                let (Some(Ok(p)), Some(Ok(r))) = (
                    it.next().map(str::parse::<u32>),
                    it.next().map(str::parse::<usize>),
                ) else {
                    continue;
                };
                if p < self.partitions && r < self.replicas {
                    taken.insert((p, r));
                    let holder = String::from_utf8_lossy(&entry.value).to_string();
                    view.owners[p as usize].push(holder);
                }
            }
        }
        let mut free = BTreeMap::new();
        for p in 0..self.partitions {
            let slots: Vec<usize> = (0..self.replicas)
                .filter(|r| !taken.contains(&(p, *r)))
                .collect();
            if !slots.is_empty() {
                free.insert(p, slots);
            }
        }
        Some((view, free))
    }

    async fn start_partition(
        &self,
        p: u32,
        workers: &WorkerConfig,
    ) -> Result<(), skein_store::StoreError> {
        let cfg = workers.clone();
        let rt = tokio::runtime::Handle::current();
        let part = tokio::task::spawn_blocking(move || worker::start(&cfg, p, rt))
            .await
            .map_err(|e| skein_store::StoreError::Internal(e.to_string()))??;
        let mut map = self.local();
        map.insert(p, part);
        write(&self.local, map);
        Ok(())
    }

    async fn stop_partition(&self, p: u32) {
        let mut map = self.local();
        if let Some(part) = map.remove(&p) {
            write(&self.local, map);
            let _ = tokio::task::spawn_blocking(move || part.stop()).await;
        }
    }

    /// Stops every worker (each commits) and gives every lease and the node key back, so the
    /// other nodes take over at once instead of after the TTL.
    pub async fn leave(&self, kv: &kv::Store) {
        let mut held = self.held.lock().await;
        let parts: Vec<u32> = self.local().keys().copied().collect();
        for p in parts {
            self.stop_partition(p).await;
        }
        for (key, (_, rev)) in std::mem::take(&mut *held) {
            let _ = kv.delete_expect_revision(&key, Some(rev)).await;
        }
        let _ = kv.delete(format!("node.{}", self.node)).await;
    }
}

/// Time between ticks: a third of the lease TTL.
pub fn tick_interval(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::from_millis(200))
}
