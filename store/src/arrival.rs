//! Reading logs in arrival order by their ingest position (`seq`, see
//! [`crate::schema::LogFields::seq`]): what a live tail needs to go on exactly where it
//! stopped. Positions only grow, and a commit makes a whole prefix of them searchable at once,
//! so "after position p" never skips a record that becomes visible later.
//!
//! Splits are cut by arrival, so their positions do not overlap and grow with the split
//! order; a split whose largest position is not past the cursor is skipped without a search.
//! Splits written before positions existed have none and are never tailed.

use crate::error::{Result, StoreError};
use crate::schema::LogFields;
use crate::search::{LogFilter, TimeRange, load, log_query};
use crate::splits::{SplitHandle, SplitList, current_splits};
use std::ops::Bound;
use std::sync::Arc;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery};
use tantivy::{Order, Searcher, Term};

/// The largest position in a split, None when it has none (empty, or written before
/// positions existed).
fn max_seq(searcher: &Searcher) -> Option<u64> {
    searcher
        .segment_readers()
        .iter()
        .filter_map(|r| r.fast_fields().u64("seq").ok())
        .filter(|c| c.num_docs() > 0)
        .map(|c| c.max_value())
        .max()
}

fn has_seq(split: &SplitHandle) -> bool {
    split.index.schema().get_field("seq").is_ok()
}

/// The largest ingest position of any searchable log (0 when there is none): a tail that
/// starts "now" goes on from here.
pub fn last_seq(list: &SplitList) -> u64 {
    current_splits(list)
        .iter()
        .rev()
        .filter(|s| has_seq(s))
        .find_map(|s| max_seq(&s.reader.searcher()))
        .unwrap_or(0)
}

fn seq_query(fields: &LogFields, filter: &LogFilter, lo: Bound<u64>) -> Result<BooleanQuery> {
    let base = log_query(fields, filter, TimeRange::ALL)?;
    let seq = RangeQuery::new(
        lo.map(|v| Term::from_field_u64(fields.seq, v)),
        Bound::Unbounded,
    );
    Ok(BooleanQuery::new(vec![
        (Occur::Must, Box::new(base) as Box<dyn Query>),
        (Occur::Must, Box::new(seq)),
    ]))
}

/// Logs matching `filter` with a position after `after`, oldest first, at most `limit`, each
/// with its position. The flag says more were there.
pub fn logs_after(
    list: &SplitList,
    fields: &LogFields,
    filter: &LogFilter,
    after: u64,
    limit: usize,
) -> Result<(Vec<(u64, skein_model::LogRecord)>, bool)> {
    let query = seq_query(fields, filter, Bound::Excluded(after))?;
    let mut out: Vec<(u64, skein_model::LogRecord)> = Vec::new();
    let splits: Vec<Arc<SplitHandle>> = current_splits(list);
    for split in splits.iter().filter(|s| has_seq(s)) {
        let searcher = split.reader.searcher();
        if max_seq(&searcher).is_none_or(|m| m <= after) {
            continue;
        }
        let want = limit + 1 - out.len();
        let top = TopDocs::with_limit(want).order_by_fast_field::<u64>("seq", Order::Asc);
        let found = searcher
            .search(&query, &top)
            .map_err(|e| StoreError::index("tail", e))?;
        for (seq, addr) in found {
            let rec = load::<crate::Logs>(&searcher, fields, addr)?;
            out.push((seq.unwrap_or(0), rec));
        }
        if out.len() > limit {
            break;
        }
    }
    let more = out.len() > limit;
    out.truncate(limit);
    Ok((out, more))
}

/// The newest `n` logs matching `filter` by position, oldest first: where a tail that shows
/// some history starts.
pub fn last_logs(
    list: &SplitList,
    fields: &LogFields,
    filter: &LogFilter,
    n: usize,
) -> Result<Vec<(u64, skein_model::LogRecord)>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    // Position 0 is "none": records with one are at 1 and above.
    let query = seq_query(fields, filter, Bound::Included(1))?;
    let mut out: Vec<(u64, skein_model::LogRecord)> = Vec::new();
    for split in current_splits(list).iter().rev().filter(|s| has_seq(s)) {
        let searcher = split.reader.searcher();
        let want = n - out.len();
        let top = TopDocs::with_limit(want).order_by_fast_field::<u64>("seq", Order::Desc);
        let found = searcher
            .search(&query, &top)
            .map_err(|e| StoreError::index("tail", e))?;
        for (seq, addr) in found {
            out.push((
                seq.unwrap_or(0),
                load::<crate::Logs>(&searcher, fields, addr)?,
            ));
        }
        if out.len() >= n {
            break;
        }
    }
    out.sort_by_key(|(s, _)| *s);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Logs, SplitConfig, SplitStore};
    use skein_model::LogRecord;

    fn cfg() -> SplitConfig {
        SplitConfig::small()
    }

    fn log(service: &str, body: &str) -> LogRecord {
        LogRecord {
            time_unix_nano: 1_000,
            service: service.into(),
            severity_number: 9,
            body: body.into(),
            ..Default::default()
        }
    }

    fn bodies(v: &[(u64, LogRecord)]) -> Vec<String> {
        v.iter().map(|(_, r)| r.body.clone()).collect()
    }

    #[test]
    fn resumes_after_a_position_in_arrival_order_across_commits() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SplitStore::<Logs>::open(dir.path(), cfg()).unwrap();
        let (list, f) = (s.split_list(), s.fields().clone());
        assert_eq!(last_seq(&list), 0);
        s.add_sequenced(&[log("a", "one"), log("b", "two")], None, 100)
            .unwrap();
        s.commit(1).unwrap();
        assert_eq!(last_seq(&list), 101);
        let all = LogFilter::default();
        let (got, more) = logs_after(&list, &f, &all, 0, 10).unwrap();
        assert_eq!(bodies(&got), ["one", "two"]);
        assert_eq!(got[1].0, 101);
        assert!(!more);
        // Records without a position (not from the WAL) are not tailed.
        s.add(&[log("a", "no position")]).unwrap();
        s.add_sequenced(&[log("a", "three"), log("a", "four")], None, 200)
            .unwrap();
        s.commit(2).unwrap();
        let (got, more) = logs_after(&list, &f, &all, 101, 1).unwrap();
        assert_eq!((bodies(&got), more), (vec!["three".to_string()], true));
        let (got, _) = logs_after(&list, &f, &all, got[0].0, 10).unwrap();
        assert_eq!(bodies(&got), ["four"]);
        let only_b = LogFilter {
            service: Some("b".into()),
            ..Default::default()
        };
        assert_eq!(
            bodies(&logs_after(&list, &f, &only_b, 0, 10).unwrap().0),
            ["two"]
        );
        assert_eq!(
            bodies(&last_logs(&list, &f, &all, 2).unwrap()),
            ["three", "four"]
        );
        assert!(logs_after(&list, &f, &all, 201, 10).unwrap().0.is_empty());
    }

    #[test]
    fn context_is_the_lines_around_a_moment_from_one_service_and_host() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SplitStore::<Logs>::open(dir.path(), cfg()).unwrap();
        let at = |t: u64, service: &str, host: &str, body: &str| LogRecord {
            time_unix_nano: t,
            service: service.into(),
            host: host.into(),
            body: body.into(),
            ..Default::default()
        };
        s.add(&[
            at(10, "pay", "h1", "a"),
            at(20, "pay", "h1", "b"),
            at(25, "pay", "h2", "other host"),
            at(30, "pay", "h1", "c"),
            at(35, "order", "h1", "other service"),
            at(40, "pay", "h1", "d"),
            at(50, "pay", "h1", "e"),
        ])
        .unwrap();
        s.commit(1).unwrap();
        let (list, f) = (s.split_list(), s.fields().clone());
        let filter = LogFilter {
            service: Some("pay".into()),
            host: Some("h1".into()),
            ..Default::default()
        };
        let body = |v: &[LogRecord]| v.iter().map(|r| r.body.clone()).collect::<Vec<_>>();
        let (b, a) = crate::search::logs_around(&list, &f, &filter, 30, 2, 2).unwrap();
        assert_eq!(body(&b), ["a", "b"]);
        assert_eq!(body(&a), ["c", "d"]);
        let (b, a) = crate::search::logs_around(&list, &f, &filter, 30, 1, 0).unwrap();
        assert_eq!((body(&b), a.len()), (vec!["b".to_string()], 0));
    }
}
