//! The store's one error type.

use std::path::PathBuf;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A tantivy operation failed.
    #[error("index error in {context}: {source}")]
    Index {
        /// What was being done.
        context: String,
        /// The tantivy error.
        #[source]
        source: tantivy::TantivyError,
    },
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The write-ahead log failed.
    #[error(transparent)]
    Wal(#[from] skein_wal::WalError),
    /// A stored record could not be read back.
    #[error("stored record is not valid: {0}")]
    Decode(String),
    /// A query could not be understood.
    #[error("{0}")]
    BadQuery(String),
    /// The data on disk was written by an incompatible version.
    #[error("{0}")]
    Incompatible(String),
    /// The query's deadline ([`skein_model::deadline`]) passed; its work was stopped.
    #[error("the query ran past its time limit and was stopped")]
    TimedOut,
    /// Something inside the process failed (a thread could not start, a lock was poisoned).
    #[error("internal: {0}")]
    Internal(String),
}

impl StoreError {
    /// Err([`StoreError::TimedOut`]) once this thread's query deadline has passed: called in
    /// every loop of a read path.
    pub fn check_deadline() -> Result<()> {
        if skein_model::deadline::expired() {
            Err(StoreError::TimedOut)
        } else {
            Ok(())
        }
    }

    pub(crate) fn index(context: impl Into<String>, source: tantivy::TantivyError) -> Self {
        StoreError::Index {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// True when the cause is a full disk (or the WAL's own size limit): callers answer 503 and
    /// try again later.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Wal(w) => w.is_disk_full(),
            StoreError::Io { source, .. } => io_is_disk_full(source),
            StoreError::Index { source, .. } => {
                let text = source.to_string();
                text.contains("No space left") || text.contains("Disk quota")
            }
            _ => false,
        }
    }
}

/// True for ENOSPC and EDQUOT.
pub fn io_is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || matches!(e.raw_os_error(), Some(28) | Some(122))
}

/// The store's result type.
pub type Result<T> = std::result::Result<T, StoreError>;
