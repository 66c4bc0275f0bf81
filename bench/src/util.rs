//! Shared pieces: the in-process collector, `/metrics` scraping, CPU accounting per thread,
//! disk sizes, result tables and latency summaries.

use anyhow::{Context, Result, anyhow, bail};
use skein_collector::Bound;
use skein_collector::config::CollectorConfig;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// A collector running in this process, on its own tokio runtime (2 worker threads, named
/// `collector-rt`, like a collector process on this 2-core machine would have).
pub struct Running {
    /// Where it listens.
    pub bound: Bound,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

/// The collector's configuration for a benchmark: defaults, every listener on a free port of
/// 127.0.0.1, the given data dir and commit interval.
pub fn bench_config(data_dir: &Path, commit_interval_ms: u64) -> CollectorConfig {
    let mut cfg = CollectorConfig {
        data_dir: data_dir.to_path_buf(),
        ..CollectorConfig::default()
    };
    cfg.listen.otlp_http = "127.0.0.1:0".into();
    cfg.listen.otlp_grpc = "127.0.0.1:0".into();
    cfg.listen.api = "127.0.0.1:0".into();
    cfg.index.commit_interval_ms = commit_interval_ms;
    cfg
}

impl Running {
    /// Starts `skein_collector::run` and waits until it is listening.
    pub fn start(cfg: CollectorConfig) -> Result<Running> {
        let (bound_tx, bound_rx) = std::sync::mpsc::channel::<Bound>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("collector-main".into())
            .spawn(move || -> Result<()> {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("collector-rt")
                    .enable_all()
                    .build()
                    .context("collector runtime")?;
                rt.block_on(skein_collector::run(
                    cfg,
                    async move {
                        let _ = stop_rx.await;
                    },
                    move |b| {
                        let _ = bound_tx.send(b);
                    },
                ))
                .map_err(|e| anyhow!("collector: {e}"))
            })
            .context("spawn collector thread")?;
        match bound_rx.recv_timeout(Duration::from_secs(600)) {
            Ok(bound) => Ok(Running {
                bound,
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Err(_) => {
                let r = thread
                    .join()
                    .map_err(|_| anyhow!("collector thread panicked"))?;
                r?;
                bail!("collector stopped before it was listening")
            }
        }
    }

    /// Base URL of OTLP/HTTP.
    pub fn otlp_url(&self) -> String {
        format!("http://{}", self.bound.otlp_http)
    }

    /// Base URL of the query API.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.bound.api)
    }

    /// Stops it cleanly (drain, final commit, wait for merges) and returns how long that took.
    pub fn stop(mut self) -> Result<Duration> {
        let t = Instant::now();
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(th) = self.thread.take() {
            th.join()
                .map_err(|_| anyhow!("collector thread panicked"))??;
        }
        Ok(t.elapsed())
    }
}

/// A tokio runtime for the benchmark's clients (2 workers, `bench-client`).
pub fn client_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .context("client runtime")
}

/// Reads a counter of the collector's `/metrics`, e.g. `skein_indexed_records_total` for
/// `signal="logs"`. Absent means 0.
pub async fn metric(client: &reqwest::Client, api: &str, name: &str, signal: &str) -> Result<u64> {
    let text = client
        .get(format!("{api}/metrics"))
        .send()
        .await
        .context("GET /metrics")?
        .text()
        .await
        .context("read /metrics")?;
    let label = format!("signal=\"{signal}\"");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(name)
            && rest.starts_with('{')
            && rest.contains(&label)
        {
            let v = rest
                .rsplit(' ')
                .next()
                .ok_or_else(|| anyhow!("bad metrics line {line}"))?;
            let f: f64 = v.parse().with_context(|| format!("metric value {v}"))?;
            return Ok(f as u64);
        }
    }
    Ok(0)
}

/// Polls `skein_indexed_records_total{signal}` every `every` until it reaches `target`;
/// returns when it did.
pub async fn wait_indexed(
    client: &reqwest::Client,
    api: &str,
    signal: &str,
    target: u64,
    every: Duration,
    timeout: Duration,
) -> Result<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        let n = metric(client, api, "skein_indexed_records_total", signal).await?;
        if n >= target {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            bail!("only {n} of {target} {signal} records indexed after {timeout:?}");
        }
        tokio::time::sleep(every).await;
    }
}

/// Total bytes of the files under a folder, recursively.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| {
            let p = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => dir_bytes(&p),
                Ok(m) => m.len(),
                Err(_) => 0,
            }
        })
        .sum()
}

/// Clock ticks per second of `/proc` CPU times (Linux's USER_HZ, 100 on every common build).
const TICKS: f64 = 100.0;

/// CPU seconds used so far by each thread of this process: (tid, name, seconds).
pub fn thread_cpu() -> Vec<(u64, String, f64)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let Ok(tid) = e.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        out.push((tid, name, (ticks(11) + ticks(12)) / TICKS));
    }
    out
}

/// CPU seconds of the whole process so far (user + system), threads that ended included.
pub fn process_cpu() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / TICKS
}

/// CPU seconds per thread group between two [`thread_cpu`] snapshots; digits are stripped
/// from names so `thrd-tantivy-index0` and `...1` add up. Threads that ended in between are
/// missing (the process total still counts them).
pub fn cpu_by_group(
    before: &[(u64, String, f64)],
    after: &[(u64, String, f64)],
) -> BTreeMap<String, f64> {
    let prev: BTreeMap<u64, f64> = before.iter().map(|(t, _, s)| (*t, *s)).collect();
    let mut out = BTreeMap::new();
    for (tid, name, secs) in after {
        let d = secs - prev.get(tid).copied().unwrap_or(0.0);
        if d <= 0.0 {
            continue;
        }
        let group: String = name.chars().filter(|c| !c.is_ascii_digit()).collect();
        *out.entry(group).or_insert(0.0) += d;
    }
    out
}

/// The 1-minute load average and the uptime line.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Prints a two-column table.
pub fn table(title: &str, rows: &[(String, String)]) {
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!("\n== {title} ==");
    for (k, v) in rows {
        println!("  {k:<w$}  {v}");
    }
}

/// A row of a table.
pub fn row(k: &str, v: impl std::fmt::Display) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// Megabytes (10^6 bytes).
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// p50, p90, p99 and max of a histogram of microseconds, in milliseconds.
pub fn percentiles_ms(h: &hdrhistogram::Histogram<u64>) -> serde_json::Value {
    let q = |x: f64| h.value_at_quantile(x) as f64 / 1000.0;
    serde_json::json!({
        "count": h.len(),
        "p50_ms": q(0.50),
        "p90_ms": q(0.90),
        "p99_ms": q(0.99),
        "max_ms": h.max() as f64 / 1000.0,
        "mean_ms": h.mean() / 1000.0,
    })
}

/// A new histogram of microseconds up to 10 minutes.
pub fn histogram() -> Result<hdrhistogram::Histogram<u64>> {
    hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
        .map_err(|e| anyhow!("histogram: {e}"))
}

/// A temporary folder under `base` (or the system's), kept when `keep` is set.
pub fn temp_dir(prefix: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("create temp dir")
}

/// Bytes of the files under a folder, recursively, by file extension (tantivy's `.store`,
/// `.idx`, `.term`, `.fast`, ...).
pub fn bytes_by_extension(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    fn walk(dir: &Path, out: &mut BTreeMap<String, u64>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.filter_map(|e| e.ok()) {
            let p = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => walk(&p, out),
                Ok(m) => {
                    let ext = p
                        .extension()
                        .map(|x| x.to_string_lossy().to_string())
                        .unwrap_or_else(|| "other".into());
                    *out.entry(ext).or_insert(0) += m.len();
                }
                Err(_) => {}
            }
        }
    }
    walk(dir, &mut out);
    out
}
