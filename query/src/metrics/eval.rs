//! The evaluation core: step windows over selected series, folded per group.
//!
//! A [`Grid`] is a row of points `t = first + k·step`; the point at `t` covers the window
//! `(t − step, t]`. A range query's grid also has a last point at its end when the end is not
//! a multiple of the step: it covers the rest, `(last multiple, end]`, so the newest samples
//! are shown. Each series is walked once across all windows (its samples come in time
//! order, decoded as they are read), and what it gives each window is added into the
//! accumulator cells of its group. Many samples are split across threads by series; each
//! thread has its own cells, merged at the end.
//!
//! Counter increases follow Prometheus: a drop means the counter restarted, so the new value
//! is added. A window's baseline is the last sample at or before its start when that sample is
//! no older than [`Grid::lookback`], else the window's first sample.
//!
//! NaN and infinite samples (Prometheus's staleness markers among them), which the store
//! keeps as sent, are skipped as if absent: every fold here, and so every answer of these
//! views, sees finite samples only (PromQL reads them as Prometheus does).

use crate::QueryError;
use skein_model::metric::Labels;
use skein_store::tsdb::SelectedSeries;
use std::collections::BTreeMap;

/// How far before a window a counter's baseline sample may be: the step, but at least this
/// (5 minutes, as in Prometheus).
pub const MIN_LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// Below this many samples (by the chunks' hint) a fold runs on one thread.
const PARALLEL_MIN_SAMPLES: usize = 250_000;

/// Accumulator cells all threads of one fold may hold together (about 12 bytes each).
const MAX_THREAD_CELLS: usize = 16_000_000;

/// Points `min(first + k·step, end)` for `k < points`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// Time of the first point (ms).
    pub first: i64,
    /// Distance between points (ms), at least 1.
    pub step: i64,
    /// Number of points.
    pub points: usize,
    /// No point is later than this (ms): a last point past it is put at it, and its window is
    /// cut there.
    pub end: i64,
}

impl Grid {
    /// Points at the multiples of `step` inside `[start, end]`, and one more at `end` when
    /// `end` is not a multiple (covering the rest of the range). `step` must be at least 1.
    pub fn aligned(start: i64, end: i64, step: i64) -> Grid {
        let step = step.max(1);
        let first =
            start.div_euclid(step) * step + if start.rem_euclid(step) == 0 { 0 } else { step };
        let last = end.div_euclid(step) * step;
        let multiples = if last < first {
            0
        } else {
            usize::try_from((last - first) / step + 1).unwrap_or(usize::MAX)
        };
        let rest = usize::from(multiples == 0 || last < end);
        Grid {
            first,
            step,
            points: multiples.saturating_add(rest),
            end,
        }
    }

    /// One point at `end` covering `(end − len, end]`.
    pub fn single(end: i64, len: i64) -> Grid {
        Grid {
            first: end,
            step: len.max(1),
            points: 1,
            end,
        }
    }

    /// `n` points `step` apart, the last at `last`.
    pub fn ending_at(last: i64, step: i64, n: usize) -> Grid {
        let step = step.max(1);
        Grid {
            first: last - step * (n as i64 - 1).max(0),
            step,
            points: n,
            end: last,
        }
    }

    /// Time of point `k`.
    pub fn ts(&self, k: usize) -> i64 {
        (self.first + k as i64 * self.step).min(self.end)
    }

    /// Time of the last point (the first when there are none).
    pub fn last(&self) -> i64 {
        self.ts(self.points.saturating_sub(1))
    }

    /// How far before a window a counter's baseline may be: max(step, 5 min).
    pub fn lookback(&self) -> i64 {
        self.step.max(MIN_LOOKBACK_MS)
    }

    /// Where a read must start so that every window has its counter baseline.
    pub fn select_start(&self) -> i64 {
        self.first - self.step - self.lookback()
    }

    /// Step in seconds.
    pub fn step_secs(&self) -> f64 {
        self.step as f64 / 1000.0
    }
}

/// How the samples of a group's series become one value per window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// Mean of every sample.
    Avg,
    /// Least sample.
    Min,
    /// Greatest sample.
    Max,
    /// Per series the last sample, summed.
    SumLast,
    /// Series with a sample.
    Count,
    /// Per series the counter increase, summed.
    Increase,
    /// [`Op::Increase`] per second of step.
    Rate,
    /// Quantile (0..1) of every sample.
    Quantile(f64),
}

/// Series with the group each belongs to.
#[derive(Debug, Clone, Default)]
pub struct Grouped<'a> {
    /// The series.
    pub series: Vec<&'a SelectedSeries>,
    /// Group index of each series.
    pub keys: Vec<usize>,
    /// Group labels, sorted.
    pub groups: Vec<Labels>,
}

/// Groups series by the `by` labels (a series without one of them groups under its absence).
pub fn group<'a>(
    series: impl IntoIterator<Item = &'a SelectedSeries>,
    by: &[String],
) -> Grouped<'a> {
    let series: Vec<&SelectedSeries> = series.into_iter().collect();
    let labels: Vec<Labels> = series.iter().map(|s| s.labels.keep(by)).collect();
    let mut index: BTreeMap<&Labels, usize> = labels.iter().map(|l| (l, 0)).collect();
    for (i, v) in index.values_mut().enumerate() {
        *v = i;
    }
    let keys = labels
        .iter()
        .map(|l| index.get(l).copied().unwrap_or(0))
        .collect();
    let groups = index.into_keys().cloned().collect();
    Grouped {
        series,
        keys,
        groups,
    }
}

/// One value (or none) per group and point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Group labels, sorted.
    pub groups: Vec<Labels>,
    /// Points per group.
    pub points: usize,
    /// `groups × points` values, group-major.
    pub values: Vec<Option<f64>>,
}

impl Table {
    /// The value of group `g` at point `k`.
    pub fn get(&self, g: usize, k: usize) -> Option<f64> {
        self.values.get(g * self.points + k).copied().flatten()
    }

    /// The index of a group.
    pub fn find(&self, labels: &Labels) -> Option<usize> {
        self.groups.binary_search(labels).ok()
    }

    /// The value of the group with these labels at point `k`.
    pub fn lookup(&self, labels: &Labels, k: usize) -> Option<f64> {
        self.find(labels).and_then(|g| self.get(g, k))
    }

    /// `self / other` per group of `self` and point; none where either is missing.
    pub fn divide(&self, other: &Table) -> Table {
        let mut values = Vec::with_capacity(self.values.len());
        for (g, l) in self.groups.iter().enumerate() {
            let og = other.find(l);
            for k in 0..self.points {
                let d = og.and_then(|og| other.get(og, k));
                values.push(self.get(g, k).zip(d).map(|(a, b)| a / b));
            }
        }
        Table {
            groups: self.groups.clone(),
            points: self.points,
            values,
        }
    }

    /// The answer's series: finite values only, groups without any left out.
    pub fn into_series(self, grid: &Grid) -> Vec<skein_model::metrics_api::ResultSeries> {
        let mut out = Vec::new();
        for (g, labels) in self.groups.iter().enumerate() {
            let points: Vec<(i64, f64)> = (0..self.points)
                .filter_map(|k| {
                    self.get(g, k)
                        .filter(|v| v.is_finite())
                        .map(|v| (grid.ts(k), v))
                })
                .collect();
            if !points.is_empty() {
                out.push(skein_model::metrics_api::ResultSeries {
                    labels: labels.clone(),
                    points,
                });
            }
        }
        out
    }
}

/// Applies `op` to grouped series on a grid.
pub fn aggregate(op: Op, g: &Grouped<'_>, grid: &Grid) -> Result<Table, QueryError> {
    let fold = match op {
        Op::Avg => Fold::Avg,
        Op::Min => Fold::Min,
        Op::Max => Fold::Max,
        Op::SumLast => Fold::Last,
        Op::Count => Fold::Present,
        Op::Increase | Op::Rate => Fold::Increase,
        Op::Quantile(_) => Fold::Raw,
    };
    let mut cells = fold_all(fold, &g.series, &g.keys, g.groups.len(), grid)?;
    let step_secs = grid.step_secs();
    let mut values = Vec::with_capacity(cells.n.len());
    for i in 0..cells.n.len() {
        let n = cells.n[i];
        let a = cells.a.get(i).copied().unwrap_or(0.0);
        values.push(match op {
            _ if n == 0 => None,
            Op::Avg => Some(a / f64::from(n)),
            Op::Min | Op::Max | Op::SumLast | Op::Increase => Some(a),
            Op::Count => Some(f64::from(n)),
            Op::Rate => Some(a / step_secs),
            Op::Quantile(q) => cells.vals.get_mut(i).and_then(|v| quantile(q, v)),
        });
    }
    Ok(Table {
        groups: g.groups.clone(),
        points: grid.points,
        values,
    })
}

/// Quantiles of histograms: per window and series of `_bucket`, the increase of each bucket,
/// summed per group and `le`, then [`histogram_quantile`]. One table per entry of `qs`.
/// Series without a readable `le` label are skipped. `max_cells` bounds groups × buckets ×
/// points.
pub fn bucket_quantiles(
    buckets: &Grouped<'_>,
    grid: &Grid,
    qs: &[f64],
    max_cells: usize,
) -> Result<Vec<Table>, QueryError> {
    let le: Vec<Option<f64>> = buckets
        .series
        .iter()
        .map(|s| s.labels.get("le").and_then(parse_le))
        .collect();
    let mut les: Vec<f64> = le.iter().flatten().copied().collect();
    les.sort_by(f64::total_cmp);
    les.dedup();
    let nles = les.len().max(1);
    let cells_needed = buckets
        .groups
        .len()
        .saturating_mul(nles)
        .saturating_mul(grid.points);
    if cells_needed > max_cells {
        return Err(QueryError::BadRequest(format!(
            "this percentile needs {} histogram cells ({} groups × {} buckets × {} points); the most is {}: use a larger step, a shorter range or fewer by labels",
            thousands(cells_needed),
            buckets.groups.len(),
            les.len(),
            grid.points,
            thousands(max_cells)
        )));
    }
    let mut series = Vec::new();
    let mut keys = Vec::new();
    for ((s, &g), le) in buckets.series.iter().zip(&buckets.keys).zip(&le) {
        if let Some(le) = le
            && let Ok(li) = les.binary_search_by(|x| x.total_cmp(le))
        {
            series.push(*s);
            keys.push(g * nles + li);
        }
    }
    let cells = fold_all(
        Fold::Increase,
        &series,
        &keys,
        buckets.groups.len() * nles,
        grid,
    )?;
    let mut tables: Vec<Table> = qs
        .iter()
        .map(|_| Table {
            groups: buckets.groups.clone(),
            points: grid.points,
            values: Vec::with_capacity(buckets.groups.len() * grid.points),
        })
        .collect();
    let mut hist: Vec<(f64, f64)> = Vec::with_capacity(les.len());
    for g in 0..buckets.groups.len() {
        for k in 0..grid.points {
            hist.clear();
            for (li, le) in les.iter().enumerate() {
                let i = (g * nles + li) * grid.points + k;
                if cells.n[i] > 0 {
                    hist.push((*le, cells.a[i]));
                }
            }
            for (t, q) in tables.iter_mut().zip(qs) {
                t.values.push(histogram_quantile(*q, &hist));
            }
        }
    }
    Ok(tables)
}

/// Reads an `le` label (`+Inf` included).
pub fn parse_le(s: &str) -> Option<f64> {
    match s.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        t => t.parse::<f64>().ok().filter(|v| !v.is_nan()),
    }
}

/// Prometheus' `histogram_quantile`: `buckets` are `(upper bound, cumulative count)` sorted by
/// bound, the last `+Inf`. Linear inside the bucket the rank falls in, with 0 as the lower
/// bound of the first; a rank in `+Inf` answers the largest finite bound. None without a
/// `+Inf` bucket, without a finite one, or without observations. Counts that go down are
/// raised to the one before (as Prometheus does).
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let n = buckets.len();
    if n < 2 || buckets[n - 1].0 != f64::INFINITY || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let mut counts: Vec<f64> = Vec::with_capacity(n);
    for &(_, c) in buckets {
        let prev = counts.last().copied().unwrap_or(0.0);
        counts.push(if c < prev { prev } else { c });
    }
    let total = counts[n - 1];
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let b = counts.iter().position(|&c| c >= rank).unwrap_or(n - 1);
    if b == n - 1 {
        return Some(buckets[n - 2].0);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return Some(buckets[0].0);
    }
    let (lower, below) = if b == 0 {
        (0.0, 0.0)
    } else {
        (buckets[b - 1].0, counts[b - 1])
    };
    let upper = buckets[b].0;
    let in_bucket = counts[b] - below;
    if in_bucket <= 0.0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * ((rank - below) / in_bucket))
}

/// The `q` (0..1) quantile of values, linear between the two nearest ranks (as Prometheus'
/// `quantile_over_time`). Reorders `v`.
pub fn quantile(q: f64, v: &mut [f64]) -> Option<f64> {
    if v.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = q * (v.len() - 1) as f64;
    let lo = (rank.floor() as usize).min(v.len() - 1);
    let w = rank - lo as f64;
    // Selection, not a sort: O(n) per window. The next value up is the smallest of the
    // upper part.
    let (_, &mut at, upper) = v.select_nth_unstable_by(lo, f64::total_cmp);
    let next = upper.iter().copied().min_by(f64::total_cmp).unwrap_or(at);
    Some(at * (1.0 - w) + next * w)
}

/// Groups digits by thousands: 11000 → "11,000".
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What one series gives one window.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fold {
    Avg,
    Min,
    Max,
    Last,
    Present,
    Increase,
    Raw,
}

/// One series' samples inside one window.
#[derive(Debug, Clone, Copy, Default)]
struct Win {
    sum: f64,
    count: u32,
    min: f64,
    max: f64,
    last: f64,
    inc: f64,
}

/// Accumulators, `keys × points`, key-major. `a` holds the sum, min or max; `n` counts what
/// was added; `vals` keeps raw samples for quantiles.
struct Cells {
    a: Vec<f64>,
    n: Vec<u32>,
    vals: Vec<Vec<f64>>,
}

impl Cells {
    fn new(fold: Fold, len: usize) -> Cells {
        let init = match fold {
            Fold::Min => f64::INFINITY,
            Fold::Max => f64::NEG_INFINITY,
            _ => 0.0,
        };
        Cells {
            a: if fold == Fold::Raw {
                Vec::new()
            } else {
                vec![init; len]
            },
            n: vec![0; len],
            vals: if fold == Fold::Raw {
                vec![Vec::new(); len]
            } else {
                Vec::new()
            },
        }
    }

    #[inline]
    fn add(&mut self, fold: Fold, i: usize, w: &Win) {
        let a = &mut self.a[i];
        match fold {
            Fold::Avg => *a += w.sum,
            Fold::Min => *a = a.min(w.min),
            Fold::Max => *a = a.max(w.max),
            Fold::Last => *a += w.last,
            Fold::Increase => *a += w.inc,
            Fold::Present | Fold::Raw => {}
        }
        let add = if fold == Fold::Avg { w.count } else { 1 };
        self.n[i] = self.n[i].saturating_add(add);
    }

    fn merge(&mut self, fold: Fold, other: Cells) {
        for (a, b) in self.a.iter_mut().zip(other.a) {
            *a = match fold {
                Fold::Min => a.min(b),
                Fold::Max => a.max(b),
                _ => *a + b,
            };
        }
        for (a, b) in self.n.iter_mut().zip(other.n) {
            *a = a.saturating_add(b);
        }
        for (a, b) in self.vals.iter_mut().zip(other.vals) {
            a.extend(b);
        }
    }
}

/// Folds every series into `nkeys × points` cells, on several threads when there is much to
/// decode.
fn fold_all(
    fold: Fold,
    series: &[&SelectedSeries],
    keys: &[usize],
    nkeys: usize,
    grid: &Grid,
) -> Result<Cells, QueryError> {
    let len = nkeys.saturating_mul(grid.points);
    let hints: Vec<usize> = series.iter().map(|s| s.sample_count_hint()).collect();
    let total: usize = hints.iter().sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = if total < PARALLEL_MIN_SAMPLES {
        1
    } else {
        cores
            .min(total / (PARALLEL_MIN_SAMPLES / 2))
            .min(MAX_THREAD_CELLS / len.max(1))
            .min(series.len())
            .max(1)
    };
    if threads == 1 {
        return Ok(fold_part(fold, series, keys, len, grid));
    }
    // Contiguous parts of about equal samples.
    let target = total.div_ceil(threads);
    let mut bounds = vec![0];
    let mut acc = 0;
    for (i, h) in hints.iter().enumerate() {
        acc += h;
        if acc >= target * bounds.len() && bounds.len() < threads {
            bounds.push(i + 1);
        }
    }
    if bounds.last() != Some(&series.len()) {
        bounds.push(series.len());
    }
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        let mut inline = Vec::new();
        for w in bounds.windows(2) {
            let (s, k) = (&series[w[0]..w[1]], &keys[w[0]..w[1]]);
            match std::thread::Builder::new()
                .name("skein-metrics-eval".into())
                .spawn_scoped(scope, move || fold_part(fold, s, k, len, grid))
            {
                Ok(h) => handles.push(h),
                // No thread to be had: do that part here.
                Err(_) => inline.push(fold_part(fold, s, k, len, grid)),
            }
        }
        let mut out: Option<Cells> = None;
        let parts = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| QueryError::Internal("a metrics query thread panicked".into()))
            })
            .chain(inline.into_iter().map(Ok));
        for part in parts {
            let part = part?;
            match out.as_mut() {
                None => out = Some(part),
                Some(o) => o.merge(fold, part),
            }
        }
        Ok(out.unwrap_or_else(|| Cells::new(fold, len)))
    })
}

fn fold_part(
    fold: Fold,
    series: &[&SelectedSeries],
    keys: &[usize],
    len: usize,
    grid: &Grid,
) -> Cells {
    let mut cells = Cells::new(fold, len);
    for (s, &key) in series.iter().zip(keys) {
        let base = key * grid.points;
        if fold == Fold::Raw {
            walk_samples(s, grid, |k, v| {
                if let Some(c) = cells.vals.get_mut(base + k) {
                    c.push(v);
                    cells.n[base + k] = cells.n[base + k].saturating_add(1);
                }
            });
        } else {
            let mut add = |k: usize, w: &Win| {
                if base + k < len {
                    cells.add(fold, base + k, w);
                }
            };
            // One copy of the walk per kind of fold, so each computes only what it needs.
            match fold {
                Fold::Avg => walk::<{ NEED_SUM }>(s, grid, &mut add),
                Fold::Min | Fold::Max => walk::<{ NEED_MIN_MAX }>(s, grid, &mut add),
                Fold::Increase => walk::<{ NEED_INC }>(s, grid, &mut add),
                Fold::Last | Fold::Present | Fold::Raw => walk::<0>(s, grid, &mut add),
            }
        }
    }
    cells
}

/// Counter increase from `a` to `b`: a drop means a restart, so all of `b` is new.
#[inline]
fn delta(a: f64, b: f64) -> f64 {
    if b >= a { b - a } else { b }
}

const NEED_SUM: u8 = 1;
const NEED_MIN_MAX: u8 = 2;
const NEED_INC: u8 = 4;

/// Walks one series across the grid, calling `emit(k, window)` once for each window with a
/// finite sample (NaN and infinite ones are skipped as if absent). `NEED` says which parts of
/// [`Win`] to keep beyond the count and the last value; with [`NEED_INC`], the last finite
/// sample before the first window seeds the counter increase.
fn walk<const NEED: u8>(s: &SelectedSeries, grid: &Grid, mut emit: impl FnMut(usize, &Win)) {
    if grid.points == 0 {
        return;
    }
    let (first, step) = (grid.first, grid.step);
    let lo = first - step;
    let lookback = grid.lookback();
    let mut prev: Option<(i64, f64)> = if NEED & NEED_INC != 0 {
        s.last_finite_at_or_before(lo)
    } else {
        None
    };
    let mut cur: Option<(usize, i64)> = None;
    let mut w = Win::default();
    s.for_each(lo + 1, grid.last(), |ts, v| {
        if !v.is_finite() {
            return;
        }
        match cur {
            Some((_, end)) if ts <= end => {
                w.count += 1;
                w.last = v;
                if NEED & NEED_SUM != 0 {
                    w.sum += v;
                }
                if NEED & NEED_MIN_MAX != 0 {
                    w.min = w.min.min(v);
                    w.max = w.max.max(v);
                }
                if NEED & NEED_INC != 0
                    && let Some((_, pv)) = prev
                {
                    w.inc += delta(pv, v);
                }
            }
            _ => {
                if let Some((k, _)) = cur {
                    emit(k, &w);
                }
                // ts > lo, so the division is of a non-negative number.
                let k = ((ts - first + step - 1) / step) as usize;
                let end = first + k as i64 * step;
                let inc = match prev {
                    Some((pt, pv)) if pt >= end - step - lookback => delta(pv, v),
                    _ => 0.0,
                };
                w = Win {
                    sum: v,
                    count: 1,
                    min: v,
                    max: v,
                    last: v,
                    inc,
                };
                cur = Some((k, end));
            }
        }
        if NEED & NEED_INC != 0 {
            prev = Some((ts, v));
        }
    });
    if let Some((k, _)) = cur {
        emit(k, &w);
    }
}

/// Calls `f(k, value)` for every finite sample inside the grid's windows.
fn walk_samples(s: &SelectedSeries, grid: &Grid, mut f: impl FnMut(usize, f64)) {
    if grid.points == 0 {
        return;
    }
    let (first, step) = (grid.first, grid.step);
    let mut cur: Option<(usize, i64)> = None;
    s.for_each(first - step + 1, grid.last(), |ts, v| {
        if !v.is_finite() {
            return;
        }
        let k = match cur {
            Some((k, end)) if ts <= end => k,
            _ => {
                let k = ((ts - first + step - 1) / step) as usize;
                cur = Some((k, first + k as i64 * step));
                k
            }
        };
        f(k, v);
    });
}
