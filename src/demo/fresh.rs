//! Story freshness, headless: once a second the newest placed order is looked up by its
//! request ID until its whole story (all five services' spans and logs) is found. The time
//! from the gateway's answer to that moment is what an on-call engineer waits before the
//! request they were just told about can be read in full.

use super::summary::missing;
use serde::Serialize;
use skein_client::Client;
use skein_demo::load::{Kind, LoadStats, Sent};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How often a probe starts.
const EVERY: Duration = Duration::from_secs(1);
/// Time between lookups of one probe.
const POLL: Duration = Duration::from_millis(50);
/// A story not whole after this long counts as late, and its probe ends.
const GIVE_UP: Duration = Duration::from_secs(30);
/// Lag samples kept (one a second: nearly three hours).
const MAX_SAMPLES: usize = 10_000;
/// Records of the load generator looked at to find the newest placed order.
const LOOK_BACK: usize = 1_000;

/// What the probes found.
#[derive(Default)]
pub(crate) struct Freshness {
    samples_ms: Mutex<Vec<u64>>,
    late: AtomicU64,
}

/// The figures.
#[derive(Debug, Default, Serialize)]
pub(crate) struct FreshnessSummary {
    /// Placed orders probed.
    pub(crate) probes: u64,
    /// Of those, found whole within 30 s.
    pub(crate) whole: u64,
    /// Not whole within 30 s (during a delivery stop, for example).
    pub(crate) late: u64,
    /// Milliseconds from the gateway's answer to the whole story: median, 90th, 99th
    /// percentile, largest.
    pub(crate) p50_ms: u64,
    pub(crate) p90_ms: u64,
    pub(crate) p99_ms: u64,
    pub(crate) max_ms: u64,
}

impl Freshness {
    /// The figures so far.
    pub(crate) fn summary(&self) -> FreshnessSummary {
        let mut v = self
            .samples_ms
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        v.sort_unstable();
        let at = |q: f64| -> u64 {
            if v.is_empty() {
                return 0;
            }
            let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
            v[i]
        };
        let late = self.late.load(Ordering::Relaxed);
        FreshnessSummary {
            probes: v.len() as u64 + late,
            whole: v.len() as u64,
            late,
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: v.last().copied().unwrap_or(0),
        }
    }

    fn add(&self, lag: Option<u64>) {
        match lag {
            Some(ms) => {
                if let Ok(mut s) = self.samples_ms.lock()
                    && s.len() < MAX_SAMPLES
                {
                    s.push(ms);
                }
            }
            None => {
                self.late.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Starts a probe every second until `stop` completes, then waits for the probes running.
pub(crate) async fn run(
    api: String,
    stats: Arc<LoadStats>,
    fresh: Arc<Freshness>,
    stop: impl Future<Output = ()>,
) {
    let Ok(client) = Client::new(&api, None) else {
        return;
    };
    let client = Arc::new(client);
    let mut probes = JoinSet::new();
    let mut last = String::new();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let placed = |s: &Sent| {
            s.status == 201 && matches!(s.kind, Kind::PlaceOrder | Kind::PlaceOrderWithCoupon)
        };
        let Some(s) = stats.newest_matching(LOOK_BACK, placed) else {
            continue;
        };
        if s.request_id == last || s.request_id.is_empty() {
            continue;
        }
        last = s.request_id.clone();
        let (client, fresh) = (client.clone(), fresh.clone());
        probes.spawn(async move { fresh.add(probe(&client, &s).await) });
    }
    while probes.join_next().await.is_some() {}
}

/// Milliseconds from the answer to the whole story, or None after [`GIVE_UP`].
async fn probe(client: &Client, s: &Sent) -> Option<u64> {
    let answered_ms = s.unix_ms + s.duration_ms;
    let deadline = Instant::now() + GIVE_UP;
    loop {
        if let Ok(Some(t)) = client.trace(&s.request_id).await
            && missing(s, &t).is_empty()
        {
            let now_ms = skein_model::time::now_unix_nano() / 1_000_000;
            return Some(now_ms.saturating_sub(answered_ms));
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_samples() {
        let f = Freshness::default();
        for ms in 1..=100 {
            f.add(Some(ms));
        }
        f.add(None);
        let s = f.summary();
        assert_eq!((s.probes, s.whole, s.late), (101, 100, 1));
        assert_eq!((s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms), (50, 90, 99, 100));
        assert_eq!(Freshness::default().summary().p99_ms, 0);
    }
}
