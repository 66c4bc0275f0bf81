//! The five services' routes and background tasks.

mod bounded;
mod coupon;
mod delivery;
mod gateway;
mod model;
mod order;
mod outbox;
mod payment;

use crate::ServiceName;
use crate::server::Common;
use axum::Router;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// A service's API routes and the tasks it runs beside them.
pub(crate) struct Built {
    /// The routes that get server spans (not health or admin).
    pub(crate) router: Router,
    /// Background tasks, aborted when the server has stopped.
    pub(crate) tasks: Vec<JoinHandle<()>>,
}

/// Builds the routes and starts the background tasks of `common.name`.
pub(crate) fn build(common: Arc<Common>) -> Built {
    match common.name {
        ServiceName::Gateway => gateway::build(common),
        ServiceName::Order => order::build(common),
        ServiceName::Coupon => coupon::build(common),
        ServiceName::Payment => payment::build(common),
        ServiceName::Delivery => delivery::build(common),
    }
}
