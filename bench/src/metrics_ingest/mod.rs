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

mod collector;
mod dataset;
mod otlp;
mod send;
mod series;

pub use self::collector::{CollectorProc, tsdb_sizes};
pub(crate) use self::otlp::{gauge, point, resource_metrics};
pub use self::send::{SendReport, send_ordered};

use self::dataset::{Dataset, make_dataset};
use crate::agent_util::{median, mib, wait_quiet};
use crate::util::{self, row, table};
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
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
