//! What differs between the log index and the span index, behind one small trait so that
//! splitting, committing and retention are written once.

use crate::schema::{LogFields, SpanFields};
use serde::Serialize;
use serde::de::DeserializeOwned;
use skein_model::{LogRecord, Span};
use tantivy::TantivyDocument;
use tantivy::schema::{Field, Schema};

/// A kind of record with its own time-split index.
pub trait Signal: Send + Sync + 'static {
    /// The model record.
    type Record: Serialize + DeserializeOwned + Send + Sync + Clone + 'static;
    /// The schema's field handles.
    type Fields: Clone + Send + Sync + 'static;
    /// Folder name under the data dir and label in logs and metrics.
    const NAME: &'static str;
    /// Builds the field handles (and the schema).
    fn fields() -> Self::Fields;
    /// The schema of the field handles.
    fn schema(f: &Self::Fields) -> &Schema;
    /// The tantivy document of a record; `json` is the record serialized; `seq` its ingest
    /// position (0: none; only logs keep it).
    fn document(f: &Self::Fields, r: &Self::Record, json: &[u8], seq: u64) -> TantivyDocument;
    /// The record's event time, Unix nanoseconds.
    fn time(r: &Self::Record) -> u64;
    /// The stored JSON blob field.
    fn doc_field(f: &Self::Fields) -> Field;
    /// The correlation keys field.
    fn keys_field(f: &Self::Fields) -> Field;
    /// The trace ID field.
    fn trace_id_field(f: &Self::Fields) -> Field;
}

/// Log records.
#[derive(Debug, Clone, Copy)]
pub struct Logs;

impl Signal for Logs {
    type Record = LogRecord;
    type Fields = LogFields;
    const NAME: &'static str = "logs";
    fn fields() -> LogFields {
        LogFields::new()
    }
    fn schema(f: &LogFields) -> &Schema {
        &f.schema
    }
    fn document(f: &LogFields, r: &LogRecord, json: &[u8], seq: u64) -> TantivyDocument {
        f.document(r, json, seq)
    }
    fn time(r: &LogRecord) -> u64 {
        r.time_unix_nano
    }
    fn doc_field(f: &LogFields) -> Field {
        f.doc
    }
    fn keys_field(f: &LogFields) -> Field {
        f.keys
    }
    fn trace_id_field(f: &LogFields) -> Field {
        f.trace_id
    }
}

/// Spans.
#[derive(Debug, Clone, Copy)]
pub struct Spans;

impl Signal for Spans {
    type Record = Span;
    type Fields = SpanFields;
    const NAME: &'static str = "spans";
    fn fields() -> SpanFields {
        SpanFields::new()
    }
    fn schema(f: &SpanFields) -> &Schema {
        &f.schema
    }
    fn document(f: &SpanFields, r: &Span, json: &[u8], _seq: u64) -> TantivyDocument {
        f.document(r, json)
    }
    fn time(r: &Span) -> u64 {
        r.start_unix_nano
    }
    fn doc_field(f: &SpanFields) -> Field {
        f.doc
    }
    fn keys_field(f: &SpanFields) -> Field {
        f.keys
    }
    fn trace_id_field(f: &SpanFields) -> Field {
        f.trace_id
    }
}
