//! Deterministic, realistic telemetry of a food-delivery system: five services (gateway, order,
//! coupon, payment, delivery) on three hosts each, log lines with trace context and HTTP
//! attributes, and traces of 5 to 12 spans crossing the services.
//!
//! Everything comes from one seeded [`Rng`], so a run with the same seed sends the same bytes.

use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use skein_model::proto::collector::trace::v1::ExportTraceServiceRequest;
use skein_model::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use skein_model::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use skein_model::proto::resource::v1::Resource;
use skein_model::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use std::collections::BTreeMap;

/// A small, fast, seeded PRNG (SplitMix64): good enough for test data, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// Random bytes, never all zero.
    pub fn id<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        out[0] |= 1;
        out
    }
}

/// Lowercase hex of bytes.
pub fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

/// The services of the system.
pub const SERVICES: [&str; 5] = ["gateway", "order", "coupon", "payment", "delivery"];
const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-south-1"];
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const ROUTES: [[&str; 4]; 5] = [
    [
        "/api/orders",
        "/api/orders/{id}",
        "/api/menu",
        "/api/checkout",
    ],
    [
        "/orders",
        "/orders/{id}",
        "/orders/{id}/items",
        "/orders/{id}/cancel",
    ],
    [
        "/coupons/{code}",
        "/coupons/validate",
        "/coupons/redeem",
        "/campaigns",
    ],
    [
        "/payments",
        "/payments/{id}",
        "/payments/{id}/refund",
        "/wallets/{user}",
    ],
    [
        "/deliveries",
        "/deliveries/{id}",
        "/couriers/nearby",
        "/deliveries/{id}/eta",
    ],
];
const WORDS: [&str; 48] = [
    "request",
    "handled",
    "upstream",
    "latency",
    "cache",
    "miss",
    "hit",
    "retrying",
    "connection",
    "pool",
    "acquired",
    "released",
    "customer",
    "restaurant",
    "courier",
    "assigned",
    "basket",
    "validated",
    "discount",
    "applied",
    "charge",
    "authorized",
    "captured",
    "refund",
    "queued",
    "published",
    "event",
    "order.created",
    "kafka",
    "partition",
    "offset",
    "committed",
    "postgres",
    "query",
    "rows",
    "returned",
    "redis",
    "timeout",
    "slow",
    "backoff",
    "circuit",
    "breaker",
    "closed",
    "pricing",
    "rules",
    "evaluated",
    "geo",
    "lookup",
];
const INFO_MSGS: [&str; 10] = [
    "order {o} accepted for user {u}: {n} items from restaurant r-{r}",
    "coupon {c} validated for user {u}, discount {d}% applied",
    "payment {p} authorized for order {o}, amount {a} EUR via card",
    "courier c-{r} assigned to delivery of order {o}, eta {n} min",
    "GET /api/menu served from cache for region in {n} ms",
    "checkout started for user {u} with basket of {n} items",
    "order {o} status changed to PREPARING by restaurant r-{r}",
    "payment {p} captured for order {o}",
    "delivery of order {o} picked up by courier c-{r}",
    "user {u} session refreshed, token valid for {n} min",
];
const WARN_MSGS: [&str; 5] = [
    "slow upstream call to payment-provider took {n}00 ms for order {o}",
    "coupon {c} rejected for user {u}: campaign expired",
    "retrying delivery assignment for order {o}, attempt {n}",
    "connection pool near capacity: {n} of 50 connections in use",
    "restaurant r-{r} did not confirm order {o} within 120 s",
];
const ERROR_MSGS: [&str; 5] = [
    "payment {p} failed for order {o}: bank timeout after 5000 ms",
    "cannot reach coupon store: connection refused (attempt {n})",
    "order {o} rolled back: inventory service returned 503",
    "delivery for order {o} failed: no courier available in zone {r}",
    "unhandled exception in checkout handler for user {u}: NullPointerException",
];

/// A resource: one service instance.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Index into [`SERVICES`].
    pub service: usize,
    /// Host index (0..3).
    pub host: usize,
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: impl Into<String>) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn resource(inst: &Instance) -> Resource {
    let svc = SERVICES[inst.service];
    Resource {
        attributes: vec![
            kv("service.name", s(svc)),
            kv(
                "host.name",
                s(format!("{svc}-{}-7d9f8", ["a1", "b2", "c3"][inst.host])),
            ),
            kv("service.version", s("1.14.2")),
            kv("deployment.environment", s("prod")),
        ],
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "skein-bench".into(),
        version: "1".into(),
        ..Default::default()
    }
}

/// Trace context a log line may carry.
#[derive(Debug, Clone, Default)]
pub struct LogCtx {
    /// Trace and span ID.
    pub trace: Option<([u8; 16], [u8; 8])>,
    /// Request ID attribute.
    pub request_id: Option<String>,
    /// Force an attribute set without trace context (the gateway access log).
    pub severity: Option<i32>,
}

/// The generator: a seeded PRNG and a clock that moves forward with every record.
pub struct Gen {
    /// The PRNG.
    pub rng: Rng,
    /// Current event time, Unix ns.
    pub t_ns: u64,
    cur_trace: Option<([u8; 16], String)>,
    cur_left: u32,
}

impl Gen {
    /// A generator starting at `start_ns`.
    pub fn new(seed: u64, start_ns: u64) -> Self {
        Gen {
            rng: Rng::new(seed),
            t_ns: start_ns,
            cur_trace: None,
            cur_left: 0,
        }
    }

    fn fill(&mut self, template: &str) -> String {
        let mut out = String::with_capacity(320);
        let mut rest = template;
        while let Some(i) = rest.find('{') {
            out.push_str(&rest[..i]);
            let Some(j) = rest[i..].find('}') else {
                break;
            };
            let name = &rest[i + 1..i + j];
            let r = &mut self.rng;
            match name {
                "o" => out.push_str(&format!("ord-{:08}", r.below(100_000_000))),
                "u" => out.push_str(&format!("u-{:06}", r.below(1_000_000))),
                "p" => out.push_str(&format!("pay-{}", hex(&r.id::<5>()))),
                "c" => out.push_str(&format!("SAVE{}", r.range(5, 50))),
                "r" => out.push_str(&r.range(1, 9999).to_string()),
                "n" => out.push_str(&r.range(1, 60).to_string()),
                "d" => out.push_str(&r.range(5, 40).to_string()),
                "a" => out.push_str(&format!("{}.{:02}", r.range(8, 120), r.below(100))),
                _ => {}
            }
            rest = &rest[i + j + 1..];
        }
        out.push_str(rest);
        out
    }

    /// A 100–300 byte message for a severity.
    pub fn body(&mut self, severity: i32) -> String {
        let template = match severity {
            17.. => *self.rng.pick(&ERROR_MSGS),
            13..=16 => *self.rng.pick(&WARN_MSGS),
            _ => *self.rng.pick(&INFO_MSGS),
        };
        let mut body = self.fill(template);
        let target = self.rng.range(100, 300) as usize;
        body.push(';');
        while body.len() < target {
            body.push(' ');
            let w = *self.rng.pick::<&str>(&WORDS);
            body.push_str(w);
        }
        body.truncate(target);
        body
    }

    fn severity(&mut self) -> (i32, &'static str) {
        let x = self.rng.unit();
        if x < 0.85 {
            (9, "INFO")
        } else if x < 0.95 {
            (13, "WARN")
        } else if x < 0.99 {
            (17, "ERROR")
        } else {
            (5, "DEBUG")
        }
    }

    /// One OTLP log record of `service`.
    pub fn log(&mut self, service: usize, ctx: &LogCtx) -> LogRecord {
        self.t_ns += self.rng.range(50_000, 400_000);
        let (num, text) = match ctx.severity {
            Some(n) => (n, skein_model::otlp::severity_name(n)),
            None => self.severity(),
        };
        let status: i64 = match num {
            17.. => *self.rng.pick(&[500, 502, 503, 504]),
            13..=16 => *self.rng.pick(&[200, 404, 409, 429]),
            _ => *self.rng.pick(&[200, 200, 200, 201, 204]),
        };
        let mut attrs = vec![
            kv("http.method", s(*self.rng.pick(&METHODS))),
            kv("http.route", s(*self.rng.pick(&ROUTES[service]))),
            kv("http.status_code", any_value::Value::IntValue(status)),
            kv("user_id", s(format!("u-{:06}", self.rng.below(1_000_000)))),
            kv(
                "duration_ms",
                any_value::Value::DoubleValue((self.rng.unit() * 800.0 * 100.0).round() / 100.0),
            ),
            kv("region", s(*self.rng.pick(&REGIONS))),
        ];
        if let Some(r) = &ctx.request_id {
            attrs.push(kv("request_id", s(r.clone())));
        }
        let extra = self.rng.range(0, 3);
        for _ in 0..extra {
            let a = match self.rng.below(6) {
                0 => kv(
                    "order_id",
                    s(format!("ord-{:08}", self.rng.below(100_000_000))),
                ),
                1 => kv("restaurant_id", s(format!("r-{}", self.rng.range(1, 9999)))),
                2 => kv("thread", s(format!("worker-{}", self.rng.below(16)))),
                3 => kv("logger", s(format!("{}.handler", SERVICES[service]))),
                4 => kv(
                    "client.address",
                    s(format!(
                        "10.{}.{}.{}",
                        self.rng.below(256),
                        self.rng.below(256),
                        self.rng.below(256)
                    )),
                ),
                _ => kv(
                    "retry",
                    any_value::Value::IntValue(self.rng.below(3) as i64),
                ),
            };
            if !attrs.iter().any(|x| x.key == a.key) {
                attrs.push(a);
            }
        }
        let body = self.body(num);
        let (trace_id, span_id) = match &ctx.trace {
            Some((t, sp)) => (t.to_vec(), sp.to_vec()),
            None => (vec![], vec![]),
        };
        LogRecord {
            time_unix_nano: self.t_ns,
            observed_time_unix_nano: self.t_ns + 1_000_000,
            severity_number: num,
            severity_text: text.into(),
            body: Some(AnyValue {
                value: Some(s(body)),
            }),
            attributes: attrs,
            trace_id,
            span_id,
            ..Default::default()
        }
    }

    /// A log line for the ingest benchmark: most carry a trace ID (groups of 1–15 consecutive
    /// lines share one) and a request ID.
    pub fn background_log(&mut self, service: usize) -> LogRecord {
        let ctx = if self.rng.chance(0.9) {
            if self.cur_left == 0 || self.cur_trace.is_none() {
                let t = self.rng.id::<16>();
                let req = format!("req-{}", hex(&self.rng.id::<6>()));
                self.cur_trace = Some((t, req));
                self.cur_left = self.rng.range(1, 15) as u32;
            }
            self.cur_left -= 1;
            let (t, req) = self.cur_trace.clone().unwrap_or_default();
            let with_req = self.rng.chance(0.8);
            LogCtx {
                trace: Some((t, self.rng.id::<8>())),
                request_id: with_req.then_some(req),
                severity: None,
            }
        } else {
            LogCtx::default()
        };
        self.log(service, &ctx)
    }

    /// A logs export of `n` records from one service instance (as one SDK exporter sends).
    pub fn logs_request(&mut self, n: usize) -> ExportLogsServiceRequest {
        let inst = Instance {
            service: self.rng.below(5) as usize,
            host: self.rng.below(3) as usize,
        };
        let records = (0..n).map(|_| self.background_log(inst.service)).collect();
        logs_export(vec![(inst, records)])
    }

    /// One trace of 5–12 spans (or `lo..=hi`), its request ID, and its spans with their
    /// service instances, parents before children.
    pub fn trace(&mut self, lo: u64, hi: u64) -> (TraceInfo, Vec<(Instance, Span)>) {
        let trace_id = self.rng.id::<16>();
        let request_id = format!("req-{}", hex(&self.rng.id::<6>()));
        let n = self.rng.range(lo, hi) as usize;
        let error = self.rng.chance(0.03);
        let start = self.t_ns;
        self.t_ns += self.rng.range(1_000_000, 5_000_000);
        let total_ns = self.rng.range(20, 900) * 1_000_000;
        let user = format!("u-{:06}", self.rng.below(1_000_000));
        let region = *self.rng.pick(&REGIONS);
        // (instance, span id, parent index, start, end, depth)
        let mut out: Vec<(Instance, Span)> = Vec::with_capacity(n);
        let mut windows: Vec<(u64, u64)> = Vec::with_capacity(n);
        for i in 0..n {
            let (service, parent) = if i == 0 {
                (0usize, None)
            } else {
                // Mostly calls from the order service fanning out, some deeper chains.
                let p = if i == 1 {
                    0
                } else {
                    self.rng.below(i as u64) as usize
                };
                let svc = match i {
                    1 => 1,
                    _ => self.rng.range(1, 4) as usize,
                };
                (svc, Some(p))
            };
            let (ps, pe) = parent
                .map(|p| windows[p])
                .unwrap_or((start, start + total_ns));
            let len = (pe - ps).max(2);
            let s0 = ps + self.rng.below(len / 2);
            let e0 = (s0 + 1 + self.rng.below((pe - s0).max(1))).min(pe);
            windows.push((s0, e0));
            let inst = Instance {
                service,
                host: self.rng.below(3) as usize,
            };
            let route = *self.rng.pick(&ROUTES[service]);
            let method = *self.rng.pick(&METHODS);
            let db = service != 0 && self.rng.chance(0.25);
            let kind = if i == 0 || !db && self.rng.chance(0.7) {
                span::SpanKind::Server
            } else if db {
                span::SpanKind::Client
            } else {
                span::SpanKind::Internal
            };
            let is_err = error && i == n - 1;
            let mut attrs = vec![
                kv("http.method", s(method)),
                kv("http.route", s(route)),
                kv(
                    "http.status_code",
                    any_value::Value::IntValue(if is_err { 503 } else { 200 }),
                ),
                kv("user_id", s(user.clone())),
                kv("region", s(region)),
            ];
            if i == 0 || self.rng.chance(0.5) {
                attrs.push(kv("request_id", s(request_id.clone())));
            }
            if db {
                attrs.push(kv("db.system", s("postgresql")));
                attrs.push(kv(
                    "db.statement",
                    s("SELECT id, status, total FROM orders WHERE id = $1"),
                ));
            }
            let name = if db {
                "SELECT orders".to_string()
            } else {
                format!("{method} {route}")
            };
            let parent_id = parent
                .and_then(|p| out.get(p))
                .map(|(_, sp)| sp.span_id.clone())
                .unwrap_or_default();
            let mut events = vec![];
            if is_err {
                events.push(span::Event {
                    time_unix_nano: e0,
                    name: "exception".into(),
                    attributes: vec![
                        kv("exception.type", s("TimeoutException")),
                        kv("exception.message", s("bank did not answer within 5000 ms")),
                    ],
                    ..Default::default()
                });
            }
            out.push((
                inst,
                Span {
                    trace_id: trace_id.to_vec(),
                    span_id: self.rng.id::<8>().to_vec(),
                    parent_span_id: parent_id,
                    name,
                    kind: kind as i32,
                    start_time_unix_nano: s0,
                    end_time_unix_nano: e0,
                    attributes: attrs,
                    events,
                    status: Some(Status {
                        code: if is_err { 2 } else { 0 },
                        message: if is_err {
                            "bank timeout".into()
                        } else {
                            String::new()
                        },
                    }),
                    ..Default::default()
                },
            ));
        }
        let info = TraceInfo {
            trace_id,
            request_id,
            spans: out
                .iter()
                .map(|(inst, sp)| {
                    let mut id = [0u8; 8];
                    id.copy_from_slice(&sp.span_id);
                    (inst.service, id)
                })
                .collect(),
        };
        (info, out)
    }
}

/// What log lines of a trace need to know about it.
#[derive(Debug, Clone)]
pub struct TraceInfo {
    /// Trace ID.
    pub trace_id: [u8; 16],
    /// Request ID carried by the root span.
    pub request_id: String,
    /// Each span's service and ID.
    pub spans: Vec<(usize, [u8; 8])>,
}

fn inst_key(i: &Instance) -> (usize, usize) {
    (i.service, i.host)
}

/// A logs export with one ResourceLogs per instance.
pub fn logs_export(groups: Vec<(Instance, Vec<LogRecord>)>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: groups
            .into_iter()
            .map(|(inst, log_records)| ResourceLogs {
                resource: Some(resource(&inst)),
                scope_logs: vec![ScopeLogs {
                    scope: Some(scope()),
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// Groups records by instance into one logs export.
pub fn logs_export_grouped(items: Vec<(Instance, LogRecord)>) -> ExportLogsServiceRequest {
    let mut by: BTreeMap<(usize, usize), Vec<LogRecord>> = BTreeMap::new();
    for (i, r) in items {
        by.entry(inst_key(&i)).or_default().push(r);
    }
    logs_export(
        by.into_iter()
            .map(|((service, host), v)| (Instance { service, host }, v))
            .collect(),
    )
}

/// Groups spans by instance into one traces export (as an OpenTelemetry Collector forwards).
pub fn spans_export(items: Vec<(Instance, Span)>) -> ExportTraceServiceRequest {
    let mut by: BTreeMap<(usize, usize), Vec<Span>> = BTreeMap::new();
    for (i, sp) in items {
        by.entry(inst_key(&i)).or_default().push(sp);
    }
    ExportTraceServiceRequest {
        resource_spans: by
            .into_iter()
            .map(|((service, host), spans)| ResourceSpans {
                resource: Some(resource(&Instance { service, host })),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// The record as an application would write it to a file, one JSON object per line: time,
/// severity, service, host, IDs, message, then every attribute and resource attribute flat.
/// Skein's own additions (the correlation key list, the duplicated resource map) are left out,
/// so this is the smaller, honest "raw" size.
pub fn ndjson_line(r: &skein_model::LogRecord, out: &mut Vec<u8>) -> anyhow::Result<()> {
    use serde_json::{Map, Value};
    let mut m = Map::new();
    m.insert("time_unix_nano".into(), Value::from(r.time_unix_nano));
    m.insert("severity".into(), Value::from(r.severity_text.clone()));
    m.insert("service".into(), Value::from(r.service.clone()));
    m.insert("host".into(), Value::from(r.host.clone()));
    if !r.trace_id.is_empty() {
        m.insert("trace_id".into(), Value::from(r.trace_id.clone()));
        m.insert("span_id".into(), Value::from(r.span_id.clone()));
    }
    m.insert("message".into(), Value::from(r.body.clone()));
    for (k, v) in r.attributes.iter().chain(r.resource.iter()) {
        if k == "service.name" || k == "host.name" {
            continue;
        }
        m.insert(k.clone(), v.clone());
    }
    serde_json::to_writer(&mut *out, &m)?;
    out.push(b'\n');
    Ok(())
}
