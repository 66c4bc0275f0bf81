//! Binary operators: arithmetic (`+ - * / % ^ atan2`), comparisons (filtering, or 0/1 with
//! `bool`) and the set operators (`and`, `or`, `unless`), between scalars and vectors, with
//! vector matching (`on`, `ignoring`, `group_left`, `group_right`). Matching signatures are
//! computed once per series; each step then pairs the series present at it, with Prometheus's
//! checks and error messages for ambiguous matches.

use super::eval::{self, Ctx};
use super::plan::{BinOp, Card, Matching, Node};
use super::series::{
    Grid, NAME, OutSet, Scalar, Series, StepCursor, Val, drop_name, go_labels, match_labels,
    merge_same_labels, same_labelset,
};
use crate::promql::PromError;
use skein_model::metric::Labels;
use std::collections::HashMap;

/// Evaluates a binary operation on a grid.
pub(crate) fn eval(
    ctx: &mut Ctx<'_>,
    op: BinOp,
    lhs: &Node,
    rhs: &Node,
    return_bool: bool,
    matching: &Matching,
    grid: Grid,
) -> Result<Val, PromError> {
    let l = eval::eval(ctx, lhs, grid)?;
    let r = eval::eval(ctx, rhs, grid)?;
    let held = l.samples() + r.samples();
    let out = match (l, r) {
        (Val::Scalar(a), Val::Scalar(b)) => Val::Scalar(scalar_scalar(ctx, op, &a, &b, grid)?),
        (Val::Vector(v), Val::Scalar(s)) => {
            Val::Vector(vector_scalar(ctx, op, v, &s, false, return_bool, grid)?)
        }
        (Val::Scalar(s), Val::Vector(v)) => {
            Val::Vector(vector_scalar(ctx, op, v, &s, true, return_bool, grid)?)
        }
        (Val::Vector(a), Val::Vector(b)) => {
            if op.is_set() {
                Val::Vector(set_op(ctx, op, &a, &b, matching, grid)?)
            } else {
                Val::Vector(vector_vector(ctx, op, &a, &b, return_bool, matching, grid)?)
            }
        }
        _ => return Err(PromError::internal("binary operation on unexpected types")),
    };
    ctx.release(held);
    Ok(out)
}

/// An operation between two numbers; comparisons give 1 or 0.
pub(crate) fn scalar_op(op: BinOp, a: f64, b: f64) -> f64 {
    let (v, keep) = elem_op(op, a, b);
    if op.is_comparison() {
        if keep { 1.0 } else { 0.0 }
    } else {
        v
    }
}

/// An operation between two vector elements: the value and, for comparisons, whether the
/// element is kept (the value is then the left side).
pub(crate) fn elem_op(op: BinOp, a: f64, b: f64) -> (f64, bool) {
    match op {
        BinOp::Add => (a + b, true),
        BinOp::Sub => (a - b, true),
        BinOp::Mul => (a * b, true),
        BinOp::Div => (a / b, true),
        BinOp::Mod => (a % b, true),
        BinOp::Pow => (a.powf(b), true),
        BinOp::Atan2 => (a.atan2(b), true),
        BinOp::Eq => (a, a == b),
        BinOp::Ne => (a, a != b),
        BinOp::Gt => (a, a > b),
        BinOp::Lt => (a, a < b),
        BinOp::Ge => (a, a >= b),
        BinOp::Le => (a, a <= b),
        BinOp::And | BinOp::Or | BinOp::Unless => (a, false),
    }
}

fn scalar_scalar(
    ctx: &mut Ctx<'_>,
    op: BinOp,
    a: &Scalar,
    b: &Scalar,
    grid: Grid,
) -> Result<Scalar, PromError> {
    if let (Scalar::Const(x), Scalar::Const(y)) = (a, b) {
        return Ok(Scalar::Const(scalar_op(op, *x, *y)));
    }
    let n = grid.len();
    ctx.add_samples(n)?;
    Ok(Scalar::Steps(
        (0..n).map(|k| scalar_op(op, a.get(k), b.get(k))).collect(),
    ))
}

fn vector_scalar(
    ctx: &mut Ctx<'_>,
    op: BinOp,
    input: Vec<Series>,
    s: &Scalar,
    swap: bool,
    return_bool: bool,
    grid: Grid,
) -> Result<Vec<Series>, PromError> {
    let drop = op.drops_name() || return_bool;
    let mut out = Vec::with_capacity(input.len());
    for series in input {
        ctx.tick()?;
        let mut points = Vec::with_capacity(series.points.len());
        for (t, v) in series.points {
            let sv = s.get(grid.index(t));
            let (lv, rv) = if swap { (sv, v) } else { (v, sv) };
            let (mut value, mut keep) = elem_op(op, lv, rv);
            // A comparison keeps the vector's value, on whichever side it is.
            if op.is_comparison() && swap {
                value = rv;
            }
            if return_bool {
                value = if keep { 1.0 } else { 0.0 };
                keep = true;
            }
            if keep {
                points.push((t, value));
            }
        }
        if !points.is_empty() {
            let labels = if drop {
                drop_name(&series.labels)
            } else {
                series.labels
            };
            out.push(Series { labels, points });
        }
    }
    ctx.add_samples(out.iter().map(|s| s.points.len()).sum())?;
    merge_same_labels(out)
}

/// Interns matching signatures: equal signatures get equal ids.
fn signatures(
    sides: [&[Series]; 2],
    on: bool,
    names: &[String],
) -> (Vec<usize>, Vec<usize>, usize) {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut ids = [Vec::new(), Vec::new()];
    for (side, out) in sides.iter().zip(ids.iter_mut()) {
        for s in *side {
            let key = match_labels(&s.labels, on, names);
            let next = index.len();
            out.push(*index.entry(key).or_insert(next));
        }
    }
    let [a, b] = ids;
    let n = index.len();
    (a, b, n)
}

/// The series present at time `t`: (series index, value).
fn present(cursor: &mut StepCursor, series: &[Series], t: i64, out: &mut Vec<(usize, f64)>) {
    out.clear();
    for (i, s) in series.iter().enumerate() {
        if let Some(v) = cursor.take(i, s, t) {
            out.push((i, v));
        }
    }
}

fn set_op(
    ctx: &mut Ctx<'_>,
    op: BinOp,
    lhs: &[Series],
    rhs: &[Series],
    matching: &Matching,
    grid: Grid,
) -> Result<Vec<Series>, PromError> {
    let (lsig, rsig, nsig) = signatures([lhs, rhs], matching.on, &matching.labels);
    let mut out = OutSet::default();
    let mut lslot: Vec<Option<usize>> = vec![None; lhs.len()];
    let mut rslot: Vec<Option<usize>> = vec![None; rhs.len()];
    let mut stamp = vec![0usize; nsig];
    let (mut lc, mut rc) = (StepCursor::new(lhs.len()), StepCursor::new(rhs.len()));
    let (mut lp, mut rp) = (Vec::new(), Vec::new());
    let emit = |out: &mut OutSet,
                slots: &mut Vec<Option<usize>>,
                side: &[Series],
                i: usize,
                t: i64,
                v: f64|
     -> Result<(), PromError> {
        let slot = match slots.get(i).copied().flatten() {
            Some(s) => s,
            None => {
                let s = out.slot(side.get(i).map(|s| s.labels.clone()).unwrap_or_default());
                if let Some(x) = slots.get_mut(i) {
                    *x = Some(s);
                }
                s
            }
        };
        if out.push(slot, t, v) {
            Ok(())
        } else {
            Err(same_labelset())
        }
    };
    let mut n = 0usize;
    for k in 0..grid.len() {
        ctx.tick()?;
        let t = grid.time(k);
        let mark = k + 1;
        present(&mut lc, lhs, t, &mut lp);
        present(&mut rc, rhs, t, &mut rp);
        match op {
            BinOp::And => {
                if lp.is_empty() || rp.is_empty() {
                    continue;
                }
                for &(j, _) in &rp {
                    if let Some(x) = rsig.get(j).and_then(|s| stamp.get_mut(*s)) {
                        *x = mark;
                    }
                }
                for &(i, v) in &lp {
                    if lsig.get(i).and_then(|s| stamp.get(*s)) == Some(&mark) {
                        emit(&mut out, &mut lslot, lhs, i, t, v)?;
                        n += 1;
                    }
                }
            }
            BinOp::Or => {
                for &(i, v) in &lp {
                    if let Some(x) = lsig.get(i).and_then(|s| stamp.get_mut(*s)) {
                        *x = mark;
                    }
                    emit(&mut out, &mut lslot, lhs, i, t, v)?;
                    n += 1;
                }
                for &(j, v) in &rp {
                    if rsig.get(j).and_then(|s| stamp.get(*s)) != Some(&mark) {
                        emit(&mut out, &mut rslot, rhs, j, t, v)?;
                        n += 1;
                    }
                }
            }
            _ => {
                for &(j, _) in &rp {
                    if let Some(x) = rsig.get(j).and_then(|s| stamp.get_mut(*s)) {
                        *x = mark;
                    }
                }
                for &(i, v) in &lp {
                    if lsig.get(i).and_then(|s| stamp.get(*s)) != Some(&mark) {
                        emit(&mut out, &mut lslot, lhs, i, t, v)?;
                        n += 1;
                    }
                }
            }
        }
    }
    ctx.add_samples(n)?;
    Ok(out.finish())
}

/// The labels of a result of a vector–vector operation, from the "many" side `l` and the
/// "one" side `r`.
fn result_labels(l: &Labels, r: &Labels, op: BinOp, return_bool: bool, m: &Matching) -> Labels {
    let mut pairs: Vec<(String, String)> = l
        .iter()
        .filter(|(k, _)| !(op.drops_name() && *k == NAME))
        .filter(|(k, _)| {
            if m.card != Card::OneToOne {
                return true;
            }
            let listed = m.labels.iter().any(|n| n == k);
            if m.on { listed } else { !listed }
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for name in &m.include {
        pairs.retain(|(k, _)| k != name);
        if let Some(v) = r.get(name) {
            pairs.push((name.clone(), v.to_string()));
        }
    }
    if return_bool {
        pairs.retain(|(k, _)| k != NAME);
    }
    Labels::from_pairs(pairs)
}

fn vector_vector(
    ctx: &mut Ctx<'_>,
    op: BinOp,
    lhs: &[Series],
    rhs: &[Series],
    return_bool: bool,
    m: &Matching,
    grid: Grid,
) -> Result<Vec<Series>, PromError> {
    // One-to-many is many-to-one with the sides swapped.
    let swapped = m.card == Card::OneToMany;
    let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
    let (msig, osig, nsig) = signatures([many, one], m.on, &m.labels);
    // Per signature: the step it was last seen on the "one" side and which series.
    let mut one_at: Vec<(usize, usize, f64)> = vec![(0, 0, 0.0); nsig];
    // Per signature: the step it last matched (one-to-one duplicate check).
    let mut matched = vec![0usize; nsig];
    let mut out = OutSet::default();
    // Per output slot: (step, signature) of its last point.
    let mut last_write: Vec<(usize, usize)> = Vec::new();
    let mut pair_slot: HashMap<(usize, usize), usize> = HashMap::new();
    let (mut mc, mut oc) = (StepCursor::new(many.len()), StepCursor::new(one.len()));
    let (mut mp, mut op_) = (Vec::new(), Vec::new());
    let mut n = 0usize;
    for k in 0..grid.len() {
        ctx.tick()?;
        let t = grid.time(k);
        let mark = k + 1;
        present(&mut mc, many, t, &mut mp);
        present(&mut oc, one, t, &mut op_);
        if mp.is_empty() || op_.is_empty() {
            continue;
        }
        for &(j, v) in &op_ {
            let sig = osig.get(j).copied().unwrap_or(0);
            let Some(slot) = one_at.get_mut(sig) else {
                continue;
            };
            if slot.0 == mark {
                let rs = one.get(j).map(|s| &s.labels);
                let dup = one.get(slot.1).map(|s| &s.labels);
                let (rs, dup) = (
                    rs.cloned().unwrap_or_default(),
                    dup.cloned().unwrap_or_default(),
                );
                return Err(PromError::execution(format!(
                    "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    go_labels(&match_labels(&rs, m.on, &m.labels)),
                    if swapped { "left" } else { "right" },
                    go_labels(&rs),
                    go_labels(&dup),
                )));
            }
            *slot = (mark, j, v);
        }
        let mut collided = false;
        for &(i, lv) in &mp {
            let sig = msig.get(i).copied().unwrap_or(0);
            let Some(&(seen, j, rv)) = one_at.get(sig) else {
                continue;
            };
            if seen != mark {
                continue;
            }
            let (vl, vr) = if swapped { (rv, lv) } else { (lv, rv) };
            let (mut value, keep) = elem_op(op, vl, vr);
            if return_bool {
                value = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                continue;
            }
            let slot = match pair_slot.get(&(i, j)) {
                Some(&s) => s,
                None => {
                    let (Some(ls), Some(rs)) = (many.get(i), one.get(j)) else {
                        continue;
                    };
                    let s = out.slot(result_labels(&ls.labels, &rs.labels, op, return_bool, m));
                    pair_slot.insert((i, j), s);
                    s
                }
            };
            if last_write.len() <= slot {
                last_write.resize(slot + 1, (0, 0));
            }
            if m.card == Card::OneToOne {
                if let Some(x) = matched.get_mut(sig) {
                    if *x == mark {
                        return Err(PromError::execution(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                        ));
                    }
                    *x = mark;
                }
            } else if last_write.get(slot) == Some(&(mark, sig)) {
                return Err(PromError::execution(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                ));
            }
            if let Some(w) = last_write.get_mut(slot) {
                *w = (mark, sig);
            }
            if out.push(slot, t, value) {
                n += 1;
            } else {
                collided = true;
            }
        }
        if collided {
            return Err(same_labelset());
        }
    }
    ctx.add_samples(n)?;
    Ok(out.finish())
}
