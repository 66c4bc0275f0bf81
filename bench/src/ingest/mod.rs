//! `ingest` and `spans`: pre-encoded OTLP/HTTP protobuf batches sent by parallel clients to
//! the real collector, timed from the first send until `/metrics` says every record is
//! committed (searchable); bare tantivy on the same records as the peer; and single-threaded
//! timings of each part of the collector's path.

mod bare;
mod collector;
mod parts;
mod send;
mod spans;

pub use self::spans::{SpansArgs, run_spans};

use self::bare::bare_tantivy;
use self::collector::collector_ingest;
use self::parts::parts;
use crate::datagen::{Gen, ndjson_line};
use crate::util::{self, mb, row, table};
use anyhow::{Result, bail};
use bytes::Bytes;
use prost::Message;
use skein_model::keys::KeyExtractor;
use skein_model::otlp::logs_from_otlp;
use skein_model::{KeyConfig, Limits, LogRecord};
use std::time::Instant;

/// Options of `ingest`.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    /// Log records to send.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: usize,
    /// Records per OTLP request.
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
    /// Skip the bare-tantivy peer.
    #[arg(long)]
    pub no_bare: bool,
    /// Skip the single-threaded timings of the parts.
    #[arg(long)]
    pub no_parts: bool,
    /// Only the bare-tantivy peer and the parts (no collector).
    #[arg(long)]
    pub only_bare: bool,
    /// Send to an already running collector instead of starting one in-process:
    /// its OTLP/HTTP base URL (e.g. http://127.0.0.1:4318). Needs --external-api.
    #[arg(long, requires = "external_api")]
    pub external_otlp: Option<String>,
    /// The query API base URL of the external collector (e.g. http://127.0.0.1:7700).
    #[arg(long)]
    pub external_api: Option<String>,
}

/// Sizes of the generated records.
#[derive(Debug, Default)]
struct Dataset {
    bodies: Vec<Bytes>,
    records: Vec<Vec<LogRecord>>,
    n: u64,
    proto_bytes: u64,
    ndjson_bytes: u64,
    model_json_bytes: u64,
}

fn keys() -> KeyExtractor {
    KeyExtractor::new(&KeyConfig::default())
}

fn make_logs(args: &IngestArgs) -> Result<Dataset> {
    let start = skein_model::time::now_unix_nano() - 3_600_000_000_000;
    let mut g = Gen::new(args.seed, start);
    let mut d = Dataset::default();
    let k = keys();
    let limits = Limits::default();
    let mut line = Vec::with_capacity(1024);
    let mut left = args.records;
    while left > 0 {
        let n = left.min(args.batch);
        left -= n;
        let req = g.logs_request(n);
        let body = req.encode_to_vec();
        d.proto_bytes += body.len() as u64;
        let (recs, rej) = logs_from_otlp(&req, &k, &limits, start);
        if rej.count > 0 {
            bail!("generated data was rejected: {:?}", rej.first_reason);
        }
        for r in &recs {
            line.clear();
            ndjson_line(r, &mut line)?;
            d.ndjson_bytes += line.len() as u64;
            d.model_json_bytes += serde_json::to_vec(r)?.len() as u64 + 1;
        }
        d.n += recs.len() as u64;
        d.records.push(recs);
        d.bodies.push(Bytes::from(body));
    }
    Ok(d)
}

/// Runs `ingest`.
pub fn run_ingest(args: IngestArgs) -> Result<serde_json::Value> {
    let load_before = util::load();
    let t = Instant::now();
    let d = make_logs(&args)?;
    let gen_secs = t.elapsed().as_secs_f64();
    table(
        "data",
        &[
            row("records", d.n),
            row("OTLP requests", d.bodies.len()),
            row("protobuf bytes", format!("{:.1} MB", mb(d.proto_bytes))),
            row(
                "raw NDJSON bytes (flat log lines)",
                format!(
                    "{:.1} MB ({:.0} B/record)",
                    mb(d.ndjson_bytes),
                    d.ndjson_bytes as f64 / d.n as f64
                ),
            ),
            row(
                "Skein model JSON bytes",
                format!("{:.1} MB", mb(d.model_json_bytes)),
            ),
            row("generated and encoded in", format!("{gen_secs:.1} s")),
        ],
    );
    let mut result = serde_json::json!({
        "bench": "ingest",
        "records": d.n,
        "batch": args.batch,
        "concurrency": args.concurrency,
        "commit_interval_ms": args.commit_interval_ms,
        "proto_bytes": d.proto_bytes,
        "raw_ndjson_bytes": d.ndjson_bytes,
        "model_json_bytes": d.model_json_bytes,
        "load_before": load_before,
    });

    if !args.only_bare {
        let collector = collector_ingest(&args, &d)?;
        merge(&mut result, collector);
    }
    if !args.no_bare || args.only_bare {
        let (secs, bytes, cpu) = bare_tantivy(&d.records)?;
        let rps = d.n as f64 / secs;
        let mbps = mb(d.ndjson_bytes) / secs;
        let mut rows = vec![
            row("time", format!("{secs:.2} s")),
            row("records/s", format!("{rps:.0}")),
            row("raw MB/s", format!("{mbps:.1}")),
            row("raw MB/s per core", format!("{:.1}", mbps / 2.0)),
            row(
                "process CPU",
                format!(
                    "{cpu:.1} s = {:.2} cores, {:.1} us/record",
                    cpu / secs,
                    cpu * 1e6 / d.n as f64
                ),
            ),
            row("index size", format!("{:.1} MB", mb(bytes))),
        ];
        result["bare_secs"] = secs.into();
        result["bare_records_per_s"] = rps.into();
        result["bare_mb_per_s"] = mbps.into();
        result["bare_index_bytes"] = bytes.into();
        result["bare_cpu_secs"] = cpu.into();
        if let Some(c) = result["collector_mb_per_s"].as_f64() {
            let ratio = c / mbps;
            rows.push(row("collector / bare", format!("{:.0}%", ratio * 100.0)));
            result["collector_over_bare"] = ratio.into();
        }
        table(
            "bare tantivy (same schema and documents, 2 threads, 256 MiB)",
            &rows,
        );
    }
    if !args.no_parts {
        let (p, variants) = parts(&d)?;
        let bytes_per_rec = d.ndjson_bytes as f64 / d.n as f64;
        let rows: Vec<(String, String)> = p
            .iter()
            .map(|(k, ns)| {
                row(
                    k,
                    format!(
                        "{:>8.0} ns/record  {:>7.1} raw MB/s on one core",
                        ns,
                        bytes_per_rec * 1e3 / ns
                    ),
                )
            })
            .collect();
        table("parts, single-threaded", &rows);
        result["parts_ns_per_record"] = serde_json::Value::Object(
            p.iter()
                .map(|(k, v)| (k.trim().to_string(), serde_json::Value::from(*v)))
                .collect(),
        );
        let full = variants.first().map(|v| (v.1, v.2)).unwrap_or((1.0, 1.0));
        let rows: Vec<(String, String)> = variants
            .iter()
            .map(|(k, ns, b)| {
                row(
                    k,
                    format!(
                        "{:>6.0} ns/record ({:>4.0}%)  {:>5.0} B/record on disk ({:>4.0}%)",
                        ns,
                        ns / full.0 * 100.0,
                        b,
                        b / full.1 * 100.0
                    ),
                )
            })
            .collect();
        table(
            "tantivy experiment: the same records, 1 indexing thread, without one part",
            &rows,
        );
        result["tantivy_variants"] = serde_json::Value::Array(
            variants
                .iter()
                .map(|(k, ns, b)| serde_json::json!({"variant": k, "ns_per_record": ns, "bytes_per_record": b}))
                .collect(),
        );
    }
    result["load_after"] = util::load().into();
    Ok(result)
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}
