//! PromQL over Skein's metrics store.
//!
//! - [`value`]: what a query returns (scalar, string, instant vector, matrix).
//! - [`error`]: Prometheus's error types (`bad_data`, `execution`, `timeout`, ...).
//! - [`source`]: where the engine reads series from ([`source::SeriesSource`]); the store's
//!   implementation maps stored (OpenTelemetry) names to Prometheus names ([`names`]) and
//!   merges label sets repeated by several partitions of a cluster.
//! - [`engine`]: parsing (the `promql-parser` crate) and evaluation, instant and range.

pub mod engine;
pub mod error;
pub mod names;
pub mod source;
pub mod value;

pub use engine::{Engine, Limits};
pub use error::{ErrorType, PromError};
pub use value::{QueryValue, RangeSeries, Sample};
