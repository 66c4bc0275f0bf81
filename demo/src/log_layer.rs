//! A tracing layer that writes every event as one JSON line to a service's log file.
//!
//! A line looks like `{"timestamp":"2026-05-01T12:00:00.123Z","level":"INFO",
//! "service":"order","message":"...","trace_id":"<32 hex>","span_id":"<16 hex>",
//! "request_id":"...", <the event's other fields>}`. The trace and span IDs are those of the
//! OpenTelemetry context active when the event happens (the OpenTelemetry layer activates a
//! span's context when the span is entered); the request ID is that of the nearest enclosing
//! span that recorded a `request_id` field. Keys without a value are left out.

use crate::log_file::LogFile;
use opentelemetry::trace::TraceContextExt;
use serde_json::Value;
use std::time::SystemTime;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Longest string value kept in a line, in bytes; longer ones are cut.
const MAX_FIELD_BYTES: usize = 4096;

/// Keys the line sets itself; event fields with these names are dropped (except
/// `request_id`, which overrides the span's).
const RESERVED: [&str; 6] = [
    "timestamp",
    "level",
    "service",
    "message",
    "trace_id",
    "span_id",
];

/// Writes events as JSON lines to one service's log file.
pub(crate) struct JsonLogLayer {
    service: &'static str,
    file: LogFile,
}

impl JsonLogLayer {
    /// A layer writing lines for `service` to `file`.
    pub(crate) fn new(service: &'static str, file: LogFile) -> JsonLogLayer {
        JsonLogLayer { service, file }
    }
}

/// The request ID a span recorded, kept in its extensions.
struct SpanRequestId(String);

impl<S> Layer<S> for JsonLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut v = RequestIdVisitor(None);
        attrs.record(&mut v);
        remember_request_id(v.0, id, &ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut v = RequestIdVisitor(None);
        values.record(&mut v);
        remember_request_id(v.0, id, &ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let request_id = fields.request_id.take().or_else(|| {
            ctx.event_scope(event)?.find_map(|span| {
                span.extensions()
                    .get::<SpanRequestId>()
                    .map(|r| r.0.clone())
            })
        });
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let sc = span.span_context();
        let ids = sc
            .is_valid()
            .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()));
        let line = format_line(
            SystemTime::now(),
            event.metadata().level().as_str(),
            self.service,
            fields,
            ids,
            request_id,
        );
        self.file.write_line(&line);
    }
}

fn remember_request_id<S>(rid: Option<String>, id: &Id, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if let (Some(rid), Some(span)) = (rid, ctx.span(id)) {
        span.extensions_mut().replace(SpanRequestId(rid));
    }
}

/// Picks the `request_id` field out of a span's fields.
struct RequestIdVisitor(Option<String>);

impl Visit for RequestIdVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "request_id" {
            self.0 = Some(cut(value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "request_id" {
            self.0 = Some(cut(format!("{value:?}")));
        }
    }
}

/// An event's message and other fields, in the order they were given.
#[derive(Default)]
struct EventFields {
    message: Option<String>,
    request_id: Option<String>,
    others: Vec<(&'static str, Value)>,
}

impl EventFields {
    fn put(&mut self, field: &Field, value: Value) {
        match field.name() {
            "message" => {
                self.message = Some(match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
            }
            "request_id" => {
                self.request_id = Some(match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
            }
            name if RESERVED.contains(&name) => {}
            name => self.others.push((name, value)),
        }
    }
}

impl Visit for EventFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let v = serde_json::Number::from_f64(value)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(value.to_string()));
        self.put(field, v);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(cut(value.to_owned())));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(cut(value.to_string())));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::String(cut(format!("{value:?}"))));
    }
}

/// Cuts `s` to at most [`MAX_FIELD_BYTES`] on a character boundary.
fn cut(mut s: String) -> String {
    if s.len() > MAX_FIELD_BYTES {
        let mut end = MAX_FIELD_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// One log line, without the newline.
fn format_line(
    now: SystemTime,
    level: &str,
    service: &str,
    fields: EventFields,
    ids: Option<(String, String)>,
    request_id: Option<String>,
) -> String {
    let mut line = String::with_capacity(256);
    line.push('{');
    push_pair(&mut line, "timestamp", &Value::String(rfc3339_millis(now)));
    push_pair(&mut line, "level", &Value::String(level.to_owned()));
    push_pair(&mut line, "service", &Value::String(service.to_owned()));
    if let Some(m) = fields.message {
        push_pair(&mut line, "message", &Value::String(m));
    }
    if let Some((trace_id, span_id)) = ids {
        push_pair(&mut line, "trace_id", &Value::String(trace_id));
        push_pair(&mut line, "span_id", &Value::String(span_id));
    }
    if let Some(rid) = request_id {
        push_pair(&mut line, "request_id", &Value::String(rid));
    }
    for (key, value) in &fields.others {
        push_pair(&mut line, key, value);
    }
    line.push('}');
    line
}

fn push_pair(line: &mut String, key: &str, value: &Value) {
    if !line.ends_with('{') {
        line.push(',');
    }
    line.push_str(&Value::String(key.to_owned()).to_string());
    line.push(':');
    line.push_str(&value.to_string());
}

/// `t` as RFC 3339 in UTC with milliseconds, e.g. `2026-05-01T12:00:00.123Z`.
pub(crate) fn rfc3339_millis(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use std::time::Duration;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    fn lines(path: &std::path::Path) -> Vec<serde_json::Map<String, Value>> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| match serde_json::from_str(l).unwrap() {
                Value::Object(m) => m,
                other => panic!("not an object: {other}"),
            })
            .collect()
    }

    #[test]
    fn a_line_carries_the_enclosing_spans_ids_and_request_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("order.log");
        let file = LogFile::open(&path, 1 << 20).unwrap();
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(JsonLogLayer::new("order", file));
        let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("outer", request_id = "req-00000000000000aa");
            let _o = outer.enter();
            let inner = tracing::info_span!("inner", order_id = "ord-1");
            let _i = inner.enter();
            tracing::warn!(
                order_id = "ord-1",
                amount_cents = 1250_u64,
                ok = true,
                "card \"declined\""
            );
            let sc = inner.context().span().span_context().clone();
            drop(_i);
            drop(_o);
            tracing::info!("outside any span");
            (sc.trace_id().to_string(), sc.span_id().to_string())
        });
        let got = lines(&path);
        assert_eq!(got.len(), 2);
        let l = &got[0];
        assert_eq!(l["level"], "WARN");
        assert_eq!(l["service"], "order");
        assert_eq!(l["message"], "card \"declined\"");
        assert_eq!(l["trace_id"], Value::String(trace_id.clone()));
        assert_eq!(l["span_id"], Value::String(span_id));
        assert_eq!(trace_id.len(), 32);
        assert_eq!(l["request_id"], "req-00000000000000aa");
        assert_eq!(l["order_id"], "ord-1");
        assert_eq!(l["amount_cents"], 1250);
        assert_eq!(l["ok"], true);
        let ts = l["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.ends_with('Z'));
        let bare = &got[1];
        assert_eq!(bare["message"], "outside any span");
        assert!(!bare.contains_key("trace_id"));
        assert!(!bare.contains_key("span_id"));
        assert!(!bare.contains_key("request_id"));
    }

    #[test]
    fn a_request_id_recorded_later_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.log");
        let file = LogFile::open(&path, 1 << 20).unwrap();
        let subscriber = tracing_subscriber::registry().with(JsonLogLayer::new("gateway", file));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("req", request_id = tracing::field::Empty);
            span.record("request_id", "load-1");
            span.in_scope(|| tracing::info!(request_id = "own", "explicit wins"));
            span.in_scope(|| tracing::info!("from the span"));
        });
        let got = lines(&path);
        assert_eq!(got[0]["request_id"], "own");
        assert_eq!(got[1]["request_id"], "load-1");
    }

    #[test]
    fn the_layer_rotates_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.log");
        let file = LogFile::open(&path, 400).unwrap();
        let subscriber = tracing_subscriber::registry().with(JsonLogLayer::new("coupon", file));
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..20 {
                tracing::info!(i, "line");
            }
        });
        let mut old = path.clone().into_os_string();
        old.push(".1");
        let rotated = lines(std::path::Path::new(&old));
        let current = lines(&path);
        assert!(!rotated.is_empty());
        assert!(std::fs::metadata(&path).unwrap().len() <= 400);
        assert_eq!(current.last().unwrap()["i"], 19);
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        use std::time::UNIX_EPOCH;
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789); // leap day
        assert_eq!(rfc3339_millis(t), "2024-02-29T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339_millis(t), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn long_values_are_cut_on_a_char_boundary() {
        let s = cut("é".repeat(MAX_FIELD_BYTES));
        assert!(s.len() <= MAX_FIELD_BYTES);
        assert!(s.chars().all(|c| c == 'é'));
    }
}
