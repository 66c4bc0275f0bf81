//! `overload`: the real `skein collector` (a child process) offered three times the ingest it
//! sustains, over OTLP/HTTP (protobuf) and OTLP/gRPC at once from many clients.
//!
//! 1. A closed loop of `--clients` (half HTTP, half gRPC) finds the rate it acknowledges.
//! 2. An open loop offers `--factor` times that rate on a fixed schedule for `--secs`, whatever
//!    the answers, while correlation lookups (`GET /api/v1/traces/{key}`) run at a steady rate
//!    and the collector's RSS is read every 100 ms.
//! 3. The load stops; one batch every 100 ms until one is acknowledged gives the recovery
//!    time; lookups run again for `--after-secs`.
//! 4. Every acknowledged batch is looked up by its key: each of its records must be there
//!    exactly once. Anything lost or doubled makes the command fail.
//!
//! Answers are counted by status, and every refusal meant to be retried (429, 503,
//! RESOURCE_EXHAUSTED, UNAVAILABLE) is checked for `Retry-After` or `google.rpc.RetryInfo`.

mod load;
mod probe;
mod records;
mod verify;

use crate::metrics_ingest::CollectorProc;
use crate::util::{self, row, table};
use anyhow::{Context, Result, bail};
use load::{Client, Shared, Tally};
use probe::{Lookups, RssSampler};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Options of `overload`.
#[derive(Debug, Clone, clap::Args)]
pub struct OverloadArgs {
    /// The `skein` binary (build it with `cargo build --workspace --release`).
    #[arg(long, default_value = "target/release/skein")]
    pub skein: PathBuf,
    /// Log records per export request.
    #[arg(long, default_value_t = 200)]
    pub batch: usize,
    /// Clients, half OTLP/HTTP and half OTLP/gRPC, each with its own connections.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Seconds of the closed loop that finds the sustained rate (the first 5 are not counted).
    #[arg(long, default_value_t = 30)]
    pub calibrate_secs: u64,
    /// Skip the closed loop and take this as the sustained rate, records/s.
    #[arg(long)]
    pub sustained: Option<f64>,
    /// Offered rate over the sustained rate.
    #[arg(long, default_value_t = 3.0)]
    pub factor: f64,
    /// Seconds of overload.
    #[arg(long, default_value_t = 60)]
    pub secs: u64,
    /// Requests in flight at most in the open loop; a request due past it is not sent.
    #[arg(long, default_value_t = 2000)]
    pub max_inflight: usize,
    /// Correlation lookups per second while overloaded and after.
    #[arg(long, default_value_t = 20.0)]
    pub lookup_rate: f64,
    /// Seconds of lookups after the collector recovered.
    #[arg(long, default_value_t = 20)]
    pub after_secs: u64,
    /// `limits.memory_budget_mb` of the collector.
    #[arg(long, default_value_t = 256)]
    pub memory_budget_mb: u64,
    /// `limits.memory_limit_mb` of the collector: the limit its heap (RssAnon) is held to.
    #[arg(long, default_value_t = 1536)]
    pub memory_limit_mb: u64,
    /// `index.writer_memory_mb` of the collector (the spans writer gets half).
    #[arg(long, default_value_t = 256)]
    pub writer_memory_mb: u64,
    /// `metrics.cache_mb` of the collector.
    #[arg(long, default_value_t = 256)]
    pub cache_mb: u64,
    /// Keep the data dir and the collector's log here instead of a temporary folder.
    #[arg(long)]
    pub keep: Option<PathBuf>,
}

/// The collector's config: the memory limits, no alert rules (the repository's `alerts/`
/// would be read from the working directory otherwise).
fn write_config(dir: &std::path::Path, a: &OverloadArgs) -> Result<PathBuf> {
    let p = dir.join("collector.toml");
    let text = format!(
        "[limits]\nmemory_budget_mb = {}\nmemory_limit_mb = {}\n\n[index]\nwriter_memory_mb = {}\n\n[metrics]\ncache_mb = {}\n\n[alerts]\nrules = []\n",
        a.memory_budget_mb, a.memory_limit_mb, a.writer_memory_mb, a.cache_mb
    );
    std::fs::write(&p, text).with_context(|| format!("write {}", p.display()))?;
    Ok(p)
}

/// Waits until `skein_indexed_records_total{signal="logs"}` is at least `target` and has not
/// moved for 3 s (up to 10 minutes); returns the count.
async fn settle(api: &str, target: u64) -> Result<u64> {
    let c = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    let (mut last, mut since) = (u64::MAX, Instant::now());
    loop {
        let n = util::metric(&c, api, "skein_indexed_records_total", "logs").await?;
        if n != last {
            (last, since) = (n, Instant::now());
        }
        if n >= target && since.elapsed() >= Duration::from_secs(3) {
            return Ok(n);
        }
        if Instant::now() > deadline {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn fmt_lookups(v: &serde_json::Value) -> String {
    let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} lookups; {}",
        f("p50_ms"),
        f("p99_ms"),
        f("max_ms"),
        v["count"],
        v["by_status"]
    )
}

/// Runs the benchmark.
pub fn run(a: OverloadArgs) -> Result<serde_json::Value> {
    if a.clients < 2 || a.batch == 0 {
        bail!("--clients must be at least 2 and --batch at least 1");
    }
    let tmp = util::temp_dir("skein-bench-overload-")?;
    let dir = a.keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let config = write_config(&dir, &a)?;
    let data = dir.join("data");
    let log = dir.join("collector.log");
    let col = CollectorProc::start(&a.skein, &data, Some(&config), &log)?;
    let rt = util::client_runtime()?;
    let r = rt.block_on(overload(&a, &col));
    let stop = col.stop();
    if let Err(e) = &stop {
        println!("collector stop: {e:#}");
    }
    let (mut out, failed) = r?;
    out["collector_log"] = log.display().to_string().into();
    if failed {
        println!("\n{}", serde_json::to_string(&out)?);
        bail!("acknowledged records are missing or stored more than once (see the table)");
    }
    Ok(out)
}

async fn overload(a: &OverloadArgs, col: &CollectorProc) -> Result<(serde_json::Value, bool)> {
    let load_start = util::load();
    let idle_rss = probe::rss(col.pid).unwrap_or_default();
    let rss = RssSampler::start(col.pid);
    let shared = Arc::new(Shared::new(a.batch, records::bodies(4096)));
    let half = a.clients / 2;
    let mut clients = Client::http(&col.otlp, half)?;
    clients.extend(Client::grpc(&col.grpc, a.clients - half).await?);

    // 1. The sustained rate.
    let cal = Arc::new(Tally::default());
    let t_cal = Instant::now();
    let sustained = match a.sustained {
        Some(s) => s,
        None => {
            let secs = Duration::from_secs(a.calibrate_secs.max(6));
            load::closed_loop(&clients, &shared, &cal, Duration::from_secs(5), secs).await
        }
    };
    let t_cal_end = Instant::now();
    println!(
        "sustained: {sustained:.0} records/s acknowledged by {} closed-loop clients",
        a.clients
    );
    // Let the queues drain before the overload starts.
    let acked_so_far = shared.acked_ids().len() as u64 * a.batch as u64;
    settle(&col.api, acked_so_far).await?;

    // 2. The overload, with lookups.
    let offered = sustained * a.factor;
    let req_rate = offered / a.batch as f64;
    let over = Arc::new(Tally::default());
    let look_over = Arc::new(Lookups::new()?);
    let stop_look = Arc::new(AtomicBool::new(false));
    let lookups = tokio::spawn(probe::lookups(
        col.api.clone(),
        shared.clone(),
        look_over.clone(),
        a.lookup_rate,
        Duration::from_secs(5),
        stop_look.clone(),
    ));
    let load_mid = Arc::new(std::sync::Mutex::new(String::new()));
    let lm = load_mid.clone();
    let mid = Duration::from_secs(a.secs / 2);
    let half_way = tokio::spawn(async move {
        tokio::time::sleep(mid).await;
        if let Ok(mut s) = lm.lock() {
            *s = format!(
                "{}, CPU pressure (some, avg10) {:.0} %",
                util::load(),
                probe::cpu_pressure().unwrap_or(0.0)
            );
        }
    });
    let q0 = probe::query_seconds(&col.api, "trace").await?;
    let e0 = probe::ingest_errors(&col.api).await?;
    let cpu0 = Cpu::now(col.pid);
    let t_over = Instant::now();
    let inflight = load::open_loop(
        &clients,
        &shared,
        &over,
        req_rate,
        Duration::from_secs(a.secs),
        a.max_inflight,
    )
    .await;
    let t_over_end = Instant::now();
    let cpu = Cpu::now(col.pid).since(&cpu0);
    let q1 = probe::query_seconds(&col.api, "trace").await?;
    let reasons: std::collections::BTreeMap<String, u64> = probe::ingest_errors(&col.api)
        .await?
        .into_iter()
        .map(|(k, v)| {
            let d = v.saturating_sub(e0.get(&k).copied().unwrap_or(0));
            (k, d)
        })
        .filter(|(_, d)| *d > 0)
        .collect();
    let server_trace_ms = if q1.1 > q0.1 {
        (q1.0 - q0.0) * 1000.0 / (q1.1 - q0.1)
    } else {
        0.0
    };
    half_way.abort();
    stop_look.store(true, Ordering::Relaxed);

    // 3. Recovery: one batch every 100 ms until one is acknowledged, while the overload's
    // last requests are still being answered.
    let rec = Arc::new(Tally::default());
    let probe_client = Client::http(&col.otlp, 1)?;
    let mut recovered = None;
    while t_over_end.elapsed() < Duration::from_secs(600) {
        if load::send_batch(&probe_client[0], &shared, &rec).await == load::Outcome::Acked {
            recovered = Some(t_over_end.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let grpc_after = load::send_batch(&clients[a.clients - 1], &shared, &rec).await;
    for t in inflight {
        let _ = t.await;
    }
    let t_drained = Instant::now();
    let _ = lookups.await;

    // Lookups after the overload.
    let look_after = Arc::new(Lookups::new()?);
    let stop_after = Arc::new(AtomicBool::new(false));
    let after = tokio::spawn(probe::lookups(
        col.api.clone(),
        shared.clone(),
        look_after.clone(),
        a.lookup_rate,
        Duration::from_secs(5),
        stop_after.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(a.after_secs)).await;
    stop_after.store(true, Ordering::Relaxed);
    let _ = after.await;
    let samples = rss.finish();

    // 4. Exactly once.
    let acked = shared.acked_ids();
    let unknown = shared.unknown_ids();
    let acked_records = acked.len() as u64 * a.batch as u64;
    let t_settle = Instant::now();
    let indexed = settle(&col.api, acked_records).await?;
    let settle_secs = t_settle.elapsed().as_secs_f64();
    let found = verify::check(&col.api, &acked, a.batch, 2).await?;
    let found_unknown = verify::check(&col.api, &unknown, a.batch, 2).await?;
    let final_rss = probe::rss(col.pid).unwrap_or_default();
    let hwm = crate::agent_util::proc_stat(col.pid)
        .map(|s| s.hwm)
        .unwrap_or(0);

    let peak_cal = probe::peak(&samples, t_cal, t_cal_end);
    let peak_over = probe::peak(&samples, t_over, t_drained);
    let peak_all = probe::peak(
        &samples,
        t_cal,
        samples.last().map(|(t, _)| *t).unwrap_or(t_cal),
    );
    let budget = a.memory_limit_mb * 1024 * 1024;
    let over_secs = (t_over_end - t_over).as_secs_f64();
    let over_acked = over.acked_records.load(Ordering::Relaxed);
    let lo = look_over.summary();
    let la = look_after.summary();
    let hinted = over.hinted.load(Ordering::Relaxed) + rec.hinted.load(Ordering::Relaxed);
    let unhinted = over.unhinted.load(Ordering::Relaxed) + rec.unhinted.load(Ordering::Relaxed);
    let failed = found.missing > 0 || found.extra_copies > 0 || found.truncated > 0;
    let lookup_p99_ok = lo["p99_ms"].as_f64().unwrap_or(f64::MAX) <= 100.0;

    let rows = vec![
        row(
            "collector",
            format!("{} (pid {})", a.skein.display(), col.pid),
        ),
        row(
            "load average (1/5/15 min) at start / half way / end",
            format!(
                "{load_start} / {} / {}",
                load_mid.lock().map(|s| s.clone()).unwrap_or_default(),
                util::load()
            ),
        ),
        row(
            "sustained (closed loop)",
            format!(
                "{sustained:.0} records/s ({} clients, {} records a request)",
                a.clients, a.batch
            ),
        ),
        row(
            "offered (open loop)",
            format!(
                "{offered:.0} records/s = {req_rate:.0} requests/s for {over_secs:.0} s (x{})",
                a.factor
            ),
        ),
        row(
            "sent / not sent (client cap)",
            format!(
                "{} / {} requests",
                over.sent.load(Ordering::Relaxed),
                over.skipped.load(Ordering::Relaxed)
            ),
        ),
        row(
            "acknowledged while overloaded",
            format!(
                "{over_acked} records = {:.0} records/s",
                over_acked as f64 / over_secs
            ),
        ),
        row("answers while overloaded", format!("{:?}", over.statuses())),
        row(
            "  the collector's reasons (skein_ingest_errors_total)",
            format!("{reasons:?}"),
        ),
        row(
            "refusals to retry with / without a retry hint",
            format!("{hinted} / {unhinted} (Retry-After on HTTP, RetryInfo on gRPC)"),
        ),
        row(
            "VmRSS idle / peak calibrating / peak overloaded / end",
            format!(
                "{:.0} / {:.0} / {:.0} / {:.0} MiB (VmHWM {:.0} MiB)",
                mib(idle_rss.all),
                mib(peak_cal.all),
                mib(peak_over.all),
                mib(final_rss.all),
                mib(hwm)
            ),
        ),
        row(
            "  RssAnon (heap; the rest is mapped index files)",
            format!(
                "{:.0} / {:.0} / {:.0} / {:.0} MiB",
                mib(idle_rss.anon),
                mib(peak_cal.anon),
                mib(peak_over.anon),
                mib(final_rss.anon),
            ),
        ),
        row(
            "memory limit (limits.memory_limit_mb; memory_budget_mb, writer_memory_mb, cache_mb)",
            format!(
                "{} MiB ({}, {}, {}): peak VmRSS {}, peak RssAnon {}",
                a.memory_limit_mb,
                a.memory_budget_mb,
                a.writer_memory_mb,
                a.cache_mb,
                if peak_all.all <= budget {
                    "under it"
                } else {
                    "OVER it"
                },
                if peak_all.anon <= budget {
                    "under it"
                } else {
                    "OVER it"
                },
            ),
        ),
        row(
            "CPU while overloaded (machine: 2 cores)",
            format!(
                "machine busy {:.2} cores: collector {:.2}, this bench {:.2}, others {:.2}",
                cpu.machine,
                cpu.collector,
                cpu.bench,
                (cpu.machine - cpu.collector - cpu.bench).max(0.0)
            ),
        ),
        row("  collector CPU by thread (cores)", cpu.threads_text()),
        row(
            "  collector threads on a CPU / waiting for one (s)",
            cpu.sched_text(),
        ),
        row("lookups while overloaded", fmt_lookups(&lo)),
        row(
            "  of which inside the handler (skein_query_seconds, mean)",
            format!(
                "{server_trace_ms:.1} ms (client-side mean {:.1} ms)",
                lo["mean_ms"].as_f64().unwrap_or(0.0)
            ),
        ),
        row(
            "lookup p99 <= 100 ms while overloaded",
            if lookup_p99_ok { "met" } else { "MISSED" },
        ),
        row("lookups after", fmt_lookups(&la)),
        row(
            "recovery (first 2xx after the load stopped)",
            match recovered {
                Some(d) => format!(
                    "{:.2} s, then gRPC {:?}; {:?}",
                    d.as_secs_f64(),
                    grpc_after,
                    rec.statuses()
                ),
                None => "NOT within 600 s".into(),
            },
        ),
        row(
            "indexed (skein_indexed_records_total) when settled",
            format!("{indexed} records, {settle_secs:.1} s after the lookups ended"),
        ),
        row(
            "acknowledged batches / records",
            format!("{} / {acked_records}", acked.len()),
        ),
        row(
            "found exactly once / missing / extra copies",
            format!(
                "{} / {} / {} (truncated lookups {})",
                found.once, found.missing, found.extra_copies, found.truncated
            ),
        ),
        row(
            "unknown outcome (timeout, broken connection): batches whole / partial / absent",
            format!(
                "{} batches: {} / {} / {}",
                found_unknown.batches,
                found_unknown.whole,
                found_unknown.partial,
                found_unknown.absent
            ),
        ),
    ];
    let mut rows = rows;
    if !found.examples.is_empty() {
        rows.push(row("problems (first few)", found.examples.join("; ")));
    }
    table(
        "overload: OTLP/HTTP + OTLP/gRPC at x the sustained rate",
        &rows,
    );

    let rss_json = serde_json::json!({
            "rss_idle_bytes": idle_rss.all,
            "rss_peak_calibrating_bytes": peak_cal.all,
            "rss_peak_overloaded_bytes": peak_over.all,
            "rss_peak_bytes": peak_all.all,
            "rss_end_bytes": final_rss.all,
            "rss_anon_idle_bytes": idle_rss.anon,
            "rss_anon_peak_calibrating_bytes": peak_cal.anon,
            "rss_anon_peak_overloaded_bytes": peak_over.anon,
            "rss_anon_peak_bytes": peak_all.anon,
            "rss_anon_end_bytes": final_rss.anon,
            "rss_hwm_bytes": hwm,
            "memory_budget_mb": a.memory_budget_mb,
            "memory_limit_mb": a.memory_limit_mb,
            "writer_memory_mb": a.writer_memory_mb,
            "cache_mb": a.cache_mb,
            "rss_under_limit": peak_all.all <= budget,
            "rss_anon_under_limit": peak_all.anon <= budget,
    });
    let out = serde_json::json!({
        "bench": "overload",
        "batch": a.batch,
        "clients": a.clients,
        "factor": a.factor,
        "secs": a.secs,
        "sustained_records_per_s": sustained,
        "offered_records_per_s": offered,
        "offered_requests_per_s": req_rate,
        "calibration_statuses": cal.statuses(),
        "overload_statuses": over.statuses(),
        "overload_refusal_reasons": reasons,
        "overload_sent": over.sent.load(Ordering::Relaxed),
        "overload_skipped": over.skipped.load(Ordering::Relaxed),
        "overload_acked_records": over_acked,
        "retry_hinted": hinted,
        "retry_unhinted": unhinted,
        "rss": rss_json,
        "lookups_overloaded": lo,
        "lookup_handler_mean_ms_overloaded": server_trace_ms,
        "cpu_cores_overloaded": {
            "machine": cpu.machine,
            "collector": cpu.collector,
            "bench": cpu.bench,
            "collector_threads": cpu.threads,
            "collector_sched_run_wait_secs": cpu.sched,
        },
        "lookups_after": la,
        "lookup_p99_met": lookup_p99_ok,
        "recovery_secs": recovered.map(|d| d.as_secs_f64()),
        "recovery_statuses": rec.statuses(),
        "indexed_records": indexed,
        "acked_batches": acked.len(),
        "acked_records": acked_records,
        "found": found,
        "unknown_outcome": found_unknown,
        "load_start": load_start,
        "load_end": util::load(),
    });
    Ok((out, failed))
}

/// CPU used so far: the machine's busy jiffies, the collector's and this process's seconds,
/// the collector's per thread group.
struct Cpu {
    at: Instant,
    machine_busy: u64,
    machine_total: u64,
    collector: f64,
    bench: f64,
    threads: std::collections::BTreeMap<String, (f64, u64)>,
    sched: std::collections::BTreeMap<String, (u64, u64)>,
}

/// CPU between two [`Cpu`] readings, in cores (CPU seconds per second).
struct CpuUse {
    machine: f64,
    collector: f64,
    bench: f64,
    threads: std::collections::BTreeMap<String, f64>,
    /// Per thread group: seconds on a CPU and seconds runnable but waiting for one.
    sched: std::collections::BTreeMap<String, (f64, f64)>,
}

impl Cpu {
    fn now(pid: u32) -> Cpu {
        let (machine_busy, machine_total) = probe::machine_jiffies();
        Cpu {
            at: Instant::now(),
            machine_busy,
            machine_total,
            collector: crate::agent_util::proc_stat(pid)
                .map(|s| s.cpu_secs)
                .unwrap_or(0.0),
            bench: util::process_cpu(),
            threads: crate::agent_util::thread_stats(pid),
            sched: probe::sched_ns(pid),
        }
    }

    fn since(&self, before: &Cpu) -> CpuUse {
        let secs = (self.at - before.at).as_secs_f64().max(0.001);
        let total = (self.machine_total - before.machine_total).max(1) as f64;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get() as f64)
            .unwrap_or(2.0);
        let threads = self
            .threads
            .iter()
            .map(|(k, (c, _))| {
                let b = before.threads.get(k).map(|v| v.0).unwrap_or(0.0);
                (k.clone(), (c - b).max(0.0) / secs)
            })
            .filter(|(_, c)| *c >= 0.01)
            .collect();
        let sched = self
            .sched
            .iter()
            .map(|(k, (run, wait))| {
                let (r0, w0) = before.sched.get(k).copied().unwrap_or((0, 0));
                let ns = |a: u64, b: u64| a.saturating_sub(b) as f64 / 1e9;
                (k.clone(), (ns(*run, r0), ns(*wait, w0)))
            })
            .filter(|(_, (r, w))| r + w >= 0.05)
            .collect();
        CpuUse {
            sched,
            machine: (self.machine_busy - before.machine_busy) as f64 / total * cores,
            collector: (self.collector - before.collector) / secs,
            bench: (self.bench - before.bench) / secs,
            threads,
        }
    }
}

impl CpuUse {
    fn threads_text(&self) -> String {
        let mut v: Vec<_> = self.threads.iter().collect();
        v.sort_by(|a, b| b.1.total_cmp(a.1));
        v.iter()
            .map(|(k, c)| format!("{k} {c:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn sched_text(&self) -> String {
        let mut v: Vec<_> = self.sched.iter().collect();
        v.sort_by(|a, b| (b.1.0 + b.1.1).total_cmp(&(a.1.0 + a.1.1)));
        v.iter()
            .map(|(k, (r, w))| format!("{k} {r:.1}/{w:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
