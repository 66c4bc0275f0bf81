//! skein-demo: a small food-delivery system to watch with Skein.
//!
//! Five HTTP services, each meant to run in its own process: `gateway` takes orders from
//! customers, `order` runs the order saga (coupon, then payment, compensating the coupon when
//! payment fails) and publishes an `order.accepted` event, `coupon` redeems and releases
//! coupon codes, `payment` charges cards, and `delivery` consumes the events and assigns
//! couriers. Every service exports its spans over OTLP/gRPC and writes a JSON-lines log file
//! whose lines carry the trace ID, span ID and request ID. [`load`] sends a steady mix of
//! requests to the gateway; [`set_fault`] slows a service down or makes it fail.
//!
//! [`run_service`] runs one service. It installs its tracing subscriber as the process-global
//! default when none is set yet, and in any case scopes all of its own work (requests and
//! background tasks) to that subscriber. So one service per process works as usual, and the
//! in-crate tests can run all five services in one process, each with its own log file and
//! `service.name`.

mod client;
mod error;
mod fault;
pub mod load;
mod log_file;
mod log_layer;
mod propagation;
mod request_id;
mod server;
mod services;
mod telemetry;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use error::DemoError;
pub use fault::{Fault, set_fault};

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The five services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceName {
    /// Takes orders from customers and forwards them to `order`.
    Gateway,
    /// Runs the order saga and publishes `order.accepted` events.
    Order,
    /// Redeems and releases coupon codes.
    Coupon,
    /// Charges cards.
    Payment,
    /// Consumes `order.accepted` events and assigns couriers.
    Delivery,
}

impl ServiceName {
    /// All five, in call order.
    pub const ALL: [ServiceName; 5] = [
        ServiceName::Gateway,
        ServiceName::Order,
        ServiceName::Coupon,
        ServiceName::Payment,
        ServiceName::Delivery,
    ];

    /// The name used in spans, logs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Gateway => "gateway",
            ServiceName::Order => "order",
            ServiceName::Coupon => "coupon",
            ServiceName::Payment => "payment",
            ServiceName::Delivery => "delivery",
        }
    }
}

impl std::fmt::Display for ServiceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ServiceName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceName::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown service {s:?}: use one of gateway, order, coupon, payment, delivery"
                )
            })
    }
}

/// Where every service listens (all five are needed by each service to find its peers).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Addresses {
    /// The gateway's address.
    pub gateway: SocketAddr,
    /// The order service's address.
    pub order: SocketAddr,
    /// The coupon service's address.
    pub coupon: SocketAddr,
    /// The payment service's address.
    pub payment: SocketAddr,
    /// The delivery service's address.
    pub delivery: SocketAddr,
}

impl Addresses {
    /// The address of one service.
    pub fn of(&self, s: ServiceName) -> SocketAddr {
        match s {
            ServiceName::Gateway => self.gateway,
            ServiceName::Order => self.order,
            ServiceName::Coupon => self.coupon,
            ServiceName::Payment => self.payment,
            ServiceName::Delivery => self.delivery,
        }
    }
}

/// What one service needs to run.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Which service this is.
    pub name: ServiceName,
    /// Where all services listen; this one listens on `addresses.of(name)`.
    pub addresses: Addresses,
    /// OTLP/gRPC endpoint of the local agent, e.g. `http://127.0.0.1:4327`.
    pub otlp_endpoint: String,
    /// JSON-lines log file (created with its parents; appended to).
    pub log_file: PathBuf,
    /// The `host.name` resource attribute.
    pub host_name: String,
}

/// Runs one service until `shutdown` completes, then flushes spans and the log file.
///
/// Calls `on_ready(bound_addr)` once the listener is bound and the service can take
/// requests. Errors: the port is taken (the message names the address), the log file is not
/// writable (names the path), or the span exporter cannot be set up.
pub async fn run_service(
    cfg: ServiceConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), DemoError> {
    let addr = cfg.addresses.of(cfg.name);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DemoError::Bind { addr, source })?;
    server::serve(cfg, listener, shutdown, on_ready).await
}
