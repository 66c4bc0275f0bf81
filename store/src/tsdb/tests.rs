//! Tests of the whole store: append, read, restart, blocks, limits, retention.

#![allow(clippy::unwrap_used)]

use super::*;
use skein_model::metric::{Labels, MetricBatch, MetricKind, SeriesSpec};

fn cfg(dir: &std::path::Path) -> TsdbConfig {
    TsdbConfig {
        dir: dir.to_path_buf(),
        ..Default::default()
    }
}

fn spec(name: &str, host: &str, kind: MetricKind) -> SeriesSpec {
    SeriesSpec {
        name: name.into(),
        labels: Labels::from_pairs([("host", host)]),
        kind,
        unit: "1".into(),
        delta: false,
    }
}

/// `n` samples of cpu on each host, 10 s apart from `t0`, value = host number * 1000 + i.
fn batch(hosts: usize, t0: i64, n: i64) -> MetricBatch {
    let mut b = MetricBatch::default();
    for h in 0..hosts {
        let id = b.add_series(spec("cpu", &format!("web-{h}"), MetricKind::Gauge));
        for i in 0..n {
            b.push(id, t0 + i * 10_000, (h * 1000) as f64 + i as f64);
        }
    }
    b
}

fn read(db: &Tsdb, name: &str, m: &str) -> Vec<(i64, f64)> {
    let ms: Vec<Matcher> = if m.is_empty() {
        vec![]
    } else {
        vec![Matcher::parse(m).unwrap()]
    };
    let sel = db.select(name, &ms, i64::MIN, i64::MAX, 100).unwrap();
    let mut out = Vec::new();
    for s in &sel {
        s.for_each(i64::MIN, i64::MAX, |t, v| out.push((t, v)));
    }
    out
}

fn now() -> i64 {
    (skein_model::time::now_unix_nano() / 1_000_000) as i64
}

#[test]
fn append_select_and_survive_restart_from_wal_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = now() - 3_600_000;
    {
        let db = Tsdb::open(cfg(dir.path())).unwrap();
        let r = db.append(&batch(3, t0, 300)).unwrap();
        assert_eq!(r.accepted, 900);
        assert_eq!(r.rejected, 0);
        db.persist().unwrap();
        // More after the block: these live only in the WAL at restart.
        let r = db.append(&batch(3, t0 + 300 * 10_000, 50)).unwrap();
        assert_eq!(r.accepted, 150);
        let st = db.stats();
        assert_eq!(
            (st.series, st.blocks, st.block_samples, st.head_samples),
            (3, 1, 900, 150)
        );
    }
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    let got = read(&db, "cpu", "host=web-1");
    assert_eq!(got.len(), 350);
    assert_eq!(got[0], (t0, 1000.0));
    assert_eq!(got[349], (t0 + 349 * 10_000, 1049.0));
    assert_eq!(read(&db, "cpu", "").len(), 1050);
    // A retry of what is already stored is dropped as duplicates, not refused.
    let r = db.append(&batch(3, t0 + 300 * 10_000, 50)).unwrap();
    assert_eq!((r.accepted, r.duplicates, r.rejected), (0, 150, 0));
    // Restart again after a second block: still every sample once.
    db.persist().unwrap();
    drop(db);
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    assert_eq!(read(&db, "cpu", "").len(), 1050);
    assert_eq!(db.stats().blocks, 2);
    let m = db.metrics();
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].name.as_str(), m[0].series), ("cpu", 3));
    assert_eq!(db.label_names(Some("cpu")), vec!["host"]);
    assert_eq!(
        db.label_values("host", None),
        vec!["web-0", "web-1", "web-2"]
    );
}

#[test]
fn bad_samples_are_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    let mut b = MetricBatch::default();
    let id = b.add_series(spec("mem", "a", MetricKind::Gauge));
    b.push(id, 1000, 1.0);
    b.push(id, 4000, 4.0);
    b.push(id, 3500, 3.5); // out of order
    b.push(id, 4000, 4.0); // repeat
    b.push(id, 4000, 5.0); // same time, another value
    let r = db.append(&b).unwrap();
    assert_eq!(r.accepted, 2);
    assert_eq!(r.out_of_order, 2);
    assert_eq!(r.duplicates, 1);
    assert_eq!(r.rejected, 2);
    assert!(
        r.first_reason
            .unwrap()
            .contains("not after the last stored one")
    );
    assert_eq!(read(&db, "mem", ""), vec![(1000, 1.0), (4000, 4.0)]);
    // A series whose only samples are refused is not created.
    let mut b = MetricBatch::default();
    let late = b.add_series(spec("mem", "b", MetricKind::Gauge));
    let ok = b.add_series(spec("mem", "c", MetricKind::Gauge));
    b.push(late, now() + 3_600_000, 1.0);
    b.push(ok, 1, 1.0);
    assert_eq!(db.append(&b).unwrap().accepted, 1);
    assert_eq!(db.metric("mem").unwrap().series, 2);
    drop(db);
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    assert_eq!(read(&db, "mem", "host=c"), vec![(1, 1.0)]);
}

/// Prometheus's staleness marker.
const STALE: u64 = 0x7ff0_0000_0000_0002;

/// Values whose bits must come back as sent.
const SPECIAL: [u64; 9] = [
    0x3ff0_0000_0000_0000, // 1.0
    0x7ff8_0000_0000_0000, // NaN
    0x7ff0_0000_0000_0000, // +Inf
    0xfff0_0000_0000_0000, // -Inf
    STALE,
    0x8000_0000_0000_0000, // -0
    0xfff8_0000_0000_0001, // a negative NaN with a payload
    0x7ff8_0000_0000_0001, // Go's NaN, as Prometheus writes it
    0x4000_0000_0000_0000, // 2.0
];

fn read_bits(db: &Tsdb, name: &str) -> Vec<(i64, u64)> {
    read(db, name, "")
        .into_iter()
        .map(|(t, v)| (t, v.to_bits()))
        .collect()
}

fn bits_batch(t0: i64, values: &[u64]) -> MetricBatch {
    let mut b = MetricBatch::default();
    let id = b.add_series(spec("temp", "a", MetricKind::Gauge));
    for (i, v) in values.iter().enumerate() {
        b.push(id, t0 + i as i64 * 1000, f64::from_bits(*v));
    }
    b
}

#[test]
fn nan_infinities_and_staleness_markers_keep_their_bits_in_head_wal_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = now() - 600_000;
    let want: Vec<(i64, u64)> = SPECIAL
        .iter()
        .enumerate()
        .map(|(i, v)| (t0 + i as i64 * 1000, *v))
        .collect();
    let last_t = want[want.len() - 1].0;
    {
        let db = Tsdb::open(cfg(dir.path())).unwrap();
        let r = db.append(&bits_batch(t0, &SPECIAL)).unwrap();
        assert_eq!((r.accepted, r.rejected), (SPECIAL.len() as u64, 0), "{r:?}");
        assert_eq!(read_bits(&db, "temp"), want, "head");
        // A retry is all repeats, NaNs included (same bits).
        let r = db.append(&bits_batch(t0, &SPECIAL)).unwrap();
        assert_eq!(
            (r.accepted, r.duplicates, r.rejected),
            (0, SPECIAL.len() as u64, 0)
        );
        // A staleness marker follows the rules of any sample: at the time of the last
        // sample it is a second value, before it out of order; after it, it is stored.
        for t in [last_t, last_t - 500] {
            let r = db.append(&bits_batch(t, &[STALE])).unwrap();
            assert_eq!((r.accepted, r.out_of_order), (0, 1), "at {t}");
        }
    }
    // Restart: the samples come back from the WAL.
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    assert_eq!(read_bits(&db, "temp"), want, "wal replay");
    let r = db.append(&bits_batch(last_t + 1000, &[STALE])).unwrap();
    assert_eq!(r.accepted, 1);
    // A repeat of the marker is a repeat; another value at its time is a second value.
    let r = db.append(&bits_batch(last_t + 1000, &[STALE])).unwrap();
    assert_eq!((r.accepted, r.duplicates), (0, 1));
    let r = db
        .append(&bits_batch(last_t + 1000, &[f64::NAN.to_bits()]))
        .unwrap();
    assert_eq!((r.accepted, r.out_of_order), (0, 1));
    let mut want = want;
    want.push((last_t + 1000, STALE));
    // Into a block, and read back from it after a restart (the WAL is cut).
    db.persist().unwrap();
    drop(db);
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    assert_eq!(db.stats().head_samples, 0);
    assert_eq!(read_bits(&db, "temp"), want, "block");
    // The last sample read from the block still makes a resent marker a repeat.
    let r = db.append(&bits_batch(last_t + 1000, &[STALE])).unwrap();
    assert_eq!((r.accepted, r.duplicates), (0, 1));
    // A new series may start with any value.
    let mut b = MetricBatch::default();
    let id = b.add_series(spec("temp", "new", MetricKind::Gauge));
    b.push(id, t0, f64::from_bits(STALE));
    assert_eq!(db.append(&b).unwrap().accepted, 1);
    assert_eq!(read(&db, "temp", "host=new")[0].1.to_bits(), STALE);
}

#[test]
fn a_non_finite_delta_is_stored_as_sent_and_the_total_starts_again_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mk = |t: i64, v: f64| {
        let mut b = MetricBatch::default();
        let id = b.add_series(SeriesSpec {
            delta: true,
            ..spec("requests", "a", MetricKind::Counter)
        });
        b.push(id, t, v);
        b
    };
    {
        let db = Tsdb::open(cfg(dir.path())).unwrap();
        for (t, v) in [(1000, 5.0), (2000, 3.0), (3000, f64::INFINITY)] {
            assert_eq!(db.append(&mk(t, v)).unwrap().accepted, 1);
        }
    }
    // After a restart the last stored sample (+Inf) is the total to go on from.
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    for (t, v) in [(4000, 2.0), (5000, 4.0), (6000, f64::NAN), (7000, 1.0)] {
        assert_eq!(db.append(&mk(t, v)).unwrap().accepted, 1);
    }
    let got = read(&db, "requests", "");
    assert_eq!(
        &got[..4],
        &[(1000, 5.0), (2000, 8.0), (3000, f64::INFINITY), (4000, 2.0)]
    );
    assert_eq!(got[4], (5000, 6.0));
    assert_eq!((got[5].0, got[5].1.to_bits()), (6000, f64::NAN.to_bits()));
    assert_eq!(got[6], (7000, 1.0));
}

#[test]
fn series_limits_refuse_new_label_sets_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(TsdbConfig {
        max_series_per_metric: 5,
        ..cfg(dir.path())
    })
    .unwrap();
    let r = db.append(&batch(8, 1000, 2)).unwrap();
    assert_eq!((r.accepted, r.series_limited, r.rejected), (10, 6, 6));
    assert!(r.first_reason.unwrap().contains("limit of 5 series"));
    // Known series still take samples; another metric has its own limit.
    let r = db.append(&batch(5, 100_000, 1)).unwrap();
    assert_eq!(r.accepted, 5);
    let mut b = MetricBatch::default();
    let id = b.add_series(spec("disk", "a", MetricKind::Gauge));
    b.push(id, 1, 1.0);
    assert_eq!(db.append(&b).unwrap().accepted, 1);
    assert_eq!(db.stats().series, 6);
}

#[test]
fn delta_sums_become_running_totals_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mk = |t: i64, v: f64| {
        let mut b = MetricBatch::default();
        let id = b.add_series(SeriesSpec {
            delta: true,
            ..spec("requests", "a", MetricKind::Counter)
        });
        b.push(id, t, v);
        b
    };
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    db.append(&mk(1000, 5.0)).unwrap();
    db.append(&mk(2000, 3.0)).unwrap();
    // A retried delta with the same time is a duplicate, not counted twice.
    assert_eq!(db.append(&mk(2000, 3.0)).unwrap().duplicates, 1);
    drop(db);
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    db.append(&mk(3000, 2.0)).unwrap();
    assert_eq!(
        read(&db, "requests", ""),
        vec![(1000, 5.0), (2000, 8.0), (3000, 10.0)]
    );
}

#[test]
fn retention_deletes_old_blocks_and_ranges_prune() {
    let dir = tempfile::tempdir().unwrap();
    let old = now() - 40 * 24 * 3_600_000;
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    db.append(&batch(2, old, 10)).unwrap();
    db.persist().unwrap();
    db.append(&batch(2, now() - 60_000, 3)).unwrap();
    db.persist().unwrap();
    assert_eq!(db.stats().blocks, 2);
    db.maintain().unwrap();
    assert_eq!(db.stats().blocks, 1);
    assert_eq!(read(&db, "cpu", "").len(), 6);
    let sel = db.select("cpu", &[], now() - 30_000, now(), 10).unwrap();
    let mut n = 0;
    for s in &sel {
        s.for_each(now() - 30_000, now(), |_, _| n += 1);
    }
    assert!(n <= 4, "{n}");
    assert!(db.select("cpu", &[], 0, i64::MAX, 1).is_err());
}

#[test]
fn a_torn_block_write_is_ignored_and_the_wal_replays() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Tsdb::open(cfg(dir.path())).unwrap();
        db.append(&batch(1, 1000, 20)).unwrap();
    }
    std::fs::write(
        dir.path().join("blocks/00000000000000000099.blk.tmp"),
        b"half",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("blocks/00000000000000000098.blk"),
        b"garbage",
    )
    .unwrap();
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    assert_eq!(read(&db, "cpu", "").len(), 20);
    assert!(
        dir.path()
            .join("blocks/00000000000000000098.blk.damaged")
            .exists()
    );
}

#[test]
fn a_new_counter_starts_from_zero_at_its_start_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    let mut b = MetricBatch::default();
    let c = b.add_series(spec("calls", "a", MetricKind::Counter));
    let g = b.add_series(spec("temp", "a", MetricKind::Gauge));
    for id in [c, g] {
        b.samples.push(skein_model::metric::BatchSample {
            series: id,
            ts_ms: 5000,
            value: 7.0,
            start_ms: 1000,
        });
    }
    db.append(&b).unwrap();
    // Only for a new series: the next sample with a start time adds no zero.
    b.samples.truncate(1);
    b.samples[0].ts_ms = 6000;
    b.samples[0].value = 9.0;
    db.append(&b).unwrap();
    assert_eq!(
        read(&db, "calls", ""),
        vec![(1000, 0.0), (5000, 7.0), (6000, 9.0)]
    );
    assert_eq!(read(&db, "temp", ""), vec![(5000, 7.0)]);
}

#[test]
fn a_label_too_long_for_the_series_log_is_refused_and_the_store_opens_again() {
    // One label value of 65,534 ASCII bytes and a two-byte character: over the log's u16
    // length. Before, the log cut it mid-character and the store then refused to open.
    let dir = tempfile::tempdir().unwrap();
    let long = format!("{}é", "a".repeat(65_534));
    let fits = format!("{}é", "a".repeat(65_533));
    {
        let db = Tsdb::open(cfg(dir.path())).unwrap();
        for (v, derived) in [(&long, false), (&long, true), (&fits, true)] {
            let mut b = MetricBatch::default();
            let id = b.add_series(SeriesSpec {
                labels: Labels::from_pairs([("span_name", v.as_str())]),
                ..spec("calls", "a", MetricKind::Counter)
            });
            b.push(id, now(), 1.0);
            let r = if derived {
                db.append_derived(&b).unwrap()
            } else {
                db.append(&b).unwrap()
            };
            if v.len() > u16::MAX as usize {
                assert_eq!((r.accepted, r.rejected), (0, 1), "{} bytes", v.len());
                assert!(r.first_reason.unwrap().contains("65535"));
            } else {
                assert_eq!(r.accepted, 1, "{} bytes", v.len());
            }
        }
    }
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    assert_eq!(db.stats().series, 1);
    assert_eq!(db.label_values("span_name", None), vec![fits]);
}

#[test]
fn a_sample_from_a_clock_years_ahead_is_refused_and_the_series_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    let t = now();
    let year_ms = 365 * 24 * 3_600_000;
    let mut b = MetricBatch::default();
    let id = b.add_series(spec("cpu", "skewed", MetricKind::Gauge));
    b.push(id, t + 5 * year_ms, 1.0);
    let r = db.append(&b).unwrap();
    assert_eq!((r.accepted, r.too_far_ahead), (0, 1));
    assert!(
        r.first_reason
            .unwrap()
            .contains("ahead of the collector's clock")
    );
    // Before, the future sample was stored and every later one was "out of order".
    let mut b = MetricBatch::default();
    let id = b.add_series(spec("cpu", "skewed", MetricKind::Gauge));
    b.push(id, t, 2.0);
    b.push(id, t + 60_000, 3.0); // a minute ahead: within the allowed skew
    assert_eq!(db.append(&b).unwrap().accepted, 2);
}

#[test]
fn a_back_dated_sample_older_than_the_head_is_refused_without_reading_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(cfg(dir.path())).unwrap();
    let t0 = now() - 3_600_000;
    assert_eq!(db.append(&batch(1, t0, 10)).unwrap().accepted, 10);
    db.persist().unwrap();
    assert_eq!(db.append(&batch(1, t0 + 100_000, 1)).unwrap().accepted, 1);
    // t0 + 10 s lives only in the block on disk: the append does not read it under the
    // write lock, and reports the sample as out of order (it is stored once already).
    let r = db.append(&batch(1, t0 + 10_000, 1)).unwrap();
    assert_eq!((r.accepted, r.duplicates, r.out_of_order), (0, 0, 1));
    assert_eq!(read(&db, "cpu", "").len(), 11);
}
