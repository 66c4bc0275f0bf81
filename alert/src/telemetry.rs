//! The alert engine's own counters. They are registered into the registry of the process that
//! runs the engine (the collector), so its `/metrics` shows them beside its other counters
//! under the same `skein_` prefix.

use skein_telemetry::{CounterFamily, GaugeFamily, Metrics, label};

/// The alert counters; cheap to clone (every metric is shared).
#[derive(Clone)]
pub struct AlertTelemetry {
    alerts: GaugeFamily,
    evaluations: CounterFamily,
    notifications: CounterFamily,
    outbox: GaugeFamily,
}

impl AlertTelemetry {
    /// Creates the counters and registers them, with help text, into `m`.
    pub fn register(m: &mut Metrics) -> Self {
        AlertTelemetry {
            alerts: m.gauge_family("alerts", "Alerts now, by state (pending, firing)"),
            evaluations: m.counter_family(
                "alert_rule_evaluations",
                "Rule evaluations, by result (ok, error)",
            ),
            notifications: m.counter_family(
                "alert_notifications",
                "Webhook notifications, by receiver and result (sent, failed, retried, dropped)",
            ),
            outbox: m.gauge_family(
                "alert_outbox_pending",
                "Notifications waiting in the outbox, by receiver",
            ),
        }
    }

    /// Alerts now in each state.
    pub fn alerts(&self, pending: u64, firing: u64) {
        for (state, n) in [("pending", pending), ("firing", firing)] {
            self.alerts.get_or_create(&label("state", state)).set(n);
        }
    }

    /// Rule evaluations that went well and that failed.
    pub fn alert_evaluations(&self, ok: u64, failed: u64) {
        for (result, n) in [("ok", ok), ("error", failed)] {
            self.evaluations
                .get_or_create(&label("result", result))
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
            .get_or_create(&label("receiver", receiver))
            .set(n);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_registered_with_help() {
        let mut m = Metrics::new("skein");
        let t = AlertTelemetry::register(&mut m);
        t.alerts(1, 2);
        t.alert_evaluations(5, 1);
        t.alert_notifications("ops", "sent", 3);
        t.alert_outbox_pending("ops", 4);
        let text = m.render();
        assert!(text.contains("skein_alerts{state=\"firing\"} 2"), "{text}");
        assert!(
            text.contains("skein_alert_notifications_total{receiver=\"ops\",result=\"sent\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("skein_alert_outbox_pending{receiver=\"ops\"} 4"),
            "{text}"
        );
        assert_eq!(
            skein_telemetry::families_without_help(&text),
            Vec::<String>::new()
        );
    }
}
