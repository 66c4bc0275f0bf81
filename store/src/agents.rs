//! The registry of agents: the last heartbeat of each, and whether it is up or down.
//!
//! Agents post heartbeats to the collector; the API serves them at `GET /api/v1/agents`. An
//! agent silent for longer than `down_after` is down. The registry is kept in memory and
//! written to a JSON file (`<data>/agents.json`) so a restarted collector still knows its
//! agents; it holds at most [`MAX_AGENTS`] agents. When it is full, a new agent takes the
//! place of the one heard from least recently if that one is down (silent longer than
//! `down_after`); only while all of them are up is a new agent refused. So IDs that stop
//! sending heartbeats (made-up ones included) cannot keep real agents out for longer than
//! `down_after`, and agents that are up are never forgotten.

use skein_model::api::{AgentStatus, AgentsResponse, Heartbeat, HostStatus, HostsResponse};
use skein_model::time::now_unix_nano;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most agents the registry holds; past it a new agent replaces the least recently heard
/// one that is down, and is refused when none is.
pub const MAX_AGENTS: usize = 10_000;
/// Longest id or host name, bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Most sources one heartbeat may list.
pub const MAX_SOURCES: usize = 1024;

/// Why a heartbeat was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HeartbeatError {
    /// The heartbeat is malformed; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// The registry is full of agents that are up.
    #[error("the registry already holds {MAX_AGENTS} agents, all of them up")]
    Full,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Entry {
    last_seen_unix_nano: u64,
    heartbeat: Heartbeat,
}

#[derive(Default)]
struct Inner {
    agents: BTreeMap<String, Entry>,
    dirty: bool,
}

/// Shared registry of agents. Cheap to clone.
#[derive(Clone)]
pub struct AgentRegistry {
    inner: Arc<Mutex<Inner>>,
    down_after: Duration,
    file: Option<PathBuf>,
}

impl AgentRegistry {
    /// An empty registry kept only in memory.
    pub fn in_memory(down_after: Duration) -> Self {
        AgentRegistry {
            inner: Arc::default(),
            down_after,
            file: None,
        }
    }

    /// A registry saved to `file`, loaded from it when it exists. A file that cannot be read
    /// is logged and replaced: the registry refills from the next heartbeats.
    pub fn open(file: &Path, down_after: Duration) -> Self {
        let mut inner = Inner::default();
        match std::fs::read(file) {
            Ok(bytes) => match serde_json::from_slice::<BTreeMap<String, Entry>>(&bytes) {
                Ok(agents) => inner.agents = agents,
                Err(e) => tracing::warn!(
                    file = %file.display(),
                    error = %e,
                    "agent registry file is not valid JSON; starting with an empty registry"
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cannot read the agent registry")
            }
        }
        AgentRegistry {
            inner: Arc::new(Mutex::new(inner)),
            down_after,
            file: Some(file.to_path_buf()),
        }
    }

    /// Silence after which an agent is down.
    pub fn down_after(&self) -> Duration {
        self.down_after
    }

    /// Records a heartbeat received now.
    pub fn heartbeat(&self, hb: Heartbeat) -> Result<(), HeartbeatError> {
        self.heartbeat_at(hb, now_unix_nano())
    }

    /// Records a heartbeat another node received at `seen` (unix nanoseconds), unless a newer
    /// one of the same agent is already known (in a cluster).
    pub fn merge(&self, hb: Heartbeat, seen: u64) -> Result<(), HeartbeatError> {
        if let Ok(g) = self.inner.lock()
            && g.agents
                .get(&hb.id)
                .is_some_and(|e| e.last_seen_unix_nano >= seen)
        {
            return Ok(());
        }
        self.heartbeat_at(hb, seen)
    }

    /// Records a heartbeat received at `now` (unix nanoseconds).
    pub fn heartbeat_at(&self, hb: Heartbeat, now: u64) -> Result<(), HeartbeatError> {
        for (key, v) in [("id", &hb.id), ("host", &hb.host), ("version", &hb.version)] {
            if v.len() > MAX_NAME_BYTES {
                return Err(HeartbeatError::Invalid(format!(
                    "field {key} is {} bytes, the limit is {MAX_NAME_BYTES}",
                    v.len()
                )));
            }
        }
        if hb.id.trim().is_empty() {
            return Err(HeartbeatError::Invalid(
                "field id is empty: every agent needs an id".into(),
            ));
        }
        if hb.sources.len() > MAX_SOURCES {
            return Err(HeartbeatError::Invalid(format!(
                "{} sources listed, the limit is {MAX_SOURCES}",
                hb.sources.len()
            )));
        }
        let Ok(mut g) = self.inner.lock() else {
            return Err(HeartbeatError::Invalid(
                "the registry is unavailable".into(),
            ));
        };
        if !g.agents.contains_key(&hb.id) && g.agents.len() >= MAX_AGENTS {
            // Room is made by forgetting the agent heard from least recently, if it is down:
            // agents that are up are never pushed out, and IDs that went quiet (a flood of
            // made-up ones included) give their place to new agents.
            let down_ns = u64::try_from(self.down_after.as_nanos()).unwrap_or(u64::MAX);
            let oldest = g
                .agents
                .iter()
                .min_by_key(|(_, e)| e.last_seen_unix_nano)
                .filter(|(_, e)| now.saturating_sub(e.last_seen_unix_nano) > down_ns)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => {
                    g.agents.remove(&id);
                }
                None => return Err(HeartbeatError::Full),
            }
        }
        g.agents.insert(
            hb.id.clone(),
            Entry {
                last_seen_unix_nano: now,
                heartbeat: hb,
            },
        );
        g.dirty = true;
        Ok(())
    }

    /// Every agent with its state as of `now`.
    pub fn list_at(&self, now: u64) -> AgentsResponse {
        let down_ns = u64::try_from(self.down_after.as_nanos()).unwrap_or(u64::MAX);
        let agents = match self.inner.lock() {
            Ok(g) => g
                .agents
                .values()
                .map(|e| {
                    let silent = now.saturating_sub(e.last_seen_unix_nano);
                    AgentStatus {
                        state: if silent > down_ns { "down" } else { "up" }.into(),
                        last_seen: rfc3339(e.last_seen_unix_nano),
                        last_seen_unix_nano: e.last_seen_unix_nano,
                        silent_seconds: silent as f64 / 1e9,
                        heartbeat: e.heartbeat.clone(),
                    }
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        AgentsResponse {
            agents,
            down_after_seconds: self.down_after.as_secs_f64(),
        }
    }

    /// Every agent with its state now.
    pub fn list(&self) -> AgentsResponse {
        self.list_at(now_unix_nano())
    }

    /// Agents grouped by host, with each host's newest figures.
    pub fn hosts(&self) -> HostsResponse {
        let mut by_host: BTreeMap<String, Vec<AgentStatus>> = BTreeMap::new();
        for a in self.list().agents {
            by_host.entry(a.heartbeat.host.clone()).or_default().push(a);
        }
        let hosts = by_host
            .into_iter()
            .map(|(host, mut agents)| {
                agents.sort_by_key(|a| std::cmp::Reverse(a.last_seen_unix_nano));
                let summary = agents.iter().find_map(|a| a.heartbeat.host_summary);
                let newest = agents.first();
                HostStatus {
                    state: if agents.iter().any(|a| a.state == "up") {
                        "up"
                    } else {
                        "down"
                    }
                    .into(),
                    last_seen: newest.map(|a| a.last_seen.clone()).unwrap_or_default(),
                    silent_seconds: newest.map_or(0.0, |a| a.silent_seconds),
                    cpu_utilization: summary.map(|s| s.cpu_utilization),
                    memory_used_bytes: summary.map(|s| s.memory_used_bytes),
                    memory_total_bytes: summary.map(|s| s.memory_total_bytes),
                    load1: summary.map(|s| s.load1),
                    buffer_bytes: agents
                        .iter()
                        .fold(0u64, |sum, a| sum.saturating_add(a.heartbeat.buffer.bytes)),
                    agents: agents.into_iter().map(|a| a.heartbeat.id).collect(),
                    host,
                }
            })
            .collect();
        HostsResponse { hosts }
    }

    /// Writes the registry to its file if it changed, durably and atomically
    /// ([`skein_wal::durable`]). A failed write leaves it marked changed, so the next save tries
    /// again.
    pub fn save(&self) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let bytes = {
            let Ok(mut g) = self.inner.lock() else {
                return Ok(());
            };
            if !g.dirty {
                return Ok(());
            }
            g.dirty = false;
            serde_json::to_vec(&g.agents).map_err(std::io::Error::other)?
        };
        let result = skein_wal::durable::write_file(file, &bytes);
        if result.is_err()
            && let Ok(mut g) = self.inner.lock()
        {
            g.dirty = true;
        }
        result
    }
}

fn rfc3339(ns: u64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_nanos(ns);
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hb(id: &str) -> Heartbeat {
        Heartbeat {
            id: id.into(),
            host: "web-1".into(),
            version: "0.1.0".into(),
            ..Default::default()
        }
    }

    #[test]
    fn silent_agents_turn_down() {
        let r = AgentRegistry::in_memory(Duration::from_secs(15));
        let t0 = 1_000_000_000_000;
        r.heartbeat_at(hb("a"), t0).unwrap();
        r.heartbeat_at(hb("b"), t0 + 10_000_000_000).unwrap();
        let l = r.list_at(t0 + 20_000_000_000);
        let states: Vec<_> = l
            .agents
            .iter()
            .map(|a| (a.heartbeat.id.as_str(), a.state.as_str()))
            .collect();
        assert_eq!(states, [("a", "down"), ("b", "up")]);
        assert_eq!(l.agents[0].silent_seconds, 20.0);
    }

    #[test]
    fn bad_heartbeats_are_refused() {
        let r = AgentRegistry::in_memory(Duration::from_secs(15));
        assert!(matches!(
            r.heartbeat(hb(" ")),
            Err(HeartbeatError::Invalid(_))
        ));
        assert!(matches!(
            r.heartbeat(hb(&"x".repeat(300))),
            Err(HeartbeatError::Invalid(_))
        ));
        assert!(r.list().agents.is_empty());
    }

    #[test]
    fn a_full_registry_makes_room_for_new_agents_by_forgetting_down_ones() {
        let down = Duration::from_secs(15);
        let r = AgentRegistry::in_memory(down);
        let t0 = 1_000_000_000_000;
        r.heartbeat_at(hb("real"), t0).unwrap();
        for i in 1..MAX_AGENTS {
            r.heartbeat_at(hb(&format!("fake-{i}")), t0 + 1).unwrap();
        }
        // While every agent is up, a new one is refused, and one already known is not.
        assert_eq!(
            r.heartbeat_at(hb("new-1"), t0 + 2),
            Err(HeartbeatError::Full)
        );
        r.heartbeat_at(hb("real"), t0 + 10_000_000_000).unwrap();
        // Once the fakes went quiet past `down_after`, a new agent replaces the one heard
        // from least recently; the real agent, still up, is kept.
        let later = t0 + 20_000_000_000;
        r.heartbeat_at(hb("new-1"), later).unwrap();
        r.heartbeat_at(hb("new-2"), later).unwrap();
        let ids: Vec<String> = r
            .list_at(later)
            .agents
            .into_iter()
            .map(|a| a.heartbeat.id)
            .collect();
        assert_eq!(ids.len(), MAX_AGENTS);
        for id in ["real", "new-1", "new-2"] {
            assert!(ids.iter().any(|i| i == id), "{id} missing");
        }
    }

    #[test]
    fn host_sums_do_not_overflow() {
        let r = AgentRegistry::in_memory(Duration::from_secs(15));
        for id in ["a", "b"] {
            let mut h = hb(id);
            h.buffer.bytes = u64::MAX - 1;
            r.heartbeat_at(h, 5).unwrap();
        }
        let hosts = r.hosts().hosts;
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].buffer_bytes, u64::MAX);
    }

    #[test]
    fn survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("agents.json");
        let r = AgentRegistry::open(&f, Duration::from_secs(15));
        r.heartbeat_at(hb("a"), 5).unwrap();
        r.save().unwrap();
        let r2 = AgentRegistry::open(&f, Duration::from_secs(15));
        let l = r2.list_at(6);
        assert_eq!(l.agents.len(), 1);
        assert_eq!(l.agents[0].last_seen_unix_nano, 5);
        std::fs::write(&f, b"{not json").unwrap();
        assert!(
            AgentRegistry::open(&f, Duration::from_secs(15))
                .list()
                .agents
                .is_empty()
        );
    }
}
