//! The PromQL engine: parses a query with `promql-parser` and evaluates it over a
//! [`SeriesSource`] with Prometheus 2.42's semantics, as an instant query (one time) or a range
//! query (every step from start to end).
//!
//! How it evaluates: the query becomes a small plan ([`plan`]); every node is then evaluated
//! once for the whole grid of evaluation times ([`eval`]), so each selector reads its series
//! once for the whole range (plus lookback, range and offset) and range functions walk their
//! windows with moving indices ([`over_time`]). Aggregations ([`aggregate`]), binary
//! operators ([`binary`]) and functions ([`functions`], [`instant_fns`], [`histogram`]) work
//! step by step on series of points.
//!
//! Limits ([`Limits`]): steps of a range query, samples held at once, series per selector and
//! the time a query may take; each gives Prometheus's error when passed.

mod aggregate;
mod binary;
mod eval;
mod functions;
mod histogram;
mod instant_fns;
mod over_time;
mod plan;
mod selectors;
mod series;

#[cfg(test)]
mod tests_aggregate;
#[cfg(test)]
mod tests_binary;
#[cfg(test)]
mod tests_functions;
#[cfg(test)]
mod tests_selectors;
#[cfg(test)]
mod tests_support;

use super::PromError;
use super::source::SeriesSource;
use super::value::{QueryValue, RangeSeries, Sample};
use eval::Ctx;
use plan::{QueryTimes, ValueType};
use series::{Grid, Series, Val};
use std::sync::Arc;
use std::time::Duration;

/// Bounds on what one query may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Samples held in memory at once (Prometheus's `--query.max-samples`, 50,000,000).
    pub max_samples: usize,
    /// Series one selector may match (100,000).
    pub max_series: usize,
    /// Steps of a range query (Prometheus's API allows 11,000 points per series).
    pub max_steps: usize,
    /// Time a query may take (Prometheus's `--query.timeout`, 2 minutes).
    pub timeout: Duration,
    /// How far back an instant selector looks for a sample (ms; Prometheus's
    /// `--query.lookback-delta`, 5 minutes).
    pub lookback_ms: i64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_samples: 50_000_000,
            max_series: 100_000,
            max_steps: 11_000,
            timeout: Duration::from_secs(120),
            lookback_ms: 300_000,
        }
    }
}

/// Step of a subquery written without one, as Prometheus's default global evaluation
/// interval (1 minute).
pub const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// A PromQL engine over a series source.
pub struct Engine {
    source: Arc<dyn SeriesSource>,
    limits: Limits,
    subquery_step_ms: i64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("limits", &self.limits)
            .field("subquery_step_ms", &self.subquery_step_ms)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine reading from `source` within `limits`.
    pub fn new(source: Arc<dyn SeriesSource>, limits: Limits) -> Engine {
        Engine {
            source,
            limits,
            subquery_step_ms: DEFAULT_SUBQUERY_STEP_MS,
        }
    }

    /// Sets the step of subqueries written without one (Prometheus uses its global
    /// `evaluation_interval`, 1 minute by default, for instant and range queries alike).
    pub fn with_subquery_step(mut self, step_ms: i64) -> Engine {
        self.subquery_step_ms = step_ms.max(1);
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Evaluates `query` at `t_ms`. An instant vector comes back sorted by labels, unless the
    /// query uses `sort`, `sort_desc`, `topk` or `bottomk`: then it keeps the order evaluation
    /// gives, which is Prometheus's (e.g. highest first for `topk`, also under `topk(..) > 0`).
    pub fn instant(&self, query: &str, t_ms: i64) -> Result<QueryValue, PromError> {
        let node = plan::plan(
            query,
            QueryTimes {
                start: t_ms,
                end: t_ms,
            },
        )?;
        let mut ctx = Ctx::new(self.source.as_ref(), &self.limits, self.subquery_step_ms);
        let val = eval::eval(&mut ctx, &node, Grid::instant(t_ms))?;
        Ok(match val {
            Val::Scalar(s) => QueryValue::Scalar(t_ms, s.get(0)),
            Val::Str(s) => QueryValue::String(t_ms, s),
            Val::Vector(series) => {
                let mut samples: Vec<Sample> = series
                    .into_iter()
                    .filter_map(|s| {
                        let v = s.points.first()?.1;
                        Some(Sample {
                            labels: s.labels,
                            t: t_ms,
                            v,
                        })
                    })
                    .collect();
                if !plan::keeps_order(&node) {
                    samples.sort_by(|a, b| a.labels.cmp(&b.labels));
                }
                QueryValue::Vector(samples)
            }
            Val::Matrix(series) => QueryValue::Matrix(to_matrix(series)),
        })
    }

    /// Evaluates `query` at every step from `start_ms` to `end_ms`. The answer is a matrix
    /// sorted by labels, series without points left out.
    pub fn range(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryValue, PromError> {
        if end_ms < start_ms {
            return Err(PromError::bad_data(
                "end timestamp must not be before start time",
            ));
        }
        if step_ms <= 0 {
            return Err(PromError::bad_data(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        let steps = (end_ms as i128 - start_ms as i128) / step_ms as i128;
        if steps > self.limits.max_steps as i128 {
            return Err(PromError::bad_data(format!(
                "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
                thousands(self.limits.max_steps)
            )));
        }
        let node = plan::plan(
            query,
            QueryTimes {
                start: start_ms,
                end: end_ms,
            },
        )?;
        let t = node.value_type();
        if t != ValueType::Vector && t != ValueType::Scalar {
            return Err(PromError::bad_data(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                t.documented()
            )));
        }
        let grid = Grid {
            start: start_ms,
            end: end_ms,
            step: step_ms,
        };
        let mut ctx = Ctx::new(self.source.as_ref(), &self.limits, self.subquery_step_ms);
        let val = eval::eval(&mut ctx, &node, grid)?;
        ctx.check_time()?;
        let series = match val {
            Val::Scalar(s) => vec![Series {
                labels: Default::default(),
                points: grid
                    .times()
                    .enumerate()
                    .map(|(k, t)| (t, s.get(k)))
                    .collect(),
            }],
            Val::Vector(v) => v,
            _ => return Err(PromError::internal("range query gave a non-numeric value")),
        };
        Ok(QueryValue::Matrix(to_matrix(series)))
    }
}

fn to_matrix(series: Vec<Series>) -> Vec<RangeSeries> {
    let mut out: Vec<RangeSeries> = series
        .into_iter()
        .filter(|s| !s.points.is_empty())
        .map(|s| RangeSeries {
            labels: s.labels,
            points: s.points,
        })
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

/// `1,234,567`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
