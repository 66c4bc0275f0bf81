//! Record formats of the two logs: the series log (one record per new series, never cut, so a
//! series number means the same series for the life of the store) and the sample WAL (series
//! number, time and value per sample; cut once a block holds its samples).

use skein_model::metric::{Labels, MetricKind, SeriesSpec};

/// WAL record kind of a series definition.
pub(crate) const KIND_SERIES: u8 = 1;
/// WAL record kind of a group of samples.
pub(crate) const KIND_SAMPLES: u8 = 2;

/// Bytes of one encoded sample: u32 series, i64 time, f64 value.
pub(crate) const SAMPLE_BYTES: usize = 20;

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Names and values are capped well below 64 KiB by the converters; cut defensively.
    let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(b.len() as u16).to_le_bytes());
    out.extend_from_slice(b);
}

/// Encodes a series definition.
pub(crate) fn encode_series(id: u32, spec: &SeriesSpec) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + spec.name.len());
    out.extend_from_slice(&id.to_le_bytes());
    out.push(spec.kind.code());
    out.push(spec.delta as u8);
    put_str(&mut out, &spec.name);
    put_str(&mut out, &spec.unit);
    out.extend_from_slice(&(spec.labels.len().min(u16::MAX as usize) as u16).to_le_bytes());
    for (k, v) in spec.labels.iter().take(u16::MAX as usize) {
        put_str(&mut out, k);
        put_str(&mut out, v);
    }
    out
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err("series record is cut short".into());
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.u16()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| "series record holds invalid UTF-8".into())
    }
}

/// Decodes a series definition.
pub(crate) fn decode_series(b: &[u8]) -> Result<(u32, SeriesSpec), String> {
    let mut c = Cursor { b };
    let idb = c.take(4)?;
    let id = u32::from_le_bytes([idb[0], idb[1], idb[2], idb[3]]);
    let kb = c.take(2)?;
    let kind = MetricKind::from_code(kb[0]).ok_or("series record has an unknown kind")?;
    let delta = kb[1] == 1;
    let name = c.string()?;
    let unit = c.string()?;
    let n = c.u16()? as usize;
    let mut pairs = Vec::with_capacity(n);
    for _ in 0..n {
        let k = c.string()?;
        let v = c.string()?;
        pairs.push((k, v));
    }
    Ok((
        id,
        SeriesSpec {
            name,
            labels: Labels::from_pairs(pairs),
            kind,
            unit,
            delta,
        },
    ))
}

/// Appends one sample to a samples record.
pub(crate) fn put_sample(out: &mut Vec<u8>, id: u32, ts: i64, v: f64) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&ts.to_le_bytes());
    out.extend_from_slice(&v.to_bits().to_le_bytes());
}

/// The samples of a samples record; a cut-short tail is ignored.
pub(crate) fn samples(b: &[u8]) -> impl Iterator<Item = (u32, i64, f64)> + '_ {
    b.chunks_exact(SAMPLE_BYTES).map(|c| {
        let mut id = [0u8; 4];
        let mut ts = [0u8; 8];
        let mut v = [0u8; 8];
        id.copy_from_slice(&c[..4]);
        ts.copy_from_slice(&c[4..12]);
        v.copy_from_slice(&c[12..20]);
        (
            u32::from_le_bytes(id),
            i64::from_le_bytes(ts),
            f64::from_bits(u64::from_le_bytes(v)),
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn series_and_samples_round_trip() {
        let spec = SeriesSpec {
            name: "http.server.duration_bucket".into(),
            labels: Labels::from_pairs([("le", "0.5"), ("service", "payment"), ("é", "ü")]),
            kind: MetricKind::Histogram,
            unit: "ms".into(),
            delta: true,
        };
        let b = encode_series(7, &spec);
        assert_eq!(decode_series(&b).unwrap(), (7, spec));
        for cut in 0..b.len() {
            assert!(decode_series(&b[..cut]).is_err());
        }
        let mut out = Vec::new();
        put_sample(&mut out, 1, -5, 2.5);
        put_sample(&mut out, u32::MAX, i64::MAX, f64::MIN);
        out.push(9);
        let s: Vec<_> = samples(&out).collect();
        assert_eq!(s, vec![(1, -5, 2.5), (u32::MAX, i64::MAX, f64::MIN)]);
    }
}
