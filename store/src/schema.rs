//! Tantivy schemas for logs and spans, and model records to tantivy documents.
//!
//! What is indexed is chosen per field for what people search, because schema choices decide
//! ingest cost (see the architecture doc's measurements):
//! - correlation keys, IDs, service, host, span name, status: raw strings (one term each);
//! - severity: one lowercase term, plus its number as a fast field for "warn and above";
//! - log body: full text with frequencies but no positions (phrase queries are not supported:
//!   positions roughly halve ingest speed);
//! - attributes: a JSON field with raw (untokenized) values, so `http.status_code:500` and
//!   `user_id:u-7` work without the cost of tokenizing every value;
//! - the whole record: one stored JSON blob in a zstd doc store, returned as it is.

use skein_model::{LogRecord, Span};
use tantivy::TantivyDocument;
use tantivy::schema::{
    Field, IndexRecordOption, JsonObjectOptions, NumericOptions, STORED, Schema, TextFieldIndexing,
    TextOptions,
};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, TextAnalyzer, TokenizerManager};

/// Name of the raw tokenizer that lowercases (severity).
pub const RAW_LOWER: &str = "raw_lower";

/// Registers Skein's tokenizers on an index's manager.
pub fn register_tokenizers(manager: &TokenizerManager) {
    manager.register(
        RAW_LOWER,
        TextAnalyzer::builder(RawTokenizer::default())
            .filter(LowerCaser)
            .build(),
    );
}

// Fieldnorms (one byte per field per record) serve relevance scoring only; Skein orders results
// by time, never by score, so no field keeps them.

fn raw_indexing() -> TextFieldIndexing {
    TextFieldIndexing::default()
        .set_tokenizer("raw")
        .set_index_option(IndexRecordOption::Basic)
        .set_fieldnorms(false)
}

/// An untokenized string: one term per value.
fn raw() -> TextOptions {
    TextOptions::default().set_indexing_options(raw_indexing())
}

/// An untokenized string that is also a fast field.
fn raw_fast() -> TextOptions {
    raw().set_fast("raw")
}

/// An indexed and fast integer.
fn number() -> NumericOptions {
    NumericOptions::default().set_indexed().set_fast()
}

fn raw_json() -> JsonObjectOptions {
    JsonObjectOptions::default()
        .set_indexing_options(raw_indexing())
        .set_expand_dots_enabled()
}

fn lower_string() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(RAW_LOWER)
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    )
}

/// The log index's fields.
#[derive(Debug, Clone)]
pub struct LogFields {
    /// The schema they belong to.
    pub schema: Schema,
    /// Event time, Unix nanoseconds (i64; indexed and fast).
    pub time: Field,
    /// Service name (raw).
    pub service: Field,
    /// Host name (raw).
    pub host: Field,
    /// Severity level, lowercase (`error`).
    pub severity: Field,
    /// OTLP severity number (fast, for "at least warn").
    pub severity_number: Field,
    /// Message text.
    pub body: Field,
    /// Trace ID hex (raw).
    pub trace_id: Field,
    /// Correlation keys other than the record's trace ID (raw, several per record). The trace
    /// ID is only in `trace_id`: indexing it twice cost about a tenth of the index.
    pub keys: Field,
    /// Attributes and resource attributes (JSON, raw values).
    pub attributes: Field,
    /// The whole record as JSON (stored only).
    pub doc: Field,
    /// Ingest position (u64; indexed and fast): WAL sequence number × 2^24 + the record's
    /// place in its batch. Increases in arrival order, so a live tail resumes after the last
    /// one it sent. Last in the schema: splits written before it existed lack only this field.
    pub seq: Field,
}

/// Records one WAL batch may hold for [`LogFields::seq`] to stay unique (2^24).
pub const SEQ_BATCH: u64 = 1 << 24;

/// The ingest position of the first record of WAL record `wal_seq` holding `records` records:
/// `wal_seq` × 2^24. A batch with more records than that (only with a
/// `limits.max_request_bytes` far above the default) gets none (0): still searched, not
/// tailed.
pub fn first_ingest_position(wal_seq: u64, records: usize) -> u64 {
    if (records as u64) < SEQ_BATCH {
        wal_seq.saturating_mul(SEQ_BATCH)
    } else {
        0
    }
}

impl LogFields {
    /// Builds the schema.
    pub fn new() -> Self {
        let mut b = Schema::builder();
        let time = b.add_i64_field("time", number());
        let service = b.add_text_field("service", raw_fast());
        let host = b.add_text_field("host", raw());
        let severity = b.add_text_field("severity", lower_string());
        let severity_number = b.add_u64_field("severity_number", number());
        let body = b.add_text_field(
            "body",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("default")
                    .set_index_option(IndexRecordOption::WithFreqs)
                    .set_fieldnorms(false),
            ),
        );
        let trace_id = b.add_text_field("trace_id", raw());
        let keys = b.add_text_field("keys", raw());
        let attributes = b.add_json_field("attributes", raw_json());
        let doc = b.add_bytes_field("doc", STORED);
        let seq = b.add_u64_field("seq", number());
        LogFields {
            schema: b.build(),
            time,
            service,
            host,
            severity,
            severity_number,
            body,
            trace_id,
            keys,
            attributes,
            doc,
            seq,
        }
    }

    /// The tantivy document of a record; `json` is the record already serialized; `seq` is
    /// its ingest position (0: none, for records not from the WAL).
    pub fn document(&self, r: &LogRecord, json: &[u8], seq: u64) -> TantivyDocument {
        let mut d = TantivyDocument::new();
        d.add_i64(self.time, clamp_i64(r.time_unix_nano));
        d.add_text(self.service, &r.service);
        if !r.host.is_empty() {
            d.add_text(self.host, &r.host);
        }
        let level = level_of(r.severity_number, &r.severity_text);
        if !level.is_empty() {
            d.add_text(self.severity, level);
        }
        d.add_u64(
            self.severity_number,
            u64::try_from(r.severity_number).unwrap_or(0),
        );
        d.add_text(self.body, &r.body);
        if !r.trace_id.is_empty() {
            d.add_text(self.trace_id, &r.trace_id);
        }
        for k in &r.keys {
            d.add_text(self.keys, k);
        }
        add_attributes(&mut d, self.attributes, &r.attributes, &r.resource);
        d.add_bytes(self.doc, json);
        if seq > 0 {
            d.add_u64(self.seq, seq);
        }
        d
    }
}

impl Default for LogFields {
    fn default() -> Self {
        Self::new()
    }
}

/// The span index's fields.
#[derive(Debug, Clone)]
pub struct SpanFields {
    /// The schema they belong to.
    pub schema: Schema,
    /// Start time, Unix nanoseconds (i64; indexed and fast).
    pub time: Field,
    /// Duration in nanoseconds (u64; indexed and fast).
    pub duration: Field,
    /// Service name (raw).
    pub service: Field,
    /// Host name (raw).
    pub host: Field,
    /// Operation (span) name (raw).
    pub name: Field,
    /// Span kind (`server`, `client`, ...).
    pub kind: Field,
    /// Status (`unset`, `ok`, `error`).
    pub status: Field,
    /// Trace ID hex (raw and fast: trace search reads it without loading documents).
    pub trace_id: Field,
    /// Span ID hex.
    pub span_id: Field,
    /// Correlation keys other than the trace ID (see [`LogFields::keys`]).
    pub keys: Field,
    /// Attributes and resource attributes (JSON, raw values).
    pub attributes: Field,
    /// The whole span as JSON (stored only).
    pub doc: Field,
}

impl SpanFields {
    /// Builds the schema.
    pub fn new() -> Self {
        let mut b = Schema::builder();
        let time = b.add_i64_field("time", number());
        let duration = b.add_u64_field("duration", number());
        let service = b.add_text_field("service", raw_fast());
        let host = b.add_text_field("host", raw());
        let name = b.add_text_field("name", raw_fast());
        let kind = b.add_text_field("kind", raw());
        let status = b.add_text_field("status", raw());
        let trace_id = b.add_text_field("trace_id", raw_fast());
        let span_id = b.add_text_field("span_id", raw());
        let keys = b.add_text_field("keys", raw());
        let attributes = b.add_json_field("attributes", raw_json());
        let doc = b.add_bytes_field("doc", STORED);
        SpanFields {
            schema: b.build(),
            time,
            duration,
            service,
            host,
            name,
            kind,
            status,
            trace_id,
            span_id,
            keys,
            attributes,
            doc,
        }
    }

    /// The tantivy document of a span; `json` is the span already serialized.
    pub fn document(&self, s: &Span, json: &[u8]) -> TantivyDocument {
        let mut d = TantivyDocument::new();
        d.add_i64(self.time, clamp_i64(s.start_unix_nano));
        d.add_u64(self.duration, s.duration_ns);
        d.add_text(self.service, &s.service);
        if !s.host.is_empty() {
            d.add_text(self.host, &s.host);
        }
        d.add_text(self.name, &s.name);
        d.add_text(self.kind, &s.kind);
        d.add_text(self.status, &s.status_code);
        d.add_text(self.trace_id, &s.trace_id);
        d.add_text(self.span_id, &s.span_id);
        for k in &s.keys {
            d.add_text(self.keys, k);
        }
        add_attributes(&mut d, self.attributes, &s.attributes, &s.resource);
        d.add_bytes(self.doc, json);
        d
    }
}

impl Default for SpanFields {
    fn default() -> Self {
        Self::new()
    }
}

/// Unix nanoseconds as i64, the type of tantivy's time fields (saturating past year 2262).
pub fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The lowercase level of a record: from its number when set, else from its text.
pub fn level_of(number: i32, text: &str) -> &'static str {
    let from_number = skein_model::otlp::severity_name(number);
    if !from_number.is_empty() {
        return level_lower(from_number);
    }
    match skein_model::otlp::severity_number_of(text) {
        Some(n) => level_lower(skein_model::otlp::severity_name(n)),
        None => "",
    }
}

fn level_lower(upper: &str) -> &'static str {
    match upper {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" => "error",
        "FATAL" => "fatal",
        _ => "",
    }
}

/// Record attributes and resource attributes go into one JSON field; a record attribute wins
/// when both have the same name. Values that are strings longer than 256 bytes are not
/// indexed (they are kept in the stored record): nobody types them as a search term.
fn add_attributes(
    d: &mut TantivyDocument,
    field: Field,
    attrs: &skein_model::Attributes,
    resource: &skein_model::Attributes,
) {
    use tantivy::schema::OwnedValue;
    let mut obj: Vec<(String, OwnedValue)> = Vec::with_capacity(attrs.len() + resource.len());
    for (k, v) in resource {
        if attrs.contains_key(k) {
            continue;
        }
        if let Some(ov) = indexable(v) {
            obj.push((k.clone(), ov));
        }
    }
    for (k, v) in attrs {
        if let Some(ov) = indexable(v) {
            obj.push((k.clone(), ov));
        }
    }
    if !obj.is_empty() {
        d.add_field_value(field, &OwnedValue::Object(obj));
    }
}

fn indexable(v: &serde_json::Value) -> Option<tantivy::schema::OwnedValue> {
    use tantivy::schema::OwnedValue;
    match v {
        serde_json::Value::String(s) if s.len() <= 256 => Some(OwnedValue::Str(s.clone())),
        serde_json::Value::Bool(b) => Some(OwnedValue::Bool(*b)),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(OwnedValue::I64)
            .or_else(|| n.as_u64().map(OwnedValue::U64))
            .or_else(|| n.as_f64().map(OwnedValue::F64)),
        _ => None,
    }
}
