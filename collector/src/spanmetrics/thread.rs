//! The deriver thread: accepted spans come in over a bounded queue and every interval the
//! [`Deriver`]'s figures go to the metrics store.
//!
//! ```text
//! Ingest::traces --(bounded: DERIVE_QUEUE batches; full = counted and skipped)--> deriver thread
//!                                                       every interval: flush -> Tsdb::append
//! ```
//!
//! Derived figures are computed from spans after they are acknowledged; a crash loses at most
//! the interval being counted (the spans themselves are in the WAL and the index).

use super::{DeriveConfig, Deriver};
use skein_model::Span;
use skein_model::metric::MetricBatch;
use skein_model::time::now_ms;
use skein_store::tsdb::Tsdb;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

/// Span batches waiting for the deriver. When it falls this far behind, batches are skipped
/// (and counted) rather than held: ingest must never wait on derived metrics.
pub const DERIVE_QUEUE: usize = 1024;

/// Hands accepted spans to the deriver thread.
#[derive(Clone)]
pub struct DeriveSender {
    tx: SyncSender<Arc<Vec<Span>>>,
    telemetry: crate::telemetry::Telemetry,
}

impl DeriveSender {
    /// Queues a batch, or counts it skipped when the queue is full.
    pub fn send(&self, spans: Arc<Vec<Span>>) {
        match self.tx.try_send(spans) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.telemetry.derive_skipped();
            }
        }
    }
}

/// The running deriver thread; stops when every [`DeriveSender`] is dropped, after a last
/// flush.
pub struct DeriveThread {
    handle: std::thread::JoinHandle<()>,
}

impl DeriveThread {
    /// Waits for it to finish.
    pub fn join(self) {
        let _ = self.handle.join();
    }
}

/// Starts the deriver thread writing into `tsdb` every `interval`; `flushed` is notified
/// after each write (the alert engine evaluates then, so rules over derived series do not
/// wait a whole evaluation interval more).
pub fn start_deriver(
    telemetry: crate::telemetry::Telemetry,
    tsdb: Tsdb,
    interval: Duration,
    join_window: Duration,
    flushed: Arc<tokio::sync::Notify>,
) -> std::io::Result<(DeriveSender, DeriveThread)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(DERIVE_QUEUE);
    let handle = std::thread::Builder::new()
        .name("skein-derive".into())
        .spawn(move || derive_loop(rx, tsdb, interval, join_window, flushed))?;
    Ok((DeriveSender { tx, telemetry }, DeriveThread { handle }))
}

fn derive_loop(
    rx: Receiver<Arc<Vec<Span>>>,
    tsdb: Tsdb,
    interval: Duration,
    join_window: Duration,
    flushed: Arc<tokio::sync::Notify>,
) {
    let mut deriver = Deriver::new(DeriveConfig {
        interval,
        join_window,
        ..DeriveConfig::default()
    });
    let mut next = Instant::now() + interval;
    let write = |mut batch: MetricBatch| {
        if batch.is_empty() {
            return;
        }
        // A new derived counter counted from the previous flush on (so does a partition's
        // deriver in a cluster: `super::PartitionDeriver`).
        let step = interval.as_millis() as i64;
        for s in batch.samples.iter_mut() {
            s.start_ms = s.ts_ms - step;
        }
        // The deriver bounds its own series (operations and edges), each making ~30 series
        // of one family; the per-metric limit meant for senders would cut it at ~300.
        match tsdb.append_derived(&batch) {
            Ok(r) if r.rejected > 0 => tracing::warn!(
                rejected = r.rejected,
                reason = r.first_reason.as_deref().unwrap_or(""),
                "derived metrics refused by the store"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot store derived metrics"),
        }
        flushed.notify_one();
    };
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(spans) => deriver.observe(&spans, now_ms()),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                write(deriver.flush(now_ms()));
                return;
            }
        }
        if Instant::now() >= next {
            write(deriver.flush(now_ms()));
            next += interval;
            // After a stall, start again from now rather than flushing many times at once.
            if next < Instant::now() {
                next = Instant::now() + interval;
            }
        }
    }
}
