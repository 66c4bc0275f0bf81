//! File identity: device, inode and a fingerprint of the first bytes, so that a reused inode
//! number (a new file created after an old one was deleted) is never taken for the old file.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

/// Most bytes hashed into a fingerprint.
pub const FINGERPRINT_BYTES: usize = 256;

/// Identity of a file: device, inode and a fingerprint of its first bytes (so inode reuse
/// never confuses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileId {
    /// Device number (`st_dev`).
    pub dev: u64,
    /// Inode number (`st_ino`).
    pub ino: u64,
    /// FNV-1a hash of the first line (with its `\n`) or of the first 256 bytes, whichever is
    /// shorter.
    pub fp: u64,
}

impl FileId {
    /// The device and inode pair.
    pub fn dev_ino(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }
}

/// 64-bit FNV-1a: small, stable across Rust versions and platforms.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The fingerprint of a file's first bytes, or `None` when the file cannot be identified yet
/// (empty, or shorter than 256 bytes without a newline).
pub fn fingerprint_of(head: &[u8]) -> Option<u64> {
    let head = &head[..head.len().min(FINGERPRINT_BYTES)];
    match find_newline(head) {
        Some(i) => Some(fnv1a(&head[..=i])),
        None if head.len() == FINGERPRINT_BYTES => Some(fnv1a(head)),
        None => None,
    }
}

/// Reads the head of an open file (without moving its position) and returns its identity, or
/// `None` when it cannot be identified yet.
pub fn identify(file: &File) -> io::Result<Option<FileId>> {
    let meta = file.metadata()?;
    let mut head = [0u8; FINGERPRINT_BYTES];
    let mut n = 0;
    while n < head.len() {
        match file.read_at(&mut head[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(fingerprint_of(&head[..n]).map(|fp| FileId {
        dev: meta.dev(),
        ino: meta.ino(),
        fp,
    }))
}

/// Position of the first `\n` in `hay`, eight bytes at a time.
#[inline]
pub fn find_newline(hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = LO * b'\n' as u64;
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for c in chunks.by_ref() {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w) ^ NL;
        if (x.wrapping_sub(LO) & !x & HI) != 0 {
            return c.iter().position(|&b| b == b'\n').map(|i| base + i);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| base + i)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn fnv_known_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn newline_search_matches_naive() {
        for len in 0..40 {
            for pos in 0..=len {
                let mut v = vec![b'x'; len];
                if pos < len {
                    v[pos] = b'\n';
                }
                let want = v.iter().position(|&b| b == b'\n');
                assert_eq!(find_newline(&v), want, "len {len} pos {pos}");
            }
        }
        // High bytes must not give false positives.
        let v = vec![0x8au8; 33];
        assert_eq!(find_newline(&v), None);
        let v = [0x0b, 0x09, 0x8a, 0x0a];
        assert_eq!(find_newline(&v), Some(3));
    }

    #[test]
    fn fingerprint_needs_a_line_or_256_bytes() {
        assert_eq!(fingerprint_of(b""), None);
        assert_eq!(fingerprint_of(b"no newline yet"), None);
        assert_eq!(fingerprint_of(b"one\n"), Some(fnv1a(b"one\n")));
        assert_eq!(fingerprint_of(b"one\ntwo\n"), Some(fnv1a(b"one\n")));
        let long = vec![b'z'; 300];
        assert_eq!(fingerprint_of(&long), Some(fnv1a(&long[..256])));
    }

    #[test]
    fn identify_reads_a_real_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        let mut f = File::create(&p).unwrap();
        let r = File::open(&p).unwrap();
        assert_eq!(identify(&r).unwrap(), None);
        f.write_all(b"partial").unwrap();
        assert_eq!(identify(&r).unwrap(), None);
        f.write_all(b" line\nmore\n").unwrap();
        let id = identify(&r).unwrap().unwrap();
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!((id.dev, id.ino), (meta.dev(), meta.ino()));
        assert_eq!(id.fp, fnv1a(b"partial line\n"));
    }
}
