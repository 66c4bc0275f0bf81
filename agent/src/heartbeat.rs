//! Heartbeats: every `heartbeat.interval` the agent posts its id, host, version, sources,
//! buffer fill, latest host figures and, when the collector refuses its batches for a
//! reason other than their content, what blocks shipping, to the collector (`POST /skein/v1/heartbeat`). The
//! collector lists agents at `GET /api/v1/agents` and marks a silent one down. A failed
//! heartbeat is only logged (at most once a minute): the next one is a few seconds away.

use crate::buffer::Buffer;
use crate::pipeline::SourceFiles;
use crate::ship::Target;
use crate::telemetry::Telemetry;
use skein_model::api::{BufferStatus, Heartbeat, HostSummary, SourceStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What the heartbeat reads.
pub struct HeartbeatParts {
    /// Agent id.
    pub id: String,
    /// Host name.
    pub host: String,
    /// Start time, unix nanoseconds.
    pub started_unix_nano: u64,
    /// Files per source.
    pub sources: SourceFiles,
    /// The buffer, for its fill.
    pub buffer: Arc<Buffer>,
    /// Latest host figures.
    pub host_summary: Arc<Mutex<Option<HostSummary>>>,
    /// Counters, and whether shipping is blocked.
    pub telemetry: Telemetry,
}

impl HeartbeatParts {
    /// The heartbeat as of now.
    pub fn snapshot(&self) -> Heartbeat {
        let (bytes, max_bytes) = self.buffer.fill();
        Heartbeat {
            id: self.id.clone(),
            host: self.host.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_unix_nano: self.started_unix_nano,
            sources: self
                .sources
                .lock()
                .map(|g| {
                    g.iter()
                        .map(|(name, service, files)| SourceStatus {
                            name: name.clone(),
                            service: service.clone(),
                            files: *files,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            buffer: BufferStatus { bytes, max_bytes },
            host_summary: self.host_summary.lock().ok().and_then(|g| *g),
            shipping_blocked: self.telemetry.shipping_blocked(),
            certificate: None,
        }
    }
}

/// Sends heartbeats until `stop`.
pub async fn run(
    parts: HeartbeatParts,
    target: Target,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_warn: Option<Instant> = None;
    loop {
        let hb = parts.snapshot();
        let res = target.post("/skein/v1/heartbeat").json(&hb).send().await;
        let problem = match res {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => {
                let code = r.status().as_u16();
                Some(format!(
                    "status {code}: {}",
                    r.text().await.unwrap_or_default()
                ))
            }
            Err(e) => Some(e.to_string()),
        };
        if let Some(p) = problem
            && last_warn.is_none_or(|t| t.elapsed() > Duration::from_secs(60))
        {
            tracing::warn!(problem = %p, "heartbeat to the collector failed");
            last_warn = Some(Instant::now());
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|v| *v) => return,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_shipper_is_named_in_the_heartbeat() {
        let dir = tempfile::tempdir().unwrap();
        let telemetry = Telemetry::new();
        let parts = HeartbeatParts {
            id: "a1".into(),
            host: "h1".into(),
            started_unix_nano: 1,
            sources: Arc::default(),
            buffer: Arc::new(Buffer::open(dir.path(), 1 << 20, 1 << 16).unwrap()),
            host_summary: Arc::default(),
            telemetry: telemetry.clone(),
        };
        assert_eq!(parts.snapshot().shipping_blocked, None);
        let json = serde_json::to_value(parts.snapshot()).unwrap();
        assert!(json.get("shipping_blocked").is_none(), "{json}");
        telemetry.set_shipping_blocked(Some(("status_401", "the collector answers 401")));
        let hb = parts.snapshot();
        assert_eq!(
            hb.shipping_blocked.as_deref(),
            Some("the collector answers 401")
        );
        // A collector that predates the field reads the rest; one that has it reads it.
        let json = serde_json::to_string(&hb).unwrap();
        let back: Heartbeat = serde_json::from_str(&json).unwrap();
        assert_eq!(back, hb);
        telemetry.set_shipping_blocked(None);
        assert_eq!(parts.snapshot().shipping_blocked, None);
    }
}
