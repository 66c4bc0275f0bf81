//! The coupon service: redeems a code for one order at a time, and releases it again.

use super::Built;
use super::bounded::BoundedMap;
use super::model::{CouponBody, coupon_code_error, coupon_code_valid};
use crate::server::{Common, json_error};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use std::sync::{Arc, Mutex, MutexGuard};

/// Most redemptions kept; past that the oldest is forgotten (its code is free again).
pub(crate) const MAX_REDEMPTIONS: usize = 10_000;

/// Share of the price a coupon takes off, in percent (told to the caller).
const PERCENT_OFF: u64 = 10;

struct CouponState {
    common: Arc<Common>,
    /// Code to the order that redeemed it.
    redeemed: Mutex<BoundedMap<String>>,
}

impl CouponState {
    fn redeemed(&self) -> MutexGuard<'_, BoundedMap<String>> {
        self.redeemed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Share of the price the automatic promotion takes off, in percent, for the customers it
/// picks (one in five, by the customer id).
const AUTO_PERCENT_OFF: u64 = 5;

/// Routes `POST /coupons/{code}/redeem`, `POST /coupons/{code}/release` and
/// `GET /coupons/auto?customer_id=` (the automatic promotion an order without a code gets).
pub(crate) fn build(common: Arc<Common>) -> Built {
    let state = Arc::new(CouponState {
        common,
        redeemed: Mutex::new(BoundedMap::new(MAX_REDEMPTIONS)),
    });
    let router = Router::new()
        .route("/coupons/{code}/redeem", post(redeem))
        .route("/coupons/{code}/release", post(release))
        .route("/coupons/auto", get(auto))
        .with_state(state);
    Built {
        router,
        tasks: Vec::new(),
    }
}

/// The checks both endpoints share: the fault, the code, the body.
async fn checked(state: &CouponState, code: &str, body: &[u8]) -> Result<String, Response> {
    if state.common.fault.apply().await {
        tracing::error!(coupon = code, "coupon store unavailable");
        return Err(json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "coupon store unavailable",
        ));
    }
    if !coupon_code_valid(code) {
        tracing::warn!("coupon refused: malformed code");
        return Err(json_error(StatusCode::BAD_REQUEST, coupon_code_error(code)));
    }
    match serde_json::from_slice::<CouponBody>(body) {
        Ok(b) if !b.order_id.is_empty() => Ok(b.order_id),
        Ok(_) | Err(_) => {
            tracing::warn!(coupon = code, "coupon refused: body has no order_id");
            Err(json_error(
                StatusCode::BAD_REQUEST,
                "the body must be JSON like {\"order_id\": \"ord-0123456789ab\"}",
            ))
        }
    }
}

/// `GET /coupons/auto` query.
#[derive(serde::Deserialize)]
struct AutoQuery {
    #[serde(default)]
    customer_id: String,
}

/// The automatic promotion for a customer: a discount for some, none for the rest.
async fn auto(State(state): State<Arc<CouponState>>, Query(q): Query<AutoQuery>) -> Response {
    if state.common.fault.apply().await {
        tracing::error!(customer_id = q.customer_id, "coupon store unavailable");
        return json_error(StatusCode::SERVICE_UNAVAILABLE, "coupon store unavailable");
    }
    if q.customer_id.is_empty() || q.customer_id.len() > 128 {
        tracing::warn!("automatic promotion refused: no customer_id");
        return json_error(
            StatusCode::BAD_REQUEST,
            "give ?customer_id= (1 to 128 characters)",
        );
    }
    let picked = q.customer_id.bytes().map(u64::from).sum::<u64>() % 5 == 0;
    let percent_off = if picked { AUTO_PERCENT_OFF } else { 0 };
    tracing::info!(
        customer_id = q.customer_id,
        percent_off,
        "automatic promotion looked up"
    );
    Json(serde_json::json!({ "customer_id": q.customer_id, "percent_off": percent_off }))
        .into_response()
}

async fn redeem(
    State(state): State<Arc<CouponState>>,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    let order_id = match checked(&state, &code, &body).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    let mut redeemed = state.redeemed();
    match redeemed.get(&code) {
        Some(holder) if *holder != order_id => {
            let holder = holder.clone();
            drop(redeemed);
            tracing::warn!(
                coupon = code,
                order_id,
                holder,
                "coupon already redeemed by another order"
            );
            json_error(
                StatusCode::CONFLICT,
                format!("coupon {code} is already redeemed by another order"),
            )
        }
        Some(_) => {
            drop(redeemed);
            tracing::info!(
                coupon = code,
                order_id,
                "coupon already redeemed by this order"
            );
            redeemed_answer(&code, &order_id)
        }
        None => {
            redeemed.insert(code.clone(), order_id.clone());
            drop(redeemed);
            tracing::info!(
                coupon = code,
                order_id,
                percent_off = PERCENT_OFF,
                "coupon redeemed"
            );
            redeemed_answer(&code, &order_id)
        }
    }
}

fn redeemed_answer(code: &str, order_id: &str) -> Response {
    Json(serde_json::json!({
        "code": code,
        "order_id": order_id,
        "percent_off": PERCENT_OFF,
    }))
    .into_response()
}

async fn release(
    State(state): State<Arc<CouponState>>,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    let order_id = match checked(&state, &code, &body).await {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    let mut redeemed = state.redeemed();
    let holder = redeemed.get(&code).cloned();
    match holder {
        Some(h) if h == order_id => {
            redeemed.remove(&code);
            drop(redeemed);
            tracing::info!(coupon = code, order_id, "coupon released");
            Json(serde_json::json!({ "code": code, "released": true })).into_response()
        }
        Some(h) => {
            drop(redeemed);
            tracing::warn!(
                coupon = code,
                order_id,
                holder = h,
                "coupon release refused: redeemed by another order"
            );
            json_error(
                StatusCode::CONFLICT,
                format!(
                    "coupon {code} is redeemed by another order; only that order can release it"
                ),
            )
        }
        None => {
            drop(redeemed);
            tracing::warn!(
                coupon = code,
                order_id,
                "coupon release: code was not redeemed"
            );
            json_error(
                StatusCode::NOT_FOUND,
                format!("coupon {code} is not redeemed"),
            )
        }
    }
}
