//! Block files: the head's chunks written out once, never changed, deleted whole by retention.
//!
//! ```text
//! "SKBLK001" | chunk bytes, series by series, oldest chunk first | index | footer (48 bytes)
//! index:  varint series count, then per series: varint id, varint chunks, and per chunk
//!         zigzag varint (min_ts − block min), varint (max_ts − min_ts), varint length,
//!         varint sample count
//! footer: u64 index offset, u64 index length, u64 WAL position covered, i64 min_ts,
//!         i64 max_ts, u32 CRC-32 of the index, "SKBE"
//! ```
//!
//! A block is written to a temporary name, fsynced, renamed and the folder fsynced, so a crash
//! leaves either the whole block or none. Its name orders blocks by the WAL position they cover.

use super::io_err;
use super::select::ChunkRef;
use crate::error::{Result, StoreError};
use bytes::Bytes;
use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"SKBLK001";
const END: &[u8; 4] = b"SKBE";
const FOOTER: usize = 48;

/// Where one chunk sits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkMeta {
    pub min_ts: i64,
    pub max_ts: i64,
    pub off: u64,
    pub len: u32,
}

/// A block on disk, its index in memory, its bytes in memory while cached.
#[derive(Debug)]
pub(crate) struct Block {
    pub path: PathBuf,
    pub min_ts: i64,
    pub max_ts: i64,
    /// Every sample with a WAL position below this is in this block or an older one.
    pub wal_seq: u64,
    pub file_bytes: u64,
    pub chunk_bytes: u64,
    pub samples: u64,
    pub series: HashMap<u32, Vec<ChunkMeta>>,
    /// The whole file, when cached.
    pub data: Option<Bytes>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct Reader<'a> {
    b: &'a [u8],
}

impl Reader<'_> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.b.split_first()?;
            self.b = rest;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// One series' chunks to write: (min_ts, max_ts, sample count, bytes).
pub(crate) type SeriesChunks = (u32, Vec<(i64, i64, u32, Bytes)>);

impl Block {
    /// Writes a block of `series` covering the WAL below `wal_seq` into `dir`.
    pub(crate) fn write(dir: &Path, wal_seq: u64, series: &[SeriesChunks]) -> Result<Block> {
        let min_ts = series
            .iter()
            .flat_map(|(_, c)| c.iter().map(|c| c.0))
            .min()
            .unwrap_or(0);
        let max_ts = series
            .iter()
            .flat_map(|(_, c)| c.iter().map(|c| c.1))
            .max()
            .unwrap_or(0);
        let mut data = Vec::new();
        data.extend_from_slice(MAGIC);
        let mut index = Vec::new();
        let mut map = HashMap::with_capacity(series.len());
        let mut samples = 0u64;
        put_varint(&mut index, series.len() as u64);
        for (id, chunks) in series {
            put_varint(&mut index, *id as u64);
            put_varint(&mut index, chunks.len() as u64);
            let mut metas = Vec::with_capacity(chunks.len());
            for (lo, hi, count, bytes) in chunks {
                put_varint(&mut index, zigzag(lo - min_ts));
                put_varint(&mut index, (hi - lo) as u64);
                put_varint(&mut index, bytes.len() as u64);
                put_varint(&mut index, *count as u64);
                metas.push(ChunkMeta {
                    min_ts: *lo,
                    max_ts: *hi,
                    off: data.len() as u64,
                    len: bytes.len() as u32,
                });
                samples += *count as u64;
                data.extend_from_slice(bytes);
            }
            map.insert(*id, metas);
        }
        let chunk_bytes = (data.len() - MAGIC.len()) as u64;
        let index_off = data.len() as u64;
        data.extend_from_slice(&index);
        data.extend_from_slice(&index_off.to_le_bytes());
        data.extend_from_slice(&(index.len() as u64).to_le_bytes());
        data.extend_from_slice(&wal_seq.to_le_bytes());
        data.extend_from_slice(&min_ts.to_le_bytes());
        data.extend_from_slice(&max_ts.to_le_bytes());
        data.extend_from_slice(&crc32fast::hash(&index).to_le_bytes());
        data.extend_from_slice(END);

        let path = dir.join(format!("{wal_seq:020}.blk"));
        skein_wal::durable::write_file(&path, &data).map_err(|e| io_err("write", &path, e))?;
        Ok(Block {
            path,
            min_ts,
            max_ts,
            wal_seq,
            file_bytes: data.len() as u64,
            chunk_bytes,
            samples,
            series: map,
            data: Some(Bytes::from(data)),
        })
    }

    /// Opens a block: reads and checks its index; keeps the whole file in memory if `cache`.
    pub(crate) fn open(path: &Path, cache: bool) -> Result<Block> {
        let bad = |why: &str| StoreError::Decode(format!("block {}: {why}", path.display()));
        let f = std::fs::File::open(path).map_err(|e| io_err("open", path, e))?;
        let len = f.metadata().map_err(|e| io_err("stat", path, e))?.len();
        if len < (MAGIC.len() + FOOTER) as u64 {
            return Err(bad("too short"));
        }
        let mut footer = [0u8; FOOTER];
        f.read_exact_at(&mut footer, len - FOOTER as u64)
            .map_err(|e| io_err("read", path, e))?;
        if &footer[44..48] != END {
            return Err(bad("no end mark (cut short?)"));
        }
        let index_off = u64_at(&footer, 0);
        let index_len = u64_at(&footer, 8);
        let wal_seq = u64_at(&footer, 16);
        let min_ts = u64_at(&footer, 24) as i64;
        let max_ts = u64_at(&footer, 32) as i64;
        let crc = u32::from_le_bytes([footer[40], footer[41], footer[42], footer[43]]);
        if index_off
            .checked_add(index_len)
            .is_none_or(|e| e != len - FOOTER as u64)
        {
            return Err(bad("index out of place"));
        }
        let (data, index) = if cache {
            let all = std::fs::read(path).map_err(|e| io_err("read", path, e))?;
            let all = Bytes::from(all);
            let index = all.slice(index_off as usize..(index_off + index_len) as usize);
            (Some(all), index)
        } else {
            let mut idx = vec![0u8; index_len as usize];
            f.read_exact_at(&mut idx, index_off)
                .map_err(|e| io_err("read", path, e))?;
            (None, Bytes::from(idx))
        };
        if crc32fast::hash(&index) != crc {
            return Err(bad("index checksum does not match"));
        }
        let mut r = Reader { b: &index };
        let n = r.varint().ok_or_else(|| bad("index cut short"))?;
        let mut map = HashMap::with_capacity(n.min(1 << 20) as usize);
        let mut off = MAGIC.len() as u64;
        let mut samples = 0u64;
        for _ in 0..n {
            let mut next = || r.varint().ok_or_else(|| bad("index cut short"));
            let id = next()? as u32;
            let chunks = next()?;
            let mut metas = Vec::with_capacity(chunks.min(4096) as usize);
            for _ in 0..chunks {
                let lo = min_ts.wrapping_add(unzigzag(next()?));
                let hi = lo.wrapping_add(next()? as i64);
                let clen = next()?;
                let count = next()? as u32;
                if off + clen > index_off {
                    return Err(bad("chunk past the data"));
                }
                metas.push(ChunkMeta {
                    min_ts: lo,
                    max_ts: hi,
                    off,
                    len: clen as u32,
                });
                off += clen;
                samples += count as u64;
            }
            map.insert(id, metas);
        }
        Ok(Block {
            path: path.to_path_buf(),
            min_ts,
            max_ts,
            wal_seq,
            file_bytes: len,
            chunk_bytes: index_off - MAGIC.len() as u64,
            samples,
            series: map,
            data,
        })
    }

    /// Drops or loads the in-memory copy.
    pub(crate) fn set_cached(&mut self, cache: bool) -> Result<()> {
        if !cache {
            self.data = None;
        } else if self.data.is_none() {
            let all = std::fs::read(&self.path).map_err(|e| io_err("read", &self.path, e))?;
            self.data = Some(Bytes::from(all));
        }
        Ok(())
    }

    /// The chunks of series `id` overlapping `[start, end]`.
    pub(crate) fn chunks(
        &self,
        id: u32,
        start: i64,
        end: i64,
        out: &mut Vec<ChunkRef>,
    ) -> Result<()> {
        let Some(metas) = self.series.get(&id) else {
            return Ok(());
        };
        let sel: Vec<&ChunkMeta> = metas
            .iter()
            .filter(|m| m.max_ts >= start && m.min_ts <= end)
            .collect();
        let (Some(first), Some(last)) = (sel.first(), sel.last()) else {
            return Ok(());
        };
        let lo = first.off;
        let hi = last.off + last.len as u64;
        // One read (or one slice) for the series' whole run of chunks: they sit together.
        let run = match &self.data {
            Some(d) => d.slice(lo as usize..hi as usize),
            None => {
                let f =
                    std::fs::File::open(&self.path).map_err(|e| io_err("open", &self.path, e))?;
                let mut buf = vec![0u8; (hi - lo) as usize];
                f.read_exact_at(&mut buf, lo)
                    .map_err(|e| io_err("read", &self.path, e))?;
                Bytes::from(buf)
            }
        };
        for m in sel {
            let a = (m.off - lo) as usize;
            out.push(ChunkRef {
                min_ts: m.min_ts,
                max_ts: m.max_ts,
                data: run.slice(a..a + m.len as usize),
            });
        }
        Ok(())
    }

    /// The last sample of series `id` in this block.
    pub(crate) fn last_sample(&self, id: u32) -> Result<Option<(i64, f64)>> {
        let Some(last) = self.series.get(&id).and_then(|m| m.last()) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        self.chunks(id, last.min_ts, last.max_ts, &mut out)?;
        Ok(out
            .last()
            .and_then(|c| super::chunk::ChunkIter::new(&c.data).last()))
    }
}

/// Makes a rename or delete in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let d = std::fs::File::open(dir).map_err(|e| io_err("open", dir, e))?;
    d.sync_all().map_err(|e| io_err("fsync", dir, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tsdb::chunk::{ChunkIter, ChunkWriter};

    fn chunk(t0: i64, n: i64) -> (i64, i64, u32, Bytes) {
        let mut w = ChunkWriter::new();
        for i in 0..n {
            w.push(t0 + i * 10, i as f64);
        }
        (t0, t0 + (n - 1) * 10, n as u32, Bytes::from(w.bytes()))
    }

    #[test]
    fn write_open_read_cached_and_not() {
        let dir = tempfile::tempdir().unwrap();
        let b = Block::write(
            dir.path(),
            42,
            &[
                (3, vec![chunk(1000, 5), chunk(1050, 7)]),
                (9, vec![chunk(900, 2)]),
            ],
        )
        .unwrap();
        assert_eq!((b.min_ts, b.max_ts, b.samples), (900, 1110, 14));
        for cache in [true, false] {
            let o = Block::open(&b.path, cache).unwrap();
            assert_eq!(
                (o.min_ts, o.max_ts, o.wal_seq, o.samples),
                (900, 1110, 42, 14)
            );
            let mut out = Vec::new();
            o.chunks(3, 0, i64::MAX, &mut out).unwrap();
            assert_eq!(out.len(), 2);
            let all: Vec<_> = out.iter().flat_map(|c| ChunkIter::new(&c.data)).collect();
            assert_eq!(all.len(), 12);
            assert_eq!(all[5], (1050, 0.0));
            out.clear();
            o.chunks(3, 1060, 1070, &mut out).unwrap();
            assert_eq!(out.len(), 1);
            assert_eq!(o.last_sample(9).unwrap(), Some((910, 1.0)));
            assert_eq!(o.last_sample(4).unwrap(), None);
        }
    }

    #[test]
    fn damaged_blocks_are_refused_not_panicking() {
        let dir = tempfile::tempdir().unwrap();
        let b = Block::write(dir.path(), 1, &[(1, vec![chunk(0, 50)])]).unwrap();
        let bytes = std::fs::read(&b.path).unwrap();
        let p = dir.path().join("x.blk");
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            assert!(Block::open(&p, false).is_err());
        }
        let mut flipped = bytes.clone();
        let i = bytes.len() - FOOTER - 2;
        flipped[i] ^= 0xff;
        std::fs::write(&p, &flipped).unwrap();
        assert!(Block::open(&p, true).is_err());
    }
}
