//! Metric queries, service health and the dependency graph over the metrics store.
//!
//! - [`eval`]: the evaluation core, pure functions over selected series: step windows,
//!   aggregations, counter increases with resets, histogram quantiles.
//! - [`query`]: the range query (`GET /api/v1/metrics/query`), its limits, and metric names
//!   and labels.
//! - [`services`]: service and operation health from the span-derived series.
//! - [`deps`]: the dependency graph from the span-derived edge series.
//! - [`http`]: the routes, for the lead router to merge.
//!
//! Times are i64 milliseconds since the Unix epoch throughout. The store is read through
//! [`skein_store::tsdb::Tsdb::select`]; everything after the read is a pure function, so it
//! is tested on series made from samples.

pub mod deps;
pub mod eval;
pub mod http;
pub mod params;
pub mod query;
pub mod services;

pub use http::routes;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_http;
#[cfg(test)]
mod tests_views;
