//! The outbox: webhook notifications kept on disk until their receiver takes them.
//!
//! Layout under the outbox directory (e.g. `<data_dir>/alerts/outbox/`):
//!
//! ```text
//! <receiver>/00000000000000000042.json   pending, oldest = lowest number
//! <receiver>/failed/00000000000000000007.json   permanently failed, with reason and time
//! ```
//!
//! The directory name of a receiver is its name with every byte outside `[A-Za-z0-9_-]`
//! written as `%XX`, so any name maps to a safe file name and back.
//!
//! A file is written as `<seq>.json.tmp`, synced, renamed to `<seq>.json` and the directory
//! is synced: a notification is on disk before [`Outbox::push`] returns. On open, `.tmp` files
//! are deleted and unreadable `.json` files are renamed to `.bad`.
//!
//! All methods do blocking file I/O (`std::fs`, with fsync) except [`Outbox::pending`],
//! [`Outbox::dropped`], [`Outbox::receivers`] and [`Outbox::notified`], which only read
//! memory. Async callers run the others in `tokio::task::spawn_blocking`.

use serde::{Deserialize, Serialize};
use skein_model::time::now_ms;
use skein_wal::durable::sync_dir;
use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;

/// Name of the subdirectory of a receiver's directory that holds failed notifications.
const FAILED_DIR: &str = "failed";
/// Longest encoded receiver directory name accepted.
const MAX_DIR_NAME: usize = 200;

/// Limits of the outbox.
#[derive(Debug, Clone)]
pub struct OutboxLimits {
    /// Pending notifications per receiver; when full, a push drops the oldest one.
    pub max_pending: usize,
    /// Failed notifications kept per receiver; the oldest are deleted first.
    pub max_failed: usize,
    /// Largest body accepted by [`Outbox::push`], in bytes of JSON.
    pub max_body_bytes: usize,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        OutboxLimits {
            max_pending: 10_000,
            max_failed: 1_000,
            max_body_bytes: 4 * 1024 * 1024,
        }
    }
}

/// One queued notification.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    /// Unique id, also sent as the `Idempotency-Key` header.
    pub id: String,
    /// Name of the receiver.
    pub receiver: String,
    /// When it was queued, in Unix milliseconds.
    pub created_ms: i64,
    /// Delivery attempts recorded so far.
    pub attempts: u32,
    /// The webhook payload.
    pub body: serde_json::Value,
}

/// A notification that will not be delivered: its id, when it was queued and given up,
/// the attempts made and why (the API's shape).
pub use skein_model::alert_api::FailedNotificationInfo as FailedNotification;

/// The file of a failed notification: the notification plus why and when it failed.
#[derive(Serialize)]
struct FailedRecord<'a> {
    id: &'a str,
    receiver: &'a str,
    created_ms: i64,
    attempts: u32,
    body: &'a serde_json::Value,
    failed_ms: i64,
    reason: &'a str,
}

/// A durable queue of notifications per receiver. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
    /// In a cluster: the shared queue every method goes to instead of the directory.
    remote: Option<Arc<dyn crate::shared::RemoteOutbox>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("dir", &self.inner.root)
            .finish_non_exhaustive()
    }
}

struct Inner {
    root: PathBuf,
    limits: OutboxLimits,
    queues: Mutex<BTreeMap<String, Arc<Queue>>>,
}

/// One receiver's queue. `state` is held during file I/O; the atomics can be read without
/// waiting for it.
struct Queue {
    dir: PathBuf,
    notify: Arc<Notify>,
    on_disk: AtomicBool,
    pending_len: AtomicUsize,
    dropped: AtomicU64,
    state: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    /// Pending notifications, oldest first: sequence number and id.
    pending: VecDeque<(u64, String)>,
    /// Sequence numbers of the files in `failed/`, oldest first.
    failed: VecDeque<u64>,
    next_seq: u64,
}

impl Queue {
    fn new(dir: PathBuf) -> Queue {
        Queue {
            dir,
            notify: Arc::new(Notify::new()),
            on_disk: AtomicBool::new(false),
            pending_len: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            state: Mutex::new(QueueState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_len(&self, st: &QueueState) {
        self.pending_len.store(st.pending.len(), Ordering::Relaxed);
    }

    fn failed_dir(&self) -> PathBuf {
        self.dir.join(FAILED_DIR)
    }
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir`, loading every receiver's pending queue.
    pub fn open(dir: &Path, limits: OutboxLimits) -> io::Result<Outbox> {
        fs::create_dir_all(dir)?;
        let mut queues = BTreeMap::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let file_name = entry.file_name();
            let Some(receiver) = file_name.to_str().and_then(decode_name) else {
                tracing::warn!(dir = %entry.path().display(), "outbox: ignoring directory that is not a receiver");
                continue;
            };
            let queue = load_queue(&receiver, entry.path())?;
            queues.insert(receiver, Arc::new(queue));
        }
        Ok(Outbox {
            inner: Arc::new(Inner {
                root: dir.to_path_buf(),
                limits,
                queues: Mutex::new(queues),
            }),
            remote: None,
        })
    }

    /// An outbox over a queue shared by the nodes of a cluster (see [`crate::shared`]).
    pub fn remote(queue: Arc<dyn crate::shared::RemoteOutbox>) -> Outbox {
        Outbox {
            inner: Arc::new(Inner {
                root: PathBuf::new(),
                limits: OutboxLimits {
                    max_body_bytes: queue.max_body_bytes(),
                    ..OutboxLimits::default()
                },
                queues: Mutex::new(BTreeMap::new()),
            }),
            remote: Some(queue),
        }
    }

    /// The queue of a receiver, created in memory if new.
    fn queue(&self, receiver: &str) -> Arc<Queue> {
        let mut queues = self.inner.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues
            .entry(receiver.to_string())
            .or_insert_with(|| Arc::new(Queue::new(self.inner.root.join(encode_name(receiver)))))
            .clone()
    }

    /// The queue of a receiver if it is known.
    fn existing(&self, receiver: &str) -> Option<Arc<Queue>> {
        let queues = self.inner.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues.get(receiver).cloned()
    }

    /// Queues a body for a receiver, durably; returns the notification id (also the
    /// idempotency key). Ids are `<receiver dir name>-<seq>-<created_ms>`: plain ASCII, and
    /// unique across restarts.
    /// When the receiver's queue is full, the oldest pending notification is dropped.
    pub fn push(&self, receiver: &str, body: serde_json::Value) -> io::Result<String> {
        if receiver.is_empty() || encode_name(receiver).len() > MAX_DIR_NAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "receiver name is empty or too long",
            ));
        }
        let body_len = json_len(&body)?;
        if body_len > self.inner.limits.max_body_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "notification body is {body_len} bytes, more than the limit of {}",
                    self.inner.limits.max_body_bytes
                ),
            ));
        }
        if let Some(r) = &self.remote {
            return r.push(receiver, body);
        }
        let queue = self.queue(receiver);
        let mut st = queue.lock();
        if !queue.on_disk.load(Ordering::Relaxed) {
            fs::create_dir_all(&queue.dir)?;
            sync_dir(&self.inner.root)?;
            queue.on_disk.store(true, Ordering::Relaxed);
        }
        let seq = st.next_seq;
        let created_ms = now_ms();
        let n = Notification {
            id: format!("{}-{seq}-{created_ms}", encode_name(receiver)),
            receiver: receiver.to_string(),
            created_ms,
            attempts: 0,
            body,
        };
        // Never reuse a number, even after a failed write that may have left a file.
        st.next_seq = seq + 1;
        write_durable(&queue.dir, seq, &serde_json::to_vec(&n)?)?;
        st.pending.push_back((seq, n.id.clone()));
        while st.pending.len() > self.inner.limits.max_pending.max(1) {
            let Some((old_seq, old_id)) = st.pending.pop_front() else {
                break;
            };
            remove_if_exists(&json_path(&queue.dir, old_seq))?;
            queue.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(receiver, id = %old_id, "outbox full: dropped the oldest pending notification");
        }
        queue.set_len(&st);
        drop(st);
        queue.notify.notify_one();
        Ok(n.id)
    }

    /// The oldest pending notification of a receiver, if any. A file that became unreadable
    /// is set aside as `.bad` and the next one is returned.
    pub fn peek(&self, receiver: &str) -> io::Result<Option<Notification>> {
        if let Some(r) = &self.remote {
            return r.peek(receiver);
        }
        let Some(queue) = self.existing(receiver) else {
            return Ok(None);
        };
        let mut st = queue.lock();
        while let Some((seq, id)) = st.pending.front().cloned() {
            let path = json_path(&queue.dir, seq);
            match read_notification(&path) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    tracing::warn!(receiver, %id, "outbox: pending notification file is gone");
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    tracing::warn!(receiver, %id, error = %e, "outbox: unreadable notification set aside as .bad");
                    fs::rename(&path, path.with_extension("bad"))?;
                }
                Err(e) => return Err(e),
            }
            st.pending.pop_front();
            queue.set_len(&st);
        }
        Ok(None)
    }

    /// Removes a delivered notification. An id that is no longer pending (already removed,
    /// or dropped because the queue was full) is not an error.
    pub fn done(&self, receiver: &str, id: &str) -> io::Result<()> {
        if let Some(r) = &self.remote {
            return r.done(receiver, id);
        }
        let Some(queue) = self.existing(receiver) else {
            return Ok(());
        };
        let mut st = queue.lock();
        let Some(pos) = position(&st, id) else {
            return Ok(());
        };
        let (seq, _) = st.pending[pos];
        remove_if_exists(&json_path(&queue.dir, seq))?;
        sync_dir(&queue.dir)?;
        st.pending.remove(pos);
        queue.set_len(&st);
        Ok(())
    }

    /// Moves a notification to `failed/` with the reason and the time. Keeps at most
    /// `max_failed` there, deleting the oldest. Unknown ids give `ErrorKind::NotFound`.
    pub fn fail(&self, receiver: &str, id: &str, reason: &str) -> io::Result<()> {
        if let Some(r) = &self.remote {
            return r.fail(receiver, id, reason);
        }
        let queue = self.existing(receiver).ok_or_else(|| not_pending(id))?;
        let mut st = queue.lock();
        let pos = position(&st, id).ok_or_else(|| not_pending(id))?;
        let (seq, _) = st.pending[pos];
        let path = json_path(&queue.dir, seq);
        match read_notification(&path) {
            Ok(n) => {
                let record = FailedRecord {
                    id: &n.id,
                    receiver: &n.receiver,
                    created_ms: n.created_ms,
                    attempts: n.attempts,
                    body: &n.body,
                    failed_ms: now_ms(),
                    reason,
                };
                let failed_dir = queue.failed_dir();
                if !failed_dir.exists() {
                    fs::create_dir_all(&failed_dir)?;
                    sync_dir(&queue.dir)?;
                }
                write_durable(&failed_dir, seq, &serde_json::to_vec(&record)?)?;
                if let Err(pos) = st.failed.binary_search(&seq) {
                    st.failed.insert(pos, seq);
                }
                remove_if_exists(&path)?;
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!(receiver, id, error = %e, "outbox: unreadable notification set aside as .bad");
                fs::rename(&path, path.with_extension("bad"))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        sync_dir(&queue.dir)?;
        st.pending.remove(pos);
        queue.set_len(&st);
        let mut trimmed = false;
        while st.failed.len() > self.inner.limits.max_failed {
            let Some(old) = st.failed.pop_front() else {
                break;
            };
            remove_if_exists(&json_path(&queue.failed_dir(), old))?;
            trimmed = true;
        }
        if trimmed {
            sync_dir(&queue.failed_dir())?;
        }
        Ok(())
    }

    /// Records one more delivery attempt; the file is rewritten durably under the same name,
    /// so attempts survive restarts. Unknown ids give `ErrorKind::NotFound`.
    pub fn attempted(&self, receiver: &str, id: &str) -> io::Result<()> {
        if let Some(r) = &self.remote {
            return r.attempted(receiver, id);
        }
        let queue = self.existing(receiver).ok_or_else(|| not_pending(id))?;
        let st = queue.lock();
        let (seq, _) = st.pending[position(&st, id).ok_or_else(|| not_pending(id))?];
        let mut n = read_notification(&json_path(&queue.dir, seq))?;
        n.attempts = n.attempts.saturating_add(1);
        write_durable(&queue.dir, seq, &serde_json::to_vec(&n)?)?;
        drop(st);
        Ok(())
    }

    /// Largest body [`Outbox::push`] takes, in bytes of JSON.
    pub fn max_body_bytes(&self) -> usize {
        self.inner.limits.max_body_bytes
    }

    /// Number of pending notifications of a receiver.
    pub fn pending(&self, receiver: &str) -> usize {
        if let Some(r) = &self.remote {
            return r.pending(receiver);
        }
        self.existing(receiver)
            .map_or(0, |q| q.pending_len.load(Ordering::Relaxed))
    }

    /// Permanently failed notifications, newest first, at most `limit`.
    pub fn failed(&self, receiver: &str, limit: usize) -> Vec<FailedNotification> {
        if let Some(r) = &self.remote {
            return r.failed(receiver, limit);
        }
        let Some(queue) = self.existing(receiver) else {
            return Vec::new();
        };
        let st = queue.lock();
        let dir = queue.failed_dir();
        st.failed
            .iter()
            .rev()
            .filter_map(|&seq| {
                let bytes = fs::read(json_path(&dir, seq)).ok()?;
                serde_json::from_slice::<FailedNotification>(&bytes).ok()
            })
            .take(limit)
            .collect()
    }

    /// Receivers with a directory on disk (also those no longer configured), sorted.
    pub fn receivers(&self) -> Vec<String> {
        let queues = self.inner.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues
            .iter()
            .filter(|(_, q)| q.on_disk.load(Ordering::Relaxed))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Pending notifications dropped because the queue was full, since start.
    pub fn dropped(&self, receiver: &str) -> u64 {
        self.existing(receiver)
            .map_or(0, |q| q.dropped.load(Ordering::Relaxed))
    }

    /// The signal of a receiver: each push calls `notify_one` on it. A delivery task that
    /// found the queue empty awaits `notified()` on it; a push made in between is not missed,
    /// because `notify_one` keeps a permit when nobody waits.
    pub fn notified(&self, receiver: &str) -> Arc<Notify> {
        if let Some(r) = &self.remote {
            return r.notified(receiver);
        }
        self.queue(receiver).notify.clone()
    }
}

/// Loads one receiver directory: deletes `.tmp` files, sets aside unreadable ones, and
/// continues the sequence after the highest number seen.
fn load_queue(receiver: &str, dir: PathBuf) -> io::Result<Queue> {
    let queue = Queue::new(dir);
    queue.on_disk.store(true, Ordering::Relaxed);
    let mut st = QueueState::default();
    let mut max_seq: Option<u64> = None;
    let mut changed = false;
    let mut pending = Vec::new();
    for entry in fs::read_dir(&queue.dir)? {
        let entry = entry?;
        let path = entry.path();
        let Some((seq, ext)) = parse_file_name(&path) else {
            continue;
        };
        max_seq = max_seq.max(Some(seq));
        match ext {
            // A write cut short by a crash (`.tmp` from older versions).
            "json.tmp" | "tmp" => {
                remove_if_exists(&path)?;
                changed = true;
            }
            "json" => match read_notification(&path) {
                Ok(n) if n.receiver == receiver => pending.push((seq, n.id)),
                Ok(_) => {
                    tracing::warn!(file = %path.display(), "outbox: notification of another receiver set aside as .bad");
                    fs::rename(&path, path.with_extension("bad"))?;
                    changed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    tracing::warn!(file = %path.display(), error = %e, "outbox: unreadable notification set aside as .bad");
                    fs::rename(&path, path.with_extension("bad"))?;
                    changed = true;
                }
                Err(e) => return Err(e),
            },
            _ => {}
        }
    }
    if changed {
        sync_dir(&queue.dir)?;
    }
    let failed_dir = queue.failed_dir();
    if failed_dir.is_dir() {
        let mut failed = Vec::new();
        for entry in fs::read_dir(&failed_dir)? {
            let path = entry?.path();
            match parse_file_name(&path) {
                Some((seq, "json")) => {
                    failed.push(seq);
                    max_seq = max_seq.max(Some(seq));
                }
                Some((seq, "json.tmp" | "tmp")) => {
                    max_seq = max_seq.max(Some(seq));
                    remove_if_exists(&path)?;
                }
                _ => {}
            }
        }
        failed.sort_unstable();
        st.failed = failed.into();
    }
    pending.sort_unstable_by_key(|(seq, _)| *seq);
    st.pending = pending.into();
    st.next_seq = max_seq.map_or(0, |s| s.saturating_add(1));
    queue.set_len(&st);
    *queue.lock() = st;
    Ok(queue)
}

fn position(st: &QueueState, id: &str) -> Option<usize> {
    st.pending.iter().position(|(_, pid)| pid == id)
}

fn not_pending(id: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("notification {id} is not pending"),
    )
}

/// Splits `<20 digits>.<ext>` into the sequence number and the extension.
fn parse_file_name(path: &Path) -> Option<(u64, &str)> {
    let name = path.file_name()?.to_str()?;
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, ext))
}

fn json_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.json"))
}

/// Reads a notification; a file that is not valid JSON of the right shape gives
/// `ErrorKind::InvalidData`.
fn read_notification(path: &Path) -> io::Result<Notification> {
    let bytes = fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Writes `<seq>.json` durably ([`skein_wal::durable`]: through `<seq>.json.tmp`).
fn write_durable(dir: &Path, seq: u64, bytes: &[u8]) -> io::Result<()> {
    skein_wal::durable::write_file(&json_path(dir, seq), bytes)
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Size of a value as JSON, without keeping the bytes.
fn json_len(value: &serde_json::Value) -> io::Result<usize> {
    struct Counter(usize);
    impl Write for Counter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, value)?;
    Ok(counter.0)
}

/// A receiver name as a directory name: bytes outside `[A-Za-z0-9_-]` become `%XX`.
fn encode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The receiver name of a directory name, if it is one [`encode_name`] makes.
fn decode_name(dir_name: &str) -> Option<String> {
    let bytes = dir_name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    let name = String::from_utf8(out).ok()?;
    (!name.is_empty() && encode_name(&name) == dir_name).then_some(name)
}
