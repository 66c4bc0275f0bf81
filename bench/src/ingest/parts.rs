//! Single-threaded timings of each step of the collector's path, and what each part of the
//! tantivy document costs.

use super::{Dataset, keys};
use crate::util;
use anyhow::{Context, Result};
use prost::Message;
use skein_model::otlp::logs_from_otlp;
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use skein_model::{Limits, LogRecord};
use skein_store::SplitConfig;
use skein_store::schema::{LogFields, register_tokenizers};
use skein_store::tantivy::store::{Compressor, ZstdCompressor};
use skein_store::tantivy::{Index, IndexSettings, TantivyDocument};
use std::time::Instant;

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
pub(super) fn parts(d: &Dataset) -> Result<Parts> {
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
