//! The TSDB chunk codec (Gorilla). The first byte picks: raw bytes read as a chunk from a
//! block file (must stop cleanly on any damage, never yield more samples than the chunk
//! says); or samples taken from the input encoded and decoded again (must come back bit for
//! bit, whatever the times and values: out of order, equal, NaN, extremes).
#![no_main]
use libfuzzer_sys::fuzz_target;
use skein_store::tsdb::chunk::{ChunkIter, ChunkWriter, MAX_SAMPLES};

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let said = ChunkIter::count(rest);
        let n = ChunkIter::new(rest).count();
        assert!(n <= said as usize, "{n} samples from a chunk of {said}");
        // Each sample past the first takes at least two bits.
        let bits = rest.len().saturating_sub(2) * 8;
        assert!(n <= 1 + bits / 2);
        return;
    }
    let samples: Vec<(i64, f64)> = rest
        .chunks_exact(16)
        .map(|c| {
            let mut t = [0u8; 8];
            let mut v = [0u8; 8];
            t.copy_from_slice(&c[..8]);
            v.copy_from_slice(&c[8..]);
            (i64::from_le_bytes(t), f64::from_le_bytes(v))
        })
        .collect();
    let mut w = ChunkWriter::new();
    let mut kept = Vec::new();
    for &(ts, v) in &samples {
        if !w.push(ts, v) {
            assert!(w.is_full());
            break;
        }
        kept.push((ts, v.to_bits()));
    }
    assert!(w.len() <= MAX_SAMPLES);
    assert_eq!(w.len() as usize, kept.len());
    if let (Some(first), Some(last)) = (kept.first(), kept.last()) {
        assert_eq!(w.first_ts(), first.0);
        assert_eq!(w.last_ts(), last.0);
        assert_eq!(w.last_value().to_bits(), last.1);
    }
    let bytes = w.bytes();
    assert_eq!(ChunkIter::count(&bytes) as usize, kept.len());
    let back: Vec<(i64, u64)> = ChunkIter::new(&bytes)
        .map(|(t, v)| (t, v.to_bits()))
        .collect();
    assert_eq!(back, kept, "a chunk reads back bit for bit");
});
