//! Publishing to the cluster's JetStream stream, shared by the collector's cluster mode
//! (`skein-cluster`) and the agent when it sends to the stream directly. It depends only on
//! the model and the NATS client, so the agent stays clear of the collector's crates.
//!
//! - [`publish`]: log and span batches by partition (trace ID, else first correlation key),
//!   one message per partition share, ids from the sender's batch id, acknowledged by the
//!   stream before the caller answers.
//! - [`publish_metrics`]: metric samples by series.

pub mod publish;
pub mod publish_metrics;

pub use publish::{PublishError, Published, Publisher};
