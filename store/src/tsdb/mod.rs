//! The metrics store: series of samples in compressed chunks, durable from the moment
//! [`Tsdb::append`] returns.
//!
//! ```text
//! append ─► series log (new series only, fsync) ─► sample WAL (fsync) ─► head (open chunks)
//!                                                                          │ every block_duration
//!                                                                          ▼
//!                                                 blocks/<min>-<max>.blk (chunks + index), WAL cut
//! ```
//!
//! - [`chunk`]: Gorilla encoding, delta-of-delta times and XOR values.
//! - The series log gives every series a stable number; it is only appended to, so the sample
//!   WAL and the blocks refer to series by number.
//! - The head keeps each series' open chunk and the chunks closed since the last block.
//!   Every `block_duration` the head is written to one block file (write, fsync, rename), which
//!   records the WAL position it covers; the WAL before it is deleted. Start-up loads blocks and
//!   replays the WAL past the newest block.
//! - Retention deletes whole blocks older than `retention`.
//! - [`select`]: matchers and the series a read returns.
//!
//! Values are kept bit for bit: NaN (any payload, Prometheus's staleness marker
//! `0x7ff0000000000002` among them), ±Inf and -0 are stored and read back as sent, through the
//! head, the WAL and the blocks. They follow the same rules as any sample. Samples are
//! refused, counted, and reported (never panicking) when they are older than the series' last
//! sample (out of order), at the same time with another value (other bits), more than
//! [`MAX_FUTURE`] ahead, or for a new series past the per-metric or total series limit. A
//! repeat of the last sample (same time, same bits: a retried request) is dropped silently.
//! OTLP delta sums are turned into running totals here, so every counter in the store is
//! cumulative (a NaN or infinite delta is stored as sent and the total starts again after it).
//!
//! Readers decide what non-finite values mean: PromQL reads them as Prometheus does (a
//! staleness marker ends a series); Skein's own views (`skein_query::metrics`, the alert
//! engine's TOML conditions) skip them as if absent.

mod block;
pub mod chunk;
mod head;
mod log;
pub mod select;
#[cfg(test)]
mod tests;

/// For the fuzz targets (`crate::fuzzing`).
#[cfg(feature = "fuzzing")]
pub(crate) use log::{decode_series, encode_series, fits, put_sample, samples};
pub use select::{ChunkRef, MatchOp, Matcher, SelectedSeries};

use crate::error::{Result, StoreError};
use skein_model::metric::{MetricBatch, MetricKind};
use skein_wal::SyncPolicy;
use std::path::PathBuf;
use std::time::Duration;

/// How far ahead of the store's clock a sample may be. One sample from a clock years ahead
/// would otherwise make every later sample of its series "out of order" and keep its block
/// past retention. Ten minutes, as Prometheus-compatible stores allow for clock skew.
pub const MAX_FUTURE: Duration = Duration::from_secs(600);

/// Configuration of [`Tsdb::open`].
#[derive(Debug, Clone)]
pub struct TsdbConfig {
    /// Folder of the store (`series/`, `wal/`, `blocks/`).
    pub dir: PathBuf,
    /// Blocks whose newest sample is older than this are deleted. Default 15 days.
    pub retention: Duration,
    /// How often the head is written to a block. Default 1 hour.
    pub block_duration: Duration,
    /// Series one metric (family) may have; samples of further new series are refused.
    /// Default 10,000.
    pub max_series_per_metric: usize,
    /// Series in the whole store. Default 1,000,000.
    pub max_series: usize,
    /// Sample WAL segment size. Default 64 MiB.
    pub wal_segment_bytes: u64,
    /// Sample WAL size limit: appends fail (and ingest answers 503) past it. A block is
    /// written early when the WAL passes half of it. Default 1 GiB.
    pub wal_max_bytes: u64,
    /// When appends are fsynced.
    pub sync: SyncPolicy,
    /// Block bytes kept in memory for reads; older blocks are read from disk. Default 256 MiB.
    pub cache_bytes: u64,
}

impl Default for TsdbConfig {
    fn default() -> Self {
        TsdbConfig {
            dir: PathBuf::from("data/tsdb"),
            retention: Duration::from_secs(15 * 24 * 3600),
            block_duration: Duration::from_secs(3600),
            max_series_per_metric: 10_000,
            max_series: 1_000_000,
            wal_segment_bytes: 64 * 1024 * 1024,
            wal_max_bytes: 1024 * 1024 * 1024,
            sync: SyncPolicy::EveryBatch,
            cache_bytes: 256 * 1024 * 1024,
        }
    }
}

/// What [`Tsdb::append`] did with a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendReport {
    /// Samples stored.
    pub accepted: u64,
    /// Repeats of a series' last sample, dropped without complaint.
    pub duplicates: u64,
    /// Samples refused (sum of the counts below). NaN and infinite values are not refused:
    /// they are stored like any other, bit for bit.
    pub rejected: u64,
    /// Older than the series' last sample, or at its time with another value (other bits).
    pub out_of_order: u64,
    /// New series past a series limit.
    pub series_limited: u64,
    /// More than [`MAX_FUTURE`] ahead of the store's clock.
    pub too_far_ahead: u64,
    /// The first refusal, in words a sender can act on.
    pub first_reason: Option<String>,
}

/// A metric family as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricInfo {
    /// Family name (`x` for the series `x_bucket`, `x_sum`, `x_count`).
    pub name: String,
    /// Kind.
    pub kind: MetricKind,
    /// Unit as sent.
    pub unit: String,
    /// Number of series in the family.
    pub series: usize,
}

/// Sizes, for the collector's own metrics and the benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TsdbStats {
    /// Series known.
    pub series: u64,
    /// Samples in the head (not yet in a block).
    pub head_samples: u64,
    /// Block files.
    pub blocks: u64,
    /// Samples in blocks.
    pub block_samples: u64,
    /// Bytes of block files.
    pub block_bytes: u64,
    /// Bytes of chunk data inside block files.
    pub block_chunk_bytes: u64,
    /// Bytes of the sample WAL.
    pub wal_bytes: u64,
}

/// The store. Cheap to clone; every clone is the same store.
#[derive(Clone)]
pub struct Tsdb {
    inner: std::sync::Arc<head::Shared>,
}

impl Tsdb {
    /// Opens (or creates) the store: reads the series log, loads the blocks, replays the WAL
    /// past the newest block and applies retention.
    pub fn open(cfg: TsdbConfig) -> Result<Tsdb> {
        Ok(Tsdb {
            inner: std::sync::Arc::new(head::Shared::open(cfg)?),
        })
    }

    /// Stores a batch durably (series log and WAL fsynced per `sync`) and reports what was
    /// refused. An error means nothing of the batch was stored.
    pub fn append(&self, batch: &MetricBatch) -> Result<AppendReport> {
        self.inner.append(batch, true)
    }

    /// As [`Tsdb::append`], without the per-metric series limit (the total limit still
    /// holds): for metrics Skein derives itself, whose sources bound their own series.
    pub fn append_derived(&self, batch: &MetricBatch) -> Result<AppendReport> {
        self.inner.append(batch, false)
    }

    /// Writes the head to a block now and cuts the WAL.
    pub fn persist(&self) -> Result<()> {
        self.inner.persist()
    }

    /// Housekeeping, called every few seconds: writes a block when `block_duration` has passed
    /// or the WAL is past half its limit, and deletes blocks past retention.
    pub fn maintain(&self) -> Result<()> {
        self.inner.maintain()
    }

    /// Sizes.
    pub fn stats(&self) -> TsdbStats {
        self.inner.stats()
    }

    /// Every metric family, by name.
    pub fn metrics(&self) -> Vec<MetricInfo> {
        self.inner.metrics()
    }

    /// One family, if it exists.
    pub fn metric(&self, family: &str) -> Option<MetricInfo> {
        self.inner.metric(family)
    }

    /// Label names used by a family's series (or by every series), sorted.
    pub fn label_names(&self, family: Option<&str>) -> Vec<String> {
        self.inner.label_names(family)
    }

    /// Values of a label in a family's series (or in every series), sorted.
    pub fn label_values(&self, label: &str, family: Option<&str>) -> Vec<String> {
        self.inner.label_values(label, family)
    }

    /// The series named `name` (a stored name: `x_bucket`, not `x`) passing every matcher,
    /// with their chunks overlapping `[start, end]` (ms). More than `max_series` matching
    /// series is a [`StoreError::BadQuery`] saying so.
    pub fn select(
        &self,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        max_series: usize,
    ) -> Result<Vec<SelectedSeries>> {
        self.inner.select(name, matchers, start, end, max_series)
    }
}

impl std::fmt::Debug for Tsdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tsdb")
            .field("stats", &self.stats())
            .finish()
    }
}

pub(crate) fn io_err(
    op: &'static str,
    path: &std::path::Path,
    source: std::io::Error,
) -> StoreError {
    StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}
