//! Who owns what: nodes and partition leases in a JetStream key-value bucket.
//!
//! The bucket `<prefix>-cluster` keeps each value for `cluster.lease_ttl_ms` after its last
//! write (the bucket's max age), so a node that stops renewing loses its keys by itself:
//! - `node.<name>`: the node's [`NodeInfo`] (query URL, partitions caught up, their lag),
//!   written every tick.
//! - `lease.<p>.<node>`: `node` indexes partition `p`. Taken with create (only if absent),
//!   renewed with update at the revision last seen (compare-and-set): a failed renewal means
//!   the lease expired and another node may have been given the partition.
//!
//! Every tick (a third of the TTL) a node renews its leases, reads the bucket into a
//! [`View`] and computes the same [`plan`] every node computes from it (`index_replicas`
//! holders per partition, balanced over the live nodes, current holders kept where the
//! balance allows). It takes the partitions the plan gives it, and hands over one it should
//! no longer hold only once the nodes meant to hold it have caught up, so a partition never
//! has fewer readable copies during a move. A node that dies loses its keys after the TTL;
//! the plan then gives its partitions to the others, who build them from the stream.

use crate::worker::{self, LocalPartition, WorkerConfig};
use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use skein_model::cluster_api::NodeInfo;

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
    /// Holders per partition (`index_replicas`).
    pub replicas: usize,
    /// Partitions indexed here.
    pub local: RwLock<BTreeMap<u32, Arc<LocalPartition>>>,
    /// The last view.
    pub view: RwLock<View>,
    /// Lease revisions of the slots held: key -> revision.
    held: tokio::sync::Mutex<BTreeMap<String, (u32, u64)>>,
    /// The revision of the alert engine's lease (`leader.alerts`), when this node holds it.
    leader: tokio::sync::Mutex<Option<u64>>,
    /// True while this node holds the alert engine's lease.
    pub is_leader: std::sync::atomic::AtomicBool,
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
            leader: tokio::sync::Mutex::new(None),
            is_leader: std::sync::atomic::AtomicBool::new(false),
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
        // Renew what is held; a failed compare-and-set means the lease expired meanwhile.
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
            self.stop_partition(*p).await;
        }
        self.lead(kv).await;
        let Some(view) = self.read_bucket(kv).await else {
            return;
        };
        write(&self.view, view.clone());
        let live: Vec<String> = view.nodes.keys().cloned().collect();
        let desired = plan(self.partitions, self.replicas, &live);
        for p in 0..self.partitions {
            let want = desired[p as usize].contains(&self.node);
            let key = format!("lease.{p}.{}", self.node);
            let have = held.contains_key(&key);
            if want && !have {
                match kv.create(&key, Bytes::from(self.node.clone())).await {
                    Ok(rev) => match self.start_partition(p, workers).await {
                        Ok(()) => {
                            tracing::info!(partition = p, "took a partition lease");
                            held.insert(key, (p, rev));
                        }
                        Err(e) => {
                            tracing::error!(partition = p, error = %e, "cannot open the partition; giving the lease back");
                            let _ = kv.delete_expect_revision(&key, Some(rev)).await;
                        }
                    },
                    Err(e) => tracing::warn!(key, error = %e, "cannot take a partition lease"),
                }
            } else if !want && have {
                // Handed over only once every node meant to hold it has caught up, so the
                // partition never has fewer readable copies than before.
                let others_ready = desired[p as usize]
                    .iter()
                    .filter(|o| **o != self.node)
                    .all(|o| view.nodes.get(o).is_some_and(|n| n.ready.contains(&p)));
                if others_ready && let Some((_, rev)) = held.remove(&key) {
                    self.stop_partition(p).await;
                    let _ = kv.delete_expect_revision(&key, Some(rev)).await;
                    tracing::info!(
                        partition = p,
                        "handed a partition over to balance the cluster"
                    );
                }
            }
        }
    }

    /// Takes or renews `leader.alerts`: one node in the cluster runs the alert engine.
    async fn lead(&self, kv: &kv::Store) {
        let mut rev = self.leader.lock().await;
        let key = "leader.alerts";
        let value = Bytes::from(self.node.clone());
        *rev = match *rev {
            Some(r) => match kv.update(key, value, r).await {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "lost the alert engine's lease");
                    None
                }
            },
            None => kv.create(key, value).await.ok(),
        };
        if rev.is_some() && !self.is_leader.load(Ordering::Acquire) {
            tracing::info!("this node runs the cluster's alert engine now");
        }
        self.is_leader.store(rev.is_some(), Ordering::Release);
    }

    /// The bucket as a view.
    async fn read_bucket(&self, kv: &kv::Store) -> Option<View> {
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
                let Some((p, holder)) = rest.split_once('.') else {
                    continue;
                };
                if let Ok(p) = p.parse::<u32>()
                    && p < self.partitions
                {
                    view.owners[p as usize].push(holder.to_string());
                }
            }
        }
        Some(view)
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
        let lead = self.leader.lock().await.take();
        self.is_leader.store(false, Ordering::Release);
        if let Some(r) = lead {
            let _ = kv.delete_expect_revision("leader.alerts", Some(r)).await;
        }
    }
}

/// Who should hold each partition: a function of the live nodes only, so every node computes
/// the same answer and a layout that matches it never changes until a node joins or leaves.
/// Each partition gets `min(replicas, live nodes)` distinct holders and each live node a
/// quota of `partitions × that / live` (the first nodes by name one more when it does not
/// divide). Each partition ranks the nodes by a hash of partition and node (rendezvous
/// hashing, so a node joining or leaving moves few partitions) and takes the best ranked
/// under quota; when every node not yet holding it is at quota, one of them trades a
/// partition with a node under quota, so the layout never stalls.
pub fn plan(partitions: u32, replicas: usize, live: &[String]) -> Vec<Vec<String>> {
    let mut want: Vec<Vec<String>> = vec![Vec::new(); partitions as usize];
    if live.is_empty() {
        return want;
    }
    let mut live: Vec<String> = live.to_vec();
    live.sort();
    live.dedup();
    let r = replicas.min(live.len());
    let total = partitions as usize * r;
    let (base, extra) = (total / live.len(), total % live.len());
    let quota: BTreeMap<&str, usize> = live
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), base + usize::from(i < extra)))
        .collect();
    let mut load: BTreeMap<&str, usize> = live.iter().map(|n| (n.as_str(), 0)).collect();
    let under = |load: &BTreeMap<&str, usize>, n: &str| {
        load.get(n).copied().unwrap_or(0) < quota.get(n).copied().unwrap_or(0)
    };
    for p in 0..want.len() {
        let mut ranked: Vec<&String> = live.iter().collect();
        ranked.sort_by_key(|n| (crc32fast::hash(format!("{p}/{n}").as_bytes()), n.as_str()));
        while want[p].len() < r {
            let pick = ranked
                .iter()
                .find(|n| !want[p].contains(n) && under(&load, n))
                .map(|n| (*n).clone());
            if let Some(n) = pick {
                if let Some(l) = load.get_mut(n.as_str()) {
                    *l += 1;
                }
                want[p].push(n);
                continue;
            }
            // Trade: x (not holding p, at quota) gives partition q to y (under quota, not
            // holding q) and takes p.
            let mut traded = false;
            'search: for x in ranked.iter().filter(|x| !want[p].contains(x)) {
                for q in 0..p {
                    if !want[q].contains(x) {
                        continue;
                    }
                    let y = live
                        .iter()
                        .find(|y| !want[q].contains(y) && under(&load, y))
                        .cloned();
                    if let Some(y) = y {
                        want[q].retain(|o| o != *x);
                        if let Some(l) = load.get_mut(y.as_str()) {
                            *l += 1;
                        }
                        want[q].push(y);
                        want[p].push((*x).clone());
                        traded = true;
                        break 'search;
                    }
                }
            }
            if !traded {
                break;
            }
        }
    }
    want
}

/// Time between ticks: a third of the lease TTL.
pub fn tick_interval(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::from_millis(200))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn loads(d: &[Vec<String>]) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for o in d.iter().flatten() {
            *m.entry(o.clone()).or_insert(0) += 1;
        }
        m
    }

    #[test]
    fn every_partition_gets_distinct_holders_and_every_node_its_share() {
        for nodes in 1..=6usize {
            let live: Vec<String> = (0..nodes).map(|i| format!("node-{i}")).collect();
            for partitions in [1u32, 2, 3, 6, 8, 13, 64] {
                for replicas in 1..=3usize {
                    let d = plan(partitions, replicas, &live);
                    let r = replicas.min(nodes);
                    for o in &d {
                        assert_eq!(o.len(), r, "{nodes} {partitions} {replicas}: {d:?}");
                        let mut u = o.clone();
                        u.sort();
                        u.dedup();
                        assert_eq!(u.len(), r, "distinct holders: {d:?}");
                    }
                    let l = loads(&d);
                    let (lo, hi) = (l.values().min().copied(), l.values().max().copied());
                    if partitions as usize * r >= nodes {
                        assert!(hi.unwrap() - lo.unwrap() <= 1, "balanced: {l:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_plan_depends_on_the_live_set_only_and_moves_little() {
        let three = names(&["a", "b", "c"]);
        let shuffled = names(&["c", "a", "b"]);
        assert_eq!(plan(12, 2, &three), plan(12, 2, &shuffled));
        // A fourth node joins: most holdings stay where they were.
        let four = names(&["a", "b", "c", "d"]);
        let (before, after) = (plan(12, 2, &three), plan(12, 2, &four));
        let kept: usize = before
            .iter()
            .zip(&after)
            .map(|(b, a)| b.iter().filter(|x| a.contains(x)).count())
            .sum();
        assert!(kept >= 12, "kept {kept} of 24: {before:?} -> {after:?}");
        assert!(plan(4, 2, &[]).iter().all(|o| o.is_empty()));
    }
}
