//! Housekeeping around the metrics store and the agent registry, every 5 s: the agents'
//! liveness series, block cuts and retention, the store's size gauges, and saving the
//! registry to disk.
//!
//! ```text
//! every 5 s: agent registry -> skein.agent.up{agent,host} = 1 | 0 -> Tsdb::append
//! every 5 s: Tsdb::maintain (block cut, retention); AgentRegistry::save
//! ```

use skein_model::metric::{Labels, MetricBatch, MetricKind, SeriesSpec};
use skein_model::time::now_ms;
use skein_store::agents::AgentRegistry;
use skein_store::tsdb::Tsdb;
use std::time::Duration;

/// Name of the agent liveness series: 1 while heartbeats arrive, 0 once silent for
/// `agents.down_after`.
pub const AGENT_UP: &str = "skein.agent.up";

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

/// Runs every 5 s until aborted: writes the agents' `up` series, lets the store cut blocks
/// and apply retention, and saves the agent registry when it changed.
pub async fn run(tsdb: Tsdb, agents: AgentRegistry, telemetry: crate::telemetry::Telemetry) {
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
            if let Err(e) = reg.save() {
                tracing::warn!(error = %e, "cannot save the agent registry");
            }
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
