//! The evaluator: one pass over the plan for a whole grid of evaluation times. Every node
//! returns its value on every step at once (series of points on the grid), so a selector is
//! read from the source once for the whole range and range functions walk their windows with
//! moving indices. The context carries the limits: samples held, the deadline, series per
//! selector.

use super::Limits;
use super::aggregate;
use super::binary;
use super::functions;
use super::plan::{Node, Selector};
use super::selectors;
use super::series::{Grid, Scalar, Series, Val, check_unique_labels, drop_name};
use crate::promql::PromError;
use crate::promql::source::SeriesSource;
use std::time::Instant;

/// What an evaluation needs besides the plan.
pub(crate) struct Ctx<'a> {
    pub source: &'a dyn SeriesSource,
    pub limits: &'a Limits,
    deadline: Instant,
    /// Samples held now (selected raw samples and computed points).
    samples: usize,
    /// Step of subqueries written without one (Prometheus: the global evaluation interval).
    pub subquery_step: i64,
    ticks: u32,
}

impl<'a> Ctx<'a> {
    /// A context whose deadline is `limits.timeout` from now.
    pub(crate) fn new(
        source: &'a dyn SeriesSource,
        limits: &'a Limits,
        subquery_step: i64,
    ) -> Ctx<'a> {
        let now = Instant::now();
        Ctx {
            source,
            limits,
            deadline: now.checked_add(limits.timeout).unwrap_or(now),
            samples: 0,
            subquery_step,
            ticks: 0,
        }
    }

    /// Fails once the deadline has passed.
    pub(crate) fn check_time(&self) -> Result<(), PromError> {
        if Instant::now() >= self.deadline {
            return Err(PromError::timeout(
                "query timed out in expression evaluation",
            ));
        }
        Ok(())
    }

    /// A cheap deadline check for inner loops (reads the clock every 256 calls).
    pub(crate) fn tick(&mut self) -> Result<(), PromError> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(256) {
            self.check_time()?;
        }
        Ok(())
    }

    /// Counts `n` more samples held; past the limit is Prometheus's "too many samples".
    pub(crate) fn add_samples(&mut self, n: usize) -> Result<(), PromError> {
        self.samples = self.samples.saturating_add(n);
        if self.samples > self.limits.max_samples {
            return Err(too_many_samples());
        }
        Ok(())
    }

    /// Counts `n` samples as released.
    pub(crate) fn release(&mut self, n: usize) {
        self.samples = self.samples.saturating_sub(n);
    }

    /// Checks that `n` more samples would fit, without counting them.
    pub(crate) fn fits(&self, n: usize) -> Result<(), PromError> {
        if self.samples.saturating_add(n) > self.limits.max_samples {
            return Err(too_many_samples());
        }
        Ok(())
    }
}

/// Prometheus's error for the sample limit.
pub(crate) fn too_many_samples() -> PromError {
    PromError::execution(
        "query processing would load too many samples into memory in query execution",
    )
}

/// When a range argument's window ends, and how long it is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Window {
    /// Ends at `t - offset` for evaluation time `t`.
    Moving { offset: i64, range: i64 },
    /// Ends at a fixed time (`@`).
    Fixed { end: i64, range: i64 },
}

impl Window {
    /// `[start, end]` (ms, both included) for evaluation time `t`.
    pub(crate) fn bounds(&self, t: i64) -> (i64, i64) {
        let (end, range) = match *self {
            Window::Moving { offset, range } => (t.saturating_sub(offset), range),
            Window::Fixed { end, range } => (end, range),
        };
        (end.saturating_sub(range), end)
    }

    /// Whether the window is the same at every step.
    pub(crate) fn is_fixed(&self) -> bool {
        matches!(self, Window::Fixed { .. })
    }

    fn new(at: Option<i64>, offset: i64, range: i64) -> Window {
        match at {
            Some(at) => Window::Fixed {
                end: at.saturating_sub(offset),
                range,
            },
            None => Window::Moving { offset, range },
        }
    }
}

/// A range vector ready to be walked: raw samples (stale markers dropped) and the window.
pub(crate) struct RangeArg {
    pub series: Vec<Series>,
    pub window: Window,
}

impl RangeArg {
    /// Samples held.
    pub(crate) fn samples(&self) -> usize {
        self.series.iter().map(|s| s.points.len()).sum()
    }
}

/// Evaluates a node on a grid.
pub(crate) fn eval(ctx: &mut Ctx<'_>, node: &Node, grid: Grid) -> Result<Val, PromError> {
    ctx.check_time()?;
    match node {
        Node::Number(v) => Ok(Val::Scalar(Scalar::Const(*v))),
        Node::Str(s) => Ok(Val::Str(s.clone())),
        Node::Vector(sel) => Ok(Val::Vector(selectors::instant(ctx, sel, grid, false)?)),
        Node::Matrix { .. } | Node::Subquery { .. } => {
            // A range vector is only a value of its own at the top of an instant query.
            let arg = eval_range_arg(ctx, node, grid)?;
            let held = arg.samples();
            let t = grid.start;
            let (ws, we) = arg.window.bounds(t);
            let series: Vec<Series> = arg
                .series
                .into_iter()
                .filter_map(|s| {
                    let points: Vec<(i64, f64)> = s
                        .points
                        .into_iter()
                        .filter(|p| p.0 >= ws && p.0 <= we)
                        .collect();
                    (!points.is_empty()).then_some(Series {
                        labels: s.labels,
                        points,
                    })
                })
                .collect();
            let val = Val::Matrix(series);
            ctx.release(held);
            ctx.add_samples(val.samples())?;
            Ok(val)
        }
        Node::Call { func, args } => functions::eval_call(ctx, *func, args, grid),
        Node::Aggregate {
            op,
            param,
            expr,
            grouping,
            without,
        } => aggregate::eval(ctx, *op, param.as_deref(), expr, grouping, *without, grid),
        Node::Neg(inner) => match eval(ctx, inner, grid)? {
            Val::Scalar(Scalar::Const(v)) => Ok(Val::Scalar(Scalar::Const(-v))),
            Val::Scalar(Scalar::Steps(mut v)) => {
                v.iter_mut().for_each(|x| *x = -*x);
                Ok(Val::Scalar(Scalar::Steps(v)))
            }
            Val::Vector(mut series) => {
                for s in &mut series {
                    s.labels = drop_name(&s.labels);
                    s.points.iter_mut().for_each(|p| p.1 = -p.1);
                }
                check_unique_labels(&series)?;
                Ok(Val::Vector(series))
            }
            _ => Err(PromError::internal("negation of a non-numeric value")),
        },
        Node::Binary {
            op,
            lhs,
            rhs,
            return_bool,
            matching,
        } => binary::eval(ctx, *op, lhs, rhs, *return_bool, matching, grid),
    }
}

/// Evaluates a node that must give an instant vector.
pub(crate) fn eval_vector(
    ctx: &mut Ctx<'_>,
    node: &Node,
    grid: Grid,
) -> Result<Vec<Series>, PromError> {
    match eval(ctx, node, grid)? {
        Val::Vector(v) => Ok(v),
        _ => Err(PromError::internal("expected an instant vector")),
    }
}

/// Evaluates a node that must give a scalar.
pub(crate) fn eval_scalar(ctx: &mut Ctx<'_>, node: &Node, grid: Grid) -> Result<Scalar, PromError> {
    match eval(ctx, node, grid)? {
        Val::Scalar(s) => Ok(s),
        _ => Err(PromError::internal("expected a scalar")),
    }
}

/// The first multiple of `step` at or after `t`.
fn align_up(t: i64, step: i64) -> i64 {
    let q = t.div_euclid(step);
    let r = t.rem_euclid(step);
    let base = q.saturating_mul(step);
    if r == 0 {
        base
    } else {
        base.saturating_add(step)
    }
}

/// The grid a subquery's inner expression is evaluated on, for an outer grid: steps at
/// multiples of the subquery step (absolute time) from the first window's start to the last
/// window's end.
pub(crate) fn subquery_grid(
    ctx: &Ctx<'_>,
    range: i64,
    step: Option<i64>,
    offset: i64,
    at: Option<i64>,
    grid: Grid,
) -> Result<Grid, PromError> {
    let step = step.unwrap_or(ctx.subquery_step).max(1);
    let (first_end, last_end) = match at {
        Some(at) => (at.saturating_sub(offset), at.saturating_sub(offset)),
        None => (
            grid.start.saturating_sub(offset),
            grid.end.saturating_sub(offset),
        ),
    };
    let inner = Grid {
        start: align_up(first_end.saturating_sub(range), step),
        end: last_end,
        step,
    };
    // Every step of the inner grid holds at least a scalar per step somewhere below; a grid
    // longer than the sample limit cannot be evaluated within it.
    ctx.fits(inner.len())?;
    Ok(inner)
}

/// Evaluates a range-vector node (a range selector or a subquery) for the steps of `grid`.
pub(crate) fn eval_range_arg(
    ctx: &mut Ctx<'_>,
    node: &Node,
    grid: Grid,
) -> Result<RangeArg, PromError> {
    match node {
        Node::Matrix { sel, range } => range_selector(ctx, sel, *range, grid),
        Node::Subquery {
            expr,
            range,
            step,
            offset,
            at,
        } => {
            let inner = subquery_grid(ctx, *range, *step, *offset, *at, grid)?;
            let series = if inner.len() == 0 {
                Vec::new()
            } else {
                eval_vector(ctx, expr, inner)?
            };
            Ok(RangeArg {
                series,
                window: Window::new(*at, *offset, *range),
            })
        }
        _ => Err(PromError::internal("expected a range vector")),
    }
}

fn range_selector(
    ctx: &mut Ctx<'_>,
    sel: &Selector,
    range: i64,
    grid: Grid,
) -> Result<RangeArg, PromError> {
    let window = Window::new(sel.at, sel.offset, range);
    let (first_start, _) = window.bounds(grid.start);
    let (_, last_end) = window.bounds(grid.end);
    let mut series = selectors::select(ctx, sel, first_start, last_end)?;
    for s in &mut series {
        let before = s.points.len();
        s.points.retain(|p| !super::series::is_stale(p.1));
        ctx.release(before - s.points.len());
    }
    series.retain(|s| !s.points.is_empty());
    Ok(RangeArg { series, window })
}
