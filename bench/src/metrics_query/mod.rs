//! `metrics-query`: latency of a 24 h range query over 1,000 gauge series, next to
//! Prometheus on the same samples in the same run.
//!
//! The data: `--series` series of `system.cpu.utilization` (labels `host=host-<i % 50>`,
//! `cpu=<i / 50>`), a sample every 10 s for `--hours` ending now, values a mean-reverting
//! random walk in 0..1 with 3 decimals. It is measured three ways:
//!
//! - Skein in process: the samples go into `skein_store::tsdb::Tsdb` in a temp dir (batches of
//!   about `--batch` samples in time order), `persist()` writes them to one block file, and
//!   each query is timed as the API handler runs it (`Params::parse`,
//!   `RangeQuery::from_params`, `skein_query::metrics::query::run`), without HTTP or JSON.
//! - Skein over HTTP (`--collector`, on by default): the same samples over OTLP/HTTP to a real
//!   `skein collector` process; it is restarted with `metrics.block_duration = "10s"` so that
//!   they sit in one block file as in process; then `GET /api/v1/metrics/query`, timed to the
//!   last byte of the JSON answer.
//! - Prometheus over HTTP (`--peer`, on by default): the same samples as an OpenMetrics file,
//!   `promtool tsdb create-blocks-from openmetrics`, `prometheus` on those blocks (by default
//!   after its own compaction of them), then `GET /api/v1/query_range`, timed to the last
//!   byte.
//!
//! Four queries over the whole range, step 60 s: avg; avg by host; p99; max of host-7. A
//! point of Skein at `t` aggregates every sample in `(t − 60 s, t]`; PromQL's `avg(x)` takes
//! each series' last sample at `t` instead (one of six). So Prometheus runs both the plain
//! queries and the ones that read the same samples as Skein (`avg(avg_over_time(x[59s]))`,
//! which holds the same six samples; there is none for p99), and the answers of the latter are
//! compared with Skein's. `--runs` timed runs after `--warmup` untimed ones, one at a time;
//! p50, p90, p99 and max from an HDR histogram.

mod collector;
pub(crate) mod data;
mod in_process;
pub(crate) mod measure;
mod peer;

use self::collector::via_collector;
use self::data::{Data, queries, window_ns};
use self::in_process::in_process;
use self::measure::{Timed, compare};
use self::peer::peer;
use crate::agent_util::{mib, wait_quiet};
use crate::util::{self, row, table};
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `metrics-query`.
#[derive(Debug, Args)]
pub struct MetricsQueryArgs {
    /// The `skein` binary (release build), for the run through the collector.
    #[arg(long, default_value = "target/release/skein")]
    pub skein: PathBuf,
    /// Gauge series.
    #[arg(long, default_value_t = 1000)]
    pub series: usize,
    /// Hosts (`host=host-<i % hosts>`, `cpu=<i / hosts>`).
    #[arg(long, default_value_t = 50)]
    pub hosts: usize,
    /// Hours of samples, ending now; also the query range.
    #[arg(long, default_value_t = 24)]
    pub hours: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10)]
    pub interval_secs: u64,
    /// Query step in seconds.
    #[arg(long, default_value_t = 60)]
    pub step_secs: u64,
    /// Samples per append in process (whole timestamps of every series).
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Timed runs of each query.
    #[arg(long, default_value_t = 200)]
    pub runs: usize,
    /// Untimed runs of each query before.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// In process, close and reopen the store after `persist()` before timing (a fresh
    /// process heap is not reproduced: only the store is rebuilt from its files).
    #[arg(long)]
    pub reopen: bool,
    /// Also run Skein through a real `skein collector` over HTTP.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub collector: bool,
    /// Points per OTLP request when loading the collector.
    #[arg(long, default_value_t = 10_000)]
    pub points_per_request: usize,
    /// Requests in flight when loading the collector.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Also run Prometheus (the peer).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub peer: bool,
    /// The prometheus binary (Debian's `prometheus` package).
    #[arg(long, default_value = "prometheus")]
    pub prometheus: PathBuf,
    /// The promtool binary.
    #[arg(long, default_value = "promtool")]
    pub promtool: PathBuf,
    /// Seconds to wait for Prometheus to compact the imported 2 h blocks before timing (it
    /// starts about a minute after start-up); 0 times the blocks as imported.
    #[arg(long, default_value_t = 180)]
    pub prom_compaction_wait: u64,
    /// Also time the Prometheus queries that read the same samples as Skein's.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub prom_same_samples: bool,
    /// PRNG seed of the values.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Before timing, wait until the 1-minute load is below this (0: do not wait).
    #[arg(long, default_value_t = 0.0)]
    pub max_load: f64,
    /// Longest wait for that, in seconds.
    #[arg(long, default_value_t = 600)]
    pub load_wait_secs: u64,
}

const NAME: &str = "system.cpu.utilization";
const PROM_NAME: &str = "system_cpu_utilization";

/// Runs the benchmark; returns the results line.
pub fn run(a: MetricsQueryArgs) -> Result<serde_json::Value> {
    let t = Instant::now();
    let d = Arc::new(Data::make(&a)?);
    let defs = queries(&d, a.step_secs.max(1));
    let (start, end) = window_ns(&d, &a);
    println!(
        "data: {} series × {} samples = {} samples ({} h every {} s), made in {:.1} s; query range {} h, step {} s, {} timed runs after {} warm-up runs",
        d.values.len(),
        d.n,
        d.samples(),
        a.hours,
        a.interval_secs,
        t.elapsed().as_secs_f64(),
        (end - start) / 3_600_000_000_000,
        a.step_secs,
        a.runs,
        a.warmup
    );
    let load_start = util::load();
    let (l, waited) = wait_quiet(a.max_load, Duration::from_secs(a.load_wait_secs));
    if waited > 0.0 {
        println!(
            "waited {waited:.0} s for the load ({l:.2}) to fall below {}",
            a.max_load
        );
    }
    let mut loads = vec![util::load()];
    let ours = in_process(&a, &d, &defs)?;
    loads.push(util::load());
    let http = if a.collector {
        let v = via_collector(&a, &d, &defs)?;
        loads.push(util::load());
        Some(v)
    } else {
        None
    };
    let prom = if a.peer {
        let p = peer(&a, &d, &defs)?;
        loads.push(util::load());
        Some(p)
    } else {
        None
    };

    let mut rows = vec![row(
        "",
        "p50 / p90 / p99 / max, ms: skein in process | skein over HTTP | prometheus over HTTP | prometheus, same samples",
    )];
    let mut out_q = serde_json::Map::new();
    let mut goal_in = true;
    let mut goal_http = true;
    for (i, def) in defs.iter().enumerate() {
        let f = |t: &Timed| {
            format!(
                "{:.1} / {:.1} / {:.1} / {:.1}",
                t.p(0.5),
                t.p(0.9),
                t.p(0.99),
                t.hist.max() as f64 / 1000.0
            )
        };
        let (ti, decoded) = match ours.timed.get(i) {
            Some(x) => (&x.0, x.1),
            None => bail!("missing in-process timing"),
        };
        goal_in &= ti.p(0.99) <= 50.0;
        let th = http.as_ref().and_then(|h| h.timed.get(i));
        if let Some(t) = th {
            goal_http &= t.p(0.99) <= 50.0;
        }
        let (tp, ts) = match prom.as_ref().and_then(|p| p.timed.get(i)) {
            Some((p, s)) => (Some(p), s.as_ref()),
            None => (None, None),
        };
        let dash = || "-".to_string();
        rows.push(row(
            def.key,
            format!(
                "{} | {} | {} | {}",
                f(ti),
                th.map_or_else(dash, f),
                tp.map_or_else(dash, f),
                ts.map_or_else(dash, f)
            ),
        ));
        let samples_per_s = decoded as f64 / (ti.p(0.5) / 1000.0).max(1e-9);
        let mut ratio = serde_json::Map::new();
        let mut notes = vec![format!(
            "{decoded} samples decoded, {:.0} M/s in process at p50",
            samples_per_s / 1e6
        )];
        if let Some(p) = tp {
            let r_in = p.p(0.99) / ti.p(0.99).max(1e-9);
            ratio.insert(
                "prometheus_p99_over_skein_in_process_p99".into(),
                r_in.into(),
            );
            notes.push(format!("prometheus p99 / skein in-process p99 = {r_in:.2}"));
            if let Some(h) = th {
                let r = p.p(0.99) / h.p(0.99).max(1e-9);
                ratio.insert("prometheus_p99_over_skein_http_p99".into(), r.into());
                notes.push(format!("prometheus p99 / skein HTTP p99 = {r:.2}"));
            }
        }
        if let (Some(s), Some(h)) = (ts, th) {
            let r = s.p(0.99) / h.p(0.99).max(1e-9);
            ratio.insert(
                "prometheus_same_samples_p99_over_skein_http_p99".into(),
                r.into(),
            );
            notes.push(format!("same samples: {r:.2}"));
        }
        // Answers: in process and over HTTP must agree; Prometheus on the same samples should.
        let mut check = serde_json::Map::new();
        if let Some(h) = th {
            let (diff, missing) = compare(&ti.answer, &h.answer);
            check.insert(
                "in_process_vs_http".into(),
                serde_json::json!({"max_abs_diff": diff, "points_only_in_one": missing}),
            );
            if diff > 1e-9 || missing > 0 {
                notes.push(format!(
                    "in process and HTTP answers differ: max |diff| {diff}, {missing} points only in one"
                ));
            }
        }
        if let Some(s) = ts {
            let (diff, missing) = compare(&ti.answer, &s.answer);
            check.insert(
                "skein_vs_prometheus_same_samples".into(),
                serde_json::json!({"max_abs_diff": diff, "points_only_in_one": missing}),
            );
            notes.push(format!(
                "vs prometheus same samples: max |diff| {diff:.2e}, {missing} points only in one"
            ));
        }
        rows.push(row("", notes.join("; ")));
        out_q.insert(
            def.key.into(),
            serde_json::json!({
                "skein_query": def.ours,
                "promql": def.prom,
                "promql_same_samples": def.prom_same,
                "samples_decoded": decoded,
                "samples_decoded_per_s_p50": samples_per_s,
                "skein_in_process": ti.json(),
                "skein_http": th.map(Timed::json),
                "prometheus_http": tp.map(Timed::json),
                "prometheus_same_samples_http": ts.map(Timed::json),
                "ratios": ratio,
                "answer_checks": check,
            }),
        );
    }
    let st = &ours.stats;
    rows.push(row(
        "skein block bytes per sample",
        format!(
            "{:.3} ({:.3} of chunks), in process",
            st.block_bytes as f64 / st.block_samples.max(1) as f64,
            st.block_chunk_bytes as f64 / st.block_samples.max(1) as f64
        ),
    ));
    if let Some(h) = &http {
        rows.push(row(
            "collector",
            format!(
                "loaded at {:.0} samples/s over OTLP/HTTP; restart {:.1} s; peak RSS {:.1} MiB",
                h.ingest_samples_per_s,
                h.restart_secs,
                mib(h.hwm)
            ),
        ));
    }
    if let Some(p) = &prom {
        rows.push(row(
            "prometheus",
            format!(
                "{}; {} imported blocks, {} when timed, {:.3} bytes per sample (chunks + index); peak RSS {:.1} MiB",
                p.version,
                p.blocks_imported,
                p.blocks_timed,
                p.block_bytes as f64 / d.samples().max(1) as f64,
                mib(p.hwm)
            ),
        ));
    }
    rows.push(row("load (start, then after each part)", loads.join(" | ")));
    rows.push(row(
        "goal: p99 <= 50 ms (every query)",
        format!(
            "in process {}; over HTTP {}",
            if goal_in { "met" } else { "missed" },
            if http.is_none() {
                "not run"
            } else if goal_http {
                "met"
            } else {
                "missed"
            }
        ),
    ));
    table(
        &format!(
            "{} h range query over {} series, step {} s ({} runs each; skein in process has no HTTP or JSON, the HTTP columns are timed to the last byte of the answer)",
            a.hours,
            d.values.len(),
            a.step_secs,
            a.runs
        ),
        &rows,
    );
    Ok(serde_json::json!({
        "bench": "metrics-query",
        "series": d.values.len(),
        "hours": a.hours,
        "interval_secs": a.interval_secs,
        "step_secs": a.step_secs,
        "samples": d.samples(),
        "runs": a.runs,
        "warmup": a.warmup,
        "in_process_load_secs": ours.load_secs,
        "skein_block_bytes_per_sample": st.block_bytes as f64 / st.block_samples.max(1) as f64,
        "skein_block_chunk_bytes_per_sample": st.block_chunk_bytes as f64 / st.block_samples.max(1) as f64,
        "collector": http.as_ref().map(|h| serde_json::json!({
            "ingest_secs": h.ingest_secs,
            "ingest_samples_per_s": h.ingest_samples_per_s,
            "restart_secs": h.restart_secs,
            "tsdb": h.tsdb,
            "peak_rss_mib": mib(h.hwm),
        })),
        "prometheus": prom.as_ref().map(|p| serde_json::json!({
            "version": p.version,
            "openmetrics_bytes": p.file_bytes,
            "openmetrics_write_secs": p.write_secs,
            "import_secs": p.import_secs,
            "blocks_imported": p.blocks_imported,
            "blocks_timed": p.blocks_timed,
            "block_bytes_per_sample": p.block_bytes as f64 / d.samples().max(1) as f64,
            "peak_rss_mib": mib(p.hwm),
        })),
        "queries": out_q,
        "load_at_start": load_start,
        "loads": loads,
        "goal_in_process_met": goal_in,
        "goal_http_met": http.as_ref().map(|_| goal_http),
    }))
}
