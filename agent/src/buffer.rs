//! The disk buffer: every batch the agent ships is appended here first, already encoded and
//! compressed, and sent from here. A collector outage only fills the buffer; nothing is lost
//! until it is full, and then `buffer.when_full` decides (block, or drop the oldest).
//!
//! It is a segmented log ([`skein_wal::Wal`]) plus a cursor: the seq of the first
//! record the collector has not acknowledged, saved in `cursor` next to the segments. Each
//! record also carries the file positions its lines end at, so on start the agent resumes
//! every file after the last line already in the buffer (see [`Buffer::positions`]).
//!
//! Locks: the log sits behind one mutex, held across an append's fsync and a trim's
//! deletions, so only blocking threads take it ([`Buffer::append`], [`Buffer::read`],
//! [`Buffer::save_and_trim`]). What async code touches is lock-free: the cursor
//! ([`Buffer::ack`], [`Buffer::cursor`]), the fill ([`Buffer::fill`]) and the `appended`
//! notice. The cursor file is written under its own mutex, not the log's.

use crate::tail::FileId;
use skein_wal::{Entry, SyncPolicy, Wal, WalConfig, WalError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a buffered batch holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// An `ExportLogsServiceRequest`.
    Logs,
    /// An `ExportTraceServiceRequest`.
    Traces,
    /// An `ExportMetricsServiceRequest`.
    Metrics,
}

impl Signal {
    fn kind(self) -> u8 {
        match self {
            Signal::Logs => 1,
            Signal::Traces => 2,
            Signal::Metrics => 3,
        }
    }
    fn from_kind(k: u8) -> Option<Signal> {
        match k {
            1 => Some(Signal::Logs),
            2 => Some(Signal::Traces),
            3 => Some(Signal::Metrics),
            _ => None,
        }
    }
    /// The OTLP/HTTP path.
    pub fn path(self) -> &'static str {
        match self {
            Signal::Logs => "/v1/logs",
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
        }
    }
    /// The counter label.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Traces => "spans",
            Signal::Metrics => "metrics",
        }
    }
}

/// How a body is compressed, as sent in `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    /// Not compressed.
    Identity,
    /// zstd.
    Zstd,
    /// gzip.
    Gzip,
}

impl BodyEncoding {
    fn code(self) -> u8 {
        match self {
            BodyEncoding::Identity => 0,
            BodyEncoding::Zstd => 1,
            BodyEncoding::Gzip => 2,
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(BodyEncoding::Identity),
            1 => Some(BodyEncoding::Zstd),
            2 => Some(BodyEncoding::Gzip),
            _ => None,
        }
    }
    /// The `Content-Encoding` header value, if any.
    pub fn header(self) -> Option<&'static str> {
        match self {
            BodyEncoding::Identity => None,
            BodyEncoding::Zstd => Some("zstd"),
            BodyEncoding::Gzip => Some("gzip"),
        }
    }
}

/// Compresses an encoded export request as configured. zstd runs at level 1: most of the
/// ratio for a fraction of the CPU of the default level.
pub fn compress(body: &[u8], how: crate::config::Compression) -> (BodyEncoding, Vec<u8>) {
    use crate::config::Compression;
    match how {
        Compression::Zstd => match zstd::bulk::compress(body, 1) {
            Ok(c) => (BodyEncoding::Zstd, c),
            Err(_) => (BodyEncoding::Identity, body.to_vec()),
        },
        Compression::Gzip => {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            match e.write_all(body).and_then(|()| e.finish()) {
                Ok(c) => (BodyEncoding::Gzip, c),
                Err(_) => (BodyEncoding::Identity, body.to_vec()),
            }
        }
        Compression::None => (BodyEncoding::Identity, body.to_vec()),
    }
}

/// One batch read back from the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Its seq in the buffer.
    pub seq: u64,
    /// What it holds.
    pub signal: Signal,
    /// Records in it.
    pub records: u32,
    /// File positions reached by its lines.
    pub positions: Vec<(FileId, u64)>,
    /// Body compression.
    pub encoding: BodyEncoding,
    /// The encoded (protobuf, compressed) export request.
    pub body: Vec<u8>,
}

const VERSION: u8 = 1;
const POS_LEN: usize = 32;

/// Encodes a batch as a buffer record payload.
fn encode(
    records: u32,
    positions: &[(FileId, u64)],
    encoding: BodyEncoding,
    body: &[u8],
) -> Vec<u8> {
    let n = positions.len().min(u16::MAX as usize);
    let mut out = Vec::with_capacity(8 + n * POS_LEN + body.len());
    out.push(VERSION);
    out.push(encoding.code());
    out.extend_from_slice(&records.to_le_bytes());
    out.extend_from_slice(&(n as u16).to_le_bytes());
    for (id, off) in &positions[..n] {
        for v in [id.dev, id.ino, id.fp, *off] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out.extend_from_slice(body);
    out
}

fn u64_at(p: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(p.get(at..at + 8)?.try_into().ok()?))
}

/// Decodes a buffer record; None when it is not one of ours (never happens unless the files
/// were edited by hand).
fn decode(seq: u64, kind: u8, p: Vec<u8>) -> Option<Batch> {
    let signal = Signal::from_kind(kind)?;
    if *p.first()? != VERSION {
        return None;
    }
    let encoding = BodyEncoding::from_code(*p.get(1)?)?;
    let records = u32::from_le_bytes(p.get(2..6)?.try_into().ok()?);
    let n = u16::from_le_bytes(p.get(6..8)?.try_into().ok()?) as usize;
    let mut positions = Vec::with_capacity(n);
    let mut at = 8;
    for _ in 0..n {
        let id = FileId {
            dev: u64_at(&p, at)?,
            ino: u64_at(&p, at + 8)?,
            fp: u64_at(&p, at + 16)?,
        };
        positions.push((id, u64_at(&p, at + 24)?));
        at += POS_LEN;
    }
    let body = p.get(at..)?.to_vec();
    Some(Batch {
        seq,
        signal,
        records,
        positions,
        encoding,
        body,
    })
}

/// Why an append failed.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// The buffer is at its size limit (and the policy is to block).
    #[error("the disk buffer is full (buffer.max_mb)")]
    Full,
    /// The disk failed.
    #[error("disk buffer: {0}")]
    Io(String),
}

/// The disk buffer. Shared by the batcher, the receiver, host metrics and the shipper.
pub struct Buffer {
    /// The log. Held across fsyncs and file deletions: blocking threads only.
    wal: Mutex<Wal>,
    /// First seq not acknowledged by the collector. Only ever grows.
    cursor: AtomicU64,
    /// The cursor last written to `cursor_file`; the mutex also keeps two saves apart.
    cursor_saved: Mutex<u64>,
    /// Bytes of the log on disk, updated after each append and trim.
    disk_bytes: AtomicU64,
    cursor_file: PathBuf,
    max_bytes: u64,
    /// Wakes the shipper after an append.
    pub appended: tokio::sync::Notify,
}

fn io(e: impl std::fmt::Display) -> BufferError {
    BufferError::Io(e.to_string())
}

impl Buffer {
    /// Opens (or creates) the buffer in `dir`.
    pub fn open(dir: &Path, max_bytes: u64, segment_bytes: u64) -> Result<Buffer, BufferError> {
        let (wal, report) = Wal::open(WalConfig {
            dir: dir.to_path_buf(),
            segment_bytes,
            max_bytes,
            sync: SyncPolicy::EveryBatch,
        })
        .map_err(io)?;
        if report.truncated_bytes > 0 {
            tracing::warn!(
                bytes = report.truncated_bytes,
                "disk buffer: cut a torn tail left by a crash"
            );
        }
        let cursor_file = dir.join("cursor");
        let saved = match std::fs::read_to_string(&cursor_file) {
            Ok(s) => s.trim().parse::<u64>().map_err(|_| {
                BufferError::Io(format!(
                    "{}: not a sequence number: {s:?}; delete it to resend the whole buffer",
                    cursor_file.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io(format!("{}: {e}", cursor_file.display()))),
        };
        let cursor = saved.clamp(wal.first_seq(), wal.next_seq());
        Ok(Buffer {
            disk_bytes: AtomicU64::new(wal.disk_bytes()),
            wal: Mutex::new(wal),
            cursor: AtomicU64::new(cursor),
            cursor_saved: Mutex::new(saved),
            cursor_file,
            max_bytes,
            appended: tokio::sync::Notify::new(),
        })
    }

    /// The log's lock. Held across fsyncs: never call from async code.
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Wal>, BufferError> {
        self.wal
            .lock()
            .map_err(|_| BufferError::Io("buffer lock poisoned".into()))
    }

    /// Holds the log's lock as a slow fsync would, for tests of who waits on it.
    #[cfg(test)]
    pub(crate) fn hold_log_lock(&self) -> std::sync::MutexGuard<'_, Wal> {
        match self.wal.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Appends a batch (durably: fsynced). With `drop_oldest`, makes room by deleting the
    /// oldest segment and returns how many unsent records that dropped.
    pub fn append(
        &self,
        signal: Signal,
        records: u32,
        positions: &[(FileId, u64)],
        encoding: BodyEncoding,
        body: &[u8],
        drop_oldest: bool,
    ) -> Result<u64, BufferError> {
        let payload = encode(records, positions, encoding, body);
        let mut dropped = 0u64;
        let mut g = self.lock()?;
        let res = loop {
            match g.append_batch(&[Entry {
                kind: signal.kind(),
                payload: &payload,
            }]) {
                Ok(_) => break Ok(()),
                Err(WalError::Full { .. }) if drop_oldest => {
                    let Some(end) = g.oldest_segment_end() else {
                        break Err(BufferError::Full);
                    };
                    let cursor = self.cursor.load(Ordering::SeqCst);
                    dropped += count_unsent(&g, cursor, end);
                    if let Err(e) = g.truncate_before(end) {
                        break Err(io(e));
                    }
                    self.cursor.fetch_max(g.first_seq(), Ordering::SeqCst);
                }
                Err(WalError::Full { .. }) => break Err(BufferError::Full),
                Err(e) if e.is_disk_full() => break Err(BufferError::Full),
                Err(e) => break Err(io(e)),
            }
        };
        self.disk_bytes.store(g.disk_bytes(), Ordering::Relaxed);
        drop(g);
        res?;
        self.appended.notify_one();
        Ok(dropped)
    }

    /// Up to `max` unsent batches starting at `from` (at least the cursor). Reads files and
    /// waits for appends in progress: blocking threads only.
    pub fn read(&self, from: u64, max: usize) -> Result<Vec<Batch>, BufferError> {
        let reader = {
            let g = self.lock()?;
            g.read_from(from.max(self.cursor.load(Ordering::SeqCst)))
                .map_err(io)?
        };
        let mut out = Vec::new();
        for r in reader {
            let r = r.map_err(io)?;
            match decode(r.seq, r.kind, r.payload) {
                Some(b) => out.push(b),
                None => tracing::warn!(
                    seq = r.seq,
                    "disk buffer: skipping a record of an unknown kind"
                ),
            }
            if out.len() >= max {
                break;
            }
        }
        Ok(out)
    }

    /// The collector acknowledged (or permanently refused) every batch before `seq`. In
    /// memory only, no lock: safe from async code. [`Buffer::save_and_trim`] makes it durable.
    pub fn ack(&self, seq: u64) {
        self.cursor.fetch_max(seq, Ordering::SeqCst);
    }

    /// First unacknowledged seq. No lock.
    pub fn cursor(&self) -> u64 {
        self.cursor.load(Ordering::SeqCst)
    }

    /// Saves the cursor as it is now; see [`Buffer::save_and_trim_to`].
    pub fn save_and_trim(&self) -> Result<(), BufferError> {
        self.save_and_trim_to(self.cursor())
    }

    /// Saves `cursor` durably ([`skein_wal::durable`]), then deletes segments wholly before
    /// it. `cursor` is a value [`Buffer::cursor`] gave, read before the checkpoints of the
    /// acknowledged lines were saved, so the saved cursor is never ahead of them. Writes
    /// and deletes files: blocking threads only.
    pub fn save_and_trim_to(&self, cursor: u64) -> Result<(), BufferError> {
        let mut saved = self
            .cursor_saved
            .lock()
            .map_err(|_| BufferError::Io("buffer cursor lock poisoned".into()))?;
        // Not only forward: after a crash the file may name a seq past the end of the log,
        // and the first save brings it back to the real cursor.
        if cursor != *saved {
            skein_wal::durable::write_file(&self.cursor_file, cursor.to_string().as_bytes())
                .map_err(|e| io(format!("{}: {e}", self.cursor_file.display())))?;
            *saved = cursor;
        }
        let mut g = self.lock()?;
        let res = g.truncate_before(cursor).map_err(io);
        self.disk_bytes.store(g.disk_bytes(), Ordering::Relaxed);
        res.map(|_| ())
    }

    /// Bytes on disk and the limit. No lock.
    pub fn fill(&self) -> (u64, u64) {
        (self.disk_bytes.load(Ordering::Relaxed), self.max_bytes)
    }

    /// The position of every file in the buffer, the latest record's winning (a file
    /// truncated and read again from its start has a smaller offset in a later record). A
    /// file found here resumes from this position rather than its checkpoint: the buffer only
    /// holds lines newer than the checkpoints.
    pub fn positions(&self) -> Result<HashMap<FileId, u64>, BufferError> {
        let reader = {
            let g = self.lock()?;
            g.read_from(g.first_seq()).map_err(io)?
        };
        let mut out: HashMap<FileId, u64> = HashMap::new();
        for r in reader {
            let r = r.map_err(io)?;
            if let Some(b) = decode(r.seq, r.kind, r.payload) {
                for (id, off) in b.positions {
                    out.insert(id, off);
                }
            }
        }
        Ok(out)
    }
}

/// Records in `[from, end)` (unsent ones about to be dropped).
fn count_unsent(wal: &Wal, from: u64, end: u64) -> u64 {
    if from >= end {
        return 0;
    }
    let Ok(reader) = wal.read_from(from) else {
        return 0;
    };
    let mut n = 0u64;
    for r in reader {
        let Ok(r) = r else { break };
        if r.seq >= end {
            break;
        }
        if let Some(b) = decode(r.seq, r.kind, r.payload) {
            n += u64::from(b.records);
        }
    }
    n
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn id(n: u64) -> FileId {
        FileId {
            dev: 1,
            ino: n,
            fp: 7,
        }
    }

    #[test]
    fn batches_round_trip_and_resume_after_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let b = Buffer::open(dir.path(), 1 << 20, 1 << 16).unwrap();
        for i in 0..3u64 {
            b.append(
                Signal::Logs,
                10,
                &[(id(1), 100 * (i + 1))],
                BodyEncoding::Zstd,
                b"body",
                false,
            )
            .unwrap();
        }
        let got = b.read(0, 10).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].positions, vec![(id(1), 300)]);
        assert_eq!(got[0].body, b"body");
        b.ack(got[1].seq + 1);
        b.save_and_trim().unwrap();
        drop(b);
        let b = Buffer::open(dir.path(), 1 << 20, 1 << 16).unwrap();
        let left = b.read(0, 10).unwrap();
        assert_eq!(left.len(), 1, "acknowledged batches are not sent again");
        assert_eq!(left[0].positions[0].1, 300);
        assert_eq!(b.positions().unwrap()[&id(1)], 300);
    }

    #[test]
    fn full_blocks_or_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let b = Buffer::open(dir.path(), 64 * 1024, 16 * 1024).unwrap();
        let body = vec![7u8; 4000];
        let mut full = false;
        for _ in 0..100 {
            match b.append(Signal::Logs, 5, &[], BodyEncoding::Identity, &body, false) {
                Ok(_) => {}
                Err(BufferError::Full) => {
                    full = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(full, "the size limit is enforced");
        let before = b.read(0, 1000).unwrap().len();
        let dropped = b
            .append(Signal::Logs, 5, &[], BodyEncoding::Identity, &body, true)
            .unwrap();
        assert!(
            dropped >= 5,
            "dropping the oldest segment counts its records"
        );
        let after = b.read(0, 1000).unwrap();
        assert!(after.len() < before + 1);
        assert!(b.fill().0 <= 64 * 1024);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

        #[test]
        fn the_cursor_survives_a_reopen_wherever_it_is(n in 1u64..12, acked in 0u64..14) {
            let dir = tempfile::tempdir().unwrap();
            let b = Buffer::open(dir.path(), 1 << 20, 1 << 12).unwrap();
            for i in 0..n {
                b.append(Signal::Logs, 1, &[(id(1), i + 1)], BodyEncoding::Identity, &[i as u8; 700], false)
                    .unwrap();
            }
            let all = b.read(0, 100).unwrap();
            proptest::prop_assert_eq!(all.len() as u64, n);
            let first = all[0].seq;
            let upto = first + acked.min(n);
            b.ack(upto);
            b.save_and_trim().unwrap();
            drop(b);
            let b = Buffer::open(dir.path(), 1 << 20, 1 << 12).unwrap();
            let left = b.read(0, 100).unwrap();
            proptest::prop_assert_eq!(left.len() as u64, n - acked.min(n));
            if let Some(l) = left.first() {
                proptest::prop_assert_eq!(l.seq, upto);
            }
        }

        #[test]
        fn any_cursor_file_opens_or_names_the_file(text in "\\PC{0,30}") {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("cursor"), &text).unwrap();
            match Buffer::open(dir.path(), 1 << 20, 1 << 16) {
                Ok(b) => proptest::prop_assert!(b.read(0, 10).unwrap().is_empty()),
                Err(e) => proptest::prop_assert!(e.to_string().contains("cursor"), "{}", e),
            }
        }
    }
}
