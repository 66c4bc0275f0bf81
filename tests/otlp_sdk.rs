//! One request across three services (gateway → order → payment), sent by the real
//! OpenTelemetry SDK exporters over OTLP/HTTP protobuf, OTLP/HTTP JSON and OTLP/gRPC, comes back
//! whole from `GET /api/v1/traces/{key}`: every span once, in tree order, every log, including
//! a legacy log tied only by its request ID.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Collector, get_json, strings, unique, wait_for};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{
    Compression, LogExporter, Protocol, SpanExporter, WithExportConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

/// How the SDK sends.
#[derive(Clone, Copy, Debug)]
enum Transport {
    /// OTLP/HTTP protobuf, simple (synchronous) processors.
    HttpProto,
    /// OTLP/HTTP JSON, batch processors.
    HttpJson,
    /// OTLP/gRPC (tonic), batch processors, gzip for traces and zstd for logs.
    Grpc,
}

/// One service's SDK: tracer and logger providers with their own resource.
struct Service {
    tracer: SdkTracerProvider,
    logger: SdkLoggerProvider,
}

fn resource(service: &str) -> Resource {
    Resource::builder()
        .with_service_name(service.to_string())
        .with_attribute(KeyValue::new("host.name", format!("{service}-host-1")))
        .build()
}

fn service(c: &Collector, transport: Transport, name: &str) -> Service {
    let timeout = Duration::from_secs(10);
    let (spans, logs) = match transport {
        Transport::HttpProto | Transport::HttpJson => {
            let protocol = match transport {
                Transport::HttpJson => Protocol::HttpJson,
                _ => Protocol::HttpBinary,
            };
            let spans = SpanExporter::builder()
                .with_http()
                .with_protocol(protocol)
                .with_endpoint(format!("{}/v1/traces", c.http_base()))
                .with_timeout(timeout)
                .build()
                .expect("http span exporter");
            let logs = LogExporter::builder()
                .with_http()
                .with_protocol(protocol)
                .with_endpoint(format!("{}/v1/logs", c.http_base()))
                .with_timeout(timeout)
                .build()
                .expect("http log exporter");
            (spans, logs)
        }
        Transport::Grpc => {
            let spans = SpanExporter::builder()
                .with_tonic()
                .with_endpoint(c.grpc_endpoint())
                .with_compression(Compression::Gzip)
                .with_timeout(timeout)
                .build()
                .expect("grpc span exporter");
            let logs = LogExporter::builder()
                .with_tonic()
                .with_endpoint(c.grpc_endpoint())
                .with_compression(Compression::Zstd)
                .with_timeout(timeout)
                .build()
                .expect("grpc log exporter");
            (spans, logs)
        }
    };
    let (tracer, logger) = match transport {
        Transport::HttpProto => (
            SdkTracerProvider::builder()
                .with_simple_exporter(spans)
                .with_resource(resource(name))
                .build(),
            SdkLoggerProvider::builder()
                .with_simple_exporter(logs)
                .with_resource(resource(name))
                .build(),
        ),
        Transport::HttpJson | Transport::Grpc => (
            SdkTracerProvider::builder()
                .with_batch_exporter(spans)
                .with_resource(resource(name))
                .build(),
            SdkLoggerProvider::builder()
                .with_batch_exporter(logs)
                .with_resource(resource(name))
                .build(),
        ),
    };
    Service { tracer, logger }
}

impl Service {
    fn finish(self) {
        self.tracer.force_flush().expect("flush spans");
        self.logger.force_flush().expect("flush logs");
        self.tracer.shutdown().expect("shut down tracer provider");
        self.logger.shutdown().expect("shut down logger provider");
    }
}

/// Emits a log through the SDK inside `cx` (so it carries the span's trace and span IDs).
fn emit(logger: &SdkLogger, cx: &Context, body: &str, severity: Severity) {
    let _guard = cx.clone().attach();
    emit_here(logger, body, severity, &[]);
}

/// Emits a log in the current context.
fn emit_here(logger: &SdkLogger, body: &str, severity: Severity, attrs: &[(&'static str, &str)]) {
    let mut r = logger.create_log_record();
    r.set_body(AnyValue::from(body.to_string()));
    r.set_severity_number(severity);
    r.set_severity_text(severity.name());
    r.set_timestamp(SystemTime::now());
    for (k, v) in attrs {
        r.add_attribute(*k, v.to_string());
    }
    logger.emit(r);
}

fn span_id(cx: &Context) -> String {
    cx.span().span_context().span_id().to_string()
}

/// What one scenario sent.
struct Sent {
    trace_id: String,
    request_id: String,
    /// span id → (name, service, parent span id)
    spans: HashMap<String, (String, String, String)>,
    /// body → (service, span id; empty for the legacy log)
    logs: HashMap<String, (String, String)>,
}

/// Runs the request through the three services' SDKs and the legacy emitter, then flushes.
fn send_request(c: &Collector, transport: Transport) -> Sent {
    let tag = unique();
    let request_id = format!("req-{tag}");
    let propagator = TraceContextPropagator::new();
    let gateway = service(c, transport, "gateway");
    let order = service(c, transport, "order");
    let payment = service(c, transport, "payment");
    let legacy = service(c, transport, "legacy-billing");
    let mut spans = HashMap::new();
    let mut logs = HashMap::new();
    let mut record_span = |cx: &Context, name: &str, svc: &str, parent: &str| {
        spans.insert(
            span_id(cx),
            (name.to_string(), svc.to_string(), parent.to_string()),
        );
    };

    // gateway: the root span carries the request ID.
    let gw = gateway.tracer.tracer("gateway");
    let gw_log = gateway.logger.logger("gateway");
    let root = gw
        .span_builder("POST /checkout")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("request_id", request_id.clone()),
            KeyValue::new("http.request.method", "POST"),
        ])
        .start_with_context(&gw, &Context::new());
    let root_cx = Context::new().with_span(root);
    record_span(&root_cx, "POST /checkout", "gateway", "");
    let trace_id = root_cx.span().span_context().trace_id().to_string();
    let body = format!("gateway accepted checkout {tag}");
    emit(&gw_log, &root_cx, &body, Severity::Info);
    logs.insert(body, ("gateway".to_string(), span_id(&root_cx)));

    let call_order = gw
        .span_builder("call order")
        .with_kind(SpanKind::Client)
        .start_with_context(&gw, &root_cx);
    let call_order_cx = root_cx.with_span(call_order);
    record_span(&call_order_cx, "call order", "gateway", &span_id(&root_cx));
    // The HTTP hop: traceparent out of the gateway, into the order service.
    let mut headers: HashMap<String, String> = HashMap::new();
    propagator.inject_context(&call_order_cx, &mut headers);
    assert!(headers.contains_key("traceparent"), "{headers:?}");

    // order
    let ord = order.tracer.tracer("order");
    let ord_log = order.logger.logger("order");
    let remote = propagator.extract(&headers);
    let ord_srv = ord
        .span_builder("POST /orders")
        .with_kind(SpanKind::Server)
        .start_with_context(&ord, &remote);
    let ord_cx = remote.with_span(ord_srv);
    record_span(&ord_cx, "POST /orders", "order", &span_id(&call_order_cx));
    let body = format!("order created for {tag}");
    emit(&ord_log, &ord_cx, &body, Severity::Info);
    logs.insert(body, ("order".to_string(), span_id(&ord_cx)));
    let db = ord
        .span_builder("INSERT orders")
        .with_kind(SpanKind::Internal)
        .start_with_context(&ord, &ord_cx);
    let db_cx = ord_cx.with_span(db);
    record_span(&db_cx, "INSERT orders", "order", &span_id(&ord_cx));
    db_cx.span().end();
    let call_pay = ord
        .span_builder("call payment")
        .with_kind(SpanKind::Client)
        .start_with_context(&ord, &ord_cx);
    let call_pay_cx = ord_cx.with_span(call_pay);
    record_span(&call_pay_cx, "call payment", "order", &span_id(&ord_cx));
    let mut headers: HashMap<String, String> = HashMap::new();
    propagator.inject_context(&call_pay_cx, &mut headers);

    // payment
    let pay = payment.tracer.tracer("payment");
    let pay_log = payment.logger.logger("payment");
    let remote = propagator.extract(&headers);
    let pay_srv = pay
        .span_builder("POST /payments")
        .with_kind(SpanKind::Server)
        .start_with_context(&pay, &remote);
    let pay_cx = remote.with_span(pay_srv);
    record_span(&pay_cx, "POST /payments", "payment", &span_id(&call_pay_cx));
    let bank = pay
        .span_builder("bank authorize")
        .with_kind(SpanKind::Client)
        .start_with_context(&pay, &pay_cx);
    let bank_cx = pay_cx.with_span(bank);
    record_span(&bank_cx, "bank authorize", "payment", &span_id(&pay_cx));
    let body = format!("payment timeout talking to bank {tag}");
    emit(&pay_log, &bank_cx, &body, Severity::Error);
    logs.insert(body, ("payment".to_string(), span_id(&bank_cx)));
    bank_cx.span().set_status(Status::error("bank timeout"));
    bank_cx.span().end();
    let body = format!("payment authorized on retry {tag}");
    emit(&pay_log, &pay_cx, &body, Severity::Warn);
    logs.insert(body, ("payment".to_string(), span_id(&pay_cx)));

    // A legacy emitter: no trace context, only the request ID header as an attribute.
    let leg_log = legacy.logger.logger("legacy");
    assert!(!Context::current().has_active_span());
    let body = format!("legacy billing audit {tag}");
    emit_here(
        &leg_log,
        &body,
        Severity::Info,
        &[("x-request-id", &request_id)],
    );
    logs.insert(body, ("legacy-billing".to_string(), String::new()));

    // Unwind: every span ends.
    pay_cx.span().end();
    call_pay_cx.span().end();
    ord_cx.span().end();
    call_order_cx.span().end();
    root_cx.span().end();

    for s in [gateway, order, payment, legacy] {
        s.finish();
    }
    Sent {
        trace_id,
        request_id,
        spans,
        logs,
    }
}

/// Polls the trace API for `key` until every sent span and log is there.
fn fetch(c: &Collector, key: &str, sent: &Sent) -> Value {
    let url = format!("{}/api/v1/traces/{key}", c.api_base());
    let mut last = Value::Null;
    let complete = wait_for(
        || {
            let (status, body) = get_json(&url);
            let done = status == 200
                && body["spans"].as_array().map_or(0, Vec::len) >= sent.spans.len()
                && body["logs"].as_array().map_or(0, Vec::len) >= sent.logs.len();
            last = body;
            done
        },
        Duration::from_secs(20),
    );
    assert!(
        complete,
        "GET {url} did not return {} spans and {} logs within 20 s; last answer: {last:#}",
        sent.spans.len(),
        sent.logs.len()
    );
    last
}

/// The expected tree order of `spans`: depth first, parent before children, siblings by start
/// time (then span ID).
fn expected_tree_order(spans: &[Value]) -> Vec<String> {
    let ids: HashSet<&str> = spans.iter().filter_map(|s| s["span_id"].as_str()).collect();
    let mut sorted: Vec<&Value> = spans.iter().collect();
    sorted.sort_by(|a, b| {
        a["start_unix_nano"]
            .as_u64()
            .cmp(&b["start_unix_nano"].as_u64())
            .then(a["span_id"].as_str().cmp(&b["span_id"].as_str()))
    });
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut roots = Vec::new();
    for s in &sorted {
        let id = s["span_id"].as_str().unwrap_or_default();
        let parent = s["parent_span_id"].as_str().unwrap_or_default();
        if !parent.is_empty() && ids.contains(parent) {
            children.entry(parent).or_default().push(id);
        } else {
            roots.push(id);
        }
    }
    let mut order = Vec::new();
    let mut stack: Vec<&str> = roots.into_iter().rev().collect();
    while let Some(id) = stack.pop() {
        order.push(id.to_string());
        if let Some(kids) = children.get(id) {
            stack.extend(kids.iter().rev());
        }
    }
    order
}

fn check_answer(answer: &Value, sent: &Sent, how: &str) {
    let spans = answer["spans"].as_array().expect("spans array");
    let logs = answer["logs"].as_array().expect("logs array");
    assert_eq!(
        answer["trace_id"].as_str(),
        Some(sent.trace_id.as_str()),
        "{how}: trace_id"
    );

    // Every span exactly once, with its name, service and parent.
    let got_ids = strings(&answer["spans"], "span_id");
    let unique_ids: HashSet<&String> = got_ids.iter().collect();
    assert_eq!(
        unique_ids.len(),
        got_ids.len(),
        "{how}: duplicate spans: {got_ids:?}"
    );
    assert_eq!(
        got_ids.len(),
        sent.spans.len(),
        "{how}: span count; got {got_ids:?}"
    );
    for s in spans {
        let id = s["span_id"].as_str().unwrap_or_default();
        let (name, svc, parent) = sent
            .spans
            .get(id)
            .unwrap_or_else(|| panic!("{how}: unexpected span {s}"));
        assert_eq!(s["name"].as_str(), Some(name.as_str()), "{how}: {s}");
        assert_eq!(s["service"].as_str(), Some(svc.as_str()), "{how}: {s}");
        assert_eq!(
            s["parent_span_id"].as_str(),
            Some(parent.as_str()),
            "{how}: {s}"
        );
        assert_eq!(
            s["trace_id"].as_str(),
            Some(sent.trace_id.as_str()),
            "{how}: {s}"
        );
        assert_eq!(
            s["host"].as_str(),
            Some(format!("{svc}-host-1").as_str()),
            "{how}: host.name of {s}"
        );
    }
    let root = &spans[0];
    assert_eq!(
        root["name"], "POST /checkout",
        "{how}: the root comes first"
    );
    assert_eq!(
        root["attributes"]["request_id"].as_str(),
        Some(sent.request_id.as_str()),
        "{how}: root attributes"
    );
    let bank = spans
        .iter()
        .find(|s| s["name"] == "bank authorize")
        .expect("bank span");
    assert_eq!(bank["status_code"], "error", "{how}: {bank}");

    // Tree order: each parent before its children, siblings by start.
    let pos: HashMap<&str, usize> = got_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    for (i, s) in spans.iter().enumerate() {
        let parent = s["parent_span_id"].as_str().unwrap_or_default();
        if let Some(p) = pos.get(parent) {
            assert!(
                *p < i,
                "{how}: span {} comes before its parent {parent}",
                s["name"]
            );
        }
    }
    assert_eq!(
        got_ids,
        expected_tree_order(spans),
        "{how}: spans are not in tree order"
    );

    // Services.
    let services: Vec<&str> = answer["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for s in ["gateway", "order", "payment"] {
        assert!(
            services.contains(&s),
            "{how}: services {services:?} lack {s}"
        );
    }

    // Every log exactly once, tied to its span; the legacy one by request ID only.
    let bodies = strings(&answer["logs"], "body");
    assert_eq!(
        bodies.len(),
        sent.logs.len(),
        "{how}: log count; got {bodies:?}"
    );
    let unique_bodies: HashSet<&String> = bodies.iter().collect();
    assert_eq!(
        unique_bodies.len(),
        bodies.len(),
        "{how}: duplicate logs {bodies:?}"
    );
    for l in logs {
        let body = l["body"].as_str().unwrap_or_default();
        let (svc, span) = sent
            .logs
            .get(body)
            .unwrap_or_else(|| panic!("{how}: unexpected log {l}"));
        assert_eq!(l["service"].as_str(), Some(svc.as_str()), "{how}: {l}");
        assert_eq!(l["span_id"].as_str(), Some(span.as_str()), "{how}: {l}");
        let want_trace = if span.is_empty() {
            ""
        } else {
            sent.trace_id.as_str()
        };
        assert_eq!(l["trace_id"].as_str(), Some(want_trace), "{how}: {l}");
    }
    let legacy = logs
        .iter()
        .find(|l| l["service"] == "legacy-billing")
        .expect("legacy log");
    assert_eq!(
        legacy["attributes"]["x-request-id"].as_str(),
        Some(sent.request_id.as_str()),
        "{how}: {legacy}"
    );
    let times: Vec<u64> = logs
        .iter()
        .map(|l| l["time_unix_nano"].as_u64().unwrap_or_default())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "{how}: logs not by time: {times:?}"
    );
}

fn scenario(transport: Transport) {
    let c = Collector::start(&["--commit-interval-ms", "100"]);
    let sent = send_request(&c, transport);
    assert_eq!(sent.spans.len(), 7);
    assert_eq!(sent.logs.len(), 5);

    let by_trace = fetch(&c, &sent.trace_id, &sent);
    check_answer(&by_trace, &sent, &format!("{transport:?} by trace id"));

    let by_request = fetch(&c, &sent.request_id, &sent);
    check_answer(&by_request, &sent, &format!("{transport:?} by request id"));
    assert_eq!(
        strings(&by_request["spans"], "span_id"),
        strings(&by_trace["spans"], "span_id"),
        "{transport:?}: the request ID and the trace ID give different spans"
    );
    assert_eq!(
        strings(&by_request["logs"], "body"),
        strings(&by_trace["logs"], "body"),
        "{transport:?}: the request ID and the trace ID give different logs"
    );

    // Trace IDs compare without regard to case.
    let upper = fetch(&c, &sent.trace_id.to_uppercase(), &sent);
    assert_eq!(
        strings(&upper["spans"], "span_id"),
        strings(&by_trace["spans"], "span_id"),
        "{transport:?}: an upper-case trace ID finds other spans"
    );
}

#[test]
fn sdk_http_protobuf_three_services_one_story() {
    scenario(Transport::HttpProto);
}

#[test]
fn sdk_http_json_three_services_one_story() {
    scenario(Transport::HttpJson);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_grpc_compressed_three_services_one_story() {
    // The SDK's processors and the blocking HTTP client block: keep them off the reactor, on a
    // thread that still sees the runtime (tonic needs it).
    tokio::task::spawn_blocking(|| scenario(Transport::Grpc))
        .await
        .expect("grpc scenario");
}
