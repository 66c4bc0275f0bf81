//! The store's live state: the series table, each series' head chunks, and the blocks.
//!
//! Writers (append, persist, retention) take `write_lock` for their whole run, so they never
//! interleave; readers only take the `state` read lock, briefly, and decode outside it.

use super::block::{Block, SeriesChunks, sync_dir};
use super::chunk::ChunkWriter;
use super::log::{self, KIND_SAMPLES, KIND_SERIES};
use super::*;
use bytes::Bytes;
use skein_model::metric::{Labels, SeriesSpec, family_name};
use skein_model::time::now_ms;
use skein_wal::{Entry, Wal, WalConfig};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, RwLock};
use std::time::Instant;

/// One series in memory.
struct Series {
    spec: SeriesSpec,
    family: String,
    /// Chunks closed since the last block.
    closed: Vec<(i64, i64, u32, Bytes)>,
    open: ChunkWriter,
    /// Last stored sample (from the head, a block or the replayed WAL).
    last: Option<(i64, f64)>,
}

impl Series {
    fn new(spec: SeriesSpec) -> Series {
        let family = family_name(&spec.name, spec.kind).to_string();
        Series {
            spec,
            family,
            closed: Vec::new(),
            open: ChunkWriter::new(),
            last: None,
        }
    }

    fn push(&mut self, ts: i64, v: f64) {
        if self.open.is_full() {
            let full = std::mem::take(&mut self.open);
            self.closed.push((
                full.first_ts(),
                full.last_ts(),
                full.len() as u32,
                Bytes::from(full.bytes()),
            ));
        }
        self.open.push(ts, v);
        self.last = Some((ts, v));
    }
}

#[derive(Default)]
struct Family {
    kind: MetricKind,
    unit: String,
    series: usize,
}

struct State {
    series: Vec<Series>,
    /// Series number by name, then labels (two levels so a lookup needs no owned key).
    ids: HashMap<String, HashMap<Labels, u32>>,
    by_name: HashMap<String, Vec<u32>>,
    families: BTreeMap<String, Family>,
    /// Oldest first.
    blocks: Vec<Block>,
    head_samples: u64,
}

pub(crate) struct Shared {
    cfg: TsdbConfig,
    state: RwLock<State>,
    write_lock: Mutex<Writers>,
    /// The sample WAL's size after the last write, for [`Shared::stats`] without the lock.
    wal_bytes: std::sync::atomic::AtomicU64,
}

struct Writers {
    wal: Wal,
    series_log: Wal,
    last_block: Instant,
}

fn poisoned() -> StoreError {
    StoreError::Internal("metrics store lock poisoned".into())
}

impl State {
    fn add_series(&mut self, spec: SeriesSpec) -> u32 {
        let id = self.series.len() as u32;
        let s = Series::new(spec);
        let fam = self.families.entry(s.family.clone()).or_default();
        fam.kind = s.spec.kind;
        if fam.unit.is_empty() {
            fam.unit = s.spec.unit.clone();
        }
        fam.series += 1;
        self.ids
            .entry(s.spec.name.clone())
            .or_default()
            .insert(s.spec.labels.clone(), id);
        self.by_name
            .entry(s.spec.name.clone())
            .or_default()
            .push(id);
        self.series.push(s);
        id
    }

    /// Whether series `id` holds a sample at `ts` (with value `v`, when given) in the head,
    /// for samples older than the series' last, which are rare. Only memory is read: blocks
    /// are on disk, and this runs under the write lock, where one back-dated sample per
    /// request would stall every append behind disk reads. A resent sample older than the
    /// head is refused as out of order; it is stored already, so nothing is lost.
    fn has_sample(&self, id: u32, ts: i64, v: Option<f64>) -> bool {
        let Some(s) = self.series.get(id as usize) else {
            return false;
        };
        let mut chunks = Vec::new();
        for (lo, hi, _, bytes) in &s.closed {
            if *lo <= ts && ts <= *hi {
                chunks.push(ChunkRef {
                    min_ts: *lo,
                    max_ts: *hi,
                    data: bytes.clone(),
                });
            }
        }
        let open = s.open.bytes();
        let in_open = !s.open.is_empty() && s.open.first_ts() <= ts;
        let found = |data: &[u8]| {
            super::chunk::ChunkIter::new(data)
                .any(|(t, x)| t == ts && v.is_none_or(|v| v.to_bits() == x.to_bits()))
        };
        chunks.iter().any(|c| found(&c.data)) || (in_open && found(&open))
    }

    fn cache_budget(&mut self, cache_bytes: u64) -> Result<()> {
        let mut used = 0u64;
        for b in self.blocks.iter_mut().rev() {
            let keep = used + b.file_bytes <= cache_bytes;
            if keep {
                used += b.file_bytes;
            }
            b.set_cached(keep)?;
        }
        Ok(())
    }
}

impl Shared {
    pub(crate) fn open(cfg: TsdbConfig) -> Result<Shared> {
        let blocks_dir = cfg.dir.join("blocks");
        std::fs::create_dir_all(&blocks_dir).map_err(|e| io_err("create", &blocks_dir, e))?;
        let (series_log, _) = Wal::open(WalConfig {
            dir: cfg.dir.join("series"),
            segment_bytes: 64 * 1024 * 1024,
            max_bytes: u64::MAX / 2,
            sync: cfg.sync,
        })?;
        let (wal, _) = Wal::open(WalConfig {
            dir: cfg.dir.join("wal"),
            segment_bytes: cfg.wal_segment_bytes,
            max_bytes: cfg.wal_max_bytes,
            sync: cfg.sync,
        })?;
        let mut st = State {
            series: Vec::new(),
            ids: HashMap::new(),
            by_name: HashMap::new(),
            families: BTreeMap::new(),
            blocks: Vec::new(),
            head_samples: 0,
        };
        for rec in series_log.read_from(0)? {
            let rec = rec?;
            if rec.kind != KIND_SERIES {
                continue;
            }
            let (id, spec) = log::decode_series(&rec.payload).map_err(StoreError::Decode)?;
            if id as usize != st.series.len() {
                return Err(StoreError::Decode(format!(
                    "series log out of order: series {id} after {} series",
                    st.series.len()
                )));
            }
            st.add_series(spec);
        }

        // Blocks, oldest first by the WAL position they cover (their names sort that way).
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&blocks_dir)
            .map_err(|e| io_err("list", &blocks_dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        paths.sort();
        for p in paths {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".tmp") {
                // A block whose write did not finish: its samples are still in the WAL.
                let _ = std::fs::remove_file(&p);
                continue;
            }
            if !name.ends_with(".blk") {
                continue;
            }
            match Block::open(&p, false) {
                Ok(b) => st.blocks.push(b),
                Err(e) => {
                    let aside = p.with_extension("blk.damaged");
                    tracing::error!(block = %p.display(), error = %e, "damaged metrics block set aside");
                    let _ = std::fs::rename(&p, &aside);
                }
            }
        }
        st.cache_budget(cfg.cache_bytes)?;
        // Each series' last sample, from the newest block holding it.
        for b in st.blocks.iter().rev() {
            for id in b.series.keys() {
                if let Some(s) = st.series.get_mut(*id as usize)
                    && s.last.is_none()
                {
                    s.last = b.last_sample(*id)?;
                }
            }
        }
        let replay_from = st.blocks.iter().map(|b| b.wal_seq).max().unwrap_or(0);
        let mut replayed = 0u64;
        for rec in wal.read_from(replay_from)? {
            let rec = rec?;
            if rec.kind != KIND_SAMPLES {
                continue;
            }
            for (id, ts, v) in log::samples(&rec.payload) {
                if let Some(s) = st.series.get_mut(id as usize)
                    && s.last.is_none_or(|(t, _)| ts > t)
                {
                    s.push(ts, v);
                    st.head_samples += 1;
                    replayed += 1;
                }
            }
        }
        if replayed > 0 {
            tracing::info!(samples = replayed, "replayed the metrics wal");
        }
        let wal_bytes = std::sync::atomic::AtomicU64::new(wal.disk_bytes());
        let shared = Shared {
            cfg,
            wal_bytes,
            state: RwLock::new(st),
            write_lock: Mutex::new(Writers {
                wal,
                series_log,
                last_block: Instant::now(),
            }),
        };
        shared.retention()?;
        Ok(shared)
    }

    pub(crate) fn append(&self, batch: &MetricBatch, family_limit: bool) -> Result<AppendReport> {
        let mut w = self.write_lock.lock().map_err(|_| poisoned())?;
        let mut report = AppendReport::default();
        let refuse = |report: &mut AppendReport, why: &dyn Fn() -> String| {
            report.rejected += 1;
            if report.first_reason.is_none() {
                report.first_reason = Some(why());
            }
        };
        // Resolve the batch's series: existing ids, new ones within limits, or refused.
        let (new_specs, accepted) = {
            let st = self.state.read().map_err(|_| poisoned())?;
            let mut new_specs: Vec<SeriesSpec> = Vec::new();
            let mut new_index: HashMap<(&str, &Labels), usize> = HashMap::new();
            let mut new_per_family: HashMap<String, usize> = HashMap::new();
            // Per batch series: Some(id) (ids past the table are new), None when refused.
            let mut slots: Vec<Option<u32>> = Vec::with_capacity(batch.series.len());
            let mut limited: Vec<Option<String>> = vec![None; batch.series.len()];
            for (i, spec) in batch.series.iter().enumerate() {
                if let Some(id) = st.ids.get(&spec.name).and_then(|m| m.get(&spec.labels)) {
                    slots.push(Some(*id));
                    continue;
                }
                if let Some(&k) = new_index.get(&(spec.name.as_str(), &spec.labels)) {
                    slots.push(Some((st.series.len() + k) as u32));
                    continue;
                }
                if let Err(why) = super::log::fits(spec) {
                    limited[i] = Some(why);
                    slots.push(None);
                    continue;
                }
                let family = family_name(&spec.name, spec.kind).to_string();
                let have = st.families.get(&family).map_or(0, |f| f.series)
                    + new_per_family.get(&family).copied().unwrap_or(0);
                if family_limit && have >= self.cfg.max_series_per_metric {
                    limited[i] = Some(format!(
                        "metric {family} has reached its limit of {} series (tsdb.max_series_per_metric); samples of new label sets are refused — drop a high-cardinality label such as a user or request ID",
                        self.cfg.max_series_per_metric
                    ));
                    slots.push(None);
                    continue;
                }
                if st.series.len() + new_specs.len() >= self.cfg.max_series {
                    limited[i] = Some(format!(
                        "the metrics store holds its limit of {} series (tsdb.max_series); samples of new series are refused",
                        self.cfg.max_series
                    ));
                    slots.push(None);
                    continue;
                }
                *new_per_family.entry(family).or_default() += 1;
                slots.push(Some((st.series.len() + new_specs.len()) as u32));
                new_index.insert((spec.name.as_str(), &spec.labels), new_specs.len());
                new_specs.push(spec.clone());
            }

            let latest_ms = skein_model::time::now_ms()
                .saturating_add(i64::try_from(super::MAX_FUTURE.as_millis()).unwrap_or(i64::MAX));
            // Check each sample against its series' last one (and the batch's earlier ones).
            let mut last: HashMap<u32, Option<(i64, f64)>> = HashMap::new();
            let mut accepted: Vec<(u32, i64, f64)> = Vec::with_capacity(batch.samples.len());
            for s in &batch.samples {
                let Some(spec) = batch.series.get(s.series as usize) else {
                    refuse(&mut report, &|| {
                        format!("sample points at series {} which the batch lacks", s.series)
                    });
                    continue;
                };
                let Some(id) = slots[s.series as usize] else {
                    report.series_limited += 1;
                    let why = limited[s.series as usize].clone().unwrap_or_default();
                    refuse(&mut report, &|| why.clone());
                    continue;
                };
                if s.ts_ms > latest_ms {
                    report.too_far_ahead += 1;
                    refuse(&mut report, &|| {
                        format!(
                            "{}{}: sample at {} ms is more than {} s ahead of the collector's clock; check the sender's clock",
                            spec.name,
                            spec.labels,
                            s.ts_ms,
                            super::MAX_FUTURE.as_secs()
                        )
                    });
                    continue;
                }
                let prev = *last
                    .entry(id)
                    .or_insert_with(|| st.series.get(id as usize).and_then(|x| x.last));
                // A delta adds to the running total. A NaN or infinite delta is stored as
                // sent (its bits kept) and the total starts again from the next delta, as
                // after a counter reset, rather than staying NaN or infinite for good.
                let value = match (spec.delta, prev) {
                    (true, Some((_, total))) if total.is_finite() && s.value.is_finite() => {
                        total + s.value
                    }
                    _ => s.value,
                };
                if let Some((pt, pv)) = prev {
                    // The same bits, as Prometheus compares: a resent NaN is a repeat, and a
                    // NaN (or -0 after 0) at the time of another value is a second value.
                    if s.ts_ms == pt && (value.to_bits() == pv.to_bits() || spec.delta) {
                        report.duplicates += 1;
                        continue;
                    }
                    if s.ts_ms < pt && st.has_sample(id, s.ts_ms, (!spec.delta).then_some(s.value))
                    {
                        // An older sample sent again (a retried request): already stored.
                        report.duplicates += 1;
                        continue;
                    }
                    if s.ts_ms <= pt {
                        report.out_of_order += 1;
                        refuse(&mut report, &|| {
                            format!(
                                "{}{}: sample at {} ms is not after the last stored one at {} ms (out of order or a second value for the same time)",
                                spec.name, spec.labels, s.ts_ms, pt
                            )
                        });
                        continue;
                    }
                }
                if prev.is_none()
                    && matches!(spec.kind, MetricKind::Counter | MetricKind::Histogram)
                    && s.start_ms > 0
                    && s.start_ms <= s.ts_ms
                {
                    // A new cumulative series: it was 0 when its sender started counting (a
                    // millisecond earlier when both fall in the same millisecond).
                    accepted.push((id, s.start_ms.min(s.ts_ms - 1), 0.0));
                }
                last.insert(id, Some((s.ts_ms, value)));
                accepted.push((id, s.ts_ms, value));
            }
            (new_specs, accepted)
        };

        // Durable first: new series, then samples. Only new series that kept a sample are
        // created, renumbered so the table stays dense.
        let mut accepted = accepted;
        if !new_specs.is_empty() {
            let base = self.state.read().map_err(|_| poisoned())?.series.len() as u32;
            let mut renumber: Vec<Option<u32>> = vec![None; new_specs.len()];
            let mut created: Vec<SeriesSpec> = Vec::new();
            for a in accepted.iter_mut() {
                if a.0 >= base {
                    let k = (a.0 - base) as usize;
                    let id = match renumber[k] {
                        Some(id) => id,
                        None => {
                            let id = base + created.len() as u32;
                            renumber[k] = Some(id);
                            created.push(new_specs[k].clone());
                            id
                        }
                    };
                    a.0 = id;
                }
            }
            if !created.is_empty() {
                let payloads: Vec<Vec<u8>> = created
                    .iter()
                    .enumerate()
                    .map(|(k, s)| log::encode_series(base + k as u32, s))
                    .collect();
                let entries: Vec<Entry<'_>> = payloads
                    .iter()
                    .map(|p| Entry {
                        kind: KIND_SERIES,
                        payload: p,
                    })
                    .collect();
                w.series_log.append_batch(&entries)?;
                let mut st = self.state.write().map_err(|_| poisoned())?;
                for spec in created {
                    st.add_series(spec);
                }
            }
        }
        if accepted.is_empty() {
            return Ok(report);
        }
        let mut payload = Vec::with_capacity(accepted.len() * log::SAMPLE_BYTES);
        for &(id, ts, v) in &accepted {
            log::put_sample(&mut payload, id, ts, v);
        }
        w.wal.append_batch(&[Entry {
            kind: KIND_SAMPLES,
            payload: &payload,
        }])?;
        self.note_wal(&w);
        let mut st = self.state.write().map_err(|_| poisoned())?;
        for &(id, ts, v) in &accepted {
            if let Some(s) = st.series.get_mut(id as usize) {
                s.push(ts, v);
            }
        }
        st.head_samples += accepted.len() as u64;
        report.accepted = accepted.len() as u64;
        Ok(report)
    }

    pub(crate) fn persist(&self) -> Result<()> {
        let mut w = self.write_lock.lock().map_err(|_| poisoned())?;
        self.persist_locked(&mut w)
    }

    fn persist_locked(&self, w: &mut Writers) -> Result<()> {
        let seq = w.wal.next_seq();
        w.last_block = Instant::now();
        let chunks: Vec<SeriesChunks> = {
            let st = self.state.read().map_err(|_| poisoned())?;
            if st.head_samples == 0 {
                drop(st);
                w.wal.truncate_before(seq)?;
                self.note_wal(w);
                return Ok(());
            }
            st.series
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.closed.is_empty() || !s.open.is_empty())
                .map(|(id, s)| {
                    let mut c = s.closed.clone();
                    if !s.open.is_empty() {
                        c.push((
                            s.open.first_ts(),
                            s.open.last_ts(),
                            s.open.len() as u32,
                            Bytes::from(s.open.bytes()),
                        ));
                    }
                    (id as u32, c)
                })
                .collect()
        };
        let block = Block::write(&self.cfg.dir.join("blocks"), seq, &chunks)?;
        {
            let mut st = self.state.write().map_err(|_| poisoned())?;
            for s in st.series.iter_mut() {
                s.closed.clear();
                s.open = ChunkWriter::new();
            }
            st.head_samples = 0;
            st.blocks.push(block);
            st.cache_budget(self.cfg.cache_bytes)?;
        }
        w.wal.truncate_before(seq)?;
        self.note_wal(w);
        Ok(())
    }

    fn note_wal(&self, w: &Writers) {
        self.wal_bytes
            .store(w.wal.disk_bytes(), std::sync::atomic::Ordering::Relaxed);
    }

    fn retention(&self) -> Result<()> {
        let cutoff = now_ms().saturating_sub(self.cfg.retention.as_millis() as i64);
        let old: Vec<PathBuf> = {
            let mut st = self.state.write().map_err(|_| poisoned())?;
            let (old, keep): (Vec<Block>, Vec<Block>) = std::mem::take(&mut st.blocks)
                .into_iter()
                .partition(|b| b.max_ts < cutoff);
            st.blocks = keep;
            old.into_iter().map(|b| b.path).collect()
        };
        for p in &old {
            if let Err(e) = std::fs::remove_file(p) {
                tracing::warn!(block = %p.display(), error = %e, "cannot delete an expired metrics block");
            }
        }
        if !old.is_empty() {
            sync_dir(&self.cfg.dir.join("blocks"))?;
            tracing::info!(blocks = old.len(), "deleted metrics blocks past retention");
        }
        Ok(())
    }

    pub(crate) fn maintain(&self) -> Result<()> {
        {
            let mut w = self.write_lock.lock().map_err(|_| poisoned())?;
            if w.last_block.elapsed() >= self.cfg.block_duration
                || w.wal.disk_bytes() > self.cfg.wal_max_bytes / 2
            {
                self.persist_locked(&mut w)?;
            }
        }
        self.retention()
    }

    pub(crate) fn stats(&self) -> TsdbStats {
        let Ok(st) = self.state.read() else {
            return TsdbStats::default();
        };
        let wal_bytes = self.wal_bytes.load(std::sync::atomic::Ordering::Relaxed);
        TsdbStats {
            series: st.series.len() as u64,
            head_samples: st.head_samples,
            blocks: st.blocks.len() as u64,
            block_samples: st.blocks.iter().map(|b| b.samples).sum(),
            block_bytes: st.blocks.iter().map(|b| b.file_bytes).sum(),
            block_chunk_bytes: st.blocks.iter().map(|b| b.chunk_bytes).sum(),
            wal_bytes,
        }
    }

    pub(crate) fn metrics(&self) -> Vec<MetricInfo> {
        let Ok(st) = self.state.read() else {
            return Vec::new();
        };
        st.families
            .iter()
            .map(|(name, f)| MetricInfo {
                name: name.clone(),
                kind: f.kind,
                unit: f.unit.clone(),
                series: f.series,
            })
            .collect()
    }

    pub(crate) fn metric(&self, family: &str) -> Option<MetricInfo> {
        let st = self.state.read().ok()?;
        st.families.get(family).map(|f| MetricInfo {
            name: family.to_string(),
            kind: f.kind,
            unit: f.unit.clone(),
            series: f.series,
        })
    }

    pub(crate) fn label_names(&self, family: Option<&str>) -> Vec<String> {
        self.distinct(family, |labels, out| {
            for (k, _) in labels.iter() {
                if !out.contains(k) {
                    out.insert(k.to_string());
                }
            }
        })
    }

    pub(crate) fn label_values(&self, label: &str, family: Option<&str>) -> Vec<String> {
        self.distinct(family, |labels, out| {
            if let Some(v) = labels.get(label)
                && !out.contains(v)
            {
                out.insert(v.to_string());
            }
        })
    }

    /// Distinct strings `each` takes from the labels of a family's series (or of all series).
    fn distinct(
        &self,
        family: Option<&str>,
        mut each: impl FnMut(&Labels, &mut BTreeSet<String>),
    ) -> Vec<String> {
        let Ok(st) = self.state.read() else {
            return Vec::new();
        };
        let mut out = BTreeSet::new();
        for s in st
            .series
            .iter()
            .filter(|s| family.is_none_or(|f| s.family == f))
        {
            each(&s.spec.labels, &mut out);
        }
        out.into_iter().collect()
    }

    pub(crate) fn select(
        &self,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        max_series: usize,
    ) -> Result<Vec<SelectedSeries>> {
        let st = self.state.read().map_err(|_| poisoned())?;
        let Some(ids) = st.by_name.get(name) else {
            return Ok(Vec::new());
        };
        let picked: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|id| {
                st.series
                    .get(*id as usize)
                    .is_some_and(|s| matchers.iter().all(|m| m.matches(&s.spec.labels)))
            })
            .collect();
        if picked.len() > max_series {
            return Err(StoreError::BadQuery(format!(
                "{} series of {name} match, more than the limit of {max_series}; add a match= on a label to narrow it",
                picked.len()
            )));
        }
        let mut out = Vec::with_capacity(picked.len());
        for id in picked {
            StoreError::check_deadline()?;
            let Some(s) = st.series.get(id as usize) else {
                continue;
            };
            let mut chunks = Vec::new();
            for b in st
                .blocks
                .iter()
                .filter(|b| b.max_ts >= start && b.min_ts <= end)
            {
                b.chunks(id, start, end, &mut chunks)?;
            }
            for (lo, hi, _, bytes) in &s.closed {
                if *hi >= start && *lo <= end {
                    chunks.push(ChunkRef {
                        min_ts: *lo,
                        max_ts: *hi,
                        data: bytes.clone(),
                    });
                }
            }
            if !s.open.is_empty() && s.open.last_ts() >= start && s.open.first_ts() <= end {
                chunks.push(ChunkRef {
                    min_ts: s.open.first_ts(),
                    max_ts: s.open.last_ts(),
                    data: Bytes::from(s.open.bytes()),
                });
            }
            out.push(SelectedSeries {
                name: s.spec.name.clone(),
                labels: s.spec.labels.clone(),
                kind: s.spec.kind,
                chunks,
            });
        }
        Ok(out)
    }
}
