//! Durable, append-only write-ahead log.
//!
//! The collector appends each accepted batch here before acknowledging it;
//! the indexer later reads records back by sequence number, and the log is
//! truncated (whole segment files at a time) once indexes have committed.
//!
//! Records live in segment files named after their first seq (the
//! `segment` and `record` submodules describe the layouts). Appends go to the last
//! segment as one `write_all` per batch, followed by an fsync according to
//! [`SyncPolicy`]. Any failure while appending is undone by truncating the
//! segment back to where it was, so a full disk leaves the log exactly as it
//! was and appends resume once space returns. On open, recovery checks
//! every record and cuts off a torn tail of the last segment.
//!
//! Trade-offs: durability is bought with an fsync per batch (or per
//! interval, if the caller accepts losing the last interval in a crash);
//! truncation is coarse, by whole segment, so up to one segment of already
//! indexed data lingers on disk; and there is no index, so `read_from`
//! scans record headers from the start of the segment holding `from`.
//!
//! The log assumes it is the only writer of its directory; it takes no lock,
//! so opening the same directory twice at once corrupts it.
//!
//! [`durable`] is the one way Skein replaces a state file (checkpoints, cursors, registries,
//! alert state, notifications, metric blocks): a temporary file, fsync, rename, then an fsync
//! of the directory, so a crash leaves either the old file or the new one, never a torn one.
//! The crate knows nothing of what the records hold: the payload contract (kinds, encoding)
//! is the model's `skein_model::batch`.

pub mod durable;
mod error;
mod reader;
mod record;
mod recovery;
mod segment;
#[cfg(test)]
mod tests;

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use error::WalError;
pub use reader::WalReader;
pub use record::{HEADER_LEN, MAX_PAYLOAD};

use reader::SegmentSnap;
use segment::SegmentMeta;

/// A batch buffer larger than this is released after use rather than kept
/// for the next append, so one huge batch does not pin its memory forever.
const KEEP_BUF_BYTES: usize = 4 * 1024 * 1024;

/// When appended data is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `sync_data` at the end of every `append_batch`: an `Ok` means the
    /// batch is on stable storage.
    EveryBatch,
    /// `sync_data` at most once per interval: `append_batch` syncs when the
    /// last sync is at least this old, and [`Wal::sync`] syncs on demand.
    /// Batches acknowledged since the last sync can be lost in a crash
    /// (never corrupted: recovery cuts them off as a torn tail).
    Interval(Duration),
}

/// Configuration for [`Wal::open`].
#[derive(Debug, Clone)]
pub struct WalConfig {
    /// Directory holding the segment files; created if missing.
    pub dir: PathBuf,
    /// A new segment is started when a batch would take the current one
    /// past this size. A batch is never split, so a single batch larger
    /// than this makes a segment larger than this. Default 64 MiB.
    pub segment_bytes: u64,
    /// Limit on the total size of all segments; `append_batch` fails with
    /// [`WalError::Full`] rather than exceed it. The segment being appended
    /// to is never truncated, so keep this well above `segment_bytes`.
    /// Default 1 GiB.
    pub max_bytes: u64,
    /// When to fsync.
    pub sync: SyncPolicy,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            dir: PathBuf::from("data/wal"),
            segment_bytes: 64 * 1024 * 1024,
            max_bytes: 1024 * 1024 * 1024,
            sync: SyncPolicy::EveryBatch,
        }
    }
}

/// One record to append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Caller-defined record type, stored and returned verbatim.
    pub kind: u8,
    /// Record body, at most [`MAX_PAYLOAD`] bytes.
    pub payload: &'a [u8],
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Sequence number assigned at append.
    pub seq: u64,
    /// Caller-defined record type.
    pub kind: u8,
    /// Record body.
    pub payload: Vec<u8>,
}

/// What [`Wal::open`] found on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files in use after recovery.
    pub segments: usize,
    /// Valid records found.
    pub records: u64,
    /// Bytes cut off the end of the last segment as a torn tail.
    pub truncated_bytes: u64,
    /// Oldest seq on disk (equal to `next_seq` when there are no records).
    pub first_seq: u64,
    /// Seq the next appended record will get.
    pub next_seq: u64,
}

/// The segment currently appended to.
#[derive(Debug)]
struct Active {
    first_seq: u64,
    path: PathBuf,
    /// Bytes of complete, acknowledged records; the file may briefly be
    /// longer while an append is in flight.
    len: u64,
    file: File,
}

/// Test-only fault injection for the append path.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Write half the batch, then fail with ENOSPC.
    PartialWrite,
    /// As `PartialWrite`, and then fail the rollback too.
    PartialWriteAndRollback,
}

/// The write-ahead log. See the module docs.
pub struct Wal {
    cfg: WalConfig,
    /// Closed segments, oldest first, all older than `active`.
    sealed: Vec<SegmentMeta>,
    active: Active,
    next_seq: u64,
    /// Sum of all segment lengths.
    total_bytes: u64,
    /// Whether acknowledged bytes have not been fsynced yet.
    unsynced: bool,
    last_sync: Instant,
    /// Set when the on-disk state is no longer known; see `WalError::Broken`.
    broken: Option<String>,
    /// Reused batch encoding buffer.
    buf: Vec<u8>,
    #[cfg(test)]
    fault: Option<Fault>,
    #[cfg(test)]
    syncs: u64,
}

impl Wal {
    /// Opens (or creates) the log in `cfg.dir`, running recovery: every
    /// record is checked, a torn tail of the last segment is truncated, and
    /// corruption anywhere else is an error.
    pub fn open(cfg: WalConfig) -> Result<(Wal, RecoveryReport), WalError> {
        create_dir(&cfg.dir)?;
        if cfg.max_bytes < cfg.segment_bytes.saturating_mul(2) {
            tracing::warn!(
                max_bytes = cfg.max_bytes,
                segment_bytes = cfg.segment_bytes,
                "wal max_bytes below two segments; the unremovable active segment may keep it full"
            );
        }
        let recovery::Recovered {
            mut segments,
            report,
        } = recovery::recover(&cfg.dir)?;
        let last = segments.pop().ok_or_else(|| WalError::Corrupt {
            path: cfg.dir.clone(),
            offset: 0,
            reason: "recovery returned no segments".into(),
        })?;
        let mut file = OpenOptions::new()
            .write(true)
            .open(&last.path)
            .map_err(|e| WalError::io(&last.path, e))?;
        file.seek(SeekFrom::Start(last.len))
            .map_err(|e| WalError::io(&last.path, e))?;
        let total_bytes = segments.iter().map(|s| s.len).sum::<u64>() + last.len;
        tracing::info!(
            dir = %cfg.dir.display(),
            segments = report.segments,
            records = report.records,
            truncated_bytes = report.truncated_bytes,
            first_seq = report.first_seq,
            next_seq = report.next_seq,
            "opened wal"
        );
        let wal = Wal {
            cfg,
            sealed: segments,
            active: Active {
                first_seq: last.first_seq,
                path: last.path,
                len: last.len,
                file,
            },
            next_seq: report.next_seq,
            total_bytes,
            unsynced: false,
            last_sync: Instant::now(),
            broken: None,
            buf: Vec::new(),
            #[cfg(test)]
            fault: None,
            #[cfg(test)]
            syncs: 0,
        };
        Ok((wal, report))
    }

    /// Appends every entry, each getting the next sequence number, then
    /// syncs per policy. Returns the seqs of the first and last entry
    /// (inclusive); an empty batch returns `(next_seq, next_seq - 1)` and
    /// writes nothing.
    ///
    /// All or nothing: on `Ok` every entry is written (and durable under
    /// [`SyncPolicy::EveryBatch`]); on `Err` none is visible and `next_seq`
    /// is unchanged, because the segment is truncated back to its length
    /// before the call. If even that fails the log marks itself broken and
    /// every later call fails until it is reopened.
    pub fn append_batch(&mut self, entries: &[Entry<'_>]) -> Result<(u64, u64), WalError> {
        self.check_usable()?;
        let first = self.next_seq;
        if entries.is_empty() {
            return Ok((first, first.saturating_sub(1)));
        }
        let count = entries.len() as u64;
        // Seqs run up to u64::MAX - 1, so that `next_seq` always fits: only a log whose newest
        // segment was renamed or edited gets near the end.
        if first.checked_add(count).is_none() {
            return Err(WalError::SeqsExhausted {
                next_seq: first,
                count,
            });
        }
        let mut batch_bytes = 0u64;
        for e in entries {
            if e.payload.len() > MAX_PAYLOAD {
                return Err(WalError::TooLarge {
                    len: e.payload.len(),
                    limit: MAX_PAYLOAD,
                });
            }
            batch_bytes += record::encoded_len(e.payload.len());
        }
        if self.total_bytes.saturating_add(batch_bytes) > self.cfg.max_bytes {
            return Err(WalError::Full {
                used: self.total_bytes,
                limit: self.cfg.max_bytes,
            });
        }
        if self.active.len > 0
            && self.active.len.saturating_add(batch_bytes) > self.cfg.segment_bytes
        {
            self.roll()?;
        }

        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.reserve(batch_bytes as usize);
        for (i, e) in entries.iter().enumerate() {
            record::encode(&mut buf, first + i as u64, e.kind, e.payload);
        }
        let before = self.active.len;
        let written = self.write_batch(&buf);
        if buf.capacity() <= KEEP_BUF_BYTES {
            self.buf = buf;
        }
        if let Err(source) = written {
            self.rollback(before, &source);
            return Err(WalError::io(&self.active.path, source));
        }

        let must_sync = match self.cfg.sync {
            SyncPolicy::EveryBatch => true,
            SyncPolicy::Interval(every) => self.last_sync.elapsed() >= every,
        };
        if must_sync {
            if let Err(source) = self.active.file.sync_data() {
                let earlier_unsynced = self.unsynced;
                self.rollback(before, &source);
                if earlier_unsynced {
                    // Earlier, acknowledged batches were in the same dirty
                    // pages; the kernel reports a failed writeback only once,
                    // so a later sync could succeed without them on disk.
                    self.mark_broken(format!("fsync of acknowledged data failed: {source}"));
                }
                return Err(WalError::io(&self.active.path, source));
            }
            self.note_synced();
        } else {
            self.unsynced = true;
        }

        self.active.len += batch_bytes;
        self.total_bytes += batch_bytes;
        self.next_seq += count;
        Ok((first, first + count - 1))
    }

    /// Fsyncs appended data now. A no-op when nothing is pending (always
    /// the case under [`SyncPolicy::EveryBatch`]).
    ///
    /// A failure marks the log broken: the unsynced records may be lost and
    /// a retried fsync could falsely report success.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.check_usable()?;
        if !self.unsynced {
            return Ok(());
        }
        if let Err(source) = self.active.file.sync_data() {
            self.mark_broken(format!("fsync of acknowledged data failed: {source}"));
            return Err(WalError::io(&self.active.path, source));
        }
        self.note_synced();
        Ok(())
    }

    /// Seq the next appended record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Oldest seq still on disk; equal to [`Wal::next_seq`] when empty.
    pub fn first_seq(&self) -> u64 {
        self.sealed
            .first()
            .map_or(self.active.first_seq, |s| s.first_seq)
    }

    /// Total bytes of all segment files.
    pub fn disk_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Reads records with `seq >= from`, in order. Records before
    /// [`Wal::first_seq`] no longer exist, so a smaller `from` starts at
    /// `first_seq`; compare the first record's seq if a gap matters.
    ///
    /// The reader has its own file handles and sees exactly the records
    /// appended before this call (see [`WalReader`]), so the log can keep
    /// appending while it is in use.
    pub fn read_from(&self, from: u64) -> Result<WalReader, WalError> {
        let mut snaps: Vec<SegmentSnap> = self
            .sealed
            .iter()
            .map(|s| SegmentSnap {
                first_seq: s.first_seq,
                path: s.path.clone(),
                len: s.len,
            })
            .collect();
        snaps.push(SegmentSnap {
            first_seq: self.active.first_seq,
            path: self.active.path.clone(),
            len: self.active.len,
        });
        // Start at the last segment beginning at or before `from`.
        let start = snaps.iter().rposition(|s| s.first_seq <= from).unwrap_or(0);
        snaps.drain(..start);
        WalReader::new(snaps, from, self.next_seq)
    }

    /// Where the oldest closed segment ends (the first seq of the segment after it), or None
    /// when only the segment being appended to exists. `truncate_before` with this value
    /// deletes exactly the oldest segment: how a bounded buffer makes room by dropping its
    /// oldest data.
    pub fn oldest_segment_end(&self) -> Option<u64> {
        self.sealed.first()?;
        Some(
            self.sealed
                .get(1)
                .map_or(self.active.first_seq, |s| s.first_seq),
        )
    }

    /// Deletes the segment files all of whose records have seq < `seq`,
    /// oldest first, never the segment being appended to. Returns the bytes
    /// freed.
    ///
    /// Each deletion is made durable before the next, so a crash can only
    /// leave a prefix deleted, never a hole in the middle of the log.
    pub fn truncate_before(&mut self, seq: u64) -> Result<u64, WalError> {
        self.check_usable()?;
        // When every record is covered, the active segment only holds space: seal it so it can
        // go too. Only past a quarter segment (at most 16 MiB), so frequent commits do not
        // create a stream of tiny files.
        let roll_at = (self.cfg.segment_bytes / 4).clamp(1, 16 * 1024 * 1024);
        if seq >= self.next_seq
            && self.active.len >= roll_at
            && let Err(e) = self.roll()
        {
            // A full disk may refuse even an empty file; the segment goes at a later call.
            tracing::warn!(error = %e, "could not seal the wal segment for truncation");
        }
        let mut freed = 0u64;
        let mut removed = 0usize;
        while let Some(oldest) = self.sealed.first() {
            // Segments are consecutive, so this one ends where the next begins.
            let end = self
                .sealed
                .get(1)
                .map_or(self.active.first_seq, |s| s.first_seq);
            if end > seq {
                break;
            }
            match std::fs::remove_file(&oldest.path) {
                Ok(()) => {}
                // Already gone: nothing to free, but stop tracking it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(WalError::io(&oldest.path, e)),
            }
            let gone = self.sealed.remove(0);
            self.total_bytes -= gone.len;
            freed += gone.len;
            removed += 1;
            segment::sync_dir(&self.cfg.dir)?;
        }
        if removed > 0 {
            tracing::info!(
                segments = removed,
                bytes = freed,
                first_seq = self.first_seq(),
                "truncated wal"
            );
        }
        Ok(freed)
    }

    fn check_usable(&self) -> Result<(), WalError> {
        match &self.broken {
            Some(reason) => Err(WalError::Broken {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn mark_broken(&mut self, reason: String) {
        tracing::error!(path = %self.active.path.display(), reason = %reason, "wal marked broken, reopen required");
        self.broken = Some(reason);
    }

    fn note_synced(&mut self) {
        self.unsynced = false;
        self.last_sync = Instant::now();
        #[cfg(test)]
        {
            self.syncs += 1;
        }
    }

    /// Closes the active segment and starts a new one at `next_seq`.
    fn roll(&mut self) -> Result<(), WalError> {
        // Recovery treats a bad record in any segment but the last as
        // corruption, so a segment must be fully durable before a newer one
        // exists.
        self.sync()?;
        let (path, file) = segment::create(&self.cfg.dir, self.next_seq)?;
        let old = std::mem::replace(
            &mut self.active,
            Active {
                first_seq: self.next_seq,
                path,
                len: 0,
                file,
            },
        );
        tracing::debug!(
            closed = %old.path.display(),
            closed_bytes = old.len,
            first_seq = self.next_seq,
            "rolled wal segment"
        );
        self.sealed.push(SegmentMeta {
            first_seq: old.first_seq,
            path: old.path,
            len: old.len,
        });
        Ok(())
    }

    fn write_batch(&mut self, buf: &[u8]) -> io::Result<()> {
        #[cfg(test)]
        if let Some(fault) = self.fault {
            if fault == Fault::PartialWrite {
                self.fault = None;
            }
            self.active.file.write_all(&buf[..buf.len() / 2])?;
            return Err(io::Error::from_raw_os_error(28));
        }
        self.active.file.write_all(buf)
    }

    /// Undoes a failed append: cuts the active segment back to `len`, puts
    /// the write position there, and syncs so that a crash cannot bring back
    /// complete records of a batch the caller was told failed.
    fn rollback(&mut self, len: u64, cause: &io::Error) {
        let file = &mut self.active.file;
        let mut undo = || -> io::Result<()> {
            file.set_len(len)?;
            file.seek(SeekFrom::Start(len))?;
            file.sync_data()
        };
        #[cfg(test)]
        let result = match self.fault.take() {
            Some(Fault::PartialWriteAndRollback) => {
                Err(io::Error::other("injected rollback failure"))
            }
            _ => undo(),
        };
        #[cfg(not(test))]
        let result = undo();
        match result {
            Ok(()) => tracing::warn!(
                path = %self.active.path.display(),
                len,
                error = %cause,
                "rolled back failed wal append"
            ),
            Err(e) => self.mark_broken(format!("could not roll back failed append ({cause}): {e}")),
        }
    }
}

// Manual so that debug output stays small: the batch buffer can be megabytes.
impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.cfg.dir)
            .field("segments", &(self.sealed.len() + 1))
            .field("first_seq", &self.first_seq())
            .field("next_seq", &self.next_seq)
            .field("disk_bytes", &self.total_bytes)
            .field("unsynced", &self.unsynced)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        // A clean shutdown under SyncPolicy::Interval should not lose the
        // last interval; errors can only be logged here.
        if self.unsynced
            && self.broken.is_none()
            && let Err(e) = self.active.file.sync_data()
        {
            tracing::warn!(path = %self.active.path.display(), error = %e, "wal sync on close failed");
        }
    }
}

/// Creates the WAL directory; when it is new, fsyncs its parent so the
/// directory itself survives a crash along with the segments in it.
fn create_dir(dir: &std::path::Path) -> Result<(), WalError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| WalError::io(dir, e))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        segment::sync_dir(parent)?;
    }
    Ok(())
}
