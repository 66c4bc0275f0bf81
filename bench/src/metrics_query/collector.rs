//! Skein over HTTP: the samples over OTLP/HTTP into a real `skein collector`, restarted so
//! that they sit in one block file, then each query timed to the last byte of its answer.

use super::data::{Data, QueryDef, window_ns};
use super::measure::{Timed, count, get, http_client, our_answer, time_runs};
use super::{MetricsQueryArgs, NAME};
use crate::agent_util::wait_quiet;
use crate::metrics_ingest::{
    CollectorProc, gauge, point, resource_metrics, send_ordered, tsdb_sizes,
};
use crate::util;
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use prost::Message;
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The OTLP request of `slot` (series `[slot·per, (slot+1)·per)`) and `round` (`tpr`
/// timestamps from `round·tpr`): one `ResourceMetrics` per host, each series' points in time
/// order.
fn otlp_body(d: &Data, per: usize, tpr: usize, slot: usize, round: usize) -> (Bytes, u64) {
    let lo = (slot * per).min(d.values.len());
    let hi = (lo + per).min(d.values.len());
    let (k0, k1) = ((round * tpr).min(d.n), ((round + 1) * tpr).min(d.n));
    let mut by_host: BTreeMap<usize, Vec<_>> = BTreeMap::new();
    for i in lo..hi {
        let cpu = d.cpu(i);
        let pts = by_host.entry(i % d.hosts).or_default();
        for k in k0..k1 {
            pts.push(point(
                &[("cpu", cpu.as_str())],
                d.ts(k) as u64 * 1_000_000,
                d.values[i][k],
            ));
        }
    }
    let req = ExportMetricsServiceRequest {
        resource_metrics: by_host
            .into_iter()
            .map(|(h, pts)| {
                resource_metrics(None, &format!("host-{h}"), vec![gauge(NAME, "1", pts)])
            })
            .collect(),
    };
    (
        Bytes::from(req.encode_to_vec()),
        ((hi - lo) * (k1 - k0)) as u64,
    )
}

/// Skein through the real collector.
pub(super) struct ViaCollector {
    pub(super) ingest_secs: f64,
    pub(super) ingest_samples_per_s: f64,
    pub(super) restart_secs: f64,
    pub(super) tsdb: BTreeMap<String, u64>,
    pub(super) hwm: u64,
    pub(super) timed: Vec<Timed>,
}

pub(super) fn via_collector(
    a: &MetricsQueryArgs,
    d: &Arc<Data>,
    defs: &[QueryDef],
) -> Result<ViaCollector> {
    if !a.skein.exists() {
        bail!(
            "{} not found: build it with cargo build --release -p skein (or pass --skein, or --collector false)",
            a.skein.display()
        );
    }
    let dir = util::temp_dir("skein-bench-metrics-query-collector-")?;
    let data_dir = dir.path().join("data");
    let log = dir.path().join("collector.log");
    let col = CollectorProc::start(&a.skein, &data_dir, None, &log)?;
    let slots = a.concurrency.clamp(1, d.values.len());
    let per = d.values.len().div_ceil(slots);
    let tpr = (a.points_per_request / per).max(1);
    let rounds = d.n.div_ceil(tpr);
    let rt = util::client_runtime()?;
    let data = d.clone();
    let sent = send_ordered(&rt, &col.otlp, slots, rounds, a.concurrency, move |s, r| {
        Ok(otlp_body(&data, per, tpr, s, r))
    })
    .map_err(|e| e.context(format!("collector log:\n{}", col.log_tail(20))))?;
    drop(rt);
    if sent.accepted != d.samples() {
        bail!("{} samples accepted of {}", sent.accepted, d.samples());
    }
    let ingest_samples_per_s = sent.accepted as f64 / sent.secs.max(1e-9);
    println!(
        "collector: {} samples sent over OTLP/HTTP in {:.1} s ({:.0} samples/s, {} requests, {} retries, encoding included)",
        sent.accepted, sent.secs, ingest_samples_per_s, sent.requests, sent.retries
    );
    col.stop()?;
    // Restart with a short block duration so that the head is written to a block, as in
    // process.
    let cfg = dir.path().join("collector.toml");
    std::fs::write(&cfg, "[metrics]\nblock_duration = \"10s\"\n").context("write config")?;
    let t = Instant::now();
    let col = CollectorProc::start(&a.skein, &data_dir, Some(&cfg), &log)?;
    let restart_secs = t.elapsed().as_secs_f64();
    let client = http_client()?;
    let mut tsdb = BTreeMap::new();
    while t.elapsed() < Duration::from_secs(120) {
        tsdb = tsdb_sizes(&client, &col.api)?;
        let size = |k: &str| tsdb.get(k).copied().unwrap_or(0);
        if size("blocks") >= 1 && size("head_samples") == 0 && size("block_samples") >= d.samples()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let size = |k: &str| tsdb.get(k).copied().unwrap_or(0);
    if size("block_samples") < d.samples() {
        bail!("the collector has not written its block within 120 s: {tsdb:?}");
    }
    println!(
        "collector restarted (ready in {:.1} s, WAL replay included), blocks written: {} block(s), {:.3} bytes per sample ({:.3} of chunks)",
        restart_secs,
        size("blocks"),
        size("block_bytes") as f64 / size("block_samples").max(1) as f64,
        size("block_chunk_bytes") as f64 / size("block_samples").max(1) as f64
    );
    wait_quiet(a.max_load, Duration::from_secs(a.load_wait_secs));
    let (start, end) = window_ns(d, a);
    let mut timed = Vec::new();
    for def in defs {
        let url = format!(
            "{}/api/v1/metrics/query?{}&start={start}&end={end}",
            col.api, def.ours
        );
        let first = get(&client, &url)?;
        let r: skein_model::metrics_api::MetricQueryResponse =
            serde_json::from_slice(&first).context("read the answer")?;
        let answer = our_answer(&r);
        let (groups, points) = count(&answer);
        let hist = time_runs(a.warmup, a.runs, || get(&client, &url).map(|_| ()))?;
        let t = Timed {
            hist,
            groups,
            points,
            answer,
            bytes: first.len(),
        };
        println!(
            "  skein over HTTP   {:<12} {}  ({groups} series, {points} points, {} KB of JSON)",
            def.key,
            t.line(),
            first.len() / 1000
        );
        timed.push(t);
    }
    let hwm = col.stat()?.hwm;
    col.stop()?;
    Ok(ViaCollector {
        ingest_secs: sent.secs,
        ingest_samples_per_s,
        restart_secs,
        tsdb,
        hwm,
        timed,
    })
}
