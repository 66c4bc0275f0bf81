//! A Loki push, JSON or protobuf, read and turned into one OTLP logs export (the mapping is in
//! [`crate::loki_push`]'s documentation).
//!
//! [`decode`] reads the body into its own form ([`Push`]) without mapping anything;
//! [`Push::cost`] measures it exactly; [`Push::into_otlp`] checks every label, timestamp and
//! metadata pair and builds the export, refusing the whole push at the first bad one with what
//! is wrong and where (Loki also refuses a push whole).

use super::labels::{MAX_LABELS, MAX_LABELS_TEXT, parse_labels, valid_name};
use crate::admission::{Cost, RECORD_OVERHEAD};
use prost::Message;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use skein_model::lokipb::{EntryAdapter, PushRequest, StreamAdapter};
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use skein_model::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use skein_model::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use skein_model::proto::resource::v1::Resource;
use std::fmt;

/// How a push body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: `{"streams":[{"stream":{..},"values":[["<ns>","<line>"],..]}]}`.
    Json,
    /// `application/x-protobuf`: `logproto.PushRequest` ([`skein_model::lokipb`]).
    Protobuf,
}

/// A decoded push, before it is checked and mapped.
#[derive(Debug)]
pub enum Push {
    /// From a JSON body.
    Json(JsonPush),
    /// From a protobuf body.
    Protobuf(PushRequest),
}

/// Reads a decompressed body as `format`. Errors say what is wrong in the body.
pub fn decode(format: Format, body: &[u8]) -> Result<Push, String> {
    match format {
        Format::Json => serde_json::from_slice::<JsonPush>(body)
            .map(Push::Json)
            .map_err(|e| {
                format!(
                    "the body is not a Loki push in JSON ({{\"streams\":[{{\"stream\":{{\"label\":\"value\"}},\"values\":[[\"<unix ns>\",\"<line>\"]]}}]}}): {e}"
                )
            }),
        Format::Protobuf => PushRequest::decode(body).map(Push::Protobuf).map_err(|e| {
            format!("the body is not a Loki push in protobuf (logproto.PushRequest): {e}")
        }),
    }
}

/// The JSON body: `{"streams": [...]}`.
#[derive(Debug, Deserialize)]
pub struct JsonPush {
    /// The streams.
    pub streams: Vec<JsonStream>,
}

/// One JSON stream: its labels and its entries.
#[derive(Debug, Deserialize)]
pub struct JsonStream {
    /// The labels, in the order sent.
    pub stream: Pairs,
    /// The entries.
    #[serde(default)]
    pub values: Vec<JsonEntry>,
}

/// Names and values of a JSON object whose values are text (numbers and booleans are taken as
/// their JSON text), in the order sent.
#[derive(Debug, Default)]
pub struct Pairs(pub Vec<(String, String)>);

/// One JSON entry: `["<unix ns>", "<line>"]` or `["<unix ns>", "<line>", {metadata}]`.
#[derive(Debug)]
pub struct JsonEntry {
    /// The timestamp as sent (checked when mapped).
    pub ts: String,
    /// The log line.
    pub line: String,
    /// Structured metadata.
    pub metadata: Pairs,
}

/// A JSON value that is text: a string as it is; a number or boolean as its JSON text.
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of names and string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Pairs, A::Error> {
                let mut out = Vec::new();
                while let Some((k, Text(v))) = m.next_entry::<String, Text>()? {
                    out.push((k, v));
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for JsonEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an entry [\"<unix ns>\", \"<line>\"] or [\"<unix ns>\", \"<line>\", {metadata}]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<JsonEntry, A::Error> {
                let short = || {
                    de::Error::custom(
                        "an entry has 2 or 3 elements: [\"<unix ns>\", \"<line>\", {metadata}]",
                    )
                };
                let Text(ts) = s.next_element::<Text>()?.ok_or_else(short)?;
                let line = s.next_element::<String>()?.ok_or_else(short)?;
                let metadata = s.next_element::<Pairs>()?.unwrap_or_default();
                if s.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(short());
                }
                Ok(JsonEntry { ts, line, metadata })
            }
        }
        d.deserialize_seq(V)
    }
}

/// Per-entry bytes besides the line, the metadata and the labels: the model record and its
/// NDJSON line.
const ENTRY_BYTES: u64 = RECORD_OVERHEAD;

fn pairs_len(p: &[(String, String)]) -> u64 {
    p.iter().map(|(n, v)| (n.len() + v.len() + 48) as u64).sum()
}

impl Push {
    /// Entries and the memory they will take once mapped: each entry is a record that carries
    /// its stream's labels (the resource, repeated in every record's NDJSON line). A stream
    /// without entries counts as one record, so empty streams cannot make a push free.
    pub fn cost(&self) -> Cost {
        let mut c = Cost::default();
        let mut add = |labels: u64, entries: &mut dyn Iterator<Item = u64>| {
            let mut n = 0u64;
            for e in entries {
                n += 1;
                c.bytes = c.bytes.saturating_add(ENTRY_BYTES + 4 * e + 4 * labels);
            }
            c.records = c.records.saturating_add(n.max(1));
        };
        match self {
            Push::Json(p) => {
                for s in &p.streams {
                    add(
                        pairs_len(&s.stream.0),
                        &mut s
                            .values
                            .iter()
                            .map(|e| (e.ts.len() + e.line.len()) as u64 + pairs_len(&e.metadata.0)),
                    );
                }
            }
            Push::Protobuf(p) => {
                for s in &p.streams {
                    add(
                        s.labels.len() as u64,
                        &mut s.entries.iter().map(|e| {
                            e.line.len() as u64
                                + e.structured_metadata
                                    .iter()
                                    .map(|m| (m.name.len() + m.value.len() + 48) as u64)
                                    .sum::<u64>()
                        }),
                    );
                }
            }
        }
        c
    }

    /// Checks the push and maps it to one OTLP logs export, one `ResourceLogs` per stream.
    pub fn into_otlp(self) -> Result<ExportLogsServiceRequest, String> {
        let mut resource_logs = Vec::new();
        match self {
            Push::Json(p) => {
                for (i, s) in p.streams.into_iter().enumerate() {
                    let labels = check_pairs(s.stream.0, "stream label")
                        .map_err(|e| format!("stream {i}: {e}"))?;
                    let mut records = Vec::with_capacity(s.values.len());
                    for (j, e) in s.values.into_iter().enumerate() {
                        let at = |m: String| format!("stream {i}, entry {j}: {m}");
                        let ns = json_time(&e.ts).map_err(at)?;
                        let meta = check_pairs(e.metadata.0, "structured metadata").map_err(at)?;
                        records.push(record(ns, e.line, meta));
                    }
                    resource_logs.push(stream_logs(labels, records));
                }
            }
            Push::Protobuf(p) => {
                for (i, s) in p.streams.into_iter().enumerate() {
                    let StreamAdapter {
                        labels, entries, ..
                    } = s;
                    let labels = parse_labels(&labels)
                        .map_err(|e| format!("stream {i}: labels {}: {e}", shorten(&labels)))?;
                    let mut records = Vec::with_capacity(entries.len());
                    for (j, e) in entries.into_iter().enumerate() {
                        let at = |m: String| format!("stream {i}, entry {j}: {m}");
                        let EntryAdapter {
                            timestamp,
                            line,
                            structured_metadata,
                        } = e;
                        let ns = proto_time(timestamp).map_err(at)?;
                        let meta = structured_metadata
                            .into_iter()
                            .map(|m| (m.name, m.value))
                            .collect();
                        let meta = check_pairs(meta, "structured metadata").map_err(at)?;
                        records.push(record(ns, line, meta));
                    }
                    resource_logs.push(stream_logs(labels, records));
                }
            }
        }
        Ok(ExportLogsServiceRequest { resource_logs })
    }
}

/// At most 64 characters of `s`, for messages.
fn shorten(s: &str) -> String {
    let cut: String = s.chars().take(64).collect();
    if cut.len() < s.len() {
        format!("'{cut}...'")
    } else {
        format!("'{cut}'")
    }
}

/// Checks names and values of labels or metadata: valid names, each once, within the limits.
fn check_pairs(p: Vec<(String, String)>, what: &str) -> Result<Vec<(String, String)>, String> {
    if p.len() > MAX_LABELS {
        return Err(format!(
            "{} {what} pairs, more than the limit of {MAX_LABELS}",
            p.len()
        ));
    }
    let total: usize = p.iter().map(|(n, v)| n.len() + v.len()).sum();
    if total > MAX_LABELS_TEXT {
        return Err(format!(
            "the {what} names and values are {total} bytes, more than the limit of {MAX_LABELS_TEXT}"
        ));
    }
    for (k, (name, _)) in p.iter().enumerate() {
        if !valid_name(name) {
            return Err(format!(
                "{what} name {} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                shorten(name)
            ));
        }
        if p[..k].iter().any(|(n, _)| n == name) {
            return Err(format!("{what} '{name}' is given twice"));
        }
    }
    Ok(p)
}

/// A JSON entry's time: Unix epoch nanoseconds as a decimal string.
fn json_time(ts: &str) -> Result<u64, String> {
    if ts.is_empty() || !ts.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "timestamp {} is not Unix epoch nanoseconds as a decimal string (such as \"1700000000000000000\")",
            shorten(ts)
        ));
    }
    // Loki reads it as a signed 64-bit number; so does Skein.
    ts.parse::<i64>()
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| format!("timestamp {} is past the year 2262", shorten(ts)))
}

/// A protobuf entry's time; none or zero reads as unset (the time the collector receives it).
fn proto_time(t: Option<skein_model::lokipb::Timestamp>) -> Result<u64, String> {
    let Some(t) = t else { return Ok(0) };
    if t.seconds < 0 || !(0..1_000_000_000).contains(&t.nanos) {
        return Err(format!(
            "timestamp {}s {}ns is not a time after 1970 (nanos must be 0 to 999999999)",
            t.seconds, t.nanos
        ));
    }
    u64::try_from(t.seconds)
        .ok()
        .and_then(|s| s.checked_mul(1_000_000_000))
        .and_then(|n| n.checked_add(u64::try_from(t.nanos).ok()?))
        .ok_or_else(|| format!("timestamp {}s is past the year 2554", t.seconds))
}

fn string(v: String) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v)),
    })
}

fn kv(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: string(value),
        ..Default::default()
    }
}

/// The first non-empty value among `names`.
fn first<'a>(p: &'a [(String, String)], names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|want| {
        p.iter()
            .find(|(n, v)| n == want && !v.is_empty())
            .map(|(_, v)| v.as_str())
    })
}

/// Names whose value is a log level, in order of preference.
const LEVEL_NAMES: &[&str] = &["level", "severity", "detected_level"];

/// Severity text and number of a level name: the text as sent, the number when it is a known
/// level (`warn`, `WARNING`, `err`, `critical`, ...; unknown words get 0).
fn severity(p: &[(String, String)]) -> Option<(String, i32)> {
    first(p, LEVEL_NAMES).map(|v| {
        (
            v.to_string(),
            skein_model::severity::log_level_number(v, true).unwrap_or(0),
        )
    })
}

/// 16 or 8 bytes from 32 or 16 hex digits.
fn hex_id(s: &str, len: usize) -> Option<Vec<u8>> {
    if s.len() != 2 * len || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    (0..len)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// One entry as an OTLP log record: metadata as attributes, a level among them as its
/// severity, `trace_id` / `span_id` as its IDs when they are hex of the right length.
fn record(ns: u64, line: String, meta: Vec<(String, String)>) -> LogRecord {
    let (severity_text, severity_number) = severity(&meta).unwrap_or_default();
    let trace_id = first(&meta, &["trace_id", "traceid", "traceID"])
        .and_then(|v| hex_id(v, 16))
        .unwrap_or_default();
    let span_id = first(&meta, &["span_id", "spanid", "spanID"])
        .and_then(|v| hex_id(v, 8))
        .unwrap_or_default();
    LogRecord {
        time_unix_nano: ns,
        severity_number,
        severity_text,
        body: string(line),
        attributes: meta.into_iter().map(|(n, v)| kv(&n, v)).collect(),
        trace_id,
        span_id,
        ..Default::default()
    }
}

/// One stream as a `ResourceLogs`: its labels as resource attributes plus `service.name` and
/// `host.name` taken from them; a level label gives records without their own their severity.
fn stream_logs(labels: Vec<(String, String)>, mut records: Vec<LogRecord>) -> ResourceLogs {
    if let Some((text, number)) = severity(&labels) {
        for r in records.iter_mut().filter(|r| r.severity_text.is_empty()) {
            r.severity_text.clone_from(&text);
            r.severity_number = number;
        }
    }
    let mut attributes = Vec::with_capacity(labels.len() + 2);
    if let Some(s) = first(&labels, &["service_name", "service", "app", "job"]) {
        attributes.push(kv("service.name", s.to_string()));
    }
    if let Some(h) = first(&labels, &["host", "hostname", "instance"]) {
        attributes.push(kv("host.name", h.to_string()));
    }
    attributes.extend(labels.into_iter().map(|(n, v)| kv(&n, v)));
    ResourceLogs {
        resource: Some(Resource {
            attributes,
            ..Default::default()
        }),
        scope_logs: vec![ScopeLogs {
            scope: Some(InstrumentationScope {
                name: "loki-push".into(),
                ..Default::default()
            }),
            log_records: records,
            ..Default::default()
        }],
        ..Default::default()
    }
}
