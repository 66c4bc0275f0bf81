//! Segment files: naming, listing, creation, and a cursor that walks the
//! records of one file.
//!
//! A segment is named after the sequence number of its first record,
//! zero-padded to 20 digits (`00000000000000000001.wal`), so a plain
//! directory listing is already in log order and a segment's range is known
//! without opening it. The cursor validates as it goes instead of building an
//! index: recovery must read every byte anyway, and readers mostly scan
//! forward, so an index would cost more than it saves.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use super::WalError;
use super::record::{self, HEADER_LEN, Header, MAX_PAYLOAD};

/// Extension of segment files.
const EXT: &str = ".wal";
/// Digits in a segment file name.
const NAME_DIGITS: usize = 20;
/// Read buffer for cursors: large enough to amortise syscalls over many
/// small records, small enough that a reader per segment is cheap.
const READ_BUF: usize = 256 * 1024;

/// A closed (no longer appended to) segment.
#[derive(Debug, Clone)]
pub(crate) struct SegmentMeta {
    pub(crate) first_seq: u64,
    pub(crate) path: PathBuf,
    pub(crate) len: u64,
}

/// File name of the segment whose first record is `first_seq`.
pub(crate) fn file_name(first_seq: u64) -> String {
    format!("{first_seq:0width$}{EXT}", width = NAME_DIGITS)
}

/// First seq encoded in a segment file name, or `None` if the name is not
/// one this module writes. Seq 0 is never written (seqs start at 1), so a
/// file named after it is not ours.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(EXT)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&seq| seq > 0)
}

/// Segment files in `dir` as `(first_seq, path)`, oldest first.
pub(crate) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| WalError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io(dir, e))?;
        let name = entry.file_name();
        match name.to_str().and_then(parse_file_name) {
            Some(seq) => out.push((seq, entry.path())),
            None => tracing::debug!(
                path = %entry.path().display(),
                "ignoring non-segment file in wal dir"
            ),
        }
    }
    out.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(out)
}

/// Fsyncs a directory so that entries created or removed in it survive a
/// crash; fsyncing a file alone does not persist its directory entry.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| WalError::io(dir, e))
    }
    // Other platforms cannot open a directory as a file; NTFS journals
    // directory changes itself.
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Creates the empty segment for `first_seq` and makes its directory entry
/// durable. Returns the path and a handle positioned at offset 0.
pub(crate) fn create(dir: &Path, first_seq: u64) -> Result<(PathBuf, File), WalError> {
    let path = dir.join(file_name(first_seq));
    // create_new: an existing file of that name means our bookkeeping is
    // wrong, and overwriting it could destroy records.
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| WalError::io(&path, e))?;
    if let Err(e) = sync_dir(dir) {
        // Without a durable entry the file might vanish in a crash after we
        // acknowledged records in it, so do not use it.
        if let Err(rm) = fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %rm, "could not remove wal segment after failed dir sync");
        }
        return Err(e);
    }
    tracing::debug!(path = %path.display(), first_seq, "created wal segment");
    Ok((path, file))
}

/// Outcome of one [`SegmentCursor::step`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A valid record; its payload is in the caller's buffer.
    Record { seq: u64, kind: u8 },
    /// A record whose header looked sane was skipped without reading or
    /// checking its payload.
    Skipped,
    /// Clean end: the cursor is exactly at its byte limit.
    End,
    /// The bytes at `offset` are not a valid next record.
    Bad { offset: u64, reason: String },
}

/// Sequential reader over the records of one segment file, bounded to a
/// byte limit so that it never looks at bytes beyond what the caller knows
/// to be complete.
#[derive(Debug)]
pub(crate) struct SegmentCursor {
    path: PathBuf,
    reader: BufReader<File>,
    offset: u64,
    limit: u64,
}

impl SegmentCursor {
    /// Opens `path`; `limit` bounds the bytes read (`None`: current length).
    pub(crate) fn open(path: &Path, limit: Option<u64>) -> Result<SegmentCursor, WalError> {
        let file = File::open(path).map_err(|e| WalError::io(path, e))?;
        let limit = match limit {
            Some(l) => l,
            None => file.metadata().map_err(|e| WalError::io(path, e))?.len(),
        };
        Ok(SegmentCursor {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(READ_BUF, file),
            offset: 0,
            limit,
        })
    }

    /// Offset of the next record (after the last good one).
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Byte limit this cursor reads up to.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the next record, which must carry `expected` as its seq.
    ///
    /// With `payload` given, the payload is read into it and the CRC is
    /// checked. Without, the payload is skipped unchecked: readers use that
    /// for records before their start point, where only framing matters.
    /// Io errors are returned as `Err`; bad data is `Ok(Step::Bad)` so the
    /// caller can decide between "torn tail" and "corruption".
    pub(crate) fn step(
        &mut self,
        expected: u64,
        payload: Option<&mut Vec<u8>>,
    ) -> Result<Step, WalError> {
        let remaining = self.limit.saturating_sub(self.offset);
        if remaining == 0 {
            return Ok(Step::End);
        }
        if remaining < HEADER_LEN as u64 {
            return Ok(self.bad(format!("short header: {remaining} of {HEADER_LEN} bytes")));
        }
        let mut hb = [0u8; HEADER_LEN];
        if !self.read_exact_or_eof(&mut hb)? {
            return Ok(self.bad("file shorter than expected while reading header".into()));
        }
        let h = Header::parse(&hb);
        let len = h.len as usize;
        if len > MAX_PAYLOAD {
            return Ok(self.bad(format!("payload length {len} exceeds limit {MAX_PAYLOAD}")));
        }
        let available = remaining - HEADER_LEN as u64;
        if (len as u64) > available {
            return Ok(self.bad(format!("short payload: {available} of {len} bytes")));
        }
        let step = match payload {
            Some(buf) => {
                buf.clear();
                buf.resize(len, 0);
                if !self.read_exact_or_eof(buf)? {
                    return Ok(self.bad("file shorter than expected while reading payload".into()));
                }
                // CRC before seq: with a valid CRC a wrong seq is a genuine
                // gap, otherwise it is just garbage.
                let crc = record::checksum(h.seq, h.kind, buf);
                if crc != h.crc {
                    return Ok(self.bad(format!(
                        "crc mismatch: stored {:#010x}, computed {crc:#010x}",
                        h.crc
                    )));
                }
                Step::Record {
                    seq: h.seq,
                    kind: h.kind,
                }
            }
            None => {
                self.reader
                    .seek_relative(len as i64)
                    .map_err(|e| WalError::io(&self.path, e))?;
                Step::Skipped
            }
        };
        if h.seq != expected {
            return Ok(self.bad(format!("seq gap: expected {expected}, found {}", h.seq)));
        }
        self.offset += record::encoded_len(len);
        Ok(step)
    }

    fn bad(&self, reason: String) -> Step {
        Step::Bad {
            offset: self.offset,
            reason,
        }
    }

    /// `read_exact` that reports a premature end of file as `Ok(false)`;
    /// the file can be shorter than its limit if it was truncated under us.
    fn read_exact_or_eof(&mut self, buf: &mut [u8]) -> Result<bool, WalError> {
        match self.reader.read_exact(buf) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(WalError::io(&self.path, e)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort() {
        assert_eq!(file_name(1), "00000000000000000001.wal");
        assert_eq!(parse_file_name(&file_name(1)), Some(1));
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert!(file_name(9) < file_name(10));
        assert_eq!(parse_file_name("1.wal"), None);
        assert_eq!(parse_file_name("00000000000000000001.tmp"), None);
        assert_eq!(parse_file_name("0000000000000000000x.wal"), None);
        assert_eq!(parse_file_name(&file_name(0)), None);
    }

    #[test]
    fn cursor_reads_skips_and_flags_bad_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(5));
        let mut bytes = Vec::new();
        record::encode(&mut bytes, 5, 1, b"one");
        record::encode(&mut bytes, 6, 2, b"two");
        record::encode(&mut bytes, 8, 3, b"gap");
        fs::write(&path, &bytes).unwrap();

        let mut c = SegmentCursor::open(&path, None).unwrap();
        let mut buf = Vec::new();
        assert_eq!(c.step(5, None).unwrap(), Step::Skipped);
        assert_eq!(
            c.step(6, Some(&mut buf)).unwrap(),
            Step::Record { seq: 6, kind: 2 }
        );
        assert_eq!(buf, b"two");
        let good_end = c.offset();
        match c.step(7, Some(&mut buf)).unwrap() {
            Step::Bad { offset, reason } => {
                assert_eq!(offset, good_end);
                assert!(reason.contains("seq gap"), "{reason}");
            }
            other => panic!("expected bad, got {other:?}"),
        }

        // A limit inside a record reads as a short record, at the limit an end.
        let mut c = SegmentCursor::open(&path, Some(good_end - 1)).unwrap();
        assert_eq!(
            c.step(5, Some(&mut buf)).unwrap(),
            Step::Record { seq: 5, kind: 1 }
        );
        assert!(matches!(
            c.step(6, Some(&mut buf)).unwrap(),
            Step::Bad { .. }
        ));
        let mut c = SegmentCursor::open(&path, Some(good_end)).unwrap();
        c.step(5, None).unwrap();
        c.step(6, None).unwrap();
        assert_eq!(c.step(7, None).unwrap(), Step::End);
    }
}
