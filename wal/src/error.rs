//! Errors returned by the WAL.
//!
//! Every I/O error carries the path it happened on, because "No space left on
//! device" without a file name is useless at 3am. Disk-full conditions are
//! recognised in one place ([`WalError::is_disk_full`]) so callers can apply
//! backpressure instead of treating them as fatal.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the WAL.
#[derive(thiserror::Error, Debug)]
pub enum WalError {
    /// An operating system call failed.
    #[error("wal io error on {}: {source}", path.display())]
    Io {
        /// File or directory the call was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Appending would push the WAL past its configured size limit.
    #[error("wal is full: {used} bytes used, limit {limit}")]
    Full {
        /// Bytes currently held by all segments.
        used: u64,
        /// Configured limit (`WalConfig::max_bytes`).
        limit: u64,
    },
    /// A record that should be intact is not (bad CRC, truncated, out of
    /// sequence) somewhere other than the tail of the last segment.
    #[error("wal corrupt in {} at offset {offset}: {reason}", path.display())]
    Corrupt {
        /// Segment file holding the bad record.
        path: PathBuf,
        /// Byte offset of the bad record within the file.
        offset: u64,
        /// What was wrong with it.
        reason: String,
    },
    /// A payload exceeds the per-record limit.
    #[error("wal record too large: {len} bytes, limit {limit}")]
    TooLarge {
        /// Payload length that was offered.
        len: usize,
        /// Largest accepted payload length.
        limit: usize,
    },
    /// The batch would take seqs past the last one (`u64::MAX - 1`): only a log whose files
    /// were renamed or edited gets there. Nothing was written.
    #[error("wal has no seqs left: a batch of {count} at seq {next_seq} would pass u64::MAX - 1")]
    SeqsExhausted {
        /// The seq the batch would have started at.
        next_seq: u64,
        /// Records in the batch.
        count: u64,
    },
    /// An earlier failure left the on-disk state unknown (a failed append
    /// could not be rolled back, or an fsync of acknowledged data failed).
    /// The WAL refuses further work until it is reopened, which re-runs
    /// recovery and re-establishes what is actually on disk.
    #[error("wal is broken and must be reopened: {reason}")]
    Broken {
        /// What left it broken.
        reason: String,
    },
}

impl WalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> WalError {
        WalError::Io {
            path: path.into(),
            source,
        }
    }

    /// True when the error means "out of space": the WAL's own size limit,
    /// or the file system reporting ENOSPC / EDQUOT. Such errors are
    /// retryable once space is freed; the WAL is left unchanged by them.
    pub fn is_disk_full(&self) -> bool {
        match self {
            WalError::Full { .. } => true,
            WalError::Io { source, .. } => io_is_disk_full(source),
            _ => false,
        }
    }
}

/// Whether an io error reports a full disk or an exhausted quota.
fn io_is_disk_full(e: &io::Error) -> bool {
    if matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) {
        return true;
    }
    // The kind mapping already covers these on unix; the raw codes are a
    // fallback for errors constructed from raw values by wrappers. They are
    // Linux numbers (ENOSPC = 28, EDQUOT = 122) and mean other things on
    // Windows, hence the cfg.
    #[cfg(unix)]
    if matches!(e.raw_os_error(), Some(28 | 122)) {
        return true;
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn io_err(source: io::Error) -> WalError {
        WalError::io("/x", source)
    }

    #[test]
    fn disk_full_detection() {
        assert!(WalError::Full { used: 1, limit: 1 }.is_disk_full());
        assert!(io_err(io::Error::from_raw_os_error(28)).is_disk_full());
        assert!(io_err(io::Error::from_raw_os_error(122)).is_disk_full());
        assert!(io_err(io::Error::from(io::ErrorKind::StorageFull)).is_disk_full());
        assert!(io_err(io::Error::from(io::ErrorKind::QuotaExceeded)).is_disk_full());
        assert!(!io_err(io::Error::from(io::ErrorKind::PermissionDenied)).is_disk_full());
        assert!(!io_err(io::Error::from_raw_os_error(5)).is_disk_full());
        assert!(!WalError::TooLarge { len: 2, limit: 1 }.is_disk_full());
        assert!(
            !WalError::Corrupt {
                path: "/x".into(),
                offset: 0,
                reason: String::new()
            }
            .is_disk_full()
        );
    }

    #[test]
    fn messages_name_the_path() {
        let e = io_err(io::Error::from_raw_os_error(28));
        assert!(e.to_string().contains("/x"), "{e}");
    }
}
