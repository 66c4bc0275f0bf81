//! Skein's query side: the engine that answers "what happened to this request", the axum router
//! of the query API, and a typed client for it.
//!
//! - [`engine`]: one request's whole story by any correlation key (a two-hop join over the log
//!   and span indexes), log search, trace search.
//! - [`api`]: the HTTP API (`/api/v1/...`, `/healthz`, `/readyz`, `/metrics`), JSON in and out,
//!   errors as `{"error", "message"}`.
//! - [`agents`]: the registry of agents and their heartbeats (`GET /api/v1/agents`).
//! - [`client`]: the typed client used by the CLI and the TUI.
//!
//! The engine and router sit behind the default `server` feature; without it the crate is only
//! the client and the JSON types, so the TUI does not pull in tantivy. The trade-off of the
//! join: both hops are bounded (keys per hop, records per answer), so a key shared by too many
//! records gives a cut answer marked `truncated` rather than a slow one.

#[cfg(feature = "server")]
pub mod agents;
#[cfg(feature = "server")]
pub mod api;
pub mod client;
#[cfg(feature = "server")]
pub mod engine;
#[cfg(feature = "server")]
mod error;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod tail;

#[cfg(feature = "server")]
pub use error::QueryError;
