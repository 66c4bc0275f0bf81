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

/// Why another node gave no answer to a read.
pub(crate) enum Failed {
    /// The read itself is refused: the whole read fails with this message.
    Bad(String),
    /// The node is down, slow or failing: the next owner is tried.
    Unavailable(String),
}

/// What one node answered for some partitions: the merged answer (if it read any) and the
/// partitions it does not hold caught up.
pub(crate) type NodeAnswer<A> = (Option<A>, Vec<u32>);

/// Reads every partition once: those this node holds caught up with `local`, the others
/// with `remote` on one live owner each (caught-up owners first, the next owner when one
/// fails), every node's request in parallel. The answers, and the partitions no owner
/// answered for (also noted for the partial answer).
pub(crate) fn each_partition<A, E, L, R, Fut>(
    m: &Membership,
    rt: &tokio::runtime::Handle,
    default_timeout: Duration,
    local: L,
    remote: R,
) -> Result<Vec<A>, E>
where
    A: Send + 'static,
    E: From<Failed>,
    L: FnOnce(&[u32]) -> Result<Option<A>, E>,
    R: Fn(String, Vec<u32>, Duration) -> Fut,
    Fut: std::future::Future<Output = Result<NodeAnswer<A>, Failed>> + Send + 'static,
{
    let view = m.view();
    let held = m.local();
    let mut here = Vec::new();
    // Per partition, the owners still to try.
    let mut todo: BTreeMap<u32, Vec<(String, String)>> = BTreeMap::new();
    for p in 0..m.partitions {
        let mine = held
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
        .unwrap_or(default_timeout)
        .min(default_timeout);
    let mut parts = Vec::new();
    let mut missing = BTreeSet::new();
    let mut local = Some(local);
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
            .map(|(url, ps)| (ps.clone(), rt.spawn(remote(url, ps, timeout))))
            .collect();
        // This node's partitions are read while the others answer.
        if let Some(f) = local.take()
            && let Some(a) = f(&here)?
        {
            parts.push(a);
        }
        for (ps, h) in tasks {
            let answer = rt
                .block_on(h)
                .map_err(|e| Failed::Unavailable(format!("read task failed: {e}")))?;
            match answer {
                Ok((answer, not_held)) => {
                    parts.extend(answer);
                    for p in ps {
                        if !not_held.contains(&p) {
                            todo.remove(&p);
                        }
                    }
                }
                Err(Failed::Bad(msg)) => return Err(Failed::Bad(msg).into()),
                Err(Failed::Unavailable(e)) => {
                    tracing::debug!(error = %e, "a node did not answer a read; trying other owners");
                }
            }
        }
    }
    if let Some(f) = local.take()
        && let Some(a) = f(&here)?
    {
        parts.push(a);
    }
    if !missing.is_empty() {
        skein_query::partial::note_missing(missing.iter().copied());
    }
    Ok(parts)
}

impl From<Failed> for QueryError {
    fn from(f: Failed) -> Self {
        match f {
            Failed::Bad(m) => QueryError::BadRequest(m),
            Failed::Unavailable(m) => QueryError::Internal(m),
        }
    }
}

impl Reads for FanOut {
    fn read(&self, read: &Read) -> Result<ReadResult, QueryError> {
        let m = &self.membership;
        let (client, token) = (self.client.clone(), self.token.clone());
        let parts = each_partition(
            m,
            &self.rt,
            self.timeout,
            |here| {
                if here.is_empty() {
                    return Ok(None);
                }
                let (reads, _) = local_reads(m, here);
                reads.read(read).map(Some)
            },
            |url, partitions, timeout| {
                let body = RemoteRead {
                    partitions,
                    read: read.clone(),
                };
                let (client, token) = (client.clone(), token.clone());
                async move {
                    match Self::remote(client, token, url, body, timeout).await {
                        Ok(a) => Ok((a.result, a.missing)),
                        Err(QueryError::BadRequest(msg)) => Err(Failed::Bad(msg)),
                        Err(e) => Err(Failed::Unavailable(e.to_string())),
                    }
                }
            },
        )?;
        if parts.is_empty() {
            // Nothing could be read: the answer of an empty store, marked partial.
            let (reads, _) = local_reads(m, &[]);
            return reads.read(read);
        }
        merge(read, parts)
    }
}
