//! Shared pieces of the agent benchmarks: the `skein agent` child process and its config, a
//! null OTLP sink, `/proc` figures of another process, the agent's `/metrics`, waiting for a
//! quiet machine, and the JSON log lines the agent tails.

use crate::datagen::{Rng, hex};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc` CPU times (USER_HZ).
const TICKS: f64 = 100.0;

/// What the bench sets in the agent's config; `None` keeps the agent's default.
#[derive(Debug, Clone, Default)]
pub struct AgentSettings {
    /// `[batch] max_records`.
    pub batch_records: Option<usize>,
    /// `[batch] max_bytes`.
    pub batch_bytes: Option<usize>,
    /// `[collector] max_in_flight`.
    pub max_in_flight: Option<usize>,
    /// `[host_metrics] interval`, e.g. `10s`; `None` turns host metrics off.
    pub host_metrics_interval: Option<String>,
}

impl AgentSettings {
    /// The settings as JSON for the results line (`null` = agent default).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "batch_max_records": self.batch_records,
            "batch_max_bytes": self.batch_bytes,
            "max_in_flight": self.max_in_flight,
            "host_metrics_interval": self.host_metrics_interval,
        })
    }

    /// A short label such as `records=2000 bytes=1048576 in_flight=2` (defaults named).
    pub fn label(&self) -> String {
        let show = |v: Option<usize>| v.map_or("default".to_string(), |v| v.to_string());
        format!(
            "batch.max_records={} batch.max_bytes={} collector.max_in_flight={}",
            show(self.batch_records),
            show(self.batch_bytes),
            show(self.max_in_flight)
        )
    }
}

/// A TOML basic string (JSON string escaping is valid TOML).
fn toml_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Writes the agent's config to `dir/agent.toml` and returns its path. The data dir is
/// `dir/data`; one JSON source tails `file` from the beginning.
pub fn write_config(
    dir: &Path,
    sink: SocketAddr,
    file: &Path,
    s: &AgentSettings,
) -> Result<PathBuf> {
    let data = dir.join("data");
    let mut t = String::new();
    t.push_str(&format!(
        "[agent]\ndata_dir = {}\nid = \"bench-agent\"\nhost_name = \"bench-host\"\n\n",
        toml_str(&data.display().to_string())
    ));
    t.push_str(&format!("[collector]\nendpoint = \"http://{sink}\"\n"));
    if let Some(n) = s.max_in_flight {
        t.push_str(&format!("max_in_flight = {n}\n"));
    }
    t.push_str("\n[batch]\n");
    if let Some(n) = s.batch_records {
        t.push_str(&format!("max_records = {n}\n"));
    }
    if let Some(n) = s.batch_bytes {
        t.push_str(&format!("max_bytes = {n}\n"));
    }
    t.push_str("\n[receiver]\nenabled = false\n\n[telemetry]\nlisten = \"127.0.0.1:0\"\n\n");
    match &s.host_metrics_interval {
        Some(i) => t.push_str(&format!(
            "[host_metrics]\nenabled = true\ninterval = {}\n\n",
            toml_str(i)
        )),
        None => t.push_str("[host_metrics]\nenabled = false\n\n"),
    }
    t.push_str(&format!(
        "[[source]]\nname = \"bench\"\npaths = [{}]\nread_from = \"beginning\"\nformat = \"json\"\n",
        toml_str(&file.display().to_string())
    ));
    let path = dir.join("agent.toml");
    std::fs::write(&path, t).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

/// Reads a child's stdout on a thread (so it never blocks on a full pipe) and passes on the
/// lines starting with `prefix`: its ready line.
pub fn ready_lines(
    child: &mut Child,
    prefix: &'static str,
) -> Result<std::sync::mpsc::Receiver<String>> {
    let out = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no stdout of the child process"))?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::Builder::new()
        .name("child-stdout".into())
        .spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if line.starts_with(prefix) {
                    let _ = tx.send(line);
                }
            }
        })
        .context("spawn stdout reader")?;
    Ok(rx)
}

/// `skein agent` running as a child process.
pub struct AgentProc {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// Address of its `/metrics`.
    pub metrics: String,
    /// When its ready line was read.
    pub ready_at: Instant,
    /// Its stderr (the agent's log).
    pub log: PathBuf,
}

impl AgentProc {
    /// Starts `skein agent --config CONFIG` and waits (up to 60 s) for its ready line.
    pub fn start(skein: &Path, config: &Path, log: &Path) -> Result<AgentProc> {
        let err =
            std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
        let mut child = Command::new(skein)
            .arg("agent")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .spawn()
            .with_context(|| {
                format!(
                    "start {} agent (build it: cargo build --release)",
                    skein.display()
                )
            })?;
        let pid = child.id();
        let rx = ready_lines(&mut child, "skein agent ready")?;
        let mut me = AgentProc {
            child,
            pid,
            metrics: String::new(),
            ready_at: Instant::now(),
            log: log.to_path_buf(),
        };
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => l,
            Err(_) => {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                bail!("the agent printed no ready line within 60 s; its log:\n{text}");
            }
        };
        me.ready_at = Instant::now();
        me.metrics = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("metrics="))
            .filter(|a| *a != "off")
            .ok_or_else(|| anyhow!("no metrics address in the ready line {line:?}"))?
            .to_string();
        Ok(me)
    }

    /// `/proc` figures of the agent now.
    pub fn stat(&self) -> Result<ProcStat> {
        proc_stat(self.pid)
    }

    /// GET its `/metrics`; on failure, says whether it is still running and shows the end
    /// of its log.
    pub fn scrape(&mut self, client: &reqwest::blocking::Client) -> Result<String> {
        let mut last = None;
        for _ in 0..3 {
            match scrape(client, &self.metrics) {
                Ok(t) => return Ok(t),
                Err(e) => last = Some(e),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let state = match self.child.try_wait() {
            Ok(Some(st)) => format!("the agent exited: {st}"),
            Ok(None) => "the agent is still running".to_string(),
            Err(e) => format!("cannot wait for the agent: {e}"),
        };
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail = log.lines().rev().take(30).collect::<Vec<_>>();
        let tail = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
        let e = last.unwrap_or_else(|| anyhow!("no attempt"));
        Err(e.context(format!("{state}; the end of its log:\n{tail}")))
    }

    /// Stops it with SIGTERM and waits up to 30 s (then SIGKILL). Returns how long it took.
    pub fn stop(mut self) -> Result<Duration> {
        let t = Instant::now();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        while t.elapsed() < Duration::from_secs(30) {
            if self
                .child
                .try_wait()
                .context("wait for the agent")?
                .is_some()
            {
                return Ok(t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        bail!("the agent did not stop within 30 s of SIGTERM; killed")
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// CPU and memory of a process from `/proc/PID/stat` and `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStat {
    /// utime + stime, seconds.
    pub cpu_secs: f64,
    /// VmRSS, bytes.
    pub rss: u64,
    /// VmHWM (peak RSS), bytes.
    pub hwm: u64,
    /// Voluntary + involuntary context switches of all its threads.
    pub ctx_switches: u64,
}

/// Reads [`ProcStat`] of `pid`.
pub fn proc_stat(pid: u32) -> Result<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    let close = stat
        .rfind(')')
        .ok_or_else(|| anyhow!("bad /proc/{pid}/stat"))?;
    let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let mut ctx = 0;
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in rd.filter_map(|e| e.ok()) {
            let Ok(s) = std::fs::read_to_string(e.path().join("status")) else {
                continue;
            };
            for l in s.lines() {
                if let Some(r) = l
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                {
                    ctx += r.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    Ok(ProcStat {
        cpu_secs: (ticks(11) + ticks(12)) / TICKS,
        rss: kib("VmRSS:"),
        hwm: kib("VmHWM:"),
        ctx_switches: ctx,
    })
}

/// Per-thread (name with digits stripped) CPU seconds and context switches of `pid`.
pub fn thread_stats(pid: u32) -> BTreeMap<String, (f64, u64)> {
    let mut out: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name: String = stat[open + 1..close]
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect();
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let mut ctx = 0;
        if let Ok(s) = std::fs::read_to_string(e.path().join("status")) {
            for l in s.lines() {
                if let Some(r) = l
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                {
                    ctx += r.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
        let v = out.entry(name).or_insert((0.0, 0));
        v.0 += (ticks(11) + ticks(12)) / TICKS;
        v.1 += ctx;
    }
    out
}

/// A value of the agent's `/metrics`: `name{...label...} v`. Absent means 0.
pub fn metric_value(text: &str, name: &str, label: &str) -> f64 {
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(name)
            && rest.starts_with('{')
            && rest.contains(label)
            && let Some(v) = rest.rsplit(' ').next()
            && let Ok(f) = v.parse::<f64>()
        {
            return f;
        }
    }
    0.0
}

/// GET `http://ADDR/metrics` as text.
pub fn scrape(client: &reqwest::blocking::Client, addr: &str) -> Result<String> {
    client
        .get(format!("http://{addr}/metrics"))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .with_context(|| format!("GET http://{addr}/metrics"))
}

/// `skein_agent_records_sent_total{signal="logs"}`.
pub fn logs_sent(text: &str) -> u64 {
    metric_value(text, "skein_agent_records_sent_total", "signal=\"logs\"") as u64
}

/// What the null sink counted.
#[derive(Debug, Default)]
pub struct SinkCounts {
    /// Body bytes received (as sent: compressed).
    pub bytes: AtomicU64,
    /// Requests to `/v1/logs`.
    pub log_requests: AtomicU64,
    /// All requests.
    pub requests: AtomicU64,
}

/// An OTLP/HTTP sink that reads each body and answers 200 with an empty protobuf body, on
/// its own single-threaded runtime.
pub struct NullSink {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its counters.
    pub counts: Arc<SinkCounts>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NullSink {
    /// Starts it on a free port of 127.0.0.1.
    pub fn start() -> Result<NullSink> {
        use axum::extract::{DefaultBodyLimit, State};
        use axum::routing::post;
        let counts = Arc::new(SinkCounts::default());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("sink runtime")?;
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .context("bind the null sink")?;
        let addr = listener.local_addr().context("sink address")?;
        async fn take(
            State(c): State<Arc<SinkCounts>>,
            uri: axum::http::Uri,
            body: bytes::Bytes,
        ) -> impl axum::response::IntoResponse {
            c.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
            c.requests.fetch_add(1, Ordering::Relaxed);
            if uri.path() == "/v1/logs" {
                c.log_requests.fetch_add(1, Ordering::Relaxed);
            }
            (
                [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
                bytes::Bytes::new(),
            )
        }
        let app = axum::Router::new()
            .route("/v1/logs", post(take))
            .route("/v1/metrics", post(take))
            .route("/v1/traces", post(take))
            .route("/skein/v1/heartbeat", post(take))
            .layer(DefaultBodyLimit::disable())
            .with_state(counts.clone());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("null-sink".into())
            .spawn(move || {
                let _ = rt.block_on(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stop_rx.await;
                        })
                        .await
                });
            })
            .context("spawn the null sink")?;
        Ok(NullSink {
            addr,
            counts,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Body bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.counts.bytes.load(Ordering::Relaxed)
    }

    /// Stops it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for NullSink {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The 1-minute load average.
pub fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// Waits until the 1-minute load average is below `max` (checked every 5 s, at most
/// `limit`); `max <= 0` does not wait. Returns the load then and the seconds waited.
pub fn wait_quiet(max: f64, limit: Duration) -> (f64, f64) {
    let t = Instant::now();
    if max <= 0.0 {
        return (load1(), 0.0);
    }
    let mut said = false;
    loop {
        let l = load1();
        if l < max {
            return (l, t.elapsed().as_secs_f64());
        }
        if t.elapsed() >= limit {
            println!("load {l:.2} still >= {max} after {limit:?}; going on anyway");
            return (l, t.elapsed().as_secs_f64());
        }
        if !said {
            println!("waiting for the 1-minute load ({l:.2}) to fall below {max} ...");
            said = true;
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}

/// Median of a non-empty list (the mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// Mebibytes.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

const LEVELS: [(&str, f64); 4] = [
    ("info", 0.85),
    ("warn", 0.95),
    ("error", 0.99),
    ("debug", 1.0),
];
const SERVICES: [&str; 8] = [
    "gateway", "order", "coupon", "payment", "delivery", "catalog", "auth", "notify",
];
const MSGS: [&str; 16] = [
    "request completed",
    "order accepted",
    "payment authorized",
    "cache miss for menu",
    "courier assigned to delivery",
    "coupon validated",
    "user session refreshed",
    "slow upstream call to payment-provider",
    "retrying delivery assignment",
    "connection pool near capacity",
    "query returned rows",
    "event published to kafka",
    "token verified",
    "inventory reserved",
    "upstream returned 503, will retry",
    "request rejected: invalid basket",
];
const WORDS: [&str; 24] = [
    "upstream",
    "latency",
    "cache",
    "retry",
    "pool",
    "customer",
    "restaurant",
    "courier",
    "basket",
    "discount",
    "charge",
    "refund",
    "queued",
    "partition",
    "offset",
    "postgres",
    "redis",
    "timeout",
    "breaker",
    "pricing",
    "region",
    "eu-west-1",
    "shard",
    "replica",
];

/// Writes `YYYY-MM-DDTHH:MM:SS.uuuuuuZ` of a time in unix microseconds.
fn rfc3339_micros(us: u64, out: &mut Vec<u8>) {
    let secs = us / 1_000_000;
    let micros = us % 1_000_000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
}

/// Deterministic JSON log lines of 200–250 bytes (newline included): ts (RFC 3339, µs),
/// level, service, msg, request_id, trace_id (32 hex), user_id, duration_ms. Runs of 1–15
/// lines share a trace and request.
pub struct LineGen {
    rng: Rng,
    t_us: u64,
    trace: String,
    request: String,
    service: usize,
    left: u64,
}

impl LineGen {
    /// A generator from a seed, starting at 2026-11-22T00:00:00Z.
    pub fn new(seed: u64) -> LineGen {
        LineGen {
            rng: Rng::new(seed),
            t_us: 1_795_305_600_000_000,
            trace: String::new(),
            request: String::new(),
            service: 0,
            left: 0,
        }
    }

    /// Continues from the current wall clock (for a live writer).
    pub fn at_now(mut self) -> LineGen {
        self.t_us = skein_model::time::now_unix_nano() / 1000;
        self
    }

    /// Appends one line (with its newline) to `out`.
    pub fn line(&mut self, out: &mut Vec<u8>) {
        let r = &mut self.rng;
        self.t_us += r.range(50, 400);
        if self.left == 0 {
            self.left = r.range(1, 15);
            self.trace = hex(&r.id::<16>());
            self.request = format!("req-{}", &hex(&r.id::<8>())[..12]);
            self.service = r.below(SERVICES.len() as u64) as usize;
        }
        self.left -= 1;
        let x = r.unit();
        let level = LEVELS
            .iter()
            .find(|(_, p)| x < *p)
            .map_or("info", |(l, _)| l);
        let user = r.range(1, 250_000);
        let dur = r.range(1, 2_500_000) as f64 / 1000.0;
        let target = r.range(200, 250) as usize;
        let start = out.len();
        out.extend_from_slice(b"{\"ts\":\"");
        rfc3339_micros(self.t_us, out);
        let _ = write!(
            out,
            "\",\"level\":\"{level}\",\"service\":\"{}\",\"msg\":\"{}",
            SERVICES[self.service],
            MSGS[r.below(MSGS.len() as u64) as usize]
        );
        let tail = format!(
            "\",\"request_id\":\"{}\",\"trace_id\":\"{}\",\"user_id\":\"u-{user}\",\"duration_ms\":{dur}}}\n",
            self.request, self.trace
        );
        loop {
            let w = WORDS[r.below(WORDS.len() as u64) as usize];
            if out.len() - start + tail.len() + 1 + w.len() > target {
                break;
            }
            out.push(b' ');
            out.extend_from_slice(w.as_bytes());
        }
        out.extend_from_slice(tail.as_bytes());
    }
}

/// A cached file of generated lines: `DIR/skein-bench-agent-{mib}mib-seed{seed}.ndjson`, reused
/// when its sidecar `.meta` says it is complete with the same size. Returns (path, bytes,
/// lines).
pub fn ensure_log_file(dir: &Path, mib_target: u64, seed: u64) -> Result<(PathBuf, u64, u64)> {
    let path = dir.join(format!(
        "skein-bench-agent-{mib_target}mib-seed{seed}.ndjson"
    ));
    let meta_path = path.with_extension("meta");
    if let (Ok(m), Ok(meta)) = (
        std::fs::metadata(&path),
        std::fs::read_to_string(&meta_path),
    ) && let Ok(v) = serde_json::from_str::<serde_json::Value>(&meta)
        && v["bytes"].as_u64() == Some(m.len())
        && v["mib"].as_u64() == Some(mib_target)
        && v["seed"].as_u64() == Some(seed)
        && let Some(lines) = v["lines"].as_u64()
    {
        println!(
            "reusing {} ({:.1} MiB, {lines} lines)",
            path.display(),
            mib(m.len())
        );
        return Ok((path, m.len(), lines));
    }
    let t = Instant::now();
    let want = mib_target * 1024 * 1024;
    let tmp = path.with_extension("partial");
    let f = std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut g = LineGen::new(seed);
    let mut buf = Vec::with_capacity(1 << 20);
    let (mut bytes, mut lines) = (0u64, 0u64);
    while bytes < want {
        buf.clear();
        while buf.len() < (1 << 20) - 512 {
            let before = buf.len();
            g.line(&mut buf);
            lines += 1;
            bytes += (buf.len() - before) as u64;
            if bytes >= want {
                break;
            }
        }
        w.write_all(&buf).context("write the log file")?;
    }
    w.flush().context("flush the log file")?;
    drop(w);
    std::fs::rename(&tmp, &path).context("rename the log file")?;
    std::fs::write(
        &meta_path,
        serde_json::json!({"mib": mib_target, "seed": seed, "bytes": bytes, "lines": lines})
            .to_string(),
    )
    .context("write the .meta file")?;
    println!(
        "generated {} ({:.1} MiB, {lines} lines, {:.0} B per line) in {:.1} s",
        path.display(),
        mib(bytes),
        bytes as f64 / lines as f64,
        t.elapsed().as_secs_f64()
    );
    Ok((path, bytes, lines))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_of_the_right_size() {
        let mut g = LineGen::new(7);
        for _ in 0..2000 {
            let mut b = Vec::new();
            g.line(&mut b);
            assert!(
                (190..=252).contains(&b.len()),
                "{}",
                String::from_utf8_lossy(&b)
            );
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            assert_eq!(v["trace_id"].as_str().unwrap().len(), 32);
        }
    }

    #[test]
    fn timestamps() {
        let mut b = Vec::new();
        rfc3339_micros(1_795_305_600_000_001, &mut b);
        assert_eq!(String::from_utf8(b).unwrap(), "2026-11-22T00:00:00.000001Z");
    }
}
