//! The demo's webhook receiver: takes the collector's notifications (Alertmanager webhook v4)
//! on `POST /hook`, says each one, and counts them for the summary.

use super::events::Events;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use skein_model::alert_api::WebhookMessage;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest notification body accepted.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// What the receiver got.
#[derive(Default)]
pub(crate) struct Received {
    /// Notifications (POSTs with a valid body).
    pub(crate) notifications: AtomicU64,
    /// Alerts in them with status `firing`.
    pub(crate) firing: AtomicU64,
    /// Alerts in them with status `resolved`.
    pub(crate) resolved: AtomicU64,
}

struct Shared {
    received: Arc<Received>,
    events: Arc<Events>,
}

/// The receiver's routes.
pub(crate) fn router(received: Arc<Received>, events: Arc<Events>) -> Router {
    Router::new()
        .route("/hook", post(hook))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::new(Shared { received, events }))
}

async fn hook(State(s): State<Arc<Shared>>, body: axum::body::Bytes) -> impl IntoResponse {
    let msg: WebhookMessage = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            let error = format!("the body is not an Alertmanager webhook message: {e}");
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": error })),
            );
        }
    };
    s.received.notifications.fetch_add(1, Ordering::Relaxed);
    for a in &msg.alerts {
        let counter = if a.status == "resolved" {
            &s.received.resolved
        } else {
            &s.received.firing
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let name = a.labels.get("alertname").map_or("?", |v| v.as_str());
        let service = a
            .labels
            .get("service")
            .map_or(String::new(), |v| format!(" service={v}"));
        let summary = a
            .annotations
            .get("summary")
            .map_or(String::new(), |v| format!(": {v}"));
        s.events.say(&format!(
            "webhook: {} {name}{service}{summary}",
            a.status.to_uppercase()
        ));
    }
    (StatusCode::OK, Json(serde_json::json!({ "status": "ok" })))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::demo::events::Sink;

    #[tokio::test]
    async fn notifications_are_counted_and_bad_bodies_refused() {
        let received = Arc::new(Received::default());
        let events = Arc::new(Events::new(Sink::Stderr, None));
        let app = router(received.clone(), events);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/hook");
        let body = serde_json::json!({
            "receiver": "demo-webhook", "status": "firing", "version": "4",
            "groupKey": "{}:{alertname=\"PaymentSlow\"}", "truncatedAlerts": 0,
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
            "alerts": [
                {"status": "firing", "labels": {"alertname": "PaymentSlow", "service": "payment"},
                 "annotations": {"summary": "slow"}, "startsAt": "2026-11-22T10:00:00Z",
                 "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "a"},
                {"status": "resolved", "labels": {"alertname": "CouponFailing"},
                 "annotations": {}, "startsAt": "2026-11-22T10:00:00Z",
                 "endsAt": "2026-11-22T10:01:00Z", "generatorURL": "", "fingerprint": "b"}
            ]
        });
        let r = client.post(&url).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let r = client.post(&url).body("{not json").send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(received.notifications.load(Ordering::Relaxed), 1);
        assert_eq!(received.firing.load(Ordering::Relaxed), 1);
        assert_eq!(received.resolved.load(Ordering::Relaxed), 1);
    }
}
