//! The service graph: joins each client or producer span with the server or consumer span it
//! called (by parent, or by link), and counts calls, errors and durations per edge.
//!
//! Spans arrive in any order, so both halves may wait: client and producer spans are cached by
//! (trace id, span id) for the join window, and a callee whose caller is not cached yet waits
//! under (trace id, parent span id). A client never joined in the window becomes an edge to an
//! uninstrumented node when its attributes say what it called (`peer.service`, `db.system`,
//! `server.address`, ...), else it is dropped.

use super::red::Totals;
use super::{DeriveStats, service_of};
use skein_model::metric::{Labels, MetricBatch};
use skein_model::{Attributes, Span};
use std::collections::{BTreeMap, HashMap};

/// (trace id, span id).
type Key = (String, String);

/// One edge of the graph: the labels of its series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct EdgeKey {
    caller: String,
    callee: String,
    /// `sync`, `async` or `link`.
    kind: &'static str,
    /// `service`, `database`, `messaging` or `external`.
    callee_type: &'static str,
}

impl EdgeKey {
    fn labels(&self) -> Labels {
        Labels::from_pairs([
            ("caller", self.caller.as_str()),
            ("callee", self.callee.as_str()),
            ("kind", self.kind),
            ("callee_type", self.callee_type),
        ])
    }
}

/// A cached client or producer span.
struct Caller {
    service: String,
    duration_ns: u64,
    error: bool,
    producer: bool,
    /// The uninstrumented node it called, if its attributes say: (name, callee type).
    peer: Option<(String, &'static str)>,
    /// Joined with a child server or consumer span; later children are ignored.
    matched_child: bool,
    /// Linked by a consumer span: its callee was found that way.
    linked_by_consumer: bool,
}

/// A server or consumer span waiting for its parent, or any span waiting for a linked span.
struct Waiter {
    service: String,
    error: bool,
    consumer: bool,
    by_link: bool,
}

/// Entries in arrival order, found by key; a key may hold several entries.
struct Aged<V> {
    entries: BTreeMap<(i64, u64), (Key, V)>,
    index: HashMap<Key, Vec<(i64, u64)>>,
    next: u64,
}

impl<V> Aged<V> {
    fn new() -> Aged<V> {
        Aged {
            entries: BTreeMap::new(),
            index: HashMap::new(),
            next: 0,
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn insert(&mut self, key: Key, value: V, now_ms: i64) {
        let id = (now_ms, self.next);
        self.next += 1;
        self.index.entry(key.clone()).or_default().push(id);
        self.entries.insert(id, (key, value));
    }

    /// The first entry under a key.
    fn first_mut(&mut self, key: &Key) -> Option<&mut V> {
        let id = *self.index.get(key)?.first()?;
        self.entries.get_mut(&id).map(|(_, v)| v)
    }

    /// Removes and returns every entry under a key.
    fn take(&mut self, key: &Key) -> Vec<V> {
        let Some(ids) = self.index.remove(key) else {
            return Vec::new();
        };
        ids.into_iter()
            .filter_map(|id| self.entries.remove(&id).map(|(_, v)| v))
            .collect()
    }

    /// Removes the oldest entry if it arrived at or before `cutoff_ms`.
    fn pop_older(&mut self, cutoff_ms: i64) -> Option<V> {
        let (&id, _) = self.entries.first_key_value()?;
        if id.0 > cutoff_ms {
            return None;
        }
        self.pop_oldest()
    }

    /// Removes the oldest entry.
    fn pop_oldest(&mut self) -> Option<V> {
        let (id, (key, value)) = self.entries.pop_first()?;
        if let Some(ids) = self.index.get_mut(&key) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.index.remove(&key);
            }
        }
        Some(value)
    }

    /// Makes room for one entry within `max`, evicting the oldest; false when `max` is 0.
    fn make_room(&mut self, max: usize, stats: &mut DeriveStats) -> bool {
        while self.len() >= max {
            if self.pop_oldest().is_none() {
                break;
            }
            stats.pending_evicted += 1;
        }
        if max == 0 {
            stats.pending_evicted += 1;
        }
        max > 0
    }
}

/// A span attribute as text: strings (non-empty) and numbers.
fn attr(attrs: &Attributes, key: &str) -> Option<String> {
    match attrs.get(key)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The host of a URL (`https://user@host:8080/path` gives `host`).
fn url_host(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority
        .rsplit_once('@')
        .map_or(authority, |(_, hostport)| hostport);
    let host = match hostport.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => hostport.split(':').next()?,
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// What an uninstrumented callee is, from the caller span's attributes: (name, callee type).
/// The name is cut to a label's length.
fn peer_of(attrs: &Attributes) -> Option<(String, &'static str)> {
    peer_of_uncut(attrs).map(|(name, kind)| (super::label_value(&name).to_string(), kind))
}

fn peer_of_uncut(attrs: &Attributes) -> Option<(String, &'static str)> {
    let db = attr(attrs, "db.system.name").or_else(|| attr(attrs, "db.system"));
    let messaging = attr(attrs, "messaging.system");
    if let Some(peer) = attr(attrs, "peer.service") {
        let kind = if db.is_some() {
            "database"
        } else if messaging.is_some() {
            "messaging"
        } else {
            "external"
        };
        return Some((peer, kind));
    }
    if let Some(system) = db {
        return Some((attr(attrs, "server.address").unwrap_or(system), "database"));
    }
    if let Some(system) = messaging {
        let name = attr(attrs, "messaging.destination.name").unwrap_or(system);
        return Some((name, "messaging"));
    }
    attr(attrs, "server.address")
        .or_else(|| attr(attrs, "net.peer.name"))
        .or_else(|| attr(attrs, "url.full").and_then(|u| url_host(&u)))
        .or_else(|| attr(attrs, "http.url").and_then(|u| url_host(&u)))
        .map(|name| (name, "external"))
}

/// The join state and the edges found.
pub(super) struct Graph {
    callers: Aged<Caller>,
    waiting: Aged<Waiter>,
    edges: BTreeMap<EdgeKey, Totals>,
    max_pending: usize,
    max_series: usize,
    join_window_ms: i64,
}

impl Graph {
    /// Nothing seen yet.
    pub(super) fn new(max_pending: usize, max_series: usize, join_window_ms: i64) -> Graph {
        Graph {
            callers: Aged::new(),
            waiting: Aged::new(),
            edges: BTreeMap::new(),
            max_pending,
            max_series,
            join_window_ms,
        }
    }

    /// Edges kept.
    pub(super) fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// Spans waiting in both join maps.
    pub(super) fn pending(&self) -> usize {
        self.callers.len() + self.waiting.len()
    }

    /// Takes one span into the join: caches it if it is a caller, joins or parks it if it is a
    /// callee, and does the same for each of its links.
    pub(super) fn observe(&mut self, span: &Span, now_ms: i64, stats: &mut DeriveStats) {
        let service = service_of(span);
        let consumer = span.kind == "consumer";
        let own = (span.trace_id.clone(), span.span_id.clone());

        if matches!(span.kind.as_str(), "client" | "producer")
            && self.callers.first_mut(&own).is_none()
            && self.callers.make_room(self.max_pending, stats)
        {
            let caller = Caller {
                service: service.to_string(),
                duration_ns: span.duration_ns,
                error: span.is_error(),
                producer: span.kind == "producer",
                peer: peer_of(&span.attributes),
                matched_child: false,
                linked_by_consumer: false,
            };
            self.callers.insert(own.clone(), caller, now_ms);
            for w in self.waiting.take(&own) {
                self.join(&own, &w, now_ms, stats);
            }
        }

        let mut seen: Vec<Key> = Vec::new();
        if matches!(span.kind.as_str(), "server" | "consumer") && !span.parent_span_id.is_empty() {
            let parent = (span.trace_id.clone(), span.parent_span_id.clone());
            let w = Waiter {
                service: service.to_string(),
                error: span.is_error(),
                consumer,
                by_link: false,
            };
            self.join_or_wait(parent.clone(), w, now_ms, stats);
            seen.push(parent);
        }
        for link in &span.links {
            if link.span_id.is_empty() {
                continue;
            }
            let target = (link.trace_id.clone(), link.span_id.clone());
            if target == own || seen.contains(&target) {
                continue;
            }
            let w = Waiter {
                service: service.to_string(),
                error: span.is_error(),
                consumer,
                by_link: true,
            };
            self.join_or_wait(target.clone(), w, now_ms, stats);
            seen.push(target);
        }
    }

    /// Joins a callee with its cached caller, or parks it until the caller comes.
    fn join_or_wait(&mut self, key: Key, w: Waiter, now_ms: i64, stats: &mut DeriveStats) {
        if !self.join(&key, &w, now_ms, stats) && self.waiting.make_room(self.max_pending, stats) {
            self.waiting.insert(key, w, now_ms);
        }
    }

    /// Joins a callee with the cached caller under `key`. False when no caller is cached.
    fn join(&mut self, key: &Key, w: &Waiter, now_ms: i64, stats: &mut DeriveStats) -> bool {
        let Some(c) = self.callers.first_mut(key) else {
            return false;
        };
        let kind = if w.by_link {
            if w.consumer {
                c.linked_by_consumer = true;
                "async"
            } else {
                "link"
            }
        } else {
            if c.matched_child {
                return true;
            }
            c.matched_child = true;
            if c.producer || w.consumer {
                "async"
            } else {
                "sync"
            }
        };
        if c.service == w.service {
            return true;
        }
        let edge = EdgeKey {
            caller: c.service.clone(),
            callee: w.service.clone(),
            kind,
            callee_type: "service",
        };
        let (duration_ns, error) = (c.duration_ns, c.error || w.error);
        stats.edges_matched += 1;
        self.record(edge, duration_ns, error, now_ms, stats);
        true
    }

    /// Counts one call on an edge, unless the edge is new and the limit is reached.
    fn record(
        &mut self,
        edge: EdgeKey,
        duration_ns: u64,
        error: bool,
        now_ms: i64,
        stats: &mut DeriveStats,
    ) {
        if !self.edges.contains_key(&edge) && self.edges.len() >= self.max_series {
            stats.series_dropped += 1;
            return;
        }
        self.edges
            .entry(edge)
            .or_insert_with(|| Totals::new(now_ms))
            .record(duration_ns, error, now_ms);
    }

    /// Gives up the join state older than the join window: a caller that found no callee
    /// becomes an edge to the node its attributes name, or is dropped.
    pub(super) fn expire(&mut self, now_ms: i64, stats: &mut DeriveStats) {
        let cutoff = now_ms.saturating_sub(self.join_window_ms);
        while let Some(c) = self.callers.pop_older(cutoff) {
            if c.matched_child || c.linked_by_consumer {
                continue;
            }
            match c.peer {
                Some((node, callee_type)) => {
                    if node == c.service {
                        continue;
                    }
                    stats.edges_uninstrumented += 1;
                    let edge = EdgeKey {
                        caller: c.service,
                        callee: node,
                        kind: if c.producer { "async" } else { "sync" },
                        callee_type,
                    };
                    self.record(edge, c.duration_ns, c.error, now_ms, stats);
                }
                None => stats.clients_unmatched += 1,
            }
        }
        while self.waiting.pop_older(cutoff).is_some() {}
    }

    /// Forgets the edges with no call for `idle_ms`.
    pub(super) fn forget_idle(&mut self, now_ms: i64, idle_ms: i64) {
        self.edges
            .retain(|_, t| now_ms.saturating_sub(t.last_ms) < idle_ms);
    }

    /// Writes every edge's series.
    pub(super) fn emit(&self, batch: &mut MetricBatch, ts_ms: i64) {
        for (edge, totals) in &self.edges {
            totals.emit(batch, "skein.edge", &edge.labels(), ts_ms);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect()
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://api.example.com/x?y").unwrap(),
            "api.example.com"
        );
        assert_eq!(url_host("http://u:p@h:8080").unwrap(), "h");
        assert_eq!(url_host("http://[::1]:80/").unwrap(), "::1");
        assert_eq!(url_host("no-scheme"), None);
    }

    #[test]
    fn peers() {
        let p = |a: &[(&str, &str)]| peer_of(&attrs(a));
        assert_eq!(
            p(&[("peer.service", "billing")]).unwrap(),
            ("billing".into(), "external")
        );
        assert_eq!(
            p(&[("peer.service", "pg"), ("db.system", "postgresql")]).unwrap(),
            ("pg".into(), "database")
        );
        assert_eq!(
            p(&[("db.system.name", "redis")]).unwrap(),
            ("redis".into(), "database")
        );
        assert_eq!(
            p(&[
                ("messaging.system", "kafka"),
                ("messaging.destination.name", "orders")
            ])
            .unwrap(),
            ("orders".into(), "messaging")
        );
        assert_eq!(
            p(&[("net.peer.name", "h1")]).unwrap(),
            ("h1".into(), "external")
        );
        assert_eq!(
            p(&[("http.url", "http://h2:9/a")]).unwrap(),
            ("h2".into(), "external")
        );
        assert_eq!(p(&[("http.method", "GET")]), None);
    }
}
