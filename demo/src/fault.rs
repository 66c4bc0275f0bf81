//! Faults a service applies to its own requests, and the admin call that sets them.

use crate::DemoError;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Longest delay a fault may add, in milliseconds (keeps every request bounded in time).
pub const MAX_FAULT_DELAY_MS: u64 = 60_000;

/// How long [`set_fault`] waits for the service to answer.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A fault a service applies to its own requests (`GET`/`POST /admin/fault` on every
/// service). The default is no fault.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fault {
    /// Extra delay before answering, in milliseconds (at most [`MAX_FAULT_DELAY_MS`]).
    pub delay_ms: u64,
    /// Share of requests that fail, from 0.0 to 1.0.
    pub error_rate: f64,
}

impl Fault {
    /// Checks the ranges; the error says which field is wrong and what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(format!(
                "error_rate must be between 0.0 and 1.0, got {}",
                self.error_rate
            ));
        }
        if self.delay_ms > MAX_FAULT_DELAY_MS {
            return Err(format!(
                "delay_ms must be at most {MAX_FAULT_DELAY_MS}, got {}",
                self.delay_ms
            ));
        }
        Ok(())
    }
}

/// Sets the fault of the service at `addr` (`POST /admin/fault`).
pub async fn set_fault(
    client: &reqwest::Client,
    addr: SocketAddr,
    fault: Fault,
) -> Result<(), DemoError> {
    fault.validate().map_err(DemoError::InvalidFault)?;
    let resp = client
        .post(format!("http://{addr}/admin/fault"))
        .json(&fault)
        .timeout(ADMIN_TIMEOUT)
        .send()
        .await
        .map_err(|source| DemoError::Unreachable { addr, source })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(200).collect());
    Err(DemoError::Refused {
        addr,
        status: status.as_u16(),
        message,
    })
}

/// The current fault of a service, shared by its handlers (lock-free).
#[derive(Debug, Default)]
pub(crate) struct FaultCell {
    delay_ms: AtomicU64,
    error_rate_bits: AtomicU64,
}

impl FaultCell {
    /// The fault now in force.
    pub(crate) fn get(&self) -> Fault {
        Fault {
            delay_ms: self.delay_ms.load(Ordering::Relaxed),
            error_rate: f64::from_bits(self.error_rate_bits.load(Ordering::Relaxed)),
        }
    }

    /// Replaces the fault; the caller has validated it.
    pub(crate) fn set(&self, fault: Fault) {
        self.delay_ms.store(fault.delay_ms, Ordering::Relaxed);
        self.error_rate_bits
            .store(fault.error_rate.to_bits(), Ordering::Relaxed);
    }

    /// Sleeps the fault's delay, then says whether this request should fail.
    pub(crate) async fn apply(&self) -> bool {
        let fault = self.get();
        if fault.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
        }
        fault.error_rate > 0.0 && fastrand::f64() < fault.error_rate
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn validation_accepts_the_ranges_and_names_the_field() {
        assert!(Fault::default().validate().is_ok());
        assert!(
            Fault {
                delay_ms: MAX_FAULT_DELAY_MS,
                error_rate: 1.0
            }
            .validate()
            .is_ok()
        );
        let too_high = Fault {
            delay_ms: 0,
            error_rate: 1.5,
        };
        assert!(too_high.validate().unwrap_err().contains("error_rate"));
        let negative = Fault {
            delay_ms: 0,
            error_rate: -0.1,
        };
        assert!(negative.validate().is_err());
        let nan = Fault {
            delay_ms: 0,
            error_rate: f64::NAN,
        };
        assert!(nan.validate().is_err());
        let slow = Fault {
            delay_ms: MAX_FAULT_DELAY_MS + 1,
            error_rate: 0.0,
        };
        assert!(slow.validate().unwrap_err().contains("delay_ms"));
    }

    #[test]
    fn json_fills_missing_fields_and_refuses_unknown_ones() {
        let f: Fault = serde_json::from_str(r#"{"error_rate":1.0}"#).unwrap();
        assert_eq!(
            f,
            Fault {
                delay_ms: 0,
                error_rate: 1.0
            }
        );
        assert!(serde_json::from_str::<Fault>(r#"{"delay":5}"#).is_err());
    }

    #[tokio::test]
    async fn the_cell_keeps_what_was_set_and_fails_every_request_at_rate_one() {
        let cell = FaultCell::default();
        assert_eq!(cell.get(), Fault::default());
        assert!(!cell.apply().await);
        let f = Fault {
            delay_ms: 1,
            error_rate: 1.0,
        };
        cell.set(f);
        assert_eq!(cell.get(), f);
        assert!(cell.apply().await);
    }
}
