//! `POST /api/v1/write` through the real router, over a sink that records what it is handed.

use super::*;
use crate::admission::{AdmissionLimits, Cost};
use crate::http::router;
use crate::sink::{Accepted, IngestError};
use axum::http::Request;
use skein_model::prompb::{Label, Sample, TimeSeries};
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use skein_model::proto::collector::trace::v1::ExportTraceServiceRequest;
use std::future::{Future, ready};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use tower::ServiceExt;

const TOKEN: &str = "s3cret";
const MAX_BODY: usize = 64 * 1024;

/// Records the remote-write requests it takes; answers with `answer` when set.
#[derive(Clone)]
struct Recorder {
    got: Arc<Mutex<Vec<WriteRequest>>>,
    bad: Arc<Mutex<u32>>,
    /// The decompressed size of the last request taken.
    wire_bytes: Arc<Mutex<usize>>,
    inflight: Arc<Semaphore>,
    answer: Option<IngestError>,
    takes: bool,
}

impl Recorder {
    fn new() -> Self {
        Recorder {
            got: Arc::default(),
            bad: Arc::default(),
            wire_bytes: Arc::default(),
            inflight: Arc::new(Semaphore::new(4)),
            answer: None,
            takes: true,
        }
    }
    fn got(&self) -> Vec<WriteRequest> {
        self.got.lock().unwrap().clone()
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
        assert_eq!(signal, "metrics");
        *self.bad.lock().unwrap() += 1;
    }
    fn logs(
        &self,
        _: ExportLogsServiceRequest,
        _: ExportMeta,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        ready(Ok(Accepted::default()))
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
    fn takes_remote_write(&self) -> bool {
        self.takes
    }
    fn remote_write(
        &self,
        req: WriteRequest,
        meta: ExportMeta,
    ) -> impl Future<Output = Result<Accepted, IngestError>> + Send {
        *self.wire_bytes.lock().unwrap() = meta.wire_bytes;
        self.got.lock().unwrap().push(req);
        ready(match &self.answer {
            Some(e) => Err(e.clone()),
            None => Ok(Accepted::default()),
        })
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

/// One series as a test writes it: its labels and its (time, value) samples.
type Series<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

fn request(series: &[Series<'_>]) -> WriteRequest {
    WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| Label {
                        name: (*n).into(),
                        value: (*v).into(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|(t, v)| Sample {
                        value: *v,
                        timestamp: *t,
                    })
                    .collect(),
                histograms: vec![],
            })
            .collect(),
        metadata: vec![],
    }
}

fn snappy(b: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(b).unwrap()
}

/// Sends `body` with remote write's headers, `headers` replacing or adding some (an empty
/// value removes one).
async fn send(
    st: HttpState<Recorder>,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, serde_json::Value) {
    let mut h: Vec<(String, String)> = vec![
        ("content-type".into(), "application/x-protobuf".into()),
        ("content-encoding".into(), "snappy".into()),
        ("x-prometheus-remote-write-version".into(), "0.1.0".into()),
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

/// Asserts an error answer: the status, JSON `{"error", "message"}`, the message containing
/// `needle`.
fn assert_error(got: &(StatusCode, HeaderMap, serde_json::Value), status: u16, needle: &str) {
    assert_eq!(got.0.as_u16(), status, "{}", got.2);
    let msg = got.2["message"].as_str().unwrap_or_default();
    assert!(got.2["error"].as_str().is_some(), "{}", got.2);
    assert!(msg.contains(needle), "'{needle}' not in: {msg}");
}

#[tokio::test]
async fn a_valid_request_reaches_the_sink_and_gets_204() {
    let sink = Recorder::new();
    let req = request(&[(
        &[
            ("__name__", "up"),
            ("job", "prometheus"),
            ("instance", "localhost:9090"),
        ],
        &[(1_700_000_000_000, 1.0)],
    )]);
    let raw = req.encode_to_vec();
    let (status, _, _) = send(
        state(sink.clone(), AdmissionLimits::default()),
        snappy(&raw),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(sink.got(), vec![req]);
    assert_eq!(*sink.wire_bytes.lock().unwrap(), raw.len());
    // Parameters of the content type and its other spelling are taken.
    let body = snappy(&request(&[]).encode_to_vec());
    let ct = "application/x-protobuf; proto=prometheus.WriteRequest";
    let (status, _, _) = send(
        state(sink.clone(), AdmissionLimits::default()),
        body,
        &[
            ("content-type", ct),
            ("x-prometheus-remote-write-version", ""),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(sink.got().len(), 2);
}

#[tokio::test]
async fn the_token_type_and_encoding_are_checked_first() {
    let sink = Recorder::new();
    let body = snappy(&request(&[(&[("__name__", "x")], &[(1, 1.0)])]).encode_to_vec());
    let st = || state(sink.clone(), AdmissionLimits::default());
    for auth in ["", "Bearer wrong"] {
        let got = send(st(), body.clone(), &[("authorization", auth)]).await;
        assert_error(&got, 401, "Authorization: Bearer");
    }
    let got = send(st(), body.clone(), &[("content-type", "application/json")]).await;
    assert_error(&got, 415, "application/x-protobuf");
    let v2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
    let got = send(st(), body.clone(), &[("content-type", v2)]).await;
    assert_error(&got, 415, "remote write 1.0");
    for enc in ["", "gzip"] {
        let got = send(st(), body.clone(), &[("content-encoding", enc)]).await;
        assert_error(&got, 415, "Content-Encoding: snappy");
    }
    assert!(sink.got().is_empty());
    assert_eq!(sink.bad(), 4, "each refused type or encoding is counted");
}

#[tokio::test]
async fn a_snappy_bomb_is_refused_before_it_is_decompressed() {
    let sink = Recorder::new();
    let st = || state(sink.clone(), AdmissionLimits::default());
    // Real snappy: one byte past the limit compresses to a few kilobytes.
    let bomb = snappy(&vec![0u8; MAX_BODY + 1]);
    assert!(bomb.len() < MAX_BODY / 10, "{}", bomb.len());
    let got = send(st(), bomb, &[]).await;
    assert_error(&got, 413, "limits.max_request_bytes");
    // Headers that declare 2 GiB, and 4 GiB (more than snappy allows), in front of three
    // bytes: refused on the header alone.
    for (header, declared) in [
        (&[0x80, 0x80, 0x80, 0x80, 0x08][..], 1u64 << 31),
        (&[0x80, 0x80, 0x80, 0x80, 0x10][..], 1u64 << 32),
    ] {
        let mut liar = header.to_vec();
        liar.extend_from_slice(&[0x00, 0x01, 0x02]);
        let got = send(st(), liar, &[]).await;
        assert_error(&got, 413, &format!("decompresses to {declared} bytes"));
    }
    // Exactly at the limit is taken (an empty request padded with an unknown field).
    let mut at_limit = vec![0x22];
    let pad = MAX_BODY - 4;
    at_limit.extend_from_slice(&[0x80 | (pad & 0x7f) as u8, 0x80 | ((pad >> 7) & 0x7f) as u8]);
    at_limit.push((pad >> 14) as u8);
    at_limit.resize(MAX_BODY, 0);
    let (status, _, v) = send(st(), snappy(&at_limit), &[]).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(sink.got().len(), 1);
}

#[tokio::test]
async fn bad_bodies_are_400_with_a_message() {
    let sink = Recorder::new();
    let st = || state(sink.clone(), AdmissionLimits::default());
    let got = send(st(), b"not snappy at all \xff\xff".to_vec(), &[]).await;
    assert_error(&got, 400, "snappy");
    let got = send(st(), vec![], &[]).await;
    assert_error(&got, 400, "snappy");
    // Valid snappy, broken protobuf: a label cut short, then a label value not UTF-8.
    let got = send(st(), snappy(&[0x0a, 0x04, 0x0a, 0x09, 0x01]), &[]).await;
    assert_error(&got, 400, "prometheus.WriteRequest");
    let bad_utf8 = [0x0a, 0x06, 0x0a, 0x04, 0x12, 0x02, 0xff, 0xfe];
    let got = send(st(), snappy(&bad_utf8), &[]).await;
    assert_error(&got, 400, "prometheus.WriteRequest");
    assert!(sink.got().is_empty());
    assert_eq!(sink.bad(), 4);
}

#[tokio::test]
async fn too_many_series_or_samples_is_413() {
    let sink = Recorder::new();
    let limits = AdmissionLimits {
        max_records_per_request: 100,
        ..AdmissionLimits::default()
    };
    // 101 empty series: each counts as a record.
    let names: Vec<String> = (0..101).map(|i| format!("s{i}")).collect();
    let labels: Vec<[(&str, &str); 1]> = names.iter().map(|n| [("__name__", n.as_str())]).collect();
    let series: Vec<Series<'_>> = labels.iter().map(|l| (&l[..], &[][..])).collect();
    let body = snappy(&request(&series).encode_to_vec());
    let got = send(state(sink.clone(), limits), body, &[]).await;
    assert_error(&got, 413, "max_samples_per_send");
    assert_error(&got, 413, "limits.max_records_per_request");
    // 101 samples of one series.
    let samples: Vec<(i64, f64)> = (0..101).map(|i| (i, 1.0)).collect();
    let body = snappy(&request(&[(&[("__name__", "x")], &samples)]).encode_to_vec());
    let got = send(state(sink.clone(), limits), body, &[]).await;
    assert_error(&got, 413, "101 metrics records");
    // 100 are taken.
    let body = snappy(&request(&[(&[("__name__", "x")], &samples[..100])]).encode_to_vec());
    let (status, _, _) = send(state(sink.clone(), limits), body, &[]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(sink.got().len(), 1);
    // The cost of empty series and metadata is measured on the wire.
    let c = remote_write_cost(&request(&series).encode_to_vec()).unwrap();
    assert_eq!(c.records, 101);
    assert!(c.bytes > 101 * crate::admission::SERIES_OVERHEAD);
}

#[tokio::test]
async fn what_may_fit_later_is_503_with_retry_after() {
    // No place in flight.
    let sink = Recorder {
        inflight: Arc::new(Semaphore::new(0)),
        ..Recorder::new()
    };
    let body = snappy(&request(&[(&[("__name__", "x")], &[(1, 1.0)])]).encode_to_vec());
    let got = send(
        state(sink.clone(), AdmissionLimits::default()),
        body.clone(),
        &[],
    )
    .await;
    assert_error(&got, 503, "in flight");
    assert_eq!(got.1.get(header::RETRY_AFTER).unwrap(), "1");
    // The memory budget in use by another request: 503, not 429.
    let sink = Recorder::new();
    let st = state(
        sink.clone(),
        AdmissionLimits {
            max_records_per_request: 1000,
            memory_budget_bytes: 4096,
        },
    );
    let held = st
        .admission
        .reserve(
            "metrics",
            Cost {
                records: 1,
                bytes: 4096,
            },
        )
        .unwrap();
    let got = send(st.clone(), body.clone(), &[]).await;
    assert_error(&got, 503, "memory budget");
    assert!(got.1.get(header::RETRY_AFTER).is_some());
    drop(held);
    assert_eq!(send(st, body.clone(), &[]).await.0, StatusCode::NO_CONTENT);
    // The sink's answers map as on /v1/metrics.
    for (e, status) in [
        (
            IngestError::Unavailable("queue full; retry later".into()),
            503,
        ),
        (
            IngestError::BadRequest("every record was rejected".into()),
            400,
        ),
        (IngestError::TooLarge("too large for the WAL".into()), 413),
    ] {
        let sink = Recorder {
            answer: Some(e),
            ..Recorder::new()
        };
        let got = send(state(sink, AdmissionLimits::default()), body.clone(), &[]).await;
        assert_eq!(got.0.as_u16(), status, "{}", got.2);
        assert_eq!(got.1.get(header::RETRY_AFTER).is_some(), status == 503);
    }
}

#[tokio::test]
async fn a_sink_without_remote_write_has_no_such_route() {
    let sink = Recorder {
        takes: false,
        ..Recorder::new()
    };
    let body = snappy(&request(&[(&[("__name__", "x")], &[(1, 1.0)])]).encode_to_vec());
    let got = send(state(sink.clone(), AdmissionLimits::default()), body, &[]).await;
    assert_error(&got, 404, "/v1/metrics");
    assert!(!got.2["message"].as_str().unwrap().contains("/api/v1/write"));
    assert!(sink.got().is_empty());
    // With it, the 404 of another path names the route.
    let st = state(Recorder::new(), AdmissionLimits::default());
    let resp = router(st)
        .oneshot(Request::post("/nope").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&bytes).contains("/api/v1/write"));
}

#[test]
fn the_cost_of_a_cut_or_broken_body_is_an_error_not_a_panic() {
    let body = request(&[
        (&[("__name__", "a"), ("job", "j")], &[(1, 1.0), (2, 2.0)]),
        (&[("__name__", "b")], &[]),
    ])
    .encode_to_vec();
    let whole = remote_write_cost(&body).unwrap();
    assert_eq!(whole.records, 3, "two samples and one empty series");
    for cut in 0..body.len() {
        let _ = remote_write_cost(&body[..cut]);
    }
    assert!(remote_write_cost(&[0x0a, 0xff]).is_err());
    assert!(remote_write_cost(&[0x0b]).is_err(), "group wire type");
    assert!(remote_write_cost(&[0x0a, 0x02, 0x0a, 0x09]).is_err());
}
