//! `POST /loki/api/v1/push` through the real router, over a sink that records the logs exports
//! it is handed; the mapping checked through the model's own OTLP conversion; the label parser.

use super::labels::{MAX_LABELS, MAX_LABELS_TEXT, parse_labels};
use super::*;
use crate::admission::AdmissionLimits;
use crate::http::router;
use crate::sink::{Accepted, IngestError};
use axum::http::Request;
use prost::Message;
use skein_model::keys::KeyExtractor;
use skein_model::lokipb::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, Timestamp};
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use skein_model::proto::collector::trace::v1::ExportTraceServiceRequest;
use skein_model::{KeyConfig, Limits, LogRecord};
use std::future::{Future, ready};
use std::io::Write;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use tower::ServiceExt;

const TOKEN: &str = "s3cret";
const MAX_BODY: usize = 64 * 1024;

/// Records the logs exports it takes; answers with `answer` when set.
#[derive(Clone)]
struct Recorder {
    got: Arc<Mutex<Vec<ExportLogsServiceRequest>>>,
    bad: Arc<Mutex<u32>>,
    inflight: Arc<Semaphore>,
    answer: Option<IngestError>,
    takes: bool,
}

impl Recorder {
    fn new() -> Self {
        Recorder {
            got: Arc::default(),
            bad: Arc::default(),
            inflight: Arc::new(Semaphore::new(4)),
            answer: None,
            takes: true,
        }
    }
    fn got(&self) -> Vec<ExportLogsServiceRequest> {
        self.got.lock().unwrap().clone()
    }
    /// The model records of everything taken, as the collector converts them.
    fn records(&self) -> Vec<LogRecord> {
        let keys = KeyExtractor::new(&KeyConfig::default());
        self.got()
            .iter()
            .flat_map(|r| {
                let (recs, rej) =
                    skein_model::otlp::logs_from_otlp(r, &keys, &Limits::default(), 42);
                assert_eq!(rej.count, 0, "{rej:?}");
                recs
            })
            .collect()
    }
    fn bad(&self) -> u32 {
        *self.bad.lock().unwrap()
    }
}

impl OtlpSink for Recorder {
    fn admit(&self, _: &'static str) -> Result<OwnedSemaphorePermit, String> {
        self.inflight
            .clone()
            .try_acquire_owned()
            .map_err(|_| "too many requests in flight; retry later".to_string())
    }
    fn bad_request(&self, signal: &'static str) {
        assert_eq!(signal, "logs");
        *self.bad.lock().unwrap() += 1;
    }
    fn logs(
        &self,
        req: ExportLogsServiceRequest,
        _: ExportMeta,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        self.got.lock().unwrap().push(req);
        ready(match &self.answer {
            Some(e) => Err(e.clone()),
            None => Ok(Accepted::default()),
        })
    }
    fn traces(
        &self,
        _: ExportTraceServiceRequest,
        _: ExportMeta,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        ready(Ok(Accepted::default()))
    }
    fn metrics(
        &self,
        _: ExportMetricsServiceRequest,
        _: ExportMeta,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        ready(Ok(Accepted::default()))
    }
    fn takes_loki_push(&self) -> bool {
        self.takes
    }
}

fn state(sink: Recorder, limits: AdmissionLimits) -> HttpState<Recorder> {
    HttpState {
        sink,
        max_body: MAX_BODY,
        token: Some(Arc::from(TOKEN)),
        admission: Admission::new(limits),
    }
}

type Answer = (StatusCode, HeaderMap, serde_json::Value);

/// Sends `body` with `content_type` and the token, `headers` replacing or adding some (an
/// empty value removes one).
async fn send(
    st: HttpState<Recorder>,
    content_type: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut h: Vec<(String, String)> = vec![
        ("content-type".into(), content_type.into()),
        ("authorization".into(), format!("Bearer {TOKEN}")),
    ];
    for (k, v) in headers {
        h.retain(|(n, _)| n != k);
        if !v.is_empty() {
            h.push((k.to_string(), v.to_string()));
        }
    }
    let mut req = Request::post(PATH);
    for (k, v) in &h {
        req = req.header(k, v);
    }
    let resp = router(st)
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, headers, json)
}

async fn send_json(sink: &Recorder, body: &str) -> Answer {
    send(
        state(sink.clone(), AdmissionLimits::default()),
        "application/json",
        body.as_bytes().to_vec(),
        &[],
    )
    .await
}

async fn send_proto(sink: &Recorder, req: &PushRequest) -> Answer {
    send(
        state(sink.clone(), AdmissionLimits::default()),
        "application/x-protobuf",
        snappy(&req.encode_to_vec()),
        &[],
    )
    .await
}

/// Asserts an error answer: the status, JSON `{"error", "message"}`, the message containing
/// `needle`.
fn assert_error(got: &Answer, status: u16, needle: &str) {
    assert_eq!(got.0.as_u16(), status, "{}", got.2);
    let msg = got.2["message"].as_str().unwrap_or_default();
    assert!(got.2["error"].as_str().is_some(), "{}", got.2);
    assert!(msg.contains(needle), "'{needle}' not in: {msg}");
}

fn snappy(b: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(b).unwrap()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn attr<'a>(a: &'a skein_model::Attributes, k: &str) -> &'a str {
    a.get(k).and_then(|v| v.as_str()).unwrap_or("")
}

fn entry(secs: i64, nanos: i32, line: &str, meta: &[(&str, &str)]) -> EntryAdapter {
    EntryAdapter {
        timestamp: Some(Timestamp {
            seconds: secs,
            nanos,
        }),
        line: line.into(),
        structured_metadata: meta
            .iter()
            .map(|(n, v)| LabelPairAdapter {
                name: (*n).into(),
                value: (*v).into(),
            })
            .collect(),
    }
}

fn proto(labels: &str, entries: Vec<EntryAdapter>) -> PushRequest {
    PushRequest {
        streams: vec![StreamAdapter {
            labels: labels.into(),
            entries,
            hash: 0,
        }],
    }
}

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

#[tokio::test]
async fn json_maps_labels_metadata_levels_and_keys() {
    let sink = Recorder::new();
    let body = format!(
        r#"{{"streams":[{{"stream":{{"job":"varlogs","service_name":"checkout","app":"x","hostname":"web-1","level":"warn","request_id":"req-7"}},
           "values":[["1700000000000000001","first line"],
                     ["1700000000000000002","second",{{"trace_id":"{TRACE}","level":"ERROR","user":"u1","n":3}}]]}},
          {{"stream":{{"app":"billing"}},"values":[["1700000000000000003","third"]]}}]}}"#
    );
    let got = send_json(&sink, &body).await;
    assert_eq!(got.0, StatusCode::NO_CONTENT, "{}", got.2);
    assert_eq!(sink.got().len(), 1, "one push, one logs export");
    let r = sink.records();
    assert_eq!(r.len(), 3);
    assert_eq!(
        r[0].service, "checkout",
        "service_name wins over app and job"
    );
    assert_eq!(r[0].host, "web-1");
    assert_eq!(r[0].body, "first line");
    assert_eq!(r[0].time_unix_nano, 1_700_000_000_000_000_001);
    assert_eq!(
        (r[0].severity_text.as_str(), r[0].severity_number),
        ("warn", 13)
    );
    for k in [
        "job",
        "service_name",
        "app",
        "hostname",
        "level",
        "request_id",
    ] {
        assert!(
            r[0].resource.contains_key(k),
            "label {k} kept: {:?}",
            r[0].resource
        );
    }
    assert!(r[0].keys.contains(&"req-7".to_string()), "{:?}", r[0].keys);
    assert_eq!(
        (r[1].severity_text.as_str(), r[1].severity_number),
        ("ERROR", 17)
    );
    assert_eq!(r[1].trace_id, TRACE);
    assert_eq!(attr(&r[1].attributes, "user"), "u1");
    assert_eq!(
        attr(&r[1].attributes, "n"),
        "3",
        "numbers taken as their text"
    );
    assert!(r[1].keys.contains(&"req-7".to_string()));
    assert_eq!(r[2].service, "billing");
    assert_eq!(r[2].severity_number, 0);
}

#[tokio::test]
async fn gzip_and_deflate_json_are_read() {
    let body = br#"{"streams":[{"stream":{"job":"j"},"values":[["5","zipped"]]}]}"#;
    let sink = Recorder::new();
    let got = send(
        state(sink.clone(), AdmissionLimits::default()),
        "application/json; charset=utf-8",
        gzip(body),
        &[("content-encoding", "gzip")],
    )
    .await;
    assert_eq!(got.0, StatusCode::NO_CONTENT, "{}", got.2);
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(body).unwrap();
    let got = send(
        state(sink.clone(), AdmissionLimits::default()),
        "application/json",
        e.finish().unwrap(),
        &[("content-encoding", "deflate")],
    )
    .await;
    assert_eq!(got.0, StatusCode::NO_CONTENT, "{}", got.2);
    let r = sink.records();
    assert_eq!(r.len(), 2);
    assert!(r.iter().all(|r| r.body == "zipped" && r.service == "j"));
}

#[tokio::test]
async fn protobuf_snappy_with_structured_metadata() {
    let sink = Recorder::new();
    let req = PushRequest {
        streams: vec![
            StreamAdapter {
                labels:
                    r#"{service="api", instance="10.0.0.1:80", msg="a \"quoted\"\tvalue\u00e9"}"#
                        .into(),
                entries: vec![
                    entry(
                        1_700_000_000,
                        5,
                        "hello",
                        &[("trace_id", TRACE), ("detected_level", "debug")],
                    ),
                    entry(1_700_000_001, 0, "no metadata", &[]),
                ],
                hash: 99,
            },
            StreamAdapter {
                labels: "{job=`raw\\n`}".into(),
                entries: vec![EntryAdapter {
                    timestamp: None,
                    line: "untimed".into(),
                    structured_metadata: vec![],
                }],
                hash: 0,
            },
        ],
    };
    let got = send_proto(&sink, &req).await;
    assert_eq!(got.0, StatusCode::NO_CONTENT, "{}", got.2);
    let r = sink.records();
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].service, "api");
    assert_eq!(r[0].host, "10.0.0.1:80");
    assert_eq!(r[0].time_unix_nano, 1_700_000_000_000_000_005);
    assert_eq!(r[0].trace_id, TRACE);
    assert_eq!(
        (r[0].severity_text.as_str(), r[0].severity_number),
        ("debug", 5)
    );
    assert_eq!(attr(&r[0].resource, "msg"), "a \"quoted\"\tvalueé");
    assert_eq!(attr(&r[0].attributes, "detected_level"), "debug");
    assert!(r[1].attributes.is_empty());
    assert_eq!(r[1].trace_id, "");
    assert_eq!(attr(&r[2].resource, "job"), "raw\\n", "backquotes are raw");
    assert_eq!(r[2].time_unix_nano, 42, "no timestamp: the time received");
}

#[tokio::test]
async fn basic_auth_with_the_token_as_password_is_taken() {
    let sink = Recorder::new();
    let body = br#"{"streams":[{"stream":{"job":"j"},"values":[["1","x"]]}]}"#.to_vec();
    let st = || state(sink.clone(), AdmissionLimits::default());
    // "user:s3cret" and "user:wrong".
    let got = send(
        st(),
        "application/json",
        body.clone(),
        &[("authorization", "Basic dXNlcjpzM2NyZXQ=")],
    )
    .await;
    assert_eq!(got.0, StatusCode::NO_CONTENT, "{}", got.2);
    for bad in ["Basic dXNlcjp3cm9uZw==", "Basic !!!", "Bearer wrong", ""] {
        let got = send(
            st(),
            "application/json",
            body.clone(),
            &[("authorization", bad)],
        )
        .await;
        assert_error(&got, 401, "ingest token");
    }
    assert_eq!(sink.got().len(), 1);
}

#[tokio::test]
async fn wrong_types_and_encodings_are_415() {
    let sink = Recorder::new();
    let st = || state(sink.clone(), AdmissionLimits::default());
    let json = br#"{"streams":[]}"#.to_vec();
    for (ctype, enc, needle) in [
        ("text/plain", "", "content type 'text/plain'"),
        ("", "", "application/json or application/x-protobuf"),
        (
            "application/json",
            "snappy",
            "snappy goes with application/x-protobuf",
        ),
        ("application/json", "zstd", "'zstd'"),
        ("application/x-protobuf", "gzip", "snappy (block format)"),
    ] {
        let got = send(st(), ctype, json.clone(), &[("content-encoding", enc)]).await;
        assert_error(&got, 415, needle);
    }
    assert!(sink.got().is_empty());
    assert_eq!(sink.bad(), 5);
}

#[tokio::test]
async fn malformed_bodies_are_400_with_what_is_wrong() {
    let sink = Recorder::new();
    for (body, needle) in [
        ("not json", "not a Loki push in JSON"),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}"#,
            "2 or 3 elements",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x",{},"y"]]}]}"#,
            "2 or 3 elements",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1",2]]}]}"#,
            "invalid type",
        ),
        (
            r#"{"streams":[{"stream":{"a":{"b":1}},"values":[]}]}"#,
            "a string",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["x1","l"]]}]}"#,
            "stream 0, entry 0: timestamp 'x1'",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["1","l"],["-5","l"]]}]}"#,
            "stream 0, entry 1: timestamp '-5'",
        ),
        (
            r#"{"streams":[{"stream":{"a":"b"},"values":[["99999999999999999999","l"]]}]}"#,
            "past the year",
        ),
        (
            r#"{"streams":[{"stream":{"a.b":"c"},"values":[]}]}"#,
            "stream 0: stream label name 'a.b'",
        ),
        (
            r#"{"streams":[{"stream":{"a":"1","a":"2"},"values":[]}]}"#,
            "'a' is given twice",
        ),
        (
            r#"{"streams":[{"stream":{},"values":[["1","l",{"9x":"v"}]]}]}"#,
            "structured metadata name '9x'",
        ),
    ] {
        let got = send_json(&sink, body).await;
        assert_error(&got, 400, needle);
    }
    for (labels, needle) in [
        ("", "label text is empty"),
        ("job=\"a\"", "must start with '{'"),
        ("{job!=\"a\"}", "not selectors"),
        ("{job=\"a\"", "expected ',' or '}'"),
    ] {
        let got = send_proto(&sink, &proto(labels, vec![entry(1, 0, "l", &[])])).await;
        assert_error(&got, 400, needle);
        assert!(
            got.2["message"]
                .as_str()
                .unwrap()
                .starts_with("stream 0: labels"),
            "{}",
            got.2
        );
    }
    let got = send_proto(&sink, &proto("{a=\"b\"}", vec![entry(-1, 0, "l", &[])])).await;
    assert_error(&got, 400, "stream 0, entry 0: timestamp -1s");
    let got = send_proto(
        &sink,
        &proto("{a=\"b\"}", vec![entry(1, 1_000_000_000, "l", &[])]),
    )
    .await;
    assert_error(&got, 400, "nanos must be");
    let st = || state(sink.clone(), AdmissionLimits::default());
    let got = send(
        st(),
        "application/x-protobuf",
        b"\xffnot snappy".to_vec(),
        &[],
    )
    .await;
    assert_error(&got, 400, "snappy");
    let got = send(st(), "application/x-protobuf", snappy(b"\xff\xff\xff"), &[]).await;
    assert_error(&got, 400, "logproto.PushRequest");
    let got = send(
        st(),
        "application/json",
        b"not gzip".to_vec(),
        &[("content-encoding", "gzip")],
    )
    .await;
    assert_error(&got, 400, "not valid gzip");
    assert!(sink.got().is_empty(), "nothing of a bad push is taken");
}

#[tokio::test]
async fn too_large_bodies_and_pushes_are_413() {
    let sink = Recorder::new();
    let st = |limits| state(sink.clone(), limits);
    let d = AdmissionLimits::default();
    // The body as sent.
    let got = send(st(d), "application/json", vec![b' '; MAX_BODY + 1], &[]).await;
    assert_error(&got, 413, "limits.max_request_bytes");
    // Snappy: the declared size, never decompressed.
    let big = vec![b'a'; MAX_BODY + 10];
    let got = send(st(d), "application/x-protobuf", snappy(&big), &[]).await;
    assert_error(
        &got,
        413,
        &format!("decompresses to {} bytes", MAX_BODY + 10),
    );
    // gzip: read with a cap.
    let got = send(
        st(d),
        "application/json",
        gzip(&vec![b' '; 10 * MAX_BODY]),
        &[("content-encoding", "gzip")],
    )
    .await;
    assert_error(&got, 413, "more than the limit");
    // Records: protobuf counted on the wire, JSON after decoding; the sink never sees them.
    let few = AdmissionLimits {
        max_records_per_request: 3,
        ..d
    };
    let req = proto("{a=\"b\"}", (0..4).map(|i| entry(i, 0, "l", &[])).collect());
    let got = send(
        st(few),
        "application/x-protobuf",
        snappy(&req.encode_to_vec()),
        &[],
    )
    .await;
    assert_error(&got, 413, "4 logs records");
    let body =
        br#"{"streams":[{"stream":{"a":"b"},"values":[["1","l"],["2","l"],["3","l"],["4","l"]]}]}"#;
    let got = send(st(few), "application/json", body.to_vec(), &[]).await;
    assert_error(&got, 413, "4 logs records");
    // Empty streams count too.
    let body = br#"{"streams":[{"stream":{"a":"b"}},{"stream":{"a":"b"}},{"stream":{"a":"b"}},{"stream":{"a":"b"}}]}"#;
    let got = send(st(few), "application/json", body.to_vec(), &[]).await;
    assert_error(&got, 413, "limits.max_records_per_request");
    assert!(sink.got().is_empty());
}

#[tokio::test]
async fn overload_is_503_with_retry_after() {
    let sink = Recorder::new();
    let body = br#"{"streams":[{"stream":{"a":"b"},"values":[["1","l"]]}]}"#.to_vec();
    // No place in flight.
    let held = sink.inflight.clone().acquire_many_owned(4).await.unwrap();
    let got = send(
        state(sink.clone(), AdmissionLimits::default()),
        "application/json",
        body.clone(),
        &[],
    )
    .await;
    assert_error(&got, 503, "retry later");
    assert_eq!(got.1.get("retry-after").unwrap(), "1");
    drop(held);
    // The memory budget in use.
    let st = state(
        sink.clone(),
        AdmissionLimits {
            max_records_per_request: 10,
            memory_budget_bytes: 8 * 1024,
        },
    );
    let hold = st
        .admission
        .reserve(
            "logs",
            Cost {
                records: 1,
                bytes: 8 * 1024,
            },
        )
        .unwrap();
    let got = send(st.clone(), "application/json", body.clone(), &[]).await;
    assert_error(&got, 503, "memory budget");
    assert!(got.1.contains_key("retry-after"));
    drop(hold);
    let got = send(st, "application/json", body.clone(), &[]).await;
    assert_eq!(got.0, StatusCode::NO_CONTENT, "{}", got.2);
    // The sink's queues full.
    let mut full = Recorder::new();
    full.answer = Some(IngestError::Unavailable(
        "the ingest queue is full; retry later".into(),
    ));
    let got = send_json(&full, std::str::from_utf8(&body).unwrap()).await;
    assert_error(&got, 503, "ingest queue is full");
    assert!(got.1.contains_key("retry-after"));
}

#[tokio::test]
async fn the_route_is_there_only_when_the_sink_takes_it() {
    let mut sink = Recorder::new();
    let body = br#"{"streams":[]}"#.to_vec();
    let got = send(
        state(sink.clone(), AdmissionLimits::default()),
        "application/json",
        body.clone(),
        &[],
    )
    .await;
    assert_eq!(
        got.0,
        StatusCode::NO_CONTENT,
        "an empty push is fine: {}",
        got.2
    );
    sink.takes = false;
    let got = send(
        state(sink, AdmissionLimits::default()),
        "application/json",
        body,
        &[],
    )
    .await;
    assert_eq!(got.0, StatusCode::NOT_FOUND);
}

#[test]
fn protobuf_cost_counts_entries_on_the_wire() {
    let req = PushRequest {
        streams: vec![
            StreamAdapter {
                labels: "{a=\"b\"}".into(),
                entries: vec![entry(1, 0, "x", &[]); 7],
                hash: 0,
            },
            StreamAdapter {
                labels: "{a=\"c\"}".into(),
                entries: vec![],
                hash: 0,
            },
        ],
    };
    let body = req.encode_to_vec();
    let wire = wire_cost(Format::Protobuf, &body).unwrap();
    assert_eq!(wire.records, 8, "7 entries and an empty stream");
    let decoded = decode(Format::Protobuf, &body).unwrap().cost();
    assert_eq!(decoded.records, wire.records);
    for cut in 0..body.len() {
        let _ = wire_cost(Format::Protobuf, &body[..cut]);
    }
}

#[test]
fn labels_parse_with_go_escapes() {
    let ok = |t: &str| parse_labels(t).unwrap_or_else(|e| panic!("{t}: {e}"));
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(ok("{}"), pairs(&[]));
    assert_eq!(ok("  { }  "), pairs(&[]));
    assert_eq!(ok(r#"{a="1",b="2",}"#), pairs(&[("a", "1"), ("b", "2")]));
    assert_eq!(
        ok("{ _x9 =\t\"v\" ,\n y=\"\" }"),
        pairs(&[("_x9", "v"), ("y", "")])
    );
    assert_eq!(
        ok(r#"{a="\a\b\f\n\r\t\v\\\"\'"}"#),
        pairs(&[("a", "\x07\x08\x0c\n\r\t\x0b\\\"'")])
    );
    assert_eq!(
        ok(r#"{a="\x41\101\u00e9\U0001F600"}"#),
        pairs(&[("a", "AAé😀")])
    );
    assert_eq!(
        ok(r#"{a="\xc3\xa9"}"#),
        pairs(&[("a", "é")]),
        "bytes that make UTF-8"
    );
    assert_eq!(ok("{a=`x\\n\"y`}"), pairs(&[("a", "x\\n\"y")]));
    assert_eq!(
        ok(r#"{a="{b=\"c\"}"}"#),
        pairs(&[("a", "{b=\"c\"}")]),
        "braces in values are text"
    );
}

#[test]
fn bad_labels_are_refused_with_where() {
    for (t, needle) in [
        ("", "empty"),
        ("   ", "empty"),
        ("a=\"b\"", "must start with '{'"),
        ("{{a=\"b\"}}", "nested braces"),
        ("{a={b=\"c\"}}", "must be in double quotes"),
        ("{a=\"b\"}}", "after the closing '}'"),
        ("{a=\"b\"} x", "after the closing '}'"),
        ("{a=\"b\" c=\"d\"}", "expected ',' or '}'"),
        ("{a=\"b\",,}", "expected a label name"),
        ("{9a=\"b\"}", "expected a label name"),
        ("{a.b=\"c\"}", "expected '='"),
        ("{a!=\"b\"}", "not selectors"),
        ("{a=~\"b\"}", "not selectors"),
        ("{a=b}", "double quotes"),
        ("{a='b'}", "double quotes"),
        ("{a=\"b}", "never closed"),
        ("{a=\"b\\", "backslash ends"),
        ("{a=\"\\q\"}", "unknown escape"),
        ("{a=\"\\x4\"}", "2 hex digits"),
        ("{a=\"\\400\"}", "octal"),
        ("{a=\"\\ud800\"}", "hex digits of a character"),
        ("{a=\"\\xff\"}", "not UTF-8"),
        ("{a=\"x\ny\"}", "raw line break"),
        ("{a=\"1\", a=\"2\"}", "given twice"),
        ("{a=\"1\"", "ends at byte"),
        ("{é=\"1\"}", "byte 0xc3 at byte 1"),
    ] {
        match parse_labels(t) {
            Err(e) => assert!(e.contains(needle), "{t:?}: '{needle}' not in: {e}"),
            Ok(p) => panic!("{t:?} parsed: {p:?}"),
        }
    }
    let long = format!("{{a=\"{}\"}}", "x".repeat(MAX_LABELS_TEXT));
    assert!(parse_labels(&long).unwrap_err().contains("limit"));
    let many: Vec<String> = (0..=MAX_LABELS).map(|i| format!("l{i}=\"v\"")).collect();
    let many = format!("{{{}}}", many.join(","));
    assert!(
        parse_labels(&many)
            .unwrap_err()
            .contains(&format!("more than {MAX_LABELS}"))
    );
    let most: Vec<String> = (0..MAX_LABELS).map(|i| format!("l{i}=\"v\"")).collect();
    assert_eq!(
        parse_labels(&format!("{{{}}}", most.join(",")))
            .unwrap()
            .len(),
        MAX_LABELS
    );
}
