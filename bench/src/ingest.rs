//! `ingest` and `spans`: pre-encoded OTLP/HTTP protobuf batches sent by parallel clients to
//! the real collector, timed from the first send until `/metrics` says every record is
//! committed (searchable); bare tantivy on the same records as the peer; and single-threaded
//! timings of each part of the collector's path.

use crate::datagen::{Gen, ndjson_line};
use crate::util::{self, Running, mb, row, table};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use prost::Message;
use skein_model::keys::KeyExtractor;
use skein_model::otlp::{logs_from_otlp, spans_from_otlp};
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use skein_model::proto::collector::trace::v1::ExportTraceServiceRequest;
use skein_model::{KeyConfig, Limits, LogRecord};
use skein_store::SplitConfig;
use skein_store::schema::{LogFields, register_tokenizers};
use skein_store::tantivy::store::{Compressor, ZstdCompressor};
use skein_store::tantivy::{Index, IndexSettings, TantivyDocument};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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

/// What sending all batches took.
struct Sent {
    first_send: Instant,
    all_acked: Instant,
    searchable: Instant,
    retries: u64,
}

/// Where [`send_all`] sends and what it waits for.
struct Target<'a> {
    /// OTLP/HTTP base URL.
    otlp: &'a str,
    /// Query API base URL.
    api: &'a str,
    /// `/v1/logs` or `/v1/traces`.
    path: &'a str,
    /// `logs` or `spans`.
    signal: &'static str,
    /// Records of the signal indexed before the run.
    already: u64,
}

/// Sends every body to `{otlp}{path}` with `concurrency` clients and waits until `signal` has
/// `target` records indexed.
fn send_all(
    rt: &tokio::runtime::Runtime,
    to: Target<'_>,
    bodies: Arc<Vec<Bytes>>,
    concurrency: usize,
    target: u64,
) -> Result<Sent> {
    let url = format!("{}{}", to.otlp, to.path);
    let api = to.api.to_string();
    let (signal, already) = (to.signal, to.already);
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency + 2)
            .build()
            .context("http client")?;
        let next = Arc::new(AtomicUsize::new(0));
        let retries = Arc::new(AtomicU64::new(0));
        let first_send = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, url, bodies, next, retries) = (
                client.clone(),
                url.clone(),
                bodies.clone(),
                next.clone(),
                retries.clone(),
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else {
                        return Ok::<(), anyhow::Error>(());
                    };
                    let mut attempt = 0u32;
                    loop {
                        let resp = client
                            .post(&url)
                            .header("content-type", "application/x-protobuf")
                            .body(body.clone())
                            .send()
                            .await
                            .with_context(|| format!("POST {url}"))?;
                        let st = resp.status();
                        let _ = resp.bytes().await;
                        if st.is_success() {
                            break;
                        }
                        if (st.as_u16() == 503 || st.as_u16() == 429) && attempt < 10_000 {
                            attempt += 1;
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                        bail!("POST {url}: status {st}");
                    }
                }
            }));
        }
        let poll_client = client.clone();
        let poll_api = api.clone();
        let poller = tokio::spawn(async move {
            util::wait_indexed(
                &poll_client,
                &poll_api,
                signal,
                already + target,
                Duration::from_millis(20),
                Duration::from_secs(3600),
            )
            .await
        });
        for t in tasks {
            t.await.context("sender task")??;
        }
        let all_acked = Instant::now();
        let searchable = poller.await.context("poller task")??;
        Ok(Sent {
            first_send,
            all_acked,
            searchable,
            retries: retries.load(Ordering::Relaxed),
        })
    })
}

/// The peer: the same records, schema and documents into one tantivy index with the
/// collector's default split settings (256 MiB, 2 threads, its zstd doc store and block size),
/// one commit at the end.
fn bare_tantivy(records: &[Vec<LogRecord>]) -> Result<(f64, u64, f64)> {
    let dir = util::temp_dir("skein-bench-bare-")?;
    let fields = LogFields::new();
    let split = SplitConfig::default();
    let index = Index::builder()
        .schema(fields.schema.clone())
        .settings(split.index_settings())
        .create_in_dir(dir.path())
        .context("create bare index")?;
    register_tokenizers(index.tokenizers());
    let mut writer = index
        .writer_with_num_threads::<TantivyDocument>(
            split.indexing_threads,
            split.writer_memory_bytes,
        )
        .context("bare writer")?;
    let mut buf = Vec::with_capacity(4096);
    let cpu0 = util::process_cpu();
    let t = Instant::now();
    for batch in records {
        for r in batch {
            buf.clear();
            serde_json::to_writer(&mut buf, r)?;
            writer.add_document(fields.document(r, &buf, 0))?;
        }
    }
    writer.commit().context("bare commit")?;
    let secs = t.elapsed().as_secs_f64();
    let cpu = util::process_cpu() - cpu0;
    writer.wait_merging_threads().context("bare merges")?;
    Ok((secs, util::dir_bytes(dir.path()), cpu))
}

/// Step timings (name, ns/record) and tantivy variants (name, ns/record, bytes/record).
type Parts = (Vec<(String, f64)>, Vec<(String, f64, f64)>);

/// A tantivy index in a temp dir with the collector's settings (zstd-3 doc store) and a
/// writer of `threads` threads and 256 MiB.
fn bench_index(
    fields: &LogFields,
    threads: usize,
    store: (i32, usize),
) -> Result<(tempfile::TempDir, skein_store::tantivy::IndexWriter)> {
    let dir = util::temp_dir("skein-bench-idx-")?;
    let index = Index::builder()
        .schema(fields.schema.clone())
        .settings(IndexSettings {
            docstore_compression: Compressor::Zstd(ZstdCompressor {
                compression_level: Some(store.0),
            }),
            docstore_blocksize: store.1,
            ..IndexSettings::default()
        })
        .create_in_dir(dir.path())
        .context("bench index")?;
    register_tokenizers(index.tokenizers());
    let writer = index
        .writer_with_num_threads::<TantivyDocument>(threads, 256 * 1024 * 1024)
        .context("bench writer")?;
    Ok((dir, writer))
}

/// The record's document without the values of `drop`.
fn doc_without(
    fields: &LogFields,
    r: &LogRecord,
    json: &[u8],
    drop: &[skein_store::tantivy::schema::Field],
) -> TantivyDocument {
    let full = fields.document(r, json, 0);
    if drop.is_empty() {
        return full;
    }
    let mut d = TantivyDocument::new();
    for (f, v) in full.field_values() {
        if !drop.contains(&f) {
            let ov: skein_store::tantivy::schema::OwnedValue = v.into();
            d.add_field_value(f, &ov);
        }
    }
    d
}

/// Indexes the records with one indexing thread and documents without `drop`; returns process
/// CPU ns per record for add+commit and the index bytes per record.
fn tantivy_variant(
    fields: &LogFields,
    records: &[Vec<LogRecord>],
    n: usize,
    drop: &[skein_store::tantivy::schema::Field],
    store: (i32, usize),
) -> Result<(f64, f64)> {
    let (dir, mut writer) = bench_index(fields, 1, store)?;
    let mut buf = Vec::with_capacity(4096);
    let mut docs = Vec::with_capacity(n);
    for r in records.iter().flatten().take(n) {
        buf.clear();
        serde_json::to_writer(&mut buf, r)?;
        docs.push(doc_without(fields, r, &buf, drop));
    }
    let count = docs.len() as f64;
    let cpu0 = util::process_cpu();
    for doc in docs {
        writer.add_document(doc)?;
    }
    writer.commit().context("variant commit")?;
    let cpu = util::process_cpu() - cpu0;
    writer.wait_merging_threads().context("variant merges")?;
    let bytes = util::dir_bytes(dir.path()) as f64;
    Ok((cpu * 1e9 / count, bytes / count))
}

/// Single-threaded cost of each step of the collector's path, in ns per record, measured batch
/// by batch as the collector does them (memory reused, nothing kept), and what each part of
/// the tantivy document costs in indexing time and index size (an experiment: the same records
/// indexed again without that field).
fn parts(d: &Dataset) -> Result<Parts> {
    let k = keys();
    let limits = Limits::default();
    let fields = LogFields::new();
    let n = d.n as f64;
    let (mut t_dec, mut t_conv, mut t_wal, mut t_json, mut t_doc) = (0f64, 0f64, 0f64, 0f64, 0f64);
    let mut buf = Vec::with_capacity(4096);
    let mut docs: Vec<TantivyDocument> = Vec::with_capacity(1000);
    for b in &d.bodies {
        let t = Instant::now();
        let req = ExportLogsServiceRequest::decode(b.as_ref()).context("decode")?;
        let t1 = Instant::now();
        let (recs, _) = logs_from_otlp(&req, &k, &limits, 1);
        let t2 = Instant::now();
        let wal = serde_json::to_vec(&recs)?;
        let t3 = Instant::now();
        t_dec += (t1 - t).as_secs_f64();
        t_conv += (t2 - t1).as_secs_f64();
        t_wal += (t3 - t2).as_secs_f64();
        drop(wal);
        drop(req);
        for r in &recs {
            let a = Instant::now();
            buf.clear();
            serde_json::to_writer(&mut buf, r)?;
            let b2 = Instant::now();
            docs.push(fields.document(r, &buf, 0));
            t_json += (b2 - a).as_secs_f64();
            t_doc += b2.elapsed().as_secs_f64();
        }
        docs.clear();
    }
    let mut out = vec![
        ("protobuf decode".to_string(), t_dec * 1e9 / n),
        ("OTLP -> model conversion".to_string(), t_conv * 1e9 / n),
        ("WAL payload JSON encode".to_string(), t_wal * 1e9 / n),
        (
            "stored-doc JSON encode (again, per record)".to_string(),
            t_json * 1e9 / n,
        ),
        ("tantivy document build".to_string(), t_doc * 1e9 / n),
    ];

    // Tantivy alone with ONE indexing thread, and without each part of the document.
    let sample = d.n.min(300_000) as usize;
    let default_store = (3, SplitConfig::default().docstore_block_bytes);
    let (full_ns, full_b) = tantivy_variant(&fields, &d.records, sample, &[], default_store)?;
    out.push((
        "tantivy add+commit, 1 indexing thread (process CPU)".to_string(),
        full_ns,
    ));
    let mut variants = vec![(
        format!(
            "full document (zstd-3, {} KiB blocks, the default)",
            default_store.1 / 1024
        ),
        full_ns,
        full_b,
    )];
    for (name, drop) in [
        ("without the stored JSON (doc)", vec![fields.doc]),
        ("without attributes (JSON field)", vec![fields.attributes]),
        ("without body (full text)", vec![fields.body]),
        (
            "without keys and trace_id",
            vec![fields.keys, fields.trace_id],
        ),
        (
            "only the stored JSON (doc) and time",
            vec![
                fields.service,
                fields.host,
                fields.severity,
                fields.severity_number,
                fields.body,
                fields.trace_id,
                fields.keys,
                fields.attributes,
            ],
        ),
    ] {
        let (ns, b) = tantivy_variant(&fields, &d.records, sample, &drop, default_store)?;
        variants.push((name.to_string(), ns, b));
    }
    // Doc-store settings: zstd level and block size against the collector's default.
    for (level, block) in [
        (3, 16 * 1024),
        (3, 64 * 1024),
        (9, 64 * 1024),
        (9, 256 * 1024),
        (19, 256 * 1024),
    ] {
        if (level, block) == default_store {
            continue;
        }
        let (ns, b) = tantivy_variant(&fields, &d.records, sample, &[], (level, block))?;
        variants.push((
            format!("full, doc store zstd-{level}, {} KiB blocks", block / 1024),
            ns,
            b,
        ));
    }
    Ok((out, variants))
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

fn collector_ingest(args: &IngestArgs, d: &Dataset) -> Result<serde_json::Value> {
    let rt = util::client_runtime()?;
    let bodies = Arc::new(d.bodies.clone());
    let data = util::temp_dir("skein-bench-ingest-")?;
    let (running, otlp, api) = match (&args.external_otlp, &args.external_api) {
        (Some(o), Some(a)) => (None, o.clone(), a.clone()),
        _ => {
            let r = Running::start(util::bench_config(data.path(), args.commit_interval_ms))?;
            let (o, a) = (r.otlp_url(), r.api_url());
            (Some(r), o, a)
        }
    };
    let already = rt.block_on(async {
        let c = reqwest::Client::new();
        util::metric(&c, &api, "skein_indexed_records_total", "logs").await
    })?;
    let cpu0 = util::process_cpu();
    let th0 = util::thread_cpu();
    let to = Target {
        otlp: &otlp,
        api: &api,
        path: "/v1/logs",
        signal: "logs",
        already,
    };
    let sent = send_all(&rt, to, bodies, args.concurrency, d.n)?;
    let cpu = util::process_cpu() - cpu0;
    let groups = util::cpu_by_group(&th0, &util::thread_cpu());
    let secs = (sent.searchable - sent.first_send).as_secs_f64();
    let ack_secs = (sent.all_acked - sent.first_send).as_secs_f64();
    let rps = d.n as f64 / secs;
    let mbps = mb(d.ndjson_bytes) / secs;

    // Sanity: the data is really searchable through the API.
    let hits = rt.block_on(async {
        let c = reqwest::Client::new();
        let v: serde_json::Value = c
            .get(format!("{api}/api/v1/logs?q=courier&limit=5"))
            .send()
            .await?
            .json()
            .await?;
        Ok::<usize, anyhow::Error>(v["logs"].as_array().map(|a| a.len()).unwrap_or(0))
    })?;
    if hits == 0 {
        bail!("a search for 'courier' found nothing after ingest");
    }

    let mut result = serde_json::json!({
        "collector_secs": secs,
        "collector_ack_secs": ack_secs,
        "collector_records_per_s": rps,
        "collector_mb_per_s": mbps,
        "collector_mb_per_s_per_core": mbps / 2.0,
        "collector_retries_503": sent.retries,
        "process_cpu_secs": cpu,
        "cpu_by_thread": groups,
    });
    let listed: f64 = groups.values().sum();
    let mut rows = vec![
        row("all acknowledged (2xx) after", format!("{ack_secs:.2} s")),
        row("all searchable after", format!("{secs:.2} s")),
        row("records/s", format!("{rps:.0}")),
        row("raw MB/s", format!("{mbps:.1}")),
        row("raw MB/s per core (/2)", format!("{:.1}", mbps / 2.0)),
        row("503 retries", sent.retries),
        row(
            if running.is_some() {
                "process CPU (collector + clients)"
            } else {
                "process CPU (clients only: external collector)"
            },
            format!(
                "{cpu:.1} s = {:.2} cores, {:.1} us/record",
                cpu / secs,
                cpu * 1e6 / d.n as f64
            ),
        ),
    ];
    for (k, v) in &groups {
        if *v >= 0.05 {
            rows.push(row(&format!("  CPU {k}"), format!("{v:.1} s")));
        }
    }
    rows.push(row(
        "  CPU threads that ended (tantivy indexing workers restart at each commit; merges)",
        format!("{:.1} s", cpu - listed),
    ));
    result["cpu_ended_threads"] = (cpu - listed).into();
    if let Some(r) = running {
        let logs_live = util::dir_bytes(&data.path().join("logs"));
        let total_live = util::dir_bytes(data.path());
        let stop = r.stop()?;
        let logs_after = util::dir_bytes(&data.path().join("logs"));
        let wal_after = util::dir_bytes(&data.path().join("wal"));
        let total_after = util::dir_bytes(data.path());
        rows.push(row(
            "logs index on disk (after last commit)",
            format!(
                "{:.1} MB (raw/index {:.2}x)",
                mb(logs_live),
                d.ndjson_bytes as f64 / logs_live.max(1) as f64
            ),
        ));
        rows.push(row(
            "data dir incl. WAL (after last commit)",
            format!(
                "{:.1} MB (raw/total {:.2}x)",
                mb(total_live),
                d.ndjson_bytes as f64 / total_live.max(1) as f64
            ),
        ));
        rows.push(row(
            "after clean stop (merges done)",
            format!(
                "logs {:.1} MB ({:.2}x), WAL {:.1} MB, total {:.1} MB ({:.2}x); stop took {:.1} s",
                mb(logs_after),
                d.ndjson_bytes as f64 / logs_after.max(1) as f64,
                mb(wal_after),
                mb(total_after),
                d.ndjson_bytes as f64 / total_after.max(1) as f64,
                stop.as_secs_f64()
            ),
        ));
        let by_ext = util::bytes_by_extension(&data.path().join("logs"));
        for (ext, b) in &by_ext {
            rows.push(row(
                &format!("  logs index *.{ext}"),
                format!("{:.1} MB ({:.0} B/record)", mb(*b), *b as f64 / d.n as f64),
            ));
        }
        result["logs_index_bytes_by_ext"] = serde_json::to_value(&by_ext)?;
        result["logs_index_bytes"] = logs_live.into();
        result["data_dir_bytes"] = total_live.into();
        result["logs_index_bytes_after_stop"] = logs_after.into();
        result["wal_bytes_after_stop"] = wal_after.into();
        result["data_dir_bytes_after_stop"] = total_after.into();
        result["raw_over_index"] = (d.ndjson_bytes as f64 / logs_live.max(1) as f64).into();
        result["raw_over_total"] = (d.ndjson_bytes as f64 / total_live.max(1) as f64).into();
    }
    table("collector: OTLP/HTTP protobuf -> searchable", &rows);
    Ok(result)
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
