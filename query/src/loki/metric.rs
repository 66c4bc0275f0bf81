//! Metric queries over log lines: range aggregations counted per step, then vector
//! aggregations and binary operators with PromQL's rules.
//!
//! A step at time `t` counts the lines with `t - range - offset < time ≤ t - offset`, as
//! Loki and Prometheus do. Series are labelled by the stream labels plus labels extracted by
//! `json`/`logfmt` (see [`super::pipeline`]). Binary operators between two vectors match
//! series with identical labels (`on`/`ignoring` are refused by the parser).

use super::logql::ast::*;
use super::pipeline::Labels;
use super::scan::{self, ScanStats};
use crate::QueryError;
use crate::engine::Engine;
use skein_model::keys::KeyExtractor;
use skein_store::search::TimeRange;
use std::collections::BTreeMap;

/// Most steps one query evaluates (as Prometheus: 11,000).
pub const MAX_STEPS: usize = 11_000;
/// Most series one query keeps.
pub const MAX_SERIES: usize = 50_000;

/// Evaluation times, ns.
#[derive(Debug, Clone)]
pub struct Steps {
    /// First step.
    pub start: u64,
    /// Time between steps (≥ 1 ns).
    pub step: u64,
    /// Number of steps (≥ 1).
    pub n: usize,
}

impl Steps {
    /// Steps from `start` to `end` (both included when on the grid).
    pub fn new(start: u64, end: u64, step: u64) -> Result<Steps, String> {
        if end < start {
            return Err("end is before start".into());
        }
        let step = step.max(1);
        let n = ((end - start) / step) as usize + 1;
        if n > MAX_STEPS {
            return Err(format!(
                "the range holds {n} steps, more than {MAX_STEPS}; use a larger step"
            ));
        }
        Ok(Steps { start, step, n })
    }

    /// The time of step `i`.
    pub fn at(&self, i: usize) -> u64 {
        self.start + self.step * i as u64
    }
}

/// A value per step (None: no sample at that step).
pub type Points = Vec<Option<f64>>;

/// What an expression evaluates to.
#[derive(Debug, Clone)]
pub enum Value {
    /// One number per step.
    Scalar(Vec<f64>),
    /// Series by labels.
    Vector(BTreeMap<Labels, Points>),
}

/// Evaluates metric queries.
pub struct Eval<'a> {
    /// The engine to read lines through.
    pub engine: &'a Engine,
    /// Which labels are correlation keys.
    pub keys: &'a KeyExtractor,
    /// Most lines read in all.
    pub budget: usize,
    /// What was read so far.
    pub stats: ScanStats,
}

impl Eval<'_> {
    /// Evaluates `e` at every step.
    pub fn eval(&mut self, e: &Expr, steps: &Steps) -> Result<Value, QueryError> {
        match e {
            Expr::Number(n) => Ok(Value::Scalar(vec![*n; steps.n])),
            Expr::Vector(n) => {
                let mut m = BTreeMap::new();
                m.insert(Labels::new(), vec![Some(*n); steps.n]);
                Ok(Value::Vector(m))
            }
            Expr::Log(_) => Err(QueryError::BadRequest(
                "a log query cannot be used where a metric is expected; wrap it, e.g. count_over_time({…}[5m])"
                    .into(),
            )),
            Expr::Range(r) => self.range(r, steps).map(Value::Vector),
            Expr::Agg(a) => {
                let inner = match self.eval(&a.inner, steps)? {
                    Value::Vector(v) => v,
                    Value::Scalar(_) => {
                        return Err(QueryError::BadRequest(
                            "an aggregation needs a vector inside, not a number".into(),
                        ));
                    }
                };
                Ok(Value::Vector(aggregate(a, inner, steps.n)))
            }
            Expr::Binary(b) => {
                let l = self.eval(&b.lhs, steps)?;
                let r = self.eval(&b.rhs, steps)?;
                binary(b, l, r)
            }
        }
    }

    fn range(
        &mut self,
        r: &RangeAgg,
        steps: &Steps,
    ) -> Result<BTreeMap<Labels, Points>, QueryError> {
        let last = steps.at(steps.n - 1);
        let from = steps
            .start
            .saturating_sub(r.offset_ns)
            .saturating_sub(r.range_ns)
            .saturating_add(1);
        let to = last.saturating_sub(r.offset_ns);
        // Per series: a difference array of counts and of bytes over the steps.
        let mut acc: BTreeMap<Labels, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
        let mut too_many = false;
        let budget = self.budget.saturating_sub(self.stats.read);
        let st = scan::scan(
            self.engine,
            self.keys,
            &r.log,
            TimeRange {
                start: from,
                end: to,
            },
            budget,
            |e| {
                // Steps whose window holds this line: t - offset - range < time ≤ t - offset.
                let lo = e.time.saturating_add(r.offset_ns);
                let hi = lo.saturating_add(r.range_ns); // exclusive
                let first = if lo <= steps.start {
                    0
                } else {
                    (lo - steps.start).div_ceil(steps.step) as usize
                };
                let end = if hi <= steps.start {
                    0
                } else {
                    ((hi - steps.start).div_ceil(steps.step) as usize).min(steps.n)
                };
                if first >= end {
                    return true;
                }
                if !acc.contains_key(&e.labels) && acc.len() >= MAX_SERIES {
                    too_many = true;
                    return false;
                }
                let (c, b) = acc
                    .entry(e.labels)
                    .or_insert_with(|| (vec![0; steps.n + 1], vec![0; steps.n + 1]));
                let len = e.line.len() as i64;
                c[first] += 1;
                c[end] -= 1;
                b[first] += len;
                b[end] -= len;
                true
            },
        )?;
        self.stats.read += st.read;
        self.stats.bytes += st.bytes;
        self.stats.matched += st.matched;
        if too_many {
            return Err(QueryError::BadRequest(format!(
                "the query makes more than {MAX_SERIES} series; aggregate it (sum by (…)) or select fewer streams"
            )));
        }
        let secs = r.range_ns as f64 / 1e9;
        let mut out = BTreeMap::new();
        if r.func == RangeFn::AbsentOverTime {
            let mut present = vec![false; steps.n];
            for (c, _) in acc.values() {
                let mut run = 0i64;
                for (i, p) in present.iter_mut().enumerate() {
                    run += c[i];
                    *p |= run > 0;
                }
            }
            let labels: Labels = r
                .log
                .matchers
                .iter()
                .filter(|m| m.op == MatchOp::Eq)
                .map(|m| (m.name.clone(), m.value.clone()))
                .collect();
            let pts: Points = present.iter().map(|p| (!p).then_some(1.0)).collect();
            if pts.iter().any(Option::is_some) {
                out.insert(labels, pts);
            }
            return Ok(out);
        }
        for (labels, (c, b)) in acc {
            let mut pts = Vec::with_capacity(steps.n);
            let (mut nc, mut nb) = (0i64, 0i64);
            for i in 0..steps.n {
                nc += c[i];
                nb += b[i];
                pts.push((nc > 0).then(|| match r.func {
                    RangeFn::CountOverTime => nc as f64,
                    RangeFn::Rate => nc as f64 / secs,
                    RangeFn::BytesOverTime => nb as f64,
                    RangeFn::BytesRate => nb as f64 / secs,
                    RangeFn::AbsentOverTime => 1.0,
                }));
            }
            out.insert(labels, pts);
        }
        Ok(out)
    }
}

fn group_key(l: &Labels, g: &Option<Grouping>) -> Labels {
    match g {
        None => Labels::new(),
        Some(g) if g.without => l
            .iter()
            .filter(|(k, _)| !g.labels.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(g) => l
            .iter()
            .filter(|(k, _)| g.labels.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn aggregate(a: &VectorAgg, inner: BTreeMap<Labels, Points>, n: usize) -> BTreeMap<Labels, Points> {
    if matches!(a.op, AggOp::Topk | AggOp::Bottomk) {
        let k = a.param.unwrap_or(1.0) as usize;
        let mut groups: BTreeMap<Labels, Vec<&Labels>> = BTreeMap::new();
        for l in inner.keys() {
            groups.entry(group_key(l, &a.grouping)).or_default().push(l);
        }
        let mut out: BTreeMap<Labels, Points> = BTreeMap::new();
        for members in groups.values() {
            for i in 0..n {
                let mut vals: Vec<(&Labels, f64)> = members
                    .iter()
                    .filter_map(|l| inner.get(*l).and_then(|p| p[i]).map(|v| (*l, v)))
                    .collect();
                vals.sort_by(|x, y| {
                    let o = x.1.partial_cmp(&y.1).unwrap_or(std::cmp::Ordering::Equal);
                    if a.op == AggOp::Topk { o.reverse() } else { o }
                });
                for (l, v) in vals.into_iter().take(k) {
                    out.entry(l.clone()).or_insert_with(|| vec![None; n])[i] = Some(v);
                }
            }
        }
        return out;
    }
    let mut groups: BTreeMap<Labels, Vec<Vec<f64>>> = BTreeMap::new();
    for (l, pts) in &inner {
        let g = groups
            .entry(group_key(l, &a.grouping))
            .or_insert_with(|| vec![Vec::new(); n]);
        for (i, p) in pts.iter().enumerate() {
            if let Some(v) = p {
                g[i].push(*v);
            }
        }
    }
    groups
        .into_iter()
        .map(|(l, per_step)| {
            let pts = per_step
                .iter()
                .map(|vals| {
                    if vals.is_empty() {
                        return None;
                    }
                    let count = vals.len() as f64;
                    let sum: f64 = vals.iter().sum();
                    let mean = sum / count;
                    let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / count;
                    Some(match a.op {
                        AggOp::Sum => sum,
                        AggOp::Avg => mean,
                        AggOp::Min => vals.iter().copied().fold(f64::INFINITY, f64::min),
                        AggOp::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        AggOp::Count => count,
                        AggOp::Stddev => var.sqrt(),
                        _ => var,
                    })
                })
                .collect();
            (l, pts)
        })
        .collect()
}

fn apply(op: BinOp, a: f64, b: f64) -> Option<f64> {
    Some(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Mod => a % b,
        BinOp::Pow => a.powf(b),
        BinOp::Eq => f64::from(a == b),
        BinOp::Ne => f64::from(a != b),
        BinOp::Gt => f64::from(a > b),
        BinOp::Ge => f64::from(a >= b),
        BinOp::Lt => f64::from(a < b),
        BinOp::Le => f64::from(a <= b),
        BinOp::And | BinOp::Or | BinOp::Unless => return None,
    })
}

/// `a op b` for one point: the value kept, None when a comparison filters it out.
fn point(op: BinOp, bool_mod: bool, a: f64, b: f64, keep_left: bool) -> Option<f64> {
    let r = apply(op, a, b)?;
    if op.is_comparison() && !bool_mod {
        return (r == 1.0).then_some(if keep_left { a } else { b });
    }
    Some(r)
}

fn binary(b: &Binary, l: Value, r: Value) -> Result<Value, QueryError> {
    let op = b.op;
    match (l, r) {
        (Value::Scalar(x), Value::Scalar(y)) => {
            if op.is_set() {
                return Err(QueryError::BadRequest(format!(
                    "{op:?} needs vectors on both sides"
                )));
            }
            if op.is_comparison() && !b.bool_mod {
                return Err(QueryError::BadRequest(
                    "comparisons between two numbers need the bool modifier".into(),
                ));
            }
            Ok(Value::Scalar(
                x.iter()
                    .zip(&y)
                    .map(|(a, c)| apply(op, *a, *c).unwrap_or(f64::NAN))
                    .collect(),
            ))
        }
        (Value::Vector(v), Value::Scalar(s)) | (Value::Scalar(s), Value::Vector(v))
            if op.is_set() =>
        {
            let _ = (v, s);
            Err(QueryError::BadRequest(
                "and, or and unless need vectors on both sides".into(),
            ))
        }
        (Value::Vector(v), Value::Scalar(s)) => Ok(Value::Vector(map_vector(v, |i, a| {
            point(op, b.bool_mod, a, s[i], true)
        }))),
        (Value::Scalar(s), Value::Vector(v)) => Ok(Value::Vector(map_vector(v, |i, a| {
            point(op, b.bool_mod, s[i], a, false)
        }))),
        (Value::Vector(x), Value::Vector(y)) => {
            Ok(Value::Vector(vector_vector(op, b.bool_mod, x, y)))
        }
    }
}

fn map_vector(
    v: BTreeMap<Labels, Points>,
    f: impl Fn(usize, f64) -> Option<f64>,
) -> BTreeMap<Labels, Points> {
    v.into_iter()
        .map(|(l, pts)| {
            let pts: Points = pts
                .into_iter()
                .enumerate()
                .map(|(i, p)| p.and_then(|a| f(i, a)))
                .collect();
            (l, pts)
        })
        .filter(|(_, pts)| pts.iter().any(Option::is_some))
        .collect()
}

fn vector_vector(
    op: BinOp,
    bool_mod: bool,
    x: BTreeMap<Labels, Points>,
    y: BTreeMap<Labels, Points>,
) -> BTreeMap<Labels, Points> {
    match op {
        BinOp::And => x
            .into_iter()
            .filter_map(|(l, pts)| {
                let other = y.get(&l)?;
                let pts: Points = pts.iter().zip(other).map(|(a, b)| b.and(*a)).collect();
                Some((l, pts))
            })
            .filter(|(_, p)| p.iter().any(Option::is_some))
            .collect(),
        BinOp::Unless => x
            .into_iter()
            .map(|(l, pts)| {
                let pts: Points = match y.get(&l) {
                    Some(other) => pts
                        .iter()
                        .zip(other)
                        .map(|(a, b)| if b.is_some() { None } else { *a })
                        .collect(),
                    None => pts,
                };
                (l, pts)
            })
            .filter(|(_, p)| p.iter().any(Option::is_some))
            .collect(),
        BinOp::Or => {
            let mut out = x;
            for (l, pts) in y {
                let e = out.entry(l).or_insert_with(|| vec![None; pts.len()]);
                for (i, p) in pts.into_iter().enumerate() {
                    if e[i].is_none() {
                        e[i] = p;
                    }
                }
            }
            out
        }
        _ => x
            .into_iter()
            .filter_map(|(l, pts)| {
                let other = y.get(&l)?;
                let pts: Points = pts
                    .iter()
                    .zip(other)
                    .map(|(a, b)| match (a, b) {
                        (Some(a), Some(b)) => point(op, bool_mod, *a, *b, true),
                        _ => None,
                    })
                    .collect();
                Some((l, pts))
            })
            .filter(|(_, p)| p.iter().any(Option::is_some))
            .collect(),
    }
}
