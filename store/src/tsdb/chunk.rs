//! Compressed chunks of one series' samples, as Gorilla (Pelkonen et al., VLDB 2015) and
//! Prometheus encode them.
//!
//! Layout: a 2-byte little-endian sample count, then a bit stream (most significant bit
//! first):
//! - the first timestamp (64 bits) and value (64 bits, IEEE 754);
//! - each later timestamp as the delta of deltas (`dod`) to the one before, in the shortest of
//!   `0` (dod = 0), `10` + 14 bits, `110` + 17 bits, `1110` + 20 bits, `1111` + 64 bits;
//! - each later value XORed with the one before: `0` when equal, else `1` and either `0` plus
//!   the meaningful bits inside the previous window of leading and trailing zeros, or `1`, 5
//!   bits of leading zeros, 6 bits of meaningful length (0 meaning 64) and the bits.
//!
//! Regular samples with slowly changing values cost 1–2 bits of time and a few bits of value.
//! A chunk holds at most [`MAX_SAMPLES`] samples.

/// Most samples in one chunk: enough to amortize the 18-byte head, few enough that reading a
/// range decodes little beyond it.
pub const MAX_SAMPLES: u16 = 240;

/// Appends bits to a byte vector, most significant bit first.
#[derive(Debug, Clone, Default)]
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits used in the last byte (0 = the last byte is full or there is none).
    used: u32,
}

impl BitWriter {
    fn write(&mut self, value: u64, n: u32) {
        debug_assert!(n <= 64);
        let mut left = n;
        while left > 0 {
            if self.used == 0 {
                self.bytes.push(0);
            }
            let free = 8 - self.used;
            let take = free.min(left);
            let shift = left - take;
            let bits = ((value >> shift) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.bytes.last_mut() {
                *last |= bits << (free - take);
            }
            self.used = (self.used + take) % 8;
            left -= take;
        }
    }

    fn bit(&mut self, b: bool) {
        self.write(b as u64, 1);
    }
}

/// Reads bits written by [`BitWriter`].
struct BitReader<'a> {
    bytes: &'a [u8],
    /// Position in bits.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// Reads `n` (1..=64) bits, or None past the end.
    #[inline]
    fn read(&mut self, n: u32) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        let end = self.pos + n as usize;
        if end > self.bytes.len() * 8 {
            return None;
        }
        let byte = self.pos / 8;
        let off = (self.pos % 8) as u32;
        self.pos = end;
        // Fast path: 16 bytes available covers any 64-bit read at any offset.
        if byte + 16 <= self.bytes.len() {
            let mut buf = [0u8; 16];
            buf.copy_from_slice(&self.bytes[byte..byte + 16]);
            let word = u128::from_be_bytes(buf);
            return Some(((word << off) >> (128 - n)) as u64);
        }
        let mut v: u64 = 0;
        let mut p = end - n as usize;
        let mut left = n;
        while left > 0 {
            let b = self.bytes[p / 8];
            let o = (p % 8) as u32;
            let take = (8 - o).min(left);
            let bits = ((b as u32) >> (8 - o - take)) & ((1u32 << take) - 1);
            v = (v << take) | bits as u64;
            p += take as usize;
            left -= take;
        }
        Some(v)
    }

    #[inline]
    fn bit(&mut self) -> Option<bool> {
        if self.pos >= self.bytes.len() * 8 {
            return None;
        }
        let b = self.bytes[self.pos / 8] >> (7 - (self.pos % 8)) & 1;
        self.pos += 1;
        Some(b == 1)
    }
}

/// Builds one chunk.
#[derive(Debug, Clone)]
pub struct ChunkWriter {
    bits: BitWriter,
    count: u16,
    first_ts: i64,
    last_ts: i64,
    last_delta: i64,
    last_value: u64,
    leading: u32,
    trailing: u32,
}

impl Default for ChunkWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkWriter {
    /// An empty chunk.
    pub fn new() -> ChunkWriter {
        ChunkWriter {
            bits: BitWriter::default(),
            count: 0,
            first_ts: 0,
            last_ts: 0,
            last_delta: 0,
            last_value: 0,
            leading: u32::MAX,
            trailing: 0,
        }
    }

    /// Samples in it.
    pub fn len(&self) -> u16 {
        self.count
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// True when it holds [`MAX_SAMPLES`].
    pub fn is_full(&self) -> bool {
        self.count >= MAX_SAMPLES
    }

    /// Time of the first sample.
    pub fn first_ts(&self) -> i64 {
        self.first_ts
    }

    /// Time of the last sample.
    pub fn last_ts(&self) -> i64 {
        self.last_ts
    }

    /// Value of the last sample.
    pub fn last_value(&self) -> f64 {
        f64::from_bits(self.last_value)
    }

    /// Appends a sample. The caller keeps times increasing and the chunk not full; a chunk
    /// that is full ignores the sample and returns false.
    pub fn push(&mut self, ts: i64, value: f64) -> bool {
        if self.is_full() {
            return false;
        }
        let v = value.to_bits();
        match self.count {
            0 => {
                self.bits.write(ts as u64, 64);
                self.bits.write(v, 64);
                self.first_ts = ts;
            }
            _ => {
                let delta = ts.wrapping_sub(self.last_ts);
                let dod = delta.wrapping_sub(self.last_delta);
                self.write_dod(dod);
                self.write_value(v);
                self.last_delta = delta;
            }
        }
        self.last_ts = ts;
        self.last_value = v;
        self.count += 1;
        true
    }

    fn write_dod(&mut self, dod: i64) {
        let fits = |bits: u32| {
            let lim = 1i64 << (bits - 1);
            (-lim..lim).contains(&dod)
        };
        let w = &mut self.bits;
        if dod == 0 {
            w.bit(false);
        } else if fits(14) {
            w.write(0b10, 2);
            w.write(dod as u64 & ((1 << 14) - 1), 14);
        } else if fits(17) {
            w.write(0b110, 3);
            w.write(dod as u64 & ((1 << 17) - 1), 17);
        } else if fits(20) {
            w.write(0b1110, 4);
            w.write(dod as u64 & ((1 << 20) - 1), 20);
        } else {
            w.write(0b1111, 4);
            w.write(dod as u64, 64);
        }
    }

    fn write_value(&mut self, v: u64) {
        let x = v ^ self.last_value;
        if x == 0 {
            self.bits.bit(false);
            return;
        }
        self.bits.bit(true);
        let leading = x.leading_zeros().min(31);
        let trailing = x.trailing_zeros();
        if self.leading != u32::MAX && leading >= self.leading && trailing >= self.trailing {
            self.bits.bit(false);
            let sig = 64 - self.leading - self.trailing;
            self.bits.write(x >> self.trailing, sig);
        } else {
            self.leading = leading;
            self.trailing = trailing;
            let sig = 64 - leading - trailing;
            self.bits.bit(true);
            self.bits.write(leading as u64, 5);
            // 64 meaningful bits are written as 0 (6 bits hold 0..=63).
            self.bits.write((sig % 64) as u64, 6);
            self.bits.write(x >> trailing, sig);
        }
    }

    /// The encoded chunk (count + bit stream).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.bits.bytes.len());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.bits.bytes);
        out
    }
}

/// Decodes a chunk's samples in order. Stops early (without panicking) on a malformed chunk.
pub struct ChunkIter<'a> {
    r: BitReader<'a>,
    left: u16,
    read: u16,
    ts: i64,
    delta: i64,
    value: u64,
    leading: u32,
    trailing: u32,
}

impl<'a> ChunkIter<'a> {
    /// Reads a chunk made by [`ChunkWriter::bytes`].
    pub fn new(chunk: &'a [u8]) -> ChunkIter<'a> {
        let (count, bits) = match chunk {
            [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]), rest),
            _ => (0, &[][..]),
        };
        ChunkIter {
            r: BitReader {
                bytes: bits,
                pos: 0,
            },
            left: count,
            read: 0,
            ts: 0,
            delta: 0,
            value: 0,
            leading: 0,
            trailing: 0,
        }
    }

    /// Number of samples the chunk says it holds.
    pub fn count(chunk: &[u8]) -> u16 {
        match chunk {
            [a, b, ..] => u16::from_le_bytes([*a, *b]),
            _ => 0,
        }
    }

    fn next_sample(&mut self) -> Option<(i64, f64)> {
        if self.read == 0 {
            self.ts = self.r.read(64)? as i64;
            self.value = self.r.read(64)?;
            return Some((self.ts, f64::from_bits(self.value)));
        }
        let dod = if !self.r.bit()? {
            0
        } else if !self.r.bit()? {
            sign_extend(self.r.read(14)?, 14)
        } else if !self.r.bit()? {
            sign_extend(self.r.read(17)?, 17)
        } else if !self.r.bit()? {
            sign_extend(self.r.read(20)?, 20)
        } else {
            self.r.read(64)? as i64
        };
        self.delta = self.delta.wrapping_add(dod);
        self.ts = self.ts.wrapping_add(self.delta);
        if self.r.bit()? {
            if self.r.bit()? {
                self.leading = self.r.read(5)? as u32;
                let mut sig = self.r.read(6)? as u32;
                if sig == 0 {
                    sig = 64;
                }
                if self.leading + sig > 64 {
                    return None;
                }
                self.trailing = 64 - self.leading - sig;
            }
            let sig = 64 - self.leading - self.trailing;
            if sig == 0 {
                return None;
            }
            let bits = self.r.read(sig)?;
            self.value ^= bits << self.trailing;
        }
        Some((self.ts, f64::from_bits(self.value)))
    }
}

#[inline]
fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

impl Iterator for ChunkIter<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        if self.left == 0 {
            return None;
        }
        match self.next_sample() {
            Some(s) => {
                self.left -= 1;
                self.read += 1;
                Some(s)
            }
            None => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_increasing_samples_round_trip(
            t0 in any::<i64>(),
            steps in proptest::collection::vec(
                (prop_oneof![0i64..100, 0i64..100_000, 0i64..=i64::from(u32::MAX) * 4], any::<f64>()),
                1..(MAX_SAMPLES as usize),
            ),
        ) {
            let mut t = t0;
            let mut s = Vec::new();
            for (dt, v) in steps {
                // Times strictly increase (the caller's rule) and stay in range.
                let Some(next) = t.checked_add(dt + 1) else { break };
                t = next;
                s.push((t, v));
            }
            if !s.is_empty() {
                roundtrip(&s);
            }
        }

        #[test]
        fn any_bit_patterns_round_trip(
            bits in proptest::collection::vec(
                prop_oneof![
                    any::<u64>(),
                    Just(STALE),
                    Just(f64::NAN.to_bits()),
                    Just((-0.0f64).to_bits()),
                    Just(f64::INFINITY.to_bits()),
                    Just(f64::NEG_INFINITY.to_bits()),
                    // NaNs with any payload and sign, quiet or signalling.
                    any::<u64>().prop_map(|b| b | 0x7ff0_0000_0000_0001),
                ],
                1..(MAX_SAMPLES as usize),
            ),
        ) {
            let s: Vec<(i64, f64)> = bits
                .iter()
                .enumerate()
                .map(|(i, b)| (i as i64 * 15_000, f64::from_bits(*b)))
                .collect();
            roundtrip(&s);
        }

        #[test]
        fn any_bytes_decode_without_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = ChunkIter::new(&b).count();
        }
    }

    /// Prometheus's staleness marker.
    const STALE: u64 = 0x7ff0_0000_0000_0002;

    #[test]
    fn special_values_keep_their_exact_bits() {
        // Each special value after every other one, so each is written both as a first value
        // and as an XOR against each of the others (new and reused leading/trailing windows).
        let specials = [
            STALE,
            f64::NAN.to_bits(),
            0x7ff8_0000_0000_0001, // Go's NaN, which Prometheus writes
            0xfff8_0000_0000_0000, // negative quiet NaN
            0x7ff0_0000_0000_0001, // the smallest signalling NaN
            0xffff_ffff_ffff_ffff,
            f64::INFINITY.to_bits(),
            f64::NEG_INFINITY.to_bits(),
            (-0.0f64).to_bits(),
            0.0f64.to_bits(),
            1.0f64.to_bits(),
            f64::MIN_POSITIVE.to_bits(),
            1, // the smallest subnormal
            f64::MAX.to_bits(),
        ];
        for a in specials {
            let mut s = vec![(0i64, f64::from_bits(a))];
            for (i, b) in specials.iter().enumerate() {
                s.push((1 + 2 * i as i64, f64::from_bits(*b)));
                s.push((2 + 2 * i as i64, f64::from_bits(a)));
            }
            roundtrip(&s);
        }
        // A stale marker as the last sample of a full chunk, and one alone.
        let mut s: Vec<(i64, f64)> = (0..MAX_SAMPLES as i64 - 1).map(|i| (i, i as f64)).collect();
        s.push((1000, f64::from_bits(STALE)));
        roundtrip(&s);
        roundtrip(&[(7, f64::from_bits(STALE))]);
    }

    fn roundtrip(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut w = ChunkWriter::new();
        for &(t, v) in samples {
            assert!(w.push(t, v));
        }
        let bytes = w.bytes();
        let back: Vec<(i64, f64)> = ChunkIter::new(&bytes).collect();
        assert_eq!(back.len(), samples.len());
        for (a, b) in back.iter().zip(samples) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.to_bits(), b.1.to_bits());
        }
        bytes
    }

    #[test]
    fn regular_samples_compress_to_about_a_bit_each() {
        let t0 = 1_700_000_000_000i64;
        let s: Vec<(i64, f64)> = (0..240).map(|i| (t0 + i * 10_000, 42.0)).collect();
        let bytes = roundtrip(&s);
        // 18 bytes of head, then 2 bits a sample.
        assert!(bytes.len() < 18 + 240 / 4 + 4, "{} bytes", bytes.len());
    }

    #[test]
    fn every_timestamp_and_value_class_round_trips() {
        let mut s = vec![(0i64, 0.0f64)];
        let mut t = 0i64;
        // Deltas that hit each dod width, negative dods, huge jumps.
        for (i, d) in [
            1i64,
            1,
            5_000,
            10,
            70_000,
            3,
            600_000,
            1,
            i64::MAX / 4,
            1,
            2,
        ]
        .iter()
        .enumerate()
        {
            t += d;
            let v = match i % 6 {
                0 => f64::MIN_POSITIVE,
                1 => -1.5e300,
                2 => 0.1 + i as f64,
                3 => f64::NAN,
                4 => f64::INFINITY,
                _ => -0.0,
            };
            s.push((t, v));
        }
        roundtrip(&s);
        roundtrip(&[(-5, 1.0)]);
        roundtrip(&[]);
    }

    #[test]
    fn random_walks_round_trip() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let mut t = (next() % 1_000_000_000_000) as i64;
            let mut v = (next() % 1000) as f64;
            let mut s = Vec::new();
            for _ in 0..MAX_SAMPLES {
                t += 1 + (next() % 20_000) as i64;
                v += ((next() % 1000) as f64 - 500.0) / 7.0;
                s.push((t, v));
            }
            roundtrip(&s);
        }
    }

    #[test]
    fn full_chunk_refuses_more() {
        let mut w = ChunkWriter::new();
        for i in 0..MAX_SAMPLES as i64 {
            assert!(w.push(i, 1.0));
        }
        assert!(w.is_full());
        assert!(!w.push(1000, 1.0));
        assert_eq!(w.len(), MAX_SAMPLES);
    }

    #[test]
    fn malformed_chunks_stop_without_panic() {
        let mut w = ChunkWriter::new();
        for i in 0..100 {
            w.push(i * 1000, i as f64 * 1.5);
        }
        let bytes = w.bytes();
        for cut in 0..bytes.len() {
            let n = ChunkIter::new(&bytes[..cut]).count();
            assert!(n <= 100);
        }
        let mut x = 12345u32;
        for _ in 0..500 {
            let garbage: Vec<u8> = (0..64)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = ChunkIter::new(&garbage).count();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod speed {
    use super::*;

    /// A printout, not a check (timing has no place in the shared test run):
    /// `cargo test -p skein-store --release -- --ignored --nocapture decode_speed`.
    #[test]
    #[ignore = "timing printout; run by hand in release"]
    fn decode_speed() {
        let mut x: u64 = 7;
        let mut chunks = Vec::new();
        let mut t = 1_700_000_000_000i64;
        let mut v = 0.5f64;
        for _ in 0..5000 {
            let mut w = ChunkWriter::new();
            for _ in 0..MAX_SAMPLES {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                t += 10_000;
                v = ((v + ((x % 200) as f64 - 100.0) / 1000.0).clamp(0.0, 1.0) * 1000.0).round()
                    / 1000.0;
                w.push(t, v);
            }
            chunks.push(w.bytes());
        }
        let n: usize = chunks.len() * MAX_SAMPLES as usize;
        let bytes: usize = chunks.iter().map(Vec::len).sum();
        for _ in 0..3 {
            let start = std::time::Instant::now();
            let mut sum = 0.0;
            for c in &chunks {
                for (_, v) in ChunkIter::new(c) {
                    sum += v;
                }
            }
            let el = start.elapsed();
            println!(
                "{n} samples, {:.2} bytes/sample, {:.2} ns/sample (sum {sum:.1})",
                bytes as f64 / n as f64,
                el.as_nanos() as f64 / n as f64
            );
        }
    }
}
