//! Durable state of the collector on disk: the write-ahead log and the time-split tantivy
//! indexes of logs and spans, with the searches the query engine runs over them.
//!
//! - [`wal`]: append-only segments with a CRC per record; what the collector acknowledges.
//! - [`SplitStore`]: one signal's index, cut into splits by arrival time, each split recording
//!   its event-time range and the WAL position its last commit covers (exactly-once replay).
//! - [`schema`]: what is indexed, per field, and why.
//! - [`search`]: term, key and full-text searches over a set of splits.
//!
//! The trade-off: splits are cut by arrival, not by event time, so a writer only ever writes
//! one split per signal; time-range queries prune by each split's recorded event-time range.

pub mod count;
pub mod error;
pub mod schema;
pub mod search;
pub mod signal;
pub mod splits;
pub mod tail;
pub mod tsdb;
pub mod wal;

pub use error::{Result, StoreError};
pub use signal::{Logs, Signal, Spans};
pub use splits::{SplitConfig, SplitHandle, SplitList, SplitMeta, SplitStore};
/// Re-exported so users query with the same tantivy version.
pub use tantivy;
