//! The data model of Skein and its mapping from OTLP.
//!
//! Skein keeps one flat record per log line ([`LogRecord`]) and per span ([`Span`]), each carrying
//! the service and host of the resource it came from. Flat records cost a little space (the
//! resource is repeated) and buy simple indexing and simple answers: every record stands alone in
//! the index and in the API.
//!
//! - [`otlp`] turns OTLP export requests (the `opentelemetry-proto` crate's generated types) into
//!   model records, validating IDs and applying the per-record [`Limits`].
//! - [`prompb`] and [`remote_write`] read Prometheus remote write 1.0 into metric batches,
//!   labels exactly as sent.
//! - [`lokipb`] holds the messages of Loki's push API (`logproto.PushRequest`).
//! - [`keys`] extracts a record's correlation keys (trace ID, request IDs, W3C `traceparent`).
//! - [`severity`] holds the one table of level names and OTLP severity numbers.
//! - [`api`] holds the JSON shapes of the query API, shared by the server and its client.
//! - [`span_tree`] lays a trace's spans out as a tree, for the query engine's answers and for
//!   the CLI's and the TUI's waterfalls.
//! - [`sanitize`] makes text from outside safe to print on a terminal.
//!
//! The trade-off: attribute values are kept as JSON values ([`Attributes`]), not as OTLP
//! `AnyValue`s, so the API can return them as they are and the store can keep them as JSON.

pub mod alert_api;
pub mod api;
pub mod auth;
pub mod batch;
pub mod batch_id;
pub mod cluster_api;
pub mod deadline;
pub mod keys;
pub mod lokipb;
pub mod metric;
pub mod metrics_api;
pub mod otlp;
pub mod otlp_metrics;
pub mod prompb;
mod record;
pub mod remote_write;
pub mod sanitize;
pub mod server;
pub mod severity;
pub mod span_tree;
pub mod time;

pub use keys::KeyConfig;
pub use otlp::{Limits, Rejection};
pub use otlp_metrics::cut_at_char_boundary;
pub use record::{Attributes, LogRecord, Span, SpanEvent, SpanLink};

/// The whole OTLP generated API, re-exported so that users of the model use the same version.
pub use opentelemetry_proto::tonic as proto;
