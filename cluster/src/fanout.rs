//! Store reads across the cluster: each partition read once, on this node when it indexes
//! the partition and has caught up, else on another live owner (those caught up first), the
//! answers merged ([`skein_query::reads::merge`]). A partition no live owner answered for is
//! named ([`skein_query::partial::note_missing`]), so the answer says it is partial.

use crate::lease::Membership;
use serde::{Deserialize, Serialize};
use skein_query::QueryError;
use skein_query::reads::{LocalReads, Read, ReadResult, Reads, merge};
use skein_store::SplitList;
use skein_store::schema::{LogFields, SpanFields};
use skein_store::splits::current_splits;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// A read sent to another node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteRead {
    /// Partitions to read.
    pub partitions: Vec<u32>,
    /// The read.
    pub read: Read,
}

/// Its answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteAnswer {
    /// The merged answer of the partitions it read.
    pub result: Option<ReadResult>,
    /// Partitions it does not hold caught up (read them elsewhere).
    pub missing: Vec<u32>,
}

/// Reads over the given local partitions as one store.
pub fn local_reads(m: &Membership, parts: &[u32]) -> (LocalReads, Vec<u32>) {
    let local = m.local();
    let mut logs = Vec::new();
    let mut spans = Vec::new();
    let mut missing = Vec::new();
    for p in parts {
        match local.get(p) {
            Some(lp) if lp.caught_up.load(Ordering::Acquire) => {
                logs.extend(current_splits(&lp.logs));
                spans.extend(current_splits(&lp.spans));
            }
            _ => missing.push(*p),
        }
    }
    let list = |v| -> SplitList { Arc::new(RwLock::new(v)) };
    (
        LocalReads::new(list(logs), LogFields::new(), list(spans), SpanFields::new()),
        missing,
    )
}

/// The cluster's [`Reads`].
pub struct FanOut {
    pub(crate) membership: Arc<Membership>,
    pub(crate) client: reqwest::Client,
    pub(crate) token: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) rt: tokio::runtime::Handle,
}

/// Owners of `p` other than this node that are live, the caught-up ones first.
fn candidates(m: &Membership, view: &crate::lease::View, p: u32) -> Vec<(String, String)> {
    let Some(owners) = view.owners.get(p as usize) else {
        return Vec::new();
    };
    let mut c: Vec<(bool, String, String)> = owners
        .iter()
        .filter(|o| **o != m.node)
        .filter_map(|o| {
            view.nodes
                .get(o)
                .map(|n| (!n.ready.contains(&p), o.clone(), n.url.clone()))
        })
        .collect();
    c.sort();
    c.dedup();
    c.into_iter().map(|(_, o, u)| (o, u)).collect()
}

impl FanOut {
    async fn remote(
        client: reqwest::Client,
        token: Option<String>,
        url: String,
        body: RemoteRead,
        timeout: Duration,
    ) -> Result<RemoteAnswer, QueryError> {
        let mut req = client
            .post(format!("{}/internal/v1/reads", url.trim_end_matches('/')))
            .timeout(timeout)
            .json(&body);
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| QueryError::Unavailable(e.to_string()))?;
        let status = resp.status();
        if status.as_u16() == 400 {
            let v: serde_json::Value = resp.json().await.unwrap_or_default();
            let msg = v["message"].as_str().unwrap_or("bad request").to_string();
            return Err(QueryError::BadRequest(msg));
        }
        if !status.is_success() {
            return Err(QueryError::Unavailable(format!("{url} answered {status}")));
        }
        resp.json::<RemoteAnswer>()
            .await
            .map_err(|e| QueryError::Unavailable(e.to_string()))
    }
}

impl Reads for FanOut {
    fn read(&self, read: &Read) -> Result<ReadResult, QueryError> {
        let m = &self.membership;
        let view = m.view();
        let local = m.local();
        let mut here = Vec::new();
        // Per partition, the owners still to try.
        let mut todo: BTreeMap<u32, Vec<(String, String)>> = BTreeMap::new();
        for p in 0..m.partitions {
            let mine = local
                .get(&p)
                .is_some_and(|lp| lp.caught_up.load(Ordering::Acquire));
            if mine {
                here.push(p);
            } else {
                todo.insert(p, candidates(m, &view, p));
            }
        }
        let timeout = skein_model::deadline::current()
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(self.timeout)
            .min(self.timeout);
        let mut parts = Vec::new();
        let mut missing = BTreeSet::new();
        let mut first = true;
        while !todo.is_empty() {
            // Each round asks every partition's next owner, grouped by node.
            let mut by_node: BTreeMap<String, (String, Vec<u32>)> = BTreeMap::new();
            for (p, owners) in todo.iter_mut() {
                if owners.is_empty() {
                    missing.insert(*p);
                    continue;
                }
                let (node, url) = owners.remove(0);
                by_node
                    .entry(node)
                    .or_insert_with(|| (url, Vec::new()))
                    .1
                    .push(*p);
            }
            todo.retain(|p, _| !missing.contains(p));
            if by_node.is_empty() {
                break;
            }
            let tasks: Vec<_> = by_node
                .into_values()
                .map(|(url, ps)| {
                    let body = RemoteRead {
                        partitions: ps.clone(),
                        read: read.clone(),
                    };
                    let h = self.rt.spawn(Self::remote(
                        self.client.clone(),
                        self.token.clone(),
                        url,
                        body,
                        timeout,
                    ));
                    (ps, h)
                })
                .collect();
            if first {
                first = false;
                if !here.is_empty() {
                    let (reads, _) = local_reads(m, &here);
                    parts.push(reads.read(read)?);
                }
            }
            for (ps, h) in tasks {
                let answer = self
                    .rt
                    .block_on(h)
                    .map_err(|e| QueryError::Internal(e.to_string()))?;
                match answer {
                    Ok(a) => {
                        if let Some(r) = a.result {
                            parts.push(r);
                        }
                        for p in ps {
                            if !a.missing.contains(&p) {
                                todo.remove(&p);
                            }
                        }
                    }
                    Err(QueryError::BadRequest(m)) => return Err(QueryError::BadRequest(m)),
                    Err(e) => {
                        tracing::debug!(error = %e, "a node did not answer a read; trying other owners");
                    }
                }
            }
        }
        if first && !here.is_empty() {
            let (reads, _) = local_reads(m, &here);
            parts.push(reads.read(read)?);
        }
        if !missing.is_empty() {
            skein_query::partial::note_missing(missing.iter().copied());
        }
        if parts.is_empty() {
            // Nothing could be read: the answer of an empty store, marked partial above.
            let (reads, _) = local_reads(m, &[]);
            return reads.read(read);
        }
        merge(read, parts)
    }
}
