//! The types of alert rules: conditions, comparisons, errors, Skein's derived metric names,
//! and the bounds of a rule file. [`super::rules`] reads files into them.

use super::template::Template;
use skein_query::metrics::query::Agg;
use skein_store::tsdb::{MatchOp, Matcher};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
/// Most rules one file may hold.
pub const MAX_RULES_PER_FILE: usize = 1_000;
/// Largest rule file, in bytes (1 MiB).
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// Largest annotation template, in bytes (4 KiB).
pub const MAX_TEMPLATE_BYTES: usize = super::template::MAX_TEMPLATE_BYTES;

/// Range each evaluation reads when `window` is not given.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
/// How long a heartbeat or series may be missing when `after` is not given.
pub const DEFAULT_AFTER: Duration = Duration::from_secs(30);
/// How far back an absent series must have been seen when `lookback` is not given.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(3600);

/// Skein's own derived metric names, always known.
pub const DERIVED_METRICS: &[&str] = &[
    "skein.span.calls",
    "skein.span.errors",
    "skein.span.duration",
    "skein.span.duration_bucket",
    "skein.span.duration_sum",
    "skein.span.duration_count",
    "skein.span.duration.p50",
    "skein.span.duration.p90",
    "skein.span.duration.p95",
    "skein.span.duration.p99",
    "skein.edge.calls",
    "skein.edge.errors",
    "skein.edge.duration",
    "skein.edge.duration_bucket",
    "skein.edge.duration_sum",
    "skein.edge.duration_count",
    "skein.agent.up",
];

/// The offline check used by `skein rules check`: a name under `skein.span.`, `skein.edge.`
/// or `skein.agent.` must be one of [`DERIVED_METRICS`] (catches typos); any other name is
/// accepted.
pub fn offline_known(name: &str) -> bool {
    let ours = ["skein.span.", "skein.edge.", "skein.agent."]
        .iter()
        .any(|p| name.starts_with(p));
    !ours || DERIVED_METRICS.contains(&name)
}

/// One alert rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Rule name; the `alertname` label of its alerts.
    pub name: String,
    /// File it came from.
    pub file: PathBuf,
    /// 1-based line of its `name` key.
    pub line: usize,
    /// What makes it fire.
    pub condition: Condition,
    /// How long the condition must hold before the alert fires.
    pub for_: Duration,
    /// How long a firing alert keeps firing after the condition stops holding.
    pub keep_firing_for: Duration,
    /// Labels added to every alert of the rule.
    pub labels: BTreeMap<String, String>,
    /// Annotation templates, by annotation name.
    pub annotations: BTreeMap<String, Template>,
}

impl Rule {
    /// The condition's kind: "metric", "logs", "traces" or "absent".
    pub fn kind(&self) -> &'static str {
        match self.condition {
            Condition::Metric(_) => "metric",
            Condition::Logs(_) => "logs",
            Condition::Traces(_) => "traces",
            Condition::Absent(_) => "absent",
        }
    }

    /// One line of text for the condition, such as
    /// `rate(skein.span.errors{service=~"pay.*"}[1m]) by (service) / rate(skein.span.calls[1m]) > 0.05`.
    pub fn describe(&self) -> String {
        let (expr, when) = match &self.condition {
            Condition::Metric(c) => {
                let by: Vec<(bool, &str)> = c.by.iter().map(|l| (true, l.as_str())).collect();
                let mut s = format!("{}{}", describe_ref(&c.metric, c.window), by_clause(&by));
                if let Some(d) = &c.divide_by {
                    s = format!("{s} / {}", describe_ref(d, c.window));
                }
                (s, c.when)
            }
            Condition::Logs(c) => {
                let sel = [
                    c.service.as_ref().map(|s| format!("service={s:?}")),
                    c.min_severity
                        .map(|n| format!("severity>={}", severity_name(n))),
                    c.query.as_ref().map(|q| format!("query={q:?}")),
                ];
                let by = [(c.by_service, "service")];
                (count("logs", &sel, c.window, &by), c.when)
            }
            Condition::Traces(c) => {
                let sel = [
                    c.service.as_ref().map(|s| format!("service={s:?}")),
                    c.operation.as_ref().map(|o| format!("operation={o:?}")),
                    c.min_duration
                        .map(|d| format!("duration>={}", fmt_duration(d))),
                    c.errors_only.then(|| "error=true".to_string()),
                ];
                let by = [(c.by_service, "service"), (c.by_operation, "operation")];
                (count("spans", &sel, c.window, &by), c.when)
            }
            Condition::Absent(AbsentCond::Heartbeat { matchers, after }) => {
                let m = fmt_matchers(matchers);
                return format!("absent(heartbeat{m}) for {}", fmt_duration(*after));
            }
            Condition::Absent(AbsentCond::Series {
                metric,
                matchers,
                after,
                lookback,
            }) => {
                let (m, a, l) = (
                    fmt_matchers(matchers),
                    fmt_duration(*after),
                    fmt_duration(*lookback),
                );
                return format!("absent({metric}{m}) for {a} (seen within {l})");
            }
        };
        format!("{expr} {when}")
    }
}

/// What makes a rule fire.
#[derive(Debug, Clone)]
pub enum Condition {
    /// A metric (or a ratio of two) compared with a threshold.
    Metric(MetricCond),
    /// A count of log records compared with a threshold.
    Logs(LogCond),
    /// A count of spans compared with a threshold.
    Traces(TraceCond),
    /// Heartbeats or series that stopped arriving.
    Absent(AbsentCond),
}

/// A metric family, the series picked from it, and their aggregation.
#[derive(Debug, Clone)]
pub struct MetricRef {
    /// Metric family name.
    pub name: String,
    /// Conditions every series must pass.
    pub matchers: Vec<Matcher>,
    /// Aggregation.
    pub agg: Agg,
    /// Aggregation as written (lower case), for display.
    pub agg_name: String,
}

/// A metric condition: `agg(metric[window]) by (...) [/ agg(other[window])] OP threshold`.
#[derive(Debug, Clone)]
pub struct MetricCond {
    /// The numerator.
    pub metric: MetricRef,
    /// Range each evaluation reads.
    pub window: Duration,
    /// Labels to group by; empty for one group.
    pub by: Vec<String>,
    /// An optional denominator, read over the same window and groups.
    pub divide_by: Option<MetricRef>,
    /// The comparison that fires the rule.
    pub when: Compare,
}

/// A log condition: the number of matching records in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct LogCond {
    /// Only records of this service.
    pub service: Option<String>,
    /// Only records at or above this OTLP severity number.
    pub min_severity: Option<i32>,
    /// A full-text query the records must match.
    pub query: Option<String>,
    /// Range each evaluation counts.
    pub window: Duration,
    /// One count per service.
    pub by_service: bool,
    /// The comparison that fires the rule.
    pub when: Compare,
}

/// A trace condition: the number of matching spans in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceCond {
    /// Only spans of this service.
    pub service: Option<String>,
    /// Only spans with this name.
    pub operation: Option<String>,
    /// Only spans at least this long.
    pub min_duration: Option<Duration>,
    /// Only error spans.
    pub errors_only: bool,
    /// Range each evaluation counts.
    pub window: Duration,
    /// One count per service.
    pub by_service: bool,
    /// One count per operation.
    pub by_operation: bool,
    /// The comparison that fires the rule.
    pub when: Compare,
}

/// Something that stopped arriving.
#[derive(Debug, Clone)]
pub enum AbsentCond {
    /// Agents whose last heartbeat is older than `after`.
    Heartbeat {
        /// Conditions on the labels `agent` and `host`.
        matchers: Vec<Matcher>,
        /// How old the last heartbeat may be.
        after: Duration,
    },
    /// Series of a metric seen within `lookback` but with no sample for `after`.
    Series {
        /// Metric family name.
        metric: String,
        /// Conditions every series must pass.
        matchers: Vec<Matcher>,
        /// How long a series may go without a sample.
        after: Duration,
        /// How far back a series counts as expected.
        lookback: Duration,
    },
}

/// A comparison with a threshold, such as `> 0.05`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compare {
    /// The operator.
    pub op: CmpOp,
    /// The number compared with.
    pub threshold: f64,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }
}

impl Compare {
    /// Parses an operator (`>`, `>=`, `<`, `<=`, `==`, `!=`) and a finite number, such as
    /// `> 0.05`.
    pub fn parse(text: &str) -> Result<Compare, String> {
        let t = text.trim();
        let ops = [
            (">=", CmpOp::Ge),
            ("<=", CmpOp::Le),
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            (">", CmpOp::Gt),
            ("<", CmpOp::Lt),
        ];
        let (op, rest) = ops
            .iter()
            .find_map(|(tok, op)| t.strip_prefix(tok).map(|r| (*op, r)))
            .ok_or_else(|| {
                format!(
                    "when = {text:?}: start with one of >, >=, <, <=, ==, != and a number, as in \"> 0.05\""
                )
            })?;
        let num = rest.trim();
        match num.parse::<f64>() {
            Ok(threshold) if threshold.is_finite() => Ok(Compare { op, threshold }),
            _ => Err(format!(
                "when = {text:?}: {num:?} is not a finite number, as in \"> 0.05\""
            )),
        }
    }

    /// Whether `value` passes the comparison. NaN never does.
    pub fn holds(&self, value: f64) -> bool {
        if value.is_nan() {
            return false;
        }
        let t = self.threshold;
        match self.op {
            CmpOp::Gt => value > t,
            CmpOp::Ge => value >= t,
            CmpOp::Lt => value < t,
            CmpOp::Le => value <= t,
            CmpOp::Eq => value == t,
            CmpOp::Ne => value != t,
        }
    }
}

impl fmt::Display for Compare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.as_str(), self.threshold)
    }
}

/// An error in a rule file: file, 1-based line, and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct RuleError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line; 0 when the error is not on a line (such as a file that cannot be read).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl RuleError {
    pub(super) fn new(file: &Path, line: usize, message: impl Into<String>) -> RuleError {
        let (file, message) = (file.to_path_buf(), message.into());
        RuleError {
            file,
            line,
            message,
        }
    }
}

// ---- words for describe() and messages ----

/// Severity names, lowest first, as rules write them.
pub(super) const SEVERITY_NAMES: &str = "trace, debug, info, warn, error, fatal";

pub(super) fn severity_name(number: i32) -> String {
    let name = SEVERITY_NAMES.split(", ").nth(((number - 1) / 4) as usize);
    match name {
        Some(n) if number > 0 && (number - 1) % 4 == 0 => n.to_string(),
        _ => number.to_string(),
    }
}

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(super) fn fmt_duration(d: Duration) -> String {
    match d.is_zero() {
        true => "0s".to_string(),
        false => humantime::format_duration(d).to_string().replace(' ', ""),
    }
}

pub(super) fn braces(items: &[String]) -> String {
    match items.is_empty() {
        true => String::new(),
        false => format!("{{{}}}", items.join(", ")),
    }
}

pub(super) fn by_clause(by: &[(bool, &str)]) -> String {
    let on: Vec<&str> = by.iter().filter(|(on, _)| *on).map(|(_, l)| *l).collect();
    match on.is_empty() {
        true => String::new(),
        false => format!(" by ({})", on.join(", ")),
    }
}

pub(super) fn fmt_matchers(matchers: &[Matcher]) -> String {
    let op = |op| match op {
        MatchOp::Eq => "=",
        MatchOp::Ne => "!=",
        MatchOp::Re => "=~",
        MatchOp::NotRe => "!~",
    };
    let items: Vec<String> = matchers
        .iter()
        .map(|m| format!("{}{}{:?}", m.label, op(m.op), m.value))
        .collect();
    braces(&items)
}

pub(super) fn describe_ref(m: &MetricRef, window: Duration) -> String {
    let (matchers, w) = (fmt_matchers(&m.matchers), fmt_duration(window));
    format!("{}({}{matchers}[{w}])", m.agg_name, m.name)
}

pub(super) fn count(
    what: &str,
    sel: &[Option<String>],
    window: Duration,
    by: &[(bool, &str)],
) -> String {
    let sel: Vec<String> = sel.iter().flatten().cloned().collect();
    let (sel, w, by) = (braces(&sel), fmt_duration(window), by_clause(by));
    format!("count({what}{sel}[{w}]){by}")
}
