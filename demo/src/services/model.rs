//! The JSON the services exchange, and its checks.

use serde::{Deserialize, Serialize};

/// Most items in one order.
pub(crate) const MAX_ITEMS: usize = 50;
/// Most of one item in one order.
const MAX_QTY: u32 = 100;
/// Highest price of one item, in cents.
const MAX_PRICE_CENTS: u64 = 1_000_000;
/// Longest customer ID or SKU, in bytes.
const MAX_ID_LEN: usize = 64;

/// A customer's order, as the gateway and the order service take it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrderRequest {
    /// Who orders.
    pub(crate) customer_id: String,
    /// What is ordered (at least one item).
    pub(crate) items: Vec<Item>,
    /// A coupon code to redeem, if any.
    #[serde(default)]
    pub(crate) coupon: Option<String>,
}

/// One line of an order.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Item {
    /// The product.
    pub(crate) sku: String,
    /// How many.
    pub(crate) qty: u32,
    /// Price of one, in cents.
    pub(crate) price_cents: u64,
}

impl OrderRequest {
    /// Checks the order and gives its total in cents; the error tells the caller what to fix.
    pub(crate) fn validate(&self) -> Result<u64, String> {
        if self.customer_id.trim().is_empty() || self.customer_id.len() > MAX_ID_LEN {
            return Err(format!("customer_id must be 1 to {MAX_ID_LEN} characters"));
        }
        if self.items.is_empty() {
            return Err(
                "items must not be empty: add at least one {\"sku\", \"qty\", \"price_cents\"}"
                    .to_owned(),
            );
        }
        if self.items.len() > MAX_ITEMS {
            return Err(format!("an order may have at most {MAX_ITEMS} items"));
        }
        let mut total: u64 = 0;
        for (i, item) in self.items.iter().enumerate() {
            if item.sku.trim().is_empty() || item.sku.len() > MAX_ID_LEN {
                return Err(format!(
                    "items[{i}].sku must be 1 to {MAX_ID_LEN} characters"
                ));
            }
            if item.qty == 0 || item.qty > MAX_QTY {
                return Err(format!("items[{i}].qty must be between 1 and {MAX_QTY}"));
            }
            if item.price_cents == 0 || item.price_cents > MAX_PRICE_CENTS {
                return Err(format!(
                    "items[{i}].price_cents must be between 1 and {MAX_PRICE_CENTS}"
                ));
            }
            total = total.saturating_add(u64::from(item.qty).saturating_mul(item.price_cents));
        }
        if let Some(code) = &self.coupon
            && !coupon_code_valid(code)
        {
            return Err(coupon_code_error(code));
        }
        Ok(total)
    }
}

/// Whether `code` is a well-formed coupon code: 3 to 32 of `A-Z`, `0-9` and `-`.
pub(crate) fn coupon_code_valid(code: &str) -> bool {
    (3..=32).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

/// What to tell a caller about a malformed coupon code.
pub(crate) fn coupon_code_error(code: &str) -> String {
    let shown: String = code.chars().take(40).collect();
    format!(
        "coupon code {shown:?} is not valid: use 3 to 32 characters of A-Z, 0-9 and '-', e.g. SAVE-1A2B"
    )
}

/// Whether `id` can be an order ID (and so be put in a URL path as it is).
pub(crate) fn order_id_valid(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `order.accepted` event, from the order service's outbox to delivery's `POST /events`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct OrderAccepted {
    /// The accepted order.
    pub(crate) order_id: String,
    /// The request that placed it.
    pub(crate) request_id: String,
    /// The producer span's context (W3C `traceparent`), empty if there was none.
    #[serde(default)]
    pub(crate) traceparent: String,
    /// How many lines the order has.
    pub(crate) items: usize,
    /// What was charged, in cents.
    pub(crate) amount_cents: u64,
}

/// The body of coupon redeem and release calls.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CouponBody {
    /// The order the coupon is for.
    pub(crate) order_id: String,
}

/// The body of a payment call.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PaymentBody {
    /// The order paid for.
    pub(crate) order_id: String,
    /// How much, in cents.
    pub(crate) amount_cents: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn order(items: Vec<Item>, coupon: Option<&str>) -> OrderRequest {
        OrderRequest {
            customer_id: "cust-1".into(),
            items,
            coupon: coupon.map(str::to_owned),
        }
    }

    fn item(qty: u32, price_cents: u64) -> Item {
        Item {
            sku: "pizza".into(),
            qty,
            price_cents,
        }
    }

    #[test]
    fn orders_are_checked_and_totalled() {
        assert_eq!(
            order(vec![item(2, 500), item(1, 250)], None).validate(),
            Ok(1250)
        );
        assert!(
            order(vec![], None)
                .validate()
                .unwrap_err()
                .contains("items")
        );
        assert!(
            order(vec![item(0, 5)], None)
                .validate()
                .unwrap_err()
                .contains("qty")
        );
        assert!(
            order(vec![item(1, 0)], None)
                .validate()
                .unwrap_err()
                .contains("price_cents")
        );
        assert!(
            order(vec![item(1, 5)], Some("save 10"))
                .validate()
                .unwrap_err()
                .contains("coupon")
        );
        assert!(order(vec![item(1, 5)], Some("SAVE-10")).validate().is_ok());
    }

    #[test]
    fn coupon_codes() {
        assert!(coupon_code_valid("ABC"));
        assert!(coupon_code_valid("SAVE-1A2B"));
        assert!(coupon_code_valid(&"A".repeat(32)));
        assert!(!coupon_code_valid("AB"));
        assert!(!coupon_code_valid(&"A".repeat(33)));
        assert!(!coupon_code_valid("save-10"));
        assert!(!coupon_code_valid("SAVE/10"));
    }

    #[test]
    fn order_ids() {
        assert!(order_id_valid("ord-0123456789ab"));
        assert!(!order_id_valid(""));
        assert!(!order_id_valid("a/b"));
        assert!(!order_id_valid("a?b"));
    }
}
