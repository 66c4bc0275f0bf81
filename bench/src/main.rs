//! `skein-bench`: Skein's benchmarks, run against the real collector started in this process
//! (`skein_collector::run` on 127.0.0.1 ports and a temporary data dir).
//!
//! - `ingest`: log records over OTLP/HTTP protobuf until searchable, against bare tantivy with
//!   the same schema and documents; size on disk against the raw NDJSON.
//! - `spans`: spans over OTLP/HTTP protobuf until searchable.
//! - `freshness`: time from a log's 2xx to its first appearance in `/api/v1/logs?q=`.
//! - `lookup`: `GET /api/v1/traces/{key}` latency on a large data set.
//! - `loki-lookup`: Loki's `/loki/api/v1/query_range` for one trace's lines
//!   (`{service="…"} | trace_id="…"`) on the `lookup` data set, next to `/api/v1/traces/{key}`.
//! - `agent-throughput`: `skein agent` (the real binary, a child process) reading a large file
//!   of JSON lines to a null sink or the collector: MiB/s, peak RSS, CPU.
//! - `agent-overhead`: the agent's steady-state CPU and RSS (1,000 lines/s, host metrics every
//!   10 s) next to Prometheus' node_exporter in the same run.
//! - `metrics-ingest`: gauge samples/s into the real `skein collector` over OTLP/HTTP.
//! - `metrics-query`: a 24 h range query over 1,000 series, in process, through the collector
//!   and on Prometheus with the same samples.
//! - `promql-query`: PromQL range queries (`sum by (x) (rate(...))`, `histogram_quantile`)
//!   over 24 h of 1,000 counter series and a 100-label-set histogram, in process, through the
//!   collector's Prometheus API and on Prometheus with the same samples.
//! - `alert-latency`: from a breaching record's 2xx to the webhook at a receiver.
//! - `tui-frames`: `skein tui` frame time and idle CPU.
//! - `overload`: `skein collector` (a child process) offered three times the ingest it
//!   sustains over OTLP/HTTP and gRPC: refusals, RSS, lookup latency, recovery, nothing lost.
//!
//! Each prints tables, then one line of JSON with the results (the last line of output).
//! Build and run in release mode: `cargo run --release -p skein-bench -- ingest`.

mod agent_overhead;
mod agent_throughput;
mod agent_util;
mod alert_latency;
mod datagen;
mod freshness;
mod ingest;
mod loki_lookup;
mod lookup;
mod metrics_ingest;
mod metrics_query;
mod overload;
mod prom_peer;
mod promql_query;
mod tui_frames;
mod util;

use anyhow::Result;

/// With `--features mimalloc`: mimalloc instead of the system allocator (an experiment).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};

/// Skein's benchmarks.
#[derive(Debug, Parser)]
#[command(name = "skein-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Logs over OTLP/HTTP protobuf until searchable, against bare tantivy.
    Ingest(ingest::IngestArgs),
    /// Spans over OTLP/HTTP protobuf until searchable.
    Spans(ingest::SpansArgs),
    /// Time from a log's 2xx to visible in /api/v1/logs, under background load.
    Freshness(freshness::FreshnessArgs),
    /// GET /api/v1/traces/{key} latency on a large data set.
    Lookup(lookup::LookupArgs),
    /// /loki/api/v1/query_range for a trace's lines on the lookup data set, next to /api/v1/traces.
    LokiLookup(loki_lookup::LokiLookupArgs),
    /// `skein agent` reading a large file of JSON lines: MiB/s, peak RSS, CPU.
    AgentThroughput(agent_throughput::ThroughputArgs),
    /// `skein agent` in steady state next to node_exporter: CPU % and RSS.
    AgentOverhead(agent_overhead::OverheadArgs),
    /// Gauge samples/s into `skein collector` over OTLP/HTTP protobuf.
    MetricsIngest(metrics_ingest::MetricsIngestArgs),
    /// A 24 h range query over 1,000 series: p50/p90/p99, next to Prometheus.
    MetricsQuery(metrics_query::MetricsQueryArgs),
    /// PromQL range queries over 24 h (rate, histogram_quantile): p99 next to Prometheus.
    PromqlQuery(promql_query::PromqlQueryArgs),
    /// From a breaching record's 2xx to the webhook at a receiver, default settings.
    AlertLatency(alert_latency::AlertLatencyArgs),
    /// `skein tui` frame time (10,000-span trace, logs at 10,000 lines/s) and idle CPU.
    TuiFrames(tui_frames::TuiFramesArgs),
    /// `skein collector` at three times the ingest it sustains: refusals, RSS, lookups, loss.
    Overload(overload::OverloadArgs),
}

fn main() -> Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber_init();
    }
    let cli = Cli::parse();
    let started = std::time::Instant::now();
    let mut out = match cli.cmd {
        Cmd::Ingest(a) => ingest::run_ingest(a)?,
        Cmd::Spans(a) => ingest::run_spans(a)?,
        Cmd::Freshness(a) => freshness::run(a)?,
        Cmd::Lookup(a) => lookup::run(a)?,
        Cmd::LokiLookup(a) => loki_lookup::run(a)?,
        Cmd::AgentThroughput(a) => agent_throughput::run(a)?,
        Cmd::AgentOverhead(a) => agent_overhead::run(a)?,
        Cmd::MetricsIngest(a) => metrics_ingest::run(a)?,
        Cmd::MetricsQuery(a) => metrics_query::run(a)?,
        Cmd::PromqlQuery(a) => promql_query::run(a)?,
        Cmd::AlertLatency(a) => alert_latency::run(a)?,
        Cmd::TuiFrames(a) => tui_frames::run(a)?,
        Cmd::Overload(a) => overload::run(a)?,
    };
    out["wall_secs"] = started.elapsed().as_secs_f64().into();
    out["unix_time"] = (skein_model::time::now_unix_nano() / 1_000_000_000).into();
    println!("\n{}", serde_json::to_string(&out)?);
    Ok(())
}

/// The collector logs through `tracing`; without a subscriber its lines are dropped, which is
/// what a benchmark wants. `RUST_LOG` is accepted for symmetry but not wired to a subscriber
/// (that would add a dependency for debugging only).
fn tracing_subscriber_init() {}
