//! What evaluation passes between nodes: the grid of evaluation times, per-step scalars,
//! series of points on the grid, and label helpers shared by the operators.

use crate::promql::PromError;
use skein_model::metric::Labels;
use std::collections::HashMap;

/// The metric name label.
pub(crate) const NAME: &str = "__name__";

/// Prometheus's staleness marker: a NaN with this bit pattern.
pub(crate) const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether a value is a staleness marker.
pub(crate) fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// The evaluation times of a node: `start, start + step, ..., <= end` (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grid {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Grid {
    /// One evaluation at `t`.
    pub(crate) fn instant(t: i64) -> Grid {
        Grid {
            start: t,
            end: t,
            step: 1,
        }
    }

    /// Number of steps (0 when `end < start`).
    pub(crate) fn len(&self) -> usize {
        if self.end < self.start || self.step <= 0 {
            return 0;
        }
        let n = (self.end as i128 - self.start as i128) / self.step as i128 + 1;
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// The time of step `k`.
    pub(crate) fn time(&self, k: usize) -> i64 {
        self.start
            .saturating_add((k as i64).saturating_mul(self.step))
    }

    /// The step of a time on the grid.
    pub(crate) fn index(&self, t: i64) -> usize {
        if self.step <= 0 || t < self.start {
            return 0;
        }
        ((t - self.start) / self.step) as usize
    }

    /// Iterates over the step times.
    pub(crate) fn times(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(|k| self.time(k))
    }
}

/// A scalar on every step of a grid.
#[derive(Debug, Clone)]
pub(crate) enum Scalar {
    /// The same value on every step (a literal).
    Const(f64),
    /// One value per step.
    Steps(Vec<f64>),
}

impl Scalar {
    /// The value at step `k`.
    pub(crate) fn get(&self, k: usize) -> f64 {
        match self {
            Scalar::Const(v) => *v,
            Scalar::Steps(v) => v.get(k).copied().unwrap_or(f64::NAN),
        }
    }

    /// Samples it holds (for the sample limit).
    pub(crate) fn samples(&self) -> usize {
        match self {
            Scalar::Const(_) => 0,
            Scalar::Steps(v) => v.len(),
        }
    }
}

/// One series: points at grid times (instant vectors) or raw samples (range vectors).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

/// The value of a node over a grid.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Scalar(Scalar),
    /// Series with points at grid times.
    Vector(Vec<Series>),
    /// Raw samples of a range vector (only at the top of an instant query).
    Matrix(Vec<Series>),
    Str(String),
}

impl Val {
    /// Samples it holds (for the sample limit).
    pub(crate) fn samples(&self) -> usize {
        match self {
            Val::Scalar(s) => s.samples(),
            Val::Vector(v) | Val::Matrix(v) => v.iter().map(|s| s.points.len()).sum(),
            Val::Str(_) => 0,
        }
    }
}

/// The error of two series with the same labels at one time.
pub(crate) fn same_labelset() -> PromError {
    PromError::execution("vector cannot contain metrics with the same labelset")
}

/// Labels without the metric name.
pub(crate) fn drop_name(l: &Labels) -> Labels {
    if l.get(NAME).is_none() {
        return l.clone();
    }
    Labels::from_pairs(l.iter().filter(|(k, _)| *k != NAME))
}

/// Labels without the given names (and without the metric name when `and_name`).
pub(crate) fn without(l: &Labels, names: &[String], and_name: bool) -> Labels {
    Labels::from_pairs(
        l.iter()
            .filter(|(k, _)| !((and_name && *k == NAME) || names.iter().any(|n| n == k))),
    )
}

/// The labels a binary operation matches on: `on(...)` keeps the named labels, `ignoring(...)`
/// drops them and the metric name.
pub(crate) fn match_labels(l: &Labels, on: bool, names: &[String]) -> Labels {
    if on {
        l.keep(names)
    } else {
        without(l, names, true)
    }
}

/// Labels as Prometheus 2.42 prints them in messages: `{a="b", c="d"}`.
pub(crate) fn go_labels(l: &Labels) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in l.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(k);
        s.push('=');
        s.push_str(&go_quote(v));
    }
    s.push('}');
    s
}

/// A string quoted like Go's `strconv.Quote` (close enough for printable text).
pub(crate) fn go_quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            c if c.is_control() => s.push_str(&format!("\\x{:02x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// A float as Go's `%v` prints it (`1e+06`, `0.5`, `NaN`, `+Inf`).
pub(crate) fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let e = format!("{v:e}");
    let Some((mant, exp)) = e.split_once('e') else {
        return e;
    };
    let exp = exp.parse::<i32>().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        format!("{v}")
    }
}

/// A float as Go's `strconv.FormatFloat(v, 'f', -1, 64)` prints it (`count_values`).
pub(crate) fn go_float_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// A valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub(crate) fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Output series keyed by labels, filled step by step. A second point for the same labels at
/// the same time is Prometheus's "same labelset" error.
#[derive(Debug, Default)]
pub(crate) struct OutSet {
    index: HashMap<Labels, usize>,
    pub series: Vec<Series>,
}

impl OutSet {
    /// The output series for labels, created if new.
    pub(crate) fn slot(&mut self, labels: Labels) -> usize {
        if let Some(&i) = self.index.get(&labels) {
            return i;
        }
        let i = self.series.len();
        self.index.insert(labels.clone(), i);
        self.series.push(Series {
            labels,
            points: Vec::new(),
        });
        i
    }

    /// Adds a point to a slot; false when the slot already has a point at `t`.
    pub(crate) fn push(&mut self, slot: usize, t: i64, v: f64) -> bool {
        match self.series.get_mut(slot) {
            Some(s) => {
                if s.points.last().is_some_and(|p| p.0 >= t) {
                    return false;
                }
                s.points.push((t, v));
                true
            }
            None => false,
        }
    }

    /// The series that got points.
    pub(crate) fn finish(self) -> Vec<Series> {
        self.series
            .into_iter()
            .filter(|s| !s.points.is_empty())
            .collect()
    }
}

/// Merges series that ended up with the same labels (a function dropped the name, or
/// `label_replace` wrote a label), as Prometheus's step-by-step evaluation does: they become
/// one series unless two of them have a point at the same time.
pub(crate) fn merge_same_labels(series: Vec<Series>) -> Result<Vec<Series>, PromError> {
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(series.len());
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    for s in series {
        if s.points.is_empty() {
            continue;
        }
        match index.get(&s.labels) {
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
            Some(&i) => {
                let Some(target) = out.get_mut(i) else {
                    continue;
                };
                let a = std::mem::take(&mut target.points);
                let mut merged = Vec::with_capacity(a.len() + s.points.len());
                let (mut x, mut y) = (a.into_iter().peekable(), s.points.into_iter().peekable());
                loop {
                    match (x.peek(), y.peek()) {
                        (Some(p), Some(q)) => {
                            if p.0 == q.0 {
                                return Err(same_labelset());
                            }
                            if p.0 < q.0 {
                                merged.extend(x.next());
                            } else {
                                merged.extend(y.next());
                            }
                        }
                        (Some(_), None) => merged.extend(x.next()),
                        (None, Some(_)) => merged.extend(y.next()),
                        (None, None) => break,
                    }
                }
                target.points = merged;
            }
        }
    }
    Ok(out)
}

/// Prometheus's check on a range-vector function's or a negation's result: two series with the
/// same labels are an error, whenever their points are.
pub(crate) fn check_unique_labels(series: &[Series]) -> Result<(), PromError> {
    if series.len() < 2 {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::with_capacity(series.len());
    for s in series {
        if !seen.insert(&s.labels) {
            return Err(same_labelset());
        }
    }
    Ok(())
}

/// Walks series on a grid step by step: for each step, which series have a point there.
pub(crate) struct StepCursor {
    pos: Vec<usize>,
}

impl StepCursor {
    /// A cursor over `n` series.
    pub(crate) fn new(n: usize) -> StepCursor {
        StepCursor { pos: vec![0; n] }
    }

    /// The value of series `i` at time `t`, moving past it.
    pub(crate) fn take(&mut self, i: usize, s: &Series, t: i64) -> Option<f64> {
        let p = self.pos.get_mut(i)?;
        while let Some(&(pt, v)) = s.points.get(*p) {
            if pt < t {
                *p += 1;
                continue;
            }
            if pt == t {
                *p += 1;
                return Some(v);
            }
            return None;
        }
        None
    }
}
