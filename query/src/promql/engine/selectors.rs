//! Reading series from the source and instant vector selection: at each step the newest
//! sample in `[t - offset - lookback, t - offset]` (closed on both ends, as Prometheus 2.x),
//! nothing when that sample is a staleness marker.

use super::eval::Ctx;
use super::plan::Selector;
use super::series::{Grid, Series, is_stale};
use crate::promql::PromError;

/// Reads the series of a selector with their samples in `[start, end]`, sorted by labels, and
/// counts the samples as held.
pub(crate) fn select(
    ctx: &mut Ctx<'_>,
    sel: &Selector,
    start: i64,
    end: i64,
) -> Result<Vec<Series>, PromError> {
    ctx.check_time()?;
    if end < start {
        return Ok(Vec::new());
    }
    let raw = ctx
        .source
        .select(&sel.matchers, start, end, ctx.limits.max_series)?;
    if raw.len() > ctx.limits.max_series {
        return Err(PromError::execution(format!(
            "a selector matched more than {} series",
            ctx.limits.max_series
        )));
    }
    let mut held = 0usize;
    let mut out: Vec<Series> = Vec::with_capacity(raw.len());
    for r in raw {
        held = held.saturating_add(r.samples.len());
        let mut points = r.samples;
        // The source promises increasing times in range; keep only those, in case.
        if !points.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0)) {
            points.sort_by_key(|p| p.0);
            points.dedup_by_key(|p| p.0);
        }
        points.retain(|p| p.0 >= start && p.0 <= end);
        out.push(Series {
            labels: r.labels,
            points,
        });
    }
    ctx.add_samples(held)?;
    ctx.check_time()?;
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// An instant vector selector on every step of a grid. With `timestamps`, the values are the
/// selected samples' own times in seconds (what `timestamp(selector)` returns).
pub(crate) fn instant(
    ctx: &mut Ctx<'_>,
    sel: &Selector,
    grid: Grid,
    timestamps: bool,
) -> Result<Vec<Series>, PromError> {
    let n = grid.len();
    let lookback = ctx.limits.lookback_ms;
    let (first_ref, last_ref) = match sel.at {
        Some(at) => (at.saturating_sub(sel.offset), at.saturating_sub(sel.offset)),
        None => (
            grid.start.saturating_sub(sel.offset),
            grid.end.saturating_sub(sel.offset),
        ),
    };
    let raw = select(ctx, sel, first_ref.saturating_sub(lookback), last_ref)?;
    let held: usize = raw.iter().map(|s| s.points.len()).sum();
    let mut out = Vec::with_capacity(raw.len());
    for s in raw {
        ctx.tick()?;
        let samples = &s.points;
        let pick = |next: usize, r: i64| -> Option<f64> {
            let (ts, v) = *samples.get(next.checked_sub(1)?)?;
            if ts < r.saturating_sub(lookback) || is_stale(v) {
                return None;
            }
            Some(if timestamps { ts as f64 / 1000.0 } else { v })
        };
        let mut points = Vec::new();
        match sel.at {
            Some(_) => {
                let next = samples.partition_point(|p| p.0 <= first_ref);
                if let Some(v) = pick(next, first_ref) {
                    ctx.add_samples(n)?;
                    points = grid.times().map(|t| (t, v)).collect();
                }
            }
            None => {
                let mut next = 0usize;
                for k in 0..n {
                    let t = grid.time(k);
                    let r = t.saturating_sub(sel.offset);
                    while samples.get(next).is_some_and(|p| p.0 <= r) {
                        next += 1;
                    }
                    if let Some(v) = pick(next, r) {
                        points.push((t, v));
                    }
                }
                ctx.add_samples(points.len())?;
            }
        }
        if !points.is_empty() {
            out.push(Series {
                labels: s.labels,
                points,
            });
        }
    }
    ctx.release(held);
    Ok(out)
}
