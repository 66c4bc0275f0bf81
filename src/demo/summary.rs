//! The headless demo's summary: what was sent, and whether the collector tells every
//! request's whole story. Each request the load generator got an answer for is looked up by
//! its request ID, as an on-call engineer would (`GET /api/v1/traces/{request-id}`).

use super::webhook::Received;
use serde::Serialize;
use skein_client::Client;
use skein_demo::load::{Kind, LoadStats, LoadSummary, Sent};
use skein_model::alert_api::AlertState;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Requests checked at most (the newest); bounds the summary's work on long runs.
const MAX_CHECKED: usize = 5_000;
/// Lookups in flight at once.
const PARALLEL: usize = 8;
/// How long stories may take to complete after the load stopped (the agent's batches, the
/// index commit, delivery's backlog after a restart).
const SETTLE: Duration = Duration::from_secs(45);

/// Services a placed order crosses.
const ALL_FIVE: [&str; 5] = ["gateway", "order", "coupon", "payment", "delivery"];

/// The figures.
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    /// Seconds the demo ran.
    pub(crate) seconds: u64,
    /// Requests per second asked for.
    pub(crate) rate: f64,
    /// What the load generator sent.
    pub(crate) requests: LoadSummary,
    /// Ticks the load generator skipped because 64 requests were already in flight.
    pub(crate) skipped: u64,
    /// Stories looked up.
    pub(crate) stories: Stories,
    /// How soon after the gateway's answer placed orders' stories were whole.
    pub(crate) freshness: super::fresh::FreshnessSummary,
    /// What the collector took in (its own counters).
    pub(crate) indexed: Indexed,
    /// Alert state changes (the collector's history).
    pub(crate) alerts: Alerts,
    /// What the demo's webhook receiver got.
    pub(crate) webhooks: Webhooks,
}

/// Stories looked up by request ID.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Stories {
    /// Requests looked up (answered ones, newest first, at most 5,000).
    pub(crate) checked: u64,
    /// Found with every service they crossed, spans and logs each.
    pub(crate) complete: u64,
    /// Placed orders found with all five services' spans and logs.
    pub(crate) all_five: u64,
    /// Placed orders (201) among the checked.
    pub(crate) placed: u64,
    /// Distinct traces in the found stories (delivery's consumer trace is linked, so an order
    /// has two).
    pub(crate) traces: u64,
    /// Spans and logs in the found stories.
    pub(crate) spans: u64,
    /// Log lines in the found stories.
    pub(crate) logs: u64,
    /// Up to 20 incomplete ones: request ID and what is missing.
    pub(crate) incomplete: Vec<String>,
}

/// The collector's intake counters.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Indexed {
    /// Spans received.
    pub(crate) spans: u64,
    /// Log records received.
    pub(crate) logs: u64,
}

/// Alert state changes.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Alerts {
    /// Changes to firing.
    pub(crate) fired: u64,
    /// Changes to resolved.
    pub(crate) resolved: u64,
    /// Rules that fired.
    pub(crate) rules: Vec<String>,
    /// Notifications the collector says it delivered.
    pub(crate) notifications_sent: u64,
}

/// What the receiver got.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Webhooks {
    /// Notifications.
    pub(crate) received: u64,
    /// Firing alerts in them.
    pub(crate) firing: u64,
    /// Resolved alerts in them.
    pub(crate) resolved: u64,
}

impl Summary {
    /// True when the figures agree: every checked request's story is complete, and the
    /// receiver got every notification the collector sent.
    pub(crate) fn consistent(&self) -> bool {
        self.stories.checked > 0
            && self.stories.complete == self.stories.checked
            && self.stories.all_five == self.stories.placed
            && self.webhooks.received == self.alerts.notifications_sent
    }

    /// The summary as text.
    pub(crate) fn render(&self) -> String {
        let r = &self.requests;
        let s = &self.stories;
        let a = &self.alerts;
        let w = &self.webhooks;
        let mut out = format!(
            "\nskein demo summary: {} s at {} requests/s\n\
             requests sent      {} (2xx {}, 4xx {}, 5xx or no answer {}; {} not sent: 64 in flight)\n\
             stories            {} of {} complete; {} of {} placed orders with all five services' spans and logs\n\
             in those stories   {} traces, {} spans, {} logs\n\
             story whole after  p50 {} ms, p90 {} ms, p99 {} ms, max {} ms from the gateway's answer ({} orders probed, {} not whole within 30 s)\n\
             collector took in  {} spans, {} logs\n\
             alerts             {} fired, {} resolved{}\n\
             webhooks received  {} notifications ({} firing, {} resolved alerts); the collector sent {}\n",
            self.seconds,
            self.rate,
            r.sent,
            r.ok,
            r.rejected,
            r.failed,
            self.skipped,
            s.complete,
            s.checked,
            s.all_five,
            s.placed,
            s.traces,
            s.spans,
            s.logs,
            self.freshness.p50_ms,
            self.freshness.p90_ms,
            self.freshness.p99_ms,
            self.freshness.max_ms,
            self.freshness.probes,
            self.freshness.late,
            self.indexed.spans,
            self.indexed.logs,
            a.fired,
            a.resolved,
            if a.rules.is_empty() {
                String::new()
            } else {
                format!(" ({})", a.rules.join(", "))
            },
            w.received,
            w.firing,
            w.resolved,
            a.notifications_sent,
        );
        for i in &s.incomplete {
            out.push_str(&format!("  incomplete: {i}\n"));
        }
        out.push_str(if self.consistent() {
            "consistent: every request's story was found whole\n"
        } else {
            "NOT consistent: see the lines above\n"
        });
        out
    }
}

/// Which services a request's story must show, by what it was and how it ended.
fn expected(s: &Sent) -> &'static [&'static str] {
    match (s.kind, s.status) {
        (Kind::PlaceOrder | Kind::PlaceOrderWithCoupon, 201) => &ALL_FIVE,
        _ => &ALL_FIVE[..2],
    }
}

/// What a story lacks: services without spans, services without logs. Empty when whole.
pub(crate) fn missing(s: &Sent, t: &skein_model::api::TraceResponse) -> Vec<String> {
    let mut out = Vec::new();
    for svc in expected(s) {
        if !t.spans.iter().any(|x| x.service == *svc) {
            out.push(format!("{svc} spans"));
        }
        if !t.logs.iter().any(|x| x.service == *svc) {
            out.push(format!("{svc} logs"));
        }
    }
    out
}

/// Looks every answered request up until all are whole or [`SETTLE`] passes, then reads the
/// collector's counters and alert history.
pub(crate) async fn collect(
    api: &str,
    stats: &LoadStats,
    received: &Received,
    seconds: u64,
    rate: f64,
    freshness: super::fresh::FreshnessSummary,
) -> Result<Summary, String> {
    let client = Client::new(api, None).map_err(|e| e.to_string())?;
    let mut sent: Vec<Sent> = stats.sent().into_iter().filter(|s| s.status != 0).collect();
    sent.sort_by_key(|s| std::cmp::Reverse(s.unix_ms));
    sent.truncate(MAX_CHECKED);

    let deadline = Instant::now() + SETTLE;
    let mut todo: Vec<usize> = (0..sent.len()).collect();
    let mut found: Vec<Option<skein_model::api::TraceResponse>> = vec![None; sent.len()];
    let mut gaps: Vec<Vec<String>> = vec![vec!["not found".into()]; sent.len()];
    loop {
        use futures::StreamExt;
        let lookups = futures::stream::iter(todo.iter().copied())
            .map(|i| {
                let client = &client;
                let key = sent[i].request_id.clone();
                async move { (i, client.trace(&key).await) }
            })
            .buffer_unordered(PARALLEL)
            .collect::<Vec<_>>()
            .await;
        let mut still = Vec::new();
        for (i, r) in lookups {
            match r {
                Ok(Some(t)) => {
                    gaps[i] = missing(&sent[i], &t);
                    found[i] = Some(t);
                }
                Ok(None) => gaps[i] = vec!["not found".into()],
                Err(e) => gaps[i] = vec![format!("lookup failed: {e}")],
            }
            if !gaps[i].is_empty() {
                still.push(i);
            }
        }
        todo = still;
        if todo.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    let mut stories = Stories {
        checked: sent.len() as u64,
        ..Stories::default()
    };
    let mut traces = HashSet::new();
    for (i, s) in sent.iter().enumerate() {
        let placed =
            matches!(s.kind, Kind::PlaceOrder | Kind::PlaceOrderWithCoupon) && s.status == 201;
        stories.placed += u64::from(placed);
        if gaps[i].is_empty() {
            stories.complete += 1;
            stories.all_five += u64::from(placed);
        } else if stories.incomplete.len() < 20 {
            stories.incomplete.push(format!(
                "{} ({:?}, {}): missing {}",
                s.request_id,
                s.kind,
                s.status,
                gaps[i].join(", ")
            ));
        }
        if let Some(t) = &found[i] {
            traces.extend(t.trace_ids.iter().cloned());
            stories.spans += t.spans.len() as u64;
            stories.logs += t.logs.len() as u64;
        }
    }
    stories.traces = traces.len() as u64;

    let history = client
        .alert_history(&[])
        .await
        .map_err(|e| format!("alert history: {e}"))?;
    let mut alerts = Alerts::default();
    for t in &history.transitions {
        match t.to {
            AlertState::Firing if t.from != AlertState::Firing => {
                alerts.fired += 1;
                if !alerts.rules.contains(&t.rule) {
                    alerts.rules.push(t.rule.clone());
                }
            }
            AlertState::Resolved => alerts.resolved += 1,
            _ => {}
        }
    }
    // Notifications still on their way are waited for a little, so the two counts compare.
    let mut webhooks = Webhooks::default();
    for _ in 0..20 {
        let n = client
            .notifications()
            .await
            .map_err(|e| format!("notifications: {e}"))?;
        alerts.notifications_sent = n.receivers.iter().map(|r| r.sent).sum();
        let pending: usize = n.receivers.iter().map(|r| r.pending).sum();
        webhooks = Webhooks {
            received: received.notifications.load(Ordering::Relaxed),
            firing: received.firing.load(Ordering::Relaxed),
            resolved: received.resolved.load(Ordering::Relaxed),
        };
        if pending == 0 && webhooks.received == alerts.notifications_sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let indexed = intake(api).await.unwrap_or_default();
    Ok(Summary {
        seconds,
        rate,
        requests: stats.snapshot(),
        skipped: stats.skipped(),
        stories,
        freshness,
        indexed,
        alerts,
        webhooks,
    })
}

/// The collector's `skein_received_records_total` per signal, from `/metrics`.
async fn intake(api: &str) -> Result<Indexed, String> {
    let text = reqwest::Client::new()
        .get(format!("{api}/metrics"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    Ok(parse_intake(&text))
}

fn parse_intake(text: &str) -> Indexed {
    let mut out = Indexed::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("skein_received_records_total{") else {
            continue;
        };
        let value = rest
            .rsplit_once(' ')
            .and_then(|(_, v)| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
        if rest.contains("signal=\"spans\"") {
            out.spans += value;
        } else if rest.contains("signal=\"logs\"") {
            out.logs += value;
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn intake_counters_are_read_per_signal() {
        let text = "# HELP x\nskein_received_records_total{signal=\"logs\"} 12\n\
                    skein_received_records_total{signal=\"spans\"} 30\n\
                    skein_received_records_total{signal=\"metrics\"} 7\n";
        let i = parse_intake(text);
        assert_eq!((i.spans, i.logs), (30, 12));
    }
}
