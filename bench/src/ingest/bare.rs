//! The peer: bare tantivy with the collector's schema and documents.

use crate::util;
use anyhow::{Context, Result};
use skein_model::LogRecord;
use skein_store::SplitConfig;
use skein_store::schema::{LogFields, register_tokenizers};
use skein_store::tantivy::{Index, TantivyDocument};
use std::time::Instant;

/// The peer: the same records, schema and documents into one tantivy index with the
/// collector's default split settings (256 MiB, 2 threads, its zstd doc store and block size),
/// one commit at the end.
pub(super) fn bare_tantivy(records: &[Vec<LogRecord>]) -> Result<(f64, u64, f64)> {
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
