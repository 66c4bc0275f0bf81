//! Aggregations (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`, `topk`,
//! `bottomk`, `quantile`, `count_values`) with `by` / `without`. Each input series is
//! assigned its group once; then every step folds the series present at that step into their
//! groups in input order, with Prometheus 2.42's arithmetic (incremental mean, Welford
//! variance, its heaps for topk/bottomk), so values and instant-query order match it.

use super::eval::{self, Ctx};
use super::histogram::quantile;
use super::plan::{AggOp, Node};
use super::series::{
    Grid, OutSet, Scalar, Series, StepCursor, Val, go_float, go_float_f, go_quote, same_labelset,
    valid_label_name, without as labels_without,
};
use crate::promql::PromError;
use skein_model::metric::Labels;
use std::cmp::Ordering;
use std::collections::HashMap;

/// Running state of one group at one step.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    value: f64,
    mean: f64,
    count: f64,
}

/// The labels of the group a series falls in.
fn group_labels(l: &Labels, grouping: &[String], without: bool) -> Labels {
    if without {
        labels_without(l, grouping, true)
    } else if grouping.is_empty() {
        Labels::default()
    } else {
        l.keep(grouping)
    }
}

/// Evaluates an aggregation on a grid.
pub(crate) fn eval(
    ctx: &mut Ctx<'_>,
    op: AggOp,
    param: Option<&Node>,
    expr: &Node,
    grouping: &[String],
    without: bool,
    grid: Grid,
) -> Result<Val, PromError> {
    let mut value_label = None;
    let mut scalar = Scalar::Const(f64::NAN);
    if let Some(p) = param {
        match op {
            AggOp::CountValues => match p {
                Node::Str(s) => value_label = Some(s.clone()),
                _ => {
                    return Err(PromError::bad_data(
                        "count_values needs a string label name",
                    ));
                }
            },
            _ => scalar = eval::eval_scalar(ctx, p, grid)?,
        }
    }
    let input = eval::eval_vector(ctx, expr, grid)?;
    let held: usize = input.iter().map(|s| s.points.len()).sum();
    let out = match (op, value_label) {
        (AggOp::CountValues, Some(label)) => {
            count_values(ctx, &input, &label, grouping, without, grid)?
        }
        (AggOp::Topk | AggOp::Bottomk, _) => {
            top_bottom(ctx, op, &scalar, &input, grouping, without, grid)?
        }
        _ => simple(ctx, op, &scalar, &input, grouping, without, grid)?,
    };
    ctx.release(held);
    Ok(Val::Vector(out))
}

/// Assigns each series its group (first appearance order) and gives the groups' labels.
fn assign_groups(
    input: &[Series],
    grouping: &[String],
    without: bool,
) -> (Vec<usize>, Vec<Labels>) {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut labels: Vec<Labels> = Vec::new();
    let groups = input
        .iter()
        .map(|s| {
            let l = group_labels(&s.labels, grouping, without);
            match index.get(&l) {
                Some(&g) => g,
                None => {
                    let g = labels.len();
                    index.insert(l.clone(), g);
                    labels.push(l);
                    g
                }
            }
        })
        .collect();
    (groups, labels)
}

fn simple(
    ctx: &mut Ctx<'_>,
    op: AggOp,
    param: &Scalar,
    input: &[Series],
    grouping: &[String],
    without: bool,
    grid: Grid,
) -> Result<Vec<Series>, PromError> {
    let (groups, labels) = assign_groups(input, grouping, without);
    let mut out = OutSet::default();
    let slots: Vec<usize> = labels.iter().map(|l| out.slot(l.clone())).collect();
    let mut acc = vec![Acc::default(); labels.len()];
    let mut started = vec![false; labels.len()];
    let mut values: Vec<Vec<f64>> = if op == AggOp::Quantile {
        vec![Vec::new(); labels.len()]
    } else {
        Vec::new()
    };
    let mut touched: Vec<usize> = Vec::new();
    let mut cursor = StepCursor::new(input.len());
    for k in 0..grid.len() {
        ctx.tick()?;
        let t = grid.time(k);
        for (i, s) in input.iter().enumerate() {
            let Some(v) = cursor.take(i, s, t) else {
                continue;
            };
            let g = groups.get(i).copied().unwrap_or(0);
            let (Some(a), Some(st)) = (acc.get_mut(g), started.get_mut(g)) else {
                continue;
            };
            if op == AggOp::Quantile
                && let Some(vals) = values.get_mut(g)
            {
                vals.push(v);
            }
            if !*st {
                *st = true;
                touched.push(g);
                *a = Acc {
                    value: match op {
                        AggOp::Stddev | AggOp::Stdvar => 0.0,
                        AggOp::Group => 1.0,
                        _ => v,
                    },
                    mean: v,
                    count: 1.0,
                };
                continue;
            }
            fold(op, a, v);
        }
        for &g in &touched {
            let (Some(a), Some(st)) = (acc.get(g), started.get_mut(g)) else {
                continue;
            };
            *st = false;
            let v = match op {
                AggOp::Avg => a.mean,
                AggOp::Count => a.count,
                AggOp::Stdvar => a.value / a.count,
                AggOp::Stddev => (a.value / a.count).sqrt(),
                AggOp::Quantile => match values.get_mut(g) {
                    Some(vals) => {
                        let q = quantile(param.get(k), vals);
                        vals.clear();
                        q
                    }
                    None => f64::NAN,
                },
                _ => a.value,
            };
            if !out.push(slots.get(g).copied().unwrap_or(usize::MAX), t, v) {
                return Err(same_labelset());
            }
        }
        ctx.add_samples(touched.len())?;
        touched.clear();
    }
    Ok(out.finish())
}

/// Adds a value to a started group.
fn fold(op: AggOp, a: &mut Acc, v: f64) {
    match op {
        AggOp::Sum => a.value += v,
        AggOp::Avg => {
            a.count += 1.0;
            if a.mean.is_infinite() {
                if v.is_infinite() && (a.mean > 0.0) == (v > 0.0) {
                    return;
                }
                if !v.is_infinite() && !v.is_nan() {
                    return;
                }
            }
            a.mean += v / a.count - a.mean / a.count;
        }
        AggOp::Max if a.value < v || a.value.is_nan() => a.value = v,
        AggOp::Min if a.value > v || a.value.is_nan() => a.value = v,
        AggOp::Count => a.count += 1.0,
        AggOp::Stddev | AggOp::Stdvar => {
            a.count += 1.0;
            let delta = v - a.mean;
            a.mean += delta / a.count;
            a.value += delta * (v - a.mean);
        }
        _ => {}
    }
}

fn count_values(
    ctx: &mut Ctx<'_>,
    input: &[Series],
    label: &str,
    grouping: &[String],
    without: bool,
    grid: Grid,
) -> Result<Vec<Series>, PromError> {
    if !valid_label_name(label) {
        return Err(PromError::execution(format!(
            "invalid label name {}",
            go_quote(label)
        )));
    }
    let mut by = grouping.to_vec();
    if !without {
        by.push(label.to_string());
    }
    let mut out = OutSet::default();
    let mut counts: Vec<(usize, f64)> = Vec::new();
    let mut cursor = StepCursor::new(input.len());
    for k in 0..grid.len() {
        ctx.tick()?;
        let t = grid.time(k);
        for (i, s) in input.iter().enumerate() {
            let Some(v) = cursor.take(i, s, t) else {
                continue;
            };
            let metric = s.labels.with(label, &go_float_f(v));
            let slot = out.slot(group_labels(&metric, &by, without));
            match counts.iter_mut().find(|c| c.0 == slot) {
                Some(c) => c.1 += 1.0,
                None => counts.push((slot, 1.0)),
            }
        }
        for &(slot, c) in &counts {
            if !out.push(slot, t, c) {
                return Err(same_labelset());
            }
        }
        ctx.add_samples(counts.len())?;
        counts.clear();
    }
    Ok(out.finish())
}

/// Go's `container/heap` over (value, series) with a `less` on values.
struct GoHeap<'a> {
    items: Vec<(f64, usize)>,
    less: &'a dyn Fn(f64, f64) -> bool,
}

impl GoHeap<'_> {
    fn less(&self, i: usize, j: usize) -> bool {
        match (self.items.get(i), self.items.get(j)) {
            (Some(a), Some(b)) => (self.less)(a.0, b.0),
            _ => false,
        }
    }

    fn up(&mut self, mut j: usize) {
        while j > 0 {
            let i = (j - 1) / 2;
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            j = i;
        }
    }

    fn down(&mut self, mut i: usize, n: usize) {
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            let j2 = j1 + 1;
            if j2 < n && self.less(j2, j1) {
                j = j2;
            }
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            i = j;
        }
    }

    fn push(&mut self, x: (f64, usize)) {
        self.items.push(x);
        self.up(self.items.len() - 1);
    }

    fn pop(&mut self) {
        let n = self.items.len();
        if n == 0 {
            return;
        }
        self.items.swap(0, n - 1);
        self.down(0, n - 1);
        self.items.pop();
    }

    /// Go's `sort.Sort(sort.Reverse(heap))`: insertion sort for small heaps as Go does (so
    /// ties keep their order), a stable sort otherwise.
    fn sort_reverse(&mut self) {
        let less = self.less;
        let rev = |a: f64, b: f64| less(b, a);
        if self.items.len() <= 12 {
            for i in 1..self.items.len() {
                let mut j = i;
                while j > 0 {
                    let (Some(a), Some(b)) = (self.items.get(j), self.items.get(j - 1)) else {
                        break;
                    };
                    if !rev(a.0, b.0) {
                        break;
                    }
                    self.items.swap(j, j - 1);
                    j -= 1;
                }
            }
        } else {
            self.items.sort_by(|a, b| {
                if rev(a.0, b.0) {
                    Ordering::Less
                } else if rev(b.0, a.0) {
                    Ordering::Greater
                } else {
                    Ordering::Equal
                }
            });
        }
    }
}

/// Go's `convertibleToInt64` bounds.
const MAX_INT64_F: f64 = 9_223_372_036_854_774_784.0;
const MIN_INT64_F: f64 = -9_223_372_036_854_775_808.0;

fn top_bottom(
    ctx: &mut Ctx<'_>,
    op: AggOp,
    param: &Scalar,
    input: &[Series],
    grouping: &[String],
    without: bool,
    grid: Grid,
) -> Result<Vec<Series>, PromError> {
    let (groups, labels) = assign_groups(input, grouping, without);
    let top = op == AggOp::Topk;
    let less_top = |a: f64, b: f64| a.is_nan() || a < b;
    let less_bottom = |a: f64, b: f64| a.is_nan() || a > b;
    let less: &dyn Fn(f64, f64) -> bool = if top { &less_top } else { &less_bottom };
    let mut heaps: Vec<GoHeap<'_>> = (0..labels.len())
        .map(|_| GoHeap {
            items: Vec::new(),
            less,
        })
        .collect();
    let mut out = OutSet::default();
    let mut slots: Vec<Option<usize>> = vec![None; input.len()];
    let mut touched: Vec<usize> = Vec::new();
    let mut cursor = StepCursor::new(input.len());
    for step in 0..grid.len() {
        ctx.tick()?;
        let t = grid.time(step);
        let f = param.get(step);
        if !(MIN_INT64_F..=MAX_INT64_F).contains(&f) {
            return Err(PromError::execution(format!(
                "Scalar value {} overflows int64",
                go_float(f)
            )));
        }
        let k = f.trunc() as i64;
        for (i, s) in input.iter().enumerate() {
            let Some(v) = cursor.take(i, s, t) else {
                continue;
            };
            if k < 1 {
                continue;
            }
            let g = groups.get(i).copied().unwrap_or(0);
            let Some(h) = heaps.get_mut(g) else {
                continue;
            };
            if h.items.is_empty() {
                touched.push(g);
                h.items.push((v, i));
                continue;
            }
            let head = h.items.first().map(|x| x.0).unwrap_or(f64::NAN);
            let better = if top { head < v } else { head > v };
            if (h.items.len() as i64) < k || better || head.is_nan() {
                if h.items.len() as i64 == k {
                    if k == 1 {
                        if let Some(x) = h.items.first_mut() {
                            *x = (v, i);
                        }
                        continue;
                    }
                    h.pop();
                }
                h.push((v, i));
            }
        }
        let mut n = 0usize;
        for &g in &touched {
            let Some(h) = heaps.get_mut(g) else {
                continue;
            };
            if h.items.len() > 1 {
                h.sort_reverse();
            }
            for &(v, i) in &h.items {
                let slot = match slots.get(i).copied().flatten() {
                    Some(s) => s,
                    None => {
                        let l = input.get(i).map(|s| s.labels.clone()).unwrap_or_default();
                        let s = out.slot(l);
                        if let Some(x) = slots.get_mut(i) {
                            *x = Some(s);
                        }
                        s
                    }
                };
                if !out.push(slot, t, v) {
                    return Err(same_labelset());
                }
                n += 1;
            }
            h.items.clear();
        }
        ctx.add_samples(n)?;
        touched.clear();
    }
    Ok(out.finish())
}
