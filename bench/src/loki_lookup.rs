//! `loki-lookup`: latency of Loki's `GET /loki/api/v1/query_range` for one trace's lines,
//! `{service="<svc>"} | trace_id="<id>"` (and `| request_id="<id>"`, the request ID being a
//! correlation key), on the `lookup` data set (10 M logs, 1 M spans; built by
//! [`crate::lookup::dataset`], reused from the same folder), next to
//! `GET /api/v1/traces/{key}` for the same keys in the same run.
//!
//! `<svc>` is a service that logged lines of that trace (the build records, per sampled trace,
//! how many lines each service logged with its trace ID and with its request ID), drawn at
//! random among those; `start`/`end` cover the data set's time range (the hour before the
//! build), `limit=1000`, newest first (Loki's default). Every answer is checked: status 200,
//! at least one line, every stream's `trace_id` (or `request_id`) label equal to the key asked
//! and its `service` the one asked; the number of lines is compared with what the data set
//! holds (mismatches are counted and reported). The two routes are asked in turn, each query
//! once on each, the first route alternating, so neither always gets the other's page cache.

use crate::datagen::{Rng, SERVICES};
use crate::lookup::{self, LookupArgs, Marker};
use crate::util::{self, mb, row, table};
use anyhow::{Context, Result, bail};
use skein_model::KeyConfig;
use skein_model::keys::KeyExtractor;
use std::time::Instant;

/// Options of `loki-lookup`.
#[derive(Debug, Clone, clap::Args)]
pub struct LokiLookupArgs {
    /// The data set and the runs (the same options as `lookup`).
    #[command(flatten)]
    pub lookup: LookupArgs,
    /// `limit` of each query_range request.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    /// The goal: p99 of the trace-ID query, ms (median of the runs).
    #[arg(long, default_value_t = 20.0)]
    pub goal_p99_ms: f64,
}

/// Which key a query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Trace,
    Request,
}

impl Key {
    fn label(self) -> &'static str {
        match self {
            Key::Trace => "trace_id",
            Key::Request => "request_id",
        }
    }
}

/// One planned query.
#[derive(Debug, Clone)]
struct Query {
    key: Key,
    value: String,
    service: &'static str,
    expected_lines: u32,
}

/// Percent-encodes a query-string value (everything but RFC 3986's unreserved characters).
fn encode(s: &str) -> String {
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

/// The LogQL of a query.
fn logql(q: &Query) -> String {
    format!(
        "{{service=\"{}\"}} | {}=\"{}\"",
        q.service,
        q.key.label(),
        q.value
    )
}

/// Draws `n` queries: sampled traces at random, trace ID or (when `with_request`) request ID
/// half each, the service drawn among those that logged lines with that key.
fn plan(g: &mut Rng, m: &Marker, n: usize, with_request: bool) -> Vec<Query> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let i = g.below(m.trace_ids.len() as u64) as usize;
        let key = if with_request && g.chance(0.5) {
            Key::Request
        } else {
            Key::Trace
        };
        let (value, counts) = match key {
            Key::Trace => (&m.trace_ids[i], m.trace_lines[i]),
            Key::Request => (&m.request_ids[i], m.request_lines[i]),
        };
        let svcs: Vec<usize> = (0..SERVICES.len()).filter(|s| counts[*s] > 0).collect();
        if svcs.is_empty() {
            continue;
        }
        let s = *g.pick(&svcs);
        out.push(Query {
            key,
            value: value.clone(),
            service: SERVICES[s],
            expected_lines: counts[s],
        });
    }
    out
}

/// Checks a query_range answer; answers its number of lines.
fn check_loki(body: &[u8], q: &Query) -> Result<u32> {
    let v: serde_json::Value =
        serde_json::from_slice(body).context("query_range answer is not JSON")?;
    if v["status"] != "success" || v["data"]["resultType"] != "streams" {
        bail!(
            "query_range {}: not a streams answer: {}",
            logql(q),
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    let mut lines = 0u32;
    for st in v["data"]["result"].as_array().into_iter().flatten() {
        let labels = &st["stream"];
        if labels[q.key.label()].as_str() != Some(q.value.as_str()) {
            bail!(
                "query_range {}: a stream with {}={} (labels {labels})",
                logql(q),
                q.key.label(),
                labels[q.key.label()]
            );
        }
        if labels["service"].as_str() != Some(q.service) {
            bail!(
                "query_range {}: a stream of service {}",
                logql(q),
                labels["service"]
            );
        }
        lines += st["values"].as_array().map(|a| a.len()).unwrap_or(0) as u32;
    }
    if lines == 0 {
        bail!(
            "query_range {}: no lines (expected {})",
            logql(q),
            q.expected_lines
        );
    }
    Ok(lines)
}

/// Checks a `/api/v1/traces/{key}` answer; answers its number of logs.
fn check_native(body: &[u8], q: &Query) -> Result<usize> {
    let v: serde_json::Value = serde_json::from_slice(body).context("trace answer is not JSON")?;
    let logs = v["logs"].as_array().map(|a| a.len()).unwrap_or(0);
    if logs == 0 {
        bail!("GET /api/v1/traces/{}: no logs", q.value);
    }
    Ok(logs)
}

/// Histograms of one run.
struct RunHists {
    loki: [hdrhistogram::Histogram<u64>; 3],
    native: [hdrhistogram::Histogram<u64>; 3],
}

impl RunHists {
    fn new() -> Result<Self> {
        Ok(RunHists {
            loki: [util::histogram()?, util::histogram()?, util::histogram()?],
            native: [util::histogram()?, util::histogram()?, util::histogram()?],
        })
    }

    fn json(&self) -> serde_json::Value {
        let p = |h: &[hdrhistogram::Histogram<u64>; 3]| {
            serde_json::json!({
                "all": util::percentiles_ms(&h[0]),
                "by_trace_id": util::percentiles_ms(&h[1]),
                "by_request_id": util::percentiles_ms(&h[2]),
            })
        };
        serde_json::json!({"loki": p(&self.loki), "native": p(&self.native)})
    }
}

/// What the checks counted over the measured runs.
#[derive(Debug, Default)]
struct Checked {
    answers: usize,
    lines: u64,
    count_mismatches: usize,
    first_mismatch: Option<String>,
    native_logs: u64,
}

fn pct(v: &serde_json::Value) -> String {
    let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
    format!(
        "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (n {})",
        f("p50_ms"),
        f("p90_ms"),
        f("p99_ms"),
        f("max_ms"),
        v["count"]
    )
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.get(xs.len() / 2).copied()
}

/// Runs `loki-lookup`.
pub fn run(args: LokiLookupArgs) -> Result<serde_json::Value> {
    let la = &args.lookup;
    let load_before = util::load();
    let (marker, built_now) = lookup::dataset(la, true)?;
    let logs_bytes = util::dir_bytes(&la.data_dir.join("logs"));
    let log_segments = lookup::segments(&la.data_dir.join("logs"));
    let with_request = KeyExtractor::new(&KeyConfig::default()).is_key_name("request_id");
    let (r, open_secs) = lookup::start_collector(la)?;
    let api = r.api_url();
    // The data set's range: the hour before its build (whole seconds around it).
    let start_s = marker.start_ns / 1_000_000_000;
    let end_s = (marker.end_ns / 1_000_000_000 + 1).max(start_s + 3600);
    let rt = util::client_runtime()?;
    let mut g = Rng::new(la.seed ^ 0x10c1);
    let mut results = Vec::new();
    let mut loads = Vec::new();
    let mut checked = Checked::default();
    for run in 0..=la.runs {
        let n = if run == 0 {
            (la.queries / 10).max(10)
        } else {
            la.queries
        };
        let queries = plan(&mut g, &marker, n, with_request);
        let mut h = RunHists::new()?;
        let load_run = util::load();
        let mut ck = Checked::default();
        rt.block_on(async {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .context("client")?;
            for (i, q) in queries.iter().enumerate() {
                let loki_url = format!(
                    "{api}/loki/api/v1/query_range?query={}&start={start_s}&end={end_s}&limit={}",
                    encode(&logql(q)),
                    args.limit
                );
                let native_url = format!("{api}/api/v1/traces/{}", q.value);
                let slot = 1 + usize::from(q.key == Key::Request);
                for leg in 0..2 {
                    let loki = (leg == 0) == (i % 2 == 0);
                    let url = if loki { &loki_url } else { &native_url };
                    let t = Instant::now();
                    let resp = client.get(url).send().await.context("GET")?;
                    let st = resp.status();
                    let body = resp.bytes().await.context("read answer")?;
                    let us = (t.elapsed().as_micros() as u64).max(1);
                    if !st.is_success() {
                        bail!(
                            "GET {url}: {st}: {}",
                            String::from_utf8_lossy(&body[..body.len().min(300)])
                        );
                    }
                    if loki {
                        let lines = check_loki(&body, q)?;
                        ck.answers += 1;
                        ck.lines += u64::from(lines);
                        if lines != q.expected_lines {
                            ck.count_mismatches += 1;
                            ck.first_mismatch.get_or_insert_with(|| {
                                format!(
                                    "{}: {lines} lines, the data set holds {}",
                                    logql(q),
                                    q.expected_lines
                                )
                            });
                        }
                        h.loki[0].record(us)?;
                        h.loki[slot].record(us)?;
                    } else {
                        ck.native_logs += check_native(&body, q)? as u64;
                        h.native[0].record(us)?;
                        h.native[slot].record(us)?;
                    }
                }
            }
            Ok::<(), anyhow::Error>(())
        })?;
        if run > 0 {
            let mut res = h.json();
            res["load_before"] = load_run.clone().into();
            res["load_after"] = util::load().into();
            loads.push(format!("{load_run} -> {}", util::load()));
            results.push(res);
            checked.answers += ck.answers;
            checked.lines += ck.lines;
            checked.count_mismatches += ck.count_mismatches;
            checked.native_logs += ck.native_logs;
            if checked.first_mismatch.is_none() {
                checked.first_mismatch = ck.first_mismatch;
            }
        }
    }
    r.stop()?;
    let p99 = |route: &str, k: &str| -> Vec<f64> {
        results
            .iter()
            .filter_map(|r| r[route][k]["p99_ms"].as_f64())
            .collect()
    };
    let loki_trace_p99 = median(p99("loki", "by_trace_id"));
    let goal_met = loki_trace_p99.map(|p| p <= args.goal_p99_ms);
    let mut rows = vec![
        row(
            "data set",
            format!(
                "{} logs, {} spans, {} traces (built {}; {:.0} s to build), logs {:.0} MB in {} segments",
                marker.actual_logs,
                marker.spans,
                marker.traces,
                if built_now { "now" } else { "earlier, reused" },
                marker.build_secs,
                mb(logs_bytes),
                log_segments
            ),
        ),
        row(
            "collector start (open indexes)",
            format!("{open_secs:.1} s"),
        ),
        row(
            "query",
            format!(
                "{{service=\"<svc>\"}} | trace_id=\"<id>\"{}, start {start_s} end {end_s}, limit {}",
                if with_request {
                    " (half: | request_id=\"<id>\")"
                } else {
                    ""
                },
                args.limit
            ),
        ),
        row(
            "answers checked (measured runs)",
            format!(
                "{} query_range answers, {:.1} lines each on average, all labels right; line count differing from the data set: {}{}; /api/v1/traces: {:.1} logs each",
                checked.answers,
                checked.lines as f64 / checked.answers.max(1) as f64,
                checked.count_mismatches,
                checked
                    .first_mismatch
                    .as_deref()
                    .map(|m| format!(" (first: {m})"))
                    .unwrap_or_default(),
                checked.native_logs as f64 / checked.answers.max(1) as f64
            ),
        ),
    ];
    for (i, res) in results.iter().enumerate() {
        rows.push(row(
            &format!("run {} (load {})", i + 1, loads[i]),
            String::new(),
        ));
        for (route, name) in [("loki", "query_range"), ("native", "/api/v1/traces/{key}")] {
            for k in ["by_trace_id", "by_request_id", "all"] {
                if res[route][k]["count"].as_u64().unwrap_or(0) == 0 {
                    continue;
                }
                rows.push(row(&format!("  {name} {k}"), pct(&res[route][k])));
            }
        }
    }
    rows.push(row(
        "goal: query_range trace_id p99 (median of runs)",
        format!(
            "{} against {} ms: {}",
            loki_trace_p99
                .map(|p| format!("{p:.2} ms"))
                .unwrap_or_else(|| "-".into()),
            args.goal_p99_ms,
            match goal_met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "not measured",
            }
        ),
    ));
    table(
        "loki-lookup: GET /loki/api/v1/query_range and /api/v1/traces/{key}, keep-alive, sequential",
        &rows,
    );
    Ok(serde_json::json!({
        "bench": "loki-lookup",
        "logs": marker.actual_logs,
        "spans": marker.spans,
        "traces": marker.traces,
        "built_now": built_now,
        "build_secs": marker.build_secs,
        "logs_index_bytes": logs_bytes,
        "log_segments": log_segments,
        "open_secs": open_secs,
        "start_s": start_s,
        "end_s": end_s,
        "limit": args.limit,
        "request_id_variant": with_request,
        "queries_per_run": la.queries,
        "runs": results,
        "answers_checked": checked.answers,
        "avg_lines_per_answer": checked.lines as f64 / checked.answers.max(1) as f64,
        "line_count_mismatches": checked.count_mismatches,
        "first_mismatch": checked.first_mismatch,
        "median_p99_ms": {
            "loki_trace_id": loki_trace_p99,
            "loki_request_id": median(p99("loki", "by_request_id")),
            "loki_all": median(p99("loki", "all")),
            "native_trace_id": median(p99("native", "by_trace_id")),
            "native_request_id": median(p99("native", "by_request_id")),
            "native_all": median(p99("native", "all")),
        },
        "goal_p99_ms": args.goal_p99_ms,
        "goal_met": goal_met,
        "load_before": load_before,
        "load_after": util::load(),
    }))
}
