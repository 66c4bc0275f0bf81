//! The gateway: checks customers' orders and passes them to the order service.

use super::Built;
use super::model::{OrderRequest, order_id_valid};
use crate::ServiceName;
use crate::client::{Call, CallError, Reply};
use crate::server::{Common, RequestId, json_error, raw_json};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::{Method, StatusCode};
use std::sync::Arc;
use std::time::Duration;

/// Timeout of the gateway's call to the order service: long enough for the order service's
/// own calls (coupon, payment, and a compensating release, 2 s each at most).
const ORDER_CALL_TIMEOUT: Duration = Duration::from_secs(8);

/// Routes `POST /orders` and `GET /orders/{id}`.
pub(crate) fn build(common: Arc<Common>) -> Built {
    let router = Router::new()
        .route("/orders", post(place))
        .route("/orders/{id}", get(fetch))
        .with_state(common);
    Built {
        router,
        tasks: Vec::new(),
    }
}

async fn place(
    State(common): State<Arc<Common>>,
    Extension(RequestId(rid)): Extension<RequestId>,
    body: Bytes,
) -> Response {
    if common.fault.apply().await {
        tracing::error!("gateway overloaded (fault)");
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway is overloaded; try again shortly",
        );
    }
    let order: OrderRequest = match serde_json::from_slice(&body) {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(error = %e, "order rejected: body is not a valid order");
            return json_error(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body must be JSON like {{\"customer_id\": \"c1\", \"items\": [{{\"sku\": \"pizza\", \"qty\": 1, \"price_cents\": 1200}}], \"coupon\": null}}: {e}"
                ),
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
    let coupon = order.coupon.clone().unwrap_or_default();
    let call = Call {
        callee: ServiceName::Order,
        method: Method::POST,
        route: "/orders",
        path: "/orders".to_owned(),
        body: serde_json::to_value(&order).ok(),
        request_id: &rid,
        timeout: ORDER_CALL_TIMEOUT,
        parent: None,
    };
    match common.peers.call(call).await {
        Ok(reply) => {
            let order_id = reply
                .json()
                .and_then(|v| {
                    v.get("order_id")
                        .and_then(|o| o.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            let status = reply.status.as_u16();
            if reply.status.is_success() {
                tracing::info!(order_id, amount_cents, coupon, "order placed");
            } else if reply.status.is_client_error() {
                let error = reply.error_message();
                tracing::warn!(status, amount_cents, coupon, error, "order not placed");
            } else {
                let error = reply.error_message();
                tracing::error!(status, amount_cents, coupon, error, "order service failed");
            }
            pass_on(reply)
        }
        Err(e) => order_unreachable(&e),
    }
}

async fn fetch(
    State(common): State<Arc<Common>>,
    Extension(RequestId(rid)): Extension<RequestId>,
    Path(id): Path<String>,
) -> Response {
    if common.fault.apply().await {
        tracing::error!(order_id = %id, "gateway overloaded (fault)");
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway is overloaded; try again shortly",
        );
    }
    if !order_id_valid(&id) {
        tracing::warn!("order lookup rejected: malformed order id");
        return json_error(
            StatusCode::BAD_REQUEST,
            "an order id is 1 to 64 characters of letters, digits, '-' and '_', e.g. ord-0123456789ab",
        );
    }
    let call = Call {
        callee: ServiceName::Order,
        method: Method::GET,
        route: "/orders/{id}",
        path: format!("/orders/{id}"),
        body: None,
        request_id: &rid,
        timeout: crate::client::CALL_TIMEOUT,
        parent: None,
    };
    match common.peers.call(call).await {
        Ok(reply) => {
            let status = reply.status.as_u16();
            if reply.status.is_success() {
                tracing::info!(order_id = %id, "order looked up");
            } else if reply.status.is_client_error() {
                tracing::warn!(order_id = %id, status, "order not found");
            } else {
                let error = reply.error_message();
                tracing::error!(order_id = %id, status, error, "order service failed");
            }
            pass_on(reply)
        }
        Err(e) => order_unreachable(&e),
    }
}

/// The order service's answer, as the gateway's.
fn pass_on(reply: Reply) -> Response {
    raw_json(reply.status, reply.body)
}

fn order_unreachable(e: &CallError) -> Response {
    tracing::error!(error = %e, "order service unreachable");
    let status = match e {
        CallError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    };
    json_error(
        status,
        format!("the order service did not answer ({e}); try again shortly"),
    )
}
