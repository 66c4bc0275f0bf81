//! What can go wrong when running a service or talking to one.

use std::net::SocketAddr;
use std::path::PathBuf;

/// An error from running a demo service or from an admin call to one.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The listen address could not be bound.
    #[error(
        "could not listen on {addr}: {source}. Another process may be using this port; stop it or pick another port."
    )]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// The log file could not be created or opened for appending.
    #[error(
        "could not open the log file {}: {source}. Check that its directory can be created and written to.",
        path.display()
    )]
    LogFile {
        /// The log file's path.
        path: PathBuf,
        /// Why opening failed.
        source: std::io::Error,
    },
    /// The OTLP span exporter could not be built.
    #[error(
        "could not set up span export to {endpoint}: {message}. Check the OTLP endpoint, e.g. http://127.0.0.1:4327."
    )]
    Exporter {
        /// The endpoint that was given.
        endpoint: String,
        /// What the exporter said.
        message: String,
    },
    /// The HTTP client for calls to other services could not be built.
    #[error("could not create the HTTP client: {0}.")]
    Client(reqwest::Error),
    /// The HTTP server stopped with an error.
    #[error("the HTTP server stopped with an error: {0}.")]
    Serve(std::io::Error),
    /// A fault was out of range; the message says which field and why.
    #[error("the fault is not valid: {0}.")]
    InvalidFault(String),
    /// A service could not be reached.
    #[error("could not reach the service at {addr}: {source}. Is it running?")]
    Unreachable {
        /// The service's address.
        addr: SocketAddr,
        /// What the HTTP client said.
        source: reqwest::Error,
    },
    /// A service answered an admin call with an error.
    #[error("the service at {addr} refused the request with status {status}: {message}.")]
    Refused {
        /// The service's address.
        addr: SocketAddr,
        /// The HTTP status it answered.
        status: u16,
        /// Its error message.
        message: String,
    },
}
