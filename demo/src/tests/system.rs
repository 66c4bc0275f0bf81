//! All five services in this process, on 127.0.0.1 port 0, exporting spans to an in-test
//! OTLP sink, or to a port where nothing listens (export failures must not disturb requests).

use super::harness::{System, order_until_not_declined};
use super::sink::{Got, Sink};
use crate::load::{self, Kind, LoadConfig, LoadStats};
use crate::{Addresses, Fault, ServiceConfig, ServiceName, set_fault};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// Also: the outbox holds events while delivery is down and drains them when it is back,
/// and the load generator sends its mix and records what it sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_work_when_spans_cannot_be_exported() {
    let dir = tempfile::tempdir().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let otlp = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let mut sys = System::start(dir.path(), &otlp).await;

    // Delivery is down: the order is still accepted and its event waits in the outbox.
    sys.stop_one(ServiceName::Delivery).await;
    let (rid, body) = order_until_not_declined(&sys, "no-export", "SAVE-NOEXP").await;
    assert_eq!(body["status"], "accepted");
    let order_id = body["order_id"].as_str().unwrap().to_owned();
    sys.wait_for_log(ServiceName::Order, |l| {
        l["order_id"] == order_id.as_str()
            && l["message"] == "order.accepted not delivered yet; will retry"
    })
    .await;
    sys.restart(ServiceName::Delivery).await;
    let delivery = sys.wait_for_delivery(&order_id, "assigned").await;
    assert_eq!(delivery["request_id"], Value::String(rid.clone()));
    assert!(
        sys.log(ServiceName::Payment)
            .iter()
            .any(|l| l["request_id"] == rid.as_str())
    );

    // The load generator, until it has sent 40 requests.
    let stats = Arc::new(LoadStats::default());
    let cfg = LoadConfig {
        gateway: sys.addresses.gateway,
        rate: 200.0,
        seed: 1,
    };
    let watched = stats.clone();
    let enough = async move {
        while watched.snapshot().sent < 40 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(
        super::harness::PATIENCE,
        load::run(cfg, stats.clone(), enough),
    )
    .await
    .unwrap();
    let summary = stats.snapshot();
    let sent = stats.sent();
    assert_eq!(summary.sent, sent.len() as u64);
    assert!(summary.sent >= 40);
    assert_eq!(summary.sent, summary.ok + summary.rejected + summary.failed);
    assert!(summary.ok > 0, "{summary:?}");
    for s in &sent {
        assert_ne!(s.status, 0, "{s:?}");
        if s.had_request_id {
            assert!(s.request_id.starts_with("load-"), "{s:?}");
        } else {
            assert!(s.request_id.starts_with("req-"), "{s:?}");
        }
        if s.kind != Kind::GetOrder && s.status == 201 {
            assert!(s.order_id.is_some(), "{s:?}");
        }
    }
    let gateway_rids: Vec<String> = sys
        .log(ServiceName::Gateway)
        .iter()
        .filter_map(|l| l["request_id"].as_str().map(str::to_owned))
        .collect();
    assert!(sent.iter().all(|s| gateway_rids.contains(&s.request_id)));
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_five_services_work_together() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, sink_addr) = Sink::start().await;
    let sys = System::start(dir.path(), &format!("http://{sink_addr}")).await;
    let order_port = sys.addresses.order.port().to_string();

    // An order with a coupon goes through and reaches delivery by the event.
    let (rid, body) = order_until_not_declined(&sys, "happy", "SAVE-TEST1").await;
    assert_eq!(body["status"], "accepted");
    let order_id = body["order_id"].as_str().unwrap().to_owned();
    assert!(
        order_id.starts_with("ord-") && order_id.len() == 16,
        "{order_id}"
    );
    let lookup = sys
        .client
        .get(sys.url(ServiceName::Gateway, &format!("/orders/{order_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(lookup.status(), 200);
    let delivery = sys.wait_for_delivery(&order_id, "assigned").await;
    assert_eq!(delivery["request_id"], Value::String(rid.clone()));

    // Every service logged the request, all in one trace; delivery's courier line carries
    // the request ID through the event.
    let mut trace_of = HashMap::new();
    for s in ServiceName::ALL {
        let lines = sys.log(s);
        let mine: Vec<&Value> = lines
            .iter()
            .filter(|l| l["request_id"] == rid.as_str())
            .collect();
        assert!(!mine.is_empty(), "{s} logged nothing for {rid}");
        for l in &mine {
            assert_eq!(l["service"], s.as_str());
            assert!(l["timestamp"].as_str().unwrap().ends_with('Z'));
        }
        let traced = mine
            .iter()
            .find(|l| l["message"] == "request done")
            .unwrap_or_else(|| panic!("{s} has no request line for {rid}"));
        let trace_id = traced["trace_id"].as_str().unwrap().to_owned();
        assert_eq!(trace_id.len(), 32);
        assert_eq!(traced["span_id"].as_str().unwrap().len(), 16);
        trace_of.insert(s, trace_id);
    }
    let gateway_trace = &trace_of[&ServiceName::Gateway];
    for s in ServiceName::ALL {
        assert_eq!(&trace_of[&s], gateway_trace, "{s} is in another trace");
    }
    let courier = sys
        .log(ServiceName::Delivery)
        .into_iter()
        .find(|l| l["message"] == "courier assigned" && l["order_id"] == order_id.as_str())
        .expect("delivery logged the courier");
    assert_eq!(courier["request_id"], Value::String(rid.clone()));
    assert_ne!(
        &courier["trace_id"], gateway_trace,
        "the consumer starts its own trace"
    );

    // Payment down: the order fails with 502 and the coupon is given back.
    let fault = Fault {
        delay_ms: 0,
        error_rate: 1.0,
    };
    set_fault(&sys.client, sys.addresses.payment, fault)
        .await
        .unwrap();
    let got: Fault = sys
        .client
        .get(sys.url(ServiceName::Payment, "/admin/fault"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, fault);
    let (status, _, body) = sys.order("test-payment-down", Some("SAVE-COMP1")).await;
    assert_eq!(status, 502, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    let redeem = sys
        .client
        .post(sys.url(ServiceName::Coupon, "/coupons/SAVE-COMP1/redeem"))
        .json(&json!({"order_id": "ord-another"}))
        .send()
        .await
        .unwrap();
    assert_eq!(redeem.status(), 200, "the coupon was not released");
    let order_log = sys.log(ServiceName::Order);
    assert!(
        order_log
            .iter()
            .any(|l| l["request_id"] == "test-payment-down"
                && l["message"] == "coupon released (compensation)"
                && l["level"] == "INFO")
    );
    assert!(
        sys.log(ServiceName::Payment)
            .iter()
            .any(|l| l["request_id"] == "test-payment-down"
                && l["level"] == "ERROR"
                && l["message"] == "payment gateway timeout talking to bank")
    );
    set_fault(&sys.client, sys.addresses.payment, Fault::default())
        .await
        .unwrap();

    // A used coupon: the order goes on without a discount.
    let (rid2, _) = order_until_not_declined(&sys, "used-coupon", "SAVE-COMP1").await;
    assert!(
        sys.log(ServiceName::Order)
            .iter()
            .any(|l| l["request_id"] == rid2.as_str()
                && l["level"] == "WARN"
                && l["coupon"] == "SAVE-COMP1")
    );

    // Bad input gets a 400 with a message, and a request ID from the gateway.
    let resp = sys
        .client
        .post(sys.url(ServiceName::Gateway, "/orders"))
        .header("x-request-id", "x".repeat(200))
        .json(&json!({"customer_id": "c", "items": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let assigned = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(
        assigned.starts_with("req-") && assigned.len() == 20,
        "{assigned}"
    );
    let err: Value = resp.json().await.unwrap();
    assert!(err["error"].as_str().unwrap().contains("items"));
    let resp = sys
        .client
        .post(sys.url(ServiceName::Gateway, "/orders"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.json::<Value>().await.unwrap()["error"].is_string());

    // A fault out of range is refused, by the service and by set_fault.
    let resp = sys
        .client
        .post(sys.url(ServiceName::Coupon, "/admin/fault"))
        .json(&json!({"error_rate": 2.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        resp.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("error_rate")
    );
    let bad = Fault {
        delay_ms: 0,
        error_rate: 2.0,
    };
    assert!(
        set_fault(&sys.client, sys.addresses.coupon, bad)
            .await
            .is_err()
    );

    // Health and admin requests leave no trace in the logs.
    let health = sys
        .client
        .get(sys.url(ServiceName::Order, "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
    assert!(!sys.log(ServiceName::Order).iter().any(|l| {
        l["route"]
            .as_str()
            .is_some_and(|r| r.contains("healthz") || r.contains("admin"))
    }));

    sys.stop().await;

    // The spans, exported when the services stopped.
    let spans = sink.spans();
    assert!(spans.iter().all(|g| g.host == "test-host"));
    assert!(
        !spans
            .iter()
            .any(|g| g.span.name.contains("healthz") || g.span.name.contains("admin"))
    );
    let server = find(&spans, "gateway", SpanKind::Server, "POST /orders", &rid);
    assert_eq!(server.attr("http.route").as_deref(), Some("/orders"));
    assert_eq!(server.attr("http.request.method").as_deref(), Some("POST"));
    assert_eq!(
        server.attr("http.response.status_code").as_deref(),
        Some("201")
    );
    assert!(
        server.span.parent_span_id.is_empty(),
        "the gateway starts the trace"
    );
    let trace = server.span.trace_id.clone();
    let client = find(&spans, "gateway", SpanKind::Client, "POST /orders", &rid);
    assert_eq!(client.attr("peer.service").as_deref(), Some("order"));
    assert_eq!(client.attr("server.port"), Some(order_port));
    assert_eq!(client.span.parent_span_id, server.span.span_id);
    let order = find(&spans, "order", SpanKind::Server, "POST /orders", &rid);
    assert_eq!(order.span.trace_id, trace);
    assert_eq!(
        order.span.parent_span_id, client.span.span_id,
        "traceparent was passed on"
    );
    let redeem = find(
        &spans,
        "order",
        SpanKind::Client,
        "POST /coupons/{code}/redeem",
        &rid,
    );
    assert_eq!(redeem.span.parent_span_id, order.span.span_id);
    let coupon = find(
        &spans,
        "coupon",
        SpanKind::Server,
        "POST /coupons/{code}/redeem",
        &rid,
    );
    assert_eq!(coupon.span.parent_span_id, redeem.span.span_id);
    let payment = find(&spans, "payment", SpanKind::Server, "POST /payments", &rid);
    assert_eq!(payment.span.trace_id, trace);
    let producer = find(
        &spans,
        "order",
        SpanKind::Producer,
        "order.accepted publish",
        &rid,
    );
    assert_eq!(producer.span.parent_span_id, order.span.span_id);
    let events = find(&spans, "delivery", SpanKind::Server, "POST /events", &rid);
    assert_eq!(events.span.trace_id, trace);
    let consumer = find(
        &spans,
        "delivery",
        SpanKind::Consumer,
        "order.accepted process",
        &rid,
    );
    assert_ne!(
        consumer.span.trace_id, trace,
        "the consumer starts a new trace"
    );
    assert!(consumer.span.parent_span_id.is_empty());
    assert_eq!(
        consumer.attr("messaging.operation").as_deref(),
        Some("process")
    );
    assert_eq!(consumer.attr("order_id"), Some(order_id.clone()));
    assert!(
        consumer
            .span
            .links
            .iter()
            .any(|l| l.trace_id == trace && l.span_id == producer.span.span_id),
        "the consumer span links to the producer span"
    );

    // The failed payment's trace: errors, and the compensating release.
    let down = "test-payment-down";
    let failed = find(&spans, "order", SpanKind::Server, "POST /orders", down);
    assert_eq!(
        failed.attr("http.response.status_code").as_deref(),
        Some("502")
    );
    assert_eq!(status_of(failed), StatusCode::Error as i32);
    let bank = find(&spans, "payment", SpanKind::Server, "POST /payments", down);
    assert_eq!(status_of(bank), StatusCode::Error as i32);
    let release = find(
        &spans,
        "order",
        SpanKind::Client,
        "POST /coupons/{code}/release",
        down,
    );
    assert_eq!(release.span.trace_id, failed.span.trace_id);
    assert_eq!(release.attr("peer.service").as_deref(), Some("coupon"));
    find(
        &spans,
        "coupon",
        SpanKind::Server,
        "POST /coupons/{code}/release",
        down,
    );
}

/// The one span of `service` with this kind, name and request ID.
fn find<'a>(spans: &'a [Got], service: &str, kind: SpanKind, name: &str, rid: &str) -> &'a Got {
    let found: Vec<&Got> = spans
        .iter()
        .filter(|g| {
            g.service == service
                && g.span.kind == kind as i32
                && g.span.name == name
                && g.attr("request_id").as_deref() == Some(rid)
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{service} {kind:?} {name:?} for {rid}: {found:#?}"
    );
    found[0]
}

fn status_of(g: &Got) -> i32 {
    g.span.status.as_ref().map_or(0, |s| s.code)
}

#[tokio::test]
async fn a_taken_port_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let addresses = Addresses {
        gateway: addr,
        order: addr,
        coupon: addr,
        payment: addr,
        delivery: addr,
    };
    let cfg = ServiceConfig {
        name: ServiceName::Gateway,
        addresses,
        otlp_endpoint: "http://127.0.0.1:9".into(),
        log_file: dir.path().join("gateway.log"),
        host_name: "h".into(),
    };
    let err = crate::run_service(cfg, async {}, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[test]
fn service_names_parse_and_print() {
    for s in ServiceName::ALL {
        assert_eq!(s.as_str().parse::<ServiceName>(), Ok(s));
        assert_eq!(s.to_string(), s.as_str());
    }
    let err = "billing".parse::<ServiceName>().unwrap_err();
    for s in ServiceName::ALL {
        assert!(err.contains(s.as_str()), "{err}");
    }
    assert!("Gateway".parse::<ServiceName>().is_err());
}
