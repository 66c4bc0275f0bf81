//! A sender's batch identity: the `skein-batch-id` header (HTTP) or metadata (gRPC) with which
//! a sender that retries, such as the agent after a `kill -9`, names a batch so the collector
//! stores it once however often it arrives (as JetStream's `Nats-Msg-Id` does).
//!
//! The collector keeps the ids it acknowledged for a window of time and, so a restart does not
//! forget them, writes each id to its WAL right after its batch, as a record of kind
//! [`WAL_KIND`]. A torn write can lose the id record and keep its batch (a later retry is then
//! stored twice, never lost), never the other way round.

use std::fmt;
use std::sync::Arc;

/// The header (HTTP) and metadata key (gRPC) that carries the id.
pub const HEADER: &str = "skein-batch-id";
/// Longest id accepted, in bytes.
pub const MAX_LEN: usize = 128;
/// The kind byte of a WAL record that holds a batch id (batches are kinds 1 and 2).
pub const WAL_KIND: u8 = 3;

/// A checked batch id: 1 to [`MAX_LEN`] bytes of ASCII letters, digits and `.`, `_`, `-`, `:`.
/// Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(Arc<str>);

impl BatchId {
    /// Checks a header value. The error says what is wrong, for a 400 answer.
    pub fn parse(s: &str) -> Result<BatchId, String> {
        if s.is_empty() || s.len() > MAX_LEN {
            return Err(format!(
                "the {HEADER} header must be 1 to {MAX_LEN} characters long, not {}",
                s.len()
            ));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
        {
            return Err(format!(
                "the {HEADER} header may hold letters, digits and . _ - : only, not {:?}",
                c
            ));
        }
        Ok(BatchId(Arc::from(s)))
    }

    /// Reads the payload of a WAL record of kind [`WAL_KIND`].
    pub fn from_wal(payload: &[u8]) -> Result<BatchId, String> {
        let s = std::str::from_utf8(payload).map_err(|_| "batch id is not UTF-8".to_string())?;
        BatchId::parse(s)
    }

    /// The id as text (also the WAL payload).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BatchId({})", self.0)
    }
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn good_ids_parse_and_round_trip_through_the_wal_payload() {
        let id = BatchId::parse("web-1.42.00ff00aa:0").unwrap();
        assert_eq!(id.as_str(), "web-1.42.00ff00aa:0");
        assert_eq!(BatchId::from_wal(id.as_str().as_bytes()).unwrap(), id);
    }

    #[test]
    fn bad_ids_are_refused_with_a_reason() {
        assert!(BatchId::parse("").unwrap_err().contains("1 to 128"));
        assert!(
            BatchId::parse(&"a".repeat(129))
                .unwrap_err()
                .contains("129")
        );
        assert!(BatchId::parse("a b").unwrap_err().contains("' '"));
        assert!(BatchId::parse("a\u{1b}[2J").unwrap_err().contains("only"));
        assert!(BatchId::from_wal(&[0xff, 0xfe]).is_err());
    }
}
