//! The LogQL syntax tree: what [`super::parse`] builds and the evaluator walks.

use regex::Regex;

/// A whole LogQL query.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A log query: a stream selector and its pipeline.
    Log(LogExpr),
    /// A range aggregation over log lines (`count_over_time({…}[5m])`).
    Range(RangeAgg),
    /// A vector aggregation (`sum by (level) (…)`).
    Agg(Box<VectorAgg>),
    /// A binary operation between two metric expressions or numbers.
    Binary(Box<Binary>),
    /// A number literal.
    Number(f64),
    /// `vector(n)`: one series with no labels.
    Vector(f64),
}

impl Expr {
    /// True for queries that answer with samples, not lines.
    pub fn is_metric(&self) -> bool {
        !matches!(self, Expr::Log(_))
    }
}

/// A stream selector with its pipeline stages.
#[derive(Debug, Clone)]
pub struct LogExpr {
    /// The `{…}` matchers.
    pub matchers: Vec<Matcher>,
    /// The stages after it, in order.
    pub stages: Vec<Stage>,
}

/// How a matcher or a string label filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `=~`, anchored at both ends as Prometheus and Loki anchor it.
    Re,
    /// `!~`
    Nre,
}

/// `name op "value"`.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Comparison.
    pub op: MatchOp,
    /// The value as written (the pattern for `=~` and `!~`).
    pub value: String,
    /// The compiled, anchored pattern for `=~` and `!~`.
    pub re: Option<Regex>,
}

impl Matcher {
    /// Whether a label value (None: the label is absent, read as empty) matches.
    pub fn matches(&self, v: Option<&str>) -> bool {
        let v = v.unwrap_or("");
        match self.op {
            MatchOp::Eq => v == self.value,
            MatchOp::Ne => v != self.value,
            MatchOp::Re => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::Nre => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

/// A line filter's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOp {
    /// `|=`: the line contains the text.
    Contains,
    /// `!=`: it does not.
    NotContains,
    /// `|~`: the pattern matches somewhere in the line.
    Matches,
    /// `!~`: it does not.
    NotMatches,
}

/// One alternative of a line filter (`|= "a" or "b"`).
#[derive(Debug, Clone)]
pub struct LineValue {
    /// The text or pattern as written.
    pub text: String,
    /// The compiled pattern for `|~` and `!~` (unanchored, as Loki's).
    pub re: Option<Regex>,
}

/// Comparison of a label filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=` or `==`
    Eq,
    /// `!=`
    Ne,
    /// `=~`
    Re,
    /// `!~`
    Nre,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

/// The right side of a label filter.
#[derive(Debug, Clone)]
pub enum FilterValue {
    /// A string (`"…"` or `` `…` ``); with `=~`/`!~`, its compiled anchored pattern.
    Text(String, Option<Regex>),
    /// A number, compared as a float.
    Number(f64),
    /// A duration (`250ms`), compared in seconds against values such as `1.5s` or `200ms`.
    Duration(f64),
}

/// A label filter expression (`| status >= 500 and method="GET"`).
#[derive(Debug, Clone)]
pub enum LabelFilter {
    /// One comparison.
    Cmp {
        /// Label name.
        name: String,
        /// Operator.
        op: CmpOp,
        /// Right side.
        value: FilterValue,
    },
    /// Both hold (`and`, `,` or a space between filters).
    And(Box<LabelFilter>, Box<LabelFilter>),
    /// Either holds.
    Or(Box<LabelFilter>, Box<LabelFilter>),
}

/// One piece of a `line_format` template.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePart {
    /// Text copied as it is.
    Text(String),
    /// `{{.name}}`: a label's value (empty when absent).
    Label(String),
    /// `{{__line__}}`: the current line.
    Line,
}

/// One pipeline stage.
#[derive(Debug, Clone)]
pub enum Stage {
    /// A line filter with its alternatives (any one matching passes for `|=`/`|~`; none may
    /// match for `!=`/`!~`).
    Line {
        /// Operator.
        op: LineOp,
        /// Alternatives.
        values: Vec<LineValue>,
    },
    /// `| json`, with `name="path"` extractions or none (every field, flattened).
    Json(Vec<(String, String)>),
    /// `| logfmt`.
    Logfmt,
    /// `| <label filter>`.
    Filter(LabelFilter),
    /// `| line_format "…"`.
    LineFormat(Vec<TemplatePart>),
    /// `| drop a, b="v"`: removes labels (a name alone, or only where it has that value).
    Drop(Vec<(String, Option<String>)>),
    /// `| keep a, b`: keeps only these labels.
    Keep(Vec<String>),
    /// `| decolorize`: removes ANSI colour sequences from the line.
    Decolorize,
}

/// Range aggregation functions over log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeFn {
    /// Lines in the window.
    CountOverTime,
    /// Lines per second in the window.
    Rate,
    /// Bytes of the lines in the window.
    BytesOverTime,
    /// Bytes per second.
    BytesRate,
    /// 1 when the window has a line (for `absent_over_time`, the inverse is computed later).
    AbsentOverTime,
}

/// `count_over_time({…} | … [5m] offset 1m)`.
#[derive(Debug, Clone)]
pub struct RangeAgg {
    /// Function.
    pub func: RangeFn,
    /// The log query it reads.
    pub log: LogExpr,
    /// Window, nanoseconds.
    pub range_ns: u64,
    /// `offset`, nanoseconds.
    pub offset_ns: u64,
}

/// Vector aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    /// `sum`
    Sum,
    /// `avg`
    Avg,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `count`
    Count,
    /// `stddev`
    Stddev,
    /// `stdvar`
    Stdvar,
    /// `topk`
    Topk,
    /// `bottomk`
    Bottomk,
}

/// `by (…)` or `without (…)`.
#[derive(Debug, Clone, Default)]
pub struct Grouping {
    /// True for `without`.
    pub without: bool,
    /// The labels.
    pub labels: Vec<String>,
}

/// `sum by (level) (…)`, `topk(5, …)`.
#[derive(Debug, Clone)]
pub struct VectorAgg {
    /// Operator.
    pub op: AggOp,
    /// Grouping; None aggregates everything into one series.
    pub grouping: Option<Grouping>,
    /// `k` of `topk`/`bottomk`.
    pub param: Option<f64>,
    /// What it aggregates.
    pub inner: Expr,
}

/// Binary operators, PromQL's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
}

impl BinOp {
    /// True for the comparison operators.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Ge | BinOp::Lt | BinOp::Le
        )
    }

    /// True for the set operators.
    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }
}

/// `a op b`.
#[derive(Debug, Clone)]
pub struct Binary {
    /// Operator.
    pub op: BinOp,
    /// `bool` after a comparison: answer 0/1 instead of filtering.
    pub bool_mod: bool,
    /// Left side.
    pub lhs: Expr,
    /// Right side.
    pub rhs: Expr,
}
