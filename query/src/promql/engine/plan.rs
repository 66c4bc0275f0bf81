//! The engine's own form of a parsed query: the `promql-parser` AST turned into a small tree
//! with times in milliseconds, matchers ready for the store, `@ start()` / `@ end()` resolved,
//! parentheses dropped and Prometheus 2.42's type rules checked.

use super::functions::Func;
use crate::promql::PromError;
use promql_parser::label::MatchOp as ParserMatchOp;
use promql_parser::parser::{
    AtModifier, Expr, LabelModifier, Offset, VectorMatchCardinality, VectorSelector,
};
use skein_model::metric::Labels;
use skein_store::tsdb::{MatchOp, Matcher};
use std::time::{Duration, SystemTime};

/// The deepest expression tree the engine evaluates (its evaluation recurses).
const MAX_DEPTH: usize = 500;

/// The type of a PromQL expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueType {
    Scalar,
    Vector,
    Matrix,
    String,
}

impl ValueType {
    /// The name Prometheus uses in messages.
    pub(crate) fn documented(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
        }
    }
}

/// A series selector.
#[derive(Debug, Clone)]
pub(crate) struct Selector {
    /// The matchers, the metric name included as `__name__`.
    pub matchers: Vec<Matcher>,
    /// The labels `absent()` gives when nothing matches.
    pub absent_labels: Labels,
    /// `offset` (ms; negative looks ahead).
    pub offset: i64,
    /// `@` time (ms), `start()` and `end()` resolved.
    pub at: Option<i64>,
}

/// An aggregation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Quantile,
    CountValues,
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    /// `==`, `!=`, `>`, `<`, `>=`, `<=`.
    pub(crate) fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le
        )
    }

    /// `and`, `or`, `unless`.
    pub(crate) fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }

    /// Arithmetic operators drop the metric name (`atan2` and comparisons keep it).
    pub(crate) fn drops_name(self) -> bool {
        matches!(
            self,
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Pow
        )
    }
}

/// How the two sides of a vector–vector operation match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

/// Vector matching of a binary operation.
#[derive(Debug, Clone)]
pub(crate) struct Matching {
    pub card: Card,
    /// `on(...)` (true) or `ignoring(...)` (false).
    pub on: bool,
    /// The labels of `on` / `ignoring`, sorted.
    pub labels: Vec<String>,
    /// The extra labels of `group_left(...)` / `group_right(...)`.
    pub include: Vec<String>,
}

/// An expression node.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Number(f64),
    Str(String),
    /// An instant vector selector.
    Vector(Selector),
    /// A range vector selector.
    Matrix {
        sel: Selector,
        range: i64,
    },
    Subquery {
        expr: Box<Node>,
        range: i64,
        step: Option<i64>,
        offset: i64,
        at: Option<i64>,
    },
    Call {
        func: Func,
        args: Vec<Node>,
    },
    Aggregate {
        op: AggOp,
        param: Option<Box<Node>>,
        expr: Box<Node>,
        /// Sorted label names of `by` / `without`.
        grouping: Vec<String>,
        without: bool,
    },
    Neg(Box<Node>),
    Binary {
        op: BinOp,
        lhs: Box<Node>,
        rhs: Box<Node>,
        return_bool: bool,
        matching: Matching,
    },
}

impl Node {
    /// The expression's type.
    pub(crate) fn value_type(&self) -> ValueType {
        match self {
            Node::Number(_) => ValueType::Scalar,
            Node::Str(_) => ValueType::String,
            Node::Vector(_) | Node::Aggregate { .. } => ValueType::Vector,
            Node::Matrix { .. } | Node::Subquery { .. } => ValueType::Matrix,
            Node::Call { func, .. } => func.return_type(),
            Node::Neg(e) => e.value_type(),
            Node::Binary { lhs, rhs, .. } => {
                if lhs.value_type() == ValueType::Scalar && rhs.value_type() == ValueType::Scalar {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
        }
    }
}

/// Times a plan is made for: what `start()` and `end()` stand for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueryTimes {
    pub start: i64,
    pub end: i64,
}

/// Parses a query and turns it into a plan.
pub(crate) fn plan(query: &str, times: QueryTimes) -> Result<Node, PromError> {
    super::functions::register_parser_functions();
    let expr = promql_parser::parser::parse(query)
        .map_err(|m| PromError::bad_data(prometheus_wording(m)))?;
    convert(&expr, times, 0)
}

/// Rewrites the parser's messages that word things differently from Prometheus.
fn prometheus_wording(message: String) -> String {
    let type_name = |t: &str| match t {
        "vector" => "instant vector".to_string(),
        "matrix" => "range vector".to_string(),
        other => other.to_string(),
    };
    // "expected type vector in call to function 'f', got matrix"
    if let Some(rest) = message.strip_prefix("expected type ")
        && let Some((want, rest)) = rest.split_once(" in call to function '")
        && let Some((name, got)) = rest.split_once("', got ")
    {
        return format!(
            "expected type {} in call to function \"{name}\", got {}",
            type_name(want),
            type_name(got)
        );
    }
    message.replace(
        "an vector selector or matrix selector",
        "an instant vector selector or range vector selector",
    )
}

fn ms_of_duration(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn ms_of_offset(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => ms_of_duration(d),
        Some(Offset::Neg(d)) => ms_of_duration(d).saturating_neg(),
    }
}

fn ms_of_at(at: &Option<AtModifier>, times: QueryTimes) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(times.start),
        Some(AtModifier::End) => Some(times.end),
        Some(AtModifier::At(t)) => Some(match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => ms_of_duration(&d),
            Err(e) => ms_of_duration(&e.duration()).saturating_neg(),
        }),
    }
}

fn selector(vs: &VectorSelector, times: QueryTimes) -> Result<Selector, PromError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(PromError::bad_data(
            "\"or\" in label matchers is not supported by Prometheus 2.42",
        ));
    }
    let mut matchers = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    let mut absent: Vec<(String, String)> = Vec::new();
    let mut has: Vec<String> = Vec::new();
    let mut any_non_empty = false;
    if let Some(name) = &vs.name {
        matchers.push(Matcher::new("__name__", MatchOp::Eq, name).map_err(PromError::bad_data)?);
        any_non_empty |= !name.is_empty();
    }
    for m in &vs.matchers.matchers {
        let op = match m.op {
            ParserMatchOp::Equal => MatchOp::Eq,
            ParserMatchOp::NotEqual => MatchOp::Ne,
            ParserMatchOp::Re(_) => MatchOp::Re,
            ParserMatchOp::NotRe(_) => MatchOp::NotRe,
        };
        let matcher = Matcher::new(&m.name, op, &m.value).map_err(PromError::bad_data)?;
        any_non_empty |= !matcher.matches(&Labels::default());
        // absent(): equality matchers give labels, any other matcher of the same name
        // (or a second equality) removes it, in the matchers' order.
        if m.name != "__name__" {
            if op == MatchOp::Eq && !has.contains(&m.name) {
                absent.push((m.name.clone(), m.value.clone()));
                has.push(m.name.clone());
            } else {
                absent.retain(|(k, _)| *k != m.name);
            }
        }
        matchers.push(matcher);
    }
    if !any_non_empty {
        return Err(PromError::bad_data(
            "vector selector must contain at least one non-empty matcher",
        ));
    }
    Ok(Selector {
        matchers,
        absent_labels: Labels::from_pairs(absent),
        offset: ms_of_offset(&vs.offset),
        at: ms_of_at(&vs.at, times),
    })
}

fn label_list(l: &promql_parser::label::Labels) -> Vec<String> {
    let mut v = l.labels.clone();
    v.sort();
    v.dedup();
    v
}

fn convert(expr: &Expr, times: QueryTimes, depth: usize) -> Result<Node, PromError> {
    if depth > MAX_DEPTH {
        return Err(PromError::bad_data(format!(
            "query is nested more than {MAX_DEPTH} levels deep"
        )));
    }
    let d = depth + 1;
    Ok(match expr {
        Expr::NumberLiteral(n) => Node::Number(n.val),
        Expr::StringLiteral(s) => Node::Str(s.val.clone()),
        Expr::Paren(p) => convert(&p.expr, times, d)?,
        Expr::VectorSelector(vs) => Node::Vector(selector(vs, times)?),
        Expr::MatrixSelector(ms) => Node::Matrix {
            sel: selector(&ms.vs, times)?,
            range: ms_of_duration(&ms.range),
        },
        Expr::Subquery(sq) => {
            let inner = convert(&sq.expr, times, d)?;
            if inner.value_type() != ValueType::Vector {
                return Err(PromError::bad_data(format!(
                    "subquery is only allowed on instant vector, got {} instead",
                    inner.value_type().documented()
                )));
            }
            let step = sq.step.as_ref().map(ms_of_duration);
            if step == Some(0) {
                return Err(PromError::bad_data("zero step in subquery"));
            }
            Node::Subquery {
                expr: Box::new(inner),
                range: ms_of_duration(&sq.range),
                step,
                offset: ms_of_offset(&sq.offset),
                at: ms_of_at(&sq.at, times),
            }
        }
        Expr::Unary(u) => {
            let inner = convert(&u.expr, times, d)?;
            match inner.value_type() {
                ValueType::Scalar | ValueType::Vector => {}
                t => {
                    return Err(PromError::bad_data(format!(
                        "unary expression only allowed on expressions of type scalar or instant vector, got \"{}\"",
                        t.documented()
                    )));
                }
            }
            match inner {
                Node::Number(v) => Node::Number(-v),
                other => Node::Neg(Box::new(other)),
            }
        }
        Expr::Call(call) => {
            let func = Func::from_name(call.func.name).ok_or_else(|| {
                PromError::bad_data(format!("unknown function with name \"{}\"", call.func.name))
            })?;
            let mut args = Vec::with_capacity(call.args.args.len());
            for a in &call.args.args {
                args.push(convert(a, times, d)?);
            }
            func.check_args(&args)?;
            Node::Call { func, args }
        }
        Expr::Aggregate(agg) => {
            let op = match agg.op.to_string().as_str() {
                "sum" => AggOp::Sum,
                "avg" => AggOp::Avg,
                "min" => AggOp::Min,
                "max" => AggOp::Max,
                "count" => AggOp::Count,
                "group" => AggOp::Group,
                "stddev" => AggOp::Stddev,
                "stdvar" => AggOp::Stdvar,
                "topk" => AggOp::Topk,
                "bottomk" => AggOp::Bottomk,
                "quantile" => AggOp::Quantile,
                "count_values" => AggOp::CountValues,
                other => {
                    return Err(PromError::bad_data(format!(
                        "aggregation \"{other}\" is not supported by Prometheus 2.42"
                    )));
                }
            };
            let expr = convert(&agg.expr, times, d)?;
            if expr.value_type() != ValueType::Vector {
                return Err(PromError::bad_data(format!(
                    "expected type instant vector in aggregation expression, got {}",
                    expr.value_type().documented()
                )));
            }
            let param = match &agg.param {
                Some(p) => Some(Box::new(convert(p, times, d)?)),
                None => None,
            };
            let want = match op {
                AggOp::Topk | AggOp::Bottomk | AggOp::Quantile => Some(ValueType::Scalar),
                AggOp::CountValues => Some(ValueType::String),
                _ => None,
            };
            if let Some(want) = want {
                let got = param.as_ref().map(|p| p.value_type());
                if got != Some(want) {
                    return Err(PromError::bad_data(format!(
                        "expected type {} in aggregation parameter, got {}",
                        want.documented(),
                        got.map(|t| t.documented()).unwrap_or("nothing")
                    )));
                }
            }
            let (grouping, without) = match &agg.modifier {
                None => (Vec::new(), false),
                Some(LabelModifier::Include(l)) => (label_list(l), false),
                Some(LabelModifier::Exclude(l)) => (label_list(l), true),
            };
            Node::Aggregate {
                op,
                param,
                expr: Box::new(expr),
                grouping,
                without,
            }
        }
        Expr::Binary(b) => {
            let op = match b.op.to_string().as_str() {
                "+" => BinOp::Add,
                "-" => BinOp::Sub,
                "*" => BinOp::Mul,
                "/" => BinOp::Div,
                "%" => BinOp::Mod,
                "^" => BinOp::Pow,
                "atan2" => BinOp::Atan2,
                "==" => BinOp::Eq,
                "!=" => BinOp::Ne,
                ">" => BinOp::Gt,
                "<" => BinOp::Lt,
                ">=" => BinOp::Ge,
                "<=" => BinOp::Le,
                "and" => BinOp::And,
                "or" => BinOp::Or,
                "unless" => BinOp::Unless,
                other => {
                    return Err(PromError::bad_data(format!(
                        "binary operator \"{other}\" is not supported"
                    )));
                }
            };
            let lhs = convert(&b.lhs, times, d)?;
            let rhs = convert(&b.rhs, times, d)?;
            let (lt, rt) = (lhs.value_type(), rhs.value_type());
            for t in [lt, rt] {
                if t != ValueType::Scalar && t != ValueType::Vector {
                    return Err(PromError::bad_data(
                        "binary expression must contain only scalar and instant vector types",
                    ));
                }
            }
            let mut matching = Matching {
                card: if op.is_set() {
                    Card::ManyToMany
                } else {
                    Card::OneToOne
                },
                on: false,
                labels: Vec::new(),
                include: Vec::new(),
            };
            let mut return_bool = false;
            if let Some(m) = &b.modifier {
                if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
                    return Err(PromError::bad_data(
                        "fill modifiers are not supported by Prometheus 2.42",
                    ));
                }
                return_bool = m.return_bool;
                match &m.matching {
                    Some(LabelModifier::Include(l)) => {
                        matching.on = true;
                        matching.labels = label_list(l);
                    }
                    Some(LabelModifier::Exclude(l)) => matching.labels = label_list(l),
                    None => {}
                }
                match &m.card {
                    VectorMatchCardinality::OneToOne | VectorMatchCardinality::ManyToMany => {}
                    VectorMatchCardinality::ManyToOne(l) => {
                        matching.card = Card::ManyToOne;
                        matching.include = l.labels.clone();
                    }
                    VectorMatchCardinality::OneToMany(l) => {
                        matching.card = Card::OneToMany;
                        matching.include = l.labels.clone();
                    }
                }
            }
            if op.is_set() && matching.card != Card::ManyToMany {
                return Err(PromError::bad_data(format!(
                    "no grouping allowed for \"{}\" operation",
                    b.op
                )));
            }
            if return_bool && !op.is_comparison() {
                return Err(PromError::bad_data(
                    "bool modifier can only be used on comparison operators",
                ));
            }
            if lt == ValueType::Scalar && rt == ValueType::Scalar {
                if op.is_comparison() && !return_bool {
                    return Err(PromError::bad_data(
                        "comparisons between scalars must use BOOL modifier",
                    ));
                }
                if op.is_set() {
                    return Err(PromError::bad_data(format!(
                        "set operator \"{}\" not allowed in binary scalar expression",
                        b.op
                    )));
                }
            } else if (lt == ValueType::Scalar || rt == ValueType::Scalar) && op.is_set() {
                return Err(PromError::bad_data(format!(
                    "set operator \"{}\" not allowed in binary scalar expression",
                    b.op
                )));
            }
            if (lt != ValueType::Vector || rt != ValueType::Vector)
                && (!matching.labels.is_empty() || !matching.include.is_empty())
            {
                return Err(PromError::bad_data(
                    "vector matching only allowed between instant vectors",
                ));
            }
            Node::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                return_bool,
                matching,
            }
        }
        Expr::Extension(_) => {
            return Err(PromError::bad_data(
                "extension expressions are not supported",
            ));
        }
    })
}

/// Whether the query orders its answer (`sort`, `sort_desc`, `topk`, `bottomk` anywhere):
/// then an instant query keeps the order evaluation gives, as Prometheus does (it keeps the
/// order of `topk(3, x) > 0` too).
pub(crate) fn keeps_order(node: &Node) -> bool {
    match node {
        Node::Call { func, args } => {
            matches!(func, Func::Sort | Func::SortDesc) || args.iter().any(keeps_order)
        }
        Node::Aggregate {
            op, param, expr, ..
        } => {
            matches!(op, AggOp::Topk | AggOp::Bottomk)
                || param.as_deref().is_some_and(keeps_order)
                || keeps_order(expr)
        }
        Node::Subquery { expr, .. } | Node::Neg(expr) => keeps_order(expr),
        Node::Binary { lhs, rhs, .. } => keeps_order(lhs) || keeps_order(rhs),
        Node::Number(_) | Node::Str(_) | Node::Vector(_) | Node::Matrix { .. } => false,
    }
}
