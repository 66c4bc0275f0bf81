//! Skein's side: the samples written to a `Tsdb` in a collector's data dir (`<data>/tsdb`,
//! where `skein collector` opens its metrics store), each query timed with `Engine::range` in
//! process; then a real `skein collector` started on that data dir for the HTTP runs.

use super::PromqlQueryArgs;
use super::answer::{count, from_value};
use super::data::{Data, QueryDef, window_ms};
use crate::metrics_ingest::{CollectorProc, tsdb_sizes};
use crate::metrics_query::measure::{Timed, time_runs};
use anyhow::{Context, Result, anyhow, bail};
use skein_query::prom_api::render;
use skein_query::promql::engine::{Engine, Limits};
use skein_query::promql::source::{SeriesSource, StoreSource};
use skein_store::tsdb::{MatchOp, Matcher, Tsdb, TsdbConfig, TsdbStats};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One query in process.
pub(super) struct InProcessQuery {
    pub(super) timed: Timed,
    /// Samples the query's selector reads (lookback and range included).
    pub(super) samples_read: u64,
    /// p50 of the selector's read alone (`StoreSource::select`: index, chunks, decoding), ms.
    pub(super) select_p50_ms: f64,
}

/// Skein in process: load, persist, time.
pub(super) struct InProcess {
    pub(super) load_secs: f64,
    pub(super) stats: TsdbStats,
    pub(super) queries: Vec<InProcessQuery>,
}

/// The metric name a query selects (its only selector).
fn selected_name(def: &QueryDef) -> Result<String> {
    let after = def
        .promql
        .split("rate(")
        .nth(1)
        .ok_or_else(|| anyhow!("no rate( in {}", def.promql))?;
    Ok(after.split('[').next().unwrap_or_default().to_string())
}

/// Writes the samples to `<data_dir>/tsdb`, persists them and times each query in process.
/// The store is closed on return, so a collector can open it.
pub(super) fn in_process(
    a: &PromqlQueryArgs,
    d: &Data,
    defs: &[QueryDef],
    data_dir: &Path,
) -> Result<InProcess> {
    let tsdb = Tsdb::open(TsdbConfig {
        dir: data_dir.join("tsdb"),
        ..Default::default()
    })
    .context("open the tsdb")?;
    let t = Instant::now();
    d.load(&tsdb, a.batch)?;
    let load_secs = t.elapsed().as_secs_f64();
    let stats = tsdb.stats();
    println!(
        "in process: {} samples appended and persisted in {:.1} s ({:.0} samples/s); {} block(s), {} samples in blocks, {:.3} bytes per sample ({:.3} of chunks)",
        d.samples(),
        load_secs,
        d.samples() as f64 / load_secs.max(1e-9),
        stats.blocks,
        stats.block_samples,
        stats.block_bytes as f64 / stats.block_samples.max(1) as f64,
        stats.block_chunk_bytes as f64 / stats.block_samples.max(1) as f64
    );
    if stats.block_samples != d.samples() {
        bail!(
            "{} samples in blocks, {} appended",
            stats.block_samples,
            d.samples()
        );
    }
    let source = Arc::new(StoreSource::new(Arc::new(tsdb.clone())));
    let engine = Engine::new(source.clone(), Limits::default());
    let (start, end) = window_ms(d, a);
    let step = (a.step_secs.max(1) * 1000) as i64;
    let mut queries = Vec::new();
    for def in defs {
        let run = || {
            engine
                .range(&def.promql, start, end, step)
                .map_err(|e| anyhow!("{}: {e}", def.promql))
        };
        let first = run()?;
        let answer = from_value(&first)?;
        let bytes = render::value(&first).len();
        let (groups, points) = count(&answer);
        let hist = time_runs(a.warmup, a.runs, || run().map(|_| ()))?;
        // The selector's read alone, over what the engine reads: `[start − range, end]`.
        let m = Matcher::new("__name__", MatchOp::Eq, &selected_name(def)?)
            .map_err(|e| anyhow!("{e}"))?;
        let from = start - a.range_secs as i64 * 1000;
        let select = || {
            source
                .select(std::slice::from_ref(&m), from, end, 100_000)
                .map_err(|e| anyhow!("select: {e}"))
        };
        let samples_read: u64 = select()?.iter().map(|s| s.samples.len() as u64).sum();
        let sel = time_runs(1, a.runs.clamp(1, 20), || select().map(|_| ()))?;
        let timed = Timed {
            hist,
            groups,
            points,
            answer,
            bytes,
        };
        let select_p50_ms = sel.value_at_quantile(0.5) as f64 / 1000.0;
        println!(
            "  skein in process  {:<9} {}  ({groups} series, {points} points; selector reads {samples_read} samples, p50 {select_p50_ms:.1} ms of it)",
            def.key,
            timed.line(),
        );
        queries.push(InProcessQuery {
            timed,
            samples_read,
            select_p50_ms,
        });
    }
    drop(engine);
    drop(source);
    drop(tsdb);
    Ok(InProcess {
        load_secs,
        stats,
        queries,
    })
}

/// Starts `skein collector` on `data_dir` (the store written in process) and waits until it
/// shows every sample in its blocks; the seconds to ready.
pub(super) fn start_collector(
    a: &PromqlQueryArgs,
    d: &Data,
    data_dir: &Path,
    log: &Path,
    client: &reqwest::blocking::Client,
) -> Result<(CollectorProc, f64)> {
    if !a.skein.exists() {
        bail!(
            "{} not found: build it with cargo build --release -p skein (or pass --skein, or --collector false)",
            a.skein.display()
        );
    }
    let t = Instant::now();
    let col = CollectorProc::start(&a.skein, data_dir, None, log)?;
    let ready = t.elapsed().as_secs_f64();
    let mut tsdb = Default::default();
    while t.elapsed() < Duration::from_secs(60) {
        tsdb = tsdb_sizes(client, &col.api)?;
        if tsdb.get("block_samples").copied().unwrap_or(0) >= d.samples() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    if tsdb.get("block_samples").copied().unwrap_or(0) < d.samples() {
        bail!("the collector does not show the samples written in process: {tsdb:?}");
    }
    println!("collector: started on the store written in process, ready in {ready:.1} s; {tsdb:?}");
    Ok((col, ready))
}
