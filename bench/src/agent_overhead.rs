//! `agent-overhead`: what `skein agent` costs on a host in steady state, next to Prometheus'
//! node_exporter measured in the same run. The agent tails a file that a writer thread
//! appends JSON lines to (1,000 lines/s, a batch every 100 ms), samples host metrics every
//! 10 s and ships to a null sink; node_exporter is scraped every 10 s. Both processes' CPU
//! (utime + stime over the window) and memory (VmRSS at the end, VmHWM) come from `/proc`.

use crate::agent_util::{
    AgentProc, AgentSettings, LineGen, NullSink, ProcStat, logs_sent, mib, proc_stat, scrape,
    thread_stats, wait_quiet, write_config,
};
use crate::util::{self, row, table};
use anyhow::{Context, Result, bail};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Options of `agent-overhead`.
#[derive(Debug, Args)]
pub struct OverheadArgs {
    /// The `skein` binary.
    #[arg(long, default_value = "target/release/skein")]
    pub skein: PathBuf,
    /// Length of the measured window in seconds.
    #[arg(long, default_value_t = 60)]
    pub secs: u64,
    /// Seconds after start before the window opens (start-up is not steady state).
    #[arg(long, default_value_t = 10)]
    pub warmup_secs: u64,
    /// Lines per second appended to the tailed file (in batches every 100 ms).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// The agent's `[host_metrics] interval`.
    #[arg(long, default_value = "10s")]
    pub host_metrics_interval: String,
    /// The node_exporter binary (Debian's `prometheus-node-exporter`).
    #[arg(long, default_value = "/usr/bin/prometheus-node-exporter")]
    pub node_exporter: PathBuf,
    /// Where node_exporter listens.
    #[arg(long, default_value = "127.0.0.1:19100")]
    pub node_exporter_listen: String,
    /// Seconds between scrapes of node_exporter.
    #[arg(long, default_value_t = 10)]
    pub scrape_secs: u64,
    /// Before starting, wait until the 1-minute load is below this (0: do not wait).
    #[arg(long, default_value_t = 0.8)]
    pub max_load: f64,
    /// Longest wait for that, in seconds.
    #[arg(long, default_value_t = 600)]
    pub load_wait_secs: u64,
}

/// A child process killed when dropped.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs the benchmark; returns the results line.
pub fn run(a: OverheadArgs) -> Result<serde_json::Value> {
    if !a.skein.exists() {
        bail!(
            "{} not found: build it with cargo build --release (or pass --skein)",
            a.skein.display()
        );
    }
    if !a.node_exporter.exists() {
        bail!(
            "{} not found: apt-get install -y prometheus-node-exporter (or pass --node-exporter)",
            a.node_exporter.display()
        );
    }
    let (load, waited) = wait_quiet(a.max_load, Duration::from_secs(a.load_wait_secs));
    let load_start = util::load();
    println!(
        "load before the run: {load_start} (waited {waited:.0} s for < {})",
        a.max_load
    );
    let dir = util::temp_dir("skein-bench-overhead")?;
    let file = dir.path().join("app.log");
    std::fs::write(&file, b"").context("create the tailed file")?;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("HTTP client")?;

    let sink = NullSink::start()?;
    let settings = AgentSettings {
        host_metrics_interval: Some(a.host_metrics_interval.clone()),
        ..AgentSettings::default()
    };
    let config = write_config(dir.path(), sink.addr, &file, &settings)?;
    let mut agent = AgentProc::start(&a.skein, &config, &dir.path().join("agent.log"))?;

    let ne_log = std::fs::File::create(dir.path().join("node_exporter.log"))
        .context("create node_exporter.log")?;
    let ne_log2 = ne_log.try_clone().context("clone node_exporter.log")?;
    let ne = Kid(Command::new(&a.node_exporter)
        .arg(format!("--web.listen-address={}", a.node_exporter_listen))
        .stdin(Stdio::null())
        .stdout(Stdio::from(ne_log))
        .stderr(Stdio::from(ne_log2))
        .spawn()
        .with_context(|| format!("start {}", a.node_exporter.display()))?);
    let ne_pid = ne.0.id();
    let ne_version = Command::new(&a.node_exporter)
        .arg("--version")
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            s.lines().next().unwrap_or_default().to_string()
        })
        .unwrap_or_default();
    let t = Instant::now();
    loop {
        if scrape(&client, &a.node_exporter_listen).is_ok() {
            break;
        }
        if t.elapsed() > Duration::from_secs(15) {
            let log =
                std::fs::read_to_string(dir.path().join("node_exporter.log")).unwrap_or_default();
            bail!(
                "node_exporter did not answer on {} within 15 s:\n{log}",
                a.node_exporter_listen
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // The writer: rate/10 lines every 100 ms, on a fixed schedule.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written, file) = (stop.clone(), written.clone(), file.clone());
        let per_tick = (a.rate / 10).max(1);
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || -> Result<()> {
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&file)
                    .context("open the tailed file")?;
                let mut g = LineGen::new(7).at_now();
                let mut buf = Vec::with_capacity(per_tick as usize * 256);
                let start = Instant::now();
                let mut tick = 0u64;
                while !stop.load(Ordering::Acquire) {
                    buf.clear();
                    for _ in 0..per_tick {
                        g.line(&mut buf);
                    }
                    f.write_all(&buf).context("append to the tailed file")?;
                    written.fetch_add(per_tick, Ordering::Release);
                    tick += 1;
                    let next = start + Duration::from_millis(100 * tick);
                    if let Some(d) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(d);
                    }
                }
                Ok(())
            })
            .context("spawn the writer")?
    };
    // The scraper of node_exporter: GET /metrics every scrape_secs, whole body read.
    let scrapes = Arc::new(AtomicU64::new(0));
    let scrape_bytes = Arc::new(AtomicU64::new(0));
    let scraper = {
        let (stop, scrapes, scrape_bytes) = (stop.clone(), scrapes.clone(), scrape_bytes.clone());
        let (addr, every, client) = (
            a.node_exporter_listen.clone(),
            Duration::from_secs(a.scrape_secs.max(1)),
            client.clone(),
        );
        std::thread::Builder::new()
            .name("ne-scraper".into())
            .spawn(move || {
                let start = Instant::now();
                let mut n = 0u32;
                while !stop.load(Ordering::Acquire) {
                    if let Ok(body) = scrape(&client, &addr) {
                        scrapes.fetch_add(1, Ordering::Relaxed);
                        scrape_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                    }
                    n += 1;
                    let next = start + every * n;
                    while Instant::now() < next && !stop.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            })
            .context("spawn the scraper")?
    };

    std::thread::sleep(Duration::from_secs(a.warmup_secs));
    let a0 = agent.stat()?;
    let n0 = proc_stat(ne_pid)?;
    let th0 = thread_stats(agent.pid);
    let (s0, w0, sc0) = (
        sink.counts.requests.load(Ordering::Relaxed),
        written.load(Ordering::Acquire),
        scrapes.load(Ordering::Relaxed),
    );
    let w_start = Instant::now();
    let mut loads = vec![util::load()];
    while w_start.elapsed() < Duration::from_secs(a.secs) {
        let left = Duration::from_secs(a.secs).saturating_sub(w_start.elapsed());
        std::thread::sleep(left.min(Duration::from_secs(10)));
        loads.push(util::load());
    }
    let a1 = agent.stat()?;
    let n1 = proc_stat(ne_pid)?;
    let th1 = thread_stats(agent.pid);
    let wall = w_start.elapsed().as_secs_f64();
    let (s1, w1, sc1) = (
        sink.counts.requests.load(Ordering::Relaxed),
        written.load(Ordering::Acquire),
        scrapes.load(Ordering::Relaxed),
    );

    stop.store(true, Ordering::Release);
    let writer_result = writer.join();
    let _ = scraper.join();
    match writer_result {
        Ok(r) => r?,
        Err(_) => bail!("the writer thread panicked"),
    }
    // Everything written must arrive (the batcher waits up to batch.max_wait).
    let total = written.load(Ordering::Acquire);
    let t = Instant::now();
    let mut sent = 0;
    while t.elapsed() < Duration::from_secs(15) {
        sent = logs_sent(&agent.scrape(&client)?);
        if sent >= total {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let agent_stop = agent.stop()?;
    drop(ne);
    sink.stop();

    let pct = |b: &ProcStat, e: &ProcStat| (e.cpu_secs - b.cpu_secs) / wall * 100.0;
    let (agent_pct, ne_pct) = (pct(&a0, &a1), pct(&n0, &n1));
    let csw = |b: &ProcStat, e: &ProcStat| (e.ctx_switches - b.ctx_switches) as f64 / wall;
    let mut threads: Vec<(String, f64, f64)> = th1
        .iter()
        .map(|(n, (c, x))| {
            let (c0, x0) = th0.get(n).copied().unwrap_or((0.0, 0));
            (n.clone(), (c - c0) / wall * 100.0, (x - x0) as f64 / wall)
        })
        .filter(|(_, c, x)| *c > 0.0 || *x > 0.5)
        .collect();
    threads.sort_by(|x, y| y.1.total_cmp(&x.1).then(y.2.total_cmp(&x.2)));
    let cpu_met = agent_pct <= 2.0;
    let rss_met = a1.rss <= n1.rss;
    table(
        &format!(
            "steady state over {wall:.1} s ({} lines/s written, host metrics every {}, node_exporter scraped every {} s)",
            a.rate, a.host_metrics_interval, a.scrape_secs
        ),
        &[
            row("", "skein agent | node_exporter | agent / node_exporter"),
            row(
                "CPU, % of one core",
                format!(
                    "{agent_pct:.2} % | {ne_pct:.2} % | {:.2}x",
                    agent_pct / ne_pct.max(1e-9)
                ),
            ),
            row(
                "RSS at the end (VmRSS)",
                format!(
                    "{:.1} MiB | {:.1} MiB | {:.2}x",
                    mib(a1.rss),
                    mib(n1.rss),
                    a1.rss as f64 / n1.rss.max(1) as f64
                ),
            ),
            row(
                "peak RSS (VmHWM)",
                format!(
                    "{:.1} MiB | {:.1} MiB | {:.2}x",
                    mib(a1.hwm),
                    mib(n1.hwm),
                    a1.hwm as f64 / n1.hwm.max(1) as f64
                ),
            ),
            row(
                "context switches/s (all threads)",
                format!("{:.1} | {:.1}", csw(&a0, &a1), csw(&n0, &n1)),
            ),
            row(
                "work in the window",
                format!(
                    "{} lines written, {} requests to the sink | {} scrapes ({:.0} KiB each)",
                    w1 - w0,
                    s1 - s0,
                    sc1 - sc0,
                    scrape_bytes.load(Ordering::Relaxed) as f64
                        / 1024.0
                        / scrapes.load(Ordering::Relaxed).max(1) as f64
                ),
            ),
            row(
                "all lines shipped",
                format!("{sent} of {total} acknowledged; agent stopped in {agent_stop:.2?}"),
            ),
            row("load during the window", loads.join(" | ")),
            row("node_exporter", &ne_version),
            row(
                "goal: agent <= 2 % of a core",
                if cpu_met { "met" } else { "missed" },
            ),
            row(
                "goal: agent RSS <= node_exporter's",
                if rss_met { "met" } else { "missed" },
            ),
        ],
    );
    table(
        "agent threads over the window (CPU % of a core, context switches/s)",
        &threads
            .iter()
            .map(|(n, c, x)| row(n, format!("{c:.2} %  {x:.1}/s")))
            .collect::<Vec<_>>(),
    );
    if sent < total {
        bail!(
            "the agent acknowledged only {sent} of {total} lines within 15 s of the writer stopping"
        );
    }
    Ok(serde_json::json!({
        "bench": "agent-overhead",
        "window_secs": wall,
        "rate_lines_per_s": a.rate,
        "host_metrics_interval": a.host_metrics_interval,
        "scrape_secs": a.scrape_secs,
        "agent": {
            "cpu_pct": agent_pct,
            "rss_mib": mib(a1.rss),
            "hwm_mib": mib(a1.hwm),
            "ctx_switches_per_s": csw(&a0, &a1),
            "threads": threads.iter().map(|(n, c, x)| serde_json::json!({"name": n, "cpu_pct": c, "ctx_per_s": x})).collect::<Vec<_>>(),
        },
        "node_exporter": {
            "version": ne_version,
            "cpu_pct": ne_pct,
            "rss_mib": mib(n1.rss),
            "hwm_mib": mib(n1.hwm),
            "ctx_switches_per_s": csw(&n0, &n1),
            "scrapes": sc1 - sc0,
        },
        "cpu_ratio": agent_pct / ne_pct.max(1e-9),
        "rss_ratio": a1.rss as f64 / n1.rss.max(1) as f64,
        "lines_written": total,
        "lines_acknowledged": sent,
        "load_at_start": load,
        "load_waited_secs": waited,
        "loads": loads,
        "goal_cpu_met": cpu_met,
        "goal_rss_met": rss_met,
    }))
}
