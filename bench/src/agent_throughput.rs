//! `agent-throughput`: how fast `skein agent` (the real binary, as a child process) reads a
//! large file of JSON log lines from the beginning, parses, buffers on disk and ships it, to a
//! null sink or to the real collector. The clock runs from the agent's ready line until its
//! `/metrics` shows every line acknowledged.

use crate::agent_util::{
    AgentProc, AgentSettings, NullSink, ensure_log_file, logs_sent, median, mib, scrape,
    thread_stats, wait_quiet, write_config,
};
use crate::util::{self, row, table};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the agent ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SinkKind {
    /// An in-process HTTP server that reads each body and answers 200.
    Null,
    /// The real collector (`skein_collector::run`) in this process, on a temp data dir.
    Collector,
}

/// Options of `agent-throughput`.
#[derive(Debug, Args)]
pub struct ThroughputArgs {
    /// The `skein` binary.
    #[arg(long, default_value = "target/release/skein")]
    pub skein: PathBuf,
    /// Size of the log file in MiB.
    #[arg(long, default_value_t = 1024)]
    pub mib: u64,
    /// Seed of the generated lines.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where the generated file is kept (and reused).
    #[arg(long, default_value = "/tmp")]
    pub cache_dir: PathBuf,
    /// Measured runs (median reported); each with a fresh agent data dir.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Where the agent ships.
    #[arg(long, value_enum, default_value_t = SinkKind::Null)]
    pub sink: SinkKind,
    /// Agent `[batch] max_records` (default: the agent's).
    #[arg(long)]
    pub batch_records: Option<usize>,
    /// Agent `[batch] max_bytes` (default: the agent's).
    #[arg(long)]
    pub batch_bytes: Option<usize>,
    /// Agent `[collector] max_in_flight` (default: the agent's).
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// Before the first run, wait until the 1-minute load is below this (0: do not wait).
    #[arg(long, default_value_t = 0.8)]
    pub max_load: f64,
    /// Longest wait for that, in seconds.
    #[arg(long, default_value_t = 600)]
    pub load_wait_secs: u64,
    /// Give up on a run when nothing was acknowledged for this many seconds.
    #[arg(long, default_value_t = 60)]
    pub stall_secs: u64,
}

/// One run's figures.
struct Run {
    secs: f64,
    cpu_secs: f64,
    hwm: u64,
    rss: u64,
    sink_bytes: u64,
    sink_requests: u64,
    load_before: String,
    threads: Vec<(String, f64)>,
}

/// Runs the benchmark; returns the results line.
pub fn run(a: ThroughputArgs) -> Result<serde_json::Value> {
    if !a.skein.exists() {
        bail!(
            "{} not found: build it with cargo build --release (or pass --skein)",
            a.skein.display()
        );
    }
    let (file, bytes, lines) = ensure_log_file(&a.cache_dir, a.mib, a.seed)?;
    let settings = AgentSettings {
        batch_records: a.batch_records,
        batch_bytes: a.batch_bytes,
        max_in_flight: a.max_in_flight,
        host_metrics_interval: None,
    };
    println!("agent settings: {}", settings.label());
    // Warm the page cache so every run reads the file from memory, as the first run would
    // after the generator wrote it.
    warm_cache(&file)?;
    let (load, waited) = wait_quiet(a.max_load, Duration::from_secs(a.load_wait_secs));
    println!(
        "load before the runs: {} (waited {waited:.0} s for < {})",
        util::load(),
        a.max_load
    );
    let mut runs = Vec::new();
    for i in 0..a.runs.max(1) {
        let r = one_run(&a, &settings, &file, lines)?;
        let mibps = mib(bytes) / r.secs;
        table(
            &format!("run {} of {}", i + 1, a.runs.max(1)),
            &[
                row("load before", &r.load_before),
                row("time", format!("{:.2} s", r.secs)),
                row(
                    "throughput",
                    format!("{mibps:.1} MiB/s, {:.0} lines/s", lines as f64 / r.secs),
                ),
                row(
                    "agent CPU",
                    format!("{:.1} s = {:.2} cores", r.cpu_secs, r.cpu_secs / r.secs),
                ),
                row(
                    "agent peak RSS (VmHWM)",
                    format!(
                        "{:.1} MiB (VmRSS at the end {:.1} MiB)",
                        mib(r.hwm),
                        mib(r.rss)
                    ),
                ),
                if a.sink == SinkKind::Null {
                    row(
                        "sink received (compressed)",
                        format!(
                            "{:.1} MiB in {} requests ({:.1}x smaller than the file)",
                            mib(r.sink_bytes),
                            r.sink_requests,
                            bytes as f64 / r.sink_bytes.max(1) as f64
                        ),
                    )
                } else {
                    row(
                        "collector received (decompressed)",
                        format!("{:.1} MiB", mib(r.sink_bytes)),
                    )
                },
                row(
                    "agent threads (CPU s)",
                    r.threads
                        .iter()
                        .map(|(n, s)| format!("{n} {s:.1}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ],
        );
        runs.push(r);
    }
    let secs: Vec<f64> = runs.iter().map(|r| r.secs).collect();
    let med_secs = median(&secs);
    let mibps: Vec<f64> = runs.iter().map(|r| mib(bytes) / r.secs).collect();
    let med_mibps = median(&mibps);
    let med_hwm = median(&runs.iter().map(|r| mib(r.hwm)).collect::<Vec<_>>());
    let max_hwm = runs.iter().map(|r| mib(r.hwm)).fold(0.0, f64::max);
    let med_cpu = median(&runs.iter().map(|r| r.cpu_secs).collect::<Vec<_>>());
    let med_cores = median(&runs.iter().map(|r| r.cpu_secs / r.secs).collect::<Vec<_>>());
    let med_sink = median(&runs.iter().map(|r| r.sink_bytes as f64).collect::<Vec<_>>());
    let met = med_mibps >= 80.0 && max_hwm <= 64.0;
    table(
        &format!("median of {} runs", runs.len()),
        &[
            row("file", format!("{:.1} MiB, {lines} lines", mib(bytes))),
            row(
                "throughput",
                format!(
                    "{med_mibps:.1} MiB/s ({:.0} lines/s); runs {}",
                    lines as f64 / med_secs,
                    mibps
                        .iter()
                        .map(|v| format!("{v:.1}"))
                        .collect::<Vec<_>>()
                        .join(" / ")
                ),
            ),
            row("agent CPU", format!("{med_cpu:.1} s, {med_cores:.2} cores")),
            row(
                "agent peak RSS",
                format!("{med_hwm:.1} MiB (max {max_hwm:.1})"),
            ),
            row("sink bytes", format!("{:.1} MiB", med_sink / 1048576.0)),
            row(
                "peer (published, not measured here)",
                "Vector 76.7 MiB/s at 188 MiB RSS on 2 vCPUs",
            ),
            row("ratio to Vector", format!("{:.2}x", med_mibps / 76.7)),
            row(
                "goal >= 80 MiB/s within 64 MiB RSS",
                if met { "met" } else { "missed" },
            ),
        ],
    );
    Ok(serde_json::json!({
        "bench": "agent-throughput",
        "sink": format!("{:?}", a.sink).to_lowercase(),
        "settings": settings.json(),
        "file_mib": mib(bytes),
        "file_bytes": bytes,
        "lines": lines,
        "runs": runs.iter().map(|r| serde_json::json!({
            "secs": r.secs,
            "mib_per_s": mib(bytes) / r.secs,
            "lines_per_s": lines as f64 / r.secs,
            "cpu_secs": r.cpu_secs,
            "cpu_cores": r.cpu_secs / r.secs,
            "peak_rss_mib": mib(r.hwm),
            "end_rss_mib": mib(r.rss),
            "sink_bytes": r.sink_bytes,
            "sink_requests": r.sink_requests,
            "load_before": r.load_before,
        })).collect::<Vec<_>>(),
        "median_mib_per_s": med_mibps,
        "median_lines_per_s": lines as f64 / med_secs,
        "median_secs": med_secs,
        "median_cpu_secs": med_cpu,
        "median_cpu_cores": med_cores,
        "median_peak_rss_mib": med_hwm,
        "max_peak_rss_mib": max_hwm,
        "median_sink_bytes": med_sink,
        "load_at_start": load,
        "load_waited_secs": waited,
        "load_after": util::load(),
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "peer": {"name": "vector", "published": true, "mib_per_s": 76.7, "rss_mib": 188},
        "ratio_to_vector": med_mibps / 76.7,
        "goal_met": met,
    }))
}

fn warm_cache(file: &Path) -> Result<()> {
    use std::io::Read;
    let mut f = std::fs::File::open(file).context("open the log file")?;
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf).context("read the log file")? > 0 {}
    Ok(())
}

/// The sink of one run.
enum Sink {
    Null(NullSink),
    Collector(util::Running, tempfile::TempDir),
}

impl Sink {
    fn start(kind: SinkKind) -> Result<Sink> {
        Ok(match kind {
            SinkKind::Null => Sink::Null(NullSink::start()?),
            SinkKind::Collector => {
                let dir = util::temp_dir("skein-bench-agent-collector")?;
                let running = util::Running::start(util::bench_config(dir.path(), 500))?;
                Sink::Collector(running, dir)
            }
        })
    }

    fn addr(&self) -> std::net::SocketAddr {
        match self {
            Sink::Null(s) => s.addr,
            Sink::Collector(r, _) => r.bound.otlp_http,
        }
    }

    /// (bytes, requests): the null sink's compressed bodies; the collector's
    /// `skein_received_bytes_total{signal="logs"}` (after decompression) and no request count.
    fn counts(&self, client: &reqwest::blocking::Client) -> (u64, u64) {
        match self {
            Sink::Null(s) => (
                s.bytes(),
                s.counts.requests.load(std::sync::atomic::Ordering::Relaxed),
            ),
            Sink::Collector(r, _) => {
                let text = scrape(client, &r.bound.api.to_string()).unwrap_or_default();
                (
                    crate::agent_util::metric_value(
                        &text,
                        "skein_received_bytes_total",
                        "signal=\"logs\"",
                    ) as u64,
                    0,
                )
            }
        }
    }

    fn stop(self) -> Result<()> {
        match self {
            Sink::Null(s) => s.stop(),
            Sink::Collector(r, dir) => {
                r.stop()?;
                drop(dir);
            }
        }
        Ok(())
    }
}

fn one_run(a: &ThroughputArgs, s: &AgentSettings, file: &Path, lines: u64) -> Result<Run> {
    let dir = util::temp_dir("skein-bench-agent")?;
    let sink = Sink::start(a.sink)?;
    let config = write_config(dir.path(), sink.addr(), file, s)?;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("HTTP client")?;
    let load_before = util::load();
    let mut agent = AgentProc::start(&a.skein, &config, &dir.path().join("agent.log"))?;
    let t0 = agent.ready_at;
    let mut last = (0u64, Instant::now());
    let t1 = loop {
        std::thread::sleep(Duration::from_millis(100));
        let text = agent.scrape(&client)?;
        let sent = logs_sent(&text);
        if sent >= lines {
            break Instant::now();
        }
        if sent != last.0 {
            last = (sent, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(a.stall_secs) {
            let log = std::fs::read_to_string(&agent.log).unwrap_or_default();
            bail!(
                "stalled: {sent} of {lines} lines acknowledged, none for {} s; agent log:\n{}",
                a.stall_secs,
                log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
            );
        }
    };
    let st = agent.stat()?;
    let mut threads: Vec<(String, f64)> = thread_stats(agent.pid)
        .into_iter()
        .map(|(n, (c, _))| (n, c))
        .filter(|(_, c)| *c >= 0.05)
        .collect();
    threads.sort_by(|x, y| y.1.total_cmp(&x.1));
    let (sink_bytes, sink_requests) = sink.counts(&client);
    agent.stop()?;
    sink.stop()?;
    Ok(Run {
        secs: (t1 - t0).as_secs_f64(),
        cpu_secs: st.cpu_secs,
        hwm: st.hwm,
        rss: st.rss,
        sink_bytes,
        sink_requests,
        load_before,
        threads,
    })
}
