//! Record framing: the byte layout of one WAL record and its checksum.
//!
//! Layout, all integers little endian:
//!
//! ```text
//! u32 len | u32 crc | u64 seq | u8 kind | payload (len bytes)
//! ```
//!
//! The CRC covers `seq`, `kind` and the payload but not `len`. A damaged
//! `len` is still caught, because the CRC is then computed over the wrong
//! bytes; keeping `len` outside lets a reader size and bound its read before
//! it has seen the payload. The trade-off is that a damaged `len` is reported
//! as a CRC mismatch (or a short payload) rather than as a bad length.

/// Bytes in a record header: len (4) + crc (4) + seq (8) + kind (1).
pub const HEADER_LEN: usize = 17;

/// Largest payload a single record may carry (64 MiB).
pub const MAX_PAYLOAD: usize = 64 * 1024 * 1024;

/// A decoded record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) len: u32,
    pub(crate) crc: u32,
    pub(crate) seq: u64,
    pub(crate) kind: u8,
}

impl Header {
    /// Decodes a header from its fixed-size byte form.
    pub(crate) fn parse(b: &[u8; HEADER_LEN]) -> Header {
        let mut len = [0u8; 4];
        let mut crc = [0u8; 4];
        let mut seq = [0u8; 8];
        len.copy_from_slice(&b[0..4]);
        crc.copy_from_slice(&b[4..8]);
        seq.copy_from_slice(&b[8..16]);
        Header {
            len: u32::from_le_bytes(len),
            crc: u32::from_le_bytes(crc),
            seq: u64::from_le_bytes(seq),
            kind: b[16],
        }
    }
}

/// CRC32 over the fields a record's checksum protects.
pub(crate) fn checksum(seq: u64, kind: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(&[kind]);
    h.update(payload);
    h.finalize()
}

/// On-disk size of a record with a payload of `payload_len` bytes.
pub(crate) fn encoded_len(payload_len: usize) -> u64 {
    (HEADER_LEN + payload_len) as u64
}

/// Appends the encoded record to `buf`.
///
/// Callers must have checked `payload.len() <= MAX_PAYLOAD`, which also
/// guarantees the length fits the `u32` field.
pub(crate) fn encode(buf: &mut Vec<u8>, seq: u64, kind: u8, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_PAYLOAD);
    let len = payload.len() as u32;
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&checksum(seq, kind, payload).to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.push(kind);
    buf.extend_from_slice(payload);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_parse_round_trips() {
        let mut buf = Vec::new();
        encode(&mut buf, 42, 7, b"hello");
        assert_eq!(buf.len() as u64, encoded_len(5));
        let header: [u8; HEADER_LEN] = buf[..HEADER_LEN].try_into().unwrap();
        let h = Header::parse(&header);
        assert_eq!(h.len, 5);
        assert_eq!(h.seq, 42);
        assert_eq!(h.kind, 7);
        assert_eq!(&buf[HEADER_LEN..], b"hello");
        assert_eq!(h.crc, checksum(42, 7, b"hello"));
    }

    #[test]
    fn checksum_covers_seq_kind_and_payload() {
        let base = checksum(1, 1, b"abc");
        assert_ne!(base, checksum(2, 1, b"abc"));
        assert_ne!(base, checksum(1, 2, b"abc"));
        assert_ne!(base, checksum(1, 1, b"abd"));
    }
}
