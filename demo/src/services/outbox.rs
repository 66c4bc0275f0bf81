//! The order service's outbox: `order.accepted` events waiting to reach delivery.
//!
//! Events go out one at a time, in order. While delivery is unreachable or answers 5xx, the
//! head event is retried with a backoff from 200 ms to 5 s, so a backlog drains by itself
//! when delivery comes back. Events still waiting when the service stops are lost.

use super::model::OrderAccepted;
use crate::ServiceName;
use crate::client::{CALL_TIMEOUT, Call};
use crate::propagation;
use crate::server::Common;
use http::Method;
use opentelemetry::trace::TraceContextExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Most events waiting in the outbox; when full, the newest event is dropped (and counted).
pub(crate) const MAX_OUTBOX: usize = 10_000;

/// First wait before retrying an event.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The sending side of the outbox.
pub(crate) struct Outbox {
    tx: mpsc::Sender<OrderAccepted>,
    dropped: AtomicU64,
}

impl Outbox {
    /// An empty outbox and the receiver its drain task reads.
    pub(crate) fn new() -> (Outbox, mpsc::Receiver<OrderAccepted>) {
        let (tx, rx) = mpsc::channel(MAX_OUTBOX);
        (
            Outbox {
                tx,
                dropped: AtomicU64::new(0),
            },
            rx,
        )
    }

    /// Queues an event; when the outbox is full (or closed) gives the number of events
    /// dropped so far, this one included.
    pub(crate) fn push(&self, event: OrderAccepted) -> Result<(), u64> {
        self.tx
            .try_send(event)
            .map_err(|_| self.dropped.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// Sends queued events to delivery until the outbox closes.
pub(crate) async fn drain(mut rx: mpsc::Receiver<OrderAccepted>, common: Arc<Common>) {
    while let Some(event) = rx.recv().await {
        deliver(&common, &event).await;
    }
}

/// Sends one event, retrying until delivery takes it or refuses it for good (4xx).
async fn deliver(common: &Common, event: &OrderAccepted) {
    let mut backoff = FIRST_BACKOFF;
    let mut attempt: u32 = 1;
    let parent = propagation::span_context_of(&event.traceparent)
        .map(|sc| opentelemetry::Context::new().with_remote_span_context(sc));
    let order_id = event.order_id.as_str();
    let request_id = event.request_id.as_str();
    loop {
        let call = Call {
            callee: ServiceName::Delivery,
            method: Method::POST,
            route: "/events",
            path: "/events".to_owned(),
            body: serde_json::to_value(event).ok(),
            request_id,
            timeout: CALL_TIMEOUT,
            parent: parent.clone(),
        };
        let error = match common.peers.call(call).await {
            Ok(reply) if reply.status.is_success() => {
                tracing::info!(order_id, request_id, attempt, "order.accepted delivered");
                return;
            }
            Ok(reply) if reply.status.is_client_error() => {
                let error = reply.error_message();
                tracing::error!(
                    order_id,
                    request_id,
                    status = reply.status.as_u16(),
                    error,
                    "delivery refused the order.accepted event; it is dropped"
                );
                return;
            }
            Ok(reply) => format!(
                "status {}: {}",
                reply.status.as_u16(),
                reply.error_message()
            ),
            Err(e) => e.to_string(),
        };
        let retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX);
        tracing::warn!(
            order_id,
            request_id,
            attempt,
            retry_in_ms,
            error,
            "order.accepted not delivered yet; will retry"
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        attempt = attempt.saturating_add(1);
    }
}
