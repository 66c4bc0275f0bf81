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

use crate::agent_util::{mib, proc_stat, wait_quiet};
use crate::datagen::Rng;
use crate::metrics_ingest::{
    CollectorProc, gauge, point, resource_metrics, send_ordered, tsdb_sizes,
};
use crate::util::{self, percentiles_ms, row, table};
use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::Args;
use prost::Message;
use skein_model::metric::{Labels, MetricBatch, MetricKind, SeriesSpec};
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use skein_model::time::{now_ms, now_unix_nano};
use skein_query::metrics::params::Params;
use skein_query::metrics::query::{self as mquery, MAX_SERIES, RangeQuery};
use skein_store::tsdb::{Tsdb, TsdbConfig};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// The samples: `values[series][k]` at `ts(k)`.
struct Data {
    hosts: usize,
    interval_ms: i64,
    end_ms: i64,
    n: usize,
    values: Vec<Vec<f64>>,
}

impl Data {
    fn make(a: &MetricsQueryArgs) -> Result<Data> {
        if a.series == 0 || a.hosts == 0 || a.interval_secs == 0 || a.hours == 0 {
            bail!("--series, --hosts, --interval-secs and --hours must be above 0");
        }
        let interval_ms = (a.interval_secs * 1000) as i64;
        let end_ms = now_ms() / interval_ms * interval_ms;
        let n = (a.hours * 3600 / a.interval_secs) as usize;
        let mut rng = Rng::new(a.seed);
        let values = (0..a.series)
            .map(|_| {
                // A level the series comes back to (an idle or a busy host), and noise.
                let level = 0.03 + 0.8 * rng.unit() * rng.unit();
                let mut v = level;
                (0..n)
                    .map(|_| {
                        v += 0.1 * (level - v) + 0.06 * (rng.unit() - 0.5);
                        v = v.clamp(0.0, 1.0);
                        (v * 1000.0).round() / 1000.0
                    })
                    .collect()
            })
            .collect();
        Ok(Data {
            hosts: a.hosts,
            interval_ms,
            end_ms,
            n,
            values,
        })
    }

    fn ts(&self, k: usize) -> i64 {
        self.end_ms - (self.n - 1 - k) as i64 * self.interval_ms
    }

    fn host(&self, i: usize) -> String {
        format!("host-{}", i % self.hosts)
    }

    fn cpu(&self, i: usize) -> String {
        (i / self.hosts).to_string()
    }

    fn samples(&self) -> u64 {
        (self.values.len() * self.n) as u64
    }
}

/// One of the four queries in each system's words.
struct QueryDef {
    key: &'static str,
    ours: String,
    prom: String,
    /// The PromQL reading the same samples as Skein's, if there is one.
    prom_same: Option<String>,
}

fn queries(d: &Data, step_secs: u64) -> Vec<QueryDef> {
    let h7 = format!("host-{}", 7 % d.hosts);
    let step = format!("step={step_secs}s");
    let w = format!("[{}s]", step_secs.saturating_sub(1).max(1));
    vec![
        QueryDef {
            key: "avg",
            ours: format!("name={NAME}&agg=avg&{step}"),
            prom: format!("avg({PROM_NAME})"),
            prom_same: Some(format!("avg(avg_over_time({PROM_NAME}{w}))")),
        },
        QueryDef {
            key: "avg_by_host",
            ours: format!("name={NAME}&agg=avg&by=host&{step}"),
            prom: format!("avg by (host) ({PROM_NAME})"),
            prom_same: Some(format!("avg by (host) (avg_over_time({PROM_NAME}{w}))")),
        },
        QueryDef {
            key: "p99",
            ours: format!("name={NAME}&agg=p99&{step}"),
            prom: format!("quantile(0.99, {PROM_NAME})"),
            prom_same: None,
        },
        QueryDef {
            key: "max_host7",
            ours: format!(
                "name={NAME}&agg=max&match={}&{step}",
                enc(&format!("host={h7}"))
            ),
            prom: format!("max({PROM_NAME}{{host=\"{h7}\"}})"),
            prom_same: Some(format!(
                "max(max_over_time({PROM_NAME}{{host=\"{h7}\"}}{w}))"
            )),
        },
    ]
}

/// Percent-encodes a query-string value (everything but unreserved characters).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs `f` `warmup` times, then `runs` times timed; a histogram of microseconds.
fn time_runs(
    warmup: usize,
    runs: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<hdrhistogram::Histogram<u64>> {
    for _ in 0..warmup {
        f()?;
    }
    let mut h = util::histogram()?;
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        h.record((t.elapsed().as_micros() as u64).max(1))
            .map_err(|e| anyhow!("histogram: {e}"))?;
    }
    Ok(h)
}

/// An answer, as (group labels as text, points by ms), for comparing systems.
type Answer = BTreeMap<String, BTreeMap<i64, f64>>;

/// The timings of one query in one system.
struct Timed {
    hist: hdrhistogram::Histogram<u64>,
    groups: usize,
    points: usize,
    answer: Answer,
    bytes: usize,
}

impl Timed {
    fn p(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    fn line(&self) -> String {
        format!(
            "p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2} ms",
            self.p(0.5),
            self.p(0.9),
            self.p(0.99),
            self.hist.max() as f64 / 1000.0
        )
    }

    fn json(&self) -> serde_json::Value {
        let mut v = percentiles_ms(&self.hist);
        v["groups"] = self.groups.into();
        v["points"] = self.points.into();
        v["answer_bytes"] = self.bytes.into();
        v
    }
}

fn our_answer(r: &skein_model::metrics_api::MetricQueryResponse) -> Answer {
    r.series
        .iter()
        .map(|s| {
            let key = s.labels.get("host").map(str::to_string).unwrap_or_default();
            (key, s.points.iter().copied().collect())
        })
        .collect()
}

fn count(a: &Answer) -> (usize, usize) {
    (a.len(), a.values().map(BTreeMap::len).sum())
}

/// The query window in ns: the last multiple of the step at or before the newest sample,
/// and `hours` before it.
fn window_ns(d: &Data, a: &MetricsQueryArgs) -> (u64, u64) {
    let step_ms = (a.step_secs.max(1) * 1000) as i64;
    let end = d.end_ms / step_ms * step_ms;
    let start = end - (a.hours * 3600 * 1000) as i64;
    (start as u64 * 1_000_000, end as u64 * 1_000_000)
}

/// Skein in process: load, persist, time.
struct InProcess {
    load_secs: f64,
    stats: skein_store::tsdb::TsdbStats,
    timed: Vec<(Timed, u64)>,
}

fn in_process(a: &MetricsQueryArgs, d: &Data, defs: &[QueryDef]) -> Result<InProcess> {
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

/// A blocking HTTP client.
fn http_client() -> Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .context("HTTP client")
}

/// GET `url`; the body, which must come with a 200.
fn get(client: &reqwest::blocking::Client, url: &str) -> Result<Bytes> {
    let r = client
        .get(url)
        .send()
        .with_context(|| format!("GET {url}"))?;
    let st = r.status();
    let b = r.bytes().with_context(|| format!("read {url}"))?;
    if !st.is_success() {
        bail!(
            "GET {url}: {st}: {}",
            String::from_utf8_lossy(&b[..b.len().min(500)])
        );
    }
    Ok(b)
}

/// Skein through the real collector.
struct ViaCollector {
    ingest_secs: f64,
    ingest_samples_per_s: f64,
    restart_secs: f64,
    tsdb: BTreeMap<String, u64>,
    hwm: u64,
    timed: Vec<Timed>,
}

fn via_collector(a: &MetricsQueryArgs, d: &Arc<Data>, defs: &[QueryDef]) -> Result<ViaCollector> {
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

/// The first line a command prints for `--version`.
fn version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            s.lines().next().unwrap_or_default().to_string()
        })
        .unwrap_or_default()
}

/// A value of a Prometheus `/metrics` line without labels (0 when absent).
fn prom_metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

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

/// The largest difference between two answers over the points both have, and the number of
/// points only one has. Answers of one group each are compared whatever their labels
/// (`max(x{host="h"})` has none in PromQL; Skein keeps the pinned `host`).
fn compare(a: &Answer, b: &Answer) -> (f64, usize) {
    if a.len() == 1
        && b.len() == 1
        && let (Some(pa), Some(pb)) = (a.values().next(), b.values().next())
    {
        let (mut diff, mut missing) = (0.0f64, 0usize);
        compare_points(pa, pb, &mut diff, &mut missing);
        return (diff, missing);
    }
    let (mut diff, mut missing) = (0.0f64, 0usize);
    for (k, pa) in a {
        let Some(pb) = b.get(k) else {
            missing += pa.len();
            continue;
        };
        compare_points(pa, pb, &mut diff, &mut missing);
    }
    missing += b
        .iter()
        .filter(|(k, _)| !a.contains_key(*k))
        .map(|(_, p)| p.len())
        .sum::<usize>();
    (diff, missing)
}

fn compare_points(
    a: &BTreeMap<i64, f64>,
    b: &BTreeMap<i64, f64>,
    diff: &mut f64,
    missing: &mut usize,
) {
    for (t, va) in a {
        match b.get(t) {
            Some(vb) => *diff = diff.max((va - vb).abs()),
            None => *missing += 1,
        }
    }
    *missing += b.keys().filter(|t| !a.contains_key(t)).count();
}

/// Prometheus on the same samples.
struct Peer {
    version: String,
    write_secs: f64,
    file_bytes: u64,
    import_secs: f64,
    blocks_imported: u64,
    blocks_timed: u64,
    block_bytes: u64,
    hwm: u64,
    timed: Vec<(Timed, Option<Timed>)>,
}

/// Writes the samples as OpenMetrics text, series after series.
fn write_openmetrics(d: &Data, path: &Path) -> Result<u64> {
    let f = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    writeln!(w, "# TYPE {PROM_NAME} gauge")?;
    for (i, vals) in d.values.iter().enumerate() {
        let labels = format!("{{host=\"{}\",cpu=\"{}\"}}", d.host(i), d.cpu(i));
        for (k, v) in vals.iter().enumerate() {
            writeln!(w, "{PROM_NAME}{labels} {v} {}", d.ts(k) / 1000)?;
        }
    }
    writeln!(w, "# EOF")?;
    w.flush().context("write the OpenMetrics file")?;
    drop(w);
    Ok(std::fs::metadata(path)?.len())
}

/// Block folders (those with a `meta.json`) under a Prometheus data dir: (count, bytes).
fn prom_blocks(dir: &Path) -> (u64, u64) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    rd.filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("meta.json").exists())
        .fold((0, 0), |(n, b), p| (n + 1, b + util::dir_bytes(&p)))
}

fn peer(a: &MetricsQueryArgs, d: &Data, defs: &[QueryDef]) -> Result<Peer> {
    let dir = util::temp_dir("skein-bench-metrics-query-prom-")?;
    let file = dir.path().join("samples.om");
    let tsdb = dir.path().join("prom");
    let t = Instant::now();
    let file_bytes = write_openmetrics(d, &file)?;
    let write_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let out = Command::new(&a.promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(&tsdb)
        .output()
        .with_context(|| {
            format!(
                "run {} (apt-get install -y prometheus)",
                a.promtool.display()
            )
        })?;
    let import_secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "promtool failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_file(&file).context("remove the OpenMetrics file")?;
    let (blocks_imported, _) = prom_blocks(&tsdb);
    println!(
        "prometheus: OpenMetrics file of {:.1} MB written in {:.1} s; promtool made {blocks_imported} blocks in {:.1} s",
        util::mb(file_bytes),
        write_secs,
        import_secs
    );
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1m\nscrape_configs: []\n")
        .context("write prometheus.yml")?;
    // Prometheus needs a port number: take a free one and give it back.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("find a free port")?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("prometheus.log")).context("create log")?;
    let log2 = log.try_clone().context("clone log")?;
    let prom = Kid(Command::new(&a.prometheus)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--storage.tsdb.retention.time=30d")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .spawn()
        .with_context(|| format!("start {}", a.prometheus.display()))?);
    let pid = prom.0.id();
    let client = http_client()?;
    let base = format!("http://{addr}");
    let t = Instant::now();
    loop {
        if get(&client, &format!("{base}/-/ready")).is_ok() {
            break;
        }
        if t.elapsed() > Duration::from_secs(120) {
            let text =
                std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
            bail!("prometheus was not ready within 120 s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if a.prom_compaction_wait > 0 {
        // Prometheus compacts the 2 h blocks (to 6 h and 18 h) about a minute after start-up;
        // wait until the number of blocks went down and then stayed the same for 15 s.
        let t = Instant::now();
        let (mut last, mut since) = (u64::MAX, Instant::now());
        let first = prom_metric(
            &String::from_utf8_lossy(&get(&client, &format!("{base}/metrics"))?),
            "prometheus_tsdb_blocks_loaded",
        ) as u64;
        while t.elapsed() < Duration::from_secs(a.prom_compaction_wait) {
            let m = String::from_utf8_lossy(&get(&client, &format!("{base}/metrics"))?).to_string();
            let n = prom_metric(&m, "prometheus_tsdb_blocks_loaded") as u64;
            if n != last {
                (last, since) = (n, Instant::now());
            }
            if n < first && since.elapsed() >= Duration::from_secs(15) {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        println!(
            "prometheus: {first} blocks loaded at start, {last} after waiting {:.0} s for its compaction",
            t.elapsed().as_secs_f64()
        );
    }
    let (blocks_timed, block_bytes) = prom_blocks(&tsdb);
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
    let hwm = proc_stat(pid)?.hwm;
    drop(prom);
    Ok(Peer {
        version: version(&a.prometheus),
        write_secs,
        file_bytes,
        import_secs,
        blocks_imported,
        blocks_timed,
        block_bytes,
        hwm,
        timed,
    })
}

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encodes_query_values() {
        assert_eq!(enc("host=host-7"), "host%3Dhost-7");
        assert_eq!(enc("avg by (host) (x)"), "avg%20by%20%28host%29%20%28x%29");
    }

    #[test]
    fn answers_compare() {
        let mut a = Answer::new();
        a.entry(String::new()).or_default().insert(1, 0.5);
        let mut b = a.clone();
        assert_eq!(compare(&a, &b), (0.0, 0));
        b.entry(String::new()).or_default().insert(2, 0.5);
        assert_eq!(compare(&a, &b).1, 1);
        // One group each: labels do not matter.
        let c = Answer::from([("host-7".to_string(), BTreeMap::from([(1, 0.25)]))]);
        assert_eq!(compare(&a, &c), (0.25, 0));
    }
}
