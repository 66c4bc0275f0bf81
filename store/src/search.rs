//! Searches over a signal's splits: by terms (correlation keys, trace IDs), and filtered
//! full-text search newest first. Every search takes a limit and says when it was cut.
//!
//! Splits are searched newest first, and a time-ordered search stops as soon as the remaining
//! splits cannot hold anything newer than what it already has.

use crate::error::{Result, StoreError};
use crate::schema::{LogFields, SpanFields, clamp_i64};
use crate::signal::Signal;
use crate::splits::{SplitHandle, SplitList, current_splits};
use std::ops::Bound;
use std::sync::Arc;
use tantivy::collector::TopDocs;
use tantivy::query::{
    AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{DocAddress, Order, Searcher, TantivyDocument, Term};

/// A time window, Unix nanoseconds, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TimeRange {
    /// From.
    pub start: u64,
    /// To.
    pub end: u64,
}

impl TimeRange {
    /// All of time.
    pub const ALL: TimeRange = TimeRange {
        start: 0,
        end: u64::MAX,
    };
}

/// Records found and whether a limit cut the list.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Found<R> {
    /// The records.
    pub records: Vec<R>,
    /// True when more matched than the limit allowed.
    pub truncated: bool,
}

pub(crate) fn searchable_splits(list: &SplitList, range: TimeRange) -> Vec<Arc<SplitHandle>> {
    let mut v: Vec<_> = current_splits(list)
        .into_iter()
        .filter(|s| s.meta().overlaps(range.start, range.end))
        .collect();
    v.reverse(); // newest first
    v
}

fn time_range_query(field: Field, range: TimeRange) -> Box<dyn Query> {
    Box::new(RangeQuery::new(
        Bound::Included(Term::from_field_i64(field, clamp_i64(range.start))),
        Bound::Included(Term::from_field_i64(field, clamp_i64(range.end))),
    ))
}

pub(crate) fn load<S: Signal>(
    searcher: &Searcher,
    fields: &S::Fields,
    addr: DocAddress,
) -> Result<S::Record> {
    StoreError::check_deadline()?;
    let doc: TantivyDocument = searcher
        .doc(addr)
        .map_err(|e| StoreError::index("load document", e))?;
    let bytes = doc
        .get_first(S::doc_field(fields))
        .and_then(|v| v.as_bytes())
        .ok_or_else(|| StoreError::Decode("document has no stored record".into()))?;
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string()))
}

/// Runs `query` on every split that may hold records in `range`, newest records first, at most
/// `limit` of them.
pub fn newest<S: Signal>(
    list: &SplitList,
    fields: &S::Fields,
    query: &dyn Query,
    range: TimeRange,
    limit: usize,
) -> Result<Found<S::Record>> {
    by_time::<S>(list, fields, query, range, limit, Order::Desc)
}

/// Runs `query` on every split that may hold records in `range`, oldest records first, at
/// most `limit` of them (the mirror of [`newest`]).
pub fn oldest<S: Signal>(
    list: &SplitList,
    fields: &S::Fields,
    query: &dyn Query,
    range: TimeRange,
    limit: usize,
) -> Result<Found<S::Record>> {
    by_time::<S>(list, fields, query, range, limit, Order::Asc)
}

fn by_time<S: Signal>(
    list: &SplitList,
    fields: &S::Fields,
    query: &dyn Query,
    range: TimeRange,
    limit: usize,
    order: Order,
) -> Result<Found<S::Record>> {
    let desc = matches!(order, Order::Desc);
    let mut hits: Vec<(i64, Arc<SplitHandle>, DocAddress)> = Vec::new();
    let mut truncated = false;
    let mut splits = searchable_splits(list, range); // newest first
    if !desc {
        splits.reverse();
    }
    for split in splits {
        StoreError::check_deadline()?;
        // Splits are cut by arrival, so event times overlap; skip a split only when it cannot
        // beat the last hit we would keep.
        let meta = split.meta();
        if hits.len() >= limit
            && let Some((last_kept, _, _)) = hits.get(limit.saturating_sub(1))
            && (if desc {
                clamp_i64(meta.max_time) < *last_kept
            } else {
                clamp_i64(meta.min_time) > *last_kept
            })
        {
            truncated = true;
            continue;
        }
        let searcher = split.reader.searcher();
        let top = TopDocs::with_limit(limit + 1).order_by_fast_field::<i64>("time", order);
        let found = searcher
            .search(query, &top)
            .map_err(|e| StoreError::index("search", e))?;
        for (t, addr) in found {
            hits.push((t.unwrap_or(0), split.clone(), addr));
        }
        if desc {
            hits.sort_by_key(|h| std::cmp::Reverse(h.0));
        } else {
            hits.sort_by_key(|h| h.0);
        }
        if hits.len() > limit {
            truncated = true;
            hits.truncate(limit);
        }
    }
    let mut records = Vec::with_capacity(hits.len());
    for (_, split, addr) in hits {
        records.push(load::<S>(&split.reader.searcher(), fields, addr)?);
    }
    Ok(Found { records, truncated })
}

/// Logs around a moment: up to `before` lines earlier than `time` (oldest first) and up to
/// `after` lines at or after it, matching `filter` (a service and host, for a line's context).
pub fn logs_around(
    list: &SplitList,
    fields: &LogFields,
    filter: &LogFilter,
    time: u64,
    before: usize,
    after: usize,
) -> Result<(Vec<skein_model::LogRecord>, Vec<skein_model::LogRecord>)> {
    let earlier = TimeRange {
        start: 0,
        end: time.saturating_sub(1),
    };
    let later = TimeRange {
        start: time,
        end: u64::MAX,
    };
    let mut b = if before == 0 || time == 0 {
        Vec::new()
    } else {
        newest::<crate::Logs>(
            list,
            fields,
            &log_query(fields, filter, earlier)?,
            earlier,
            before,
        )?
        .records
    };
    b.reverse();
    let a = if after == 0 {
        Vec::new()
    } else {
        oldest::<crate::Logs>(
            list,
            fields,
            &log_query(fields, filter, later)?,
            later,
            after,
        )?
        .records
    };
    Ok((b, a))
}

/// Every record (up to `limit`) whose `field` holds any of `values`, oldest first per split.
pub fn by_terms<S: Signal>(
    list: &SplitList,
    fields: &S::Fields,
    field: Field,
    values: &[String],
    limit: usize,
) -> Result<Found<S::Record>> {
    if values.is_empty() {
        return Ok(Found {
            records: vec![],
            truncated: false,
        });
    }
    let query = TermSetQuery::new(values.iter().map(|v| Term::from_field_text(field, v)));
    collect_asc::<S>(list, fields, &query, limit)
}

/// Up to `limit` records matching `query` across all splits.
fn collect_asc<S: Signal>(
    list: &SplitList,
    fields: &S::Fields,
    query: &dyn Query,
    limit: usize,
) -> Result<Found<S::Record>> {
    let mut records = Vec::new();
    let mut truncated = false;
    for split in searchable_splits(list, TimeRange::ALL) {
        StoreError::check_deadline()?;
        let room = limit.saturating_sub(records.len());
        if room == 0 {
            truncated = true;
            break;
        }
        let searcher = split.reader.searcher();
        let top = TopDocs::with_limit(room + 1).order_by_fast_field::<i64>("time", Order::Asc);
        let found = searcher
            .search(query, &top)
            .map_err(|e| StoreError::index("search", e))?;
        if found.len() > room {
            truncated = true;
        }
        for (_, addr) in found.into_iter().take(room) {
            records.push(load::<S>(&searcher, fields, addr)?);
        }
    }
    Ok(Found { records, truncated })
}

/// Records whose correlation keys include any of `keys`: the trace ID field or the other
/// keys field (the schema keeps the trace ID in one place only).
pub fn by_keys<S: Signal>(
    list: &SplitList,
    fields: &S::Fields,
    keys: &[String],
    limit: usize,
) -> Result<Found<S::Record>> {
    if keys.is_empty() {
        return Ok(Found {
            records: vec![],
            truncated: false,
        });
    }
    let (tf, kf) = (S::trace_id_field(fields), S::keys_field(fields));
    let terms = keys.iter().flat_map(|k| {
        let trace = skein_model::keys::is_hex_trace_id(k).then(|| Term::from_field_text(tf, k));
        trace
            .into_iter()
            .chain(std::iter::once(Term::from_field_text(kf, k)))
    });
    let query = TermSetQuery::new(terms);
    collect_asc::<S>(list, fields, &query, limit)
}

/// Filters of a log search.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct LogFilter {
    /// Full text plus `field:value` terms, in tantivy's query language.
    pub text: Option<String>,
    /// Only this service.
    pub service: Option<String>,
    /// Only this severity number and above.
    pub min_severity: Option<i32>,
    /// Only this host.
    pub host: Option<String>,
}

/// Longest query text, in bytes. Longer text is refused before it is parsed.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;

/// Most groups and negations in one query: `(` and `NOT` together. The query parser recurses
/// once per each, on a blocking thread with a small stack; past a few thousand the stack
/// overflows and the whole process aborts, so they are counted before parsing.
pub const MAX_QUERY_NESTING: usize = 64;

/// Refuses a query too long or too deeply nested to parse safely. Counts `(` and `NOT`
/// outside double-quoted phrases; the count bounds the nesting depth from above.
fn check_query_shape(text: &str) -> Result<()> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(StoreError::BadQuery(format!(
            "the query is {} bytes, more than the limit of {MAX_QUERY_BYTES}; search for fewer terms",
            text.len()
        )));
    }
    // Tantivy ends a JSON path at a NUL byte and separates its segments with 0x01: a field
    // name holding either fails an assertion inside it (found by the query_parse fuzz
    // target). No query needs control characters besides white space.
    if let Some(c) = text
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(StoreError::BadQuery(format!(
            "the query holds the control character U+{:04X}; remove it",
            c as u32
        )));
    }
    let mut nesting = 0usize;
    let mut in_phrase = false;
    let mut escaped = false;
    let mut word_start = true;
    let b = text.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if escaped {
            escaped = false;
            word_start = false;
            continue;
        }
        match c {
            b'\\' => escaped = true,
            b'"' => in_phrase = !in_phrase,
            b'(' if !in_phrase => nesting += 1,
            b'N' if !in_phrase
                && word_start
                && b[i..].starts_with(b"NOT")
                && b.get(i + 3).is_none_or(|n| n.is_ascii_whitespace()) =>
            {
                nesting += 1;
            }
            _ => {}
        }
        word_start = c.is_ascii_whitespace() || c == b'(' || c == b'+' || c == b'-';
    }
    if nesting > MAX_QUERY_NESTING {
        return Err(StoreError::BadQuery(format!(
            "the query has {nesting} groups and NOTs, more than the limit of {MAX_QUERY_NESTING}; write it with fewer parentheses"
        )));
    }
    Ok(())
}

/// Parses a user query against one split's schema: bare words search the body and attribute
/// values; `field:value` targets a field or an attribute (`http.status_code:500`).
fn parse_user_query(
    schema: &tantivy::schema::Schema,
    default_fields: Vec<Field>,
    text: &str,
) -> Result<Box<dyn Query>> {
    check_query_shape(text)?;
    // Parsed against the schema, not a split, so a bad query is refused even before any
    // data has arrived.
    let tokenizers = tantivy::tokenizer::TokenizerManager::default();
    crate::schema::register_tokenizers(&tokenizers);
    let mut parser = QueryParser::new(schema.clone(), default_fields, tokenizers);
    parser.set_conjunction_by_default();
    parser.parse_query(text).map_err(|e| {
        StoreError::BadQuery(format!(
            "cannot read query '{text}': {e}. Use words (timeout), field:value (service:payment, severity:error, http.status_code:500), AND/OR/NOT and parentheses"
        ))
    })
}

/// The tantivy query of a log filter over a time range.
pub(crate) fn log_query(
    fields: &LogFields,
    filter: &LogFilter,
    range: TimeRange,
) -> Result<BooleanQuery> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if range != TimeRange::ALL {
        clauses.push((Occur::Must, time_range_query(fields.time, range)));
    }
    if let Some(text) = filter.text.as_deref().filter(|t| !t.trim().is_empty()) {
        clauses.push((
            Occur::Must,
            parse_user_query(&fields.schema, vec![fields.body, fields.attributes], text)?,
        ));
    }
    for (field, value) in [
        (fields.service, &filter.service),
        (fields.host, &filter.host),
    ] {
        if let Some(v) = value {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(field, v),
                    IndexRecordOption::Basic,
                )),
            ));
        }
    }
    if let Some(min) = filter.min_severity {
        clauses.push((
            Occur::Must,
            Box::new(RangeQuery::new(
                Bound::Included(Term::from_field_u64(
                    fields.severity_number,
                    u64::try_from(min).unwrap_or(0),
                )),
                Bound::Unbounded,
            )),
        ));
    }
    if clauses.is_empty() {
        // A query with no clause matches nothing; with no condition, everything matches.
        clauses.push((Occur::Must, Box::new(AllQuery)));
    }
    Ok(BooleanQuery::new(clauses))
}

/// Searches logs, newest first.
pub fn search_logs(
    list: &SplitList,
    fields: &LogFields,
    filter: &LogFilter,
    range: TimeRange,
    limit: usize,
) -> Result<Found<skein_model::LogRecord>> {
    let query = log_query(fields, filter, range)?;
    newest::<crate::Logs>(list, fields, &query, range, limit)
}

/// Filters of a span search (for trace search).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SpanFilter {
    /// Only this service.
    pub service: Option<String>,
    /// Only this span name.
    pub operation: Option<String>,
    /// Only spans at least this long (ns).
    pub min_duration: Option<u64>,
    /// Only spans at most this long (ns).
    pub max_duration: Option<u64>,
    /// Only error spans (true) or only non-error spans (false).
    pub error: Option<bool>,
    /// Attribute conditions a span must all meet, `(name, value)`: the span's attributes or
    /// its resource's hold `name` with `value` (a string equal to it, or a number or bool
    /// that reads as it). Three names are fields of the span instead: `error` (`true` is
    /// status error, `false` anything else), `otel.status_code` (`ok`, `error`, `unset`, any
    /// case) and `span.kind` (`server`, `client`, ...). Left out of the wire form when empty,
    /// so a filter without tags reads the same on nodes that predate them; a node that
    /// predates them ignores them, and a caller that sends tags across a cluster checks the
    /// spans again with [`SpanFilter::matches_tags`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
}

/// Most tags one [`SpanFilter`] may hold: more are refused by the API and, from another
/// node, by the read's bounds check.
pub const MAX_SPAN_TAGS: usize = 32;

impl SpanFilter {
    /// True when `span` meets every tag condition of the filter, by the same rules as the
    /// index query (strings equal; numbers and bools equal to the value read as one).
    pub fn matches_tags(&self, span: &skein_model::Span) -> bool {
        self.tags.iter().all(|(k, v)| {
            match k.as_str() {
                "error" => return (v == "true") == span.is_error(),
                "otel.status_code" => return span.status_code.eq_ignore_ascii_case(v),
                "span.kind" => return span.kind.eq_ignore_ascii_case(v),
                _ => {}
            }
            // A span attribute wins over a resource attribute of the same name, as indexed.
            match span.attributes.get(k).or_else(|| span.resource.get(k)) {
                Some(serde_json::Value::String(s)) => s == v,
                Some(serde_json::Value::Bool(b)) => v.parse::<bool>().is_ok_and(|x| x == *b),
                Some(serde_json::Value::Number(n)) => match (n.as_f64(), v.parse::<f64>()) {
                    (Some(a), Ok(b)) => a == b,
                    _ => false,
                },
                _ => false,
            }
        })
    }
}

/// The query of one tag condition on the attributes JSON field: the value as a string term,
/// or as a number or bool term when it reads as one (the index keeps each attribute's type).
fn span_tag_query(fields: &SpanFields, name: &str, value: &str) -> Box<dyn Query> {
    // Tantivy ends a JSON path at NUL and separates segments with 0x01; a name holding a
    // control character would fail an assertion inside it, and no attribute is named so.
    if name.is_empty() || name.chars().any(char::is_control) {
        return Box::new(BooleanQuery::new(Vec::new()));
    }
    let base = Term::from_field_json_path(fields.attributes, name, true);
    let mut text = base.clone();
    text.append_type_and_str(value);
    let mut alternatives: Vec<(Occur, Box<dyn Query>)> = vec![(
        Occur::Should,
        Box::new(TermQuery::new(text, IndexRecordOption::Basic)),
    )];
    if let Some(typed) =
        tantivy::json_utils::convert_to_fast_value_and_append_to_json_term(&base, value, false)
    {
        alternatives.push((
            Occur::Should,
            Box::new(TermQuery::new(typed, IndexRecordOption::Basic)),
        ));
    }
    Box::new(BooleanQuery::new(alternatives))
}

/// The tantivy query of a span filter over a time range.
pub(crate) fn span_query(
    fields: &SpanFields,
    filter: &SpanFilter,
    range: TimeRange,
) -> BooleanQuery {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> =
        vec![(Occur::Must, time_range_query(fields.time, range))];
    let term = |f: Field, v: &str| -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(f, v),
            IndexRecordOption::Basic,
        ))
    };
    if let Some(s) = &filter.service {
        clauses.push((Occur::Must, term(fields.service, s)));
    }
    if let Some(o) = &filter.operation {
        clauses.push((Occur::Must, term(fields.name, o)));
    }
    if filter.min_duration.is_some() || filter.max_duration.is_some() {
        let lo = filter
            .min_duration
            .map(|d| Bound::Included(Term::from_field_u64(fields.duration, d)))
            .unwrap_or(Bound::Unbounded);
        let hi = filter
            .max_duration
            .map(|d| Bound::Included(Term::from_field_u64(fields.duration, d)))
            .unwrap_or(Bound::Unbounded);
        clauses.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
    }
    match filter.error {
        Some(true) => clauses.push((Occur::Must, term(fields.status, "error"))),
        Some(false) => {
            clauses.push((Occur::Must, Box::new(AllQuery)));
            clauses.push((Occur::MustNot, term(fields.status, "error")));
        }
        None => {}
    }
    let term_lower = |f: Field, v: &str| term(f, &v.to_ascii_lowercase());
    for (name, value) in &filter.tags {
        match name.as_str() {
            "error" if value == "true" => clauses.push((Occur::Must, term(fields.status, "error"))),
            "error" => clauses.push((Occur::MustNot, term(fields.status, "error"))),
            "otel.status_code" => clauses.push((Occur::Must, term_lower(fields.status, value))),
            "span.kind" => clauses.push((Occur::Must, term_lower(fields.kind, value))),
            _ => clauses.push((Occur::Must, span_tag_query(fields, name, value))),
        }
    }
    BooleanQuery::new(clauses)
}

/// Searches spans, newest first.
pub fn search_spans(
    list: &SplitList,
    fields: &SpanFields,
    filter: &SpanFilter,
    range: TimeRange,
    limit: usize,
) -> Result<Found<skein_model::Span>> {
    let query = span_query(fields, filter, range);
    newest::<crate::Spans>(list, fields, &query, range, limit)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::LogFields;

    /// Builds the log query of `text` the way a search does, on a thread with the 2 MiB stack
    /// of a blocking worker, so that a stack overflow would abort this test.
    fn parse(text: String) -> Result<BooleanQuery> {
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let filter = LogFilter {
                    text: Some(text),
                    ..Default::default()
                };
                log_query(&LogFields::new(), &filter, TimeRange::ALL)
            })
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn deeply_nested_queries_are_refused_before_parsing() {
        let n = 3_000;
        for text in [
            format!("{}a{}", "(".repeat(n), ")".repeat(n)),
            format!("{}a", "NOT ".repeat(n)),
            format!("{}a{}", "(NOT ".repeat(n / 2), ")".repeat(n / 2)),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains("limit of 64"), "{err}");
        }
        let err = parse("x ".repeat(MAX_QUERY_BYTES)).unwrap_err().to_string();
        assert!(err.contains("bytes"), "{err}");
    }

    #[test]
    fn control_characters_in_a_query_are_refused_not_a_panic() {
        // Found by the query_parse fuzz target: tantivy asserted on a NUL in a field name.
        for text in ["\0:b", "a\u{1}b:c", "x AND \u{7f}:y"] {
            let err = parse(text.to_string()).unwrap_err().to_string();
            assert!(err.contains("control character"), "{text:?}: {err}");
        }
        assert!(parse("timeout\tservice:order\n".to_string()).is_ok());
    }

    #[test]
    fn ordinary_queries_with_parentheses_quotes_and_dashes_still_parse() {
        let nested = format!("{}timeout{}", "(".repeat(64), ")".repeat(64));
        for ok in [
            "timeout",
            "service:payment AND (timeout OR refused) AND NOT debug",
            "req-7f3a-11ee-b2c4 -NOTICE",
            "\"(((( NOT NOT ((\" AND x",
            "NOTHING NOTE",
            nested.as_str(),
        ] {
            assert!(parse(ok.to_string()).is_ok(), "{ok}");
        }
        let deeper = format!("{}timeout{}", "(".repeat(65), ")".repeat(65));
        assert!(parse(deeper).is_err());
    }
}
