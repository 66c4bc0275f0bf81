//! Quantiles: `histogram_quantile` over classic `le` buckets (with Prometheus's coalescing of
//! equal bounds, its monotonicity fix and linear interpolation inside a bucket) and the
//! φ-quantile of a set of values used by `quantile` and `quantile_over_time`.

use super::eval::Ctx;
use super::series::{Grid, NAME, OutSet, Scalar, Series, StepCursor, same_labelset, without};
use crate::promql::PromError;
use skein_model::metric::Labels;
use std::cmp::Ordering;
use std::collections::HashMap;

/// The φ-quantile of values (sorted here, NaN first as Prometheus sorts them), interpolated
/// between the two nearest ranks. Empty or q = NaN → NaN; q < 0 → -Inf; q > 1 → +Inf.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(nan_first);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    let at = |i: f64| values.get(i as usize).copied().unwrap_or(f64::NAN);
    at(lower) * (1.0 - weight) + at(upper) * weight
}

fn nan_first(a: &f64, b: &f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

/// Go's `sort.Search`: the first index in `[0, n)` where `f` holds (n if none), by bisection.
fn go_search(n: usize, f: impl Fn(usize) -> bool) -> usize {
    let (mut i, mut j) = (0usize, n);
    while i < j {
        let h = i + (j - i) / 2;
        if !f(h) {
            i = h + 1;
        } else {
            j = h;
        }
    }
    i
}

/// The q-quantile of cumulative buckets `(upper bound, count)`, as Prometheus's
/// `bucketQuantile`: NaN without a +Inf bucket, with fewer than two buckets or no
/// observations; the upper bound of the second-highest bucket when the rank falls in the
/// +Inf bucket; the first bound when it falls in a first bucket whose bound is <= 0.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
    match buckets.last() {
        Some(b) if b.0 == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // Coalesce buckets with the same bound (e.g. le="1" and le="1.0").
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(ub, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    // Monotonicity: a bucket never counts fewer than the ones below it.
    let mut max = merged.first().map(|b| b.1).unwrap_or(f64::NAN);
    for b in merged.iter_mut().skip(1) {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    let n = merged.len();
    if n < 2 {
        return f64::NAN;
    }
    let get = |i: usize| merged.get(i).copied().unwrap_or((f64::NAN, f64::NAN));
    let observations = get(n - 1).1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = go_search(n - 1, |i| get(i).1 >= rank);
    if b == n - 1 {
        return get(n - 2).0;
    }
    if b == 0 && get(0).0 <= 0.0 {
        return get(0).0;
    }
    let bucket_end = get(b).0;
    let mut count = get(b).1;
    let mut bucket_start = 0.0;
    if b > 0 {
        let prev = get(b - 1);
        bucket_start = prev.0;
        count -= prev.1;
        rank -= prev.1;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

/// Parses a bucket bound like Go's `strconv.ParseFloat` for the usual forms (`0.5`, `1e3`,
/// `+Inf`, `NaN`).
fn parse_bound(s: &str) -> Option<f64> {
    s.parse::<f64>().ok()
}

/// `histogram_quantile(q, buckets)` on every step: buckets are grouped by their labels without
/// `le`; each group gives one series without `le` and the metric name.
pub(crate) fn eval_histogram_quantile(
    ctx: &mut Ctx<'_>,
    q: &Scalar,
    input: &[Series],
    grid: Grid,
) -> Result<Vec<Series>, PromError> {
    let le = vec!["le".to_string()];
    // Per input series: (group, upper bound), or None without a readable `le`.
    let mut groups: HashMap<Labels, usize> = HashMap::new();
    let mut group_labels: Vec<Labels> = Vec::new();
    let mut info: Vec<Option<(usize, f64)>> = Vec::with_capacity(input.len());
    for s in input {
        let Some(ub) = s.labels.get("le").and_then(parse_bound) else {
            info.push(None);
            continue;
        };
        let key = without(&s.labels, &le, false);
        let g = match groups.get(&key) {
            Some(&g) => g,
            None => {
                let g = group_labels.len();
                group_labels.push(without(&key, &[NAME.to_string()], false));
                groups.insert(key, g);
                g
            }
        };
        info.push(Some((g, ub)));
    }
    let mut out = OutSet::default();
    let slots: Vec<usize> = group_labels.iter().map(|l| out.slot(l.clone())).collect();
    let mut buckets: Vec<Vec<(f64, f64)>> = vec![Vec::new(); group_labels.len()];
    let mut touched: Vec<usize> = Vec::new();
    let mut cursor = StepCursor::new(input.len());
    for k in 0..grid.len() {
        ctx.tick()?;
        let t = grid.time(k);
        for (i, s) in input.iter().enumerate() {
            let Some(v) = cursor.take(i, s, t) else {
                continue;
            };
            let Some(Some((g, ub))) = info.get(i) else {
                continue;
            };
            if let Some(b) = buckets.get_mut(*g) {
                if b.is_empty() {
                    touched.push(*g);
                }
                b.push((*ub, v));
            }
        }
        let qk = q.get(k);
        for &g in &touched {
            let Some(b) = buckets.get_mut(g) else {
                continue;
            };
            let v = bucket_quantile(qk, b);
            b.clear();
            let slot = slots.get(g).copied().unwrap_or(usize::MAX);
            if !out.push(slot, t, v) {
                return Err(same_labelset());
            }
            ctx.add_samples(1)?;
        }
        touched.clear();
    }
    Ok(out.finish())
}
