//! The agent's resume state: where each file goes on from after a restart. The first byte
//! picks: the checkpoint file (`checkpoints.json`) read as start-up reads it, and when
//! accepted saved and read again (must be equal); or the disk buffer: WAL records of any
//! kind and bytes plus real batches, a cursor file of any bytes, acknowledgements, then
//! open, read, file positions, save and open again (must never panic, never lose a batch
//! at or after the saved cursor).
#![no_main]
use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use skein_agent::buffer::{BodyEncoding, Buffer, Signal};
use skein_agent::tail::{Checkpoints, FileId};
use skein_wal::{Entry, SyncPolicy, Wal, WalConfig};

#[derive(Arbitrary, Debug)]
struct Batch {
    signal: u8,
    records: u32,
    positions: Vec<(u64, u64, u64, u64)>,
    encoding: u8,
    body: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct BufferInput {
    /// Records written straight into the buffer's log before it is opened.
    raw: Vec<(u8, Vec<u8>)>,
    /// The cursor file, if any.
    cursor: Option<Vec<u8>>,
    /// Batches appended through the buffer.
    batches: Vec<Batch>,
    /// Acknowledged seqs.
    acks: Vec<u64>,
}

fn checkpoints(bytes: &[u8]) {
    let dir = skein_fuzz::scratch_dir("checkpoints");
    let path = dir.join("checkpoints.json");
    std::fs::write(&path, bytes).expect("write");
    let Ok(cps) = Checkpoints::load(&path) else {
        return;
    };
    let _ = cps.positions();
    let again = dir.join("again.json");
    cps.save(&again).expect("accepted checkpoints save");
    let back = Checkpoints::load(&again).expect("saved checkpoints load");
    assert_eq!(back, cps, "checkpoints read back equal");
}

fn buffer(input: BufferInput) {
    let size: usize = input.raw.iter().map(|(_, p)| p.len()).sum::<usize>()
        + input.batches.iter().map(|b| b.body.len()).sum::<usize>();
    if size > skein_fuzz::MAX_INPUT || input.raw.len() + input.batches.len() > 64 {
        return;
    }
    let dir = skein_fuzz::scratch_dir("buffer");
    if !input.raw.is_empty() {
        let (mut wal, _) = Wal::open(WalConfig {
            dir: dir.clone(),
            segment_bytes: 4096,
            max_bytes: 16 * 1024 * 1024,
            sync: SyncPolicy::EveryBatch,
        })
        .expect("wal");
        let entries: Vec<Entry<'_>> = input
            .raw
            .iter()
            .map(|(kind, payload)| Entry {
                kind: *kind,
                payload,
            })
            .collect();
        wal.append_batch(&entries).expect("append");
    }
    if let Some(c) = &input.cursor {
        std::fs::write(dir.join("cursor"), c).expect("write");
    }
    let Ok(buf) = Buffer::open(&dir, 16 * 1024 * 1024, 4096) else {
        return;
    };
    let mut appended = Vec::new();
    for b in &input.batches {
        let signal = [Signal::Logs, Signal::Traces, Signal::Metrics][b.signal as usize % 3];
        let encoding = [
            BodyEncoding::Identity,
            BodyEncoding::Zstd,
            BodyEncoding::Gzip,
        ][b.encoding as usize % 3];
        let positions: Vec<(FileId, u64)> = b
            .positions
            .iter()
            .map(|&(dev, ino, fp, off)| (FileId { dev, ino, fp }, off))
            .collect();
        if buf
            .append(signal, b.records, &positions, encoding, &b.body, false)
            .is_ok()
        {
            appended.push((signal, b.records, positions, encoding, b.body.clone()));
        }
    }
    let start = buf.cursor();
    let read = buf.read(0, 10_000).expect("read");
    for w in read.windows(2) {
        assert!(w[0].seq < w[1].seq, "batches come in order");
    }
    assert!(
        read.iter().all(|b| b.seq >= start),
        "nothing before the cursor"
    );
    // The batches appended through the buffer are the last ones, whole.
    let tail = &read[read.len().saturating_sub(appended.len())..];
    if read.len() >= appended.len() {
        for (got, (signal, records, positions, encoding, body)) in tail.iter().zip(&appended) {
            assert_eq!(got.signal, *signal);
            assert_eq!(got.records, *records);
            assert_eq!(&got.positions, positions);
            assert_eq!(got.encoding, *encoding);
            assert_eq!(&got.body, body);
        }
    }
    let _ = buf.positions().expect("positions");
    let _ = buf.fill();
    for &a in &input.acks {
        buf.ack(a);
    }
    let saved = buf.cursor();
    buf.save_and_trim().expect("save");
    drop(buf);
    let buf = Buffer::open(&dir, 16 * 1024 * 1024, 4096).expect("a saved buffer opens again");
    assert!(
        buf.cursor() <= saved,
        "the cursor never moves past what was saved"
    );
    let again = buf.read(0, 10_000).expect("read after reopen");
    let kept: Vec<u64> = read.iter().map(|b| b.seq).filter(|s| *s >= saved).collect();
    let back: Vec<u64> = again.iter().map(|b| b.seq).collect();
    assert_eq!(
        back, kept,
        "every batch at or after the saved cursor is still there"
    );
}

fuzz_target!(|data: &[u8]| {
    if data.len() > skein_fuzz::MAX_INPUT {
        return;
    }
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        checkpoints(rest);
    } else if let Ok(input) = BufferInput::arbitrary_take_rest(Unstructured::new(rest)) {
        buffer(input);
    }
});
