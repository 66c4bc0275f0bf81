//! Skein in process: the samples straight into a `Tsdb`, each query timed as the API handler
//! runs it, without HTTP or JSON.

use super::data::{Data, QueryDef, window_ns};
use super::measure::{Timed, count, our_answer, time_runs};
use super::{MetricsQueryArgs, NAME};
use crate::util;
use anyhow::{Context, Result, anyhow, bail};
use skein_model::metric::{Labels, MetricBatch, MetricKind, SeriesSpec};
use skein_model::time::now_unix_nano;
use skein_query::metrics::params::Params;
use skein_query::metrics::query::{self as mquery, MAX_SERIES, RangeQuery};
use skein_store::tsdb::{Tsdb, TsdbConfig};
use std::time::Instant;

/// Skein in process: load, persist, time.
pub(super) struct InProcess {
    pub(super) load_secs: f64,
    pub(super) stats: skein_store::tsdb::TsdbStats,
    pub(super) timed: Vec<(Timed, u64)>,
}

pub(super) fn in_process(a: &MetricsQueryArgs, d: &Data, defs: &[QueryDef]) -> Result<InProcess> {
    let dir = util::temp_dir("skein-bench-metrics-query-")?;
    let tsdb = Tsdb::open(TsdbConfig {
        dir: dir.path().join("tsdb"),
        ..Default::default()
    })
    .context("open the tsdb")?;
    let specs: Vec<SeriesSpec> = (0..d.values.len())
        .map(|i| SeriesSpec {
            name: NAME.into(),
            labels: Labels::from_pairs([("host", d.host(i)), ("cpu", d.cpu(i))]),
            kind: MetricKind::Gauge,
            unit: "1".into(),
            delta: false,
        })
        .collect();
    let per_batch = (a.batch / d.values.len()).max(1);
    let t = Instant::now();
    let mut k = 0;
    while k < d.n {
        let hi = (k + per_batch).min(d.n);
        let mut b = MetricBatch {
            series: specs.clone(),
            samples: Vec::with_capacity((hi - k) * specs.len()),
        };
        for j in k..hi {
            let ts = d.ts(j);
            for (i, vals) in d.values.iter().enumerate() {
                b.push(i as u32, ts, vals[j]);
            }
        }
        let r = tsdb.append(&b).context("append")?;
        if r.rejected > 0 {
            bail!(
                "the store refused {} samples: {:?}",
                r.rejected,
                r.first_reason
            );
        }
        k = hi;
    }
    tsdb.persist().context("persist")?;
    let load_secs = t.elapsed().as_secs_f64();
    let tsdb = if a.reopen {
        drop(tsdb);
        Tsdb::open(TsdbConfig {
            dir: dir.path().join("tsdb"),
            ..Default::default()
        })
        .context("reopen the tsdb")?
    } else {
        tsdb
    };
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
    let (start, end) = window_ns(d, a);
    let mut timed = Vec::new();
    for def in defs {
        let qs = format!("{}&start={start}&end={end}", def.ours);
        // Samples the query decodes: the chunks the store hands it.
        let decoded: u64 = {
            let p = Params::parse(Some(&qs)).map_err(|e| anyhow!("{e}"))?;
            let q = RangeQuery::from_params(&p, now_unix_nano()).map_err(|e| anyhow!("{e}"))?;
            let grid = q.grid().map_err(|e| anyhow!("{e}"))?;
            mquery::select(
                &tsdb,
                &q.name,
                &q.matchers,
                grid.select_start(),
                grid.last(),
                MAX_SERIES,
            )
            .map_err(|e| anyhow!("{e}"))?
            .iter()
            .map(|s| s.sample_count_hint() as u64)
            .sum()
        };
        let run_once = || -> Result<skein_model::metrics_api::MetricQueryResponse> {
            let p = Params::parse(Some(&qs)).map_err(|e| anyhow!("{e}"))?;
            let q = RangeQuery::from_params(&p, now_unix_nano()).map_err(|e| anyhow!("{e}"))?;
            mquery::run(&tsdb, &q).map_err(|e| anyhow!("query {qs}: {e}"))
        };
        let first = run_once()?;
        let answer = our_answer(&first);
        let (groups, points) = count(&answer);
        let hist = time_runs(a.warmup, a.runs, || run_once().map(|_| ()))?;
        let bytes = serde_json::to_vec(&first)?.len();
        let t = Timed {
            hist,
            groups,
            points,
            answer,
            bytes,
        };
        println!(
            "  skein in process  {:<12} {}  ({groups} series, {points} points, {decoded} samples decoded)",
            def.key,
            t.line()
        );
        timed.push((t, decoded));
    }
    Ok(InProcess {
        load_secs,
        stats,
        timed,
    })
}
