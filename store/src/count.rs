//! Counting records that match a filter, optionally per value of one or two string fast
//! fields (a log count per service, a slow-span count per service and operation). Alert rules
//! over logs and traces run these every few seconds, so they read only fast fields and never
//! load a document.

use crate::error::{Result, StoreError};
use crate::schema::{LogFields, SpanFields};
use crate::search::{LogFilter, SpanFilter, TimeRange, log_query, searchable_splits, span_query};
use crate::splits::SplitList;
use std::collections::HashMap;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::query::Query;
use tantivy::{DocId, Score, SegmentReader};

/// Most distinct groups one count keeps; further groups are not counted and the answer says
/// it was cut.
pub const MAX_GROUPS: usize = 10_000;

/// Counts per group: the group's field values (in the order asked) and the count.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// Groups and their counts. With no group fields there is one entry with no values
    /// (also when the count is 0).
    pub groups: Vec<(Vec<String>, u64)>,
    /// True when more than [`MAX_GROUPS`] groups matched.
    pub truncated: bool,
}

/// Counts logs matching `filter` in `range`, per value of each field in `by` (`service`).
pub fn count_logs(
    list: &SplitList,
    fields: &LogFields,
    filter: &LogFilter,
    range: TimeRange,
    by: &[&str],
) -> Result<Counts> {
    let query = log_query(fields, filter, range)?;
    count(list, &query, range, by)
}

/// Counts spans matching `filter` in `range`, per value of each field in `by` (`service`,
/// `name`).
pub fn count_spans(
    list: &SplitList,
    fields: &SpanFields,
    filter: &SpanFilter,
    range: TimeRange,
    by: &[&str],
) -> Result<Counts> {
    let query = span_query(fields, filter, range);
    count(list, &query, range, by)
}

fn count(list: &SplitList, query: &dyn Query, range: TimeRange, by: &[&str]) -> Result<Counts> {
    let collector = GroupCount {
        fields: by.iter().map(|s| s.to_string()).collect(),
    };
    let mut total: HashMap<Vec<String>, u64> = HashMap::new();
    let mut truncated = false;
    for split in searchable_splits(list, range) {
        StoreError::check_deadline()?;
        let searcher = split.reader.searcher();
        let fruit = searcher
            .search(query, &collector)
            .map_err(|e| StoreError::index("count", e))?;
        truncated |= fruit.truncated;
        for (k, n) in fruit.groups {
            if total.len() >= MAX_GROUPS && !total.contains_key(&k) {
                truncated = true;
                continue;
            }
            *total.entry(k).or_default() += n;
        }
    }
    if by.is_empty() && total.is_empty() {
        total.insert(Vec::new(), 0);
    }
    let mut groups: Vec<_> = total.into_iter().collect();
    groups.sort();
    Ok(Counts { groups, truncated })
}

struct GroupCount {
    fields: Vec<String>,
}

struct Fruit {
    groups: HashMap<Vec<String>, u64>,
    truncated: bool,
}

struct SegmentCount {
    columns: Vec<Option<StrColumn>>,
    counts: HashMap<Vec<u64>, u64>,
    truncated: bool,
}

/// The ordinal of a document without a value.
const NONE: u64 = u64::MAX;

impl Collector for GroupCount {
    type Fruit = Fruit;
    type Child = SegmentCount;

    fn for_segment(&self, _id: u32, reader: &SegmentReader) -> tantivy::Result<SegmentCount> {
        let mut columns = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            columns.push(reader.fast_fields().str(f)?);
        }
        Ok(SegmentCount {
            columns,
            counts: HashMap::new(),
            truncated: false,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Fruit>) -> tantivy::Result<Fruit> {
        let mut out = Fruit {
            groups: HashMap::new(),
            truncated: false,
        };
        for f in fruits {
            out.truncated |= f.truncated;
            for (k, n) in f.groups {
                *out.groups.entry(k).or_default() += n;
            }
        }
        Ok(out)
    }
}

impl SegmentCollector for SegmentCount {
    type Fruit = Fruit;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let key: Vec<u64> = self
            .columns
            .iter()
            .map(|c| c.as_ref().and_then(|c| c.ords().first(doc)).unwrap_or(NONE))
            .collect();
        if self.counts.len() >= MAX_GROUPS && !self.counts.contains_key(&key) {
            self.truncated = true;
            return;
        }
        *self.counts.entry(key).or_default() += 1;
    }

    fn harvest(self) -> Fruit {
        let mut groups = HashMap::with_capacity(self.counts.len());
        let mut buf = String::new();
        for (ords, n) in self.counts {
            let mut key = Vec::with_capacity(ords.len());
            for (col, ord) in self.columns.iter().zip(ords) {
                buf.clear();
                if let Some(col) = col
                    && ord != NONE
                {
                    // A failed read leaves the value empty rather than dropping the count.
                    let _ = col.ord_to_str(ord, &mut buf);
                }
                key.push(buf.clone());
            }
            *groups.entry(key).or_default() += n;
        }
        Fruit {
            groups,
            truncated: self.truncated,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Logs, Spans, SplitConfig, SplitStore};
    use skein_model::{LogRecord, Span};

    fn cfg() -> SplitConfig {
        SplitConfig::small()
    }

    fn log(t: u64, service: &str, sev: i32, body: &str) -> LogRecord {
        LogRecord {
            time_unix_nano: t,
            service: service.into(),
            severity_number: sev,
            body: body.into(),
            ..Default::default()
        }
    }

    #[test]
    fn counts_logs_per_service_with_filters_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SplitStore::<Logs>::open(dir.path(), cfg()).unwrap();
        s.add(&[
            log(100, "payment", 17, "bank timeout"),
            log(200, "payment", 17, "bank timeout"),
            log(300, "payment", 9, "charged"),
            log(400, "order", 21, "panic"),
            log(5_000, "order", 17, "late error"),
        ])
        .unwrap();
        s.commit(1).unwrap();
        // A second split, so counts add across splits.
        s.add(&[log(500, "payment", 17, "bank timeout")]).unwrap();
        s.commit(2).unwrap();
        let (list, f) = (s.split_list(), s.fields().clone());
        let errors = LogFilter {
            min_severity: Some(17),
            ..Default::default()
        };
        let range = TimeRange {
            start: 0,
            end: 1_000,
        };
        let c = count_logs(&list, &f, &errors, range, &["service"]).unwrap();
        assert_eq!(
            c.groups,
            vec![
                (vec!["order".to_string()], 1),
                (vec!["payment".to_string()], 3)
            ]
        );
        assert!(!c.truncated);
        let all = count_logs(&list, &f, &LogFilter::default(), TimeRange::ALL, &[]).unwrap();
        assert_eq!(all.groups, vec![(vec![], 6)]);
        let text = LogFilter {
            text: Some("timeout".into()),
            service: Some("payment".into()),
            ..Default::default()
        };
        assert_eq!(
            count_logs(&list, &f, &text, range, &[]).unwrap().groups,
            vec![(vec![], 3)]
        );
        // Nothing matches: one group with 0 when not grouped, none when grouped.
        let none = TimeRange {
            start: 10_000,
            end: 20_000,
        };
        assert_eq!(
            count_logs(&list, &f, &errors, none, &[]).unwrap().groups,
            vec![(vec![], 0)]
        );
        assert!(
            count_logs(&list, &f, &errors, none, &["service"])
                .unwrap()
                .groups
                .is_empty()
        );
    }

    #[test]
    fn counts_slow_spans_per_service_and_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SplitStore::<Spans>::open(dir.path(), cfg()).unwrap();
        let span = |i: u8, service: &str, name: &str, ms: u64, status: &str| Span {
            trace_id: format!("{i:032x}"),
            span_id: format!("{i:016x}"),
            service: service.into(),
            name: name.into(),
            start_unix_nano: 1_000,
            end_unix_nano: 1_000 + ms * 1_000_000,
            duration_ns: ms * 1_000_000,
            status_code: status.into(),
            ..Default::default()
        };
        s.add(&[
            span(1, "order", "POST /orders", 2_500, "ok"),
            span(2, "order", "POST /orders", 100, "ok"),
            span(3, "order", "GET /orders", 3_000, "error"),
            span(4, "payment", "charge", 4_000, "ok"),
        ])
        .unwrap();
        s.commit(1).unwrap();
        let (list, f) = (s.split_list(), s.fields().clone());
        let slow = SpanFilter {
            min_duration: Some(2_000_000_000),
            ..Default::default()
        };
        let c = count_spans(&list, &f, &slow, TimeRange::ALL, &["service", "name"]).unwrap();
        let want = |s: &str, n: &str, c: u64| (vec![s.to_string(), n.to_string()], c);
        assert_eq!(
            c.groups,
            vec![
                want("order", "GET /orders", 1),
                want("order", "POST /orders", 1),
                want("payment", "charge", 1)
            ]
        );
        let errors = SpanFilter {
            error: Some(true),
            service: Some("order".into()),
            ..Default::default()
        };
        assert_eq!(
            count_spans(&list, &f, &errors, TimeRange::ALL, &[])
                .unwrap()
                .groups,
            vec![(vec![], 1)]
        );
    }
}
