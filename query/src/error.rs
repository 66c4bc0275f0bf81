//! The query engine's error, with a transport-neutral kind the API maps to a status.

/// What went wrong with a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The request is wrong; the message says how to fix it.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing matched.
    #[error("{0}")]
    NotFound(String),
    /// The query ran too long or the store is busy.
    #[error("{0}")]
    Unavailable(String),
    /// The store failed; details go to the log, not to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<skein_store::StoreError> for QueryError {
    fn from(e: skein_store::StoreError) -> Self {
        match e {
            skein_store::StoreError::BadQuery(m) => QueryError::BadRequest(m),
            skein_store::StoreError::TimedOut => QueryError::Unavailable(
                "the query ran past its time limit and was stopped; narrow it with a time range, a service or a smaller limit".into(),
            ),
            other => QueryError::Internal(other.to_string()),
        }
    }
}
