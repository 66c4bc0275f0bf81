//! Admission by cost, not bytes: what a request will cost in memory once decoded, converted
//! and encoded for the WAL, measured on the wire before it is decoded, and a memory budget
//! that requests in flight share.
//!
//! Why: a body limit bounds bytes, not records. 16 MiB of empty log records is 8 million
//! records (2 bytes each on the wire, ~16 KB gzipped), each of which becomes a protobuf
//! struct, a model record and an NDJSON line that repeats its resource. Measured before this
//! check, one such request drove the collector to 4.7 GB.
//!
//! The estimate walks the protobuf wire format without allocating (JSON bodies: one scan
//! that counts objects), counting records and the bytes that each will be copied into. A
//! request over `max_records_per_request`, or whose cost alone is over the whole budget, can
//! never be taken: 413 / `RESOURCE_EXHAUSTED` without retry information. A request that
//! would fit but not now: 429 with `Retry-After` / `RESOURCE_EXHAUSTED` with retry info.

use crate::sink::Signal;
use prost::Message;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Cost of one record besides its own bytes: the protobuf struct, the model record and the
/// NDJSON line's field names, measured at about 750 bytes for an empty log record.
pub const RECORD_OVERHEAD: u64 = 1024;

/// Cost of one metric sample (a series of the batch: name, kind, labels) besides its labels.
pub const SAMPLE_OVERHEAD: u64 = 256;

/// Limits on what one request may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Most records (log records, spans or metric samples) in one request. Default 100,000.
    pub max_records_per_request: u64,
    /// Memory for requests being decoded and converted at once, in bytes. Default 256 MiB.
    pub memory_budget_bytes: u64,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits {
            max_records_per_request: 100_000,
            memory_budget_bytes: 256 * 1024 * 1024,
        }
    }
}

/// What a request will cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Records: log records, spans, or metric samples (one per bucket, sum and count).
    pub records: u64,
    /// Estimated bytes of memory while it is handled.
    pub bytes: u64,
}

/// Why a request is not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// It can never be taken as it is (413): send it in smaller pieces.
    TooLarge(String),
    /// Not now (429 with Retry-After): the memory budget is in use by other requests.
    Busy(String),
    /// The body is not a valid message (400).
    Malformed(String),
}

/// The shared memory budget of requests in flight.
#[derive(Debug, Clone)]
pub struct Admission {
    limits: AdmissionLimits,
    /// Permits of [`UNIT`] bytes each.
    budget: Arc<Semaphore>,
}

/// Bytes per budget permit.
const UNIT: u64 = 1024;

impl Admission {
    /// A budget of `limits.memory_budget_bytes`.
    pub fn new(limits: AdmissionLimits) -> Self {
        let units = (limits.memory_budget_bytes / UNIT).clamp(1, u32::MAX as u64);
        Admission {
            limits,
            budget: Arc::new(Semaphore::new(units as usize)),
        }
    }

    /// The limits.
    pub fn limits(&self) -> AdmissionLimits {
        self.limits
    }

    /// Reserves memory for a request of `cost`, held until the returned permit drops.
    pub fn reserve(&self, signal: &str, cost: Cost) -> Result<OwnedSemaphorePermit, Refusal> {
        let l = self.limits;
        if cost.records > l.max_records_per_request {
            return Err(Refusal::TooLarge(format!(
                "the request holds {} {signal} records, more than the limit of {} (limits.max_records_per_request); send smaller batches",
                cost.records, l.max_records_per_request
            )));
        }
        if cost.bytes > l.memory_budget_bytes {
            return Err(Refusal::TooLarge(format!(
                "the request would take about {} MiB of memory to handle, more than the whole budget of {} MiB (limits.memory_budget_mb); send smaller batches or smaller resources",
                cost.bytes.div_ceil(1 << 20),
                l.memory_budget_bytes >> 20
            )));
        }
        let units = cost.bytes.div_ceil(UNIT).clamp(1, u32::MAX as u64) as u32;
        self.budget
            .clone()
            .try_acquire_many_owned(units)
            .map_err(|_| {
                Refusal::Busy(format!(
                    "the memory budget for requests in flight ({} MiB, limits.memory_budget_mb) is in use; retry later",
                    l.memory_budget_bytes >> 20
                ))
            })
    }
}

/// One field of a protobuf message: its number and its value.
enum Field<'a> {
    Varint,
    Fixed,
    Bytes(&'a [u8]),
}

/// Walks the fields of one protobuf message. Malformed input ends the walk with an error.
struct Fields<'a> {
    b: &'a [u8],
}

fn varint(b: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for i in 0..10 {
        let Some((&c, rest)) = b.split_first() else {
            return Err("a varint is cut short".into());
        };
        *b = rest;
        v |= u64::from(c & 0x7f) << (7 * i);
        if c & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("a varint is longer than 10 bytes".into())
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Field<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.b.is_empty() {
            return None;
        }
        let r = (|| {
            let key = varint(&mut self.b)?;
            let (number, wire) = (key >> 3, key & 7);
            let field = match wire {
                0 => {
                    varint(&mut self.b)?;
                    Field::Varint
                }
                1 | 5 => {
                    let n = if wire == 1 { 8 } else { 4 };
                    if self.b.len() < n {
                        return Err("a fixed-size field is cut short".to_string());
                    }
                    self.b = &self.b[n..];
                    Field::Fixed
                }
                2 => {
                    let n = usize::try_from(varint(&mut self.b)?).unwrap_or(usize::MAX);
                    if self.b.len() < n {
                        return Err("a length-delimited field is cut short".to_string());
                    }
                    let (v, rest) = self.b.split_at(n);
                    self.b = rest;
                    Field::Bytes(v)
                }
                w => return Err(format!("wire type {w} is not used by OTLP or remote write")),
            };
            Ok((number, field))
        })();
        if r.is_err() {
            // Stop after the first error.
            self.b = &[];
        }
        Some(r)
    }
}

fn fields(b: &[u8]) -> Fields<'_> {
    Fields { b }
}

/// The embedded messages of field `number` in message `b`.
fn messages(b: &[u8], number: u64) -> impl Iterator<Item = Result<&[u8], String>> {
    fields(b).filter_map(move |f| match f {
        Ok((n, Field::Bytes(m))) if n == number => Some(Ok(m)),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    })
}

/// Total length of the embedded messages of field `number` (a resource, attributes).
fn length_of(b: &[u8], number: u64) -> Result<u64, String> {
    let mut n = 0u64;
    for m in messages(b, number) {
        n += m?.len() as u64;
    }
    Ok(n)
}

/// Calls `f(record, resource_len)` for every record of an export request in protobuf:
/// `ResourceX` (1) → `ScopeX` (2) → records (2), with the length of the record's resource.
/// The three OTLP signals share this shape.
fn each_record(
    body: &[u8],
    mut f: impl FnMut(&[u8], u64) -> Result<(), String>,
) -> Result<(), String> {
    for resource in messages(body, 1) {
        let resource = resource?;
        let resource_len = length_of(resource, 1)?;
        for scope in messages(resource, 2) {
            for record in messages(scope?, 2) {
                f(record?, resource_len)?;
            }
        }
    }
    Ok(())
}

/// The cost of a logs or traces export in protobuf: each record's cost counts its own bytes
/// and its resource's, which every NDJSON line repeats.
pub fn records_cost(body: &[u8]) -> Result<Cost, String> {
    let mut c = Cost {
        records: 0,
        bytes: body.len() as u64,
    };
    each_record(body, |record, resource_len| {
        c.records += 1;
        c.bytes = c
            .bytes
            .saturating_add(RECORD_OVERHEAD + 4 * record.len() as u64 + 2 * resource_len);
        Ok(())
    })?;
    Ok(c)
}

/// Samples one metric data point becomes and the bytes of its own attributes, by the
/// `Metric.data` field that holds it.
fn point_shape(data_field: u64, point: &[u8]) -> Result<(u64, u64), String> {
    let (attrs_field, samples) = match data_field {
        // Gauge, Sum: NumberDataPoint, attributes 7.
        5 | 7 => (7, 1),
        // Histogram: attributes 9, bucket_counts 6 (fixed64: packed or one field each).
        9 => {
            let mut buckets = 0u64;
            for f in fields(point) {
                match f? {
                    (6, Field::Bytes(b)) => buckets += b.len() as u64 / 8,
                    (6, _) => buckets += 1,
                    _ => {}
                }
            }
            (9, buckets + 2)
        }
        // ExponentialHistogram: attributes 1, positive 8 and negative 9 hold bucket_counts 2
        // (varints: packed or one field each).
        10 => {
            let mut buckets = 0u64;
            for side in [8, 9] {
                for b in messages(point, side) {
                    for f in fields(b?) {
                        match f? {
                            (2, Field::Bytes(p)) => {
                                buckets += p.iter().filter(|x| **x & 0x80 == 0).count() as u64;
                            }
                            (2, _) => buckets += 1,
                            _ => {}
                        }
                    }
                }
            }
            (1, buckets + 3)
        }
        // Summary: attributes 7, quantile_values 6.
        11 => {
            let mut q = 0u64;
            for m in messages(point, 6) {
                m?;
                q += 1;
            }
            (7, q + 2)
        }
        _ => (0, 0),
    };
    Ok((samples, length_of(point, attrs_field)?))
}

/// The cost of a metrics export in protobuf: every sample becomes a series of the batch that
/// carries its own copy of the point's and the resource's labels.
pub fn metrics_cost(body: &[u8]) -> Result<Cost, String> {
    let mut c = Cost {
        records: 0,
        bytes: body.len() as u64,
    };
    each_record(body, |metric, resource_len| {
        for f in fields(metric) {
            let (data_field, data) = match f? {
                (n @ (5 | 7 | 9 | 10 | 11), Field::Bytes(d)) => (n, d),
                _ => continue,
            };
            for point in messages(data, 1) {
                let (samples, attrs) = point_shape(data_field, point?)?;
                c.records = c.records.saturating_add(samples);
                let each = SAMPLE_OVERHEAD + 2 * (attrs + resource_len);
                c.bytes = c.bytes.saturating_add(samples.saturating_mul(each));
            }
        }
        Ok(())
    })?;
    Ok(c)
}

/// Cost of one series of a remote-write request besides its labels: the decoded message, the
/// batch's series and the store's look-up.
pub const SERIES_OVERHEAD: u64 = 512;

/// Cost of one remote-write sample: decoded, then in the batch.
const REMOTE_SAMPLE_BYTES: u64 = 64;

/// The cost of a Prometheus remote-write `WriteRequest` (decompressed protobuf): every sample,
/// native histogram and metadata entry is a record, and a series without any counts as one,
/// so neither empty series nor metadata can make a small body cost much. Labels are copied
/// into the decoded message, the batch's series and the store's index.
pub fn remote_write_cost(body: &[u8]) -> Result<Cost, String> {
    let mut c = Cost {
        records: 0,
        bytes: body.len() as u64,
    };
    for f in fields(body) {
        match f? {
            // TimeSeries: labels 1, samples 2, exemplars 3, native histograms 4.
            (1, Field::Bytes(ts)) => {
                let (mut label_bytes, mut samples) = (0u64, 0u64);
                for g in fields(ts) {
                    match g? {
                        (1, Field::Bytes(l)) => label_bytes += l.len() as u64 + 48,
                        (2 | 4, _) => samples += 1,
                        _ => {}
                    }
                }
                c.records = c.records.saturating_add(samples.max(1));
                c.bytes = c.bytes.saturating_add(
                    SERIES_OVERHEAD + 4 * label_bytes + samples * REMOTE_SAMPLE_BYTES,
                );
            }
            // MetricMetadata.
            (3, Field::Bytes(m)) => {
                c.records = c.records.saturating_add(1);
                c.bytes = c.bytes.saturating_add(SAMPLE_OVERHEAD + 2 * m.len() as u64);
            }
            _ => {}
        }
    }
    Ok(c)
}

/// The cost of a Loki push in protobuf (`logproto.PushRequest`, decompressed), measured
/// before it is decoded: every entry is a record that carries its stream's labels (the
/// resource, repeated in every record's NDJSON line); a stream without entries counts as one
/// record, so empty streams cannot make a push free. [`crate::loki_push`] takes it.
pub fn loki_push_cost(body: &[u8]) -> Result<Cost, String> {
    let mut c = Cost {
        records: 0,
        bytes: body.len() as u64,
    };
    for f in fields(body) {
        // StreamAdapter: labels 1, entries 2.
        if let (1, Field::Bytes(stream)) = f? {
            let labels = length_of(stream, 1)?;
            let mut entries = 0u64;
            for e in messages(stream, 2) {
                let e = e?;
                entries += 1;
                c.bytes = c
                    .bytes
                    .saturating_add(RECORD_OVERHEAD + 4 * e.len() as u64 + 4 * labels);
            }
            c.records = c.records.saturating_add(entries.max(1));
        }
    }
    Ok(c)
}

/// What decoding a Loki push in JSON costs before it is decoded: the body, and a few hundred
/// bytes for every object and array outside strings (a stream, its labels, each entry, each
/// entry's metadata). Records are counted after decoding, before anything is mapped
/// ([`crate::loki_push`]).
pub fn loki_json_cost(body: &[u8]) -> Cost {
    json_cost(body, |c| c == b'{' || c == b'[')
}

/// What decoding a JSON export costs, before it is decoded: the body, the message it becomes
/// (every object, `{` outside strings, is at most a few hundred bytes of structs) and room to
/// grow. Records are not counted here: after decoding, the request is measured again as
/// protobuf ([`records_cost`], [`metrics_cost`]).
pub fn json_decode_cost(body: &[u8]) -> Cost {
    json_cost(body, |c| c == b'{')
}

/// Twice the body plus 256 bytes for every byte outside JSON strings that `opens` counts (the
/// objects, or objects and arrays, a decoded message is made of).
fn json_cost(body: &[u8], opens: impl Fn(u8) -> bool) -> Cost {
    let mut containers = 0u64;
    let mut in_string = false;
    let mut escaped = false;
    for &c in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
        } else if c == b'"' {
            in_string = true;
        } else if opens(c) {
            containers += 1;
        }
    }
    Cost {
        records: 0,
        bytes: (body.len() as u64)
            .saturating_mul(2)
            .saturating_add(containers.saturating_mul(256)),
    }
}

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`, and every gRPC message.
    Protobuf,
    /// `application/json` (OTLP/JSON).
    Json,
}

/// Measures a decompressed body, reserves its cost from the budget and decodes it, all off
/// the async workers. The permit is held until the request is answered.
pub(crate) async fn admit_and_decode<G: Signal>(
    admission: &Admission,
    encoding: Encoding,
    body: Vec<u8>,
) -> Result<(G::Request, OwnedSemaphorePermit), Refusal> {
    let admission = admission.clone();
    let work = move || -> Result<(G::Request, OwnedSemaphorePermit), Refusal> {
        let bad = |e: String| Refusal::Malformed(e);
        match encoding {
            Encoding::Protobuf => {
                let cost = G::wire_cost(&body).map_err(|e| {
                    bad(format!(
                        "the body is not a valid OTLP protobuf message: {e}"
                    ))
                })?;
                let permit = admission.reserve(G::NAME, cost)?;
                let req = G::Request::decode(&body[..]).map_err(|e| {
                    bad(format!(
                        "the body is not a valid OTLP protobuf message: {e}"
                    ))
                })?;
                Ok((req, permit))
            }
            Encoding::Json => {
                let pre = json_decode_cost(&body);
                let mut permit = admission.reserve(G::NAME, pre)?;
                let req: G::Request = serde_json::from_slice(&body)
                    .map_err(|e| bad(format!("the body is not valid OTLP JSON: {e}")))?;
                drop(body);
                // Measured again as the protobuf it is equivalent to.
                let cost = G::wire_cost(&req.encode_to_vec()).map_err(bad)?;
                if cost.records > admission.limits.max_records_per_request || cost.bytes > pre.bytes
                {
                    let more = Cost {
                        records: cost.records,
                        bytes: cost.bytes.saturating_sub(pre.bytes),
                    };
                    permit.merge(admission.reserve(G::NAME, more)?);
                }
                Ok((req, permit))
            }
        }
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(r) => r,
        Err(e) => Err(Refusal::Malformed(format!("decoding failed: {e}"))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
    use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
    use skein_model::proto::common::v1::{AnyValue, KeyValue, any_value};
    use skein_model::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use skein_model::proto::metrics::v1::{
        Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics, metric,
    };
    use skein_model::proto::resource::v1::Resource;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    fn logs(records: usize, resource_value: &str) -> Vec<u8> {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", resource_value)],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord::default(); records],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn empty_records_are_counted_on_the_wire() {
        let body = logs(1_000_000, "s");
        assert!(body.len() < 3_000_000, "{}", body.len());
        let c = records_cost(&body).unwrap();
        assert_eq!(c.records, 1_000_000);
        assert!(c.bytes >= 1_000_000 * RECORD_OVERHEAD);
        let a = Admission::new(AdmissionLimits::default());
        match a.reserve("logs", c) {
            Err(Refusal::TooLarge(m)) => assert!(m.contains("max_records_per_request"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_large_resource_counts_once_per_record() {
        let big = "x".repeat(1 << 20);
        let c = records_cost(&logs(1_000, &big)).unwrap();
        assert_eq!(c.records, 1_000);
        assert!(c.bytes > 1_000 * 2 * (1 << 20), "{}", c.bytes);
        let a = Admission::new(AdmissionLimits::default());
        match a.reserve("logs", c) {
            Err(Refusal::TooLarge(m)) => assert!(m.contains("memory_budget_mb"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_budget_is_shared_and_given_back() {
        let a = Admission::new(AdmissionLimits {
            max_records_per_request: 10,
            memory_budget_bytes: 10 * 1024,
        });
        let six = Cost {
            records: 1,
            bytes: 6 * 1024,
        };
        let p = a.reserve("logs", six).unwrap();
        assert!(matches!(a.reserve("logs", six), Err(Refusal::Busy(_))));
        drop(p);
        assert!(a.reserve("logs", six).is_ok());
    }

    #[test]
    fn histogram_buckets_count_as_samples_with_their_labels() {
        let point = HistogramDataPoint {
            attributes: vec![kv("route", &"r".repeat(1000))],
            bucket_counts: vec![1; 500],
            explicit_bounds: vec![1.0; 499],
            ..Default::default()
        };
        let body = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "h".into(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: vec![point; 10],
                            aggregation_temporality: 2,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec();
        let c = metrics_cost(&body).unwrap();
        assert_eq!(c.records, 10 * 502);
        assert!(c.bytes > 10 * 502 * 2000, "{}", c.bytes);
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        let body = logs(3, "s");
        for cut in 0..body.len() {
            let _ = records_cost(&body[..cut]);
            let _ = metrics_cost(&body[..cut]);
        }
        assert!(records_cost(&[0x0a, 0xff]).is_err());
        assert!(records_cost(&[0xff; 11]).is_err());
        assert!(records_cost(&[0x0b]).is_err(), "group wire type");
    }

    #[test]
    fn json_objects_outside_strings_bound_the_records() {
        let body = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{},{},{},{"body":{"stringValue":"{{{{"}}]}]}]}"#;
        let c = json_decode_cost(body);
        // 8 objects, the braces inside the string not counted.
        assert_eq!(c.bytes, body.len() as u64 * 2 + 8 * 256);
    }
}
