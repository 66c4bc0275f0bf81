//! Prometheus on the same samples: an OpenMetrics file, `promtool` blocks, a `prometheus`
//! process on them, and each query timed to the last byte of its answer.

use super::data::{Data, QueryDef, enc, window_ns};
use super::measure::{Answer, Timed, count, get, http_client, time_runs};
use super::{MetricsQueryArgs, PROM_NAME};
use crate::agent_util::wait_quiet;
use crate::prom_peer::{OmWriter, PromPeer};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::time::Duration;

/// A Prometheus `query_range` answer: groups by `host` (empty without), points by ms.
fn prom_answer(body: &[u8]) -> Result<Answer> {
    let v: serde_json::Value = serde_json::from_slice(body).context("read the answer")?;
    if v["status"] != "success" {
        bail!("prometheus answered {v}");
    }
    let mut out = Answer::new();
    let Some(result) = v["data"]["result"].as_array() else {
        bail!("no data.result in {v}");
    };
    for s in result {
        let key = s["metric"]["host"].as_str().unwrap_or_default().to_string();
        let pts = out.entry(key).or_default();
        for p in s["values"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let ts = p[0].as_f64().unwrap_or(0.0);
            let val: f64 = p[1].as_str().unwrap_or("NaN").parse().unwrap_or(f64::NAN);
            pts.insert((ts * 1000.0).round() as i64, val);
        }
    }
    Ok(out)
}

/// Prometheus on the same samples.
pub(super) struct Peer {
    pub(super) version: String,
    pub(super) write_secs: f64,
    pub(super) file_bytes: u64,
    pub(super) import_secs: f64,
    pub(super) blocks_imported: u64,
    pub(super) blocks_timed: u64,
    pub(super) block_bytes: u64,
    pub(super) hwm: u64,
    pub(super) timed: Vec<(Timed, Option<Timed>)>,
}

/// Writes the samples as OpenMetrics text, series after series.
fn write_openmetrics(d: &Data, path: &Path) -> Result<u64> {
    let mut w = OmWriter::create(path)?;
    w.family(PROM_NAME, "gauge")?;
    for (i, vals) in d.values.iter().enumerate() {
        let (host, cpu) = (d.host(i), d.cpu(i));
        w.series(
            PROM_NAME,
            &[("host", &host), ("cpu", &cpu)],
            vals.iter()
                .enumerate()
                .map(|(k, v)| (d.ts(k) / 1000 * 1000, *v)),
        )?;
    }
    w.finish()
}

pub(super) fn peer(a: &MetricsQueryArgs, d: &Data, defs: &[QueryDef]) -> Result<Peer> {
    let client = http_client()?;
    let prom = PromPeer::start(
        &a.prometheus,
        &a.promtool,
        "skein-bench-metrics-query-prom-",
        &client,
        |file| write_openmetrics(d, file),
    )?;
    if a.prom_compaction_wait > 0 {
        prom.wait_compaction(&client, a.prom_compaction_wait)?;
    }
    let base = prom.base.clone();
    let (blocks_timed, block_bytes) = prom.blocks();
    wait_quiet(a.max_load, Duration::from_secs(a.load_wait_secs));
    let (start, end) = window_ns(d, a);
    let (start_s, end_s) = (start / 1_000_000_000, end / 1_000_000_000);
    let step = a.step_secs.max(1);
    let time_prom = |label: &str, key: &str, q: &str| -> Result<Timed> {
        let url = format!(
            "{base}/api/v1/query_range?query={}&start={start_s}&end={end_s}&step={step}",
            enc(q)
        );
        let first = get(&client, &url)?;
        let answer = prom_answer(&first)?;
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
            "  {label:<17} {key:<12} {}  ({groups} series, {points} points, {} KB of JSON)  {q}",
            t.line(),
            first.len() / 1000
        );
        Ok(t)
    };
    let mut timed = Vec::new();
    for def in defs {
        let plain = time_prom("prometheus", def.key, &def.prom)?;
        let same = match (&def.prom_same, a.prom_same_samples) {
            (Some(q), true) => Some(time_prom("prometheus same", def.key, q)?),
            _ => None,
        };
        timed.push((plain, same));
    }
    let hwm = prom.hwm()?;
    let p = Peer {
        version: prom.version.clone(),
        write_secs: prom.write_secs,
        file_bytes: prom.file_bytes,
        import_secs: prom.import_secs,
        blocks_imported: prom.blocks_imported,
        blocks_timed,
        block_bytes,
        hwm,
        timed,
    };
    prom.stop();
    Ok(p)
}
