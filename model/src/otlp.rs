//! OTLP export requests to model records.
//!
//! Conversion validates as it goes. A record with a bad ID, too many attributes or an oversized
//! body is rejected on its own (OTLP "partial success"); the rest of the batch is kept. The
//! caller decides what to answer when every record was rejected.

use crate::keys::{KeyExtractor, push_key};
use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::common::v1::{AnyValue, KeyValue, any_value};
use crate::proto::metrics::v1::metric;
use crate::proto::resource::v1::Resource;
use crate::{Attributes, LogRecord, Span, SpanEvent, SpanLink};
// Re-exported so that callers of the severity names through `otlp` keep working.
pub use crate::severity::{severity_name, severity_number_of};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Per-record limits. A record over a limit is rejected, not cut, so nothing is silently lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most attributes on one record (log, span, span event or link), resource attributes
    /// counted apart. Default 512.
    pub max_attributes: usize,
    /// Largest log body or attribute value, in bytes. Default 1 MiB.
    pub max_value_bytes: usize,
    /// Most events plus links on one span. Default 1024.
    pub max_span_events: usize,
    /// Largest resource of a record (its attributes, protobuf-encoded), in bytes. Every
    /// stored record repeats its resource, so a large one multiplies. Default 64 KiB.
    pub max_resource_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_attributes: 512,
            max_value_bytes: 1024 * 1024,
            max_span_events: 1024,
            max_resource_bytes: 64 * 1024,
        }
    }
}

/// Why records of a batch were rejected: a count and the first reason, for the OTLP
/// partial-success answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejection {
    /// How many records were rejected.
    pub count: u64,
    /// The first reason, naming the record.
    pub first_reason: Option<String>,
}

impl Rejection {
    fn add(&mut self, reason: impl FnOnce() -> String) {
        self.count += 1;
        if self.first_reason.is_none() {
            self.first_reason = Some(reason());
        }
    }
}

/// Deepest nesting of arrays and maps kept in an attribute value; deeper levels become text.
const MAX_DEPTH: usize = 8;

/// An OTLP `AnyValue` as JSON. Bytes become lowercase hex.
pub fn any_to_json(v: &AnyValue) -> Value {
    any_to_json_depth(v, 0)
}

fn any_to_json_depth(v: &AnyValue, depth: usize) -> Value {
    use any_value::Value as V;
    match &v.value {
        None => Value::Null,
        Some(V::StringValue(s)) => Value::String(s.clone()),
        Some(V::BoolValue(b)) => Value::Bool(*b),
        Some(V::IntValue(i)) => Value::from(*i),
        Some(V::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(d.to_string())),
        Some(V::BytesValue(b)) => Value::String(const_hex::encode(b)),
        Some(V::ArrayValue(a)) if depth < MAX_DEPTH => Value::Array(
            a.values
                .iter()
                .map(|x| any_to_json_depth(x, depth + 1))
                .collect(),
        ),
        Some(V::KvlistValue(kv)) if depth < MAX_DEPTH => {
            Value::Object(kvs_to_map(&kv.values, depth + 1))
        }
        Some(_) => Value::String("[nested too deep]".into()),
    }
}

fn kvs_to_map(kvs: &[KeyValue], depth: usize) -> Attributes {
    let mut m = Attributes::new();
    for kv in kvs {
        let v = kv
            .value
            .as_ref()
            .map(|v| any_to_json_depth(v, depth))
            .unwrap_or(Value::Null);
        m.insert(kv.key.clone(), v);
    }
    m
}

/// Attributes as JSON, or the reason they break a limit.
fn attributes(kvs: &[KeyValue], limits: &Limits) -> Result<Attributes, String> {
    if kvs.len() > limits.max_attributes {
        return Err(format!(
            "{} attributes, more than the limit of {}",
            kvs.len(),
            limits.max_attributes
        ));
    }
    for kv in kvs {
        if let Some(any_value::Value::StringValue(s)) =
            kv.value.as_ref().and_then(|v| v.value.as_ref())
            && s.len() > limits.max_value_bytes
        {
            return Err(format!(
                "attribute '{}' is {} bytes, more than the limit of {}",
                kv.key,
                s.len(),
                limits.max_value_bytes
            ));
        }
    }
    Ok(kvs_to_map(kvs, 0))
}

/// Whether a resource is within `limits.max_resource_bytes`.
fn resource_fits(r: Option<&Resource>, limits: &Limits) -> Result<(), String> {
    let n = r.map_or(0, prost::Message::encoded_len);
    if n > limits.max_resource_bytes {
        return Err(format!(
            "its resource is {n} bytes, more than the limit of {} (limits.max_resource_bytes)",
            limits.max_resource_bytes
        ));
    }
    Ok(())
}

/// Service and host of a resource, and all its attributes.
struct ResourceInfo {
    service: String,
    host: String,
    attributes: std::sync::Arc<Attributes>,
}

fn resource_info(r: Option<&Resource>) -> ResourceInfo {
    let attributes = r.map(|r| kvs_to_map(&r.attributes, 0)).unwrap_or_default();
    let text = |k: &str| match attributes.get(k) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let mut service = text("service.name");
    if service.is_empty() {
        service = "unknown_service".into();
    }
    let host = text("host.name");
    ResourceInfo {
        service,
        host,
        attributes: std::sync::Arc::new(attributes),
    }
}

/// Hex of an ID that must be `len` bytes and not all zero.
fn required_id(bytes: &[u8], len: usize, what: &str) -> Result<String, String> {
    if bytes.len() != len {
        return Err(format!(
            "{what} is {} bytes, it must be {len} bytes",
            bytes.len()
        ));
    }
    if bytes.iter().all(|b| *b == 0) {
        return Err(format!("{what} is all zeros"));
    }
    Ok(const_hex::encode(bytes))
}

/// Hex of an optional ID: empty (or all zeros, which some SDKs send for "none") reads as none;
/// any other length than `len` is an error.
fn optional_id(bytes: &[u8], len: usize, what: &str) -> Result<String, String> {
    if bytes.is_empty() || bytes.iter().all(|b| *b == 0) && bytes.len() == len {
        return Ok(String::new());
    }
    required_id(bytes, len, what)
}

/// A log body as text: strings as they are, anything else as compact JSON.
fn body_text(body: Option<&AnyValue>) -> String {
    match body.and_then(|b| b.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(_) => body.map(|b| any_to_json(b).to_string()).unwrap_or_default(),
    }
}

/// Converts an OTLP logs export. `received_unix_nano` fills in records with neither an event
/// nor an observed time.
pub fn logs_from_otlp(
    req: &ExportLogsServiceRequest,
    keys: &KeyExtractor,
    limits: &Limits,
    received_unix_nano: u64,
) -> (Vec<LogRecord>, Rejection) {
    let mut out = Vec::new();
    let mut rejected = Rejection::default();
    let mut index = 0usize;
    for rl in &req.resource_logs {
        if let Err(e) = resource_fits(rl.resource.as_ref(), limits) {
            for _ in rl.scope_logs.iter().flat_map(|sl| &sl.log_records) {
                let i = index;
                index += 1;
                rejected.add(|| format!("log record {i}: {e}"));
            }
            continue;
        }
        let res = resource_info(rl.resource.as_ref());
        let mut res_keys = Vec::new();
        keys.add_from_attributes(&res.attributes, &mut res_keys);
        for sl in &rl.scope_logs {
            for lr in &sl.log_records {
                let i = index;
                index += 1;
                match log_record(lr, &res, &res_keys, keys, limits, received_unix_nano) {
                    Ok(r) => out.push(r),
                    Err(e) => rejected.add(|| format!("log record {i}: {e}")),
                }
            }
        }
    }
    (out, rejected)
}

fn log_record(
    lr: &crate::proto::logs::v1::LogRecord,
    res: &ResourceInfo,
    res_keys: &[String],
    keys: &KeyExtractor,
    limits: &Limits,
    received: u64,
) -> Result<LogRecord, String> {
    let body = body_text(lr.body.as_ref());
    if body.len() > limits.max_value_bytes {
        return Err(format!(
            "body is {} bytes, more than the limit of {}",
            body.len(),
            limits.max_value_bytes
        ));
    }
    let attributes = attributes(&lr.attributes, limits)?;
    let trace_id = optional_id(&lr.trace_id, 16, "trace_id")?;
    let span_id = optional_id(&lr.span_id, 8, "span_id")?;
    let time = [lr.time_unix_nano, lr.observed_time_unix_nano, received]
        .into_iter()
        .find(|t| *t != 0)
        .unwrap_or(received);
    let mut k = Vec::new();
    keys.add_from_attributes(&attributes, &mut k);
    keys.add_from_body(&body, &mut k);
    for rk in res_keys {
        push_key(&mut k, rk.clone());
    }
    Ok(LogRecord {
        time_unix_nano: time,
        observed_time_unix_nano: lr.observed_time_unix_nano,
        service: res.service.clone(),
        host: res.host.clone(),
        severity_text: if lr.severity_text.is_empty() {
            severity_name(lr.severity_number).to_string()
        } else {
            lr.severity_text.clone()
        },
        severity_number: lr.severity_number,
        body,
        trace_id,
        span_id,
        attributes,
        resource: res.attributes.clone(),
        keys: k,
    })
}

/// Converts an OTLP traces export.
pub fn spans_from_otlp(
    req: &ExportTraceServiceRequest,
    keys: &KeyExtractor,
    limits: &Limits,
) -> (Vec<Span>, Rejection) {
    let mut out = Vec::new();
    let mut rejected = Rejection::default();
    let mut index = 0usize;
    for rs in &req.resource_spans {
        if let Err(e) = resource_fits(rs.resource.as_ref(), limits) {
            for _ in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                let i = index;
                index += 1;
                rejected.add(|| format!("span {i}: {e}"));
            }
            continue;
        }
        let res = resource_info(rs.resource.as_ref());
        let mut res_keys = Vec::new();
        keys.add_from_attributes(&res.attributes, &mut res_keys);
        for ss in &rs.scope_spans {
            for s in &ss.spans {
                let i = index;
                index += 1;
                match span(s, &res, &res_keys, keys, limits) {
                    Ok(sp) => out.push(sp),
                    Err(e) => rejected.add(|| format!("span {i}: {e}")),
                }
            }
        }
    }
    (out, rejected)
}

fn span(
    s: &crate::proto::trace::v1::Span,
    res: &ResourceInfo,
    res_keys: &[String],
    keys: &KeyExtractor,
    limits: &Limits,
) -> Result<Span, String> {
    let trace_id = required_id(&s.trace_id, 16, "trace_id")?;
    let span_id = required_id(&s.span_id, 8, "span_id")?;
    let parent_span_id = optional_id(&s.parent_span_id, 8, "parent_span_id")?;
    if s.name.len() > limits.max_value_bytes {
        return Err(format!("name is {} bytes, over the limit", s.name.len()));
    }
    let attributes = attributes(&s.attributes, limits)?;
    if s.events.len() + s.links.len() > limits.max_span_events {
        return Err(format!(
            "{} events and links, more than the limit of {}",
            s.events.len() + s.links.len(),
            limits.max_span_events
        ));
    }
    let mut events = Vec::with_capacity(s.events.len());
    for e in &s.events {
        events.push(SpanEvent {
            time_unix_nano: e.time_unix_nano,
            name: e.name.clone(),
            attributes: attributes_of_part(&e.attributes, limits, "event")?,
        });
    }
    let mut links = Vec::with_capacity(s.links.len());
    for l in &s.links {
        links.push(SpanLink {
            trace_id: required_id(&l.trace_id, 16, "link trace_id")?,
            span_id: required_id(&l.span_id, 8, "link span_id")?,
            attributes: attributes_of_part(&l.attributes, limits, "link")?,
        });
    }
    let mut k = Vec::new();
    keys.add_from_attributes(&attributes, &mut k);
    for rk in res_keys {
        push_key(&mut k, rk.clone());
    }
    let (status_code, status_message) = match &s.status {
        Some(st) => (status_name(st.code), st.message.clone()),
        None => ("unset", String::new()),
    };
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        service: res.service.clone(),
        host: res.host.clone(),
        name: s.name.clone(),
        kind: kind_name(s.kind).to_string(),
        start_unix_nano: s.start_time_unix_nano,
        end_unix_nano: s.end_time_unix_nano,
        duration_ns: s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano),
        status_code: status_code.to_string(),
        status_message,
        attributes,
        resource: res.attributes.clone(),
        events,
        links,
        keys: k,
    })
}

fn attributes_of_part(kvs: &[KeyValue], limits: &Limits, part: &str) -> Result<Attributes, String> {
    attributes(kvs, limits).map_err(|e| format!("{part}: {e}"))
}

/// The name of an OTLP span kind number.
pub fn kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    }
}

/// The name of an OTLP status code number.
pub fn status_name(code: i32) -> &'static str {
    match code {
        1 => "ok",
        2 => "error",
        _ => "unset",
    }
}

/// Counts the data points of a metrics export, for acknowledgement counters.
pub fn metric_points(req: &ExportMetricsServiceRequest) -> u64 {
    let mut n = 0u64;
    for rm in &req.resource_metrics {
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                n += match &m.data {
                    Some(metric::Data::Gauge(g)) => g.data_points.len(),
                    Some(metric::Data::Sum(s)) => s.data_points.len(),
                    Some(metric::Data::Histogram(h)) => h.data_points.len(),
                    Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
                    Some(metric::Data::Summary(s)) => s.data_points.len(),
                    None => 0,
                } as u64;
            }
        }
    }
    n
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::KeyConfig;
    use crate::proto::common::v1::{AnyValue, KeyValue, any_value};
    use crate::proto::logs::v1::{LogRecord as PLog, ResourceLogs, ScopeLogs};
    use crate::proto::trace::v1::{ResourceSpans, ScopeSpans, Span as PSpan, Status};

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    fn resource(service: &str) -> Option<Resource> {
        Some(Resource {
            attributes: vec![kv("service.name", service), kv("host.name", "h1")],
            ..Default::default()
        })
    }

    fn logs_req(records: Vec<PLog>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource("payment"),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn x() -> KeyExtractor {
        KeyExtractor::new(&KeyConfig::default())
    }

    #[test]
    fn log_records_carry_resource_ids_and_keys() {
        let req = logs_req(vec![PLog {
            time_unix_nano: 5,
            severity_number: 17,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue("declined".into())),
            }),
            attributes: vec![kv("x-request-id", "r-1")],
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            ..Default::default()
        }]);
        let (recs, rej) = logs_from_otlp(&req, &x(), &Limits::default(), 99);
        assert_eq!(rej.count, 0);
        let r = &recs[0];
        assert_eq!(r.service, "payment");
        assert_eq!(r.host, "h1");
        assert_eq!(r.severity_text, "ERROR");
        assert_eq!(r.trace_id, "ab".repeat(16));
        assert_eq!(r.span_id, "cd".repeat(8));
        assert_eq!(r.keys, vec!["r-1".to_string()]);
        assert_eq!(r.time_unix_nano, 5);
    }

    #[test]
    fn missing_times_fall_back_to_observed_then_received() {
        let req = logs_req(vec![
            PLog {
                observed_time_unix_nano: 7,
                ..Default::default()
            },
            PLog::default(),
        ]);
        let (recs, _) = logs_from_otlp(&req, &x(), &Limits::default(), 99);
        assert_eq!(recs[0].time_unix_nano, 7);
        assert_eq!(recs[1].time_unix_nano, 99);
    }

    #[test]
    fn bad_records_are_rejected_alone() {
        let too_many: Vec<KeyValue> = (0..600).map(|i| kv(&format!("k{i}"), "v")).collect();
        let req = logs_req(vec![
            PLog {
                attributes: too_many,
                ..Default::default()
            },
            PLog {
                trace_id: vec![1; 5],
                ..Default::default()
            },
            PLog {
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("x".repeat(2 << 20))),
                }),
                ..Default::default()
            },
            PLog {
                // All zeros reads as "no trace".
                trace_id: vec![0; 16],
                ..Default::default()
            },
        ]);
        let (recs, rej) = logs_from_otlp(&req, &x(), &Limits::default(), 1);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].trace_id, "");
        assert_eq!(rej.count, 3);
        let reason = rej.first_reason.unwrap();
        assert!(
            reason.contains("log record 0") && reason.contains("512"),
            "{reason}"
        );
    }

    #[test]
    fn spans_need_valid_ids_and_map_kind_and_status() {
        let good = PSpan {
            trace_id: vec![0x11; 16],
            span_id: vec![0x22; 8],
            parent_span_id: vec![0x33; 8],
            name: "charge".into(),
            kind: 3,
            start_time_unix_nano: 10,
            end_time_unix_nano: 25,
            attributes: vec![kv("request_id", "r-9")],
            status: Some(Status {
                code: 2,
                message: "declined".into(),
            }),
            ..Default::default()
        };
        let zero = PSpan {
            trace_id: vec![0; 16],
            ..good.clone()
        };
        let short = PSpan {
            span_id: vec![1; 3],
            ..good.clone()
        };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: resource("payment"),
                scope_spans: vec![ScopeSpans {
                    spans: vec![good, zero, short],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let (spans, rej) = spans_from_otlp(&req, &x(), &Limits::default());
        assert_eq!(spans.len(), 1);
        assert_eq!(rej.count, 2);
        assert!(rej.first_reason.unwrap().contains("all zeros"));
        let s = &spans[0];
        assert_eq!(s.kind, "client");
        assert_eq!(s.status_code, "error");
        assert_eq!(s.duration_ns, 15);
        assert_eq!(s.parent_span_id, "33".repeat(8));
        assert_eq!(s.keys, vec!["r-9".to_string()]);
    }

    #[test]
    fn otlp_json_from_an_sdk_decodes() {
        // As the OTLP spec's example: hex IDs, integer enums, 64-bit ints as strings.
        let body = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"gateway"}}]},
          "scopeSpans":[{"scope":{"name":"s"},"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174",
          "name":"GET /","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,
          "attributes":[{"key":"n","value":{"intValue":"42"}},{"key":"f","value":{"doubleValue":1.5}}],"status":{"code":1}}]}]}]}"#;
        let req: ExportTraceServiceRequest = serde_json::from_str(body).unwrap();
        let (spans, rej) = spans_from_otlp(&req, &x(), &Limits::default());
        assert_eq!(rej.count, 0);
        assert_eq!(spans[0].trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(spans[0].duration_ns, 1_000_000_000);
        assert_eq!(spans[0].status_code, "ok");
        assert_eq!(spans[0].attributes["n"], serde_json::json!(42));
    }
}
