//! The order service: the order saga (coupon, payment, compensation) and the
//! `order.accepted` event.

use super::Built;
use super::bounded::BoundedMap;
use super::model::{CouponBody, OrderAccepted, OrderRequest, PaymentBody};
use super::outbox::{self, Outbox};
use crate::client::{CALL_TIMEOUT, Call};
use crate::server::{Common, RequestId, json_error};
use crate::{ServiceName, propagation};
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{Method, StatusCode};
use serde::Serialize;
use std::sync::{Arc, Mutex, MutexGuard};
use tracing::Instrument;
use tracing::instrument::WithSubscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Most orders kept for `GET /orders/{id}`; the oldest are forgotten first.
pub(crate) const MAX_ORDERS: usize = 10_000;

/// Share of the price a coupon takes off, in percent.
const COUPON_PERCENT_OFF: u64 = 10;

struct OrderState {
    common: Arc<Common>,
    orders: Mutex<BoundedMap<StoredOrder>>,
    outbox: Outbox,
}

impl OrderState {
    fn orders(&self) -> MutexGuard<'_, BoundedMap<StoredOrder>> {
        self.orders.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An accepted order, as `GET /orders/{id}` shows it.
#[derive(Clone, Debug, Serialize)]
struct StoredOrder {
    order_id: String,
    customer_id: String,
    items: usize,
    amount_cents: u64,
    discount_cents: u64,
    coupon: Option<String>,
    status: &'static str,
    request_id: String,
}

/// Routes `POST /orders` and `GET /orders/{id}`; starts the outbox drain task.
pub(crate) fn build(common: Arc<Common>) -> Built {
    let (outbox, rx) = Outbox::new();
    let drain =
        tokio::spawn(outbox::drain(rx, common.clone()).with_subscriber(common.dispatch.clone()));
    let state = Arc::new(OrderState {
        common,
        orders: Mutex::new(BoundedMap::new(MAX_ORDERS)),
        outbox,
    });
    let router = Router::new()
        .route("/orders", post(place))
        .route("/orders/{id}", get(fetch))
        .with_state(state);
    Built {
        router,
        tasks: vec![drain],
    }
}

/// Runs the saga on its own task, so a caller that hangs up cannot cut it short between a
/// coupon redemption and its compensation.
async fn place(
    State(state): State<Arc<OrderState>>,
    Extension(RequestId(rid)): Extension<RequestId>,
    body: Bytes,
) -> Response {
    let saga = saga(state, rid, body)
        .instrument(tracing::Span::current())
        .with_current_subscriber();
    match tokio::spawn(saga).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!(error = %e, "order saga stopped unexpectedly");
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the order could not be processed",
            )
        }
    }
}

async fn saga(state: Arc<OrderState>, rid: String, body: Bytes) -> Response {
    let common = &state.common;
    if common.fault.apply().await {
        tracing::error!("order store unavailable (fault)");
        return json_error(StatusCode::SERVICE_UNAVAILABLE, "order store unavailable");
    }
    let order: OrderRequest = match serde_json::from_slice(&body) {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(error = %e, "order rejected: body is not a valid order");
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("the body is not a valid order: {e}"),
            );
        }
    };
    let amount_cents = match order.validate() {
        Ok(a) => a,
        Err(message) => {
            tracing::warn!(error = %message, "order rejected");
            return json_error(StatusCode::BAD_REQUEST, message);
        }
    };
    let order_id = format!("ord-{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff);

    let mut discount_cents = 0;
    let mut redeemed: Option<String> = None;
    if let Some(code) = order.coupon.as_deref() {
        match redeem(common, code, &order_id, &rid).await {
            Redeem::Applied => {
                discount_cents = amount_cents * COUPON_PERCENT_OFF / 100;
                redeemed = Some(code.to_owned());
                tracing::info!(order_id, coupon = code, discount_cents, "coupon applied");
            }
            Redeem::NotApplied(reason) => {
                tracing::warn!(
                    order_id,
                    coupon = code,
                    reason,
                    "coupon not applied; the order goes on without a discount"
                );
            }
            Redeem::Invalid(message) => {
                tracing::warn!(order_id, coupon = code, error = %message, "order rejected: bad coupon");
                return json_error(StatusCode::BAD_REQUEST, message);
            }
            Redeem::Failed(error) => {
                tracing::error!(order_id, coupon = code, error, "coupon service failed");
                return json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the coupon service is unavailable; try again, or order without a coupon",
                );
            }
        }
    } else {
        // Without a code the order asks coupon for the customer's automatic promotion. It is
        // optional: when coupon fails the order goes on at full price.
        match auto_promotion(common, &order.customer_id, &rid).await {
            Ok(percent) if percent > 0 => {
                discount_cents = amount_cents * percent.min(100) / 100;
                tracing::info!(order_id, discount_cents, "automatic promotion applied");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(
                order_id,
                error,
                "automatic promotion unavailable; the order goes on at full price"
            ),
        }
    }

    let charged = amount_cents - discount_cents;
    if let Err(failure) = pay(common, &order_id, charged, &rid).await {
        let resp = match failure {
            PayFailure::Declined(reason) => {
                tracing::warn!(order_id, amount_cents = charged, reason, "payment declined");
                json_error(
                    StatusCode::PAYMENT_REQUIRED,
                    format!("payment declined ({reason}); use another card"),
                )
            }
            PayFailure::Down(error) => {
                tracing::error!(order_id, amount_cents = charged, error, "payment failed");
                json_error(
                    StatusCode::BAD_GATEWAY,
                    "the payment service failed or did not answer in time; the order was not placed, try again",
                )
            }
        };
        if let Some(code) = &redeemed {
            release(common, code, &order_id, &rid).await;
        }
        return resp;
    }

    let stored = StoredOrder {
        order_id: order_id.clone(),
        customer_id: order.customer_id.clone(),
        items: order.items.len(),
        amount_cents: charged,
        discount_cents,
        coupon: redeemed.clone(),
        status: "accepted",
        request_id: rid.clone(),
    };
    state.orders().insert(order_id.clone(), stored);
    publish(&state, &order_id, &rid, order.items.len(), charged);
    tracing::info!(
        order_id,
        amount_cents = charged,
        coupon = redeemed.as_deref().unwrap_or(""),
        "order accepted"
    );
    (
        StatusCode::CREATED,
        Json(serde_json::json!({ "order_id": order_id, "status": "accepted" })),
    )
        .into_response()
}

/// Asks coupon for the customer's automatic promotion: the percent off (0 for none).
async fn auto_promotion(common: &Common, customer_id: &str, rid: &str) -> Result<u64, String> {
    let call = Call {
        callee: ServiceName::Coupon,
        method: Method::GET,
        route: "/coupons/auto",
        path: format!("/coupons/auto?customer_id={}", query_escape(customer_id)),
        body: None,
        request_id: rid,
        timeout: CALL_TIMEOUT,
        parent: None,
    };
    match common.peers.call(call).await {
        Ok(r) if r.status.is_success() => Ok(r
            .json()
            .and_then(|v| v.get("percent_off").and_then(|p| p.as_u64()))
            .unwrap_or(0)),
        Ok(r) => Err(format!(
            "status {}: {}",
            r.status.as_u16(),
            r.error_message()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn query_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A `POST` to coupon's `route` (redeem or release) for `code` and `order_id`.
fn coupon_call<'a>(route: &'static str, code: &str, order_id: &str, rid: &'a str) -> Call<'a> {
    Call {
        callee: ServiceName::Coupon,
        method: Method::POST,
        route,
        path: route.replace("{code}", code),
        body: serde_json::to_value(CouponBody {
            order_id: order_id.to_owned(),
        })
        .ok(),
        request_id: rid,
        timeout: CALL_TIMEOUT,
        parent: None,
    }
}

enum Redeem {
    Applied,
    NotApplied(String),
    Invalid(String),
    Failed(String),
}

async fn redeem(common: &Common, code: &str, order_id: &str, rid: &str) -> Redeem {
    let call = coupon_call("/coupons/{code}/redeem", code, order_id, rid);
    match common.peers.call(call).await {
        Ok(r) if r.status.is_success() => Redeem::Applied,
        Ok(r) if r.status == StatusCode::CONFLICT || r.status == StatusCode::NOT_FOUND => {
            Redeem::NotApplied(r.error_message())
        }
        Ok(r) if r.status.is_client_error() => Redeem::Invalid(r.error_message()),
        Ok(r) => Redeem::Failed(format!(
            "status {}: {}",
            r.status.as_u16(),
            r.error_message()
        )),
        Err(e) => Redeem::Failed(e.to_string()),
    }
}

/// Gives a redeemed coupon back after a failed payment (the compensating step).
async fn release(common: &Common, code: &str, order_id: &str, rid: &str) {
    let call = coupon_call("/coupons/{code}/release", code, order_id, rid);
    match common.peers.call(call).await {
        Ok(r) if r.status.is_success() || r.status == StatusCode::NOT_FOUND => {
            tracing::info!(order_id, coupon = code, "coupon released (compensation)");
        }
        Ok(r) => {
            let error = format!("status {}: {}", r.status.as_u16(), r.error_message());
            tracing::error!(
                order_id,
                coupon = code,
                error,
                "coupon release failed; the coupon stays redeemed"
            );
        }
        Err(e) => {
            tracing::error!(order_id, coupon = code, error = %e, "coupon release failed; the coupon stays redeemed");
        }
    }
}

enum PayFailure {
    Declined(String),
    Down(String),
}

async fn pay(
    common: &Common,
    order_id: &str,
    amount_cents: u64,
    rid: &str,
) -> Result<(), PayFailure> {
    let call = Call {
        callee: ServiceName::Payment,
        method: Method::POST,
        route: "/payments",
        path: "/payments".to_owned(),
        body: serde_json::to_value(PaymentBody {
            order_id: order_id.to_owned(),
            amount_cents,
        })
        .ok(),
        request_id: rid,
        timeout: CALL_TIMEOUT,
        parent: None,
    };
    match common.peers.call(call).await {
        Ok(r) if r.status.is_success() => Ok(()),
        Ok(r) if r.status == StatusCode::PAYMENT_REQUIRED => {
            Err(PayFailure::Declined(r.error_message()))
        }
        Ok(r) => Err(PayFailure::Down(format!(
            "status {}: {}",
            r.status.as_u16(),
            r.error_message()
        ))),
        Err(e) => Err(PayFailure::Down(e.to_string())),
    }
}

/// Publishes `order.accepted` under a producer span whose context travels in the event.
fn publish(state: &OrderState, order_id: &str, rid: &str, items: usize, amount_cents: u64) {
    let span = tracing::info_span!(
        "publish",
        otel.name = "order.accepted publish",
        otel.kind = "producer",
        messaging.operation = "publish",
        messaging.destination.name = "order.accepted",
        order_id,
        request_id = rid,
    );
    let traceparent = propagation::traceparent_of(&span.context()).unwrap_or_default();
    let event = OrderAccepted {
        order_id: order_id.to_owned(),
        request_id: rid.to_owned(),
        traceparent,
        items,
        amount_cents,
    };
    span.in_scope(|| match state.outbox.push(event) {
        Ok(()) => tracing::info!(order_id, "order.accepted published"),
        Err(dropped) => tracing::error!(
            order_id,
            dropped,
            "outbox full; order.accepted dropped (delivery has been unreachable for long)"
        ),
    });
}

async fn fetch(State(state): State<Arc<OrderState>>, Path(id): Path<String>) -> Response {
    let found = state.orders().get(&id).cloned();
    match found {
        Some(order) => {
            tracing::info!(order_id = %id, status = order.status, "order looked up");
            Json(order).into_response()
        }
        None => {
            tracing::warn!(order_id = %id, "order not found");
            json_error(
                StatusCode::NOT_FOUND,
                format!("no order {id:?}; it may be older than the last {MAX_ORDERS} orders"),
            )
        }
    }
}
