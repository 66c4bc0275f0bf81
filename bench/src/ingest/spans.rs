//! `spans`: whole traces over OTLP/HTTP protobuf until searchable.

use super::keys;
use super::send::{Target, send_all};
use crate::datagen::Gen;
use crate::util::{self, Running, mb, row, table};
use anyhow::{Result, bail};
use bytes::Bytes;
use prost::Message;
use skein_model::Limits;
use skein_model::otlp::spans_from_otlp;
use skein_model::proto::collector::trace::v1::ExportTraceServiceRequest;
use std::sync::Arc;

/// Options of `spans`.
#[derive(Debug, Clone, clap::Args)]
pub struct SpansArgs {
    /// Spans to send (whole traces of 5–12 spans; the last trace may make it a little more).
    #[arg(long, default_value_t = 500_000)]
    pub spans: usize,
    /// Spans per OTLP request (whole traces, so about this many).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Parallel HTTP clients.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// The collector's index.commit_interval_ms.
    #[arg(long, default_value_t = 500)]
    pub commit_interval_ms: u64,
    /// PRNG seed of the data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Runs `spans`.
pub fn run_spans(args: SpansArgs) -> Result<serde_json::Value> {
    let load_before = util::load();
    let start = skein_model::time::now_unix_nano() - 3_600_000_000_000;
    let mut g = Gen::new(args.seed, start);
    let k = keys();
    let limits = Limits::default();
    let mut bodies = Vec::new();
    let mut n = 0u64;
    let mut proto = 0u64;
    let mut model_json = 0u64;
    let mut errors = 0u64;
    let mut traces = 0u64;
    while (n as usize) < args.spans {
        let mut items = Vec::with_capacity(args.batch + 12);
        while items.len() < args.batch && (n as usize) + items.len() < args.spans {
            let (_, spans) = g.trace(5, 12);
            traces += 1;
            items.extend(spans);
        }
        let req: ExportTraceServiceRequest = crate::datagen::spans_export(items);
        let (spans, rej) = spans_from_otlp(&req, &k, &limits);
        if rej.count > 0 {
            bail!("generated spans were rejected: {:?}", rej.first_reason);
        }
        for s in &spans {
            model_json += serde_json::to_vec(s)?.len() as u64 + 1;
            errors += u64::from(s.is_error());
        }
        n += spans.len() as u64;
        let body = req.encode_to_vec();
        proto += body.len() as u64;
        bodies.push(Bytes::from(body));
    }
    table(
        "data",
        &[
            row("spans", n),
            row("traces", traces),
            row("error spans", errors),
            row("OTLP requests", bodies.len()),
            row("protobuf bytes", format!("{:.1} MB", mb(proto))),
            row(
                "Skein model JSON bytes",
                format!("{:.1} MB", mb(model_json)),
            ),
        ],
    );
    let rt = util::client_runtime()?;
    let data = util::temp_dir("skein-bench-spans-")?;
    let r = Running::start(util::bench_config(data.path(), args.commit_interval_ms))?;
    let cpu0 = util::process_cpu();
    let th0 = util::thread_cpu();
    let (otlp, api) = (r.otlp_url(), r.api_url());
    let to = Target {
        otlp: &otlp,
        api: &api,
        path: "/v1/traces",
        signal: "spans",
        already: 0,
    };
    let sent = send_all(&rt, to, Arc::new(bodies), args.concurrency, n)?;
    let cpu = util::process_cpu() - cpu0;
    let groups = util::cpu_by_group(&th0, &util::thread_cpu());
    let secs = (sent.searchable - sent.first_send).as_secs_f64();
    let ack_secs = (sent.all_acked - sent.first_send).as_secs_f64();
    let sps = n as f64 / secs;
    let spans_bytes = util::dir_bytes(&data.path().join("spans"));
    r.stop()?;
    let mut rows = vec![
        row("all acknowledged (2xx) after", format!("{ack_secs:.2} s")),
        row("all searchable after", format!("{secs:.2} s")),
        row("spans/s", format!("{sps:.0}")),
        row("503 retries", sent.retries),
        row(
            "process CPU",
            format!("{cpu:.1} s = {:.2} cores", cpu / secs),
        ),
        row(
            "spans index on disk",
            format!(
                "{:.1} MB ({:.0} B/span; model JSON {:.0} B/span)",
                mb(spans_bytes),
                spans_bytes as f64 / n as f64,
                model_json as f64 / n as f64
            ),
        ),
    ];
    for (k, v) in &groups {
        if *v >= 0.05 {
            rows.push(row(&format!("  CPU {k}"), format!("{v:.1} s")));
        }
    }
    table("collector: OTLP/HTTP protobuf spans -> searchable", &rows);
    Ok(serde_json::json!({
        "bench": "spans",
        "spans": n,
        "traces": traces,
        "batch": args.batch,
        "concurrency": args.concurrency,
        "proto_bytes": proto,
        "secs": secs,
        "ack_secs": ack_secs,
        "spans_per_s": sps,
        "retries_503": sent.retries,
        "process_cpu_secs": cpu,
        "cpu_by_thread": groups,
        "spans_index_bytes": spans_bytes,
        "load_before": load_before,
        "load_after": util::load(),
    }))
}
