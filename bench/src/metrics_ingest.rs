//! `metrics-ingest`: gauge samples per second that the collector takes over OTLP/HTTP
//! protobuf.
//!
//! The real `skein collector` runs as a child process on a fresh data dir. Before the clock
//! starts, the bench encodes every request: `--series` host-metric gauge series (20 metric
//! names, `cpu`/`state`/`device`/`direction` point attributes, resource `service.name` and
//! `host.name` = `host-<n>` over 100 hosts), one point per series per round, rounds 10 s
//! apart and ending in the past, random-walk values. Each request holds
//! `--points-per-request` points of a fixed set of series (a "slot"); a slot's rounds are sent
//! in order, one after another, so no sample can arrive out of order, while up to
//! `--concurrency` requests of different slots are in flight. Every answer must be 200 with
//! no rejected points. Reported: samples/s from the first send to the last answer, the
//! collector's CPU seconds over that window and its peak RSS (`/proc`), and its
//! `skein_tsdb{size=...}` gauges read from `/metrics` 6 s after the last answer. `--runs`
//! runs, each on a fresh collector; the median is the headline.
//!
//! The collector child process and the ordered sender are also used by `metrics-query`.

use crate::agent_util::{ProcStat, median, mib, proc_stat, wait_quiet};
use crate::datagen::Rng;
use crate::util::{self, row, table};
use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::Args;
use prost::Message;
use skein_model::proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use skein_model::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use skein_model::proto::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use skein_model::proto::resource::v1::Resource;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Options of `metrics-ingest`.
#[derive(Debug, Args)]
pub struct MetricsIngestArgs {
    /// The `skein` binary (release build).
    #[arg(long, default_value = "target/release/skein")]
    pub skein: PathBuf,
    /// Gauge series.
    #[arg(long, default_value_t = 10_000)]
    pub series: usize,
    /// Hosts the series are spread over (`host.name` = `host-<n>`).
    #[arg(long, default_value_t = 100)]
    pub hosts: usize,
    /// Points per OTLP request (one point per series: the series of a request are fixed).
    #[arg(long, default_value_t = 2000)]
    pub points_per_request: usize,
    /// Rounds: each covers every series once, 10 s after the previous one.
    #[arg(long, default_value_t = 60)]
    pub rounds: usize,
    /// Requests in flight at most (requests of one slot are never in flight together).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Runs, each on a fresh collector; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// PRNG seed of the values.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Before each run, wait until the 1-minute load is below this (0: do not wait).
    #[arg(long, default_value_t = 0.0)]
    pub max_load: f64,
    /// Longest wait for that, in seconds.
    #[arg(long, default_value_t = 600)]
    pub load_wait_secs: u64,
}

/// Metric names of the generated host metrics: name, unit, scale of the values, the label
/// whose value cycles through a list, and the label that counts up (`cpu="0"`,
/// `device="eth1"`) so that a host can have as many series of a metric as needed.
struct MetricDef {
    name: &'static str,
    unit: &'static str,
    scale: f64,
    cycle: (&'static str, &'static [&'static str]),
    count: (&'static str, &'static str),
}

const CPU_STATES: &[&str] = &["user", "system", "idle", "iowait"];
const MEM_STATES: &[&str] = &["used", "free", "cached", "buffered", "slab_reclaimable"];
const DIRECTIONS: &[&str] = &["read", "write"];
const NET_DIRECTIONS: &[&str] = &["transmit", "receive"];
const FS_STATES: &[&str] = &["used", "free", "reserved"];
const TCP_STATES: &[&str] = &[
    "ESTABLISHED",
    "TIME_WAIT",
    "CLOSE_WAIT",
    "LISTEN",
    "SYN_SENT",
];
const PROC_STATUS: &[&str] = &["running", "sleeping", "blocked"];
const PAGING: &[&str] = &["used", "free"];
const ONE: &[&str] = &["all"];

const METRICS: [MetricDef; 20] = [
    MetricDef {
        name: "system.cpu.utilization",
        unit: "1",
        scale: 1.0,
        cycle: ("state", CPU_STATES),
        count: ("cpu", ""),
    },
    MetricDef {
        name: "system.cpu.time",
        unit: "s",
        scale: 1e5,
        cycle: ("state", CPU_STATES),
        count: ("cpu", ""),
    },
    MetricDef {
        name: "system.cpu.frequency",
        unit: "Hz",
        scale: 3e9,
        cycle: ("kind", ONE),
        count: ("cpu", ""),
    },
    MetricDef {
        name: "system.memory.usage",
        unit: "By",
        scale: 8e9,
        cycle: ("state", MEM_STATES),
        count: ("numa_node", ""),
    },
    MetricDef {
        name: "system.memory.utilization",
        unit: "1",
        scale: 1.0,
        cycle: ("state", MEM_STATES),
        count: ("numa_node", ""),
    },
    MetricDef {
        name: "system.disk.io",
        unit: "By",
        scale: 1e11,
        cycle: ("direction", DIRECTIONS),
        count: ("device", "nvme0n"),
    },
    MetricDef {
        name: "system.disk.operations",
        unit: "{operation}",
        scale: 1e7,
        cycle: ("direction", DIRECTIONS),
        count: ("device", "nvme0n"),
    },
    MetricDef {
        name: "system.disk.io_time",
        unit: "s",
        scale: 1e4,
        cycle: ("kind", ONE),
        count: ("device", "nvme0n"),
    },
    MetricDef {
        name: "system.disk.pending_operations",
        unit: "{operation}",
        scale: 20.0,
        cycle: ("kind", ONE),
        count: ("device", "nvme0n"),
    },
    MetricDef {
        name: "system.filesystem.usage",
        unit: "By",
        scale: 5e11,
        cycle: ("state", FS_STATES),
        count: ("device", "nvme0n1p"),
    },
    MetricDef {
        name: "system.filesystem.utilization",
        unit: "1",
        scale: 1.0,
        cycle: ("kind", ONE),
        count: ("device", "nvme0n1p"),
    },
    MetricDef {
        name: "system.network.io",
        unit: "By",
        scale: 1e12,
        cycle: ("direction", NET_DIRECTIONS),
        count: ("device", "eth"),
    },
    MetricDef {
        name: "system.network.packets",
        unit: "{packet}",
        scale: 1e9,
        cycle: ("direction", NET_DIRECTIONS),
        count: ("device", "eth"),
    },
    MetricDef {
        name: "system.network.errors",
        unit: "{error}",
        scale: 100.0,
        cycle: ("direction", NET_DIRECTIONS),
        count: ("device", "eth"),
    },
    MetricDef {
        name: "system.network.dropped",
        unit: "{packet}",
        scale: 1000.0,
        cycle: ("direction", NET_DIRECTIONS),
        count: ("device", "eth"),
    },
    MetricDef {
        name: "system.network.connections",
        unit: "{connection}",
        scale: 500.0,
        cycle: ("state", TCP_STATES),
        count: ("protocol", "tcp"),
    },
    MetricDef {
        name: "system.paging.usage",
        unit: "By",
        scale: 2e9,
        cycle: ("state", PAGING),
        count: ("device", "swap"),
    },
    MetricDef {
        name: "system.processes.count",
        unit: "{process}",
        scale: 400.0,
        cycle: ("status", PROC_STATUS),
        count: ("cgroup", "slice"),
    },
    MetricDef {
        name: "system.cpu.load_average.1m",
        unit: "{thread}",
        scale: 4.0,
        cycle: ("kind", ONE),
        count: ("cpu_set", ""),
    },
    MetricDef {
        name: "system.uptime",
        unit: "s",
        scale: 1e6,
        cycle: ("kind", ONE),
        count: ("boot", ""),
    },
];

/// One generated series: host, metric and its two point attributes.
#[derive(Debug, Clone)]
struct SeriesDef {
    host: usize,
    metric: usize,
    attrs: [(&'static str, String); 2],
}

/// The series, host by host: series `i` is on host `i / per_host`; within a host the
/// metrics take turns, and the n-th series of a metric on a host gets variant n (its
/// cycling label takes the next value, and the counting label goes up once they are used).
fn series_defs(series: usize, hosts: usize) -> Vec<SeriesDef> {
    let per_host = series.div_ceil(hosts.max(1)).max(1);
    (0..series)
        .map(|i| {
            let (host, k) = (i / per_host, i % per_host);
            let metric = k % METRICS.len();
            let v = k / METRICS.len();
            let m = &METRICS[metric];
            let (cname, cvals) = m.cycle;
            let (nname, prefix) = m.count;
            SeriesDef {
                host,
                metric,
                attrs: [
                    (cname, cvals[v % cvals.len()].to_string()),
                    (nname, format!("{prefix}{}", v / cvals.len())),
                ],
            }
        })
        .collect()
}

fn kv(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
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

/// A gauge metric with its points.
pub(crate) fn gauge(name: &str, unit: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }
}

/// A gauge point with string attributes.
pub(crate) fn point(attrs: &[(&str, &str)], ts_ns: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
        time_unix_nano: ts_ns,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

/// One `ResourceMetrics` of a host (`host.name`, and `service.name` when given).
pub(crate) fn resource_metrics(
    service: Option<&str>,
    host: &str,
    metrics: Vec<Metric>,
) -> ResourceMetrics {
    let mut attributes = Vec::new();
    if let Some(s) = service {
        attributes.push(kv("service.name", s));
    }
    attributes.push(kv("host.name", host));
    ResourceMetrics {
        resource: Some(Resource {
            attributes,
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(scope()),
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The requests, already encoded: `bodies[round * slots + slot]`.
struct Dataset {
    bodies: Vec<Bytes>,
    slots: usize,
    points: Vec<u64>,
    samples: u64,
    bytes: u64,
    first_ts_ns: u64,
}

/// Encodes every request. Values walk randomly from a per-series start, at the scale of their
/// metric (ratios in 0..1 with 3 decimals, the others rounded to whole units when large).
fn make_dataset(a: &MetricsIngestArgs) -> Result<Dataset> {
    let defs = series_defs(a.series, a.hosts);
    let per_req = a.points_per_request.max(1);
    let slots = defs.len().div_ceil(per_req);
    let mut rng = Rng::new(a.seed);
    let mut values: Vec<f64> = defs
        .iter()
        .map(|d| METRICS[d.metric].scale * (0.1 + 0.6 * rng.unit()))
        .collect();
    let step_ns = 10_000_000_000u64;
    let now_s = skein_model::time::now_unix_nano() / 1_000_000_000;
    let first_s = (now_s - 10 * a.rounds as u64 - 10) / 10 * 10;
    let first_ts_ns = first_s * 1_000_000_000;
    let hosts: Vec<String> = (0..a.hosts.max(1)).map(|h| format!("host-{h}")).collect();
    let mut bodies = Vec::with_capacity(slots * a.rounds);
    let mut points = Vec::with_capacity(slots * a.rounds);
    let (mut samples, mut bytes) = (0u64, 0u64);
    for r in 0..a.rounds {
        let ts = first_ts_ns + r as u64 * step_ns;
        for (i, v) in values.iter_mut().enumerate() {
            let scale = METRICS[defs[i].metric].scale;
            let next = (*v + scale * 0.02 * (rng.unit() - 0.5)).clamp(0.0, scale);
            *v = if scale <= 1.0 {
                (next * 1000.0).round() / 1000.0
            } else if scale >= 1000.0 {
                next.round()
            } else {
                (next * 100.0).round() / 100.0
            };
        }
        for slot in 0..slots {
            let lo = slot * per_req;
            let hi = (lo + per_req).min(defs.len());
            // host -> metric -> points
            let mut by_host: BTreeMap<usize, BTreeMap<usize, Vec<NumberDataPoint>>> =
                BTreeMap::new();
            for i in lo..hi {
                let d = &defs[i];
                let attrs = [
                    (d.attrs[0].0, d.attrs[0].1.as_str()),
                    (d.attrs[1].0, d.attrs[1].1.as_str()),
                ];
                by_host
                    .entry(d.host)
                    .or_default()
                    .entry(d.metric)
                    .or_default()
                    .push(point(&attrs, ts, values[i]));
            }
            let req = ExportMetricsServiceRequest {
                resource_metrics: by_host
                    .into_iter()
                    .map(|(h, ms)| {
                        let metrics = ms
                            .into_iter()
                            .map(|(m, pts)| gauge(METRICS[m].name, METRICS[m].unit, pts))
                            .collect();
                        let host = hosts.get(h).map_or("host-x", String::as_str);
                        resource_metrics(Some("hostmetrics"), host, metrics)
                    })
                    .collect(),
            };
            let body = req.encode_to_vec();
            bytes += body.len() as u64;
            samples += (hi - lo) as u64;
            points.push((hi - lo) as u64);
            bodies.push(Bytes::from(body));
        }
    }
    Ok(Dataset {
        bodies,
        slots,
        points,
        samples,
        bytes,
        first_ts_ns,
    })
}

/// `skein collector` running as a child process on its own data dir, every listener on a
/// free port of 127.0.0.1.
pub struct CollectorProc {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// OTLP/HTTP base URL.
    pub otlp: String,
    /// Query API base URL.
    pub api: String,
    log: PathBuf,
}

impl CollectorProc {
    /// Starts `skein collector --data-dir DIR` (with `--config` when given) and waits (up to
    /// 120 s) for its ready line; its log (stderr) goes to `log`.
    pub fn start(
        skein: &Path,
        data_dir: &Path,
        config: Option<&Path>,
        log: &Path,
    ) -> Result<CollectorProc> {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("create {}", log.display()))?;
        let mut cmd = Command::new(skein);
        cmd.arg("collector");
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(["--otlp-http", "127.0.0.1:0"])
            .args(["--otlp-grpc", "127.0.0.1:0"])
            .args(["--api", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err));
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "start {} collector (build it: cargo build --release -p skein)",
                skein.display()
            )
        })?;
        let pid = child.id();
        let rx = crate::agent_util::ready_lines(&mut child, "skein collector ready")?;
        let mut me = CollectorProc {
            child,
            pid,
            otlp: String::new(),
            api: String::new(),
            log: log.to_path_buf(),
        };
        let line = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(l) => l,
            Err(_) => bail!(
                "the collector printed no ready line within 120 s; its log:\n{}",
                me.log_tail(30)
            ),
        };
        let addr = |key: &str| -> Result<String> {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .map(|a| format!("http://{a}"))
                .ok_or_else(|| anyhow!("no {key} in the ready line {line:?}"))
        };
        me.otlp = addr("otlp_http=")?;
        me.api = addr("api=")?;
        Ok(me)
    }

    /// `/proc` figures of the collector now.
    pub fn stat(&self) -> Result<ProcStat> {
        proc_stat(self.pid)
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Stops it with SIGTERM and waits up to 60 s (then SIGKILL). Returns how long it took.
    pub fn stop(mut self) -> Result<Duration> {
        let t = Instant::now();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        while t.elapsed() < Duration::from_secs(60) {
            if let Some(st) = self.child.try_wait().context("wait for the collector")? {
                if !st.success() {
                    bail!(
                        "the collector exited with {st}; its log:\n{}",
                        self.log_tail(30)
                    );
                }
                return Ok(t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        bail!("the collector did not stop within 60 s of SIGTERM; killed")
    }
}

impl Drop for CollectorProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The collector's `skein_tsdb{size="..."}` gauges (series, head_samples, blocks,
/// block_samples, block_bytes, block_chunk_bytes, wal_bytes); updated every 5 s.
pub fn tsdb_sizes(client: &reqwest::blocking::Client, api: &str) -> Result<BTreeMap<String, u64>> {
    let text = client
        .get(format!("{api}/metrics"))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .with_context(|| format!("GET {api}/metrics"))?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("skein_tsdb{size=\"") else {
            continue;
        };
        let Some((what, tail)) = rest.split_once("\"}") else {
            continue;
        };
        if let Ok(v) = tail.trim().parse::<f64>() {
            out.insert(what.to_string(), v as u64);
        }
    }
    Ok(out)
}

/// What [`send_ordered`] did.
#[derive(Debug, Clone, Copy)]
pub struct SendReport {
    /// Points sent and accepted.
    pub accepted: u64,
    /// Requests answered 200.
    pub requests: u64,
    /// Requests repeated after a 503 or 429.
    pub retries: u64,
    /// Body bytes sent (retries not counted).
    pub body_bytes: u64,
    /// Seconds from the first send to the last answer.
    pub secs: f64,
}

/// Sends `slots × rounds` OTLP metrics requests to `{otlp}/v1/metrics`. `body(slot, round)`
/// gives a request's body and its number of points. Each slot's rounds go one after the
/// other (the next is sent after the previous one's answer), so a series kept in one slot is
/// never sent out of order; at most `concurrency` requests are in flight. Every answer must
/// be 200 without rejected points (503 and 429 are retried).
pub fn send_ordered<F>(
    rt: &tokio::runtime::Runtime,
    otlp: &str,
    slots: usize,
    rounds: usize,
    concurrency: usize,
    body: F,
) -> Result<SendReport>
where
    F: Fn(usize, usize) -> Result<(Bytes, u64)> + Send + Sync + 'static,
{
    let url = format!("{otlp}/v1/metrics");
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency + 2)
            .timeout(Duration::from_secs(120))
            .build()
            .context("HTTP client")?;
        let sem = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        let body = Arc::new(body);
        let (accepted, requests, retries, bytes) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(slots);
        for slot in 0..slots {
            let (client, url, sem, body) = (client.clone(), url.clone(), sem.clone(), body.clone());
            let (accepted, requests, retries, bytes) = (
                accepted.clone(),
                requests.clone(),
                retries.clone(),
                bytes.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for round in 0..rounds {
                    let (b, n) = body(slot, round)?;
                    bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                    let _permit = sem.acquire().await.context("semaphore")?;
                    let tries = post_metrics(&client, &url, b, n).await?;
                    retries.fetch_add(tries, Ordering::Relaxed);
                    requests.fetch_add(1, Ordering::Relaxed);
                    accepted.fetch_add(n, Ordering::Relaxed);
                }
                Ok::<(), anyhow::Error>(())
            }));
        }
        for t in tasks {
            t.await.context("sender task")??;
        }
        Ok(SendReport {
            accepted: accepted.load(Ordering::Relaxed),
            requests: requests.load(Ordering::Relaxed),
            retries: retries.load(Ordering::Relaxed),
            body_bytes: bytes.load(Ordering::Relaxed),
            secs: started.elapsed().as_secs_f64(),
        })
    })
}

/// POSTs one body until it is answered 200 (503 and 429 are retried after 10 ms); the answer
/// must reject no point. Returns the number of retries.
async fn post_metrics(
    client: &reqwest::Client,
    url: &str,
    body: Bytes,
    points: u64,
) -> Result<u64> {
    let mut retries = 0u64;
    loop {
        let resp = client
            .post(url)
            .header("content-type", "application/x-protobuf")
            .body(body.clone())
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let st = resp.status();
        let answer = resp
            .bytes()
            .await
            .with_context(|| format!("read the answer of {url}"))?;
        if st.as_u16() == 503 || st.as_u16() == 429 {
            retries += 1;
            if retries > 10_000 {
                bail!("POST {url}: still {st} after 10,000 retries");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        if st.as_u16() != 200 {
            bail!(
                "POST {url}: status {st}: {}",
                String::from_utf8_lossy(&answer[..answer.len().min(500)])
            );
        }
        let r = ExportMetricsServiceResponse::decode(answer)
            .with_context(|| format!("decode the answer of {url}"))?;
        if let Some(p) = r.partial_success
            && p.rejected_data_points > 0
        {
            bail!(
                "POST {url}: {} of {points} points rejected: {}",
                p.rejected_data_points,
                p.error_message
            );
        }
        return Ok(retries);
    }
}

/// One run's figures.
#[derive(Debug, Clone)]
struct RunResult {
    sent: SendReport,
    samples_per_s: f64,
    cpu_secs: f64,
    client_cpu_secs: f64,
    hwm: u64,
    rss: u64,
    tsdb: BTreeMap<String, u64>,
    load: String,
}

impl RunResult {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "samples_per_s": self.samples_per_s,
            "accepted": self.sent.accepted,
            "requests": self.sent.requests,
            "retries": self.sent.retries,
            "send_secs": self.sent.secs,
            "body_mb_per_s": util::mb(self.sent.body_bytes) / self.sent.secs.max(1e-9),
            "collector_cpu_secs": self.cpu_secs,
            "collector_cores": self.cpu_secs / self.sent.secs.max(1e-9),
            "collector_cpu_us_per_sample": self.cpu_secs * 1e6 / self.sent.accepted.max(1) as f64,
            "client_cpu_secs": self.client_cpu_secs,
            "collector_peak_rss_mib": mib(self.hwm),
            "collector_rss_end_mib": mib(self.rss),
            "tsdb": self.tsdb,
            "load_at_start": self.load,
        })
    }
}

fn one_run(a: &MetricsIngestArgs, d: &Arc<Dataset>, n: usize) -> Result<RunResult> {
    let dir = util::temp_dir("skein-bench-metrics-ingest-")?;
    let col = CollectorProc::start(
        &a.skein,
        &dir.path().join("data"),
        None,
        &dir.path().join("collector.log"),
    )?;
    let rt = util::client_runtime()?;
    let load = util::load();
    let c0 = col.stat()?;
    let me0 = util::process_cpu();
    let data = d.clone();
    let slots = d.slots;
    let sent = send_ordered(
        &rt,
        &col.otlp,
        slots,
        a.rounds,
        a.concurrency,
        move |s, r| {
            let i = r * data.slots + s;
            match (data.bodies.get(i), data.points.get(i)) {
                (Some(b), Some(p)) => Ok((b.clone(), *p)),
                _ => bail!("no request {i}"),
            }
        },
    );
    let sent = match sent {
        Ok(s) => s,
        Err(e) => return Err(e.context(format!("collector log:\n{}", col.log_tail(20)))),
    };
    let c1 = col.stat()?;
    let me1 = util::process_cpu();
    drop(rt);
    if sent.accepted != d.samples {
        bail!("{} samples accepted of {}", sent.accepted, d.samples);
    }
    // The tsdb gauges are updated every 5 s.
    std::thread::sleep(Duration::from_secs(6));
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("HTTP client")?;
    let tsdb = tsdb_sizes(&client, &col.api)?;
    let c2 = col.stat()?;
    col.stop()?;
    let r = RunResult {
        samples_per_s: sent.accepted as f64 / sent.secs.max(1e-9),
        sent,
        cpu_secs: c1.cpu_secs - c0.cpu_secs,
        client_cpu_secs: me1 - me0,
        hwm: c2.hwm,
        rss: c2.rss,
        tsdb,
        load,
    };
    println!(
        "run {n}: {:.0} samples/s ({} samples in {:.2} s, {} retries); collector {:.2} CPU s ({:.2} cores), peak RSS {:.1} MiB; bench client {:.2} CPU s; load before {}",
        r.samples_per_s,
        r.sent.accepted,
        r.sent.secs,
        r.sent.retries,
        r.cpu_secs,
        r.cpu_secs / r.sent.secs.max(1e-9),
        mib(r.hwm),
        r.client_cpu_secs,
        r.load
    );
    Ok(r)
}

/// Runs the benchmark; returns the results line.
pub fn run(a: MetricsIngestArgs) -> Result<serde_json::Value> {
    if !a.skein.exists() {
        bail!(
            "{} not found: build it with cargo build --release -p skein (or pass --skein)",
            a.skein.display()
        );
    }
    if a.series == 0 || a.rounds == 0 || a.runs == 0 {
        bail!("--series, --rounds and --runs must be above 0");
    }
    let t = Instant::now();
    let d = Arc::new(make_dataset(&a)?);
    println!(
        "encoded {} requests: {} series × {} rounds = {} samples, {:.1} MB of protobuf ({:.1} B per sample), {} slots of ≤ {} points, first timestamp {} s ago, in {:.1} s",
        d.bodies.len(),
        a.series,
        a.rounds,
        d.samples,
        util::mb(d.bytes),
        d.bytes as f64 / d.samples.max(1) as f64,
        d.slots,
        a.points_per_request,
        (skein_model::time::now_unix_nano().saturating_sub(d.first_ts_ns)) / 1_000_000_000,
        t.elapsed().as_secs_f64()
    );
    let mut runs = Vec::with_capacity(a.runs);
    for n in 1..=a.runs {
        let (l, waited) = wait_quiet(a.max_load, Duration::from_secs(a.load_wait_secs));
        if waited > 0.0 {
            println!(
                "waited {waited:.0} s for the load ({l:.2}) to fall below {}",
                a.max_load
            );
        }
        runs.push(one_run(&a, &d, n)?);
    }
    let rates: Vec<f64> = runs.iter().map(|r| r.samples_per_s).collect();
    let med = median(&rates);
    let mid = runs
        .iter()
        .min_by(|x, y| {
            (x.samples_per_s - med)
                .abs()
                .total_cmp(&(y.samples_per_s - med).abs())
        })
        .ok_or_else(|| anyhow!("no run"))?;
    let goal_met = med >= 200_000.0;
    let tsdb_line = |t: &BTreeMap<String, u64>| {
        t.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let cpu_med = median(&runs.iter().map(|r| r.cpu_secs).collect::<Vec<_>>());
    let hwm_max = runs.iter().map(|r| r.hwm).max().unwrap_or(0);
    table(
        &format!(
            "metrics ingest over OTLP/HTTP protobuf: {} series, {} rounds, {} points per request, concurrency {} ({} runs)",
            a.series,
            a.rounds,
            a.points_per_request,
            a.concurrency.min(d.slots),
            runs.len()
        ),
        &[
            row(
                "samples/s, median",
                format!(
                    "{med:.0} (runs: {})",
                    rates
                        .iter()
                        .map(|r| format!("{r:.0}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            row(
                "collector CPU over the send, median",
                format!(
                    "{cpu_med:.2} s ({:.2} µs per sample)",
                    cpu_med * 1e6 / d.samples.max(1) as f64
                ),
            ),
            row(
                "collector peak RSS (VmHWM), largest",
                format!("{:.1} MiB", mib(hwm_max)),
            ),
            row(
                "bench client CPU over the send (median run)",
                format!("{:.2} s", mid.client_cpu_secs),
            ),
            row("skein_tsdb gauges (median run)", tsdb_line(&mid.tsdb)),
            row(
                "request size",
                format!(
                    "{:.1} KB ({:.1} B per sample)",
                    d.bytes as f64 / d.bodies.len().max(1) as f64 / 1e3,
                    d.bytes as f64 / d.samples.max(1) as f64
                ),
            ),
            row(
                "goal: >= 200,000 samples/s",
                if goal_met { "met" } else { "missed" },
            ),
        ],
    );
    Ok(serde_json::json!({
        "bench": "metrics-ingest",
        "series": a.series,
        "hosts": a.hosts,
        "rounds": a.rounds,
        "points_per_request": a.points_per_request,
        "concurrency": a.concurrency,
        "slots": d.slots,
        "samples_per_run": d.samples,
        "body_bytes_per_sample": d.bytes as f64 / d.samples.max(1) as f64,
        "median_samples_per_s": med,
        "median_collector_cpu_secs": cpu_med,
        "max_collector_peak_rss_mib": mib(hwm_max),
        "runs": runs.iter().map(RunResult::json).collect::<Vec<_>>(),
        "goal_met": goal_met,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn series_are_unique_and_counted() {
        for (n, hosts) in [(10_000, 100), (2000, 100), (37, 5), (1, 100)] {
            let defs = series_defs(n, hosts);
            assert_eq!(defs.len(), n);
            let keys: HashSet<String> = defs
                .iter()
                .map(|d| format!("{}/{}/{:?}", d.host, d.metric, d.attrs))
                .collect();
            assert_eq!(keys.len(), n);
            assert!(defs.iter().all(|d| d.host < hosts));
        }
    }

    #[test]
    fn requests_convert_without_rejections() {
        let a = MetricsIngestArgs {
            skein: PathBuf::new(),
            series: 450,
            hosts: 10,
            points_per_request: 200,
            rounds: 3,
            concurrency: 1,
            runs: 1,
            seed: 1,
            max_load: 0.0,
            load_wait_secs: 0,
        };
        let d = make_dataset(&a).unwrap();
        assert_eq!(d.slots, 3);
        assert_eq!(d.samples, 1350);
        let limits = skein_model::otlp_metrics::MetricLimits::default();
        let mut series = HashSet::new();
        for b in &d.bodies {
            let req = ExportMetricsServiceRequest::decode(b.clone()).unwrap();
            let (batch, rej) = skein_model::otlp_metrics::metrics_from_otlp(&req, &limits, 0);
            assert_eq!(rej.count, 0);
            for s in &batch.series {
                series.insert(format!("{}{}", s.name, s.labels));
            }
        }
        assert_eq!(series.len(), 450);
    }
}
