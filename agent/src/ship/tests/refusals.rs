//! Refusals about the data (413, 400, 422, partial success) and about the setup (401, 403,
//! 404): split, narrowed, held, counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn logs_request(bodies: &[String]) -> ExportLogsServiceRequest {
    let rec = |b: &String| LogRecord {
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(b.clone())),
        }),
        ..Default::default()
    };
    let half = bodies.len() / 2;
    let quarter = half + (bodies.len() - half) / 2;
    let scope = |recs: &[String]| ScopeLogs {
        log_records: recs.iter().map(rec).collect(),
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![
            ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![crate::receiver::string_kv("service.name", "a")],
                    ..Default::default()
                }),
                scope_logs: vec![scope(&bodies[..half])],
                ..Default::default()
            },
            ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![crate::receiver::string_kv("service.name", "b")],
                    ..Default::default()
                }),
                scope_logs: vec![scope(&bodies[half..quarter]), scope(&bodies[quarter..])],
                ..Default::default()
            },
        ],
    }
}

/// The record bodies of an uncompressed logs request, with their service, in order.
fn records_in(plain: &[u8]) -> Vec<String> {
    let req = ExportLogsServiceRequest::decode(plain).unwrap();
    let mut out = Vec::new();
    for rl in &req.resource_logs {
        let service = match &rl.resource.as_ref().unwrap().attributes[0].value {
            Some(AnyValue {
                value: Some(any_value::Value::StringValue(s)),
            }) => s.clone(),
            other => panic!("service {other:?}"),
        };
        for sl in &rl.scope_logs {
            for r in &sl.log_records {
                match &r.body {
                    Some(AnyValue {
                        value: Some(any_value::Value::StringValue(s)),
                    }) => out.push(format!("{service}/{s}")),
                    other => panic!("body {other:?}"),
                }
            }
        }
    }
    out
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// What `records_in` gives for every record of `logs_request(bodies)`.
fn expected(bodies: &[String]) -> Vec<String> {
    records_in(&logs_request(bodies).encode_to_vec())
}

/// A buffer holding one zstd logs batch per entry of `batches`; batch i ends file i at
/// 100 * (i + 1).
fn logs_buffer(dir: &std::path::Path, batches: &[Vec<String>]) -> (Arc<Buffer>, u64) {
    let b = Buffer::open(dir, 1 << 24, 1 << 20).unwrap();
    for (i, bodies) in batches.iter().enumerate() {
        let i = i as u64;
        let (enc, body) = crate::buffer::compress(
            &logs_request(bodies).encode_to_vec(),
            crate::config::Compression::Zstd,
        );
        b.append(
            Signal::Logs,
            u32::try_from(bodies.len()).unwrap(),
            &[(file(i), 100 * (i + 1))],
            enc,
            &body,
            false,
        )
        .unwrap();
    }
    let first = b.read(0, 1).unwrap()[0].seq;
    (Arc::new(b), first)
}

/// Log records in an uncompressed logs request.
fn count_logs(plain: &[u8]) -> usize {
    records_in(plain).len()
}

#[tokio::test]
async fn auth_and_routing_errors_hold_the_batch_until_the_collector_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let batches = vec![names("x", 3), names("y", 4)];
    let (buf, first) = logs_buffer(dir.path(), &batches);
    let fake = Fake::new(&[], (401, None));
    let addr = fake.start().await;
    let run = ship(&buf, addr, fast_retry(), 2);
    until("several refused attempts", || fake.seen().len() >= 6).await;
    assert_eq!(buf.cursor(), first, "nothing is acknowledged while refused");
    assert!(run.acks().is_empty(), "{:?}", run.acks());
    let text = run.telemetry.encode();
    assert!(
        text.contains("skein_agent_shipping_blocked{reason=\"status_401\"} 1"),
        "{text}"
    );
    assert!(
        !text.contains("skein_agent_records_rejected_total{"),
        "{text}"
    );
    assert!(!text.contains("skein_agent_dropped_total{"), "{text}");

    for status in [403, 404, 405, 415] {
        let before = fake.seen().len();
        fake.set_default((status, None));
        until("attempts with the new status", || {
            fake.seen()[before..]
                .iter()
                .filter(|s| s.status == status)
                .count()
                >= 2
        })
        .await;
        let text = run.telemetry.encode();
        assert!(
            text.contains(&format!(
                "skein_agent_shipping_blocked{{reason=\"status_{status}\"}} 1"
            )),
            "{text}"
        );
        assert!(
            text.contains("skein_agent_shipping_blocked{reason=\"status_401\"} 0"),
            "one reason at a time: {text}"
        );
        assert_eq!(buf.cursor(), first);
    }

    fake.set_default((200, None));
    until("both batches acknowledged", || buf.cursor() == first + 2).await;
    let got: Vec<String> = fake
        .delivered_plain("/v1/logs")
        .iter()
        .flat_map(|p| records_in(p))
        .collect();
    let want: Vec<String> = batches.iter().flat_map(|b| expected(b)).collect();
    let (mut got, mut want) = (got, want);
    got.sort();
    want.sort();
    assert_eq!(
        got, want,
        "every record once (two batches in flight: any order)"
    );
    assert_eq!(run.acks(), vec![vec![(file(0), 100)], vec![(file(1), 200)]]);
    let text = run.telemetry.encode();
    assert!(
        text.contains("skein_agent_records_sent_total{signal=\"logs\"} 7"),
        "{text}"
    );
    assert!(
        text.contains("skein_agent_shipping_blocked{reason=\"status_415\"} 0"),
        "the block is lifted: {text}"
    );
    assert!(
        !text.contains("skein_agent_records_rejected_total{"),
        "{text}"
    );
    run.stop().await;
}

#[tokio::test]
async fn a_batch_refused_as_too_large_is_split_until_every_part_fits() {
    let dir = tempfile::tempdir().unwrap();
    let batches = vec![names("r", 11), names("s", 2)];
    let (buf, first) = logs_buffer(dir.path(), &batches);
    let fake = Fake::judged(|_, plain| (count_logs(plain) > 3).then(|| (413, Vec::new())));
    let addr = fake.start().await;
    let run = ship(&buf, addr, fast_retry(), 2);
    until("both batches acknowledged", || buf.cursor() == first + 2).await;

    let got: Vec<String> = fake
        .delivered_plain("/v1/logs")
        .iter()
        .flat_map(|p| records_in(p))
        .collect();
    let want: Vec<String> = batches.iter().flat_map(|b| expected(b)).collect();
    let mut sorted = got.clone();
    sorted.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(sorted, want_sorted, "every record once");
    // The second batch may go while the first is being split; within a batch, the
    // records keep their order.
    let firsts: Vec<&String> = got.iter().filter(|r| r.contains("/r")).collect();
    assert_eq!(firsts, want[..11].iter().collect::<Vec<_>>(), "in order");
    assert!(
        fake.seen()
            .iter()
            .all(|s| s.encoding.as_deref() == Some("zstd")),
        "parts are compressed like the batch"
    );
    assert_eq!(run.acks(), vec![vec![(file(0), 100)], vec![(file(1), 200)]]);
    let text = run.telemetry.encode();
    assert!(
        text.contains("skein_agent_records_sent_total{signal=\"logs\"} 13"),
        "{text}"
    );
    assert!(
        !text.contains("skein_agent_records_rejected_total{"),
        "{text}"
    );
    assert!(!text.contains("skein_agent_dropped_total{"), "{text}");
    run.stop().await;
}

#[tokio::test]
async fn a_single_record_still_too_large_is_dropped_alone_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut bodies = names("r", 6);
    bodies[2] = "x".repeat(10_000);
    let (buf, first) = logs_buffer(dir.path(), &[bodies.clone()]);
    let fake = Fake::judged(|_, plain| (plain.len() > 5_000).then(|| (413, Vec::new())));
    let addr = fake.start().await;
    let run = ship(&buf, addr, fast_retry(), 1);
    until("the batch finished", || buf.cursor() == first + 1).await;

    let got: Vec<String> = fake
        .delivered_plain("/v1/logs")
        .iter()
        .flat_map(|p| records_in(p))
        .collect();
    let mut want = expected(&bodies);
    want.remove(2);
    assert_eq!(got, want);
    assert_eq!(run.acks(), vec![vec![(file(0), 100)]]);
    let text = run.telemetry.encode();
    assert!(
        text.contains("skein_agent_records_sent_total{signal=\"logs\"} 5"),
        "{text}"
    );
    assert!(
        text.contains("skein_agent_records_rejected_total{signal=\"logs\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("skein_agent_dropped_total{reason=\"too_large\"} 1"),
        "{text}"
    );
    run.stop().await;
}

#[tokio::test]
async fn a_400_is_narrowed_to_the_bad_record_and_only_it_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut bodies = names("r", 9);
    bodies[6] = "bad".into();
    let (buf, first) = logs_buffer(dir.path(), &[bodies.clone(), names("s", 2)]);
    let fake = Fake::judged(|_, plain| {
        records_in(plain)
            .iter()
            .any(|r| r.ends_with("/bad"))
            .then(|| (400, Vec::new()))
    });
    let addr = fake.start().await;
    let run = ship(&buf, addr, fast_retry(), 1);
    until("both batches finished", || buf.cursor() == first + 2).await;

    let got: Vec<String> = fake
        .delivered_plain("/v1/logs")
        .iter()
        .flat_map(|p| records_in(p))
        .collect();
    let mut want = expected(&bodies);
    want.remove(6);
    want.extend(expected(&names("s", 2)));
    assert_eq!(got, want);
    let text = run.telemetry.encode();
    assert!(
        text.contains("skein_agent_records_rejected_total{signal=\"logs\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("skein_agent_dropped_total{reason=\"bad_request\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("skein_agent_records_sent_total{signal=\"logs\"} 10"),
        "{text}"
    );
    run.stop().await;
}

#[tokio::test]
async fn records_refused_in_a_partial_success_are_counted_and_the_rest_is_sent() {
    use skein_model::proto::collector::logs::v1::{
        ExportLogsPartialSuccess, ExportLogsServiceResponse,
    };
    let dir = tempfile::tempdir().unwrap();
    let (buf, first) = logs_buffer(dir.path(), &[names("r", 10)]);
    let fake = Fake::judged(|_, _| {
        let answer = ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: 3,
                error_message: "three records are too old".into(),
            }),
        };
        Some((200, answer.encode_to_vec()))
    });
    let addr = fake.start().await;
    let run = ship(&buf, addr, fast_retry(), 1);
    until("the batch acknowledged", || buf.cursor() == first + 1).await;
    assert_eq!(fake.seen().len(), 1, "a partial success is not retried");
    assert_eq!(run.acks(), vec![vec![(file(0), 100)]]);
    let text = run.telemetry.encode();
    assert!(
        text.contains("skein_agent_records_sent_total{signal=\"logs\"} 7"),
        "{text}"
    );
    assert!(
        text.contains("skein_agent_records_rejected_total{signal=\"logs\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("skein_agent_dropped_total{reason=\"partial_success\"} 3"),
        "{text}"
    );
    run.stop().await;
}

#[tokio::test]
async fn spans_and_metrics_from_the_local_receiver_are_split_too() {
    use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
    use skein_model::proto::collector::trace::v1::ExportTraceServiceRequest;
    use skein_model::proto::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
    };
    use skein_model::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use skein_otlp::OtlpSink;

    let dir = tempfile::tempdir().unwrap();
    let buf = Arc::new(Buffer::open(dir.path(), 1 << 24, 1 << 20).unwrap());
    let sink = crate::receiver::AgentSink::new(
        buf.clone(),
        vec![("host.name".into(), "h1".into())],
        crate::config::Compression::Gzip,
        crate::config::WhenFull::Block,
        Telemetry::new(),
        4,
    );
    let span = |n: usize| Span {
        name: format!("span-{n}"),
        trace_id: vec![1; 16],
        span_id: vec![u8::try_from(n).unwrap() + 1; 8],
        ..Default::default()
    };
    let traces = ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: (0..3).map(span).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            },
            ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: (3..7).map(span).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        ],
    };
    let point = |v: i64| NumberDataPoint {
        time_unix_nano: 1,
        value: Some(number_data_point::Value::AsInt(v)),
        ..Default::default()
    };
    let gauge = |name: &str, from: i64| Metric {
        name: name.into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: (from..from + 3).map(point).collect(),
        })),
        ..Default::default()
    };
    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![gauge("g1", 0), gauge("g2", 10)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    sink.traces(traces, Default::default()).await.unwrap();
    sink.metrics(metrics, Default::default()).await.unwrap();
    let first = buf.cursor();

    // Two spans or two points at most per request.
    let fake = Fake::judged(|path, plain| {
        let n = match path {
            "/v1/traces" => ExportTraceServiceRequest::decode(plain)
                .unwrap()
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum::<usize>(),
            "/v1/metrics" => skein_model::otlp::metric_points(
                &ExportMetricsServiceRequest::decode(plain).unwrap(),
            ) as usize,
            _ => 0,
        };
        (n > 2).then(|| (413, Vec::new()))
    });
    let addr = fake.start().await;
    let run = ship(&buf, addr, fast_retry(), 2);
    until("both batches acknowledged", || buf.cursor() == first + 2).await;

    let mut spans = Vec::new();
    for p in fake.delivered_plain("/v1/traces") {
        let req = ExportTraceServiceRequest::decode(&p[..]).unwrap();
        for rs in req.resource_spans {
            let attrs = rs.resource.unwrap().attributes;
            assert_eq!(attrs, vec![crate::receiver::string_kv("host.name", "h1")]);
            for ss in rs.scope_spans {
                spans.extend(ss.spans.into_iter().map(|s| s.name));
            }
        }
    }
    assert_eq!(
        spans,
        (0..7).map(|n| format!("span-{n}")).collect::<Vec<_>>()
    );
    let mut points = Vec::new();
    for p in fake.delivered_plain("/v1/metrics") {
        let req = ExportMetricsServiceRequest::decode(&p[..]).unwrap();
        for rm in req.resource_metrics {
            for sm in rm.scope_metrics {
                for m in sm.metrics {
                    let Some(metric::Data::Gauge(g)) = m.data else {
                        panic!("a gauge")
                    };
                    for dp in g.data_points {
                        let Some(number_data_point::Value::AsInt(v)) = dp.value else {
                            panic!("an int")
                        };
                        points.push(format!("{}={v}", m.name));
                    }
                }
            }
        }
    }
    assert_eq!(
        points,
        ["g1=0", "g1=1", "g1=2", "g2=10", "g2=11", "g2=12"],
        "every point once, in order"
    );
    let text = run.telemetry.encode();
    assert!(
        text.contains("skein_agent_records_sent_total{signal=\"spans\"} 7"),
        "{text}"
    );
    assert!(
        text.contains("skein_agent_records_sent_total{signal=\"metrics\"} 6"),
        "{text}"
    );
    run.stop().await;
}
