//! Skein's durable state on disk, above the write-ahead log (`skein-wal`): the time-split
//! tantivy indexes of logs and spans with the searches the query engine runs over them, the
//! metrics store, and the registry of agents.
//!
//! - [`SplitStore`]: one signal's index, cut into splits by arrival time, each split recording
//!   its event-time range and the WAL position its last commit covers (exactly-once replay).
//! - [`schema`]: what is indexed, per field, and why; the ingest position of a logged record.
//! - [`search`]: term, key and full-text searches over a set of splits; [`count`]: counts
//!   over fast fields for alert rules; [`arrival`]: logs in arrival order for the live tail.
//! - [`tsdb`]: the metrics store (series log, Gorilla chunks, blocks, retention).
//! - [`agents`]: agents' heartbeats, up or down, saved to `agents.json`.
//!
//! The trade-off: splits are cut by arrival, not by event time, so a writer only ever writes
//! one split per signal; time-range queries prune by each split's recorded event-time range.

pub mod agents;
pub mod arrival;
pub mod count;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod schema;
pub mod search;
pub mod signal;
pub mod splits;
pub mod tsdb;

pub use error::{Result, StoreError};
pub use signal::{Logs, Signal, Spans};
pub use splits::{SplitConfig, SplitHandle, SplitList, SplitMeta, SplitStore};
/// Re-exported so users query with the same tantivy version.
pub use tantivy;
