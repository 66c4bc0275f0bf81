//! Prometheus remote write end to end, over a real collector process: the real Prometheus
//! (Debian's 2.42, `scripts/install-prometheus.sh`) scrapes itself and a target the test serves,
//! and remote-writes to the collector, whose own API then shows the series with their labels as
//! Prometheus sent them; when the test's target goes away, Prometheus's staleness markers are
//! stored and end the series in PromQL. Hand-built requests check what Prometheus cannot be
//! made to send: values bit for bit, metadata kinds, NaN, and the refusals of bad requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Collector, assert_error_body, client, get_json, now_nanos, url_with};
use prost::Message;
use serde_json::Value;
use skein_model::prompb::{Label, MetricMetadata, MetricType, Sample, TimeSeries, WriteRequest};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

const TOKEN: &str = "rw-token";

/// The Prometheus binary: `$SKEIN_PROMETHEUS`, else Debian's. Missing fails the test.
fn prometheus_binary() -> PathBuf {
    let path = std::env::var_os("SKEIN_PROMETHEUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
    assert!(
        path.is_file(),
        "Prometheus is not installed at {}: run scripts/install-prometheus.sh (Debian's \
         prometheus package), or set SKEIN_PROMETHEUS to a Prometheus 2.x binary",
        path.display()
    );
    path
}

/// A port free now (bound, then let go), for a process that must be told its port.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running Prometheus, killed on drop; its log is printed when the test fails.
struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping itself and `extra_target` every second and remote-writing
    /// to `collector` with the ingest token.
    fn start(collector: &Collector, extra_target: SocketAddr) -> Prometheus {
        let bin = prometheus_binary();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = format!(
            r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{port}"]
  - job_name: fake
    static_configs:
      - targets: ["{extra_target}"]
remote_write:
  - url: {base}/api/v1/write
    authorization:
      credentials: {TOKEN}
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
    metadata_config:
      send: true
      send_interval: 1s
"#,
            base = collector.http_base()
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("prometheus.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        Prometheus {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    fn instance(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The value of a sample of Prometheus's own `/metrics` (summed over its label sets).
    fn own_metric(&self, name: &str) -> f64 {
        let url = format!("http://{}/metrics", self.instance());
        let text = client()
            .get(url)
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default();
        sum_of(&text, name)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("---- prometheus log ----\n{log}---- end of prometheus log ----");
        }
    }
}

/// The sum of the samples of `name` (any labels) in a Prometheus text exposition.
fn sum_of(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

/// A scrape target served by the test until stopped: every GET gets `BODY`.
struct FakeTarget {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeTarget {
    const BODY: &'static str =
        "# TYPE fake_temperature gauge\nfake_temperature{room=\"kitchen\"} 21.5\n";

    fn start() -> FakeTarget {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    Self::BODY.len(),
                    Self::BODY
                );
                let _ = conn.write_all(reply.as_bytes());
            }
        });
        FakeTarget {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops serving and closes the port: scrapes fail from now on.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FakeTarget {
    fn drop(&mut self) {
        self.stop();
    }
}

fn api(c: &Collector, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    get_json(&url_with(&c.api_base(), path, params))
}

fn names(c: &Collector) -> Vec<(String, String)> {
    let (_, v) = api(c, "/api/v1/metrics/names", &[]);
    v["metrics"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap_or("").to_string(),
                        m["kind"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn strings(v: &Value, field: &str) -> Vec<String> {
    let mut out: Vec<String> = v[field]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

/// Label names of family `name`.
fn labels_of(c: &Collector, name: &str) -> Vec<String> {
    let (status, v) = api(c, "/api/v1/metrics/labels", &[("name", name)]);
    assert_eq!(status, 200, "{name}: {v}");
    strings(&v, "labels")
}

/// Values of `label` in family `name` (every series when `name` is empty).
fn values_of(c: &Collector, label: &str, name: &str) -> Vec<String> {
    let path = format!("/api/v1/metrics/labels/{label}/values");
    let params: &[(&str, &str)] = if name.is_empty() {
        &[]
    } else {
        &[("name", name)]
    };
    let (status, v) = api(c, &path, params);
    assert_eq!(status, 200, "{label} of {name}: {v}");
    strings(&v, "values")
}

/// `agg` of family `name` over the last `secs` seconds with a 1 s step, grouped by `by`:
/// the result series as (labels, points).
fn query(c: &Collector, name: &str, agg: &str, by: &str, secs: u64) -> Vec<(Value, Vec<f64>)> {
    let start = (now_nanos() - secs * 1_000_000_000).to_string();
    let end = (now_nanos() + 5_000_000_000).to_string();
    let (status, v) = api(
        c,
        "/api/v1/metrics/query",
        &[
            ("name", name),
            ("agg", agg),
            ("by", by),
            ("step", "1s"),
            ("start", &start),
            ("end", &end),
        ],
    );
    assert_eq!(status, 200, "{name}: {v}");
    v["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let points = s["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p[1].as_f64().unwrap())
                .collect();
            (s["labels"].clone(), points)
        })
        .collect()
}

/// A PromQL instant query through the collector's Prometheus API, at `time` (Unix seconds;
/// now when none): the result's (labels, value as text).
fn promql(c: &Collector, expr: &str, time: Option<f64>) -> Vec<(Value, String)> {
    let t = time.map(|t| format!("{t:.3}"));
    let mut params = vec![("query", expr)];
    if let Some(t) = &t {
        params.push(("time", t.as_str()));
    }
    let (status, v) = api(c, "/api/v1/query", &params);
    assert_eq!(status, 200, "{expr}: {v}");
    v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{expr}: {v}"))
        .iter()
        .map(|r| {
            (
                r["metric"].clone(),
                r["value"][1].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The sum of a counter of the collector's `/metrics`, label sets containing `labels`.
fn collector_counter(c: &Collector, name: &str, labels: &str) -> f64 {
    c.metrics()
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

#[test]
fn prometheus_remote_writes_its_own_metrics_with_their_labels() {
    let c = Collector::start(&["--ingest-token", TOKEN]);
    let mut target = FakeTarget::start();
    let prom = Prometheus::start(&c, target.addr);
    let instance = prom.instance();

    let arrived = common::wait_for(
        || {
            let n = names(&c);
            ["prometheus_build_info", "up", "fake_temperature"]
                .iter()
                .all(|want| n.iter().any(|(name, _)| name == want))
        },
        Duration::from_secs(120),
    );
    assert!(arrived, "remote-written series missing: {:?}", names(&c));

    // `up` of both jobs, labels exactly as Prometheus sent them: nothing added.
    assert_eq!(labels_of(&c, "up"), vec!["instance", "job"]);
    assert_eq!(values_of(&c, "job", "up"), vec!["fake", "prometheus"]);
    let mut instances = vec![instance.clone(), target.addr.to_string()];
    instances.sort();
    assert_eq!(values_of(&c, "instance", "up"), instances);
    let up = query(&c, "up", "max", "job,instance", 300);
    let mine = up
        .iter()
        .find(|(l, _)| l["job"] == "prometheus")
        .unwrap_or_else(|| panic!("{up:?}"));
    assert_eq!(mine.0["instance"], instance.as_str());
    assert_eq!(mine.1.last(), Some(&1.0));

    // The build info: its own labels and the target's.
    let info = labels_of(&c, "prometheus_build_info");
    for l in [
        "branch",
        "goversion",
        "instance",
        "job",
        "revision",
        "version",
    ] {
        assert!(info.contains(&l.to_string()), "{l} not in {info:?}");
    }
    assert!(!info.contains(&"service".to_string()), "{info:?}");
    // The version label is the binary's own, byte for byte (`prometheus, version 2.42.0+ds ...`).
    let out = Command::new(prometheus_binary())
        .arg("--version")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let own = text
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .unwrap_or_else(|| panic!("no version in {text}"))
        .to_string();
    assert_eq!(values_of(&c, "version", "prometheus_build_info"), vec![own]);
    // Histogram buckets and summary quantiles keep `le` and `quantile` as exposed.
    let le = values_of(&c, "le", "");
    assert!(le.contains(&"+Inf".to_string()), "{le:?}");
    let quantile = values_of(&c, "quantile", "");
    assert!(quantile.contains(&"0.5".to_string()), "{quantile:?}");
    // The test's target: its gauge with its label.
    let temp = query(&c, "fake_temperature", "max", "room,job", 300);
    assert_eq!(temp.len(), 1, "{temp:?}");
    assert_eq!(temp[0].0["room"], "kitchen");
    assert_eq!(temp[0].1.last(), Some(&21.5));

    // PromQL reads it with every label Prometheus sent.
    let now = promql(&c, "fake_temperature", None);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0].1, "21.5");
    assert_eq!(now[0].0["job"], "fake");
    assert_eq!(now[0].0["instance"], target.addr.to_string());

    // The target goes away: Prometheus marks its series stale and `up` drops to 0. The
    // markers are stored as sent, so PromQL ends the series at once (without them it would
    // be read for the 5 minutes of the lookback), while Skein's own views, which skip
    // non-finite samples, keep its last value.
    target.stop();
    let ended = common::wait_for(
        || promql(&c, "fake_temperature", None).is_empty(),
        Duration::from_secs(60),
    );
    assert!(
        ended,
        "no staleness marker ended the series: {:?}",
        promql(&c, "fake_temperature", None)
    );
    let down = common::wait_for(
        || {
            query(&c, "up", "max", "job", 300)
                .iter()
                .any(|(l, p)| l["job"] == "fake" && p.last() == Some(&0.0))
        },
        Duration::from_secs(60),
    );
    assert!(down, "{:?}", query(&c, "up", "max", "job", 300));
    let temp = query(&c, "fake_temperature", "max", "room", 300);
    assert_eq!(temp[0].1.last(), Some(&21.5));

    // Nothing was refused, by either side.
    let samples = collector_counter(&c, "skein_received_records_total", "signal=\"metrics\"");
    let errors = collector_counter(&c, "skein_ingest_errors_total", "signal=\"metrics\"");
    let refused = collector_counter(&c, "skein_rejected_records_total", "signal=\"metrics\"");
    let failed = prom.own_metric("prometheus_remote_storage_samples_failed_total");
    let sent = prom.own_metric("prometheus_remote_storage_samples_total");
    let by_reason: Vec<String> = c
        .metrics()
        .lines()
        .filter(|l| l.starts_with("skein_metric_samples_refused_total{"))
        .map(str::to_string)
        .collect();
    println!(
        "remote write: the collector stored {samples} samples, refused {refused}, answered {errors} errors; \
         Prometheus sent {sent}, failed {failed}; series names: {}; {by_reason:?}",
        names(&c).len()
    );
    assert!(samples > 100.0, "{samples}");
    assert_eq!((errors, refused, failed), (0.0, 0.0, 0.0));
}

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
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
    }
}

/// POSTs a snappy-compressed body to `/api/v1/write` with remote write's headers and the
/// token (when given); the status and the body as JSON.
fn write_raw(c: &Collector, body: Vec<u8>, token: Option<&str>) -> (u16, Value) {
    let mut req = client()
        .post(format!("{}/api/v1/write", c.http_base()))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn write(c: &Collector, req: &WriteRequest) -> (u16, Value) {
    write_bytes(c, req.encode_to_vec())
}

fn write_bytes(c: &Collector, protobuf: Vec<u8>) -> (u16, Value) {
    let body = snap::raw::Encoder::new().compress_vec(&protobuf).unwrap();
    write_raw(c, body, Some(TOKEN))
}

/// A `TimeSeries` entry of a `WriteRequest` (field 1) whose one sample is written by hand:
/// an encoder leaves out a value equal to 0.0, and so -0.0.
fn hand_encoded_series(labels: &[(&str, &str)], ts: i64, value: f64) -> Vec<u8> {
    use prost::encoding::encode_varint;
    let mut sample = vec![0x09];
    sample.extend_from_slice(&value.to_bits().to_le_bytes());
    sample.push(0x10);
    encode_varint(ts as u64, &mut sample);
    let mut series = series(labels, &[]).encode_to_vec();
    series.push(0x12);
    encode_varint(sample.len() as u64, &mut series);
    series.extend_from_slice(&sample);
    let mut entry = vec![0x0a];
    encode_varint(series.len() as u64, &mut entry);
    entry.extend_from_slice(&series);
    entry
}

#[test]
fn hand_built_requests_keep_values_labels_and_kinds() {
    let c = Collector::start(&["--ingest-token", TOKEN]);
    let t = (now_nanos() / 1_000_000) as i64 - 5_000;
    let stale = f64::from_bits(skein_model::remote_write::STALE_NAN_BITS);

    // Values bit for bit, one series each; labels of any spelling; a staleness marker and a
    // NaN beside them.
    let values = [0.1 + 0.2, -2.5, 1e-300, 123_456_789.123_456_78, 5e300, -0.0];
    let idx: Vec<String> = (0..values.len()).map(|i| i.to_string()).collect();
    let mut timeseries: Vec<TimeSeries> = values
        .iter()
        .zip(&idx)
        .take(values.len() - 1)
        .map(|(v, i)| series(&[("__name__", "rw_value"), ("i", i)], &[(t, *v)]))
        .collect();
    timeseries.push(series(
        &[
            ("__name__", "rw_labels"),
            ("Mixed.Case", "Ünï côde"),
            ("service.name", "checkout"),
            ("instance", "10.1.2.3:9100"),
            ("job", "node"),
        ],
        &[(t, 1.0), (t + 1_000, stale)],
    ));
    timeseries.push(series(&[("__name__", "rw_nan")], &[(t, f64::NAN)]));
    // Metadata in the same request gives the kinds.
    for (le, v) in [("0.5", 3.0), ("+Inf", 4.0)] {
        timeseries.push(series(
            &[("__name__", "rw_latency_bucket"), ("le", le)],
            &[(t, v)],
        ));
    }
    timeseries.push(series(&[("__name__", "rw_latency_sum")], &[(t, 1.25)]));
    timeseries.push(series(&[("__name__", "rw_latency_count")], &[(t, 4.0)]));
    timeseries.push(series(&[("__name__", "rw_jobs_total")], &[(t, 9.0)]));
    let meta = |name: &str, t: MetricType| MetricMetadata {
        r#type: t as i32,
        metric_family_name: name.into(),
        help: String::new(),
        unit: String::new(),
    };
    let req = WriteRequest {
        timeseries,
        metadata: vec![
            meta("rw_latency", MetricType::Histogram),
            meta("rw_jobs", MetricType::Counter),
        ],
    };
    // -0.0 as the last series, written by hand (repeated fields are appended when decoded).
    let mut protobuf = req.encode_to_vec();
    let last = values.len() - 1;
    protobuf.extend(hand_encoded_series(
        &[("__name__", "rw_value"), ("i", &idx[last])],
        t,
        values[last],
    ));
    let (status, body) = write_bytes(&c, protobuf);
    assert_eq!(status, 204, "{body}");

    let got = query(&c, "rw_value", "max", "i", 60);
    assert_eq!(got.len(), values.len(), "{got:?}");
    for (labels, points) in &got {
        let i: usize = labels["i"].as_str().unwrap().parse().unwrap();
        assert_eq!(points.len(), 1, "{labels}");
        assert_eq!(
            points[0].to_bits(),
            values[i].to_bits(),
            "value {i}: {} came back as {}",
            values[i],
            points[0]
        );
    }
    assert_eq!(
        labels_of(&c, "rw_labels"),
        vec!["Mixed.Case", "instance", "job", "service.name"]
    );
    assert_eq!(values_of(&c, "Mixed.Case", "rw_labels"), vec!["Ünï côde"]);
    assert_eq!(query(&c, "rw_labels", "max", "", 60)[0].1, vec![1.0]);
    let kinds = names(&c);
    let kind = |n: &str| {
        kinds
            .iter()
            .find(|(name, _)| name == n)
            .map(|k| k.1.clone())
    };
    assert_eq!(
        kind("rw_latency").as_deref(),
        Some("histogram"),
        "{kinds:?}"
    );
    assert_eq!(kind("rw_jobs_total").as_deref(), Some("counter"));
    assert_eq!(kind("rw_value").as_deref(), Some("gauge"));
    assert_eq!(kind("rw_nan").as_deref(), Some("gauge"), "a NaN is stored");
    assert_eq!(values_of(&c, "le", "rw_latency"), vec!["+Inf", "0.5"]);
    assert_eq!(
        collector_counter(&c, "skein_rejected_records_total", "signal=\"metrics\""),
        0.0
    );
    // PromQL reads the NaN as NaN, and the staleness marker one second after the 1 as the
    // end of the series.
    let secs = |ms: i64| Some(ms as f64 / 1000.0);
    assert_eq!(promql(&c, "rw_nan", secs(t))[0].1, "NaN");
    let before = promql(&c, "rw_labels", secs(t + 500));
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].1, "1");
    assert_eq!(before[0].0["instance"], "10.1.2.3:9100");
    assert_eq!(promql(&c, "rw_labels", secs(t + 1_500)), vec![]);

    // A request of which nothing can be stored: 400, which senders do not retry.
    let nameless = WriteRequest {
        timeseries: vec![series(&[("job", "j")], &[(t, 1.0)])],
        metadata: vec![],
    };
    let (status, body) = write(&c, &nameless);
    assert_eq!(status, 400, "{body}");
    assert_error_body("no __name__", &body);
    assert!(
        body["message"].as_str().unwrap().contains("no __name__"),
        "{body}"
    );
    // Only a staleness marker: stored, nothing wrong.
    let only_stale = WriteRequest {
        timeseries: vec![series(&[("__name__", "rw_labels")], &[(t + 2_000, stale)])],
        metadata: vec![],
    };
    assert_eq!(write(&c, &only_stale).0, 204);

    // Bad requests get a 4xx with a message a person can act on.
    let good = snap::raw::Encoder::new()
        .compress_vec(&only_stale.encode_to_vec())
        .unwrap();
    let (status, body) = write_raw(&c, good, None);
    assert_eq!(status, 401, "{body}");
    assert_error_body("no token", &body);
    // A snappy header that declares 1 GiB in front of a few bytes.
    let (status, body) = write_raw(&c, vec![0x80, 0x80, 0x80, 0x80, 0x04, 0, 1, 2], Some(TOKEN));
    assert_eq!(status, 413, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("limits.max_request_bytes"),
        "{body}"
    );
    let broken = snap::raw::Encoder::new()
        .compress_vec(&[0x0a, 0x04, 0x0a, 0x09, 0x01])
        .unwrap();
    let (status, body) = write_raw(&c, broken, Some(TOKEN));
    assert_eq!(status, 400, "{body}");
    assert_error_body("bad protobuf", &body);
    assert!(collector_counter(&c, "skein_ingest_errors_total", "reason=\"bad_request\"") >= 2.0);
    // And the receiver still takes good requests.
    let after = WriteRequest {
        timeseries: vec![series(&[("__name__", "rw_after")], &[(t, 7.0)])],
        metadata: vec![],
    };
    assert_eq!(write(&c, &after).0, 204);
    assert_eq!(query(&c, "rw_after", "max", "", 60)[0].1, vec![7.0]);
}
