//! Range-vector functions (`rate`, `increase`, `delta`, `irate`, `idelta`, `deriv`,
//! `predict_linear`, `resets`, `changes`, `holt_winters` and the `*_over_time` family):
//! each series is walked once along the grid with two moving indices marking the window
//! `[t - offset - range, t - offset]`, and the function is computed on the samples inside.
//! The arithmetic follows Prometheus 2.42's `functions.go` (its extrapolation, Kahan sums and
//! regression), so results agree with it to rounding.

use super::eval::{Ctx, RangeArg};
use super::functions::Func;
use super::histogram::quantile;
use super::series::{Grid, Scalar, Series, Val, check_unique_labels, drop_name, go_float};
use crate::promql::PromError;
use skein_model::metric::Labels;

/// Evaluates a range-vector function whose matrix argument is `arg` and whose scalar
/// arguments (by position, the matrix one left out) are `scalars`.
pub(crate) fn eval(
    ctx: &mut Ctx<'_>,
    func: Func,
    arg: RangeArg,
    scalars: &[Option<Scalar>],
    absent_labels: Labels,
    grid: Grid,
) -> Result<Val, PromError> {
    let n = grid.len();
    let scalar = |i: usize, k: usize| -> f64 {
        scalars
            .get(i)
            .and_then(|s| s.as_ref())
            .map(|s| s.get(k))
            .unwrap_or(f64::NAN)
    };
    let mut out: Vec<Series> = Vec::new();
    // Steps where some series had samples (absent_over_time only).
    let mut present = if func == Func::AbsentOverTime {
        vec![false; n]
    } else {
        Vec::new()
    };
    for s in &arg.series {
        ctx.tick()?;
        let labels = if func == Func::LastOverTime {
            s.labels.clone()
        } else {
            drop_name(&s.labels)
        };
        let samples = &s.points;
        let mut points: Vec<(i64, f64)> = Vec::new();
        let (mut lo, mut hi) = (0usize, 0usize);
        // A fixed window (`@`) gives the same answer on every step, except for
        // predict_linear, whose intercept is the evaluation time.
        let mut fixed: Option<Option<f64>> = None;
        for k in 0..n {
            let t = grid.time(k);
            let (ws, we) = arg.window.bounds(t);
            if let (Some(v), true) = (fixed, func != Func::PredictLinear) {
                if let Some(v) = v {
                    points.push((t, v));
                    mark(&mut present, k);
                }
                continue;
            }
            while hi < samples.len() && samples.get(hi).is_some_and(|p| p.0 <= we) {
                hi += 1;
            }
            while lo < hi && samples.get(lo).is_some_and(|p| p.0 < ws) {
                lo += 1;
            }
            let window = samples.get(lo..hi).unwrap_or(&[]);
            let v = if window.is_empty() {
                None
            } else {
                mark(&mut present, k);
                compute(func, window, ws, we, t, k, &scalar)?
            };
            if arg.window.is_fixed() {
                fixed = Some(v);
            }
            if let Some(v) = v {
                points.push((t, v));
            }
        }
        if !points.is_empty() {
            ctx.add_samples(points.len())?;
            out.push(Series { labels, points });
        }
    }
    if func == Func::AbsentOverTime {
        ctx.release(out.iter().map(|s| s.points.len()).sum());
        let points: Vec<(i64, f64)> = present
            .iter()
            .enumerate()
            .filter(|(_, p)| !**p)
            .map(|(k, _)| (grid.time(k), 1.0))
            .collect();
        if points.is_empty() {
            return Ok(Val::Vector(Vec::new()));
        }
        ctx.add_samples(points.len())?;
        return Ok(Val::Vector(vec![Series {
            labels: absent_labels,
            points,
        }]));
    }
    check_unique_labels(&out)?;
    Ok(Val::Vector(out))
}

fn mark(present: &mut [bool], k: usize) {
    if let Some(p) = present.get_mut(k) {
        *p = true;
    }
}

/// The function on one window. `ws`/`we`: window bounds (ms); `t`: evaluation time;
/// `scalar(i, k)`: the i-th argument at step k.
fn compute(
    func: Func,
    w: &[(i64, f64)],
    ws: i64,
    we: i64,
    t: i64,
    k: usize,
    scalar: &dyn Fn(usize, usize) -> f64,
) -> Result<Option<f64>, PromError> {
    let (Some(first), Some(last)) = (w.first(), w.last()) else {
        return Ok(None);
    };
    Ok(match func {
        Func::Rate => extrapolated_rate(w, ws, we, true, true),
        Func::Increase => extrapolated_rate(w, ws, we, true, false),
        Func::Delta => extrapolated_rate(w, ws, we, false, false),
        Func::Irate => instant_value(w, true),
        Func::Idelta => instant_value(w, false),
        Func::Deriv => {
            if w.len() < 2 {
                None
            } else {
                Some(linear_regression(w, first.0).0)
            }
        }
        Func::PredictLinear => {
            if w.len() < 2 {
                None
            } else {
                let (slope, intercept) = linear_regression(w, t);
                Some(slope * scalar(1, k) + intercept)
            }
        }
        Func::Resets => {
            let mut n = 0u64;
            for p in w.windows(2) {
                if let [a, b] = p
                    && b.1 < a.1
                {
                    n += 1;
                }
            }
            Some(n as f64)
        }
        Func::Changes => {
            let mut n = 0u64;
            for p in w.windows(2) {
                if let [a, b] = p
                    && b.1 != a.1
                    && !(b.1.is_nan() && a.1.is_nan())
                {
                    n += 1;
                }
            }
            Some(n as f64)
        }
        Func::HoltWinters => holt_winters(w, scalar(1, k), scalar(2, k))?,
        Func::AvgOverTime => Some(avg_over_time(w)),
        Func::CountOverTime => Some(w.len() as f64),
        Func::LastOverTime => Some(last.1),
        Func::PresentOverTime | Func::AbsentOverTime => Some(1.0),
        Func::MaxOverTime => {
            let mut max = first.1;
            for &(_, v) in w {
                if v > max || max.is_nan() {
                    max = v;
                }
            }
            Some(max)
        }
        Func::MinOverTime => {
            let mut min = first.1;
            for &(_, v) in w {
                if v < min || min.is_nan() {
                    min = v;
                }
            }
            Some(min)
        }
        Func::SumOverTime => {
            let (mut sum, mut c) = (0.0, 0.0);
            for &(_, v) in w {
                (sum, c) = kahan_inc(v, sum, c);
            }
            Some(if sum.is_infinite() { sum } else { sum + c })
        }
        Func::QuantileOverTime => {
            let mut values: Vec<f64> = w.iter().map(|p| p.1).collect();
            Some(quantile(scalar(0, k), &mut values))
        }
        Func::StddevOverTime => Some(variance_over_time(w).sqrt()),
        Func::StdvarOverTime => Some(variance_over_time(w)),
        _ => None,
    })
}

/// Seconds from `a` to `b` (ms), without overflow for any times.
fn seconds_between(a: i64, b: i64) -> f64 {
    (b as i128 - a as i128) as f64 / 1000.0
}

/// Kahan–Neumaier summation step, as Prometheus's `kahanSumInc`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// rate / increase / delta: the change over the window, counter resets added back for
/// counters, extrapolated towards the window's edges (to the edge when the first/last sample
/// is within 1.1 average intervals of it, else by half an interval; for counters never past
/// the point where the counter would have been zero), per second for rate.
fn extrapolated_rate(
    w: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (first, last) = (w.first()?, w.last()?);
    let mut result = last.1 - first.1;
    if is_counter {
        let mut prev = first.1;
        for &(_, v) in w.get(1..)? {
            if v < prev {
                result += prev;
            }
            prev = v;
        }
    }
    let mut duration_to_start = seconds_between(range_start, first.0);
    let duration_to_end = seconds_between(last.0, range_end);
    let sampled_interval = seconds_between(first.0, last.0);
    let average_between = sampled_interval / (w.len() - 1) as f64;
    if is_counter && result > 0.0 && first.1 >= 0.0 {
        let duration_to_zero = sampled_interval * (first.1 / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    let threshold = average_between * 1.1;
    let mut extrapolate_to = sampled_interval;
    if duration_to_start < threshold {
        extrapolate_to += duration_to_start;
    } else {
        extrapolate_to += average_between / 2.0;
    }
    if duration_to_end < threshold {
        extrapolate_to += duration_to_end;
    } else {
        extrapolate_to += average_between / 2.0;
    }
    let mut factor = extrapolate_to / sampled_interval;
    if is_rate {
        factor /= seconds_between(range_start, range_end);
    }
    Some(result * factor)
}

/// irate / idelta: from the last two samples.
fn instant_value(w: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let last = w.last()?;
    let prev = w.get(w.len() - 2)?;
    let mut result = if is_rate && last.1 < prev.1 {
        last.1
    } else {
        last.1 - prev.1
    };
    if last.0 == prev.0 {
        return None;
    }
    if is_rate {
        result /= seconds_between(prev.0, last.0);
    }
    Some(result)
}

/// Least squares over the window with times relative to `intercept_time` (seconds):
/// (slope, value at `intercept_time`).
fn linear_regression(w: &[(i64, f64)], intercept_time: i64) -> (f64, f64) {
    let mut n = 0.0;
    let (mut sum_x, mut c_x) = (0.0, 0.0);
    let (mut sum_y, mut c_y) = (0.0, 0.0);
    let (mut sum_xy, mut c_xy) = (0.0, 0.0);
    let (mut sum_x2, mut c_x2) = (0.0, 0.0);
    let init_y = w.first().map(|p| p.1).unwrap_or(f64::NAN);
    let mut const_y = true;
    for (i, &(t, v)) in w.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = seconds_between(intercept_time, t);
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sum_x, sum_y, sum_xy, sum_x2) = (sum_x + c_x, sum_y + c_y, sum_xy + c_xy, sum_x2 + c_x2);
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// Mean with Kahan summation and Prometheus's care for infinities.
fn avg_over_time(w: &[(i64, f64)]) -> f64 {
    let (mut mean, mut count, mut c) = (0.0f64, 0.0f64, 0.0f64);
    for &(_, v) in w {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_inc(v / count - mean / count, mean, c);
    }
    if mean.is_infinite() { mean } else { mean + c }
}

/// Population variance (Welford with Kahan sums).
fn variance_over_time(w: &[(i64, f64)]) -> f64 {
    let mut count = 0.0;
    let (mut mean, mut c_mean) = (0.0, 0.0);
    let (mut aux, mut c_aux) = (0.0, 0.0);
    for &(_, v) in w {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Go's `%f`.
fn go_fixed(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}")
    } else {
        go_float(v)
    }
}

/// Double exponential smoothing with smoothing factor `sf` and trend factor `tf`.
fn holt_winters(w: &[(i64, f64)], sf: f64, tf: f64) -> Result<Option<f64>, PromError> {
    if sf <= 0.0 || sf >= 1.0 {
        return Err(PromError::execution(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {}",
            go_fixed(sf)
        )));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(PromError::execution(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {}",
            go_fixed(tf)
        )));
    }
    if w.len() < 2 {
        return Ok(None);
    }
    let v = |i: usize| w.get(i).map(|p| p.1).unwrap_or(f64::NAN);
    let (mut s0, mut s1) = (0.0, v(0));
    let mut b = v(1) - v(0);
    for i in 1..w.len() {
        let x = sf * v(i);
        // The trend at step i-1 (the first trend is the initial difference).
        if i - 1 != 0 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Ok(Some(s1))
}
