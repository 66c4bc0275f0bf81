//! The payment service: charges a card, sometimes declines, and can be made slow or broken.

use super::Built;
use super::model::PaymentBody;
use crate::server::{Common, json_error};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use http::StatusCode;
use std::sync::Arc;
use std::time::Duration;

/// Shortest and longest time a payment takes without a fault, in milliseconds.
const BASE_LATENCY_MS: (u64, u64) = (20, 60);

/// Share of payments declined without any fault, in percent.
const DECLINE_PERCENT: u32 = 3;

/// Routes `POST /payments`.
pub(crate) fn build(common: Arc<Common>) -> Built {
    let router = Router::new()
        .route("/payments", post(charge))
        .with_state(common);
    Built {
        router,
        tasks: Vec::new(),
    }
}

async fn charge(State(common): State<Arc<Common>>, body: Bytes) -> Response {
    let base = fastrand::u64(BASE_LATENCY_MS.0..=BASE_LATENCY_MS.1);
    tokio::time::sleep(Duration::from_millis(base)).await;
    let failing = common.fault.apply().await;
    let payment: PaymentBody = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "payment refused: body is not a payment");
            return json_error(
                StatusCode::BAD_REQUEST,
                "the body must be JSON like {\"order_id\": \"ord-0123456789ab\", \"amount_cents\": 1200}",
            );
        }
    };
    let order_id = payment.order_id.as_str();
    let amount_cents = payment.amount_cents;
    if failing {
        tracing::error!(
            order_id,
            amount_cents,
            "payment gateway timeout talking to bank"
        );
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "payment gateway timeout talking to bank",
        );
    }
    if fastrand::u32(0..100) < DECLINE_PERCENT {
        tracing::warn!(order_id, amount_cents, "card declined");
        return json_error(StatusCode::PAYMENT_REQUIRED, "card declined");
    }
    let payment_id = format!("pay-{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff);
    tracing::info!(order_id, amount_cents, payment_id, "payment captured");
    (
        StatusCode::CREATED,
        Json(serde_json::json!({ "payment_id": payment_id, "status": "captured" })),
    )
        .into_response()
}
