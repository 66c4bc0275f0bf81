//! The alert engine's own counters. They are registered into the registry of the process that
//! runs the engine (the collector), so its `/metrics` shows them beside its other counters
//! under the same `skein_` prefix.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(&'static str, String)>;

/// The alert counters; cheap to clone (every metric is shared).
#[derive(Clone, Default)]
pub struct AlertTelemetry {
    alerts: Family<Labels, Gauge<u64, AtomicU64>>,
    evaluations: Family<Labels, Counter>,
    notifications: Family<Labels, Counter>,
    outbox: Family<Labels, Gauge<u64, AtomicU64>>,
}

impl AlertTelemetry {
    /// Creates the counters and registers them, with help text, into `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let t = AlertTelemetry::default();
        registry.register(
            "alerts",
            "Alerts now, by state (pending, firing)",
            t.alerts.clone(),
        );
        registry.register(
            "alert_rule_evaluations",
            "Rule evaluations, by result (ok, error)",
            t.evaluations.clone(),
        );
        registry.register(
            "alert_notifications",
            "Webhook notifications, by receiver and result (sent, failed, retried, dropped)",
            t.notifications.clone(),
        );
        registry.register(
            "alert_outbox_pending",
            "Notifications waiting in the outbox, by receiver",
            t.outbox.clone(),
        );
        t
    }

    /// Alerts now in each state.
    pub fn alerts(&self, pending: u64, firing: u64) {
        for (state, n) in [("pending", pending), ("firing", firing)] {
            self.alerts
                .get_or_create(&vec![("state", state.to_string())])
                .set(n);
        }
    }

    /// Rule evaluations that went well and that failed.
    pub fn alert_evaluations(&self, ok: u64, failed: u64) {
        for (result, n) in [("ok", ok), ("error", failed)] {
            self.evaluations
                .get_or_create(&vec![("result", result.to_string())])
                .inc_by(n);
        }
    }

    /// More notifications of a receiver with a result (sent, failed, retried, dropped).
    pub fn alert_notifications(&self, receiver: &str, result: &str, n: u64) {
        self.notifications
            .get_or_create(&vec![
                ("receiver", receiver.to_string()),
                ("result", result.to_string()),
            ])
            .inc_by(n);
    }

    /// Notifications waiting for a receiver.
    pub fn alert_outbox_pending(&self, receiver: &str, n: u64) {
        self.outbox
            .get_or_create(&vec![("receiver", receiver.to_string())])
            .set(n);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_registered_with_help() {
        let mut registry = Registry::with_prefix("skein");
        let t = AlertTelemetry::register(&mut registry);
        t.alerts(1, 2);
        t.alert_notifications("ops", "sent", 3);
        t.alert_outbox_pending("ops", 4);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("skein_alerts{state=\"firing\"} 2"), "{text}");
        assert!(
            text.contains("skein_alert_notifications_total{receiver=\"ops\",result=\"sent\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("# HELP skein_alert_outbox_pending "),
            "{text}"
        );
        assert!(
            text.contains("skein_alert_outbox_pending{receiver=\"ops\"} 4"),
            "{text}"
        );
    }
}
