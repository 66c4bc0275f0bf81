//! Test helpers: an in-memory [`SeriesSource`] and shorthands to build series and read
//! results.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{Engine, Limits};
use crate::promql::source::{RawSeries, SeriesSource};
use crate::promql::{PromError, QueryValue};
use skein_model::metric::Labels;
use skein_store::tsdb::Matcher;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Prometheus's staleness marker.
pub(crate) fn stale() -> f64 {
    f64::from_bits(super::series::STALE_NAN_BITS)
}

/// Series in memory, filtered by matchers.
#[derive(Default)]
pub(crate) struct MemSource {
    pub series: Vec<RawSeries>,
    /// How many selects were made.
    pub selects: AtomicUsize,
}

impl SeriesSource for MemSource {
    fn select(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        max_series: usize,
    ) -> Result<Vec<RawSeries>, PromError> {
        self.selects.fetch_add(1, Ordering::Relaxed);
        let out: Vec<RawSeries> = self
            .series
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

/// Labels from `name` and pairs.
pub(crate) fn labels(name: &str, pairs: &[(&str, &str)]) -> Labels {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if !name.is_empty() {
        v.push(("__name__".into(), name.into()));
    }
    Labels::from_pairs(v)
}

/// A series with samples at `start, start + every, ...` (seconds) valued `values`.
pub(crate) fn series(
    name: &str,
    pairs: &[(&str, &str)],
    start_s: i64,
    every_s: i64,
    values: &[f64],
) -> RawSeries {
    RawSeries {
        labels: labels(name, pairs),
        samples: values
            .iter()
            .enumerate()
            .map(|(i, v)| ((start_s + every_s * i as i64) * 1000, *v))
            .collect(),
    }
}

/// A series `start + k * inc` for k in 0..count, sampled every `every_s` seconds from 0
/// (Prometheus test notation `start+incxN`).
pub(crate) fn ramp(
    name: &str,
    pairs: &[(&str, &str)],
    every_s: i64,
    start: f64,
    inc: f64,
    count: usize,
) -> RawSeries {
    let values: Vec<f64> = (0..count).map(|k| start + inc * k as f64).collect();
    series(name, pairs, 0, every_s, &values)
}

/// An engine over these series with default limits.
pub(crate) fn engine(series: Vec<RawSeries>) -> Engine {
    engine_with(series, Limits::default())
}

/// An engine over these series with the given limits.
pub(crate) fn engine_with(series: Vec<RawSeries>, limits: Limits) -> Engine {
    Engine::new(
        Arc::new(MemSource {
            series,
            selects: AtomicUsize::new(0),
        }),
        limits,
    )
}

/// An instant query's vector as (labels as text, value) pairs, in answer order.
pub(crate) fn vector(e: &Engine, q: &str, t_s: f64) -> Vec<(String, f64)> {
    match e.instant(q, (t_s * 1000.0) as i64) {
        Ok(QueryValue::Vector(v)) => v
            .into_iter()
            .map(|s| (super::series::go_labels(&s.labels), s.v))
            .collect(),
        other => panic!("{q}: expected a vector, got {other:?}"),
    }
}

/// An instant query's scalar.
pub(crate) fn scalar(e: &Engine, q: &str, t_s: f64) -> f64 {
    match e.instant(q, (t_s * 1000.0) as i64) {
        Ok(QueryValue::Scalar(_, v)) => v,
        other => panic!("{q}: expected a scalar, got {other:?}"),
    }
}

/// A range query's matrix as (labels as text, points with times in seconds).
pub(crate) fn matrix(
    e: &Engine,
    q: &str,
    start_s: i64,
    end_s: i64,
    step_s: i64,
) -> Vec<(String, Vec<(i64, f64)>)> {
    match e.range(q, start_s * 1000, end_s * 1000, step_s * 1000) {
        Ok(QueryValue::Matrix(m)) => m
            .into_iter()
            .map(|s| {
                (
                    super::series::go_labels(&s.labels),
                    s.points.into_iter().map(|(t, v)| (t / 1000, v)).collect(),
                )
            })
            .collect(),
        other => panic!("{q}: expected a matrix, got {other:?}"),
    }
}

/// The error of an instant query.
pub(crate) fn error(e: &Engine, q: &str, t_s: f64) -> PromError {
    match e.instant(q, (t_s * 1000.0) as i64) {
        Err(err) => err,
        Ok(v) => panic!("{q}: expected an error, got {v:?}"),
    }
}

/// Asserts two floats are equal to 1e-9 relative (NaNs equal).
#[track_caller]
pub(crate) fn approx(got: f64, want: f64) {
    if got.is_nan() && want.is_nan() {
        return;
    }
    if got == want {
        return;
    }
    let tol = 1e-9 * want.abs().max(1e-12);
    assert!((got - want).abs() <= tol, "got {got}, want {want}");
}

/// Asserts a vector answer (labels as text, value) equals the expected one, values to 1e-9.
#[track_caller]
pub(crate) fn assert_vector(got: &[(String, f64)], want: &[(&str, f64)]) {
    assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
    for ((gl, gv), (wl, wv)) in got.iter().zip(want) {
        assert_eq!(gl, wl, "got {got:?}, want {want:?}");
        approx(*gv, *wv);
    }
}
