//! The WAL on disk after anything a crash, a full disk or a bad disk can leave: records are
//! written with the real log (several small segments), then the files are damaged as the
//! input says (cut, bytes flipped, garbage appended, a segment removed or renamed, a file of
//! raw bytes with a segment's name), and the log is opened again.
//!
//! What must hold: opening never panics; when it succeeds, every record read back is the
//! one written with that seq (only whole, checked records come back), a damage-free log
//! gives back everything, and the recovered log takes a new record and opens again with it.
//! The WAL payload of the collector (`model::batch`) is read from each record as a replay
//! would.
#![no_main]
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use skein_model::batch::Batch;
use skein_wal::{Entry, SyncPolicy, Wal, WalConfig};
use std::path::{Path, PathBuf};

#[derive(Arbitrary, Debug)]
enum Damage {
    /// Cut a segment to `at` bytes (modulo its length).
    Truncate { segment: u8, at: u32 },
    /// XOR one byte.
    Flip { segment: u8, at: u32, mask: u8 },
    /// Add bytes at the end.
    Append { segment: u8, bytes: Vec<u8> },
    /// Delete a segment file.
    Remove { segment: u8 },
    /// Give a segment another first seq in its name.
    Rename { segment: u8, seq: u64 },
    /// A file of raw bytes named as a segment.
    Raw { seq: u64, bytes: Vec<u8> },
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Records, in batches (kind, payload).
    batches: Vec<Vec<(u8, Vec<u8>)>>,
    /// Segment size: small, so that there are several.
    segment_bytes: u16,
    damage: Vec<Damage>,
}

fn config(dir: &Path, segment_bytes: u64) -> WalConfig {
    WalConfig {
        dir: dir.to_path_buf(),
        segment_bytes,
        max_bytes: 64 * 1024 * 1024,
        sync: SyncPolicy::EveryBatch,
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn damage(dir: &Path, d: &Damage) {
    let segs = segments(dir);
    let pick = |i: u8| -> Option<&PathBuf> {
        if segs.is_empty() {
            None
        } else {
            segs.get(i as usize % segs.len())
        }
    };
    match d {
        Damage::Truncate { segment, at } => {
            if let Some(p) = pick(*segment) {
                let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                if let Ok(f) = std::fs::OpenOptions::new().write(true).open(p) {
                    let _ = f.set_len(u64::from(*at) % (len + 1));
                }
            }
        }
        Damage::Flip { segment, at, mask } => {
            if let Some(p) = pick(*segment)
                && let Ok(mut b) = std::fs::read(p)
                && !b.is_empty()
            {
                let i = *at as usize % b.len();
                b[i] ^= mask;
                let _ = std::fs::write(p, b);
            }
        }
        Damage::Append { segment, bytes } => {
            if let Some(p) = pick(*segment) {
                use std::io::Write;
                if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(p) {
                    let _ = f.write_all(bytes);
                }
            }
        }
        Damage::Remove { segment } => {
            if let Some(p) = pick(*segment) {
                let _ = std::fs::remove_file(p);
            }
        }
        Damage::Rename { segment, seq } => {
            if let Some(p) = pick(*segment) {
                let _ = std::fs::rename(p, dir.join(format!("{seq:020}.wal")));
            }
        }
        Damage::Raw { seq, bytes } => {
            let _ = std::fs::write(dir.join(format!("{seq:020}.wal")), bytes);
        }
    }
}

fuzz_target!(|input: Input| {
    let total: usize = input
        .batches
        .iter()
        .flatten()
        .map(|(_, p)| p.len() + 17)
        .sum();
    if total > skein_fuzz::MAX_INPUT || input.batches.len() > 64 {
        return;
    }
    let dir = skein_fuzz::scratch_dir("wal");
    let segment_bytes = u64::from(input.segment_bytes).max(32);
    // Seq -> (kind, payload) as written.
    let mut written: Vec<(u8, Vec<u8>)> = Vec::new();
    {
        let (mut wal, report) = Wal::open(config(&dir, segment_bytes)).expect("a new wal opens");
        assert_eq!(report.next_seq, 1);
        for batch in &input.batches {
            let entries: Vec<Entry<'_>> = batch
                .iter()
                .map(|(kind, payload)| Entry {
                    kind: *kind,
                    payload,
                })
                .collect();
            let (first, _) = wal.append_batch(&entries).expect("append");
            assert_eq!(first, written.len() as u64 + 1);
            written.extend(batch.iter().cloned());
        }
    }
    for d in &input.damage {
        damage(&dir, d);
    }
    let renamed = input
        .damage
        .iter()
        .any(|d| matches!(d, Damage::Rename { .. } | Damage::Raw { .. }));

    let Ok((mut wal, report)) = Wal::open(config(&dir, segment_bytes)) else {
        return;
    };
    if input.damage.is_empty() {
        assert_eq!(report.records, written.len() as u64);
        assert_eq!(report.truncated_bytes, 0);
    }
    let mut read = 0u64;
    let Ok(reader) = wal.read_from(report.first_seq) else {
        return;
    };
    for r in reader {
        let Ok(r) = r else {
            assert!(
                !input.damage.is_empty(),
                "a log without damage reads back whole"
            );
            break;
        };
        read += 1;
        let _ = Batch::decode(r.kind, &r.payload);
        if !renamed {
            let (kind, payload) = written
                .get((r.seq - 1) as usize)
                .expect("no record past those written");
            assert_eq!(r.kind, *kind, "seq {} kind", r.seq);
            assert_eq!(&r.payload, payload, "seq {} payload", r.seq);
        }
    }
    if input.damage.is_empty() {
        assert_eq!(read, written.len() as u64);
    }
    // The recovered log takes a record and opens again with it.
    // Near the end of the seqs (a segment renamed to a huge seq) the append is refused.
    let next = wal.next_seq();
    let Ok(_) = wal.append_batch(&[Entry {
        kind: 7,
        payload: b"after recovery",
    }]) else {
        return;
    };
    drop(wal);
    let (wal, report) =
        Wal::open(config(&dir, segment_bytes)).expect("a recovered log opens again");
    assert_eq!(report.next_seq, next + 1);
    assert_eq!(
        report.truncated_bytes, 0,
        "nothing to cut after a clean append"
    );
    let last = wal
        .read_from(next)
        .expect("reader")
        .next()
        .expect("the new record")
        .expect("reads");
    assert_eq!(
        (last.seq, last.kind, &last.payload[..]),
        (next, 7, &b"after recovery"[..])
    );
});
