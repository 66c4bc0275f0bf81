//! Shared harness of the end-to-end tests: runs the real `skein` binary as a collector on free
//! ports and a temporary data directory, and talks to it over HTTP.
//!
//! Every test file uses only part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod agent;
pub mod nats;
pub mod pki;
pub mod pty;
pub mod tls;
pub mod webhook;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// The `skein` binary under test.
pub const SKEIN: &str = env!("CARGO_BIN_EXE_skein");

/// How long a collector may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping collector may take to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Environment variables the binary reads; cleared so the developer's shell cannot change a
/// test.
pub const SKEIN_ENV: &[&str] = &[
    "SKEIN_CONFIG",
    "SKEIN_DATA_DIR",
    "SKEIN_INGEST_TOKEN",
    "SKEIN_QUERY_TOKEN",
    "SKEIN_API",
    "SKEIN_LOG",
    "SKEIN_AGENT_CONFIG",
    "SKEIN_AGENT_DATA_DIR",
    "SKEIN_COLLECTOR",
    "SKEIN_CA_FILE",
    "SKEIN_CLIENT_CERT",
    "SKEIN_CLIENT_KEY",
];

/// A running `skein collector` process.
pub struct Collector {
    child: Option<Child>,
    /// Its data directory.
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    extra: Vec<String>,
    wrapper: Vec<String>,
    /// OTLP/HTTP address.
    pub otlp_http: SocketAddr,
    /// OTLP/gRPC address.
    pub otlp_grpc: SocketAddr,
    /// Query API address.
    pub api: SocketAddr,
    output: Arc<Mutex<String>>,
    generation: usize,
}

impl Collector {
    /// Starts a collector on a new temporary data directory.
    pub fn start(extra_args: &[&str]) -> Collector {
        let tmp = tempfile::tempdir().expect("temporary data dir");
        let mut c = Collector::start_in(tmp.path(), extra_args);
        c._tmp = Some(tmp);
        c
    }

    /// Starts a collector on `dir` (kept after the collector is gone).
    pub fn start_in(dir: &Path, extra_args: &[&str]) -> Collector {
        Collector::start_wrapped(dir, extra_args, &[])
    }

    /// Starts a collector on `dir` under `wrapper`: the process started is the wrapper's
    /// program with its arguments, then the `skein` binary and the collector's arguments. The
    /// wrapper must end by exec'ing that command, so that the process is the collector.
    /// Restarts run the wrapper again.
    pub fn start_wrapped(dir: &Path, extra_args: &[&str], wrapper: &[&str]) -> Collector {
        let output = Arc::new(Mutex::new(String::new()));
        let extra: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let wrapper: Vec<String> = wrapper.iter().map(|s| s.to_string()).collect();
        let (child, [otlp_http, otlp_grpc, api]) = spawn(dir, &extra, &wrapper, &output, 0, None);
        Collector {
            child: Some(child),
            dir: dir.to_path_buf(),
            _tmp: None,
            extra,
            wrapper,
            otlp_http,
            otlp_grpc,
            api,
            output,
            generation: 0,
        }
    }

    /// Starts the collector again on the same data directory and flags (new ports). The
    /// previous process must have stopped (see [`Collector::kill9`], [`Collector::terminate`]);
    /// if it still runs it is killed first.
    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.generation += 1;
        let (child, [h, g, a]) = spawn(
            &self.dir,
            &self.extra,
            &self.wrapper,
            &self.output,
            self.generation,
            None,
        );
        self.child = Some(child);
        self.otlp_http = h;
        self.otlp_grpc = g;
        self.api = a;
    }

    /// Starts the collector again on the same data directory, flags and ports (for clients
    /// that keep the address, such as an agent). The previous process must have stopped.
    pub fn restart_same_ports(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.generation += 1;
        let fixed = [self.otlp_http, self.otlp_grpc, self.api];
        let (child, _) = spawn(
            &self.dir,
            &self.extra,
            &self.wrapper,
            &self.output,
            self.generation,
            Some(fixed),
        );
        self.child = Some(child);
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("collector running")
    }

    /// Kills the process with SIGKILL (no chance to flush anything) and reaps it.
    pub fn kill9(&mut self) {
        let mut c = self.child.take().expect("collector running");
        c.kill().expect("SIGKILL the collector");
        let status = c.wait().expect("reap the collector");
        self.note(&format!("killed with SIGKILL: {status}"));
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let c = self.child.take().expect("collector running");
        terminate(c, "collector", &self.output)
    }

    /// Everything the process printed so far (all generations).
    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    fn note(&self, text: &str) {
        if let Ok(mut o) = self.output.lock() {
            o.push_str(&format!("[harness] {text}\n"));
        }
    }

    /// `http://<otlp_http>`.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.otlp_http)
    }

    /// `http://<api>`.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.api)
    }

    /// `http://<otlp_grpc>`, for tonic.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.otlp_grpc)
    }

    /// The collector's `/metrics` text (empty when it does not answer).
    pub fn metrics(&self) -> String {
        client()
            .get(format!("{}/metrics", self.api_base()))
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- skein collector output ({}) ----\n{}---- end of collector output ----",
                self.dir.display(),
                self.output()
            );
        }
    }
}

/// Sends SIGTERM to `c` and waits for it to exit (panics with `output` after 30 s).
pub fn terminate(mut c: Child, what: &str, output: &Arc<Mutex<String>>) -> ExitStatus {
    let ok = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status()
        .expect("run kill -TERM")
        .success();
    assert!(ok, "kill -TERM {} failed", c.id());
    let started = Instant::now();
    let text = || output.lock().map(|o| o.clone()).unwrap_or_default();
    loop {
        if let Some(status) = c.try_wait().expect("wait for the process") {
            if let Ok(mut o) = output.lock() {
                o.push_str(&format!("[harness] exited after SIGTERM: {status}\n"));
            }
            return status;
        }
        if started.elapsed() > EXIT_TIMEOUT {
            let _ = c.kill();
            let _ = c.wait();
            panic!(
                "the {what} did not exit within {EXIT_TIMEOUT:?} of SIGTERM; output:\n{}",
                text()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Spawns one collector process (under `wrapper` when it is not empty) and waits for its ready
/// line.
fn spawn(
    dir: &Path,
    extra: &[String],
    wrapper: &[String],
    output: &Arc<Mutex<String>>,
    generation: usize,
    fixed: Option<[SocketAddr; 3]>,
) -> (Child, [SocketAddr; 3]) {
    let addr = |i: usize| fixed.map_or("127.0.0.1:0".to_string(), |f| f[i].to_string());
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(SKEIN);
            cmd
        }
        None => Command::new(SKEIN),
    };
    cmd.arg("collector")
        .arg("--data-dir")
        .arg(dir)
        .args(["--otlp-http", &addr(0)])
        .args(["--otlp-grpc", &addr(1)])
        .args(["--api", &addr(2)])
        .args(extra)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in SKEIN_ENV {
        cmd.env_remove(v);
    }
    run_until_ready(cmd, output, generation, &format!("{extra:?}"), parse_ready)
}

/// Spawns `cmd` (stdout and stderr piped), copies its output into `output`, and waits until
/// `parse` accepts a stdout line (the process's ready line). Panics with the output if the
/// process does not get there within a minute.
pub fn run_until_ready<T: Send + 'static>(
    mut cmd: Command,
    output: &Arc<Mutex<String>>,
    generation: usize,
    what: &str,
    parse: fn(&str) -> Option<T>,
) -> (Child, T) {
    let extra = what;
    let mut child = cmd.spawn().expect("spawn skein");
    if let Ok(mut o) = output.lock() {
        o.push_str(&format!(
            "[harness] generation {generation}: pid {} args {extra:?}\n",
            child.id()
        ));
    }
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel::<T>();
    let out = output.clone();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut o) = out.lock() {
                o.push_str(&format!("[stdout] {line}\n"));
            }
            if let Some(addrs) = parse(&line)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(addrs);
            }
        }
    });
    let err = output.clone();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stderr);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if let Ok(mut o) = err.lock() {
                        o.push_str("[stderr] ");
                        o.push_str(&String::from_utf8_lossy(&buf));
                        if !buf.ends_with(b"\n") {
                            o.push('\n');
                        }
                    }
                }
            }
        }
    });
    match rx.recv_timeout(READY_TIMEOUT) {
        Ok(addrs) => (child, addrs),
        Err(e) => {
            let _ = child.kill();
            let status = child.wait();
            // Give the reader threads a moment to take the last lines.
            std::thread::sleep(Duration::from_millis(100));
            let text = output.lock().map(|o| o.clone()).unwrap_or_default();
            panic!("skein did not print its ready line ({e}); exit: {status:?}; output:\n{text}");
        }
    }
}

/// Reads `skein collector ready otlp_http=<addr> otlp_grpc=<addr> api=<addr>`.
fn parse_ready(line: &str) -> Option<[SocketAddr; 3]> {
    let rest = line.trim().strip_prefix("skein collector ready ")?;
    let mut http = None;
    let mut grpc = None;
    let mut api = None;
    for part in rest.split_whitespace() {
        let (k, v) = part.split_once('=')?;
        let addr: SocketAddr = v.parse().ok()?;
        match k {
            "otlp_http" => http = Some(addr),
            "otlp_grpc" => grpc = Some(addr),
            "api" => api = Some(addr),
            _ => {}
        }
    }
    Some([http?, grpc?, api?])
}

/// What a `skein` command printed and how it exited.
pub struct Run {
    /// The exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
}

/// Runs `skein <args>` with `env` added to a cleared Skein environment, and waits for it to
/// exit.
pub fn run_skein(args: &[&str], env: &[(&str, &Path)]) -> Run {
    let mut cmd = Command::new(SKEIN);
    cmd.args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in SKEIN_ENV {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn skein");
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || read_all(out));
    let err = std::thread::spawn(move || read_all(err));
    let status = child.wait().expect("wait");
    Run {
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Runs `skein <args>` and asserts that it exits 2 naming the file `config`, the key and the
/// value on stderr (the house rule for a bad config).
pub fn assert_config_refused(args: &[&str], config: &Path, key: &str, value: &str) {
    let r = run_skein(args, &[]);
    assert_eq!(r.code, Some(2), "{args:?}: {}\n{}", r.stdout, r.stderr);
    for want in [config.to_str().unwrap(), key, value] {
        assert!(
            r.stderr.contains(want),
            "{args:?}: {want} not in: {}",
            r.stderr
        );
    }
}

/// Starts `skein collector --config <config>` (data in `data` beside it) and asserts that it
/// exits 2 naming the file, the key and the value.
pub fn assert_collector_config_refused(config: &Path, key: &str, value: &str) {
    let data = config.with_file_name("data");
    let args = [
        "collector",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    assert_config_refused(&args, config, key, value);
}

/// Polls `cond` every 50 ms until it is true or `timeout` passes; returns the last answer.
pub fn wait_for(mut cond: impl FnMut() -> bool, timeout: Duration) -> bool {
    let started = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if started.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A blocking HTTP client with a generous timeout. Must not be built or dropped on an async
/// runtime's thread.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

/// GET `url`; the status and the body as JSON (`Value::Null` when the body is not JSON).
pub fn get_json(url: &str) -> (u16, serde_json::Value) {
    get_json_with(&client(), url, None)
}

/// GET `url` with an optional bearer token.
pub fn get_json_with(
    c: &reqwest::blocking::Client,
    url: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut req = c.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// POST `body` to `url` with a content type and an optional content encoding; the status and
/// the body's bytes.
pub fn post(
    c: &reqwest::blocking::Client,
    url: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Result<(u16, Vec<u8>)> {
    let mut req = c.post(url).header("content-type", content_type).body(body);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    let resp = req.send()?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes()?.to_vec();
    Ok((status, bytes))
}

/// A log with a new request ID is accepted over OTLP/HTTP and then found by that ID through
/// the query API: the collector still serves.
pub fn assert_serving(c: &Collector) {
    let rid = format!("req-serving-{}", unique());
    let req = logs_request(
        "checker",
        vec![log_record(
            "ok",
            9,
            now_nanos(),
            vec![kv("request_id", &rid)],
        )],
    );
    let url = format!("{}/v1/logs", c.http_base());
    let body = prost::Message::encode_to_vec(&req);
    let (status, bytes) = post(&client(), &url, "application/x-protobuf", None, body)
        .unwrap_or_else(|e| panic!("POST {url}: no answer: {e}"));
    assert_eq!(
        status,
        200,
        "a valid batch is refused: {}",
        String::from_utf8_lossy(&bytes)
    );
    let url = format!("{}/api/v1/traces/{rid}", c.api_base());
    assert!(
        wait_for(|| get_json(&url).0 == 200, Duration::from_secs(30)),
        "the valid batch is not found by its request ID"
    );
}

/// `base` + `path` with the query parameters encoded.
pub fn url_with(base: &str, path: &str, params: &[(&str, &str)]) -> String {
    reqwest::Url::parse_with_params(&format!("{base}{path}"), params)
        .expect("url")
        .to_string()
}

/// A string no other test run uses.
pub fn unique() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}x{}x{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Now, Unix nanoseconds.
pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A string attribute.
pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(string_value(value)),
        ..Default::default()
    }
}

/// A string `AnyValue`.
pub fn string_value(value: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(value.to_string())),
    }
}

/// A resource with `service.name` and `host.name`.
pub fn resource(service: &str) -> Resource {
    Resource {
        attributes: vec![
            kv("service.name", service),
            kv("host.name", &format!("{service}-host")),
        ],
        ..Default::default()
    }
}

/// A log record with a body, severity and attributes, at `time` (Unix ns).
pub fn log_record(body: &str, severity: i32, time: u64, attrs: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        time_unix_nano: time,
        observed_time_unix_nano: time,
        severity_number: severity,
        body: Some(string_value(body)),
        attributes: attrs,
        ..Default::default()
    }
}

/// A logs export request: one resource (service) holding `records`.
pub fn logs_request(service: &str, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource(service)),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A span.
pub fn span(trace_id: &[u8], span_id: &[u8], parent: &[u8], name: &str, start: u64) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        parent_span_id: parent.to_vec(),
        name: name.to_string(),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 5_000_000,
        ..Default::default()
    }
}

/// A traces export request: one resource (service) holding `spans`.
pub fn traces_request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource(service)),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 16 random-enough bytes for a trace ID (never all zero).
pub fn new_trace_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    let seed = format!("{}-{}", unique(), now_nanos());
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, slot) in id.iter_mut().enumerate() {
        for b in seed.bytes().chain([i as u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        *slot = (h >> 24) as u8;
    }
    id[0] |= 1;
    id
}

/// The strings of a JSON array of objects' `field`.
pub fn strings(items: &serde_json::Value, field: &str) -> Vec<String> {
    items
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x[field].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the whole of a reader as text (for child process pipes).
pub fn read_all(mut r: impl Read) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}

/// Asserts that an error answer is JSON `{"error", "message"}` with a non-empty message.
pub fn assert_error_body(what: &str, body: &serde_json::Value) {
    let err = body["error"].as_str().unwrap_or_default();
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(
        !err.is_empty() && !msg.trim().is_empty(),
        "{what}: the answer is not an error body {{\"error\", \"message\"}}: {body}"
    );
}

/// Logs export request of `raw` bytes in `resource_logs`: lets a test put malformed bytes where
/// a `ResourceLogs` message belongs, or send a request too large to build as structs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RawLogsRequest {
    /// Each element is sent as one `ResourceLogs` message, as it is.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub resource_logs: Vec<Vec<u8>>,
}

/// Sends a [`RawLogsRequest`] to the gRPC logs service, gzipped when `gzip` is set.
pub async fn raw_logs_export(
    endpoint: &str,
    raw: Vec<Vec<u8>>,
    gzip: bool,
) -> Result<(), tonic::Status> {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
    let channel = tonic::transport::Channel::from_shared(endpoint.to_string())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX);
    if gzip {
        grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip);
    }
    grpc.ready().await.expect("ready");
    let codec = tonic_prost::ProstCodec::<RawLogsRequest, ExportLogsServiceResponse>::default();
    grpc.unary(
        tonic::Request::new(RawLogsRequest { resource_logs: raw }),
        tonic::codegen::http::uri::PathAndQuery::from_static(
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        ),
        codec,
    )
    .await
    .map(|_| ())
}

/// An OTLP gauge of service `bad` on host `host` with the given points.
pub fn gauge_request(
    name: &str,
    points: &[(u64, f64)],
    host: &str,
) -> opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
    };
    let data_points = points
        .iter()
        .map(|(t, v)| NumberDataPoint {
            time_unix_nano: *t,
            value: Some(number_data_point::Value::AsDouble(*v)),
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: vec![kv("service.name", "bad"), kv("host.name", host)],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.into(),
                    data: Some(metric::Data::Gauge(Gauge { data_points })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
