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

/// Longest name, unit, label name or label value the series log holds, in bytes (a u16
/// length). [`fits`] refuses a longer one before it is stored, so nothing is cut.
pub(crate) const MAX_STR_BYTES: usize = u16::MAX as usize;

/// Most labels on one series the series log holds.
pub(crate) const MAX_LABELS: usize = u16::MAX as usize;

/// Whether the series log can hold `spec` whole; the reason when it cannot.
pub(crate) fn fits(spec: &SeriesSpec) -> Result<(), String> {
    if spec.labels.len() > MAX_LABELS {
        return Err(format!(
            "series of {} has {} labels, more than the store holds ({MAX_LABELS})",
            spec.name,
            spec.labels.len()
        ));
    }
    let strings = [spec.name.as_str(), spec.unit.as_str()]
        .into_iter()
        .chain(spec.labels.iter().flat_map(|(k, v)| [k, v]));
    for s in strings {
        if s.len() > MAX_STR_BYTES {
            return Err(format!(
                "a name or label of a series of {} is {} bytes, more than the store holds ({MAX_STR_BYTES})",
                skein_model::cut_at_char_boundary(&spec.name, 128),
                s.len()
            ));
        }
    }
    Ok(())
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // [`fits`] refuses longer strings before they get here; cut at a char boundary all the
    // same, so that a record is always valid UTF-8 and the store always opens again.
    let b = skein_model::cut_at_char_boundary(s, MAX_STR_BYTES).as_bytes();
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
    out.extend_from_slice(&(spec.labels.len().min(MAX_LABELS) as u16).to_le_bytes());
    for (k, v) in spec.labels.iter().take(MAX_LABELS) {
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
        // Lossy: stores written before strings were cut at char boundaries may hold a cut
        // character; the store must still open (the series keeps its number).
        Ok(String::from_utf8_lossy(b).into_owned())
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

    #[test]
    fn sample_values_keep_their_exact_bits() {
        let bits = [
            0x7ff0_0000_0000_0002u64, // Prometheus's staleness marker
            f64::NAN.to_bits(),
            0xfff8_0000_0000_0001,
            f64::INFINITY.to_bits(),
            f64::NEG_INFINITY.to_bits(),
            (-0.0f64).to_bits(),
        ];
        let mut out = Vec::new();
        for (i, b) in bits.iter().enumerate() {
            put_sample(&mut out, i as u32, 1000 + i as i64, f64::from_bits(*b));
        }
        let back: Vec<(u32, i64, u64)> = samples(&out)
            .map(|(id, t, v)| (id, t, v.to_bits()))
            .collect();
        let want: Vec<(u32, i64, u64)> = bits
            .iter()
            .enumerate()
            .map(|(i, b)| (i as u32, 1000 + i as i64, *b))
            .collect();
        assert_eq!(back, want);
    }

    #[test]
    fn a_cut_string_stays_valid_utf8_and_bad_bytes_still_decode() {
        let spec = SeriesSpec {
            name: "calls".into(),
            labels: Labels::from_pairs([("op", format!("{}é", "a".repeat(65_534)).as_str())]),
            kind: MetricKind::Counter,
            unit: String::new(),
            delta: false,
        };
        assert!(fits(&spec).is_err());
        let (_, back) = decode_series(&encode_series(1, &spec)).unwrap();
        let v = back.labels.iter().next().unwrap().1.to_string();
        assert_eq!(v, "a".repeat(65_534), "cut before the character, not in it");
        // A record written by an older version, cut inside a character, still opens.
        let mut rec = Vec::new();
        rec.extend_from_slice(&3u32.to_le_bytes());
        rec.extend_from_slice(&[MetricKind::Counter.code(), 0]);
        rec.extend_from_slice(&2u16.to_le_bytes());
        rec.extend_from_slice(&[b'a', 0xC3]);
        rec.extend_from_slice(&0u16.to_le_bytes());
        rec.extend_from_slice(&0u16.to_le_bytes());
        let (id, s) = decode_series(&rec).unwrap();
        assert_eq!((id, s.name.as_str()), (3, "a\u{fffd}"));
    }

    fn kind() -> impl proptest::strategy::Strategy<Value = MetricKind> {
        use proptest::prelude::*;
        prop_oneof![
            Just(MetricKind::Gauge),
            Just(MetricKind::Counter),
            Just(MetricKind::UpDownCounter),
            Just(MetricKind::Histogram),
            Just(MetricKind::Summary),
        ]
    }

    proptest::proptest! {
        #[test]
        fn any_series_round_trips(
            id in proptest::prelude::any::<u32>(),
            name in "\\PC{0,80}",
            unit in "\\PC{0,10}",
            pairs in proptest::collection::vec(("\\PC{0,20}", "\\PC{0,200}"), 0..20),
            kind in kind(),
            delta in proptest::prelude::any::<bool>(),
        ) {
            let spec = SeriesSpec {
                name,
                labels: Labels::from_pairs(pairs),
                kind,
                unit,
                delta,
            };
            proptest::prop_assert!(fits(&spec).is_ok());
            proptest::prop_assert_eq!(decode_series(&encode_series(id, &spec)).unwrap(), (id, spec));
        }

        #[test]
        fn any_bytes_decode_without_panic(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = decode_series(&b);
            let _ = samples(&b).count();
        }
    }
}
