//! The query engine over the store's splits.
//!
//! A trace lookup is a two-hop join: records whose correlation keys hold the asked key give
//! their trace IDs and other keys (a request ID on a root span, say); the second hop fetches
//! every span and log that carries any of those. That is how a log line with only an
//! `x-request-id` joins the trace of the spans that carry the same request ID.

use crate::QueryError;
use crate::reads::{LocalReads, Read, ReadResult, Reads};
use skein_model::api::{LogsResponse, TraceResponse, TraceSummary, TracesResponse};
use skein_model::span_tree::SpanTree;
use skein_model::{LogRecord, Span};
use skein_store::SplitList;
use skein_store::schema::{LogFields, SpanFields};
use skein_store::search::{Found, LogFilter, SpanFilter, TimeRange};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Bounds of the engine.
#[derive(Debug, Clone)]
pub struct QueryLimits {
    /// Largest `limit` a search accepts.
    pub max_limit: usize,
    /// Most records (spans plus logs) in one trace answer.
    pub max_trace_records: usize,
    /// Most records the first hop of a trace lookup reads per signal.
    pub first_hop_records: usize,
    /// Most keys the second hop of a trace lookup searches for.
    pub max_join_keys: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_limit: 1000,
            max_trace_records: 10_000,
            first_hop_records: 1000,
            max_join_keys: 64,
        }
    }
}

/// The engine: every answer built from store reads ([`crate::reads`]), local or fanned out.
#[derive(Clone)]
pub struct Engine {
    reads: Arc<dyn Reads>,
    limits: QueryLimits,
}

/// Parameters of a log search, already parsed.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Filters.
    pub filter: LogFilter,
    /// Time window.
    pub range: Option<TimeRange>,
    /// Most records.
    pub limit: usize,
}

/// Parameters of a trace search, already parsed.
#[derive(Debug, Clone, Default)]
pub struct TraceQuery {
    /// Span filters; a trace matches when any span matches.
    pub filter: SpanFilter,
    /// Time window of span starts.
    pub range: Option<TimeRange>,
    /// Most traces.
    pub limit: usize,
}

fn wrong() -> QueryError {
    QueryError::Internal("a store read answered with the wrong kind".into())
}

impl Engine {
    /// An engine over the given split lists on this node.
    pub fn new(
        logs: SplitList,
        log_fields: LogFields,
        spans: SplitList,
        span_fields: SpanFields,
        limits: QueryLimits,
    ) -> Self {
        Self::over(
            Arc::new(LocalReads::new(logs, log_fields, spans, span_fields)),
            limits,
        )
    }

    /// An engine over any store reads (a cluster's fan-out, say).
    pub fn over(reads: Arc<dyn Reads>, limits: QueryLimits) -> Self {
        Engine { reads, limits }
    }

    /// The engine's bounds.
    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    /// The store reads under the engine.
    pub fn reads(&self) -> &Arc<dyn Reads> {
        &self.reads
    }

    fn spans(&self, read: Read) -> Result<Found<Span>, QueryError> {
        match self.reads.read(&read)? {
            ReadResult::Spans { found } => Ok(found),
            _ => Err(wrong()),
        }
    }

    fn logs_found(&self, read: Read) -> Result<Found<LogRecord>, QueryError> {
        match self.reads.read(&read)? {
            ReadResult::Logs { found } => Ok(found),
            _ => Err(wrong()),
        }
    }

    fn counts(&self, read: Read) -> Result<skein_store::count::Counts, QueryError> {
        match self.reads.read(&read)? {
            ReadResult::Counts { counts } => Ok(counts),
            _ => Err(wrong()),
        }
    }

    fn sequenced(&self, read: Read) -> Result<(Vec<(u64, LogRecord)>, bool), QueryError> {
        match self.reads.read(&read)? {
            ReadResult::Sequenced { logs, more } => Ok((logs, more)),
            _ => Err(wrong()),
        }
    }

    /// One request's whole story: every span and log that shares a correlation key with the
    /// records carrying `key`. None when nothing carries it.
    pub fn trace(&self, key: &str) -> Result<Option<TraceResponse>, QueryError> {
        let key = key.trim();
        if key.is_empty() {
            return Err(QueryError::BadRequest("the key is empty".into()));
        }
        let key = if skein_model::keys::is_hex_trace_id(key) {
            key.to_ascii_lowercase()
        } else {
            key.to_string()
        };
        let hop = self.limits.first_hop_records;
        let first_spans = self.spans(Read::SpansByKeys {
            keys: vec![key.clone()],
            limit: hop,
        })?;
        let first_logs = self.logs_found(Read::LogsByKeys {
            keys: vec![key.clone()],
            limit: hop,
        })?;
        if first_spans.records.is_empty() && first_logs.records.is_empty() {
            return Ok(None);
        }
        let mut keys = vec![key.clone()];
        let max_keys = self.limits.max_join_keys;
        let mut truncated = first_spans.truncated || first_logs.truncated;
        let span_keys = first_spans
            .records
            .iter()
            .flat_map(|s| std::iter::once(&s.trace_id).chain(s.keys.iter()));
        let log_keys = first_logs
            .records
            .iter()
            .flat_map(|l| std::iter::once(&l.trace_id).chain(l.keys.iter()));
        for k in span_keys.chain(log_keys).filter(|k| !k.is_empty()) {
            if keys.len() >= max_keys {
                truncated = true;
                break;
            }
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        let budget = self.limits.max_trace_records;
        let spans = self.spans(Read::SpansByKeys {
            keys: keys.clone(),
            limit: budget,
        })?;
        let logs = self.logs_found(Read::LogsByKeys {
            keys,
            limit: budget.saturating_sub(spans.records.len()).max(1),
        })?;
        truncated |= spans.truncated || logs.truncated;
        Ok(Some(assemble(spans.records, logs.records, truncated)))
    }

    /// Searches logs, newest first.
    pub fn logs(&self, q: &LogQuery) -> Result<LogsResponse, QueryError> {
        let found = self.logs_found(Read::SearchLogs {
            filter: q.filter.clone(),
            range: q.range.unwrap_or(TimeRange::ALL),
            limit: q.limit,
        })?;
        Ok(LogsResponse {
            logs: found.records,
        })
    }

    /// Logs after ingest position `after`, oldest first, at most `limit`; the flag says more
    /// were there (see [`skein_store::arrival`]).
    pub fn logs_after(
        &self,
        filter: &LogFilter,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<(u64, LogRecord)>, bool), QueryError> {
        self.sequenced(Read::LogsAfter {
            filter: filter.clone(),
            after,
            limit,
        })
    }

    /// The newest `n` logs by ingest position, oldest first.
    pub fn last_logs(
        &self,
        filter: &LogFilter,
        n: usize,
    ) -> Result<Vec<(u64, LogRecord)>, QueryError> {
        Ok(self
            .sequenced(Read::LastLogs {
                filter: filter.clone(),
                n,
            })?
            .0)
    }

    /// The largest ingest position of a searchable log (0 when it cannot be read).
    pub fn last_log_seq(&self) -> u64 {
        match self.reads.read(&Read::LastLogSeq) {
            Ok(ReadResult::Seq { seq }) => seq,
            _ => 0,
        }
    }

    /// The lines around `time` matching `filter` (see [`skein_store::search::logs_around`]).
    pub fn logs_around(
        &self,
        filter: &LogFilter,
        time: u64,
        before: usize,
        after: usize,
    ) -> Result<skein_model::api::LogContextResponse, QueryError> {
        match self.reads.read(&Read::LogsAround {
            filter: filter.clone(),
            time,
            before,
            after,
        })? {
            ReadResult::Around { before, after } => {
                Ok(skein_model::api::LogContextResponse { before, after })
            }
            _ => Err(wrong()),
        }
    }

    /// Counts logs matching a filter, per value of the `by` fields (`service`).
    pub fn count_logs(
        &self,
        filter: &LogFilter,
        range: TimeRange,
        by: &[&str],
    ) -> Result<skein_store::count::Counts, QueryError> {
        self.counts(Read::CountLogs {
            filter: filter.clone(),
            range,
            by: by.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// Counts spans matching a filter, per value of the `by` fields (`service`, `name`).
    pub fn count_spans(
        &self,
        filter: &SpanFilter,
        range: TimeRange,
        by: &[&str],
    ) -> Result<skein_store::count::Counts, QueryError> {
        self.counts(Read::CountSpans {
            filter: filter.clone(),
            range,
            by: by.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// Searches traces, newest first: traces with at least one span matching the filter.
    pub fn traces(&self, q: &TraceQuery) -> Result<TracesResponse, QueryError> {
        // Several matching spans often share a trace; read more spans than traces wanted.
        let span_limit = (q.limit * 20).clamp(100, 20_000);
        let found = self.spans(Read::SearchSpans {
            filter: q.filter.clone(),
            range: q.range.unwrap_or(TimeRange::ALL),
            limit: span_limit,
        })?;
        let mut ids: Vec<String> = Vec::new();
        for s in &found.records {
            if ids.len() >= q.limit {
                break;
            }
            if !ids.contains(&s.trace_id) {
                ids.push(s.trace_id.clone());
            }
        }
        // One read for every trace's spans, grouped back per trace.
        let all = self.spans(Read::SpansByTraceIds {
            ids: ids.clone(),
            limit: self
                .limits
                .max_trace_records
                .saturating_mul(ids.len().max(1)),
        })?;
        let mut per: BTreeMap<&str, Vec<Span>> = BTreeMap::new();
        for s in all.records {
            if let Some(id) = ids.iter().find(|i| **i == s.trace_id) {
                per.entry(id.as_str()).or_default().push(s);
            }
        }
        let mut traces = Vec::with_capacity(ids.len());
        for id in &ids {
            let spans = per.remove(id.as_str()).unwrap_or_default();
            traces.push(summarize(id, &spans));
        }
        traces.sort_by_key(|t| std::cmp::Reverse(t.start_unix_nano));
        Ok(TracesResponse { traces })
    }
}

/// Builds the trace answer: spans deduplicated and in tree order, logs by time.
pub fn assemble(spans: Vec<Span>, mut logs: Vec<LogRecord>, truncated: bool) -> TraceResponse {
    let mut seen = HashSet::new();
    let spans: Vec<Span> = spans
        .into_iter()
        .filter(|s| seen.insert((s.trace_id.clone(), s.span_id.clone())))
        .collect();
    let spans = tree_order(spans);
    logs.sort_by_key(|l| l.time_unix_nano);

    let mut per_trace: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for s in &spans {
        let e = per_trace.entry(&s.trace_id).or_insert((0, u64::MAX));
        e.0 += 1;
        e.1 = e.1.min(s.start_unix_nano);
    }
    for l in &logs {
        if !l.trace_id.is_empty() {
            per_trace
                .entry(&l.trace_id)
                .or_insert((0, l.time_unix_nano));
        }
    }
    // The main trace has the most spans; ties go to the earliest.
    let mut ranked: Vec<(&str, (usize, u64))> = per_trace.into_iter().collect();
    ranked.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.1.1.cmp(&b.1.1)));
    let trace_ids: Vec<String> = ranked.iter().map(|(id, _)| id.to_string()).collect();
    let trace_id = trace_ids.first().cloned().unwrap_or_default();

    let mut services: Vec<String> = Vec::new();
    for s in spans
        .iter()
        .map(|s| &s.service)
        .chain(logs.iter().map(|l| &l.service))
    {
        if !services.contains(s) {
            services.push(s.clone());
        }
    }
    TraceResponse {
        trace_id,
        trace_ids,
        services,
        spans,
        logs,
        truncated,
    }
}

/// Parent before children, siblings (and roots) by start time, then by span ID; the tree is
/// [`SpanTree`]'s (spans whose parent is missing are roots, cycles cannot loop).
pub fn tree_order(mut spans: Vec<Span>) -> Vec<Span> {
    // Sorted first so that equal starts come out by span ID, whatever order the store gave.
    spans.sort_by(|a, b| {
        a.start_unix_nano
            .cmp(&b.start_unix_nano)
            .then(a.span_id.cmp(&b.span_id))
    });
    let order = SpanTree::build(&spans).order;
    let mut slots: Vec<Option<Span>> = spans.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// The summary of one trace from its spans.
pub fn summarize(trace_id: &str, spans: &[Span]) -> TraceSummary {
    let start = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.end_unix_nano).max().unwrap_or(start);
    let root = spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .min_by_key(|s| s.start_unix_nano)
        .or_else(|| spans.iter().min_by_key(|s| s.start_unix_nano));
    let mut services: Vec<String> = Vec::new();
    let mut sorted: Vec<&Span> = spans.iter().collect();
    sorted.sort_by_key(|s| s.start_unix_nano);
    for s in sorted {
        if !services.contains(&s.service) {
            services.push(s.service.clone());
        }
    }
    TraceSummary {
        trace_id: trace_id.to_string(),
        root_service: root.map(|r| r.service.clone()).unwrap_or_default(),
        root_name: root.map(|r| r.name.clone()).unwrap_or_default(),
        start_unix_nano: start,
        duration_ns: end.saturating_sub(start),
        span_count: spans.len(),
        error: spans.iter().any(|s| s.is_error()),
        services,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn span(id: &str, parent: &str, start: u64) -> Span {
        Span {
            trace_id: "t".into(),
            span_id: id.into(),
            parent_span_id: parent.into(),
            start_unix_nano: start,
            end_unix_nano: start + 10,
            ..Default::default()
        }
    }

    #[test]
    fn tree_order_puts_parents_first_and_siblings_by_start() {
        let spans = vec![
            span("c2", "a", 30),
            span("a", "", 10),
            span("gc", "c1", 25),
            span("c1", "a", 20),
            span("orphan", "missing", 5),
        ];
        let ids: Vec<String> = tree_order(spans).into_iter().map(|s| s.span_id).collect();
        assert_eq!(ids, vec!["orphan", "a", "c1", "gc", "c2"]);
    }

    #[test]
    fn tree_order_survives_cycles() {
        let spans = vec![span("x", "y", 1), span("y", "x", 2)];
        assert_eq!(tree_order(spans).len(), 2);
    }

    #[test]
    fn summary_finds_root_and_errors() {
        let mut s = vec![span("a", "", 10), span("b", "a", 12)];
        s[1].status_code = "error".into();
        s[0].service = "gateway".into();
        s[0].name = "GET /order".into();
        s[1].service = "payment".into();
        let sum = summarize("t", &s);
        assert_eq!(sum.root_service, "gateway");
        assert_eq!(sum.root_name, "GET /order");
        assert!(sum.error);
        assert_eq!(sum.duration_ns, 12);
        assert_eq!(sum.services, vec!["gateway", "payment"]);
    }
}
