//! The load generator: a steady mix of requests to the gateway.
//!
//! About 65 % of requests place an order without a coupon, 20 % place one with a coupon
//! (`SAVE-` and 4 hex digits, so mostly fresh codes), and 15 % look up a recently placed
//! order (or a random ID, which gives 404, when none was placed yet). About half carry their
//! own `X-Request-ID` (`load-` and 16 hex digits); the others let the gateway assign one.

use serde::Serialize;
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

/// Most requests in flight at once; a tick that finds this many is skipped.
pub const MAX_IN_FLIGHT: usize = 64;

/// Most [`Sent`] records kept (the newest); the counters count every request.
pub const MAX_KEPT: usize = 100_000;

/// Most recently placed order IDs remembered for lookups.
const MAX_RECENT_ORDERS: usize = 1_000;

/// Highest rate accepted, in requests per second; higher rates are capped.
const MAX_RATE: f64 = 10_000.0;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What to send and how fast.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The gateway's address.
    pub gateway: SocketAddr,
    /// Requests per second; must be above 0 (at most 10 000 is used).
    pub rate: f64,
    /// Seed of the choice of requests, so a run can be repeated.
    pub seed: u64,
}

/// The kind of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Kind {
    /// `POST /orders` without a coupon.
    PlaceOrder,
    /// `POST /orders` with a coupon.
    PlaceOrderWithCoupon,
    /// `GET /orders/{id}`.
    GetOrder,
}

/// One request the generator sent.
#[derive(Clone, Debug, Serialize)]
pub struct Sent {
    /// The request ID: from the answer's `X-Request-ID`, else the one sent, else empty.
    pub request_id: String,
    /// What kind of request it was.
    pub kind: Kind,
    /// The answer's status; 0 when there was no answer.
    pub status: u16,
    /// The order placed or looked up, if known.
    pub order_id: Option<String>,
    /// When it was sent, in milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Whether the generator set its own `X-Request-ID`.
    pub had_request_id: bool,
}

/// Counts of requests by outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadSummary {
    /// Requests sent.
    pub sent: u64,
    /// Answered 2xx.
    pub ok: u64,
    /// Answered 4xx.
    pub rejected: u64,
    /// Answered 5xx, or not answered.
    pub failed: u64,
}

/// Shared, bounded record of what was sent: keeps the newest [`MAX_KEPT`] [`Sent`]; the
/// counters count all.
#[derive(Debug, Default)]
pub struct LoadStats {
    sent: AtomicU64,
    ok: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    kept: Mutex<VecDeque<Sent>>,
}

impl LoadStats {
    /// The counters now.
    pub fn snapshot(&self) -> LoadSummary {
        LoadSummary {
            sent: self.sent.load(Ordering::Relaxed),
            ok: self.ok.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    /// The kept records, oldest first.
    pub fn sent(&self) -> Vec<Sent> {
        self.kept().iter().cloned().collect()
    }

    /// The newest kept record that passes `f`, looking at most at the newest `limit` records.
    pub fn newest_matching(&self, limit: usize, f: impl Fn(&Sent) -> bool) -> Option<Sent> {
        self.kept().iter().rev().take(limit).find(|s| f(s)).cloned()
    }

    /// Ticks skipped because [`MAX_IN_FLIGHT`] requests were still in flight (not sent).
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    fn record(&self, s: Sent) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let counter = match s.status {
            200..=299 => &self.ok,
            400..=499 => &self.rejected,
            _ => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut kept = self.kept();
        if kept.len() >= MAX_KEPT {
            kept.pop_front();
        }
        kept.push_back(s);
    }

    fn kept(&self) -> MutexGuard<'_, VecDeque<Sent>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Order IDs placed lately, for lookups.
#[derive(Default)]
struct Recent(Mutex<VecDeque<String>>);

impl Recent {
    fn lock(&self) -> MutexGuard<'_, VecDeque<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, id: String) {
        let mut q = self.lock();
        if q.len() >= MAX_RECENT_ORDERS {
            q.pop_front();
        }
        q.push_back(id);
    }

    fn pick(&self, rng: &mut fastrand::Rng) -> Option<String> {
        let q = self.lock();
        if q.is_empty() {
            return None;
        }
        q.get(rng.usize(..q.len())).cloned()
    }
}

/// One planned request.
struct Plan {
    kind: Kind,
    own_request_id: Option<String>,
    body: Option<serde_json::Value>,
    order_id: Option<String>,
}

/// Sends requests at `rate` until `shutdown` completes, then waits for those in flight.
/// Requests run on their own tasks, at most [`MAX_IN_FLIGHT`] at once.
pub async fn run(cfg: LoadConfig, stats: Arc<LoadStats>, shutdown: impl Future<Output = ()>) {
    let client = match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "load generator could not create its HTTP client");
            return;
        }
    };
    let rate = if cfg.rate.is_finite() && cfg.rate > 0.0 {
        cfg.rate.min(MAX_RATE)
    } else {
        tracing::error!(
            rate = cfg.rate,
            "load rate must be above 0; nothing is sent"
        );
        return;
    };
    let period = Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::from_secs(1));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut rng = fastrand::Rng::with_seed(cfg.seed);
    let recent = Arc::new(Recent::default());
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    let base = format!("http://{}", cfg.gateway);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticks.tick() => {}
        }
        while tasks.try_join_next().is_some() {}
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            stats.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let plan = plan(&mut rng, &recent);
        let (client, base, stats, recent) =
            (client.clone(), base.clone(), stats.clone(), recent.clone());
        tasks.spawn(async move {
            let sent = send(&client, &base, plan, &recent).await;
            stats.record(sent);
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
}

fn plan(rng: &mut fastrand::Rng, recent: &Recent) -> Plan {
    let roll = rng.u32(0..100);
    let kind = match roll {
        0..65 => Kind::PlaceOrder,
        65..85 => Kind::PlaceOrderWithCoupon,
        _ => Kind::GetOrder,
    };
    let own_request_id = rng.bool().then(|| format!("load-{:016x}", rng.u64(..)));
    match kind {
        Kind::GetOrder => {
            let order_id = recent
                .pick(rng)
                .unwrap_or_else(|| format!("ord-{:012x}", rng.u64(..) & 0xffff_ffff_ffff));
            Plan {
                kind,
                own_request_id,
                body: None,
                order_id: Some(order_id),
            }
        }
        Kind::PlaceOrder | Kind::PlaceOrderWithCoupon => {
            const SKUS: [&str; 6] = ["pizza", "burger", "ramen", "salad", "tacos", "curry"];
            let items: Vec<serde_json::Value> = (0..rng.usize(1..=3))
                .map(|_| {
                    serde_json::json!({
                        "sku": SKUS[rng.usize(..SKUS.len())],
                        "qty": rng.u32(1..=3),
                        "price_cents": rng.u64(199..=2999),
                    })
                })
                .collect();
            let coupon =
                (kind == Kind::PlaceOrderWithCoupon).then(|| format!("SAVE-{:04X}", rng.u16(..)));
            let body = serde_json::json!({
                "customer_id": format!("cust-{}", rng.u32(1..=500)),
                "items": items,
                "coupon": coupon,
            });
            Plan {
                kind,
                own_request_id,
                body: Some(body),
                order_id: None,
            }
        }
    }
}

async fn send(client: &reqwest::Client, base: &str, plan: Plan, recent: &Recent) -> Sent {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let started = Instant::now();
    let mut req = match (&plan.body, &plan.order_id) {
        (Some(body), _) => client.post(format!("{base}/orders")).json(body),
        (None, Some(id)) => client.get(format!("{base}/orders/{id}")),
        (None, None) => client.get(format!("{base}/orders/none")),
    };
    if let Some(id) = &plan.own_request_id {
        req = req.header("x-request-id", id);
    }
    let mut status = 0;
    let mut request_id = plan.own_request_id.clone().unwrap_or_default();
    let mut order_id = plan.order_id.clone();
    if let Ok(resp) = req.send().await {
        status = resp.status().as_u16();
        if let Some(id) = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
        {
            request_id = id.to_owned();
        }
        if plan.kind != Kind::GetOrder
            && resp.status().is_success()
            && let Ok(v) = resp.json::<serde_json::Value>().await
            && let Some(id) = v.get("order_id").and_then(|o| o.as_str())
        {
            recent.push(id.to_owned());
            order_id = Some(id.to_owned());
        }
    }
    Sent {
        request_id,
        kind: plan.kind,
        status,
        order_id,
        unix_ms,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        had_request_id: plan.own_request_id.is_some(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_roughly_as_documented_and_repeatable() {
        let recent = Recent::default();
        recent.push("ord-000000000001".into());
        let mut rng = fastrand::Rng::with_seed(7);
        let mut counts = [0u32; 3];
        let mut own = 0;
        let mut first = Vec::new();
        for i in 0..10_000 {
            let p = plan(&mut rng, &recent);
            counts[p.kind as usize] += 1;
            own += u32::from(p.own_request_id.is_some());
            if i < 20 {
                first.push((p.kind, p.own_request_id));
            }
            if p.kind == Kind::PlaceOrderWithCoupon {
                let body = p.body.unwrap();
                let code = body["coupon"].as_str().unwrap();
                assert!(code.starts_with("SAVE-") && code.len() == 9, "{code}");
            }
        }
        // Wide margins: these catch a broken mix, not sampling noise.
        assert!((6000..7000).contains(&counts[0]), "{counts:?}");
        assert!((1500..2500).contains(&counts[1]), "{counts:?}");
        assert!((1000..2000).contains(&counts[2]), "{counts:?}");
        assert!((4000..6000).contains(&own), "{own}");
        let mut again = fastrand::Rng::with_seed(7);
        for (kind, rid) in first {
            let p = plan(&mut again, &recent);
            assert_eq!((p.kind, p.own_request_id), (kind, rid));
        }
    }

    #[test]
    fn the_generator_can_run_on_a_spawned_task() {
        fn assert_send<T: Send + 'static>(_: &T) {}
        let cfg = LoadConfig {
            gateway: SocketAddr::from(([127, 0, 0, 1], 9)),
            rate: 1.0,
            seed: 0,
        };
        assert_send(&run(cfg, Arc::new(LoadStats::default()), async {}));
    }

    #[test]
    fn stats_keep_the_newest_and_count_all() {
        let stats = LoadStats::default();
        let sent = |status| Sent {
            request_id: "r".into(),
            kind: Kind::PlaceOrder,
            status,
            order_id: None,
            unix_ms: 0,
            duration_ms: 0,
            had_request_id: false,
        };
        for _ in 0..MAX_KEPT {
            stats.record(sent(201));
        }
        stats.record(sent(404));
        stats.record(sent(503));
        stats.record(sent(0));
        let s = stats.snapshot();
        assert_eq!(
            (s.sent, s.ok, s.rejected, s.failed),
            (MAX_KEPT as u64 + 3, MAX_KEPT as u64, 1, 2)
        );
        let kept = stats.sent();
        assert_eq!(kept.len(), MAX_KEPT);
        assert_eq!(kept.last().unwrap().status, 0);
    }
}
