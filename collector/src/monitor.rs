//! The collector's metrics plumbing around the store: the thread that derives RED figures and
//! the service graph from accepted spans, the agents' `up` series, and store housekeeping.
//!
//! ```text
//! Ingest::traces --(bounded: DERIVE_QUEUE batches; full = counted and skipped)--> deriver thread
//!                                                       every interval: flush -> Tsdb::append
//! every 5 s: agent registry -> skein.agent.up{agent,host} = 1 | 0 -> Tsdb::append
//! every 5 s: Tsdb::maintain (block cut, retention)
//! ```
//!
//! Derived figures are computed from spans after they are acknowledged; a crash loses at most
//! the interval being counted (the spans themselves are in the WAL and the index).

use crate::derive::{DeriveConfig, Deriver};
use skein_model::Span;
use skein_model::metric::{Labels, MetricBatch, MetricKind, SeriesSpec};
use skein_model::time::now_ms;
use skein_query::agents::AgentRegistry;
use skein_store::tsdb::Tsdb;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

/// Span batches waiting for the deriver. When it falls this far behind, batches are skipped
/// (and counted) rather than held: ingest must never wait on derived metrics.
pub const DERIVE_QUEUE: usize = 1024;

/// Name of the agent liveness series: 1 while heartbeats arrive, 0 once silent for
/// `agents.down_after`.
pub const AGENT_UP: &str = "skein.agent.up";

/// Hands accepted spans to the deriver thread.
#[derive(Clone)]
pub struct DeriveSender {
    tx: SyncSender<Arc<Vec<Span>>>,
    telemetry: crate::telemetry::Telemetry,
}

impl DeriveSender {
    /// Queues a batch, or counts it skipped when the queue is full.
    pub fn send(&self, spans: Arc<Vec<Span>>) {
        match self.tx.try_send(spans) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.telemetry.derive_skipped();
            }
        }
    }
}

/// The running deriver thread; stops when every [`DeriveSender`] is dropped, after a last
/// flush.
pub struct DeriveThread {
    handle: std::thread::JoinHandle<()>,
}

impl DeriveThread {
    /// Waits for it to finish.
    pub fn join(self) {
        let _ = self.handle.join();
    }
}

/// Starts the deriver thread writing into `tsdb` every `interval`; `flushed` is notified
/// after each write (the alert engine evaluates then, so rules over derived series do not
/// wait a whole evaluation interval more).
pub fn start_deriver(
    telemetry: crate::telemetry::Telemetry,
    tsdb: Tsdb,
    interval: Duration,
    join_window: Duration,
    flushed: Arc<tokio::sync::Notify>,
) -> std::io::Result<(DeriveSender, DeriveThread)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(DERIVE_QUEUE);
    let handle = std::thread::Builder::new()
        .name("skein-derive".into())
        .spawn(move || derive_loop(rx, tsdb, interval, join_window, flushed))?;
    Ok((DeriveSender { tx, telemetry }, DeriveThread { handle }))
}

fn derive_loop(
    rx: Receiver<Arc<Vec<Span>>>,
    tsdb: Tsdb,
    interval: Duration,
    join_window: Duration,
    flushed: Arc<tokio::sync::Notify>,
) {
    let mut deriver = Deriver::new(DeriveConfig {
        interval,
        join_window,
        ..DeriveConfig::default()
    });
    let mut next = Instant::now() + interval;
    let write = |mut batch: MetricBatch| {
        if batch.is_empty() {
            return;
        }
        // A new derived counter counted from the previous flush on.
        let step = interval.as_millis() as i64;
        for s in batch.samples.iter_mut() {
            s.start_ms = s.ts_ms - step;
        }
        // The deriver bounds its own series (operations and edges), each making ~30 series
        // of one family; the per-metric limit meant for senders would cut it at ~300.
        match tsdb.append_derived(&batch) {
            Ok(r) if r.rejected > 0 => tracing::warn!(
                rejected = r.rejected,
                reason = r.first_reason.as_deref().unwrap_or(""),
                "derived metrics refused by the store"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot store derived metrics"),
        }
        flushed.notify_one();
    };
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(spans) => deriver.observe(&spans, now_ms()),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                write(deriver.flush(now_ms()));
                return;
            }
        }
        if Instant::now() >= next {
            write(deriver.flush(now_ms()));
            next += interval;
            // After a stall, start again from now rather than flushing many times at once.
            if next < Instant::now() {
                next = Instant::now() + interval;
            }
        }
    }
}

/// The `skein.agent.up` samples of every agent in the registry, at `now_ms`.
pub fn agent_up_batch(agents: &AgentRegistry, now_ms: i64) -> MetricBatch {
    let mut b = MetricBatch::default();
    for a in agents.list().agents {
        let id = b.add_series(SeriesSpec {
            name: AGENT_UP.into(),
            labels: Labels::from_pairs([
                ("agent", a.heartbeat.id.as_str()),
                ("host", a.heartbeat.host.as_str()),
            ]),
            kind: MetricKind::Gauge,
            unit: "1".into(),
            delta: false,
        });
        b.push(id, now_ms, if a.state == "up" { 1.0 } else { 0.0 });
    }
    b
}

/// Runs every 5 s until aborted: writes the agents' `up` series and lets the store cut blocks
/// and apply retention.
pub async fn housekeeping(
    tsdb: Tsdb,
    agents: AgentRegistry,
    telemetry: crate::telemetry::Telemetry,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (db, reg, tel) = (tsdb.clone(), agents.clone(), telemetry.clone());
        let done = tokio::task::spawn_blocking(move || {
            let up = agent_up_batch(&reg, now_ms());
            if !up.is_empty()
                && let Err(e) = db.append(&up)
            {
                tracing::warn!(error = %e, "cannot store agent liveness");
            }
            if let Err(e) = db.maintain() {
                tracing::warn!(error = %e, "metrics store housekeeping failed");
            }
            tel.tsdb_stats(&db.stats());
        })
        .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "metrics housekeeping task failed");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use skein_model::api::Heartbeat;

    #[test]
    fn up_then_down() {
        let reg = AgentRegistry::in_memory(Duration::from_secs(15));
        let now = skein_model::time::now_unix_nano();
        let hb = |id: &str| Heartbeat {
            id: id.into(),
            host: format!("{id}-host"),
            version: "1".into(),
            ..Default::default()
        };
        reg.heartbeat_at(hb("a"), now).unwrap();
        reg.heartbeat_at(hb("b"), now - 60_000_000_000).unwrap();
        let b = agent_up_batch(&reg, 5);
        assert_eq!(b.samples.len(), 2);
        let value_of = |id: &str| {
            let i = b
                .series
                .iter()
                .position(|s| s.labels.get("agent") == Some(id))
                .unwrap();
            b.samples
                .iter()
                .find(|s| s.series == i as u32)
                .unwrap()
                .value
        };
        assert_eq!(value_of("a"), 1.0);
        assert_eq!(value_of("b"), 0.0);
        assert_eq!(b.series[0].labels.get("host"), Some("a-host"));
    }
}
