//! `lookup`: latency of `GET /api/v1/traces/{key}` over HTTP on a large data set.
//!
//! The data set is written straight into the stores with `SplitStore::<Logs>` and
//! `SplitStore::<Spans>` (not over HTTP: that is what `ingest` measures), from the same OTLP
//! records and the same conversion as the collector's. Traces are ~10 spans across the services
//! with ~10 log lines each carrying the trace ID (one or two more carry only the request ID);
//! the other logs carry trace IDs of traces whose spans were not sampled. The folder is reused
//! when it already holds a data set of the same size and seed. [`dataset`] and
//! [`start_collector`] are shared with `loki-lookup`.

use crate::datagen::{Gen, Instance, LogCtx, hex, logs_export_grouped, spans_export};
use crate::util::{self, Running, mb, row, table};
use anyhow::{Context, Result, bail};
use skein_model::keys::KeyExtractor;
use skein_model::otlp::{logs_from_otlp, spans_from_otlp};
use skein_model::{KeyConfig, Limits};
use skein_store::{Logs, Spans, SplitConfig, SplitStore};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Options of `lookup`.
#[derive(Debug, Clone, clap::Args)]
pub struct LookupArgs {
    /// Log records in the data set.
    #[arg(long, default_value_t = 10_000_000)]
    pub logs: u64,
    /// Spans in the data set.
    #[arg(long, default_value_t = 1_000_000)]
    pub spans: u64,
    /// Queries per measured run.
    #[arg(long, default_value_t = 2000)]
    pub queries: usize,
    /// Measured runs (each `queries` long) after one warm-up of `queries / 10`.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Where the data set lives; reused when it holds the same size and seed.
    #[arg(long, default_value = "/tmp/skein-bench-lookup")]
    pub data_dir: PathBuf,
    /// Rebuild even when the folder holds the data set (needed after a change in what a stored
    /// record holds, which the reuse check cannot see).
    #[arg(long)]
    pub rebuild: bool,
    /// PRNG seed.
    #[arg(long, default_value_t = 11)]
    pub seed: u64,
    /// Doc-store block size (KiB) of the data set; default: the collector's default.
    #[arg(long)]
    pub docstore_block_kb: Option<usize>,
}

impl LookupArgs {
    /// The split settings the data set is written with (`memory_mb` of indexing memory).
    pub fn split_config(&self, memory_mb: usize) -> SplitConfig {
        let d = SplitConfig::default();
        SplitConfig {
            writer_memory_bytes: memory_mb * 1024 * 1024,
            retention_max_age: None,
            docstore_block_bytes: self
                .docstore_block_kb
                .map(|kb| kb * 1024)
                .unwrap_or(d.docstore_block_bytes),
            ..d
        }
    }
}

const MARKER: &str = "skein-bench-lookup.json";

/// What a built data set holds: its size, seed, and the sampled keys queries use.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Marker {
    /// Logs asked for (the key of reuse).
    pub logs: u64,
    /// Logs written (a few more: whole traces).
    #[serde(default)]
    pub actual_logs: u64,
    /// Spans written.
    pub spans: u64,
    /// PRNG seed.
    pub seed: u64,
    /// Traces written.
    pub traces: u64,
    /// Seconds the build took.
    pub build_secs: f64,
    /// The index schemas the data set was written with: another schema means a rebuild.
    #[serde(default)]
    schema: String,
    /// Sampled trace IDs (every tenth trace, at most 20,000).
    pub trace_ids: Vec<String>,
    /// The request ID of each sampled trace.
    pub request_ids: Vec<String>,
    /// Per sampled trace, the lines carrying its trace ID by service (index into
    /// [`crate::datagen::SERVICES`]). Empty in a data set built before it was recorded.
    #[serde(default)]
    pub trace_lines: Vec<[u32; 5]>,
    /// Per sampled trace, the lines carrying its request ID (`request_id` attribute) by service.
    #[serde(default)]
    pub request_lines: Vec<[u32; 5]>,
    /// Event time of the first record, Unix ns (0 in an older data set).
    #[serde(default)]
    pub start_ns: u64,
    /// Event time of the last record, Unix ns (0 in an older data set).
    #[serde(default)]
    pub end_ns: u64,
}

impl Marker {
    /// Whether it records which service logged each sampled trace's lines and the time range.
    pub fn has_lines(&self) -> bool {
        self.end_ns > 0
            && self.trace_lines.len() == self.trace_ids.len()
            && self.request_lines.len() == self.request_ids.len()
    }
}

fn build(args: &LookupArgs) -> Result<Marker> {
    let dir = &args.data_dir;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let t = Instant::now();
    let mut logs =
        SplitStore::<Logs>::open(dir, args.split_config(256)).context("open logs store")?;
    let mut spans =
        SplitStore::<Spans>::open(dir, args.split_config(128)).context("open spans store")?;
    let keys = KeyExtractor::new(&KeyConfig::default());
    let limits = Limits::default();
    // Event times: the build's data covers the hour before now.
    let start = skein_model::time::now_unix_nano() - 3_600_000_000_000;
    let mut g = Gen::new(args.seed, start);
    let expected_traces = (args.spans / 10).max(1);
    let per_trace_logs = 11u64; // ~9.5 with the trace ID + ~1.5 with the request ID only
    let background_per_trace = (args.logs.saturating_sub(expected_traces * per_trace_logs)) as f64
        / expected_traces as f64;
    let mut marker = Marker {
        logs: args.logs,
        actual_logs: 0,
        spans: args.spans,
        seed: args.seed,
        traces: 0,
        build_secs: 0.0,
        schema: schema_fingerprint(args),
        trace_ids: Vec::new(),
        request_ids: Vec::new(),
        trace_lines: Vec::new(),
        request_lines: Vec::new(),
        start_ns: start,
        end_ns: 0,
    };
    let (mut n_logs, mut n_spans) = (0u64, 0u64);
    let mut log_items: Vec<(Instance, skein_model::proto::logs::v1::LogRecord)> = Vec::new();
    let mut span_items = Vec::new();
    let mut bg_debt = 0.0f64;
    let mut last_report = Instant::now();
    let flush_logs = |items: &mut Vec<(Instance, skein_model::proto::logs::v1::LogRecord)>,
                      store: &mut SplitStore<Logs>|
     -> Result<u64> {
        let req = logs_export_grouped(std::mem::take(items));
        let (recs, rej) = logs_from_otlp(&req, &keys, &limits, start);
        if rej.count > 0 {
            bail!("rejected: {:?}", rej.first_reason);
        }
        store.add(&recs).context("add logs")?;
        Ok(recs.len() as u64)
    };
    while n_spans < args.spans || n_logs + (log_items.len() as u64) < args.logs {
        if n_spans < args.spans {
            let (info, trace) = g.trace(8, 12);
            marker.traces += 1;
            // Which service logged how many of the sampled trace's lines (the PRNG draws are
            // the same with or without it, so the data set does not change).
            let sampled = marker.traces % 10 == 1 && marker.trace_ids.len() < 20_000;
            let (mut by_trace, mut by_request) = ([0u32; 5], [0u32; 5]);
            let n_trace_logs = g.rng.range(8, 11);
            for _ in 0..n_trace_logs {
                let (svc, span_id) = *g.rng.pick(&info.spans);
                let ctx = LogCtx {
                    trace: Some((info.trace_id, span_id)),
                    request_id: g.rng.chance(0.5).then(|| info.request_id.clone()),
                    severity: None,
                };
                by_trace[svc] += 1;
                by_request[svc] += u32::from(ctx.request_id.is_some());
                let rec = g.log(svc, &ctx);
                log_items.push((
                    Instance {
                        service: svc,
                        host: g.rng.below(3) as usize,
                    },
                    rec,
                ));
            }
            // The gateway's access log: request ID only, no trace context.
            for _ in 0..g.rng.range(1, 2) {
                let ctx = LogCtx {
                    trace: None,
                    request_id: Some(info.request_id.clone()),
                    severity: Some(9),
                };
                by_request[0] += 1;
                let rec = g.log(0, &ctx);
                log_items.push((
                    Instance {
                        service: 0,
                        host: g.rng.below(3) as usize,
                    },
                    rec,
                ));
            }
            if sampled {
                marker.trace_ids.push(hex(&info.trace_id));
                marker.request_ids.push(info.request_id.clone());
                marker.trace_lines.push(by_trace);
                marker.request_lines.push(by_request);
            }
            n_spans += trace.len() as u64;
            span_items.extend(trace);
            bg_debt += background_per_trace;
        } else {
            bg_debt += 100.0;
        }
        while bg_debt >= 1.0 && n_logs + (log_items.len() as u64) < args.logs {
            bg_debt -= 1.0;
            let svc = g.rng.below(5) as usize;
            let rec = g.background_log(svc);
            log_items.push((
                Instance {
                    service: svc,
                    host: g.rng.below(3) as usize,
                },
                rec,
            ));
        }
        if log_items.len() >= 10_000 {
            n_logs += flush_logs(&mut log_items, &mut logs)?;
        }
        if span_items.len() >= 5_000 {
            let req = spans_export(std::mem::take(&mut span_items));
            let (recs, rej) = spans_from_otlp(&req, &keys, &limits);
            if rej.count > 0 {
                bail!("rejected: {:?}", rej.first_reason);
            }
            spans.add(&recs).context("add spans")?;
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            last_report = Instant::now();
            eprintln!(
                "  built {n_logs} logs, {n_spans} spans in {:.0} s",
                t.elapsed().as_secs_f64()
            );
        }
    }
    if !log_items.is_empty() {
        n_logs += flush_logs(&mut log_items, &mut logs)?;
    }
    if !span_items.is_empty() {
        let req = spans_export(std::mem::take(&mut span_items));
        let (recs, _) = spans_from_otlp(&req, &keys, &limits);
        spans.add(&recs).context("add spans")?;
    }
    let added = Instant::now();
    logs.commit(0).context("commit logs")?;
    spans.commit(0).context("commit spans")?;
    let committed = Instant::now();
    logs.close().context("close logs")?;
    spans.close().context("close spans")?;
    marker.build_secs = t.elapsed().as_secs_f64();
    eprintln!(
        "  built {n_logs} logs and {n_spans} spans: adding {:.0} s, commit {:.0} s, merges {:.0} s",
        (added - t).as_secs_f64(),
        (committed - added).as_secs_f64(),
        committed.elapsed().as_secs_f64()
    );
    marker.actual_logs = n_logs;
    marker.spans = args.spans;
    marker.end_ns = g.t_ns;
    std::fs::write(dir.join(MARKER), serde_json::to_vec(&marker)?).context("write marker")?;
    Ok(marker)
}

fn existing(dir: &Path, args: &LookupArgs) -> Option<Marker> {
    let bytes = std::fs::read(dir.join(MARKER)).ok()?;
    let m: Marker = serde_json::from_slice(&bytes).ok()?;
    (m.logs == args.logs
        && m.spans == args.spans
        && m.seed == args.seed
        && m.schema == schema_fingerprint(args))
    .then_some(m)
}

/// The log and span schemas as JSON and the split settings (doc-store block size and the
/// like): a data set written with others is rebuilt. A change in what a stored record holds is
/// not seen here: pass `--rebuild` after one.
fn schema_fingerprint(args: &LookupArgs) -> String {
    let logs = serde_json::to_string(&skein_store::schema::LogFields::new().schema);
    let spans = serde_json::to_string(&skein_store::schema::SpanFields::new().schema);
    format!(
        "{}|{}|{:?}",
        logs.unwrap_or_default(),
        spans.unwrap_or_default(),
        args.split_config(256)
    )
}

/// Counts segments of every split of a signal (a proxy for lookup cost).
pub fn segments(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| {
            std::fs::read_dir(e.path())
                .map(|r| {
                    r.filter_map(|f| f.ok())
                        .filter(|f| f.file_name().to_string_lossy().ends_with(".store"))
                        .count()
                })
                .unwrap_or(0)
        })
        .sum()
}

/// The data set of `args`: the one in `args.data_dir` when it has the same size, seed and
/// schemas (and, with `need_lines`, records which service logged each sampled trace's lines),
/// else built now. Answers it and whether it was built now.
pub fn dataset(args: &LookupArgs, need_lines: bool) -> Result<(Marker, bool)> {
    let found = (!args.rebuild)
        .then(|| existing(&args.data_dir, args))
        .flatten();
    match found {
        Some(m) if !need_lines || m.has_lines() => Ok((m, false)),
        found => {
            if found.is_some() {
                eprintln!("the data set predates the per-service line counts: rebuilding it");
            }
            eprintln!(
                "building {} logs and {} spans in {} (written directly with SplitStore, not over HTTP)",
                args.logs,
                args.spans,
                args.data_dir.display()
            );
            Ok((build(args)?, true))
        }
    }
}

/// Starts the collector on the data set (retention off, the data set's block size); answers it
/// and the seconds it took to open the indexes.
pub fn start_collector(args: &LookupArgs) -> Result<(Running, f64)> {
    let mut cfg = util::bench_config(&args.data_dir, 500);
    cfg.retention.max_age = "0".into();
    if let Some(kb) = args.docstore_block_kb {
        cfg.index.docstore_block_kb = kb;
    }
    let open_t = Instant::now();
    let r = Running::start(cfg)?;
    Ok((r, open_t.elapsed().as_secs_f64()))
}

/// Runs `lookup`.
pub fn run(args: LookupArgs) -> Result<serde_json::Value> {
    let load_before = util::load();
    let (marker, built_now) = dataset(&args, false)?;
    let logs_bytes = util::dir_bytes(&args.data_dir.join("logs"));
    let spans_bytes = util::dir_bytes(&args.data_dir.join("spans"));
    let log_segments = segments(&args.data_dir.join("logs"));
    let span_segments = segments(&args.data_dir.join("spans"));
    let block_kb = args.split_config(256).docstore_block_bytes / 1024;
    let (r, open_secs) = start_collector(&args)?;
    let api = r.api_url();
    let rt = util::client_runtime()?;
    let mut g = crate::datagen::Rng::new(args.seed ^ 0xabc);
    let mut results = Vec::new();
    let mut answer_sizes = (0usize, 0usize, 0usize);
    let total_runs = args.runs + 1;
    for run in 0..total_runs {
        let n = if run == 0 {
            (args.queries / 10).max(10)
        } else {
            args.queries
        };
        let mut h_all = util::histogram()?;
        let mut h_trace = util::histogram()?;
        let mut h_req = util::histogram()?;
        let keys: Vec<(bool, String)> = (0..n)
            .map(|_| {
                let by_trace = g.chance(0.5);
                let list = if by_trace {
                    &marker.trace_ids
                } else {
                    &marker.request_ids
                };
                (by_trace, g.pick(list).clone())
            })
            .collect();
        let parse_first = run == 1;
        rt.block_on(async {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .context("client")?;
            for (i, (by_trace, key)) in keys.iter().enumerate() {
                let t = Instant::now();
                let resp = client
                    .get(format!("{api}/api/v1/traces/{key}"))
                    .send()
                    .await
                    .context("GET trace")?;
                let st = resp.status();
                let body = resp.bytes().await.context("read trace")?;
                let us = t.elapsed().as_micros() as u64;
                if !st.is_success() {
                    bail!("GET /api/v1/traces/{key}: {st}");
                }
                if parse_first && i < 200 {
                    let v: serde_json::Value = serde_json::from_slice(&body)?;
                    answer_sizes.0 += 1;
                    answer_sizes.1 += v["spans"].as_array().map(|a| a.len()).unwrap_or(0);
                    answer_sizes.2 += v["logs"].as_array().map(|a| a.len()).unwrap_or(0);
                }
                h_all.record(us.max(1))?;
                if *by_trace {
                    h_trace.record(us.max(1))?;
                } else {
                    h_req.record(us.max(1))?;
                }
            }
            Ok::<(), anyhow::Error>(())
        })?;
        if run > 0 {
            results.push(serde_json::json!({
                "all": util::percentiles_ms(&h_all),
                "by_trace_id": util::percentiles_ms(&h_trace),
                "by_request_id": util::percentiles_ms(&h_req),
            }));
        }
    }
    r.stop()?;
    let mut rows = vec![
        row(
            "data set",
            format!(
                "{} logs, {} spans, {} traces (built {}; {:.0} s to build)",
                marker.actual_logs,
                marker.spans,
                marker.traces,
                if built_now { "now" } else { "earlier, reused" },
                marker.build_secs
            ),
        ),
        row(
            "how it was built",
            "SplitStore::add directly (same conversion and documents as the collector), not over HTTP",
        ),
        row(
            "on disk",
            format!(
                "logs {:.0} MB ({} segments), spans {:.0} MB ({} segments), doc-store blocks {} KiB",
                mb(logs_bytes),
                log_segments,
                mb(spans_bytes),
                span_segments,
                block_kb
            ),
        ),
        row(
            "collector start (open indexes)",
            format!("{open_secs:.1} s"),
        ),
        row(
            "answers (first 200 of run 1)",
            format!(
                "{:.1} spans and {:.1} logs on average",
                answer_sizes.1 as f64 / answer_sizes.0.max(1) as f64,
                answer_sizes.2 as f64 / answer_sizes.0.max(1) as f64
            ),
        ),
    ];
    for (i, res) in results.iter().enumerate() {
        let a = &res["all"];
        rows.push(row(
            &format!(
                "run {} ({} queries, half trace IDs, half request IDs)",
                i + 1,
                a["count"]
            ),
            format!(
                "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                a["p50_ms"].as_f64().unwrap_or(0.0),
                a["p90_ms"].as_f64().unwrap_or(0.0),
                a["p99_ms"].as_f64().unwrap_or(0.0),
                a["max_ms"].as_f64().unwrap_or(0.0)
            ),
        ));
        for k in ["by_trace_id", "by_request_id"] {
            let b = &res[k];
            rows.push(row(
                &format!("  {k}"),
                format!(
                    "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                    b["p50_ms"].as_f64().unwrap_or(0.0),
                    b["p90_ms"].as_f64().unwrap_or(0.0),
                    b["p99_ms"].as_f64().unwrap_or(0.0),
                    b["max_ms"].as_f64().unwrap_or(0.0)
                ),
            ));
        }
    }
    table(
        "lookup: GET /api/v1/traces/{key}, keep-alive, sequential",
        &rows,
    );
    let mut p99s: Vec<f64> = results
        .iter()
        .filter_map(|r| r["all"]["p99_ms"].as_f64())
        .collect();
    p99s.sort_by(|a, b| a.total_cmp(b));
    Ok(serde_json::json!({
        "bench": "lookup",
        "logs": marker.actual_logs,
        "spans": marker.spans,
        "traces": marker.traces,
        "built_now": built_now,
        "build_secs": marker.build_secs,
        "built_over_http": false,
        "logs_index_bytes": logs_bytes,
        "spans_index_bytes": spans_bytes,
        "log_segments": log_segments,
        "docstore_block_kb": block_kb,
        "span_segments": span_segments,
        "open_secs": open_secs,
        "runs": results,
        "median_p99_ms": p99s.get(p99s.len() / 2).copied(),
        "avg_spans_per_answer": answer_sizes.1 as f64 / answer_sizes.0.max(1) as f64,
        "avg_logs_per_answer": answer_sizes.2 as f64 / answer_sizes.0.max(1) as f64,
        "load_before": load_before,
        "load_after": util::load(),
    }))
}
