//! Prometheus's error types, as its HTTP API names them in `errorType`.

use std::fmt;

/// The `errorType` of a Prometheus API error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// The query or a parameter is wrong (HTTP 400).
    BadData,
    /// Evaluation failed, e.g. a limit was passed or matching was ambiguous (HTTP 422).
    Execution,
    /// The query took longer than allowed (HTTP 503).
    Timeout,
    /// The query was cancelled (HTTP 503).
    Canceled,
    /// A fault of the server (HTTP 500).
    Internal,
    /// The storage could not be read (HTTP 503).
    Unavailable,
    /// Nothing at this path (HTTP 404).
    NotFound,
}

impl ErrorType {
    /// The name in the response envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Canceled => "canceled",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
            ErrorType::NotFound => "not_found",
        }
    }

    /// The HTTP status Prometheus answers with.
    pub fn status(self) -> u16 {
        match self {
            ErrorType::BadData => 400,
            ErrorType::Execution => 422,
            ErrorType::Timeout | ErrorType::Canceled | ErrorType::Unavailable => 503,
            ErrorType::Internal => 500,
            ErrorType::NotFound => 404,
        }
    }
}

/// An error of a PromQL query or of the Prometheus API.
#[derive(Debug, Clone, PartialEq)]
pub struct PromError {
    /// Its type.
    pub kind: ErrorType,
    /// What went wrong, for a person.
    pub message: String,
}

impl PromError {
    /// A `bad_data` error.
    pub fn bad_data(message: impl Into<String>) -> PromError {
        PromError {
            kind: ErrorType::BadData,
            message: message.into(),
        }
    }
    /// An `execution` error.
    pub fn execution(message: impl Into<String>) -> PromError {
        PromError {
            kind: ErrorType::Execution,
            message: message.into(),
        }
    }
    /// A `timeout` error.
    pub fn timeout(message: impl Into<String>) -> PromError {
        PromError {
            kind: ErrorType::Timeout,
            message: message.into(),
        }
    }
    /// An `internal` error.
    pub fn internal(message: impl Into<String>) -> PromError {
        PromError {
            kind: ErrorType::Internal,
            message: message.into(),
        }
    }
    /// An `unavailable` error.
    pub fn unavailable(message: impl Into<String>) -> PromError {
        PromError {
            kind: ErrorType::Unavailable,
            message: message.into(),
        }
    }
}

impl fmt::Display for PromError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for PromError {}
