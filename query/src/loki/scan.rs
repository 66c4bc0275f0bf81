//! Reading the records a log query selects: the index answers what it can (service, host,
//! trace ID, correlation keys), the pipeline checks every record exactly.
//!
//! Pushed down to the index, as necessary conditions only (the pipeline still decides):
//! `service`/`service_name` and `host` equality matchers; equality on `trace_id`, or on a
//! label whose name is a configured correlation key attribute (`request_id`, …), in the
//! selector or in a label filter before any stage that changes labels (`json`, `logfmt`,
//! `drop`, `keep`, `line_format`). So `{service="payment"} | trace_id="…"` and
//! `{service="payment"} | request_id="…"` are key lookups, not scans.
//!
//! Pages are read newest first, [`PAGE`] records at a time, each page ending where the last
//! one stopped. A query may read at most `budget` records before it is refused with a message
//! that says how to narrow it ([`DEFAULT_SCAN_BUDGET`]).

use super::logql::ast::*;
use super::pipeline::{self, Entry};
use crate::QueryError;
use crate::engine::{Engine, LogQuery};
use skein_model::keys::{KeyExtractor, MAX_KEY_LEN};
use skein_store::search::{LogFilter, TimeRange};

/// Records read from the index per page.
pub const PAGE: usize = 1000;
/// Most records one query reads by default before it is refused (`?` the route's docs).
pub const DEFAULT_SCAN_BUDGET: usize = 500_000;

/// The index filter a log query can use.
pub fn prefilter(log: &LogExpr, keys: &KeyExtractor) -> LogFilter {
    let mut f = LogFilter::default();
    let mut terms: Vec<String> = Vec::new();
    let key_eq = |name: &str, value: &str, terms: &mut Vec<String>| {
        if value.is_empty() || value.len() > MAX_KEY_LEN || value.contains(['"', '\\']) {
            return;
        }
        if name == "trace_id" {
            terms.push(format!("+trace_id:\"{value}\""));
        } else if keys.is_key_name(name) {
            // A record's key equal to its own trace ID is kept in trace_id only.
            terms.push(format!("+(keys:\"{value}\" OR trace_id:\"{value}\")"));
        }
    };
    for m in &log.matchers {
        if m.op != MatchOp::Eq {
            continue;
        }
        match m.name.as_str() {
            "service" | "service_name" => f.service = Some(m.value.clone()),
            "host" => f.host = Some(m.value.clone()),
            other => key_eq(other, &m.value, &mut terms),
        }
    }
    for s in &log.stages {
        match s {
            Stage::Line { .. } | Stage::Decolorize => {}
            Stage::Filter(lf) => {
                let mut eqs = Vec::new();
                conjuncts(lf, &mut eqs);
                for (name, value) in eqs {
                    key_eq(name, value, &mut terms);
                }
            }
            // Stages that may change labels end what the index can answer.
            _ => break,
        }
    }
    if !terms.is_empty() {
        f.text = Some(terms.join(" "));
    }
    f
}

/// The `name = "value"` comparisons that must all hold for a filter to pass.
fn conjuncts<'a>(f: &'a LabelFilter, out: &mut Vec<(&'a str, &'a str)>) {
    match f {
        LabelFilter::And(a, b) => {
            conjuncts(a, out);
            conjuncts(b, out);
        }
        LabelFilter::Cmp {
            name,
            op: CmpOp::Eq,
            value: FilterValue::Text(v, _),
        } => out.push((name.as_str(), v.as_str())),
        _ => {}
    }
}

/// What a scan read.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScanStats {
    /// Records read from the index.
    pub read: usize,
    /// Bytes of their lines.
    pub bytes: usize,
    /// Records that passed the selector and pipeline.
    pub matched: usize,
}

/// Reads the records of `log` in `range`, newest first, passing each one that survives the
/// pipeline to `f` until `f` answers false. Refuses the query past `budget` records read.
pub fn scan(
    engine: &Engine,
    keys: &KeyExtractor,
    log: &LogExpr,
    range: TimeRange,
    budget: usize,
    mut f: impl FnMut(Entry) -> bool,
) -> Result<ScanStats, QueryError> {
    let filter = prefilter(log, keys);
    let mut stats = ScanStats::default();
    let mut end = range.end;
    // Records already handed out at time `end` (the next page starts there again).
    let mut seen_at_end = 0usize;
    loop {
        let page = engine.logs(&LogQuery {
            filter: filter.clone(),
            range: Some(TimeRange {
                start: range.start,
                end,
            }),
            limit: PAGE,
        })?;
        let n = page.logs.len();
        let oldest = page.logs.last().map(|r| r.time_unix_nano);
        let mut skip = seen_at_end;
        let mut at_oldest = 0usize;
        for r in &page.logs {
            if r.time_unix_nano == end && skip > 0 {
                skip -= 1;
                continue;
            }
            if Some(r.time_unix_nano) == oldest {
                at_oldest += 1;
            }
            stats.read += 1;
            stats.bytes += r.body.len();
            if stats.read > budget {
                return Err(QueryError::BadRequest(format!(
                    "the query read more than {budget} log lines; narrow it with a shorter time range, an exact service, or a trace_id/request ID filter"
                )));
            }
            let e = pipeline::entry(r);
            if !pipeline::selected(&e, &log.matchers) {
                continue;
            }
            if let Some(e) = pipeline::run(e, &log.stages) {
                stats.matched += 1;
                if !f(e) {
                    return Ok(stats);
                }
            }
        }
        let Some(oldest) = oldest else {
            return Ok(stats);
        };
        if n < PAGE {
            return Ok(stats);
        }
        if oldest == end {
            // A whole page at one instant: go on past it (more than a page of records with
            // the same nanosecond is not a real log stream).
            if oldest == range.start || oldest == 0 {
                return Ok(stats);
            }
            end = oldest - 1;
            seen_at_end = 0;
        } else {
            end = oldest;
            seen_at_end = at_oldest;
        }
    }
}
