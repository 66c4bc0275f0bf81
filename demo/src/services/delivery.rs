//! The delivery service: takes `order.accepted` events, queues them, and assigns a courier to
//! each under a consumer span linked to the order's producer span.

use super::Built;
use super::bounded::BoundedMap;
use super::model::{OrderAccepted, order_id_valid};
use crate::propagation;
use crate::server::{Common, json_error};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde::Serialize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;
use tracing::field::Empty;
use tracing::instrument::WithSubscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Most events waiting to be processed; when full, `POST /events` answers 503.
pub(crate) const MAX_QUEUE: usize = 10_000;

/// Most deliveries kept for `GET /deliveries/{order_id}`; the oldest are forgotten first.
pub(crate) const MAX_DELIVERIES: usize = 10_000;

/// Shortest and longest time assigning a courier takes, in milliseconds.
const WORK_MS: (u64, u64) = (10, 40);

struct DeliveryState {
    queue: mpsc::Sender<OrderAccepted>,
    deliveries: Mutex<BoundedMap<Delivery>>,
}

impl DeliveryState {
    fn deliveries(&self) -> MutexGuard<'_, BoundedMap<Delivery>> {
        self.deliveries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A delivery, as `GET /deliveries/{order_id}` shows it.
#[derive(Clone, Debug, Serialize)]
struct Delivery {
    order_id: String,
    request_id: String,
    /// `queued`, `assigned` or `failed`.
    status: &'static str,
    courier: Option<String>,
}

/// Routes `POST /events` and `GET /deliveries/{order_id}`; starts the consumer task.
pub(crate) fn build(common: Arc<Common>) -> Built {
    let (tx, rx) = mpsc::channel(MAX_QUEUE);
    let state = Arc::new(DeliveryState {
        queue: tx,
        deliveries: Mutex::new(BoundedMap::new(MAX_DELIVERIES)),
    });
    let consumer = tokio::spawn(
        consume(rx, state.clone(), common.clone()).with_subscriber(common.dispatch.clone()),
    );
    let router = Router::new()
        .route("/events", post(accept))
        .route("/deliveries/{order_id}", get(fetch))
        .with_state(state);
    Built {
        router,
        tasks: vec![consumer],
    }
}

async fn accept(State(state): State<Arc<DeliveryState>>, body: Bytes) -> Response {
    let event: OrderAccepted = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "event refused: not an order.accepted event");
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("the body must be an order.accepted event: {e}"),
            );
        }
    };
    if !order_id_valid(&event.order_id) {
        tracing::warn!("event refused: malformed order id");
        return json_error(StatusCode::BAD_REQUEST, "the event's order_id is malformed");
    }
    let order_id = event.order_id.clone();
    {
        let mut deliveries = state.deliveries();
        if deliveries.contains(&order_id) {
            drop(deliveries);
            tracing::info!(order_id, "event already taken; ignored");
            return accepted(&order_id);
        }
        deliveries.insert(
            order_id.clone(),
            Delivery {
                order_id: order_id.clone(),
                request_id: event.request_id.clone(),
                status: "queued",
                courier: None,
            },
        );
    }
    if state.queue.try_send(event).is_err() {
        state.deliveries().remove(&order_id);
        tracing::error!(order_id, "delivery queue full; event refused");
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the delivery queue is full; send the event again later",
        );
    }
    tracing::info!(order_id, "order.accepted queued");
    accepted(&order_id)
}

fn accepted(order_id: &str) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "order_id": order_id, "status": "queued" })),
    )
        .into_response()
}

async fn fetch(State(state): State<Arc<DeliveryState>>, Path(order_id): Path<String>) -> Response {
    let found = state.deliveries().get(&order_id).cloned();
    match found {
        Some(d) => {
            tracing::info!(order_id, status = d.status, "delivery looked up");
            Json(d).into_response()
        }
        None => {
            tracing::warn!(order_id, "delivery not found");
            json_error(
                StatusCode::NOT_FOUND,
                format!("no delivery for order {order_id:?} (yet)"),
            )
        }
    }
}

/// Events processed at once (couriers assigned in parallel). Each takes 10 to 40 ms, so the
/// service keeps up with about 1,000 events per second.
pub(crate) const CONSUMERS: usize = 32;

/// Processes queued events, [`CONSUMERS`] at a time, until the queue closes.
async fn consume(
    mut rx: mpsc::Receiver<OrderAccepted>,
    state: Arc<DeliveryState>,
    common: Arc<Common>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(CONSUMERS));
    while let Some(event) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (state, common) = (state.clone(), common.clone());
        tokio::spawn(
            async move {
                process(&state, &common, event).await;
                drop(slot);
            }
            .with_current_subscriber(),
        );
    }
}

/// One event, under a new root span linked to the producer's span.
async fn process(state: &DeliveryState, common: &Common, event: OrderAccepted) {
    let span = tracing::info_span!(
        parent: None,
        "process",
        otel.name = "order.accepted process",
        otel.kind = "consumer",
        messaging.operation = "process",
        messaging.destination.name = "order.accepted",
        order_id = %event.order_id,
        request_id = %event.request_id,
        otel.status_code = Empty,
    );
    if let Some(producer) = propagation::span_context_of(&event.traceparent) {
        span.add_link(producer);
    }
    let work = async {
        let failing = common.fault.apply().await;
        let ms = fastrand::u64(WORK_MS.0..=WORK_MS.1);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let order_id = event.order_id.as_str();
        let request_id = event.request_id.as_str();
        if failing {
            tracing::Span::current().record("otel.status_code", "ERROR");
            tracing::error!(order_id, request_id, "no courier available");
            set_outcome(state, order_id, "failed", None);
        } else {
            let courier = format!("courier-{:02}", fastrand::u32(1..=40));
            tracing::info!(
                order_id,
                request_id,
                courier,
                items = event.items,
                "courier assigned"
            );
            set_outcome(state, order_id, "assigned", Some(courier));
        }
    };
    work.instrument(span).await;
}

fn set_outcome(
    state: &DeliveryState,
    order_id: &str,
    status: &'static str,
    courier: Option<String>,
) {
    if let Some(d) = state.deliveries().get_mut(order_id) {
        d.status = status;
        d.courier = courier;
    }
}
