//! The TSDB series log and sample WAL records. The first byte picks: raw bytes read as a
//! series record (as start-up does; must never panic, and what it reads must encode back to
//! the same bytes' meaning); a series made from the input (names and labels, some made
//! long by repetition to reach the 65,535-byte limit, multi-byte characters included)
//! encoded and decoded (equal when the store accepts it, readable when it does not); or
//! sample records.
#![no_main]
use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use skein_model::metric::{Labels, MetricKind, SeriesSpec};
use skein_store::fuzzing::{decode_series, encode_series, put_sample, samples, series_fits};

#[derive(Arbitrary, Debug)]
struct Spec {
    id: u32,
    kind: u8,
    delta: bool,
    name: (String, u16),
    unit: String,
    labels: Vec<(String, (String, u16))>,
}

/// `s` repeated `times` times (at most 70,000 bytes: just past the limit).
fn long((s, times): &(String, u16)) -> String {
    if s.is_empty() {
        return String::new();
    }
    let n = (*times as usize).min(70_000 / s.len()).max(1);
    s.repeat(n)
}

fuzz_target!(|data: &[u8]| {
    if data.len() > skein_fuzz::MAX_INPUT {
        return;
    }
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok((id, spec)) = decode_series(rest)
                // Lossy UTF-8 can make a string longer than the log holds; such a record is
                // read (the store opens) but would not be written again whole.
                && series_fits(&spec).is_ok()
            {
                let again = encode_series(id, &spec);
                let (id2, spec2) = decode_series(&again).expect("re-encoded series reads");
                assert_eq!(id, id2);
                assert_eq!(spec.name, spec2.name);
                assert_eq!(spec.unit, spec2.unit);
                assert_eq!(spec.kind, spec2.kind);
                assert_eq!(spec.delta, spec2.delta);
                assert_eq!(spec.labels, spec2.labels);
            }
        }
        1 => {
            let Ok(s) = Spec::arbitrary_take_rest(Unstructured::new(rest)) else {
                return;
            };
            if s.labels.len() > 256 {
                return;
            }
            let kind = MetricKind::from_code(s.kind % 8).unwrap_or(MetricKind::Gauge);
            let spec = SeriesSpec {
                name: long(&s.name),
                labels: Labels::from_pairs(s.labels.iter().map(|(k, v)| (k.clone(), long(v)))),
                kind,
                unit: s.unit,
                delta: s.delta,
            };
            skein_fuzz::check_series_round_trip(s.id, &spec);
        }
        _ => {
            let read = samples(rest);
            assert_eq!(read.len(), rest.len() / 20);
            let mut out = Vec::new();
            for &(id, ts, v) in &read {
                put_sample(&mut out, id, ts, v);
            }
            assert_eq!(
                out,
                rest[..read.len() * 20],
                "samples encode back to their bytes"
            );
        }
    }
});
