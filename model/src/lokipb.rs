//! The messages of Loki's push API (`logproto.PushRequest` of Loki's `pkg/push/push.proto`),
//! written out with `prost` derives: only what a receiver reads.
//!
//! Field numbers follow Loki's `push.proto` and `google/protobuf/timestamp.proto`. The
//! request's `format` (2) and an entry's `parsed` labels (4, which Loki uses only in query
//! answers) are not declared, so the decoder skips them. `skein_otlp::loki_push` turns a
//! decoded request into an OTLP logs export.

/// `logproto.PushRequest`: one push.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    /// The streams and their entries.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`: one stream, its labels as text and its entries.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// The stream's labels in Prometheus's text form: `{job="api", env="prod"}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    /// The log lines of the stream.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    /// The sender's hash of the labels (not read).
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.EntryAdapter`: one log line.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    /// When it happened.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    /// The log line.
    #[prost(string, tag = "2")]
    pub line: String,
    /// Structured metadata: name and value pairs that are not stream labels.
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

/// `logproto.LabelPairAdapter`: one name and value of structured metadata.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LabelPairAdapter {
    /// The name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.protobuf.Timestamp`: seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    /// Whole seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds past `seconds`, 0 to 999,999,999.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}
