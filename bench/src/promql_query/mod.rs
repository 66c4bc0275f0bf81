//! `promql-query`: the PromQL engine's range-query speed side by side with Prometheus in one
//! run, on the same samples, with the same PromQL, start, end and step.
//!
//! The data (deterministic from `--seed`), on one grid of a sample every `--interval-secs`
//! (15) for `--hours` (24) ending at the last whole minute before now:
//!
//! - the counter `bench_requests_total`: `--x-values` × `--i-values` (10 × 100 = 1,000)
//!   series with labels `x` and `i`, rising by random whole amounts, `--resets` (10) of them
//!   reset once (back to 0);
//! - the classic histogram `bench_latency_seconds`: `_bucket` with 10 `le` values (`+Inf`
//!   included, cumulative and monotonic), `_sum` and `_count`, for `--histograms` (100)
//!   values of `i`.
//!
//! Both names are valid Prometheus names, so Skein shows them unchanged and both systems get
//! the same PromQL: `sum by (x) (rate(bench_requests_total[5m]))` and
//! `histogram_quantile(0.99, sum by (le) (rate(bench_latency_seconds_bucket[5m])))`, over
//! the whole range, step 60 s. Three ways:
//!
//! - Skein in process: the samples go into a `Tsdb` at `<data>/tsdb` (batches in time order,
//!   `persist()` to one block), and `Engine::range` is timed (no HTTP, no JSON).
//! - Skein over HTTP (`--collector`): a real `skein collector` process on `<data>` (the store
//!   just written); `GET /api/v1/query_range` timed to the last byte.
//! - Prometheus over HTTP (`--peer`): the same samples as an OpenMetrics file, `promtool tsdb
//!   create-blocks-from openmetrics`, `prometheus` on the blocks after its own compaction of
//!   them; `GET /api/v1/query_range` timed to the last byte.
//!
//! The two HTTP systems are timed in turn, one request each (`--interleave`), so that load
//! from elsewhere on the machine falls on both alike. `--runs` timed runs after `--warmup`;
//! p50, p90, p99, max from an HDR histogram. The answers are compared: same label sets, same
//! points, values within 1e-9 relative.

mod answer;
mod data;
mod skein;

use self::answer::{Agreement, compare, count, from_json};
use self::data::{Data, queries, window_ms};
use self::skein::{in_process, start_collector};
use crate::agent_util::{mib, wait_quiet};
use crate::metrics_query::data::enc;
use crate::metrics_query::measure::{Timed, get, http_client};
use crate::prom_peer::PromPeer;
use crate::util::{self, row, table};
use anyhow::{Result, anyhow};
use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `promql-query`.
#[derive(Debug, Args)]
pub struct PromqlQueryArgs {
    /// The `skein` binary (release build), for the run through the collector.
    #[arg(long, default_value = "target/release/skein")]
    pub skein: PathBuf,
    /// Values of the counter's label `x`.
    #[arg(long, default_value_t = 10)]
    pub x_values: usize,
    /// Values of the counter's label `i` (series: x-values × i-values).
    #[arg(long, default_value_t = 100)]
    pub i_values: usize,
    /// Counter series that reset once.
    #[arg(long, default_value_t = 10)]
    pub resets: usize,
    /// Label sets (`i`) of the histogram (each 10 buckets, `_sum`, `_count`).
    #[arg(long, default_value_t = 100)]
    pub histograms: usize,
    /// Hours of samples, ending at the last whole minute; also the query range.
    #[arg(long, default_value_t = 24)]
    pub hours: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 15)]
    pub interval_secs: u64,
    /// Query step in seconds.
    #[arg(long, default_value_t = 60)]
    pub step_secs: u64,
    /// The range of `rate(...[range])`, seconds.
    #[arg(long, default_value_t = 300)]
    pub range_secs: u64,
    /// Samples per append in process (whole grid times of every series).
    #[arg(long, default_value_t = 20_000)]
    pub batch: usize,
    /// Timed runs of each query in each system.
    #[arg(long, default_value_t = 200)]
    pub runs: usize,
    /// Untimed runs of each query before.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Also run Skein through a real `skein collector` over HTTP.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub collector: bool,
    /// Also run Prometheus (the peer).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub peer: bool,
    /// Time the HTTP systems in turn, one request each (false: all of Skein's runs, then all
    /// of Prometheus's).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub interleave: bool,
    /// The prometheus binary (Debian's `prometheus` package).
    #[arg(long, default_value = "prometheus")]
    pub prometheus: PathBuf,
    /// The promtool binary.
    #[arg(long, default_value = "promtool")]
    pub promtool: PathBuf,
    /// Seconds to wait for Prometheus to compact the imported 2 h blocks before timing; 0
    /// times the blocks as imported.
    #[arg(long, default_value_t = 180)]
    pub prom_compaction_wait: u64,
    /// PRNG seed of the samples.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Before timing, wait until the 1-minute load is below this (0: do not wait).
    #[arg(long, default_value_t = 0.0)]
    pub max_load: f64,
    /// Longest wait for that, in seconds.
    #[arg(long, default_value_t = 600)]
    pub load_wait_secs: u64,
}

/// Relative tolerance of the answer comparison.
const TOLERANCE: f64 = 1e-9;

/// `300` → `5m`, `90` → `90s`.
fn range_text(secs: u64) -> String {
    if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// Times `urls` in turn (`interleave`) or one after the other: the first answer of each and
/// its timings.
fn time_http(
    a: &PromqlQueryArgs,
    client: &reqwest::blocking::Client,
    urls: &[String],
) -> Result<Vec<Timed>> {
    let mut out = Vec::new();
    for url in urls {
        let first = get(client, url)?;
        let answer = from_json(&first)?;
        let (groups, points) = count(&answer);
        out.push(Timed {
            hist: util::histogram()?,
            groups,
            points,
            answer,
            bytes: first.len(),
        });
    }
    let once = |url: &str| -> Result<u64> {
        let t = Instant::now();
        get(client, url)?;
        Ok((t.elapsed().as_micros() as u64).max(1))
    };
    let mut record = |i: usize, us: u64| -> Result<()> {
        out[i]
            .hist
            .record(us)
            .map_err(|e| anyhow!("histogram: {e}"))
    };
    if a.interleave {
        for _ in 0..a.warmup {
            for u in urls {
                once(u)?;
            }
        }
        for _ in 0..a.runs {
            for (i, u) in urls.iter().enumerate() {
                record(i, once(u)?)?;
            }
        }
    } else {
        for (i, u) in urls.iter().enumerate() {
            for _ in 0..a.warmup {
                once(u)?;
            }
            for _ in 0..a.runs {
                record(i, once(u)?)?;
            }
        }
    }
    Ok(out)
}

/// `p50 / p90 / p99 / max` in ms.
fn cell(t: &Timed) -> String {
    format!(
        "{:.1} / {:.1} / {:.1} / {:.1}",
        t.p(0.5),
        t.p(0.9),
        t.p(0.99),
        t.hist.max() as f64 / 1000.0
    )
}

/// Runs the benchmark; returns the results line.
pub fn run(a: PromqlQueryArgs) -> Result<serde_json::Value> {
    let t = Instant::now();
    let d = Data::make(&a)?;
    let range = range_text(a.range_secs);
    let defs = queries(&range);
    let (start, end) = window_ms(&d, &a);
    let step_ms = (a.step_secs.max(1) * 1000) as i64;
    println!(
        "data: {} series × {} samples = {} samples ({} h every {} s; {} counter series, {} with a reset; {} histogram label sets × 12 series), made in {:.1} s; query range {} h, step {} s, {} timed runs after {} warm-up runs",
        d.series.len(),
        d.n,
        d.samples(),
        a.hours,
        a.interval_secs,
        a.x_values * a.i_values,
        d.resets,
        a.histograms,
        t.elapsed().as_secs_f64(),
        (end - start) / 3_600_000,
        a.step_secs,
        a.runs,
        a.warmup
    );
    let load_start = util::load();
    let dir = util::temp_dir("skein-bench-promql-query-")?;
    let data_dir = dir.path().join("data");
    let (l, waited) = wait_quiet(a.max_load, Duration::from_secs(a.load_wait_secs));
    if waited > 0.0 {
        println!(
            "waited {waited:.0} s for the load ({l:.2}) to fall below {}",
            a.max_load
        );
    }
    let mut loads = vec![util::load()];
    let ours = in_process(&a, &d, &defs, &data_dir)?;
    loads.push(util::load());
    let client = http_client()?;
    let prom = if a.peer {
        let p = PromPeer::start(
            &a.prometheus,
            &a.promtool,
            "skein-bench-promql-query-prom-",
            &client,
            |file| d.write_openmetrics(file),
        )?;
        if a.prom_compaction_wait > 0 {
            p.wait_compaction(&client, a.prom_compaction_wait)?;
        }
        Some(p)
    } else {
        None
    };
    let col = if a.collector {
        Some(start_collector(
            &a,
            &d,
            &data_dir,
            &dir.path().join("collector.log"),
            &client,
        )?)
    } else {
        None
    };
    let (l, waited) = wait_quiet(a.max_load, Duration::from_secs(a.load_wait_secs));
    if waited > 0.0 {
        println!("waited {waited:.0} s for the load ({l:.2}) before the HTTP runs");
    }
    loads.push(util::load());
    let qs = |q: &str| {
        format!(
            "/api/v1/query_range?query={}&start={}&end={}&step={}",
            enc(q),
            start / 1000,
            end / 1000,
            a.step_secs.max(1)
        )
    };
    // Per query: (skein over HTTP, prometheus), whichever ran.
    let mut http: Vec<(Option<Timed>, Option<Timed>)> = Vec::new();
    for def in &defs {
        let mut urls = Vec::new();
        if let Some((c, _)) = &col {
            urls.push(format!("{}{}", c.api, qs(&def.promql)));
        }
        if let Some(p) = &prom {
            urls.push(format!("{}{}", p.base, qs(&def.promql)));
        }
        let mut got = time_http(&a, &client, &urls)?.into_iter();
        let s = col.as_ref().and_then(|_| got.next());
        let p = prom.as_ref().and_then(|_| got.next());
        for (name, t) in [("skein over HTTP", &s), ("prometheus", &p)] {
            if let Some(t) = t {
                println!(
                    "  {name:<17} {:<9} {}  ({} series, {} points, {} KB of JSON)",
                    def.key,
                    t.line(),
                    t.groups,
                    t.points,
                    t.bytes / 1000
                );
            }
        }
        http.push((s, p));
    }
    loads.push(util::load());
    let skein_hwm = match &col {
        Some((c, _)) => Some(c.stat()?.hwm),
        None => None,
    };
    let prom_hwm = match &prom {
        Some(p) => Some(p.hwm()?),
        None => None,
    };
    let prom_blocks = prom.as_ref().map(PromPeer::blocks);
    let prom_version = prom.as_ref().map(|p| p.version.clone());
    let prom_import = prom
        .as_ref()
        .map(|p| (p.file_bytes, p.write_secs, p.import_secs, p.blocks_imported));
    let collector_ready_secs = col.as_ref().map(|c| c.1);
    if let Some((c, _)) = col {
        c.stop()?;
    }
    if let Some(p) = prom {
        p.stop();
    }

    let mut rows = vec![row(
        "",
        "p50 / p90 / p99 / max, ms: skein in process | skein over HTTP | prometheus over HTTP",
    )];
    let mut out_q = serde_json::Map::new();
    let mut goal = true;
    let mut goal_known = false;
    for (i, def) in defs.iter().enumerate() {
        let ip = ours
            .queries
            .get(i)
            .ok_or_else(|| anyhow!("missing in-process timing"))?;
        let (th, tp) = http
            .get(i)
            .map(|(s, p)| (s.as_ref(), p.as_ref()))
            .unwrap_or_default();
        let dash = || "-".to_string();
        rows.push(row(
            def.key,
            format!(
                "{} | {} | {}",
                cell(&ip.timed),
                th.map_or_else(dash, cell),
                tp.map_or_else(dash, cell)
            ),
        ));
        let mut notes = vec![format!(
            "selector reads {} samples, {:.1} ms of it at p50 (select + decode)",
            ip.samples_read, ip.select_p50_ms
        )];
        let mut ratios = serde_json::Map::new();
        if let Some(p) = tp {
            let r_in = ip.timed.p(0.99) / p.p(0.99).max(1e-9);
            ratios.insert(
                "skein_in_process_p99_over_prometheus_p99".into(),
                r_in.into(),
            );
            notes.push(format!("p99 skein in process / prometheus = {r_in:.2}"));
            if let Some(h) = th {
                let r = h.p(0.99) / p.p(0.99).max(1e-9);
                ratios.insert("skein_http_p99_over_prometheus_p99".into(), r.into());
                notes.push(format!("p99 skein over HTTP / prometheus = {r:.2}"));
                goal &= r <= 1.0;
                goal_known = true;
            }
        }
        rows.push(row("", notes.join("; ")));
        let mut checks = serde_json::Map::new();
        let mut check = |label: &str, key: &str, x: &Agreement| {
            rows.push(row("", format!("{label}: {}", x.line())));
            checks.insert(key.into(), x.json());
        };
        if let Some(p) = tp {
            check(
                "answers, skein in process vs prometheus",
                "skein_in_process_vs_prometheus",
                &compare(&ip.timed.answer, &p.answer, TOLERANCE),
            );
        }
        if let Some(h) = th {
            check(
                "answers, skein in process vs over HTTP",
                "skein_in_process_vs_http",
                &compare(&ip.timed.answer, &h.answer, TOLERANCE),
            );
            if let Some(p) = tp {
                check(
                    "answers, skein over HTTP vs prometheus",
                    "skein_http_vs_prometheus",
                    &compare(&h.answer, &p.answer, TOLERANCE),
                );
            }
        }
        out_q.insert(
            def.key.into(),
            serde_json::json!({
                "promql": def.promql,
                "samples_read": ip.samples_read,
                "select_p50_ms": ip.select_p50_ms,
                "skein_in_process": ip.timed.json(),
                "skein_http": th.map(Timed::json),
                "prometheus_http": tp.map(Timed::json),
                "ratios": ratios,
                "answer_checks": checks,
            }),
        );
    }
    let st = &ours.stats;
    rows.push(row(
        "skein",
        format!(
            "store loaded in process in {:.1} s, {:.3} bytes per sample in its block ({:.3} of chunks){}",
            ours.load_secs,
            st.block_bytes as f64 / st.block_samples.max(1) as f64,
            st.block_chunk_bytes as f64 / st.block_samples.max(1) as f64,
            match (collector_ready_secs, skein_hwm) {
                (Some(r), Some(h)) => format!(
                    "; collector ready on it in {r:.1} s, peak RSS {:.1} MiB",
                    mib(h)
                ),
                _ => String::new(),
            }
        ),
    ));
    if let (Some(v), Some((blocks, bytes)), Some((_, _, import, imported)), Some(h)) =
        (&prom_version, prom_blocks, prom_import, prom_hwm)
    {
        rows.push(row(
            "prometheus",
            format!(
                "{v}; {imported} imported blocks in {import:.1} s, {blocks} when timed, {:.3} bytes per sample (chunks + index); peak RSS {:.1} MiB",
                bytes as f64 / d.samples().max(1) as f64,
                mib(h)
            ),
        ));
    }
    rows.push(row(
        "load (start, in process, before HTTP, after)",
        loads.join(" | "),
    ));
    rows.push(row(
        "goal: p99 over HTTP <= prometheus's (both queries)",
        if !goal_known {
            "not run"
        } else if goal {
            "met"
        } else {
            "missed"
        },
    ));
    table(
        &format!(
            "PromQL range queries, {} h over {} series, step {} s ({} runs each{}; skein in process has no HTTP or JSON, the HTTP columns are timed to the last byte of the answer)",
            a.hours,
            d.series.len(),
            a.step_secs,
            a.runs,
            if a.interleave {
                ", HTTP systems in turn"
            } else {
                ""
            }
        ),
        &rows,
    );
    Ok(serde_json::json!({
        "bench": "promql-query",
        "series": d.series.len(),
        "counter_series": a.x_values * a.i_values,
        "counter_resets": d.resets,
        "histogram_label_sets": a.histograms,
        "hours": a.hours,
        "interval_secs": a.interval_secs,
        "step_secs": a.step_secs,
        "start_ms": start,
        "end_ms": end,
        "step_ms": step_ms,
        "samples": d.samples(),
        "runs": a.runs,
        "warmup": a.warmup,
        "interleave": a.interleave,
        "seed": a.seed,
        "in_process_load_secs": ours.load_secs,
        "skein_block_bytes_per_sample": st.block_bytes as f64 / st.block_samples.max(1) as f64,
        "collector": collector_ready_secs.map(|r| serde_json::json!({
            "ready_secs": r,
            "peak_rss_mib": skein_hwm.map(mib),
        })),
        "prometheus": prom_version.map(|v| serde_json::json!({
            "version": v,
            "openmetrics_bytes": prom_import.map(|x| x.0),
            "openmetrics_write_secs": prom_import.map(|x| x.1),
            "import_secs": prom_import.map(|x| x.2),
            "blocks_imported": prom_import.map(|x| x.3),
            "blocks_timed": prom_blocks.map(|x| x.0),
            "block_bytes_per_sample": prom_blocks.map(|x| x.1 as f64 / d.samples().max(1) as f64),
            "peak_rss_mib": prom_hwm.map(mib),
        })),
        "queries": out_q,
        "load_at_start": load_start,
        "loads": loads,
        "goal_met": goal_known.then_some(goal),
    }))
}
