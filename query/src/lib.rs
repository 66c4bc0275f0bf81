//! Skein's query side: the engine that answers "what happened to this request" and the axum
//! router of the query API.
//!
//! - [`engine`]: one request's whole story by any correlation key (a two-hop join over the log
//!   and span indexes), log search, trace search.
//! - [`api`]: the HTTP API (`/api/v1/...`, `/healthz`, `/readyz`, `/metrics`), JSON in and out,
//!   errors as `{"error", "message"}`.
//! - [`metrics`]: metric range queries, RED figures per service and operation, dependencies.
//! - [`reads`]: the store reads every answer is built from, local or fanned out across a
//!   cluster, and how partial answers merge.
//! - [`promql`]: PromQL over the metrics store; [`prom_api`]: the Prometheus HTTP query API
//!   (`/api/v1/query`, `/api/v1/query_range`, `/api/v1/series`, `/api/v1/labels`, ...).
//! - [`loki`]: the Loki query API (`/loki/api/v1/...`) and LogQL over the log index.
//! - [`live`]: the live tail of new log lines (`GET /api/v1/logs/tail`, Server-Sent Events).
//!
//! The typed client of this API is its own crate (`skein-client`), so the CLI and TUI never link
//! the engine. The trade-off of the join: both hops are bounded (keys per hop, records per
//! answer), so a key shared by too many records gives a cut answer marked `truncated` rather
//! than a slow one.

pub mod api;
pub mod engine;
mod error;
pub mod jaeger;
pub mod live;
pub mod loki;
pub mod metric_reads;
pub mod metrics;
pub mod partial;
pub mod prom_api;
pub mod promql;
pub mod reads;
#[cfg(test)]
mod test_state;

pub use error::QueryError;
