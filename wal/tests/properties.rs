//! Property tests of the write-ahead log: whatever batches are written read back the same
//! after a reopen, across segment rolls, and a log cut at any byte recovers to a prefix of
//! what was written and goes on appending.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use skein_wal::{Entry, SyncPolicy, Wal, WalConfig};
use std::time::Duration;

fn cfg(dir: &std::path::Path) -> WalConfig {
    WalConfig {
        dir: dir.to_path_buf(),
        // Small segments, so that the cases roll across several files.
        segment_bytes: 4096,
        max_bytes: 64 * 1024 * 1024,
        // fsync is not what these cases test; it only makes them slow.
        sync: SyncPolicy::Interval(Duration::from_secs(3600)),
    }
}

type Batches = Vec<Vec<(u8, Vec<u8>)>>;

fn batches() -> impl Strategy<Value = Batches> {
    let record = (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..1500));
    proptest::collection::vec(proptest::collection::vec(record, 1..5), 1..20)
}

fn write_all(wal: &mut Wal, batches: &Batches) -> Vec<(u8, Vec<u8>)> {
    let mut all = Vec::new();
    for b in batches {
        let entries: Vec<Entry<'_>> = b
            .iter()
            .map(|(kind, payload)| Entry {
                kind: *kind,
                payload,
            })
            .collect();
        wal.append_batch(&entries).unwrap();
        all.extend(b.iter().cloned());
    }
    wal.sync().unwrap();
    all
}

fn read_all(wal: &Wal) -> Vec<(u8, Vec<u8>)> {
    wal.read_from(wal.first_seq())
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (r.kind, r.payload)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn what_is_written_reads_back_after_reopen(batches in batches()) {
        let dir = tempfile::tempdir().unwrap();
        let written = {
            let (mut wal, _) = Wal::open(cfg(dir.path())).unwrap();
            write_all(&mut wal, &batches)
        };
        let (wal, report) = Wal::open(cfg(dir.path())).unwrap();
        prop_assert_eq!(report.records, written.len() as u64);
        prop_assert_eq!(report.truncated_bytes, 0);
        prop_assert_eq!(read_all(&wal), written);
    }

    #[test]
    fn a_log_cut_at_any_byte_recovers_a_prefix_and_goes_on(
        batches in batches(),
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let written = {
            let (mut wal, _) = Wal::open(cfg(dir.path())).unwrap();
            write_all(&mut wal, &batches)
        };
        // Cut the newest segment file at a random length, as a crash mid-write leaves it.
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "wal"))
            .collect();
        files.sort();
        let last = files.last().unwrap();
        let len = std::fs::metadata(last).unwrap().len() as usize;
        let keep = cut.index(len + 1);
        let f = std::fs::OpenOptions::new().write(true).open(last).unwrap();
        f.set_len(keep as u64).unwrap();
        drop(f);

        let (mut wal, report) = Wal::open(cfg(dir.path())).unwrap();
        let back = read_all(&wal);
        prop_assert!(back.len() <= written.len());
        prop_assert_eq!(&back[..], &written[..back.len()]);
        prop_assert_eq!(report.records, back.len() as u64);
        // Appending goes on after the recovered prefix.
        wal.append_batch(&[Entry { kind: 9, payload: b"after" }]).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (wal, _) = Wal::open(cfg(dir.path())).unwrap();
        let again = read_all(&wal);
        prop_assert_eq!(again.len(), back.len() + 1);
        prop_assert_eq!(again.last().unwrap(), &(9u8, b"after".to_vec()));
    }
}
