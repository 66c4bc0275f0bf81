//! The write-ahead log's payload contract: what one WAL record holds and how it is encoded.
//! The collector writes it ([`Batch::encode`]), the indexer and start-up replay read it back
//! ([`Batch::decode`]), and the store keeps each line as a document's stored record
//! ([`ndjson_lines`]). The WAL itself (`skein-wal`) only sees a kind byte and bytes.
//!
//! Encoding: the records as NDJSON, one JSON object a line, in order. JSON rather than a binary
//! form because the index stores these same bytes as each record's stored document, so a
//! record is serialized once on its way in.

use crate::{LogRecord, Span};
use std::sync::Arc;

/// The kind byte of a WAL record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BatchKind {
    /// A batch of log records.
    Logs = 1,
    /// A batch of spans.
    Spans = 2,
}

impl BatchKind {
    /// The byte written to the WAL.
    pub fn byte(self) -> u8 {
        self as u8
    }

    /// The kind of a byte read back, if it is one.
    pub fn from_byte(b: u8) -> Option<BatchKind> {
        match b {
            1 => Some(BatchKind::Logs),
            2 => Some(BatchKind::Spans),
            _ => None,
        }
    }
}

/// Records of one accepted batch: one WAL record.
#[derive(Debug, Clone)]
pub enum Batch {
    /// Log records.
    Logs(Arc<Vec<LogRecord>>),
    /// Spans.
    Spans(Arc<Vec<Span>>),
}

/// Why a WAL payload could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The kind byte is not one this version knows.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    /// A line is not a valid record.
    #[error("line {line}: {message}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What serde said.
        message: String,
    },
}

impl Batch {
    /// Its kind.
    pub fn kind(&self) -> BatchKind {
        match self {
            Batch::Logs(_) => BatchKind::Logs,
            Batch::Spans(_) => BatchKind::Spans,
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        match self {
            Batch::Logs(v) => v.len(),
            Batch::Spans(v) => v.len(),
        }
    }

    /// True when it holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The WAL payload: the records as NDJSON.
    pub fn encode(&self) -> Vec<u8> {
        fn ndjson<T: serde::Serialize>(v: &[T]) -> Vec<u8> {
            // Grows as it is written: a guess per record over-reserves for small records.
            let mut out = Vec::new();
            for r in v {
                // Serializing model records cannot fail (string keys, no non-finite floats).
                if serde_json::to_writer(&mut out, r).is_ok() {
                    out.push(b'\n');
                }
            }
            out
        }
        match self {
            Batch::Logs(v) => ndjson(v),
            Batch::Spans(v) => ndjson(v),
        }
    }

    /// Reads a WAL record back.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Batch, BatchError> {
        fn lines<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<Vec<T>, BatchError> {
            ndjson_lines(payload)
                .enumerate()
                .map(|(i, l)| {
                    serde_json::from_slice(l).map_err(|e| BatchError::BadLine {
                        line: i + 1,
                        message: e.to_string(),
                    })
                })
                .collect()
        }
        match BatchKind::from_byte(kind) {
            Some(BatchKind::Logs) => lines(payload).map(|v| Batch::Logs(Arc::new(v))),
            Some(BatchKind::Spans) => lines(payload).map(|v| Batch::Spans(Arc::new(v))),
            None => Err(BatchError::UnknownKind(kind)),
        }
    }
}

/// The lines of an NDJSON payload, empty ones skipped: record `i` is line `i`.
pub fn ndjson_lines(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    payload.split(|b| *b == b'\n').filter(|l| !l.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn log(body: &str) -> LogRecord {
        LogRecord {
            body: body.into(),
            service: "payment".into(),
            ..Default::default()
        }
    }

    #[test]
    fn logs_round_trip_through_the_payload() {
        let b = Batch::Logs(Arc::new(vec![log("one"), log("two\nlines")]));
        let bytes = b.encode();
        assert_eq!(ndjson_lines(&bytes).count(), 2);
        let Batch::Logs(back) = Batch::decode(b.kind().byte(), &bytes).unwrap() else {
            panic!("not logs");
        };
        assert_eq!(back[1].body, "two\nlines");
        assert_eq!(back[0].service, "payment");
    }

    #[test]
    fn unknown_kinds_and_bad_lines_are_errors() {
        assert_eq!(
            Batch::decode(9, b"{}\n").unwrap_err(),
            BatchError::UnknownKind(9)
        );
        let err = Batch::decode(BatchKind::Spans.byte(), b"not json\n").unwrap_err();
        assert!(matches!(err, BatchError::BadLine { line: 1, .. }), "{err}");
        assert_eq!(
            BatchKind::from_byte(BatchKind::Logs.byte()),
            Some(BatchKind::Logs)
        );
    }
}
