//! Recovery: rebuilds the WAL's state from the segment files at open.
//!
//! Every record of every segment is read and CRC-checked, and seqs must run
//! on without gaps, within and across segments. The one tolerated defect is a
//! bad tail in the *last* segment: that is what a crash in the middle of an
//! append looks like, and nothing after it was ever acknowledged as durable
//! (fsync had not returned), so it is cut off. A bad record anywhere else is
//! reported as corruption rather than skipped, because skipping would
//! silently drop acknowledged data. The price is that a bit flip inside the
//! last segment is indistinguishable from a torn tail and also loses the
//! records after it; the segments are fsynced before a new one is created
//! precisely so that only the last segment can ever legitimately be torn.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use super::segment::{self, SegmentCursor, SegmentMeta, Step};
use super::{RecoveryReport, WalError};

/// What recovery found, ready for `Wal::open` to take over.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// All segments, oldest first. Never empty; the last one is the one to
    /// append to, and its `len` is its length after any tail truncation.
    pub(crate) segments: Vec<SegmentMeta>,
    pub(crate) report: RecoveryReport,
}

/// Scans `dir` (which must exist) and repairs a torn tail; creates the first
/// segment if there is none.
pub(crate) fn recover(dir: &Path) -> Result<Recovered, WalError> {
    let found = segment::list(dir)?;
    let Some(&(first_seq, _)) = found.first() else {
        let (path, _file) = segment::create(dir, 1)?;
        return Ok(Recovered {
            segments: vec![SegmentMeta {
                first_seq: 1,
                path,
                len: 0,
            }],
            report: RecoveryReport {
                segments: 1,
                records: 0,
                truncated_bytes: 0,
                first_seq: 1,
                next_seq: 1,
            },
        });
    };

    let mut segments = Vec::with_capacity(found.len());
    let mut expected = first_seq;
    let mut records = 0u64;
    let mut truncated_bytes = 0u64;
    let mut payload = Vec::new();
    let last_index = found.len() - 1;

    for (i, (name_seq, path)) in found.into_iter().enumerate() {
        let is_last = i == last_index;
        if name_seq != expected {
            // Segments are only created once the previous one is complete
            // and synced, so a gap or overlap between them is never a crash
            // artefact: data is missing or was tampered with.
            return Err(WalError::Corrupt {
                path,
                offset: 0,
                reason: format!(
                    "segment starts at seq {name_seq} but the previous one ends before {expected}"
                ),
            });
        }
        let mut cursor = SegmentCursor::open(&path, None)?;
        let file_len = cursor.limit();
        loop {
            let at = cursor.offset();
            let step = cursor.step(expected, Some(&mut payload))?;
            if matches!(step, Step::Record { .. } | Step::Skipped) && expected == u64::MAX {
                // Appends never write this seq (the next one would not fit): the file was
                // edited. Refused rather than cut, as it is not what a crash leaves.
                return Err(WalError::Corrupt {
                    path,
                    offset: at,
                    reason: "a record carries seq u64::MAX, which the log never writes".into(),
                });
            }
            match step {
                Step::Record { .. } => {
                    expected += 1;
                    records += 1;
                }
                Step::Skipped => {
                    // Unreachable with a payload buffer; counting it keeps
                    // the numbers right even so.
                    expected += 1;
                    records += 1;
                }
                Step::End => break,
                Step::Bad { offset, reason } => {
                    if !is_last {
                        return Err(WalError::Corrupt {
                            path,
                            offset,
                            reason,
                        });
                    }
                    let cut = file_len - offset;
                    truncate_tail(&path, offset)?;
                    tracing::warn!(
                        path = %path.display(),
                        offset,
                        bytes = cut,
                        reason = %reason,
                        "truncated torn wal tail"
                    );
                    truncated_bytes += cut;
                    break;
                }
            }
        }
        // An empty segment can only be the last one: segments are created
        // on demand for a batch, so an empty one followed by another fails
        // the name check above as a gap.
        let len = cursor.offset();
        segments.push(SegmentMeta {
            first_seq: name_seq,
            path,
            len,
        });
    }
    let report = RecoveryReport {
        segments: segments.len(),
        records,
        truncated_bytes,
        first_seq,
        next_seq: expected,
    };
    Ok(Recovered { segments, report })
}

/// Cuts a segment file to `len` bytes and makes the new length durable, so a
/// later crash cannot resurrect the torn bytes behind records appended after
/// recovery.
fn truncate_tail(path: &PathBuf, len: u64) -> Result<(), WalError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| WalError::io(path, e))?;
    file.set_len(len).map_err(|e| WalError::io(path, e))?;
    file.sync_all().map_err(|e| WalError::io(path, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::fs;
    use std::path::Path;

    use crate::tests::{append, assert_records, cfg, file_len, read_all, rec_len, segment_files};
    use crate::{Entry, HEADER_LEN, Wal, WalError, segment};

    /// Writes records 1..=12 in segments of a few records each, lets `damage`
    /// mutate the last segment, reopens and checks that everything before the
    /// damage survived and the log keeps working.
    fn torn_tail_case(damage: impl FnOnce(&Path), survivors: u64, expect_cut: u64) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.segment_bytes = 120;
        let (mut wal, _) = Wal::open(c.clone()).unwrap();
        for n in 1..=12 {
            append(&mut wal, n..=n);
        }
        drop(wal);
        let files = segment_files(dir.path());
        assert!(files.len() >= 3);
        let last_file = files.last().unwrap().clone();
        damage(&last_file);

        let (mut wal, report) = Wal::open(c.clone()).unwrap();
        assert_eq!(report.truncated_bytes, expect_cut);
        assert!(report.truncated_bytes > 0);
        assert_eq!(report.next_seq, survivors + 1);
        assert_eq!(report.records, survivors);
        assert_eq!(wal.disk_bytes(), (1..=survivors).map(rec_len).sum::<u64>());
        // The torn bytes are gone from the file, not merely skipped.
        let on_disk: u64 = segment_files(dir.path()).iter().map(|f| file_len(f)).sum();
        assert_eq!(on_disk, wal.disk_bytes());
        assert_records(&read_all(&wal, 1), 1..=survivors);

        append(&mut wal, survivors + 1..=survivors + 2);
        append(&mut wal, survivors + 3..=survivors + 3);
        assert_records(&read_all(&wal, 1), 1..=survivors + 3);
        drop(wal);
        let (wal, report) = Wal::open(c).unwrap();
        assert_eq!(report.truncated_bytes, 0);
        assert_records(&read_all(&wal, 1), 1..=survivors + 3);
    }

    #[test]
    fn torn_tail_short_record_is_cut() {
        torn_tail_case(
            |p| {
                let f = fs::OpenOptions::new().write(true).open(p).unwrap();
                f.set_len(file_len(p) - 3).unwrap();
            },
            11,
            rec_len(12) - 3,
        );
    }

    #[test]
    fn torn_tail_short_header_is_cut() {
        // Leaves only part of the last record's header.
        torn_tail_case(
            |p| {
                let f = fs::OpenOptions::new().write(true).open(p).unwrap();
                f.set_len(file_len(p) - rec_len(12) + 5).unwrap();
            },
            11,
            5,
        );
    }

    #[test]
    fn torn_tail_bad_crc_is_cut() {
        torn_tail_case(
            |p| {
                let mut bytes = fs::read(p).unwrap();
                let i = bytes.len() - 2;
                bytes[i] ^= 0xff;
                fs::write(p, bytes).unwrap();
            },
            11,
            rec_len(12),
        );
    }

    #[test]
    fn torn_tail_garbage_after_last_record_is_cut() {
        torn_tail_case(
            |p| {
                let mut bytes = fs::read(p).unwrap();
                bytes.extend_from_slice(&[0xab; 40]);
                fs::write(p, bytes).unwrap();
            },
            12,
            40,
        );
    }

    #[test]
    fn torn_tail_zero_filled_tail_is_cut() {
        // Preallocated-but-unwritten blocks read back as zeros: a zero header
        // claims seq 0 with an empty payload and must not pass as a record.
        torn_tail_case(
            |p| {
                let mut bytes = fs::read(p).unwrap();
                bytes.extend_from_slice(&[0; 64]);
                fs::write(p, bytes).unwrap();
            },
            12,
            64,
        );
    }

    #[test]
    fn corruption_in_an_older_segment_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.segment_bytes = 120;
        let (mut wal, _) = Wal::open(c.clone()).unwrap();
        for n in 1..=12 {
            append(&mut wal, n..=n);
        }
        drop(wal);
        let files = segment_files(dir.path());
        assert!(files.len() >= 3);

        // Flip a payload byte of the second record of the first segment.
        let victim = &files[0];
        let mut bytes = fs::read(victim).unwrap();
        let second = rec_len(1);
        bytes[(second + HEADER_LEN as u64) as usize] ^= 0x01;
        fs::write(victim, &bytes).unwrap();
        match Wal::open(c.clone()) {
            Err(WalError::Corrupt { path, offset, .. }) => {
                assert_eq!(&path, victim);
                assert_eq!(offset, second);
            }
            other => panic!("expected corrupt, got {other:?}"),
        }
        bytes[(second + HEADER_LEN as u64) as usize] ^= 0x01;
        fs::write(victim, &bytes).unwrap();

        // A short tail in an older segment is not a torn tail either.
        let f = fs::OpenOptions::new().write(true).open(&files[1]).unwrap();
        f.set_len(file_len(&files[1]) - 1).unwrap();
        drop(f);
        assert!(matches!(
            Wal::open(c.clone()),
            Err(WalError::Corrupt { path, .. }) if path == files[1]
        ));
        // Nothing was cut off the damaged file.
        assert!(file_len(&files[1]) > 0);
    }

    #[test]
    fn missing_middle_segment_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.segment_bytes = 120;
        let (mut wal, _) = Wal::open(c.clone()).unwrap();
        for n in 1..=12 {
            append(&mut wal, n..=n);
        }
        drop(wal);
        let files = segment_files(dir.path());
        assert!(files.len() >= 3);
        fs::remove_file(&files[1]).unwrap();
        assert!(matches!(
            Wal::open(c),
            Err(WalError::Corrupt { path, .. }) if path == files[2]
        ));
    }

    #[test]
    fn empty_last_segment_is_reused_and_keeps_the_seq() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(cfg(dir.path())).unwrap();
        append(&mut wal, 1..=3);
        drop(wal);
        // As left by a crash right after rolling.
        let empty = dir.path().join(segment::file_name(4));
        fs::write(&empty, b"").unwrap();
        let (mut wal, report) = Wal::open(cfg(dir.path())).unwrap();
        assert_eq!((report.segments, report.next_seq), (2, 4));
        append(&mut wal, 4..=4);
        assert_eq!(file_len(&empty), rec_len(4));
        assert_records(&read_all(&wal, 1), 1..=4);

        // Only an empty segment left after truncation: seqs must not restart.
        let other = tempfile::tempdir().unwrap();
        fs::write(other.path().join(segment::file_name(42)), b"").unwrap();
        let (mut wal, report) = Wal::open(cfg(other.path())).unwrap();
        assert_eq!((report.first_seq, report.next_seq), (42, 42));
        assert_eq!(wal.first_seq(), 42);
        assert_eq!(
            wal.append_batch(&[Entry {
                kind: 0,
                payload: b"x"
            }])
            .unwrap(),
            (42, 42)
        );
    }

    #[test]
    fn a_record_at_the_largest_seq_is_refused_not_a_panic() {
        // Appends never hand out u64::MAX (the next seq would not fit); a record carrying it
        // can only come from an edited file, and recovery must say so instead of
        // overflowing.
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        crate::record::encode(&mut bytes, u64::MAX, 1, b"edited");
        let path = dir.path().join(segment::file_name(u64::MAX));
        fs::write(&path, &bytes).unwrap();
        match Wal::open(cfg(dir.path())) {
            Err(WalError::Corrupt {
                path: p, offset, ..
            }) => {
                assert_eq!((p, offset), (path, 0));
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("a record at u64::MAX was accepted"),
        }
    }
}
