//! A time-split tantivy index for one signal.
//!
//! Records go into the *active* split; a split is closed when it is older than
//! [`SplitConfig::split_max_age`] or holds [`SplitConfig::split_max_docs`] records, and a new one
//! starts. Splits are cut by arrival, and each split records the event-time range of what it
//! holds, so a time-range query skips splits that cannot match while a late record (or one from
//! a skewed clock) is still found by its key. Retention deletes whole closed splits: nothing is
//! rewritten.
//!
//! Exactly-once from the WAL: every commit carries, in tantivy's commit payload, the WAL sequence
//! number up to which this signal's records are in the index. After a crash the pipeline replays
//! only what is past it.

use crate::error::{Result, StoreError};
use crate::schema::register_tokenizers;
use crate::signal::Signal;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::{Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, TantivyDocument};

/// How splits are cut, how big the writer may grow and how long data is kept.
#[derive(Debug, Clone)]
pub struct SplitConfig {
    /// Close the active split after this long (default 1 h).
    pub split_max_age: Duration,
    /// Close the active split past this many records (default 20 million).
    pub split_max_docs: u64,
    /// Indexing memory of the writer, in bytes, shared by its threads (default 256 MiB).
    /// Tantivy needs at least 15 MiB per thread.
    pub writer_memory_bytes: usize,
    /// Indexing threads of the writer (default 2).
    pub indexing_threads: usize,
    /// Delete closed splits whose newest record is older than this (None: keep).
    pub retention_max_age: Option<Duration>,
    /// Delete the oldest closed splits while this signal's splits take more bytes (None: no limit).
    pub retention_max_bytes: Option<u64>,
    /// Size of a doc-store block before zstd compression (default 64 KiB). Larger blocks
    /// compress better (measured: 64 KiB stores about 15% less than tantivy's 16 KiB) and cost
    /// more to read one record back.
    pub docstore_block_bytes: usize,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            split_max_age: Duration::from_secs(3600),
            split_max_docs: 20_000_000,
            writer_memory_bytes: 256 * 1024 * 1024,
            indexing_threads: 2,
            retention_max_age: Some(Duration::from_secs(7 * 24 * 3600)),
            retention_max_bytes: None,
            docstore_block_bytes: 64 * 1024,
        }
    }
}

impl SplitConfig {
    /// A small config for tests: a 32 MiB writer on one thread, so many indexes open at once
    /// in one test process stay cheap.
    pub fn small() -> Self {
        SplitConfig {
            writer_memory_bytes: 32 * 1024 * 1024,
            indexing_threads: 1,
            ..SplitConfig::default()
        }
    }

    /// The tantivy settings of a new split: a zstd doc store with this config's block size.
    pub fn index_settings(&self) -> IndexSettings {
        IndexSettings {
            docstore_compression: Compressor::Zstd(ZstdCompressor {
                compression_level: Some(3),
            }),
            docstore_blocksize: self.docstore_block_bytes.max(4096),
            ..IndexSettings::default()
        }
    }
}

/// What a split's commit payload records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitMeta {
    /// Every record of this signal with a WAL sequence number up to here is committed.
    pub wal_seq: u64,
    /// Oldest event time in the split (Unix ns); u64::MAX when empty.
    pub min_time: u64,
    /// Newest event time in the split (Unix ns); 0 when empty.
    pub max_time: u64,
    /// When the split was created (Unix ns).
    pub created: u64,
    /// Committed records.
    pub docs: u64,
}

impl SplitMeta {
    fn new(created: u64) -> Self {
        SplitMeta {
            wal_seq: 0,
            min_time: u64::MAX,
            max_time: 0,
            created,
            docs: 0,
        }
    }

    /// True when the split may hold records with event time in `[start, end]`.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.docs > 0 && self.min_time <= end && self.max_time >= start
    }
}

/// One split as readers see it.
pub struct SplitHandle {
    /// Folder name, also the split's ID.
    pub id: String,
    /// Its folder.
    pub dir: PathBuf,
    /// The tantivy index.
    pub index: Index,
    /// Reader, reloaded by the writer right after each commit.
    pub reader: IndexReader,
    /// The last committed meta.
    pub meta: RwLock<SplitMeta>,
}

impl SplitHandle {
    /// The last committed meta.
    pub fn meta(&self) -> SplitMeta {
        match self.meta.read() {
            Ok(m) => *m,
            Err(p) => *p.into_inner(),
        }
    }

    fn set_meta(&self, m: SplitMeta) {
        match self.meta.write() {
            Ok(mut g) => *g = m,
            Err(p) => *p.into_inner() = m,
        }
    }
}

/// The list of splits, oldest first, shared by the writer and the readers.
pub type SplitList = Arc<RwLock<Vec<Arc<SplitHandle>>>>;

/// Reads the current list of splits.
pub fn current_splits(list: &SplitList) -> Vec<Arc<SplitHandle>> {
    match list.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

struct Active {
    handle: Arc<SplitHandle>,
    writer: IndexWriter,
    /// The meta as it will be at the next commit.
    pending: SplitMeta,
    /// Records added since the last commit.
    uncommitted: u64,
}

/// The writer side of one signal's splits. One owner (the indexing pipeline) at a time.
pub struct SplitStore<S: Signal> {
    dir: PathBuf,
    cfg: SplitConfig,
    fields: S::Fields,
    splits: SplitList,
    active: Option<Active>,
    committed_seq: u64,
    json_buf: Vec<u8>,
}

fn now_nano() -> u64 {
    skein_model::time::now_unix_nano()
}

impl<S: Signal> SplitStore<S> {
    /// Opens (or creates) `<data_dir>/<signal>/`, reading every split's committed meta.
    pub fn open(data_dir: &Path, cfg: SplitConfig) -> Result<Self> {
        let dir = data_dir.join(S::NAME);
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::io("create", &dir, e))?;
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|e| StoreError::io("list", &dir, e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        let fields = S::fields();
        let mut handles = Vec::new();
        let mut committed_seq = 0;
        for name in names {
            let path = dir.join(&name);
            let index = match Index::open_in_dir(&path) {
                Ok(i) => i,
                Err(e) => {
                    // A split folder without a committed meta is one that was being created
                    // when the process died: it holds nothing acknowledged-and-committed.
                    tracing::warn!(path = %path.display(), error = %e, "removing split that was never committed");
                    let _ = std::fs::remove_dir_all(&path);
                    continue;
                }
            };
            register_tokenizers(index.tokenizers());
            // Field handles come from this version's schema: a split written with another
            // schema would be read wrongly, so refuse it with a clear message instead. A
            // split from before fields were added at the end is read as it is (it lacks only
            // those fields) and never written to again.
            if !schema_prefix(&index.schema(), S::schema(&fields)) {
                return Err(StoreError::Incompatible(format!(
                    "split {} was written with a different {} schema (another Skein version); move it out of the data directory or run the version that wrote it",
                    path.display(),
                    S::NAME
                )));
            }
            let meta = read_meta(&index, &path)?;
            committed_seq = committed_seq.max(meta.wal_seq);
            let reader = open_reader(&index, &path)?;
            handles.push(Arc::new(SplitHandle {
                id: name,
                dir: path,
                index,
                reader,
                meta: RwLock::new(meta),
            }));
        }
        tracing::info!(
            signal = S::NAME,
            splits = handles.len(),
            committed_seq,
            "opened index"
        );
        let mut store = SplitStore {
            dir,
            cfg,
            fields,
            splits: Arc::new(RwLock::new(handles)),
            active: None,
            committed_seq,
            json_buf: Vec::with_capacity(4096),
        };
        store.reopen_last()?;
        Ok(store)
    }

    /// Makes the newest split active again when it is young enough, so a restart does not
    /// leave a small split behind. Opening its writer also removes files of segments that were
    /// being written, uncommitted, when the process died.
    fn reopen_last(&mut self) -> Result<()> {
        let Some(last) = current_splits(&self.splits).last().cloned() else {
            return Ok(());
        };
        let meta = last.meta();
        let age = Duration::from_nanos(now_nano().saturating_sub(meta.created));
        if age >= self.cfg.split_max_age
            || meta.docs >= self.cfg.split_max_docs
            || last.index.schema() != *S::schema(&self.fields)
        {
            return Ok(());
        }
        let writer = self.new_writer(&last.index, &last.dir)?;
        self.active = Some(Active {
            handle: last,
            writer,
            pending: meta,
            uncommitted: 0,
        });
        Ok(())
    }

    fn new_writer(&self, index: &Index, dir: &Path) -> Result<IndexWriter> {
        let threads = self.cfg.indexing_threads.max(1);
        let memory = self.cfg.writer_memory_bytes.max(threads * 16 * 1024 * 1024);
        index
            .writer_with_num_threads::<TantivyDocument>(threads, memory)
            .map_err(|e| StoreError::index(format!("open writer {}", dir.display()), e))
    }

    /// Every record of this signal up to this WAL sequence number is committed.
    pub fn committed_seq(&self) -> u64 {
        self.committed_seq
    }

    /// True when records were added since the last commit.
    pub fn has_uncommitted(&self) -> bool {
        self.active.as_ref().is_some_and(|a| a.uncommitted > 0)
    }

    /// Records added since the last commit.
    pub fn uncommitted(&self) -> u64 {
        self.active.as_ref().map(|a| a.uncommitted).unwrap_or(0)
    }

    /// The shared split list, for readers.
    pub fn split_list(&self) -> SplitList {
        self.splits.clone()
    }

    /// The field handles.
    pub fn fields(&self) -> &S::Fields {
        &self.fields
    }

    fn ensure_active(&mut self) -> Result<&mut Active> {
        if self.active.is_none() {
            let created = now_nano();
            // Names sort by creation time; the counter keeps two splits of one nanosecond apart.
            let id = format!("{created:020}");
            let path = self.dir.join(&id);
            std::fs::create_dir_all(&path).map_err(|e| StoreError::io("create", &path, e))?;
            let settings = self.cfg.index_settings();
            let index = Index::builder()
                .schema(S::schema(&self.fields).clone())
                .settings(settings)
                .create_in_dir(&path)
                .map_err(|e| StoreError::index(format!("create split {}", path.display()), e))?;
            register_tokenizers(index.tokenizers());
            let reader = open_reader(&index, &path)?;
            let writer = self.new_writer(&index, &path)?;
            let meta = SplitMeta::new(created);
            let handle = Arc::new(SplitHandle {
                id,
                dir: path,
                index,
                reader,
                meta: RwLock::new(SplitMeta::new(created)),
            });
            match self.splits.write() {
                Ok(mut g) => g.push(handle.clone()),
                Err(p) => p.into_inner().push(handle.clone()),
            }
            tracing::info!(signal = S::NAME, split = %handle.id, "started split");
            self.active = Some(Active {
                handle,
                writer,
                pending: meta,
                uncommitted: 0,
            });
        }
        self.active
            .as_mut()
            .ok_or_else(|| StoreError::Internal("no active split".into()))
    }

    /// Adds records to the active split. They become searchable at the next [`Self::commit`].
    pub fn add(&mut self, records: &[S::Record]) -> Result<()> {
        self.add_encoded(records, None)
    }

    /// Like [`Self::add`], with the records already serialized as NDJSON (one JSON object a
    /// line, in order): the WAL payload. Reusing it saves serializing every record twice.
    /// When the line count does not match, the records are serialized again.
    pub fn add_encoded(&mut self, records: &[S::Record], ndjson: Option<&[u8]>) -> Result<()> {
        self.add_sequenced(records, ndjson, 0)
    }

    /// Like [`Self::add_encoded`], giving record `i` the ingest position `first_seq + i`
    /// (0: none).
    pub fn add_sequenced(
        &mut self,
        records: &[S::Record],
        ndjson: Option<&[u8]>,
        first_seq: u64,
    ) -> Result<()> {
        let lines: Option<Vec<&[u8]>> = ndjson.and_then(|b| {
            let v: Vec<&[u8]> = skein_model::batch::ndjson_lines(b).collect();
            (v.len() == records.len()).then_some(v)
        });
        let mut buf = std::mem::take(&mut self.json_buf);
        let fields = self.fields.clone();
        let result = (|| {
            let active = self.ensure_active()?;
            for (i, r) in records.iter().enumerate() {
                let json: &[u8] = match lines.as_ref().and_then(|l| l.get(i)) {
                    Some(line) => line,
                    None => {
                        buf.clear();
                        serde_json::to_writer(&mut buf, r)
                            .map_err(|e| StoreError::Decode(e.to_string()))?;
                        &buf
                    }
                };
                let seq = if first_seq == 0 {
                    0
                } else {
                    first_seq.saturating_add(i as u64)
                };
                let doc = S::document(&fields, r, json, seq);
                active
                    .writer
                    .add_document(doc)
                    .map_err(|e| StoreError::index("add document", e))?;
                let t = S::time(r);
                active.pending.min_time = active.pending.min_time.min(t);
                active.pending.max_time = active.pending.max_time.max(t);
                active.pending.docs += 1;
                active.uncommitted += 1;
            }
            Ok(())
        })();
        self.json_buf = buf;
        result
    }

    /// Commits what was added, recording that everything of this signal up to `wal_seq` is in
    /// the index, and reloads the reader so it is searchable at once. With nothing added, only
    /// the in-memory watermark moves (nothing to make durable).
    pub fn commit(&mut self, wal_seq: u64) -> Result<()> {
        let Some(active) = self.active.as_mut() else {
            self.committed_seq = self.committed_seq.max(wal_seq);
            return Ok(());
        };
        if active.uncommitted == 0 {
            self.committed_seq = self.committed_seq.max(wal_seq);
            return Ok(());
        }
        let mut meta = active.pending;
        meta.wal_seq = wal_seq;
        let payload =
            serde_json::to_string(&meta).map_err(|e| StoreError::Decode(e.to_string()))?;
        let mut prepared = active
            .writer
            .prepare_commit()
            .map_err(|e| StoreError::index("prepare commit", e))?;
        prepared.set_payload(&payload);
        prepared
            .commit()
            .map_err(|e| StoreError::index("commit", e))?;
        active.pending = meta;
        active.uncommitted = 0;
        active.handle.set_meta(meta);
        active
            .handle
            .reader
            .reload()
            .map_err(|e| StoreError::index("reload reader", e))?;
        self.committed_seq = wal_seq;
        Ok(())
    }

    /// Drops uncommitted records after a failed add or commit: the writer is reopened at the
    /// last commit. The caller replays the WAL past [`Self::committed_seq`].
    pub fn rollback(&mut self) -> Result<()> {
        if let Some(mut active) = self.active.take() {
            let _ = active.writer.rollback();
            drop(active.writer);
            let writer = self.new_writer(&active.handle.index, &active.handle.dir)?;
            let meta = active.handle.meta();
            self.active = Some(Active {
                handle: active.handle,
                writer,
                pending: meta,
                uncommitted: 0,
            });
        }
        Ok(())
    }

    /// Closes the active split when it is old or big enough. Call right after a commit. The
    /// writer's merges finish on a thread of their own, not on the caller's.
    pub fn maybe_roll(&mut self) {
        let due = self.active.as_ref().is_some_and(|a| {
            a.uncommitted == 0
                && (Duration::from_nanos(now_nano().saturating_sub(a.pending.created))
                    >= self.cfg.split_max_age
                    || a.pending.docs >= self.cfg.split_max_docs)
        });
        if due && let Some(active) = self.active.take() {
            let id = active.handle.id.clone();
            tracing::info!(signal = S::NAME, split = %id, docs = active.pending.docs, "closed split");
            let _ = std::thread::Builder::new()
                .name(format!("skein-merge-{}", S::NAME))
                .spawn(move || {
                    if let Err(e) = active.writer.wait_merging_threads() {
                        tracing::warn!(split = %id, error = %e, "merge after close failed");
                    }
                });
        }
    }

    /// Deletes closed splits past the retention limits. Returns how many were deleted.
    pub fn apply_retention(&mut self) -> Result<usize> {
        let active_id = self.active.as_ref().map(|a| a.handle.id.clone());
        let splits = current_splits(&self.splits);
        let now = now_nano();
        let mut doomed: Vec<String> = Vec::new();
        if let Some(max_age) = self.cfg.retention_max_age {
            let cutoff = now.saturating_sub(u64::try_from(max_age.as_nanos()).unwrap_or(u64::MAX));
            // Records arrive while their split is active (at most split_max_age after it was
            // created). An event time more than another split_max_age past that is a lying
            // clock: it must not keep the split forever, so the split's age counts from the
            // latest time its records can honestly hold.
            let span = u64::try_from(self.cfg.split_max_age.as_nanos()).unwrap_or(u64::MAX);
            for s in &splits {
                let m = s.meta();
                let honest_max = m
                    .max_time
                    .min(m.created.saturating_add(span.saturating_mul(2)));
                if Some(&s.id) != active_id.as_ref() && honest_max < cutoff && m.created < cutoff {
                    doomed.push(s.id.clone());
                }
            }
        }
        if let Some(max_bytes) = self.cfg.retention_max_bytes {
            let sizes: Vec<(String, u64)> = splits
                .iter()
                .map(|s| (s.id.clone(), dir_size(&s.dir)))
                .collect();
            let mut total: u64 = sizes
                .iter()
                .filter(|(id, _)| !doomed.contains(id))
                .map(|(_, b)| b)
                .sum();
            for (id, bytes) in &sizes {
                if total <= max_bytes {
                    break;
                }
                if Some(id) == active_id.as_ref() || doomed.contains(id) {
                    continue;
                }
                doomed.push(id.clone());
                total = total.saturating_sub(*bytes);
            }
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        let removed: Vec<Arc<SplitHandle>> = {
            let mut g = match self.splits.write() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let (gone, keep): (Vec<_>, Vec<_>) = g.drain(..).partition(|s| doomed.contains(&s.id));
            *g = keep;
            gone
        };
        for s in &removed {
            // Searches that hold the split keep reading their open files; Unix frees the space
            // when the last one closes.
            std::fs::remove_dir_all(&s.dir)
                .map_err(|e| StoreError::io("delete split", &s.dir, e))?;
            tracing::info!(signal = S::NAME, split = %s.id, "deleted split past retention");
        }
        Ok(removed.len())
    }

    /// Bytes on disk of all splits.
    pub fn disk_bytes(&self) -> u64 {
        current_splits(&self.splits)
            .iter()
            .map(|s| dir_size(&s.dir))
            .sum()
    }

    /// Commits nothing new, stops the writer and waits for its merges: a clean shutdown.
    pub fn close(mut self) -> Result<()> {
        if let Some(active) = self.active.take() {
            active
                .writer
                .wait_merging_threads()
                .map_err(|e| StoreError::index("finish merges", e))?;
        }
        Ok(())
    }
}

fn read_meta(index: &Index, path: &Path) -> Result<SplitMeta> {
    let metas = index
        .load_metas()
        .map_err(|e| StoreError::index(format!("read meta {}", path.display()), e))?;
    Ok(metas
        .payload
        .as_deref()
        .and_then(|p| serde_json::from_str::<SplitMeta>(p).ok())
        .unwrap_or_else(|| SplitMeta::new(0)))
}

/// True when `old` has the same fields as the first ones of `new`, in the same order.
fn schema_prefix(old: &tantivy::schema::Schema, new: &tantivy::schema::Schema) -> bool {
    let old: Vec<_> = old.fields().map(|(_, e)| e).collect();
    let new: Vec<_> = new.fields().map(|(_, e)| e).collect();
    old.len() <= new.len() && old.iter().zip(&new).all(|(a, b)| a == b)
}

fn open_reader(index: &Index, path: &Path) -> Result<IndexReader> {
    index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .map_err(|e| StoreError::index(format!("open reader {}", path.display()), e))
}

/// Total size of the files in a folder (not recursive: splits are flat).
pub fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Logs;
    use crate::search::{LogFilter, TimeRange, by_keys, search_logs};
    use skein_model::LogRecord;

    fn log(i: u64, service: &str, body: &str, key: &str) -> LogRecord {
        LogRecord {
            time_unix_nano: 1_000 + i,
            service: service.into(),
            severity_text: if i.is_multiple_of(2) { "INFO" } else { "ERROR" }.into(),
            severity_number: if i.is_multiple_of(2) { 9 } else { 17 },
            body: body.into(),
            keys: vec![key.into()],
            ..Default::default()
        }
    }

    fn cfg() -> SplitConfig {
        SplitConfig::small()
    }

    #[test]
    fn committed_records_survive_reopen_and_uncommitted_do_not() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = SplitStore::<Logs>::open(dir.path(), cfg()).unwrap();
            s.add(&[log(0, "order", "placed order", "k1")]).unwrap();
            s.commit(7).unwrap();
            assert_eq!(s.committed_seq(), 7);
            s.add(&[log(1, "order", "never committed", "k2")]).unwrap();
            // Dropped without commit: as after kill -9.
        }
        let s = SplitStore::<Logs>::open(dir.path(), cfg()).unwrap();
        assert_eq!(s.committed_seq(), 7);
        let list = s.split_list();
        let f = s.fields();
        assert_eq!(
            by_keys::<Logs>(&list, f, &["k1".into()], 10)
                .unwrap()
                .records
                .len(),
            1
        );
        assert!(
            by_keys::<Logs>(&list, f, &["k2".into()], 10)
                .unwrap()
                .records
                .is_empty()
        );
    }

    #[test]
    fn search_filters_by_text_service_severity_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SplitStore::<Logs>::open(dir.path(), cfg()).unwrap();
        s.add(&[
            log(0, "payment", "bank timeout while charging", "a"),
            log(1, "payment", "bank timeout again", "b"),
            log(2, "order", "timeout reading cart", "c"),
            log(3, "order", "all good", "d"),
        ])
        .unwrap();
        s.commit(1).unwrap();
        let (list, f) = (s.split_list(), s.fields().clone());
        let search = |filter: LogFilter, range| {
            search_logs(&list, &f, &filter, range, 10)
                .unwrap()
                .records
                .into_iter()
                .map(|r| r.body)
                .collect::<Vec<_>>()
        };
        let text = |t: &str| LogFilter {
            text: Some(t.into()),
            ..Default::default()
        };
        // Newest first.
        assert_eq!(
            search(text("timeout"), TimeRange::ALL),
            vec![
                "timeout reading cart",
                "bank timeout again",
                "bank timeout while charging"
            ]
        );
        assert_eq!(
            search(text("timeout service:order"), TimeRange::ALL),
            vec!["timeout reading cart"]
        );
        assert_eq!(search(text("severity:ERROR"), TimeRange::ALL).len(), 2);
        let errors = LogFilter {
            min_severity: Some(17),
            service: Some("payment".into()),
            ..Default::default()
        };
        assert_eq!(search(errors, TimeRange::ALL), vec!["bank timeout again"]);
        assert_eq!(
            search(
                text("timeout"),
                TimeRange {
                    start: 1_000,
                    end: 1_001
                }
            ),
            vec!["bank timeout again", "bank timeout while charging"]
        );
        let bad = search_logs(&list, &f, &text("service:("), TimeRange::ALL, 10);
        assert!(matches!(bad, Err(StoreError::BadQuery(_))));
    }

    #[test]
    fn splits_roll_and_retention_deletes_whole_old_splits() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg();
        c.split_max_age = Duration::from_millis(1);
        c.retention_max_age = Some(Duration::from_secs(3600));
        let mut s = SplitStore::<Logs>::open(dir.path(), c).unwrap();
        // Event times near the epoch are far past the retention age.
        s.add(&[log(0, "order", "ancient", "old")]).unwrap();
        s.commit(1).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        s.maybe_roll();
        let mut fresh = log(1, "order", "fresh", "new");
        fresh.time_unix_nano = now_nano();
        s.add(&[fresh]).unwrap();
        s.commit(2).unwrap();
        assert_eq!(current_splits(&s.split_list()).len(), 2);
        // The split holding "ancient" was created only now: creation time protects it too.
        assert_eq!(s.apply_retention().unwrap(), 0);
        let mut c2 = cfg();
        c2.retention_max_age = Some(Duration::from_secs(3600));
        c2.retention_max_bytes = Some(1);
        drop(s);
        let mut s = SplitStore::<Logs>::open(dir.path(), c2).unwrap();
        // Over the byte limit: the oldest closed split goes; the active one stays.
        let removed = s.apply_retention().unwrap();
        assert!(removed >= 1, "removed {removed}");
        let list = s.split_list();
        let f = s.fields();
        assert!(
            by_keys::<Logs>(&list, f, &["old".into()], 10)
                .unwrap()
                .records
                .is_empty()
        );
        assert_eq!(
            by_keys::<Logs>(&list, f, &["new".into()], 10)
                .unwrap()
                .records
                .len(),
            1
        );
        assert_eq!(s.committed_seq(), 2);
    }

    #[test]
    fn a_far_future_event_time_does_not_keep_its_split_past_retention() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg();
        c.split_max_age = Duration::from_millis(1);
        c.retention_max_age = Some(Duration::from_millis(20));
        let mut s = SplitStore::<Logs>::open(dir.path(), c).unwrap();
        let mut liar = log(0, "order", "from the year 2200", "liar");
        liar.time_unix_nano = 7_258_118_400_000_000_000;
        s.add(&[liar]).unwrap();
        s.commit(1).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        s.maybe_roll();
        let mut fresh = log(1, "order", "fresh", "new");
        fresh.time_unix_nano = now_nano();
        s.add(&[fresh]).unwrap();
        s.commit(2).unwrap();
        assert_eq!(current_splits(&s.split_list()).len(), 2);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(
            s.apply_retention().unwrap(),
            1,
            "the future-dated split goes"
        );
        let list = s.split_list();
        assert!(
            by_keys::<Logs>(&list, s.fields(), &["liar".into()], 10)
                .unwrap()
                .records
                .is_empty()
        );
    }
}
