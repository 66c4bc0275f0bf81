//! PromQL functions: the list of Prometheus 2.42's functions with their argument types, and
//! their evaluation. Range-vector functions are in [`super::over_time`]; label and date
//! functions in [`super::instant_fns`].

use super::eval::{self, Ctx};
use super::histogram;
use super::instant_fns;
use super::over_time;
use super::plan::{Node, ValueType};
use super::selectors;
use super::series::{Grid, Scalar, Series, Val, drop_name, merge_same_labels};
use crate::promql::PromError;
use skein_model::metric::Labels;
use std::sync::Once;

macro_rules! funcs {
    ($($variant:ident = $name:literal: [$($arg:ident),*] $(+ $opt:literal)? => $ret:ident;)*) => {
        /// A PromQL function of Prometheus 2.42.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Func {
            $($variant,)*
        }

        impl Func {
            /// The function of a name.
            pub(crate) fn from_name(name: &str) -> Option<Func> {
                match name {
                    $($name => Some(Func::$variant),)*
                    _ => None,
                }
            }

            /// Its name.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(Func::$variant => $name,)*
                }
            }

            /// Argument types; the number of trailing optional arguments (-1: any number
            /// of repeats of the last type).
            fn signature(self) -> (&'static [ValueType], i32) {
                match self {
                    $(Func::$variant => (&[$(ValueType::$arg),*], 0 $(+ $opt)?),)*
                }
            }

            /// The type it returns.
            pub(crate) fn return_type(self) -> ValueType {
                match self {
                    $(Func::$variant => ValueType::$ret,)*
                }
            }
        }
    };
}

funcs! {
    Abs = "abs": [Vector] => Vector;
    Absent = "absent": [Vector] => Vector;
    AbsentOverTime = "absent_over_time": [Matrix] => Vector;
    Acos = "acos": [Vector] => Vector;
    Acosh = "acosh": [Vector] => Vector;
    Asin = "asin": [Vector] => Vector;
    Asinh = "asinh": [Vector] => Vector;
    Atan = "atan": [Vector] => Vector;
    Atanh = "atanh": [Vector] => Vector;
    AvgOverTime = "avg_over_time": [Matrix] => Vector;
    Ceil = "ceil": [Vector] => Vector;
    Changes = "changes": [Matrix] => Vector;
    Clamp = "clamp": [Vector, Scalar, Scalar] => Vector;
    ClampMax = "clamp_max": [Vector, Scalar] => Vector;
    ClampMin = "clamp_min": [Vector, Scalar] => Vector;
    Cos = "cos": [Vector] => Vector;
    Cosh = "cosh": [Vector] => Vector;
    CountOverTime = "count_over_time": [Matrix] => Vector;
    DaysInMonth = "days_in_month": [Vector] + 1 => Vector;
    DayOfMonth = "day_of_month": [Vector] + 1 => Vector;
    DayOfWeek = "day_of_week": [Vector] + 1 => Vector;
    DayOfYear = "day_of_year": [Vector] + 1 => Vector;
    Deg = "deg": [Vector] => Vector;
    Delta = "delta": [Matrix] => Vector;
    Deriv = "deriv": [Matrix] => Vector;
    Exp = "exp": [Vector] => Vector;
    Floor = "floor": [Vector] => Vector;
    HistogramCount = "histogram_count": [Vector] => Vector;
    HistogramSum = "histogram_sum": [Vector] => Vector;
    HistogramFraction = "histogram_fraction": [Scalar, Scalar, Vector] => Vector;
    HistogramQuantile = "histogram_quantile": [Scalar, Vector] => Vector;
    HoltWinters = "holt_winters": [Matrix, Scalar, Scalar] => Vector;
    Hour = "hour": [Vector] + 1 => Vector;
    Idelta = "idelta": [Matrix] => Vector;
    Increase = "increase": [Matrix] => Vector;
    Irate = "irate": [Matrix] => Vector;
    LabelReplace = "label_replace": [Vector, String, String, String, String] => Vector;
    LabelJoin = "label_join": [Vector, String, String, String] + -1 => Vector;
    LastOverTime = "last_over_time": [Matrix] => Vector;
    Ln = "ln": [Vector] => Vector;
    Log10 = "log10": [Vector] => Vector;
    Log2 = "log2": [Vector] => Vector;
    MaxOverTime = "max_over_time": [Matrix] => Vector;
    MinOverTime = "min_over_time": [Matrix] => Vector;
    Minute = "minute": [Vector] + 1 => Vector;
    Month = "month": [Vector] + 1 => Vector;
    Pi = "pi": [] => Scalar;
    PredictLinear = "predict_linear": [Matrix, Scalar] => Vector;
    PresentOverTime = "present_over_time": [Matrix] => Vector;
    QuantileOverTime = "quantile_over_time": [Scalar, Matrix] => Vector;
    Rad = "rad": [Vector] => Vector;
    Rate = "rate": [Matrix] => Vector;
    Resets = "resets": [Matrix] => Vector;
    Round = "round": [Vector, Scalar] + 1 => Vector;
    ScalarFn = "scalar": [Vector] => Scalar;
    Sgn = "sgn": [Vector] => Vector;
    Sin = "sin": [Vector] => Vector;
    Sinh = "sinh": [Vector] => Vector;
    Sort = "sort": [Vector] => Vector;
    SortDesc = "sort_desc": [Vector] => Vector;
    Sqrt = "sqrt": [Vector] => Vector;
    StddevOverTime = "stddev_over_time": [Matrix] => Vector;
    StdvarOverTime = "stdvar_over_time": [Matrix] => Vector;
    SumOverTime = "sum_over_time": [Matrix] => Vector;
    Tan = "tan": [Vector] => Vector;
    Tanh = "tanh": [Vector] => Vector;
    Time = "time": [] => Scalar;
    Timestamp = "timestamp": [Vector] => Vector;
    VectorFn = "vector": [Scalar] => Vector;
    Year = "year": [Vector] + 1 => Vector;
}

static REGISTER: Once = Once::new();

/// Teaches the parser the 2.42 functions it lacks (`holt_winters`, renamed in Prometheus 3).
pub(crate) fn register_parser_functions() {
    use promql_parser::parser::value::ValueType as P;
    REGISTER.call_once(|| {
        let _ = promql_parser::parser::register_extra_functions(vec![
            promql_parser::parser::Function::new(
                "holt_winters",
                vec![P::Matrix, P::Scalar, P::Scalar],
                0,
                P::Vector,
                false,
            ),
        ]);
    });
}

impl Func {
    /// Checks the number and types of arguments as Prometheus's parser does.
    pub(crate) fn check_args(self, args: &[Node]) -> Result<(), PromError> {
        let (types, variadic) = self.signature();
        let name = self.name();
        if variadic == 0 {
            if args.len() != types.len() {
                return Err(PromError::bad_data(format!(
                    "expected {} argument(s) in call to \"{name}\", got {}",
                    types.len(),
                    args.len()
                )));
            }
        } else {
            let min = types.len().saturating_sub(1);
            if args.len() < min {
                return Err(PromError::bad_data(format!(
                    "expected at least {min} argument(s) in call to \"{name}\", got {}",
                    args.len()
                )));
            }
            if variadic > 0 {
                let max = min + variadic as usize;
                if args.len() > max {
                    return Err(PromError::bad_data(format!(
                        "expected at most {max} argument(s) in call to \"{name}\", got {}",
                        args.len()
                    )));
                }
            }
        }
        for (i, a) in args.iter().enumerate() {
            let Some(want) = types.get(i).or(types.last()) else {
                continue;
            };
            let got = a.value_type();
            if got != *want {
                return Err(PromError::bad_data(format!(
                    "expected type {} in call to function \"{name}\", got {}",
                    want.documented(),
                    got.documented()
                )));
            }
        }
        Ok(())
    }

    /// An element-wise math function, if it is one.
    fn math(self) -> Option<fn(f64) -> f64> {
        Some(match self {
            Func::Abs => f64::abs,
            Func::Ceil => f64::ceil,
            Func::Floor => f64::floor,
            Func::Exp => f64::exp,
            Func::Sqrt => f64::sqrt,
            Func::Ln => f64::ln,
            Func::Log2 => f64::log2,
            Func::Log10 => f64::log10,
            Func::Sin => f64::sin,
            Func::Cos => f64::cos,
            Func::Tan => f64::tan,
            Func::Asin => f64::asin,
            Func::Acos => f64::acos,
            Func::Atan => f64::atan,
            Func::Sinh => f64::sinh,
            Func::Cosh => f64::cosh,
            Func::Tanh => f64::tanh,
            Func::Asinh => f64::asinh,
            Func::Acosh => f64::acosh,
            Func::Atanh => f64::atanh,
            Func::Rad => |v| v * std::f64::consts::PI / 180.0,
            Func::Deg => |v| v * 180.0 / std::f64::consts::PI,
            Func::Sgn => |v| {
                if v < 0.0 {
                    -1.0
                } else if v > 0.0 {
                    1.0
                } else {
                    v
                }
            },
            _ => return None,
        })
    }
}

fn string_arg(args: &[Node], i: usize) -> Result<&str, PromError> {
    match args.get(i) {
        Some(Node::Str(s)) => Ok(s),
        _ => Err(PromError::bad_data("expected a string literal argument")),
    }
}

fn vector_arg(
    ctx: &mut Ctx<'_>,
    args: &[Node],
    i: usize,
    grid: Grid,
) -> Result<Vec<Series>, PromError> {
    let node = args
        .get(i)
        .ok_or_else(|| PromError::bad_data("missing argument"))?;
    eval::eval_vector(ctx, node, grid)
}

fn scalar_arg(ctx: &mut Ctx<'_>, args: &[Node], i: usize, grid: Grid) -> Result<Scalar, PromError> {
    let node = args
        .get(i)
        .ok_or_else(|| PromError::bad_data("missing argument"))?;
    eval::eval_scalar(ctx, node, grid)
}

fn held(series: &[Series]) -> usize {
    series.iter().map(|s| s.points.len()).sum()
}

/// Maps every point of every series (labels through `labels`), dropping points where `f` gives
/// None; series that end up with the same labels merge as Prometheus's step-by-step evaluation.
fn map_points(
    ctx: &mut Ctx<'_>,
    input: Vec<Series>,
    grid: Grid,
    labels: impl Fn(&Labels) -> Labels,
    f: impl Fn(usize, f64) -> Option<f64>,
) -> Result<Vec<Series>, PromError> {
    let before = held(&input);
    let mut out = Vec::with_capacity(input.len());
    for s in input {
        ctx.tick()?;
        let points: Vec<(i64, f64)> = s
            .points
            .into_iter()
            .filter_map(|(t, v)| f(grid.index(t), v).map(|v| (t, v)))
            .collect();
        if !points.is_empty() {
            out.push(Series {
                labels: labels(&s.labels),
                points,
            });
        }
    }
    ctx.release(before);
    ctx.add_samples(held(&out))?;
    merge_same_labels(out)
}

/// Evaluates a function call on a grid.
pub(crate) fn eval_call(
    ctx: &mut Ctx<'_>,
    func: Func,
    args: &[Node],
    grid: Grid,
) -> Result<Val, PromError> {
    // Range-vector functions.
    if let Some(mi) = args
        .iter()
        .position(|a| a.value_type() == ValueType::Matrix)
    {
        let mut scalars: Vec<Option<Scalar>> = Vec::with_capacity(args.len());
        for (i, a) in args.iter().enumerate() {
            scalars.push(if i == mi {
                None
            } else {
                Some(eval::eval_scalar(ctx, a, grid)?)
            });
        }
        let node = args
            .get(mi)
            .ok_or_else(|| PromError::internal("missing range argument"))?;
        let absent_labels = match node {
            Node::Matrix { sel, .. } => sel.absent_labels.clone(),
            _ => Labels::default(),
        };
        let arg = eval::eval_range_arg(ctx, node, grid)?;
        let held = arg.samples();
        let out = over_time::eval(ctx, func, arg, &scalars, absent_labels, grid);
        ctx.release(held);
        return out;
    }
    if let Some(f) = func.math() {
        let input = vector_arg(ctx, args, 0, grid)?;
        return Ok(Val::Vector(map_points(
            ctx,
            input,
            grid,
            drop_name,
            |_, v| Some(f(v)),
        )?));
    }
    Ok(match func {
        Func::Time => Val::Scalar(Scalar::Steps(steps(ctx, grid, |t| t as f64 / 1000.0)?)),
        Func::Pi => Val::Scalar(Scalar::Const(std::f64::consts::PI)),
        Func::VectorFn => {
            let s = scalar_arg(ctx, args, 0, grid)?;
            ctx.add_samples(grid.len())?;
            Val::Vector(vec![Series {
                labels: Labels::default(),
                points: grid
                    .times()
                    .enumerate()
                    .map(|(k, t)| (t, s.get(k)))
                    .collect(),
            }])
        }
        Func::ScalarFn => {
            let input = vector_arg(ctx, args, 0, grid)?;
            let mut count = vec![0u32; grid.len()];
            let mut value = vec![f64::NAN; grid.len()];
            for s in &input {
                for &(t, v) in &s.points {
                    let k = grid.index(t);
                    if let (Some(c), Some(x)) = (count.get_mut(k), value.get_mut(k)) {
                        *c = c.saturating_add(1);
                        *x = v;
                    }
                }
            }
            ctx.release(held(&input));
            ctx.add_samples(grid.len())?;
            let values = count
                .iter()
                .zip(value)
                .map(|(c, v)| if *c == 1 { v } else { f64::NAN })
                .collect();
            Val::Scalar(Scalar::Steps(values))
        }
        Func::Sort | Func::SortDesc => {
            let mut v = vector_arg(ctx, args, 0, grid)?;
            // Order only means something in an instant query (one step).
            if grid.len() == 1 {
                let value = |s: &Series| s.points.first().map(|p| p.1).unwrap_or(f64::NAN);
                if func == Func::Sort {
                    go_sort(&mut v, |a, b| value(b).is_nan() || value(a) < value(b));
                } else {
                    go_sort(&mut v, |a, b| value(b).is_nan() || value(a) > value(b));
                }
            }
            Val::Vector(v)
        }
        Func::Absent => {
            let input = vector_arg(ctx, args, 0, grid)?;
            let mut present = vec![false; grid.len()];
            for s in &input {
                for &(t, _) in &s.points {
                    if let Some(p) = present.get_mut(grid.index(t)) {
                        *p = true;
                    }
                }
            }
            ctx.release(held(&input));
            let labels = match args.first() {
                Some(Node::Vector(sel)) => sel.absent_labels.clone(),
                _ => Labels::default(),
            };
            let points: Vec<(i64, f64)> = present
                .iter()
                .enumerate()
                .filter(|(_, p)| !**p)
                .map(|(k, _)| (grid.time(k), 1.0))
                .collect();
            ctx.add_samples(points.len())?;
            Val::Vector(if points.is_empty() {
                Vec::new()
            } else {
                vec![Series { labels, points }]
            })
        }
        Func::Timestamp => {
            let input = match args.first() {
                // Of a selector: the selected samples' own times.
                Some(Node::Vector(sel)) => selectors::instant(ctx, sel, grid, true)?,
                _ => {
                    let v = vector_arg(ctx, args, 0, grid)?;
                    v.into_iter()
                        .map(|s| Series {
                            labels: s.labels,
                            points: s
                                .points
                                .into_iter()
                                .map(|(t, _)| (t, t as f64 / 1000.0))
                                .collect(),
                        })
                        .collect()
                }
            };
            Val::Vector(map_points(ctx, input, grid, drop_name, |_, v| Some(v))?)
        }
        Func::Clamp | Func::ClampMin | Func::ClampMax => {
            let input = vector_arg(ctx, args, 0, grid)?;
            let a = scalar_arg(ctx, args, 1, grid)?;
            let b = if func == Func::Clamp {
                Some(scalar_arg(ctx, args, 2, grid)?)
            } else {
                None
            };
            let out = map_points(ctx, input, grid, drop_name, |k, v| match func {
                Func::ClampMin => Some(a.get(k).max_go(v)),
                Func::ClampMax => Some(a.get(k).min_go(v)),
                _ => {
                    let (min, max) = (a.get(k), b.as_ref().map(|b| b.get(k)).unwrap_or(f64::NAN));
                    if max < min {
                        None
                    } else {
                        Some(min.max_go(max.min_go(v)))
                    }
                }
            })?;
            Val::Vector(out)
        }
        Func::Round => {
            let input = vector_arg(ctx, args, 0, grid)?;
            let to = if args.len() > 1 {
                scalar_arg(ctx, args, 1, grid)?
            } else {
                Scalar::Const(1.0)
            };
            let out = map_points(ctx, input, grid, drop_name, |k, v| {
                let inv = 1.0 / to.get(k);
                Some((v * inv + 0.5).floor() / inv)
            })?;
            Val::Vector(out)
        }
        Func::HistogramQuantile => {
            let q = scalar_arg(ctx, args, 0, grid)?;
            let input = vector_arg(ctx, args, 1, grid)?;
            let out = histogram::eval_histogram_quantile(ctx, &q, &input, grid)?;
            ctx.release(held(&input));
            Val::Vector(out)
        }
        Func::HistogramCount | Func::HistogramSum | Func::HistogramFraction => {
            // Only native histograms have these; float samples give nothing.
            let vi = if func == Func::HistogramFraction {
                2
            } else {
                0
            };
            for i in 0..vi {
                scalar_arg(ctx, args, i, grid)?;
            }
            let input = vector_arg(ctx, args, vi, grid)?;
            ctx.release(held(&input));
            Val::Vector(Vec::new())
        }
        Func::LabelReplace => {
            let input = vector_arg(ctx, args, 0, grid)?;
            let (dst, repl, src, re) = (
                string_arg(args, 1)?,
                string_arg(args, 2)?,
                string_arg(args, 3)?,
                string_arg(args, 4)?,
            );
            let relabel = instant_fns::label_replace(dst, repl, src, re)?;
            Val::Vector(map_points(ctx, input, grid, relabel, |_, v| Some(v))?)
        }
        Func::LabelJoin => {
            let input = vector_arg(ctx, args, 0, grid)?;
            let dst = string_arg(args, 1)?;
            let sep = string_arg(args, 2)?;
            let mut srcs = Vec::new();
            for i in 3..args.len() {
                srcs.push(string_arg(args, i)?.to_string());
            }
            let relabel = instant_fns::label_join(dst, sep, srcs)?;
            Val::Vector(map_points(ctx, input, grid, relabel, |_, v| Some(v))?)
        }
        Func::DaysInMonth
        | Func::DayOfMonth
        | Func::DayOfWeek
        | Func::DayOfYear
        | Func::Hour
        | Func::Minute
        | Func::Month
        | Func::Year => {
            let part = instant_fns::date_part(func);
            if args.is_empty() {
                ctx.add_samples(grid.len())?;
                Val::Vector(vec![Series {
                    labels: Labels::default(),
                    points: grid.times().map(|t| (t, part(t / 1000))).collect(),
                }])
            } else {
                let input = vector_arg(ctx, args, 0, grid)?;
                Val::Vector(map_points(ctx, input, grid, drop_name, |_, v| {
                    Some(part(instant_fns::go_float_to_i64(v)))
                })?)
            }
        }
        _ => {
            return Err(PromError::internal(format!(
                "function {} is not evaluated here",
                func.name()
            )));
        }
    })
}

/// Go's `sort.Sort` with `less`, as `sort` / `sort_desc` use it: insertion sort for up to 12
/// elements (ties keep their order, as in Go), a stable sort beyond.
pub(crate) fn go_sort<T>(items: &mut [T], less: impl Fn(&T, &T) -> bool) {
    if items.len() <= 12 {
        for i in 1..items.len() {
            let mut j = i;
            while j > 0 {
                let (Some(a), Some(b)) = (items.get(j), items.get(j - 1)) else {
                    break;
                };
                if !less(a, b) {
                    break;
                }
                items.swap(j, j - 1);
                j -= 1;
            }
        }
    } else {
        items.sort_by(|a, b| {
            if less(a, b) {
                std::cmp::Ordering::Less
            } else if less(b, a) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
    }
}

/// A per-step scalar from the step time.
fn steps(ctx: &mut Ctx<'_>, grid: Grid, f: impl Fn(i64) -> f64) -> Result<Vec<f64>, PromError> {
    ctx.add_samples(grid.len())?;
    Ok(grid.times().map(f).collect())
}

/// Go's `math.Max` / `math.Min`: an infinity in the direction wins, then NaN, and signed
/// zeros are ordered.
trait GoMinMax {
    fn max_go(self, other: f64) -> f64;
    fn min_go(self, other: f64) -> f64;
}

impl GoMinMax for f64 {
    fn max_go(self, other: f64) -> f64 {
        if self == f64::INFINITY || other == f64::INFINITY {
            return f64::INFINITY;
        }
        if self.is_nan() || other.is_nan() {
            return f64::NAN;
        }
        if self == 0.0 && other == 0.0 {
            return if self.is_sign_negative() { other } else { self };
        }
        if self > other { self } else { other }
    }

    fn min_go(self, other: f64) -> f64 {
        if self == f64::NEG_INFINITY || other == f64::NEG_INFINITY {
            return f64::NEG_INFINITY;
        }
        if self.is_nan() || other.is_nan() {
            return f64::NAN;
        }
        if self == 0.0 && other == 0.0 {
            return if self.is_sign_negative() { self } else { other };
        }
        if self < other { self } else { other }
    }
}
