//! `GET /api/v1/metrics/query` and the names and labels routes: parameters, limits, which
//! stored series an aggregation reads, and the thin glue over [`MetricReads`].
//!
//! On a histogram family `x` (stored as `x_bucket{le}`, `x_sum`, `x_count`): percentiles read
//! the buckets, `rate`/`increase`/`count` read `x_count`, `sum` is the increase of `x_sum`,
//! `avg` is increase(`x_sum`) / increase(`x_count`). On every other family each aggregation
//! reads `x` itself. A stored name such as `x_count` may be queried directly as a plain series.
//!
//! Groups carry the `by` labels and also the labels that `label=value` matchers pin, which
//! every selected series shares.

use super::eval::{Grid, Grouped, Op, aggregate, bucket_quantiles, group, thousands};
use super::params::Params;
use crate::QueryError;
use crate::metric_reads::MetricReads;
use skein_model::metric::MetricKind;
use skein_model::metrics_api::{
    LabelValuesResponse, LabelsResponse, MetricNameInfo, MetricNamesResponse, MetricQueryResponse,
    ResultSeries,
};
use skein_store::StoreError;
use skein_store::tsdb::{MatchOp, Matcher, SelectedSeries};

/// Most points one series of an answer may have (steps in the range).
pub const MAX_POINTS_PER_SERIES: usize = 11_000;
/// Most stored series one read of a range query may select.
pub const MAX_SERIES: usize = 10_000;
/// Most points in a whole answer (groups × points, counted before empty windows are dropped).
pub const MAX_ANSWER_POINTS: usize = 2_000_000;
/// Most histogram cells (groups × buckets × points) a percentile of a histogram may sum into.
pub const MAX_HISTOGRAM_CELLS: usize = 8_000_000;
/// Most raw samples (by the chunks' count) a percentile of a gauge may sort.
pub const MAX_QUANTILE_SAMPLES: usize = 20_000_000;
/// Range when `start` is not given: 1 hour before `end`.
pub const DEFAULT_RANGE_MS: i64 = 3_600_000;
/// Least default step: 10 s.
pub const MIN_DEFAULT_STEP_MS: i64 = 10_000;
/// The default step aims at about this many points.
const DEFAULT_POINTS: i64 = 240;

/// An aggregation over a group's series per step window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Agg {
    /// Mean of every sample.
    Avg,
    /// Least sample.
    Min,
    /// Greatest sample.
    Max,
    /// Per series the last sample, summed.
    Sum,
    /// Series with a sample.
    Count,
    /// Counter increase per second, summed.
    Rate,
    /// Counter increase, summed.
    Increase,
    /// A percentile, as a fraction (0..1).
    Percentile(f64),
}

impl Agg {
    /// The aggregations, in words, for error messages.
    pub const VALID: &'static str = "avg, min, max, sum, count, rate, increase, or a percentile pNN such as p50, p90, p99 or p99.9";

    /// Parses `avg`, `min`, `max`, `sum`, `count`, `rate`, `increase`, `pNN` or `pNN.N`.
    pub fn parse(s: &str) -> Result<Agg, QueryError> {
        let t = s.trim().to_ascii_lowercase();
        let bad = || {
            QueryError::BadRequest(format!(
                "agg '{s}' is not an aggregation: use {}",
                Agg::VALID
            ))
        };
        Ok(match t.as_str() {
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "sum" => Agg::Sum,
            "count" => Agg::Count,
            "rate" => Agg::Rate,
            "increase" => Agg::Increase,
            _ => {
                let num = t.strip_prefix('p').ok_or_else(bad)?;
                let dots = num.chars().filter(|c| *c == '.').count();
                if num.is_empty()
                    || dots > 1
                    || num.starts_with('.')
                    || num.ends_with('.')
                    || !num.chars().all(|c| c.is_ascii_digit() || c == '.')
                {
                    return Err(bad());
                }
                let p: f64 = num.parse().map_err(|_| bad())?;
                if !(p > 0.0 && p < 100.0) {
                    return Err(QueryError::BadRequest(format!(
                        "percentile '{s}' must be above p0 and below p100, such as p50 or p99.9"
                    )));
                }
                Agg::Percentile(p / 100.0)
            }
        })
    }
}

/// A parsed range query.
#[derive(Debug, Clone)]
pub struct RangeQuery {
    /// Metric family (or a stored series name).
    pub name: String,
    /// Conditions every series must pass.
    pub matchers: Vec<Matcher>,
    /// Range start (ms).
    pub start: i64,
    /// Range end (ms).
    pub end: i64,
    /// Step (ms).
    pub step: i64,
    /// Aggregation.
    pub agg: Agg,
    /// Aggregation as asked (lower case), echoed in the answer.
    pub agg_name: String,
    /// Labels to group by; empty for one group.
    pub by: Vec<String>,
}

impl RangeQuery {
    /// Reads `name`, `match` (repeated), `start`, `end`, `step`, `agg` and `by` (comma
    /// separated, may repeat). Defaults: end now, start end − 1 h, step max(10 s, range/240)
    /// rounded up to whole seconds, agg avg.
    pub fn from_params(p: &Params, now_ns: u64) -> Result<RangeQuery, QueryError> {
        let name = p.get("name").ok_or_else(|| {
            QueryError::BadRequest(
                "name is required: the metric to query; /api/v1/metrics/names lists them".into(),
            )
        })?;
        let matchers = p
            .all("match")
            .map(|m| Matcher::parse(m).map_err(QueryError::BadRequest))
            .collect::<Result<Vec<_>, _>>()?;
        let (start, end) = p.range_ms(now_ns, DEFAULT_RANGE_MS)?;
        let step = match p.duration_ms("step")? {
            Some(s) => s,
            None => default_step(end - start),
        };
        let agg_name = p.get("agg").unwrap_or("avg").to_ascii_lowercase();
        let agg = Agg::parse(&agg_name)?;
        let mut by: Vec<String> = Vec::new();
        for l in p.all("by").flat_map(|v| v.split(',')).map(str::trim) {
            if !l.is_empty() && !by.iter().any(|b| b == l) {
                by.push(l.to_string());
            }
        }
        Ok(RangeQuery {
            name: name.to_string(),
            matchers,
            start,
            end,
            step,
            agg,
            agg_name,
            by,
        })
    }

    /// The points of the answer; too many is an error that says which step would do.
    pub fn grid(&self) -> Result<Grid, QueryError> {
        let grid = Grid::aligned(self.start, self.end, self.step);
        if grid.points > MAX_POINTS_PER_SERIES {
            let range = (self.end - self.start).max(1);
            // range / step multiples, one more at the start and one at the end.
            let secs = ceil_div(ceil_div(range, MAX_POINTS_PER_SERIES as i64 - 2), 1000);
            return Err(QueryError::BadRequest(format!(
                "step too small for this range: {} points; the most is {}; use step={}s or more",
                thousands(grid.points),
                thousands(MAX_POINTS_PER_SERIES),
                secs.max(1)
            )));
        }
        Ok(grid)
    }
}

/// max(10 s, range / 240), rounded up to whole seconds.
pub fn default_step(range_ms: i64) -> i64 {
    let s = MIN_DEFAULT_STEP_MS.max(ceil_div(range_ms.max(0), DEFAULT_POINTS));
    ceil_div(s, 1000) * 1000
}

/// `a / b` rounded up, for `a >= 0`, `b > 0`.
fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

/// The stored series an aggregation reads from a family.
pub fn stored_names(family: &str, histogram: bool, agg: Agg) -> Result<Vec<String>, QueryError> {
    if !histogram {
        return Ok(vec![family.to_string()]);
    }
    Ok(match agg {
        Agg::Percentile(_) => vec![format!("{family}_bucket")],
        Agg::Avg => vec![format!("{family}_sum"), format!("{family}_count")],
        Agg::Sum => vec![format!("{family}_sum")],
        Agg::Rate | Agg::Increase | Agg::Count => vec![format!("{family}_count")],
        Agg::Min | Agg::Max => {
            return Err(QueryError::BadRequest(format!(
                "min and max need raw samples and histogram '{family}' keeps only buckets: use avg or a percentile such as p99, or query {family}_sum or {family}_count as plain series"
            )));
        }
    })
}

/// Evaluates an aggregation over selected series (those of `family`, read as
/// [`stored_names`] says; other series are ignored) on a grid, grouped by `by`.
pub fn evaluate(
    family: &str,
    histogram: bool,
    agg: Agg,
    by: &[String],
    grid: &Grid,
    series: &[SelectedSeries],
) -> Result<Vec<ResultSeries>, QueryError> {
    stored_names(family, histogram, agg)?;
    let pick = |suffix: &str| -> Result<Grouped<'_>, QueryError> {
        let name = format!("{family}{suffix}");
        let g = group(series.iter().filter(|s| s.name == name), by);
        if g.series.len() > MAX_SERIES {
            return Err(too_many_series(g.series.len()));
        }
        let answer = g.groups.len().saturating_mul(grid.points);
        if answer > MAX_ANSWER_POINTS {
            return Err(QueryError::BadRequest(format!(
                "this query could answer {} points ({} series × {} points); the most is {}: use a larger step, a shorter range, fewer by labels or more match= conditions",
                thousands(answer),
                thousands(g.groups.len()),
                thousands(grid.points),
                thousands(MAX_ANSWER_POINTS)
            )));
        }
        Ok(g)
    };
    let table = if histogram {
        match agg {
            Agg::Percentile(q) => {
                bucket_quantiles(&pick("_bucket")?, grid, &[q], MAX_HISTOGRAM_CELLS)?
                    .pop()
                    .unwrap_or_default()
            }
            Agg::Avg => {
                let sum = aggregate(Op::Increase, &pick("_sum")?, grid)?;
                let count = aggregate(Op::Increase, &pick("_count")?, grid)?;
                sum.divide(&count)
            }
            Agg::Sum => aggregate(Op::Increase, &pick("_sum")?, grid)?,
            Agg::Rate => aggregate(Op::Rate, &pick("_count")?, grid)?,
            Agg::Increase => aggregate(Op::Increase, &pick("_count")?, grid)?,
            Agg::Count => aggregate(Op::Count, &pick("_count")?, grid)?,
            Agg::Min | Agg::Max => return Ok(Vec::new()),
        }
    } else {
        let g = pick("")?;
        let op = match agg {
            Agg::Avg => Op::Avg,
            Agg::Min => Op::Min,
            Agg::Max => Op::Max,
            Agg::Sum => Op::SumLast,
            Agg::Count => Op::Count,
            Agg::Rate => Op::Rate,
            Agg::Increase => Op::Increase,
            Agg::Percentile(q) => {
                let samples: usize = g.series.iter().map(|s| s.sample_count_hint()).sum();
                if samples > MAX_QUANTILE_SAMPLES {
                    return Err(QueryError::BadRequest(format!(
                        "a percentile of '{family}' would sort about {} samples; the most is {}: use a shorter range or more match= conditions",
                        thousands(samples),
                        thousands(MAX_QUANTILE_SAMPLES)
                    )));
                }
                Op::Quantile(q)
            }
        };
        aggregate(op, &g, grid)?
    };
    Ok(table.into_series(grid))
}

fn too_many_series(n: usize) -> QueryError {
    QueryError::BadRequest(format!(
        "{} series match; a metrics query reads at most {}: add match= conditions to narrow it",
        thousands(n),
        thousands(MAX_SERIES)
    ))
}

/// What a query name refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Family name, or the stored series name when a histogram part is asked for directly.
    pub family: String,
    /// True for a histogram family read through its buckets, sum and count.
    pub histogram: bool,
}

/// Finds a family (or a histogram or summary part such as `x_count`); unknown is 404.
pub fn resolve(tsdb: &dyn MetricReads, name: &str) -> Result<Target, QueryError> {
    if let Some(info) = tsdb.metric(name) {
        return Ok(Target {
            family: info.name,
            histogram: info.kind == MetricKind::Histogram,
        });
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && let Some(info) = tsdb.metric(base)
            && matches!(info.kind, MetricKind::Histogram | MetricKind::Summary)
        {
            return Ok(Target {
                family: name.to_string(),
                histogram: false,
            });
        }
    }
    Err(unknown_metric(name))
}

fn unknown_metric(name: &str) -> QueryError {
    QueryError::NotFound(format!(
        "no metric named '{name}'; /api/v1/metrics/names lists the metrics there are"
    ))
}

/// Selects series; too many is a 400 that says how to narrow.
pub fn select(
    tsdb: &dyn MetricReads,
    name: &str,
    matchers: &[Matcher],
    start: i64,
    end: i64,
    max_series: usize,
) -> Result<Vec<SelectedSeries>, QueryError> {
    tsdb.select(name, matchers, start, end, max_series)
        .map_err(|e| match e {
            StoreError::BadQuery(m) => QueryError::BadRequest(format!(
                "{m}; a metrics query reads at most {} series: add match= conditions to narrow it",
                thousands(max_series)
            )),
            other => other.into(),
        })
}

/// Runs a range query against the store.
pub fn run(tsdb: &dyn MetricReads, q: &RangeQuery) -> Result<MetricQueryResponse, QueryError> {
    let grid = q.grid()?;
    let target = resolve(tsdb, &q.name)?;
    let names = stored_names(&target.family, target.histogram, q.agg)?;
    let mut series = Vec::new();
    if grid.points > 0 {
        for n in &names {
            series.extend(select(
                tsdb,
                n,
                &q.matchers,
                grid.select_start(),
                grid.last(),
                MAX_SERIES,
            )?);
        }
    }
    let mut out = evaluate(
        &target.family,
        target.histogram,
        q.agg,
        &q.by,
        &grid,
        &series,
    )?;
    add_pinned_labels(&mut out, &q.matchers);
    Ok(MetricQueryResponse {
        name: q.name.clone(),
        agg: q.agg_name.clone(),
        start_ms: grid.first,
        end_ms: grid.last(),
        step_ms: grid.step,
        series: out,
    })
}

/// Adds to every answer series the labels that `label=value` matchers pin (every selected
/// series has them, so the groups and values do not change; the answer just says which
/// series it covers), and sorts the series again.
pub fn add_pinned_labels(series: &mut [ResultSeries], matchers: &[Matcher]) {
    let pinned: Vec<&Matcher> = matchers
        .iter()
        .filter(|m| m.op == MatchOp::Eq && !m.value.is_empty())
        .collect();
    if pinned.is_empty() {
        return;
    }
    for s in series.iter_mut() {
        for m in &pinned {
            s.labels = s.labels.with(&m.label, &m.value);
        }
    }
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
}

/// Every metric family.
pub fn names(tsdb: &dyn MetricReads) -> MetricNamesResponse {
    MetricNamesResponse {
        metrics: tsdb
            .metrics()
            .into_iter()
            .map(|m| MetricNameInfo {
                name: m.name,
                kind: m.kind.as_str().to_string(),
                unit: m.unit,
                series: m.series,
            })
            .collect(),
    }
}

/// Label names of a family (or of every series); an unknown family is 404.
pub fn labels(tsdb: &dyn MetricReads, name: Option<&str>) -> Result<LabelsResponse, QueryError> {
    if let Some(n) = name
        && tsdb.metric(n).is_none()
    {
        return Err(unknown_metric(n));
    }
    Ok(LabelsResponse {
        labels: tsdb.label_names(name),
    })
}

/// Values of a label in a family (or in every series); an unknown family is 404.
pub fn label_values(
    tsdb: &dyn MetricReads,
    label: &str,
    name: Option<&str>,
) -> Result<LabelValuesResponse, QueryError> {
    if let Some(n) = name
        && tsdb.metric(n).is_none()
    {
        return Err(unknown_metric(n));
    }
    Ok(LabelValuesResponse {
        label: label.to_string(),
        values: tsdb.label_values(label, name),
    })
}
