//! The durable path of a batch: ingest → WAL writer → indexer.
//!
//! ```text
//!  handlers --(bounded: limits.ingest_queue)--> WAL writer thread --(bounded: limits.index_queue)--> indexer thread
//!     ^                                            | append + fsync, then ack                      | add to tantivy, commit
//!     +-------------- ack (seq) -------------------+                                                | every commit_interval
//! ```
//!
//! - The writer groups the batches that are waiting into one append and one fsync, then answers
//!   each with its sequence number. A handler acknowledges its client only after that answer.
//! - The indexer gets batches in WAL order, in memory. Each commit records the WAL position it
//!   covers; after a crash, start-up replays the WAL past it, so nothing acknowledged is lost and
//!   nothing is indexed twice. On an index error it rolls back and replays from the WAL too.
//! - Back-pressure instead of unbounded buffers: when the indexer falls behind, its queue fills,
//!   the writer waits, the ingest queue fills, and handlers answer 503 with Retry-After. When the
//!   WAL reaches its size limit (disk full included), appends fail and handlers answer 503.

use crate::dedupe::Seen;
use crate::telemetry::Telemetry;
pub use skein_model::batch::Batch;
use skein_model::batch_id::{self, BatchId};
use skein_store::{Logs, Spans, SplitStore, StoreError};
use skein_wal::{Entry, Wal};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Largest group of batches written with one fsync, in bytes.
const MAX_GROUP_BYTES: usize = 32 * 1024 * 1024;

/// Why a batch was not written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The ingest queue is full (the indexer or the disk is behind).
    #[error("the collector is overloaded; retry later")]
    Overloaded,
    /// The WAL is at its size limit or the disk is full.
    #[error(
        "the collector's disk is full or its write-ahead log is at its size limit; retry later"
    )]
    DiskFull,
    /// The collector is stopping.
    #[error("the collector is shutting down")]
    ShuttingDown,
    /// The WAL failed otherwise.
    #[error("the write-ahead log failed")]
    Failed,
    /// The batch is larger than one WAL record can hold; it never will fit. Refused before it
    /// joins a group, so the batches written with it are not failed too.
    #[error(
        "the batch is {len} bytes once encoded, more than one write-ahead log record holds ({limit}); send smaller batches"
    )]
    TooLarge {
        /// Encoded size.
        len: usize,
        /// The WAL's record limit.
        limit: usize,
    },
}

/// A batch on its way to the indexer: WAL sequence number, records, their NDJSON.
type Indexed = (u64, Batch, Vec<u8>);

struct WriteRequest {
    batch: Batch,
    payload: Vec<u8>,
    /// The sender's batch id, written to the WAL right after the batch.
    id: Option<BatchId>,
    ack: oneshot::Sender<Result<u64, WriteError>>,
}

/// The handlers' side of the pipeline: cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<WriteRequest>,
}

impl Writer {
    /// Writes a batch (and its sender's batch id, when given) to the WAL; returns its
    /// sequence number once it is durable. The payload is encoded on the caller's thread (call
    /// it from a blocking task).
    pub async fn write(
        &self,
        batch: Batch,
        payload: Vec<u8>,
        id: Option<BatchId>,
    ) -> Result<u64, WriteError> {
        if payload.len() > skein_wal::MAX_PAYLOAD {
            return Err(WriteError::TooLarge {
                len: payload.len(),
                limit: skein_wal::MAX_PAYLOAD,
            });
        }
        let (ack, rx) = oneshot::channel();
        self.tx
            .try_send(WriteRequest {
                batch,
                payload,
                id,
                ack,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => WriteError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => WriteError::ShuttingDown,
            })?;
        rx.await.map_err(|_| WriteError::ShuttingDown)?
    }
}

/// Pipeline settings.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Ingest queue length (batches).
    pub ingest_queue: usize,
    /// Indexer queue length (batches).
    pub index_queue: usize,
    /// Time between commits while records arrive.
    pub commit_interval: Duration,
}

/// The running threads; [`Pipeline::shutdown`] drains and joins them.
pub struct Pipeline {
    writer_thread: Option<std::thread::JoinHandle<()>>,
    indexer_thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts the writer and indexer threads. Replays the WAL into the indexes first, so when this
/// returns every acknowledged record of an earlier run is searchable.
pub fn start(
    cfg: PipelineConfig,
    wal: Wal,
    mut logs: SplitStore<Logs>,
    mut spans: SplitStore<Spans>,
    telemetry: Telemetry,
    seen: &Seen,
) -> Result<(Writer, Pipeline), StoreError> {
    let wal = Arc::new(Mutex::new(wal));
    let mut indexer = Indexer {
        wal: wal.clone(),
        logs: &mut logs,
        spans: &mut spans,
        applied_seq: 0,
        telemetry: telemetry.clone(),
    };
    indexer.replay(Some(seen))?;
    let applied = indexer.applied_seq;
    let (tx, rx) = mpsc::channel::<WriteRequest>(cfg.ingest_queue.max(1));
    let (itx, irx) = std::sync::mpsc::sync_channel::<Indexed>(cfg.index_queue.max(1));
    let wal_w = wal.clone();
    let tel_w = telemetry.clone();
    let writer_thread = std::thread::Builder::new()
        .name("skein-wal".into())
        .spawn(move || write_loop(rx, wal_w, itx, tel_w))
        .map_err(|e| StoreError::Internal(format!("cannot start wal thread: {e}")))?;
    let interval = cfg.commit_interval;
    let indexer_thread = std::thread::Builder::new()
        .name("skein-indexer".into())
        .spawn(move || {
            let mut ix = Indexer {
                wal,
                logs: &mut logs,
                spans: &mut spans,
                applied_seq: applied,
                telemetry,
            };
            ix.run(irx, interval);
            if let Err(e) = logs.close() {
                tracing::warn!(error = %e, "closing log index");
            }
            if let Err(e) = spans.close() {
                tracing::warn!(error = %e, "closing span index");
            }
        })
        .map_err(|e| StoreError::Internal(format!("cannot start indexer thread: {e}")))?;
    Ok((
        Writer { tx },
        Pipeline {
            writer_thread: Some(writer_thread),
            indexer_thread: Some(indexer_thread),
        },
    ))
}

impl Pipeline {
    /// Waits for the threads to finish. Call after every [`Writer`] clone is dropped: the
    /// writer drains its queue, then the indexer commits what it holds.
    pub fn join(mut self) {
        if let Some(t) = self.writer_thread.take() {
            let _ = t.join();
        }
        if let Some(t) = self.indexer_thread.take() {
            let _ = t.join();
        }
    }
}

fn write_loop(
    mut rx: mpsc::Receiver<WriteRequest>,
    wal: Arc<Mutex<Wal>>,
    itx: SyncSender<Indexed>,
    telemetry: Telemetry,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        let mut bytes = group[0].payload.len();
        while bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(r) => {
                    bytes += r.payload.len();
                    group.push(r);
                }
                Err(_) => break,
            }
        }
        // Each batch, then its id: a torn write keeps a prefix, so an id is never kept
        // without its batch.
        let mut entries: Vec<Entry<'_>> = Vec::with_capacity(group.len() * 2);
        for r in &group {
            entries.push(Entry {
                kind: r.batch.kind().byte(),
                payload: &r.payload,
            });
            if let Some(id) = &r.id {
                entries.push(Entry {
                    kind: batch_id::WAL_KIND,
                    payload: id.as_str().as_bytes(),
                });
            }
        }
        let result = match wal.lock() {
            Ok(mut w) => {
                let r = w.append_batch(&entries);
                telemetry.set_wal_bytes(w.disk_bytes());
                r
            }
            Err(_) => {
                tracing::error!("wal lock poisoned");
                return;
            }
        };
        drop(entries);
        match result {
            Ok((first_seq, _)) => {
                let mut next = first_seq;
                for req in group {
                    let seq = next;
                    next += 1 + u64::from(req.id.is_some());
                    let _ = req.ack.send(Ok(seq));
                    // Blocks while the indexer is behind: that is the back-pressure.
                    if itx.send((seq, req.batch, req.payload)).is_err() {
                        tracing::error!(
                            "indexer stopped; records stay in the wal for the next start"
                        );
                    }
                }
            }
            Err(e) => {
                let err = if e.is_disk_full() {
                    tracing::warn!(error = %e, "wal append refused: disk full or wal at its limit");
                    WriteError::DiskFull
                } else {
                    tracing::error!(error = %e, "wal append failed");
                    WriteError::Failed
                };
                for req in group {
                    let _ = req.ack.send(Err(err.clone()));
                }
            }
        }
    }
}

struct Indexer<'a> {
    wal: Arc<Mutex<Wal>>,
    logs: &'a mut SplitStore<Logs>,
    spans: &'a mut SplitStore<Spans>,
    /// Highest WAL sequence number handed to the stores.
    applied_seq: u64,
    telemetry: Telemetry,
}

impl Indexer<'_> {
    /// Puts the batch ids of every WAL record still on disk back into `seen` (at start-up),
    /// adds the records past each store's committed position, then commits.
    fn replay(&mut self, seen: Option<&Seen>) -> Result<(), StoreError> {
        let from = self.logs.committed_seq().min(self.spans.committed_seq()) + 1;
        let reader = match self.wal.lock() {
            Ok(w) => w.read_from(w.first_seq())?,
            Err(_) => return Err(StoreError::Internal("wal lock poisoned".into())),
        };
        let mut n = 0u64;
        for rec in reader {
            let rec = rec?;
            if rec.kind == batch_id::WAL_KIND {
                match BatchId::from_wal(&rec.payload) {
                    Ok(id) => {
                        if let Some(seen) = seen {
                            seen.restore(id);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(seq = rec.seq, error = %e, "skipping a bad batch id in the wal")
                    }
                }
                continue;
            }
            if rec.seq < from {
                continue;
            }
            // Only what was really added may be covered by the next commit's position.
            self.applied_seq = self.applied_seq.max(rec.seq);
            match Batch::decode(rec.kind, &rec.payload) {
                Ok(b) => {
                    n += self.add(rec.seq, &b, &rec.payload)? as u64;
                }
                Err(e) => {
                    // A record that passed its CRC but does not decode was written by another
                    // version; skipping it is better than refusing to start.
                    tracing::error!(seq = rec.seq, error = %e, "skipping undecodable wal record");
                }
            }
        }
        if n > 0 {
            tracing::info!(records = n, "replayed wal into the indexes");
        }
        self.commit()?;
        Ok(())
    }

    /// Adds a batch unless its store already has it. Returns records added.
    fn add(&mut self, seq: u64, batch: &Batch, ndjson: &[u8]) -> Result<usize, StoreError> {
        match batch {
            Batch::Logs(v) if seq > self.logs.committed_seq() => {
                // Ingest positions for the live tail, as the store defines them.
                let first = skein_store::schema::first_ingest_position(seq, v.len());
                self.logs.add_sequenced(v, Some(ndjson), first)?
            }
            Batch::Spans(v) if seq > self.spans.committed_seq() => {
                self.spans.add_encoded(v, Some(ndjson))?
            }
            _ => return Ok(0),
        }
        Ok(batch.len())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        let started = Instant::now();
        let (nl, ns) = (self.logs.uncommitted(), self.spans.uncommitted());
        self.logs.commit(self.applied_seq)?;
        self.spans.commit(self.applied_seq)?;
        self.telemetry.indexed("logs", nl);
        self.telemetry.indexed("spans", ns);
        if nl + ns > 0 {
            self.telemetry.commit_took(started.elapsed().as_secs_f64());
        }
        self.logs.maybe_roll();
        self.spans.maybe_roll();
        // Every record up to the lower watermark is committed in both stores.
        let keep_from = self.logs.committed_seq().min(self.spans.committed_seq()) + 1;
        if let Ok(mut w) = self.wal.lock() {
            if let Err(e) = w.truncate_before(keep_from) {
                tracing::warn!(error = %e, "wal truncation failed; will retry");
            }
            self.telemetry.set_wal_bytes(w.disk_bytes());
        }
        Ok(())
    }

    fn run(&mut self, rx: Receiver<Indexed>, interval: Duration) {
        let mut deadline: Option<Instant> = None;
        let mut last_retention = Instant::now();
        let mut pending_records = 0u64;
        loop {
            let timeout = deadline
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(1));
            match rx.recv_timeout(timeout) {
                Ok((seq, batch, ndjson)) => {
                    self.applied_seq = self.applied_seq.max(seq);
                    match self.add(seq, &batch, &ndjson) {
                        Ok(n) => pending_records += n as u64,
                        Err(e) => self.recover(e),
                    }
                    deadline.get_or_insert_with(|| Instant::now() + interval);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    if let Err(e) = self.commit() {
                        tracing::error!(error = %e, "final commit failed; the wal keeps the records for the next start");
                    }
                    return;
                }
            }
            self.telemetry.set_index_lag(pending_records);
            if deadline.is_some_and(|d| Instant::now() >= d) {
                match self.commit() {
                    Ok(()) => {
                        pending_records = 0;
                        deadline = None;
                    }
                    Err(e) => {
                        self.recover(e);
                        deadline = Some(Instant::now() + interval);
                    }
                }
                self.telemetry.set_index_lag(pending_records);
            }
            if last_retention.elapsed() >= Duration::from_secs(60) {
                last_retention = Instant::now();
                for r in [self.logs.apply_retention(), self.spans.apply_retention()] {
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "retention failed");
                    }
                }
            }
        }
    }

    /// After an index error: roll both stores back to their last commit and replay the WAL
    /// until it works (a full disk recovers when space returns).
    fn recover(&mut self, error: StoreError) {
        let mut error = error;
        let mut wait = Duration::from_millis(100);
        loop {
            tracing::error!(error = %error, "indexing failed; rolling back and replaying from the wal");
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(5));
            let applied = self.applied_seq;
            let result = self
                .logs
                .rollback()
                .and_then(|_| self.spans.rollback())
                .and_then(|_| self.replay(None));
            self.applied_seq = self.applied_seq.max(applied);
            match result {
                Ok(()) => return,
                Err(e) => error = e,
            }
        }
    }
}
