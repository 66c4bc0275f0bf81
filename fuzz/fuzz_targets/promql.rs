//! PromQL: any query text parsed and evaluated by the engine (`query::promql::Engine`) over a
//! small fixed in-memory source (counters with a reset, gauges with NaN and a staleness
//! marker, a classic histogram, a summary), with tight limits: 100,000 samples, 100 steps,
//! 1,000 series per selector, 1 s. Input: byte 0 bit 0 picks an instant or a range query;
//! byte 1 the time (or the start), byte 2 the number of steps, byte 3 the step; the rest is
//! the query. On a thread with a 2 MiB stack. Beside "no crash" and "within `-timeout` and
//! `-rss_limit_mb`": an instant vector's samples are at the query's time, a range answer's
//! points are on the grid, at most one per step.
#![no_main]
use libfuzzer_sys::fuzz_target;
use skein_model::metric::Labels;
use skein_query::promql::source::{RawSeries, SeriesSource};
use skein_query::promql::{Engine, Limits, PromError, QueryValue};
use skein_store::tsdb::Matcher;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Samples every 15 s over the first hour.
const EVERY_MS: i64 = 15_000;
const POINTS: i64 = 241;
/// Prometheus's staleness marker.
const STALE: u64 = 0x7ff0_0000_0000_0002;

struct Mem(Vec<RawSeries>);

impl SeriesSource for Mem {
    fn select(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        max_series: usize,
    ) -> Result<Vec<RawSeries>, PromError> {
        let out: Vec<RawSeries> = self
            .0
            .iter()
            .filter(|s| matchers.iter().all(|m| m.matches(&s.labels)))
            .map(|s| RawSeries {
                labels: s.labels.clone(),
                samples: s
                    .samples
                    .iter()
                    .copied()
                    .filter(|(t, _)| *t >= start && *t <= end)
                    .collect(),
            })
            .collect();
        if out.len() > max_series {
            return Err(PromError::execution(format!(
                "the selector matched more than {max_series} series"
            )));
        }
        Ok(out)
    }
}

fn series(name: &str, pairs: &[(&str, &str)], value: impl Fn(i64) -> f64) -> RawSeries {
    let labels = Labels::from_pairs(
        pairs
            .iter()
            .copied()
            .chain(std::iter::once(("__name__", name))),
    );
    RawSeries {
        labels,
        samples: (0..POINTS).map(|k| (k * EVERY_MS, value(k))).collect(),
    }
}

fn source() -> Vec<RawSeries> {
    let mut out = Vec::new();
    for (code, rate) in [("200", 10.0), ("500", 0.5)] {
        for instance in ["a:9090", "b:9090"] {
            let pairs = [("job", "api"), ("instance", instance), ("code", code)];
            // A counter with a reset at k = 100.
            out.push(series("http_requests_total", &pairs, |k| {
                (if k < 100 { k } else { k - 100 }) as f64 * rate
            }));
        }
    }
    for mode in ["idle", "user"] {
        out.push(series(
            "node_cpu_seconds_total",
            &[("instance", "a:9100"), ("cpu", "0"), ("mode", mode)],
            |k| k as f64 * 7.5,
        ));
    }
    out.push(series(
        "temperature_celsius",
        &[("location", "x")],
        |k| match k {
            50 => f64::NAN,
            60 => f64::from_bits(STALE),
            _ => (k % 40) as f64 - 10.0,
        },
    ));
    out.push(series("queue_depth", &[("queue", "q1")], |k| {
        (k % 7) as f64
    }));
    out.push(series(
        "up",
        &[("job", "api"), ("instance", "a:9090")],
        |_| 1.0,
    ));
    let bounds = ["0.1", "0.5", "1", "+Inf"];
    for (i, le) in bounds.iter().enumerate() {
        out.push(series(
            "request_duration_seconds_bucket",
            &[("job", "api"), ("le", le)],
            |k| (k * (i as i64 + 1)) as f64,
        ));
    }
    out.push(series(
        "request_duration_seconds_sum",
        &[("job", "api")],
        |k| k as f64 * 1.7,
    ));
    out.push(series(
        "request_duration_seconds_count",
        &[("job", "api")],
        |k| (k * 4) as f64,
    ));
    for q in ["0.5", "0.9", "0.99"] {
        out.push(series("rpc_latency_seconds", &[("quantile", q)], |k| {
            0.01 * (k % 13) as f64
        }));
    }
    out
}

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| {
        Engine::new(
            Arc::new(Mem(source())),
            Limits {
                max_samples: 100_000,
                max_series: 1_000,
                max_steps: 100,
                timeout: Duration::from_secs(1),
                lookback_ms: 300_000,
            },
        )
    })
}

/// Steps of a range query (0 and negative ones are refused).
const STEPS_MS: [i64; 8] = [1, 1_000, 15_000, 17_000, 60_000, 300_000, 0, -15_000];

fuzz_target!(|data: &[u8]| {
    // Queries from the API are form fields; 64 KiB is plenty for any real one.
    if data.len() < 4 || data.len() > 64 * 1024 {
        return;
    }
    let (head, text) = data.split_at(4);
    let query = String::from_utf8_lossy(text).into_owned();
    // Times from 10 minutes before the data to an hour after it.
    let t = i64::from(head[1]) * 30_000 - 600_000;
    let range = head[0] & 1 == 1;
    let steps = i64::from(head[2] % 128);
    let step = STEPS_MS[usize::from(head[3]) % STEPS_MS.len()];
    skein_fuzz::on_small_stack(move || {
        let e = engine();
        if range {
            let end = t + steps * step;
            if let Ok(v) = e.range(&query, t, end, step) {
                let QueryValue::Matrix(m) = v else {
                    panic!("a range query answers a matrix: {v:?}");
                };
                for s in &m {
                    assert!(s.points.len() as i64 <= steps + 1, "one point per step");
                    for w in s.points.windows(2) {
                        assert!(w[0].0 < w[1].0, "points in time order");
                    }
                    for (pt, _) in &s.points {
                        assert!(
                            *pt >= t && *pt <= end && (pt - t) % step == 0,
                            "on the grid"
                        );
                    }
                }
            }
        } else if let Ok(QueryValue::Vector(v)) = e.instant(&query, t) {
            for s in &v {
                assert_eq!(s.t, t, "an instant vector is at the query's time");
            }
        }
    });
});
