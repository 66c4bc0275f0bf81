//! A partition's indexer: a durable pull consumer of `<prefix>.*.<partition>` feeding that
//! partition's own tantivy splits (`<data>/partitions/<p>/{logs,spans}`) and metrics store
//! (`<p>/tsdb`): metric samples as they come, and the span metrics derived from the
//! partition's spans every `metrics.derive_interval`.
//!
//! Metric samples are written to the partition's metrics store (its own WAL) when they are
//! read; a restart that reads them again finds them stored already (the store drops a repeat
//! of a stored sample), so they too are kept once. Span metrics of spans read again after a
//! crash (at most the last `index.commit_interval_ms`) are counted again: a counter's step,
//! not a loss.
//!
//! Each commit's payload records the stream sequence it covers (the WAL position's role on
//! one node). A worker starts its consumer just past the lower of the two signals' committed
//! sequences, skips what a signal has committed already and what was delivered twice, so
//! indexing stays exactly once per replica across crashes. It acknowledges the stream
//! (AckPolicy::All) only after a commit. On any error it rolls back to the last commit and
//! starts its consumer again from there.

use async_nats::jetstream;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures::StreamExt;
use skein_model::batch::{Batch, BatchKind};
use skein_model::metric::MetricBatch;
use skein_store::schema::first_ingest_position;
use skein_store::tsdb::{Tsdb, TsdbConfig};
use skein_store::{Logs, Spans, SplitConfig, SplitList, SplitStore};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

/// A partition this node indexes, as readers and the lease manager see it.
pub struct LocalPartition {
    /// The partition.
    pub partition: u32,
    /// Its log splits.
    pub logs: SplitList,
    /// Its span splits.
    pub spans: SplitList,
    /// Its metrics store.
    pub tsdb: Tsdb,
    /// True once the worker has reached the end of the stream at least once.
    pub caught_up: AtomicBool,
    /// Messages of this partition in the stream not yet indexed (from the last delivery).
    pub lag: AtomicU64,
    /// The last stream sequence committed.
    pub committed: AtomicU64,
    stop: AtomicBool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl LocalPartition {
    /// Asks the worker to commit and stop, and waits for it.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let t = match self.thread.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

/// Derives span metrics (the collector's deriver; a trait so this crate does not depend on
/// the collector). One per partition held.
pub trait SpanDeriver: Send {
    /// Counts spans.
    fn observe(&mut self, spans: &[skein_model::Span], now_ms: i64);
    /// The samples of the intervals that are over.
    fn flush(&mut self, now_ms: i64) -> MetricBatch;
}

/// Makes a [`SpanDeriver`] for a partition.
pub type DeriverFactory = Arc<dyn Fn() -> Box<dyn SpanDeriver> + Send + Sync>;

/// How often a partition's metrics store is maintained (blocks cut, retention applied).
const MAINTAIN_EVERY: Duration = Duration::from_secs(30);

/// What a worker needs.
#[derive(Clone)]
pub struct WorkerConfig {
    /// `<data>/partitions`.
    pub dir: PathBuf,
    /// The stream.
    pub stream: jetstream::stream::Stream,
    /// This node, for the consumer's name.
    pub node: String,
    /// Subject prefix.
    pub prefix: String,
    /// Splits of logs.
    pub logs: SplitConfig,
    /// Splits of spans.
    pub spans: SplitConfig,
    /// Time between commits while records arrive.
    pub commit_interval: Duration,
    /// Messages a fetch takes at most.
    pub fetch_batch: usize,
    /// Settings of a partition's metrics store (its `dir` is replaced by `<p>/tsdb`).
    pub tsdb: TsdbConfig,
    /// Span metrics, when on.
    pub deriver: Option<DeriverFactory>,
    /// Time between span metric flushes.
    pub derive_interval: Duration,
}

/// Opens partition `p`'s splits and starts its worker thread.
pub fn start(
    cfg: &WorkerConfig,
    p: u32,
    rt: Handle,
) -> Result<Arc<LocalPartition>, skein_store::StoreError> {
    let dir = cfg.dir.join(format!("{p:04}"));
    let logs = SplitStore::<Logs>::open(&dir, cfg.logs.clone())?;
    let spans = SplitStore::<Spans>::open(&dir, cfg.spans.clone())?;
    let tsdb = Tsdb::open(TsdbConfig {
        dir: dir.join("tsdb"),
        ..cfg.tsdb.clone()
    })?;
    let part = Arc::new(LocalPartition {
        partition: p,
        logs: logs.split_list(),
        spans: spans.split_list(),
        tsdb: tsdb.clone(),
        caught_up: AtomicBool::new(false),
        lag: AtomicU64::new(0),
        committed: AtomicU64::new(logs.committed_seq().min(spans.committed_seq())),
        stop: AtomicBool::new(false),
        thread: Mutex::new(None),
    });
    let me = part.clone();
    let cfg = cfg.clone();
    let t = std::thread::Builder::new()
        .name(format!("skein-part-{p}"))
        .spawn(move || {
            let deriver = cfg.deriver.as_ref().map(|f| f());
            let mut w = Worker {
                part: me,
                cfg,
                rt,
                logs,
                spans,
                tsdb,
                deriver,
                last_flush: Instant::now(),
                last_maintain: Instant::now(),
                last_added: 0,
                last_msg: None,
                last_commit: Instant::now(),
                consumer: None,
            };
            w.run();
            w.derive(true);
            if let Err(e) = w.tsdb.persist() {
                tracing::warn!(partition = p, error = %e, "saving the partition's metrics store");
            }
            let Worker { logs, spans, .. } = w;
            for r in [logs.close(), spans.close()] {
                if let Err(e) = r {
                    tracing::warn!(partition = p, error = %e, "closing the partition's splits");
                }
            }
        })
        .map_err(|e| skein_store::StoreError::Internal(format!("cannot start a worker: {e}")))?;
    match part.thread.lock() {
        Ok(mut g) => *g = Some(t),
        Err(p) => *p.into_inner() = Some(t),
    }
    Ok(part)
}

struct Worker {
    part: Arc<LocalPartition>,
    cfg: WorkerConfig,
    rt: Handle,
    logs: SplitStore<Logs>,
    spans: SplitStore<Spans>,
    tsdb: Tsdb,
    deriver: Option<Box<dyn SpanDeriver>>,
    last_flush: Instant,
    last_maintain: Instant,
    /// The last sequence added (or skipped as already indexed).
    last_added: u64,
    /// The last message delivered, acknowledged at the next commit.
    last_msg: Option<jetstream::Message>,
    last_commit: Instant,
    /// The name of the consumer made last, deleted when the next one is made or on stop.
    consumer: Option<String>,
}

impl Worker {
    fn stopping(&self) -> bool {
        self.part.stop.load(Ordering::Acquire)
    }

    /// A new consumer name for each consumer this worker makes: `<node>-p<p>-<nanos>`. A
    /// consumer left from before (this process's last one, or one of a run that was killed)
    /// may have delivered messages that were never committed; reusing it would skip them
    /// until their redelivery. Old ones are deleted when known, else by the server after
    /// `inactive_threshold`.
    fn consumer_name(&self) -> String {
        format!(
            "{}-p{}-{:x}",
            self.cfg.node,
            self.part.partition,
            skein_model::time::now_unix_nano()
        )
    }

    /// A consumer starting just past what both signals have committed.
    fn open_consumer(&mut self) -> Option<jetstream::consumer::Consumer<pull::Config>> {
        let both = self.logs.committed_seq().min(self.spans.committed_seq());
        let start = both.max(read_position(&self.position_file())) + 1;
        self.last_added = start - 1;
        let name = self.consumer_name();
        let old = self.consumer.take();
        let filter = format!("{}.*.{}", self.cfg.prefix, self.part.partition);
        let stream = self.cfg.stream.clone();
        let made_name = name.clone();
        let made = self.rt.block_on(async move {
            if let Some(old) = old {
                let _ = stream.delete_consumer(&old).await;
            }
            stream
                .create_consumer_strict(pull::Config {
                    durable_name: Some(made_name),
                    filter_subject: filter,
                    deliver_policy: DeliverPolicy::ByStartSequence {
                        start_sequence: start,
                    },
                    ack_policy: AckPolicy::All,
                    ack_wait: Duration::from_secs(60),
                    max_ack_pending: 1_000_000,
                    inactive_threshold: Duration::from_secs(600),
                    ..Default::default()
                })
                .await
        });
        if made.is_ok() {
            self.consumer = Some(name);
        }
        match made {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(partition = self.part.partition, error = %e, "cannot create the partition's consumer; retrying");
                None
            }
        }
    }

    fn run(&mut self) {
        let mut consumer = None;
        while !self.stopping() {
            let Some(c) = consumer.as_ref() else {
                consumer = self.open_consumer();
                if consumer.is_none() {
                    std::thread::sleep(Duration::from_millis(500));
                }
                continue;
            };
            let batch = self.cfg.fetch_batch;
            // Wait for messages no longer than the next commit is due.
            let wait = self
                .cfg
                .commit_interval
                .saturating_sub(self.last_commit.elapsed())
                .clamp(Duration::from_millis(50), Duration::from_millis(500));
            let fetched: Result<Vec<jetstream::Message>, String> = self.rt.block_on(async {
                let mut msgs = c
                    .fetch()
                    .max_messages(batch)
                    .expires(wait)
                    .messages()
                    .await
                    .map_err(|e| e.to_string())?;
                let mut out = Vec::new();
                while let Some(m) = msgs.next().await {
                    out.push(m.map_err(|e| e.to_string())?);
                }
                Ok(out)
            });
            let msgs = match fetched {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(partition = self.part.partition, error = %e, "fetch failed; starting the consumer again from the last commit");
                    self.reset();
                    consumer = None;
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            };
            let empty = msgs.is_empty();
            let mut pending = 0;
            for m in msgs {
                if let Ok(info) = m.info() {
                    pending = info.pending;
                }
                if let Err(e) = self.add(&m) {
                    tracing::error!(partition = self.part.partition, error = %e, "indexing failed; starting again from the last commit");
                    self.reset();
                    consumer = None;
                    break;
                }
                self.last_msg = Some(m);
            }
            if consumer.is_none() {
                continue;
            }
            self.part.lag.store(pending, Ordering::Relaxed);
            self.derive(false);
            let mut at_end = empty || pending == 0;
            if at_end && empty && !self.part.caught_up.load(Ordering::Acquire) {
                // An empty fetch may only mean the server was slow (a NATS server restarting,
                // a loaded machine). Before saying caught up the first time, ask the consumer
                // how much it has not delivered yet.
                at_end = match consumer.as_ref() {
                    Some(c) => matches!(
                        // The timer is made inside the runtime: this is a plain thread.
                        self.rt.block_on(async {
                            tokio::time::timeout(Duration::from_secs(2), c.get_info()).await
                        }),
                        Ok(Ok(info)) if info.num_pending == 0
                    ),
                    None => false,
                };
            }
            // Commits come every index.commit_interval_ms, as on one node: a commit is the
            // expensive step of indexing, and committing whenever the partition is caught up
            // cost several times the CPU per record (BENCHMARKS.md, cluster mode).
            let nothing_new = self.logs.uncommitted() == 0 && self.spans.uncommitted() == 0;
            if self.last_commit.elapsed() >= self.cfg.commit_interval || (at_end && nothing_new) {
                if let Err(e) = self.commit() {
                    tracing::error!(partition = self.part.partition, error = %e, "commit failed; starting again from the last commit");
                    self.reset();
                    consumer = None;
                    continue;
                }
                if at_end {
                    self.part.caught_up.store(true, Ordering::Release);
                }
            }
        }
        if let Err(e) = self.commit() {
            tracing::warn!(partition = self.part.partition, error = %e, "last commit failed");
        }
        if let Some(name) = self.consumer.take() {
            let stream = self.cfg.stream.clone();
            let _ = self.rt.block_on(async move {
                tokio::time::timeout(Duration::from_secs(2), stream.delete_consumer(&name)).await
            });
        }
    }

    /// Writes the span metrics of the intervals that are over (all of them with `all`), and
    /// maintains the metrics store now and then.
    fn derive(&mut self, all: bool) {
        if let Some(d) = &mut self.deriver
            && (all || self.last_flush.elapsed() >= self.cfg.derive_interval)
        {
            self.last_flush = Instant::now();
            let now = skein_model::time::now_ms();
            let batch = d.flush(now);
            if !batch.is_empty()
                && let Err(e) = self.tsdb.append_derived(&batch)
            {
                tracing::warn!(partition = self.part.partition, error = %e, "span metrics not stored");
            }
        }
        if self.last_maintain.elapsed() >= MAINTAIN_EVERY {
            self.last_maintain = Instant::now();
            if let Err(e) = self.tsdb.maintain() {
                tracing::warn!(partition = self.part.partition, error = %e, "metrics store upkeep failed");
            }
        }
    }

    /// Stores a message of metric samples.
    fn add_metrics(&mut self, seq: u64, payload: &[u8]) -> Result<(), String> {
        let batch: MetricBatch = match serde_json::from_slice(payload) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(seq, error = %e, "a stream message is not a metric batch; skipped");
                self.last_added = seq;
                return Ok(());
            }
        };
        let report = self.tsdb.append(&batch).map_err(|e| e.to_string())?;
        if report.rejected > 0 {
            tracing::debug!(
                partition = self.part.partition,
                rejected = report.rejected,
                reason = report.first_reason.as_deref().unwrap_or(""),
                "metric samples refused by the partition's store"
            );
        }
        self.last_added = seq;
        Ok(())
    }

    fn add(&mut self, m: &jetstream::Message) -> Result<(), String> {
        let info = m.info().map_err(|e| e.to_string())?;
        let seq = info.stream_sequence;
        if seq <= self.last_added {
            return Ok(()); // delivered again
        }
        let kind = match m.subject.as_str().rsplit('.').nth(1) {
            Some("logs") => BatchKind::Logs,
            Some("spans") => BatchKind::Spans,
            Some("metrics") => {
                let plain = match skein_stream::publish::plain_payload(
                    m.headers.as_ref(),
                    &m.payload,
                ) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(seq, error = %e, "a stream message cannot be read; skipped");
                        self.last_added = seq;
                        return Ok(());
                    }
                };
                return self.add_metrics(seq, &plain);
            }
            other => {
                tracing::warn!(subject = %m.subject, kind = ?other, "a message of no known signal; skipped");
                self.last_added = seq;
                return Ok(());
            }
        };
        let done = match kind {
            BatchKind::Logs => self.logs.committed_seq(),
            BatchKind::Spans => self.spans.committed_seq(),
        };
        if seq <= done {
            self.last_added = seq;
            return Ok(());
        }
        let payload = match skein_stream::publish::plain_payload(m.headers.as_ref(), &m.payload) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(seq, error = %e, "a stream message cannot be read; skipped");
                self.last_added = seq;
                return Ok(());
            }
        };
        let batch = match Batch::decode(kind.byte(), &payload) {
            Ok(b) => b,
            Err(e) => {
                // Only Skein publishes here; a message it cannot read is skipped, not retried
                // for ever.
                tracing::error!(seq, error = %e, "a stream message is not a batch; skipped");
                self.last_added = seq;
                return Ok(());
            }
        };
        let first = first_ingest_position(seq, batch.len());
        let r = match &batch {
            Batch::Logs(v) => self.logs.add_sequenced(v, Some(&payload), first),
            Batch::Spans(v) => self.spans.add_sequenced(v, Some(&payload), first),
        };
        r.map_err(|e| e.to_string())?;
        if let (Batch::Spans(v), Some(d)) = (&batch, &mut self.deriver) {
            d.observe(v, skein_model::time::now_ms());
        }
        self.last_added = seq;
        Ok(())
    }

    /// `<p>/position`: a stream sequence both signals have committed. A signal with nothing
    /// new commits nothing to disk, so its own payload lags; without this file a restart would
    /// read the partition's stream again from that signal's last commit. Written after both
    /// commits (a lost write only means reading more again, never less).
    fn position_file(&self) -> PathBuf {
        self.cfg
            .dir
            .join(format!("{:04}", self.part.partition))
            .join("position")
    }

    fn commit(&mut self) -> Result<(), String> {
        let seq = self.last_added;
        self.logs.commit(seq).map_err(|e| e.to_string())?;
        self.spans.commit(seq).map_err(|e| e.to_string())?;
        if seq > self.part.committed.load(Ordering::Acquire) {
            write_position(&self.position_file(), seq);
        }
        self.last_commit = Instant::now();
        self.part.committed.store(seq, Ordering::Release);
        if let Some(m) = self.last_msg.take() {
            // Everything up to here is committed: the stream may forget it for this consumer.
            if let Err(e) = self.rt.block_on(m.ack()) {
                tracing::debug!(error = %e, "ack failed (the next one covers it)");
            }
        }
        Ok(())
    }

    fn reset(&mut self) {
        let _ = self.logs.rollback();
        let _ = self.spans.rollback();
        self.last_msg = None;
    }
}

fn read_position(path: &std::path::Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn write_position(path: &std::path::Path, seq: u64) {
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, seq.to_string()).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

/// The subject a partition's messages carry (for status output).
pub fn subject(prefix: &str, p: u32) -> String {
    format!("{prefix}.*.{p}")
}
