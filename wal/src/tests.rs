//! End-to-end tests of `Wal`: append, reopen, roll, truncate, full disks,
//! failed writes, sync policies, readers. Recovery tests live in
//! `recovery.rs` and share the helpers here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

pub(super) fn cfg(dir: &Path) -> WalConfig {
    WalConfig {
        dir: dir.to_path_buf(),
        segment_bytes: 1 << 20,
        max_bytes: 1 << 30,
        sync: SyncPolicy::EveryBatch,
    }
}

/// Payload for seq `n`: distinct per record and of varying length.
pub(super) fn payload(n: u64) -> Vec<u8> {
    format!("record-{n}-{}", "x".repeat((n % 7) as usize)).into_bytes()
}

pub(super) fn rec_len(n: u64) -> u64 {
    (HEADER_LEN + payload(n).len()) as u64
}

/// Appends records `seqs` (which must start at `wal.next_seq()`) as one batch.
pub(super) fn append(wal: &mut Wal, seqs: std::ops::RangeInclusive<u64>) {
    let bodies: Vec<Vec<u8>> = seqs.clone().map(payload).collect();
    let entries: Vec<Entry<'_>> = bodies
        .iter()
        .zip(seqs.clone())
        .map(|(p, n)| Entry {
            kind: (n % 3) as u8,
            payload: p,
        })
        .collect();
    let got = wal.append_batch(&entries).unwrap();
    assert_eq!(got, (*seqs.start(), *seqs.end()));
}

pub(super) fn read_all(wal: &Wal, from: u64) -> Vec<Record> {
    wal.read_from(from)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// Asserts `records` are exactly seqs `seqs` with the payloads `append` wrote.
pub(super) fn assert_records(records: &[Record], seqs: std::ops::RangeInclusive<u64>) {
    let got: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(got, seqs.clone().collect::<Vec<_>>());
    for r in records {
        assert_eq!(r.payload, payload(r.seq), "payload of seq {}", r.seq);
        assert_eq!(r.kind, (r.seq % 3) as u8, "kind of seq {}", r.seq);
    }
}

pub(super) fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

pub(super) fn file_len(p: &Path) -> u64 {
    fs::metadata(p).unwrap().len()
}

#[test]
fn append_then_reopen_returns_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, report) = Wal::open(cfg(dir.path())).unwrap();
    assert_eq!(report.next_seq, 1);
    assert_eq!(report.first_seq, 1);
    assert_eq!(wal.first_seq(), 1);
    append(&mut wal, 1..=1);
    append(&mut wal, 2..=6);
    append(&mut wal, 7..=10);
    assert_eq!(wal.next_seq(), 11);
    let bytes = wal.disk_bytes();
    assert_eq!(bytes, (1..=10).map(rec_len).sum::<u64>());
    drop(wal);

    let (wal, report) = Wal::open(cfg(dir.path())).unwrap();
    assert_eq!(
        report,
        RecoveryReport {
            segments: 1,
            records: 10,
            truncated_bytes: 0,
            first_seq: 1,
            next_seq: 11,
        }
    );
    assert_eq!(wal.disk_bytes(), bytes);
    assert_records(&read_all(&wal, 1), 1..=10);
    assert_records(&read_all(&wal, 0), 1..=10);
    assert_records(&read_all(&wal, 7), 7..=10);
    assert_records(&read_all(&wal, 10), 10..=10);
    assert!(read_all(&wal, 11).is_empty());
    assert!(read_all(&wal, 500).is_empty());
}

#[test]
fn empty_batch_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(cfg(dir.path())).unwrap();
    assert_eq!(wal.append_batch(&[]).unwrap(), (1, 0));
    assert_eq!(wal.next_seq(), 1);
    assert_eq!(wal.disk_bytes(), 0);
}

#[test]
fn appends_past_the_last_seq_are_refused_not_a_panic() {
    // A newest segment named after a seq near u64::MAX (a damaged or edited file name) opens
    // as an empty log at that seq. Found by the wal_recovery fuzz target: the next append
    // panicked on an overflow. Seqs run up to u64::MAX - 1, so `next_seq` always fits.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(segment::file_name(u64::MAX - 2)), b"").unwrap();
    let (mut wal, report) = Wal::open(cfg(dir.path())).unwrap();
    assert_eq!(report.next_seq, u64::MAX - 2);
    let e = Entry {
        kind: 1,
        payload: b"x",
    };
    assert!(matches!(
        wal.append_batch(&[e, e, e]),
        Err(WalError::SeqsExhausted { next_seq, count: 3 }) if next_seq == u64::MAX - 2
    ));
    assert_eq!(wal.next_seq(), u64::MAX - 2, "a refused batch takes no seq");
    assert_eq!(
        wal.append_batch(&[e, e]).unwrap(),
        (u64::MAX - 2, u64::MAX - 1)
    );
    assert_eq!(wal.next_seq(), u64::MAX);
    assert!(matches!(
        wal.append_batch(&[e]),
        Err(WalError::SeqsExhausted { .. })
    ));
    drop(wal);
    let (wal, report) = Wal::open(cfg(dir.path())).unwrap();
    assert_eq!((report.records, report.next_seq), (2, u64::MAX));
    let seqs: Vec<u64> = read_all(&wal, u64::MAX - 2).iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [u64::MAX - 2, u64::MAX - 1]);
}

#[test]
fn open_creates_missing_dir_and_ignores_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/wal");
    let (mut wal, _) = Wal::open(cfg(&nested)).unwrap();
    append(&mut wal, 1..=2);
    drop(wal);
    fs::write(nested.join("notes.txt"), b"hello").unwrap();
    fs::write(nested.join("1.wal"), b"garbage").unwrap();
    let (wal, report) = Wal::open(cfg(&nested)).unwrap();
    assert_eq!(report.next_seq, 3);
    assert_records(&read_all(&wal, 1), 1..=2);
}

#[test]
fn rolls_segments_reads_across_them_and_truncates_whole_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.segment_bytes = 100;
    let (mut wal, _) = Wal::open(c.clone()).unwrap();
    let mut n = 1;
    for size in [1, 3, 1, 2, 4, 1, 1, 2, 5, 1, 2] {
        append(&mut wal, n..=n + size - 1);
        n += size;
    }
    let last = n - 1;
    let files = segment_files(dir.path());
    assert!(files.len() >= 4, "expected several segments, got {files:?}");
    // Each file is named after the first seq it holds.
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        let first = segment::parse_file_name(name).unwrap();
        let r = wal.read_from(first).unwrap().next().unwrap().unwrap();
        assert_eq!(r.seq, first);
    }
    assert_records(&read_all(&wal, 1), 1..=last);
    let firsts: Vec<u64> = files
        .iter()
        .map(|f| segment::parse_file_name(f.file_name().unwrap().to_str().unwrap()).unwrap())
        .collect();
    // Start just before a segment boundary so the read crosses it.
    assert_records(&read_all(&wal, firsts[2] - 1), firsts[2] - 1..=last);

    // Truncate at a seq in the middle of the third segment: the first two
    // go, the third stays because it still holds seqs >= cut.
    let cut = firsts[2] + 1;
    assert!(cut < firsts[3]);
    let expect_freed = file_len(&files[0]) + file_len(&files[1]);
    let before = wal.disk_bytes();
    let freed = wal.truncate_before(cut).unwrap();
    assert_eq!(freed, expect_freed);
    assert_eq!(wal.disk_bytes(), before - freed);
    assert_eq!(wal.first_seq(), firsts[2]);
    let remaining = segment_files(dir.path());
    assert_eq!(remaining, files[2..].to_vec());
    assert_eq!(
        wal.disk_bytes(),
        remaining.iter().map(|f| file_len(f)).sum::<u64>()
    );
    assert_records(&read_all(&wal, cut), cut..=last);
    // Reading from a truncated seq starts at the oldest one left.
    assert_records(&read_all(&wal, 1), firsts[2]..=last);
    // A seq that no whole segment lies below frees nothing.
    assert_eq!(wal.truncate_before(firsts[2]).unwrap(), 0);
    drop(wal);

    let (mut wal, report) = Wal::open(c).unwrap();
    assert_eq!(report.first_seq, firsts[2]);
    assert_eq!(report.next_seq, last + 1);
    assert_eq!(wal.first_seq(), firsts[2]);
    // Everything committed: every segment goes, the active one sealed first (it is past a
    // quarter of the segment size); a new empty one takes appends.
    wal.truncate_before(wal.next_seq()).unwrap();
    assert_eq!(segment_files(dir.path()).len(), 1);
    assert_eq!(wal.first_seq(), last + 1);
    append(&mut wal, last + 1..=last + 1);
    assert_records(&read_all(&wal, 0), last + 1..=last + 1);
}

#[test]
fn full_wal_refuses_appends_unchanged_until_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    // Same-length payloads so each record is exactly `rl` bytes.
    let rl = (HEADER_LEN + 10) as u64;
    c.segment_bytes = 2 * rl;
    c.max_bytes = 5 * rl;
    let (mut wal, _) = Wal::open(c.clone()).unwrap();
    let body = [7u8; 10];
    let one = [Entry {
        kind: 1,
        payload: &body,
    }];
    for n in 1..=5 {
        assert_eq!(wal.append_batch(&one).unwrap(), (n, n));
    }
    let files_before: Vec<(PathBuf, u64)> = segment_files(dir.path())
        .into_iter()
        .map(|p| {
            let l = file_len(&p);
            (p, l)
        })
        .collect();

    let err = wal.append_batch(&one).unwrap_err();
    assert!(err.is_disk_full(), "{err}");
    assert!(matches!(err, WalError::Full { used, limit } if used == 5 * rl && limit == 5 * rl));
    // A batch that only partly fits is refused whole.
    let err = wal.append_batch(&[one[0], one[0]]).unwrap_err();
    assert!(err.is_disk_full());
    assert_eq!(wal.next_seq(), 6);
    assert_eq!(wal.disk_bytes(), 5 * rl);
    let files_after: Vec<(PathBuf, u64)> = segment_files(dir.path())
        .into_iter()
        .map(|p| {
            let l = file_len(&p);
            (p, l)
        })
        .collect();
    assert_eq!(files_before, files_after);
    assert_eq!(read_all(&wal, 1).len(), 5);

    assert_eq!(wal.truncate_before(3).unwrap(), 2 * rl);
    assert_eq!(wal.append_batch(&one).unwrap(), (6, 6));
    let seqs: Vec<u64> = read_all(&wal, 0).iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![3, 4, 5, 6]);
}

#[test]
fn too_large_payload_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(cfg(dir.path())).unwrap();
    let big = vec![0u8; MAX_PAYLOAD + 1];
    let err = wal
        .append_batch(&[
            Entry {
                kind: 0,
                payload: b"ok",
            },
            Entry {
                kind: 0,
                payload: &big,
            },
        ])
        .unwrap_err();
    assert!(
        matches!(err, WalError::TooLarge { len, limit } if len == MAX_PAYLOAD + 1 && limit == MAX_PAYLOAD)
    );
    assert_eq!(wal.next_seq(), 1);
    assert_eq!(wal.disk_bytes(), 0);
}

#[test]
fn failed_write_leaves_the_wal_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(cfg(dir.path())).unwrap();
    append(&mut wal, 1..=3);
    let seg = segment_files(dir.path())[0].clone();
    let len = file_len(&seg);

    wal.fault = Some(Fault::PartialWrite);
    let bodies = [payload(4), payload(5), payload(6)];
    let entries: Vec<Entry<'_>> = bodies
        .iter()
        .map(|p| Entry {
            kind: 9,
            payload: p,
        })
        .collect();
    let err = wal.append_batch(&entries).unwrap_err();
    assert!(err.is_disk_full(), "{err}");
    assert!(matches!(err, WalError::Io { ref path, .. } if *path == seg));
    assert_eq!(wal.next_seq(), 4);
    assert_eq!(wal.disk_bytes(), len);
    assert_eq!(file_len(&seg), len, "partial write not rolled back");

    // Space is back: the same seqs are handed out again.
    append(&mut wal, 4..=5);
    assert_records(&read_all(&wal, 1), 1..=5);
    drop(wal);
    let (wal, report) = Wal::open(cfg(dir.path())).unwrap();
    assert_eq!(report.truncated_bytes, 0);
    assert_records(&read_all(&wal, 1), 1..=5);
}

#[test]
fn failed_write_into_a_fresh_segment_leaves_it_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.segment_bytes = 60;
    let (mut wal, _) = Wal::open(c.clone()).unwrap();
    append(&mut wal, 1..=2);
    wal.fault = Some(Fault::PartialWrite);
    let body = payload(3);
    assert!(
        wal.append_batch(&[Entry {
            kind: 0,
            payload: &body
        }])
        .is_err()
    );
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 2);
    assert_eq!(file_len(&files[1]), 0);
    drop(wal);
    let (mut wal, report) = Wal::open(c).unwrap();
    assert_eq!((report.next_seq, report.truncated_bytes), (3, 0));
    append(&mut wal, 3..=3);
    assert_records(&read_all(&wal, 1), 1..=3);
}

#[test]
fn failed_rollback_marks_the_wal_broken_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(cfg(dir.path())).unwrap();
    append(&mut wal, 1..=3);
    wal.fault = Some(Fault::PartialWriteAndRollback);
    let body = payload(4);
    assert!(
        wal.append_batch(&[Entry {
            kind: 0,
            payload: &body
        }])
        .is_err()
    );
    let again = wal.append_batch(&[Entry {
        kind: 0,
        payload: &body,
    }]);
    assert!(matches!(again, Err(WalError::Broken { .. })), "{again:?}");
    assert!(matches!(wal.sync(), Err(WalError::Broken { .. })));
    assert!(matches!(
        wal.truncate_before(2),
        Err(WalError::Broken { .. })
    ));
    drop(wal);

    // Reopening recovers: the half-written record is a torn tail.
    let (mut wal, report) = Wal::open(cfg(dir.path())).unwrap();
    assert_eq!(report.next_seq, 4);
    assert!(report.truncated_bytes > 0);
    append(&mut wal, 4..=4);
    assert_records(&read_all(&wal, 1), 1..=4);
}

#[test]
fn interval_policy_defers_fsync_until_due_or_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.sync = SyncPolicy::Interval(Duration::from_secs(3600));
    let (mut wal, _) = Wal::open(c.clone()).unwrap();
    append(&mut wal, 1..=2);
    append(&mut wal, 3..=3);
    assert_eq!(wal.syncs, 0);
    wal.sync().unwrap();
    assert_eq!(wal.syncs, 1);
    wal.sync().unwrap();
    assert_eq!(wal.syncs, 1, "sync with nothing pending should not fsync");
    drop(wal);
    let (mut wal, report) = Wal::open(c.clone()).unwrap();
    assert_eq!(report.truncated_bytes, 0);
    assert_records(&read_all(&wal, 1), 1..=3);

    // Rolling must make the old segment durable first.
    wal.cfg.segment_bytes = 1;
    append(&mut wal, 4..=4);
    assert_eq!(wal.syncs, 0);
    append(&mut wal, 5..=5);
    assert_eq!(wal.syncs, 1);
    drop(wal);

    // A zero interval is always due.
    c.sync = SyncPolicy::Interval(Duration::ZERO);
    let (mut wal, _) = Wal::open(c).unwrap();
    append(&mut wal, 6..=6);
    append(&mut wal, 7..=8);
    assert_eq!(wal.syncs, 2);
    assert_records(&read_all(&wal, 1), 1..=8);
}

#[test]
fn every_batch_policy_syncs_each_append() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(cfg(dir.path())).unwrap();
    append(&mut wal, 1..=1);
    append(&mut wal, 2..=4);
    assert_eq!(wal.syncs, 2);
    assert!(!wal.unsynced);
}

#[test]
fn reader_sees_a_snapshot_and_can_be_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.segment_bytes = 80;
    let (mut wal, _) = Wal::open(c).unwrap();
    append(&mut wal, 1..=3);
    let mut reader = wal.read_from(2).unwrap();
    append(&mut wal, 4..=9);
    let first: Vec<Record> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    assert_records(&first, 2..=3);
    assert_eq!(reader.position(), 4);
    assert_records(&read_all(&wal, reader.position()), 4..=9);
}

#[test]
fn reader_reports_corruption_found_after_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(cfg(dir.path())).unwrap();
    append(&mut wal, 1..=3);
    let seg = segment_files(dir.path())[0].clone();
    let mut bytes = fs::read(&seg).unwrap();
    let i = (rec_len(1) + HEADER_LEN as u64) as usize;
    bytes[i] ^= 0x10;
    fs::write(&seg, bytes).unwrap();
    let mut reader = wal.read_from(1).unwrap();
    assert_eq!(reader.next().unwrap().unwrap().seq, 1);
    assert!(matches!(
        reader.next(),
        Some(Err(WalError::Corrupt { offset, .. })) if offset == rec_len(1)
    ));
    assert!(reader.next().is_none());
}

#[test]
fn truncating_past_everything_seals_and_frees_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(cfg(dir.path())).unwrap();
    // A quarter of the 1 MiB segment size is the threshold; write past it.
    let mut n = 1;
    while wal.disk_bytes() < (1 << 18) {
        append(&mut wal, n..=n + 99);
        n += 100;
    }
    let before = wal.disk_bytes();
    let freed = wal.truncate_before(wal.next_seq()).unwrap();
    assert_eq!(freed, before, "the whole covered segment is freed");
    assert_eq!(wal.disk_bytes(), 0);
    assert_eq!(wal.first_seq(), wal.next_seq());
    // Appends continue with the next seq and survive a reopen.
    append(&mut wal, n..=n + 4);
    drop(wal);
    let (wal, report) = Wal::open(cfg(dir.path())).unwrap();
    assert_eq!(report.first_seq, n);
    assert_records(&read_all(&wal, 0), n..=n + 4);
}

#[test]
fn a_small_covered_active_segment_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(cfg(dir.path())).unwrap();
    append(&mut wal, 1..=10);
    assert_eq!(wal.truncate_before(11).unwrap(), 0);
    assert_eq!(segment_files(dir.path()).len(), 1);
}
