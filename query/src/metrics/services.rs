//! Service and operation health from the span-derived series (names are a contract with the
//! collector's deriver):
//!
//! - `skein.span.calls`, `skein.span.errors`: counters per `{service, operation}`;
//! - `skein.span.duration`: histogram in ms per `{service, operation}`;
//! - `skein.span.duration.p99` (and `.p50`, `.p90`, `.p95`): gauges of each 10 s interval,
//!   per `{service, operation}` and per `{service}` alone.
//!
//! Counters and buckets are read only from series with an `operation` label, so a per-service
//! total written beside them would not be counted twice. A service is listed when its calls
//! counter has a sample in the last hour.

use super::eval::{Grid, Grouped, Op, Table, aggregate, bucket_quantiles, group};
use super::query::select;
use crate::QueryError;
use crate::metric_reads::MetricReads;
use skein_model::metric::Labels;
use skein_model::metrics_api::{
    OperationHealth, OperationsResponse, RecentPoint, ServiceHealth, ServicesResponse,
};
use skein_store::tsdb::{MatchOp, Matcher, SelectedSeries};

/// Calls per operation (counter).
pub const CALLS: &str = "skein.span.calls";
/// Failed calls per operation (counter).
pub const ERRORS: &str = "skein.span.errors";
/// Buckets of the duration histogram (ms).
pub const DURATION_BUCKET: &str = "skein.span.duration_bucket";
/// The 99th percentile of each 10 s interval (gauge, ms).
pub const P99_GAUGE: &str = "skein.span.duration.p99";
/// A service is listed when its calls have a sample this recent: 1 hour.
pub const SEEN_WITHIN_MS: i64 = 3_600_000;
/// Width of a recent point: 10 s.
pub const RECENT_STEP_MS: i64 = 10_000;
/// Recent points: 30 (5 minutes).
pub const RECENT_POINTS: usize = 30;
/// Window when none is given: 1 minute.
pub const DEFAULT_WINDOW_MS: i64 = 60_000;
/// Longest window: 24 hours.
pub const MAX_WINDOW_MS: i64 = 24 * 3_600_000;
/// Most series one read of the span-derived views may select (every operation's buckets).
pub const MAX_DERIVED_SERIES: usize = 500_000;

/// The series the services views read.
#[derive(Debug, Clone, Default)]
pub struct SpanSeries {
    /// `skein.span.calls` with an operation label.
    pub calls: Vec<SelectedSeries>,
    /// `skein.span.errors` with an operation label.
    pub errors: Vec<SelectedSeries>,
    /// `skein.span.duration_bucket` with an operation label.
    pub buckets: Vec<SelectedSeries>,
    /// `skein.span.duration.p99` without an operation label (per service).
    pub p99: Vec<SelectedSeries>,
}

/// Checks a window: longer than zero and at most [`MAX_WINDOW_MS`].
pub fn check_window(window_ms: i64) -> Result<i64, QueryError> {
    if window_ms > MAX_WINDOW_MS {
        return Err(QueryError::BadRequest(
            "window is longer than the most, 24h: give a shorter window such as 1m or 1h".into(),
        ));
    }
    Ok(window_ms.max(1))
}

fn recent_grid(now_ms: i64) -> Grid {
    Grid::ending_at(
        now_ms.div_euclid(RECENT_STEP_MS) * RECENT_STEP_MS,
        RECENT_STEP_MS,
        RECENT_POINTS,
    )
}

/// Group series of one service (or of all when `service` is none) by one label.
fn by_label<'a>(
    series: &'a [SelectedSeries],
    service: Option<&'a str>,
    label: &str,
) -> Grouped<'a> {
    group(
        series
            .iter()
            .filter(move |s| service.is_none_or(|sv| s.labels.get("service") == Some(sv))),
        &[label.to_string()],
    )
}

/// Errors over calls, 0..1; none without calls.
fn error_rate(calls: f64, errors: f64) -> Option<f64> {
    (calls > 0.0).then(|| (errors / calls).clamp(0.0, 1.0))
}

fn whole(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        x.round() as u64
    } else {
        0
    }
}

/// Figures of one grouping (by service or by operation) over a window ending at `now_ms`.
struct Window {
    seen: Table,
    calls: Table,
    errors: Table,
    pct: Vec<Table>,
}

impl Window {
    /// Calls and errors of one group over the window (never negative).
    fn counts(&self, labels: &Labels) -> (f64, f64) {
        let get = |t: &Table| t.lookup(labels, 0).unwrap_or(0.0).max(0.0);
        (get(&self.calls), get(&self.errors))
    }

    /// The `i`th requested percentile of one group; none without calls.
    fn percentile(&self, labels: &Labels, i: usize, calls: f64) -> Option<f64> {
        self.pct
            .get(i)
            .and_then(|t| t.lookup(labels, 0))
            .filter(|_| calls > 0.0)
    }
}

fn window_figures(
    input: &SpanSeries,
    service: Option<&str>,
    label: &str,
    now_ms: i64,
    window_ms: i64,
    qs: &[f64],
) -> Result<Window, QueryError> {
    let win = Grid::single(now_ms, window_ms);
    Ok(Window {
        seen: aggregate(
            Op::Count,
            &by_label(&input.calls, service, label),
            &Grid::single(now_ms, SEEN_WITHIN_MS),
        )?,
        calls: aggregate(Op::Increase, &by_label(&input.calls, service, label), &win)?,
        errors: aggregate(Op::Increase, &by_label(&input.errors, service, label), &win)?,
        pct: bucket_quantiles(
            &by_label(&input.buckets, service, label),
            &win,
            qs,
            usize::MAX,
        )?,
    })
}

/// Health of every service seen in the last hour, sorted by name, over the window ending at
/// `now_ms`, with the last 5 minutes in 10 s points.
pub fn services_health(
    input: &SpanSeries,
    now_ms: i64,
    window_ms: i64,
) -> Result<Vec<ServiceHealth>, QueryError> {
    let w = window_figures(input, None, "service", now_ms, window_ms, &[0.5, 0.99])?;
    let recent = recent_grid(now_ms);
    let r_calls = aggregate(
        Op::Increase,
        &by_label(&input.calls, None, "service"),
        &recent,
    )?;
    let r_errors = aggregate(
        Op::Increase,
        &by_label(&input.errors, None, "service"),
        &recent,
    )?;
    let r_p99 = aggregate(Op::Avg, &by_label(&input.p99, None, "service"), &recent)?;
    let secs = window_ms as f64 / 1000.0;
    let mut out = Vec::new();
    for (g, labels) in w.seen.groups.iter().enumerate() {
        let Some(name) = labels.get("service") else {
            continue;
        };
        if w.seen.get(g, 0).is_none() {
            continue;
        }
        let (calls, errors) = w.counts(labels);
        let pct = |i: usize| w.percentile(labels, i, calls);
        let recent_points = (0..recent.points)
            .map(|k| {
                let c = r_calls.lookup(labels, k).unwrap_or(0.0).max(0.0);
                let e = r_errors.lookup(labels, k).unwrap_or(0.0).max(0.0);
                RecentPoint {
                    ts_ms: recent.ts(k),
                    rate: c / recent.step_secs(),
                    error_rate: error_rate(c, e),
                    p99_ms: r_p99.lookup(labels, k).filter(|v| v.is_finite()),
                }
            })
            .collect();
        out.push(ServiceHealth {
            name: name.to_string(),
            rate: calls / secs,
            error_rate: error_rate(calls, errors),
            p50_ms: pct(0),
            p99_ms: pct(1),
            calls: whole(calls),
            errors: whole(errors),
            recent: recent_points,
        });
    }
    Ok(out)
}

/// Health of each operation of `service` seen in the last hour, sorted by name. None when
/// the service has no calls series with a sample in the last hour.
pub fn operations_health(
    service: &str,
    input: &SpanSeries,
    now_ms: i64,
    window_ms: i64,
) -> Result<Option<Vec<OperationHealth>>, QueryError> {
    let w = window_figures(
        input,
        Some(service),
        "operation",
        now_ms,
        window_ms,
        &[0.5, 0.9, 0.95, 0.99],
    )?;
    let secs = window_ms as f64 / 1000.0;
    let mut out = Vec::new();
    let mut seen_any = false;
    for (g, labels) in w.seen.groups.iter().enumerate() {
        if w.seen.get(g, 0).is_none() {
            continue;
        }
        seen_any = true;
        let Some(name) = labels.get("operation") else {
            continue;
        };
        let (calls, errors) = w.counts(labels);
        let pct = |i: usize| w.percentile(labels, i, calls);
        out.push(OperationHealth {
            name: name.to_string(),
            rate: calls / secs,
            error_rate: error_rate(calls, errors),
            p50_ms: pct(0),
            p90_ms: pct(1),
            p95_ms: pct(2),
            p99_ms: pct(3),
            calls: whole(calls),
            errors: whole(errors),
        });
    }
    Ok(seen_any.then_some(out))
}

fn matcher(label: &str, op: MatchOp, value: &str) -> Result<Matcher, QueryError> {
    Matcher::new(label, op, value).map_err(QueryError::BadRequest)
}

/// Reads what the services views need, of one service or of all.
pub fn load(
    tsdb: &dyn MetricReads,
    service: Option<&str>,
    now_ms: i64,
    window_ms: i64,
) -> Result<SpanSeries, QueryError> {
    let win = Grid::single(now_ms, window_ms);
    let recent = recent_grid(now_ms);
    let mut per_op = vec![matcher("operation", MatchOp::Ne, "")?];
    let mut per_service = vec![matcher("operation", MatchOp::Eq, "")?];
    if let Some(s) = service {
        per_op.push(matcher("service", MatchOp::Eq, s)?);
        per_service.push(matcher("service", MatchOp::Eq, s)?);
    }
    let counters_from = win.select_start().min(recent.select_start());
    let calls_from = counters_from.min(now_ms - SEEN_WITHIN_MS);
    let read = |name: &str, m: &[Matcher], from: i64| {
        select(tsdb, name, m, from, now_ms, MAX_DERIVED_SERIES)
    };
    Ok(SpanSeries {
        calls: read(CALLS, &per_op, calls_from)?,
        errors: read(ERRORS, &per_op, counters_from)?,
        buckets: read(DURATION_BUCKET, &per_op, win.select_start())?,
        p99: if service.is_none() {
            read(P99_GAUGE, &per_service, recent.first - recent.step)?
        } else {
            Vec::new()
        },
    })
}

/// `GET /api/v1/services`.
pub fn services(
    tsdb: &dyn MetricReads,
    now_ms: i64,
    window_ms: i64,
) -> Result<ServicesResponse, QueryError> {
    let window_ms = check_window(window_ms)?;
    let input = load(tsdb, None, now_ms, window_ms)?;
    Ok(ServicesResponse {
        window_ms,
        services: services_health(&input, now_ms, window_ms)?,
    })
}

/// `GET /api/v1/services/{name}/operations`; a service without calls in the last hour is 404.
pub fn operations(
    tsdb: &dyn MetricReads,
    service: &str,
    now_ms: i64,
    window_ms: i64,
) -> Result<OperationsResponse, QueryError> {
    let window_ms = check_window(window_ms)?;
    let input = load(tsdb, Some(service), now_ms, window_ms)?;
    match operations_health(service, &input, now_ms, window_ms)? {
        Some(operations) => Ok(OperationsResponse {
            service: service.to_string(),
            window_ms,
            operations,
        }),
        None => Err(QueryError::NotFound(format!(
            "no service named '{service}' has calls in the last hour; /api/v1/services lists the services there are"
        ))),
    }
}
