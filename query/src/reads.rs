//! Store reads: the few questions the engine asks of the indexes, as values.
//!
//! Every answer the query API gives is built from these reads (key lookups, searches, counts,
//! logs by arrival). On one node they run on the local splits ([`LocalReads`]); in a cluster
//! the same [`Read`] is sent to the owners of each partition and the answers merged with
//! [`merge`], so every route, today's and later ones, works in a cluster without fan-out code
//! of its own. A read and its answer are serde values because they cross the network.

use crate::QueryError;
use serde::{Deserialize, Serialize};
use skein_model::{LogRecord, Span};
use skein_store::count::Counts;
use skein_store::schema::{LogFields, SpanFields};
use skein_store::search::{self, Found, LogFilter, SpanFilter, TimeRange};
use skein_store::{Logs, Spans, SplitList};
use std::collections::BTreeMap;

/// One store read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Read {
    /// Spans carrying any of the keys (trace IDs or correlation keys).
    SpansByKeys {
        /// Keys.
        keys: Vec<String>,
        /// Most spans.
        limit: usize,
    },
    /// Logs carrying any of the keys.
    LogsByKeys {
        /// Keys.
        keys: Vec<String>,
        /// Most logs.
        limit: usize,
    },
    /// Spans of these trace IDs.
    SpansByTraceIds {
        /// Trace IDs, lower-case hex.
        ids: Vec<String>,
        /// Most spans.
        limit: usize,
    },
    /// Logs matching a filter, newest first.
    SearchLogs {
        /// Filter.
        filter: LogFilter,
        /// Window.
        range: TimeRange,
        /// Most logs.
        limit: usize,
    },
    /// Spans matching a filter, newest first.
    SearchSpans {
        /// Filter.
        filter: SpanFilter,
        /// Window.
        range: TimeRange,
        /// Most spans.
        limit: usize,
    },
    /// Lines before and after a moment.
    LogsAround {
        /// Filter.
        filter: LogFilter,
        /// The moment, Unix ns.
        time: u64,
        /// Lines before.
        before: usize,
        /// Lines after.
        after: usize,
    },
    /// Counts of logs per group.
    CountLogs {
        /// Filter.
        filter: LogFilter,
        /// Window.
        range: TimeRange,
        /// Group fields.
        by: Vec<String>,
    },
    /// Counts of spans per group.
    CountSpans {
        /// Filter.
        filter: SpanFilter,
        /// Window.
        range: TimeRange,
        /// Group fields.
        by: Vec<String>,
    },
    /// Logs after an ingest position, oldest first.
    LogsAfter {
        /// Filter.
        filter: LogFilter,
        /// Ingest position.
        after: u64,
        /// Most logs.
        limit: usize,
    },
    /// The newest logs by ingest position.
    LastLogs {
        /// Filter.
        filter: LogFilter,
        /// How many.
        n: usize,
    },
    /// The largest ingest position of a searchable log.
    LastLogSeq,
}

/// Largest `limit` (or `n`, `before`, `after`) a read from another node may ask for: the
/// engine's own largest (a trace search of 1,000 traces of 10,000 spans each).
pub const MAX_READ_LIMIT: usize = 10_000_000;
/// Most keys or trace IDs in one read from another node.
pub const MAX_READ_KEYS: usize = 10_000;
/// Most group fields of a count.
pub const MAX_READ_GROUPS: usize = 8;

impl Read {
    /// Checks the bounds of a read that came from outside the process (another node): a
    /// read within them costs what the engine's own reads may cost.
    pub fn check(&self) -> Result<(), String> {
        let (limits, keys, groups): (Vec<usize>, usize, usize) = match self {
            Read::SpansByKeys { keys, limit } | Read::LogsByKeys { keys, limit } => {
                (vec![*limit], keys.len(), 0)
            }
            Read::SpansByTraceIds { ids, limit } => (vec![*limit], ids.len(), 0),
            Read::SearchLogs { limit, .. } | Read::SearchSpans { limit, .. } => {
                (vec![*limit], 0, 0)
            }
            Read::LogsAround { before, after, .. } => (vec![*before, *after], 0, 0),
            Read::CountLogs { by, .. } | Read::CountSpans { by, .. } => (vec![], 0, by.len()),
            Read::LogsAfter { limit, .. } => (vec![*limit], 0, 0),
            Read::LastLogs { n, .. } => (vec![*n], 0, 0),
            Read::LastLogSeq => (vec![], 0, 0),
        };
        if limits.iter().any(|l| *l > MAX_READ_LIMIT) {
            return Err(format!(
                "a read may ask for at most {MAX_READ_LIMIT} records"
            ));
        }
        if keys > MAX_READ_KEYS {
            return Err(format!("a read may carry at most {MAX_READ_KEYS} keys"));
        }
        if groups > MAX_READ_GROUPS {
            return Err(format!(
                "a count may group by at most {MAX_READ_GROUPS} fields"
            ));
        }
        if let Read::SearchSpans { filter, .. } | Read::CountSpans { filter, .. } = self
            && filter.tags.len() > search::MAX_SPAN_TAGS
        {
            return Err(format!(
                "a span filter may hold at most {} tags",
                search::MAX_SPAN_TAGS
            ));
        }
        Ok(())
    }
}

/// The answer to one [`Read`], of the variant the read asks for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReadResult {
    /// Spans.
    Spans {
        /// Found.
        found: Found<Span>,
    },
    /// Logs.
    Logs {
        /// Found.
        found: Found<LogRecord>,
    },
    /// Lines around a moment.
    Around {
        /// Before, oldest first.
        before: Vec<LogRecord>,
        /// After, oldest first.
        after: Vec<LogRecord>,
    },
    /// Counts.
    Counts {
        /// Counts.
        counts: Counts,
    },
    /// Logs with their ingest positions, oldest first, and whether more were there.
    Sequenced {
        /// Logs.
        logs: Vec<(u64, LogRecord)>,
        /// More were there.
        more: bool,
    },
    /// An ingest position.
    Seq {
        /// It.
        seq: u64,
    },
}

/// Something that answers store reads.
pub trait Reads: Send + Sync {
    /// Answers one read.
    fn read(&self, read: &Read) -> Result<ReadResult, QueryError>;
}

/// Reads over splits on this node.
#[derive(Clone)]
pub struct LocalReads {
    logs: SplitList,
    log_fields: LogFields,
    spans: SplitList,
    span_fields: SpanFields,
}

impl LocalReads {
    /// Reads over these split lists.
    pub fn new(
        logs: SplitList,
        log_fields: LogFields,
        spans: SplitList,
        span_fields: SpanFields,
    ) -> Self {
        LocalReads {
            logs,
            log_fields,
            spans,
            span_fields,
        }
    }
}

fn by(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

impl Reads for LocalReads {
    fn read(&self, read: &Read) -> Result<ReadResult, QueryError> {
        let (l, lf, s, sf) = (&self.logs, &self.log_fields, &self.spans, &self.span_fields);
        Ok(match read {
            Read::SpansByKeys { keys, limit } => ReadResult::Spans {
                found: search::by_keys::<Spans>(s, sf, keys, *limit)?,
            },
            Read::LogsByKeys { keys, limit } => ReadResult::Logs {
                found: search::by_keys::<Logs>(l, lf, keys, *limit)?,
            },
            Read::SpansByTraceIds { ids, limit } => ReadResult::Spans {
                found: search::by_terms::<Spans>(s, sf, sf.trace_id, ids, *limit)?,
            },
            Read::SearchLogs {
                filter,
                range,
                limit,
            } => ReadResult::Logs {
                found: search::search_logs(l, lf, filter, *range, *limit)?,
            },
            Read::SearchSpans {
                filter,
                range,
                limit,
            } => ReadResult::Spans {
                found: search::search_spans(s, sf, filter, *range, *limit)?,
            },
            Read::LogsAround {
                filter,
                time,
                before,
                after,
            } => {
                let (before, after) = search::logs_around(l, lf, filter, *time, *before, *after)?;
                ReadResult::Around { before, after }
            }
            Read::CountLogs {
                filter,
                range,
                by: b,
            } => ReadResult::Counts {
                counts: skein_store::count::count_logs(l, lf, filter, *range, &by(b))?,
            },
            Read::CountSpans {
                filter,
                range,
                by: b,
            } => ReadResult::Counts {
                counts: skein_store::count::count_spans(s, sf, filter, *range, &by(b))?,
            },
            Read::LogsAfter {
                filter,
                after,
                limit,
            } => {
                let (logs, more) = skein_store::arrival::logs_after(l, lf, filter, *after, *limit)?;
                ReadResult::Sequenced { logs, more }
            }
            Read::LastLogs { filter, n } => ReadResult::Sequenced {
                logs: skein_store::arrival::last_logs(l, lf, filter, *n)?,
                more: false,
            },
            Read::LastLogSeq => ReadResult::Seq {
                seq: skein_store::arrival::last_seq(l),
            },
        })
    }
}

fn wrong(read: &Read) -> QueryError {
    QueryError::Internal(format!(
        "a store read answered with the wrong kind: {read:?}"
    ))
}

/// Merges the answers of several partitions to one read into the answer one store holding all
/// of them would give, under the read's limits. Each part is assumed to be the answer of a
/// different partition (no record in two parts).
pub fn merge(read: &Read, parts: Vec<ReadResult>) -> Result<ReadResult, QueryError> {
    if parts.len() == 1 {
        return parts.into_iter().next().ok_or_else(|| wrong(read));
    }
    let (limit, newest_first) = match read {
        Read::SpansByKeys { limit, .. }
        | Read::LogsByKeys { limit, .. }
        | Read::SpansByTraceIds { limit, .. } => (*limit, false),
        Read::SearchLogs { limit, .. } | Read::SearchSpans { limit, .. } => (*limit, true),
        _ => (0, false),
    };
    match read {
        Read::SpansByKeys { .. } | Read::SpansByTraceIds { .. } | Read::SearchSpans { .. } => {
            let mut all = Vec::new();
            let mut truncated = false;
            for p in parts {
                let ReadResult::Spans { found } = p else {
                    return Err(wrong(read));
                };
                truncated |= found.truncated;
                all.extend(found.records);
            }
            if newest_first {
                all.sort_by_key(|s| std::cmp::Reverse(s.start_unix_nano));
            }
            truncated |= all.len() > limit;
            all.truncate(limit);
            Ok(ReadResult::Spans {
                found: Found {
                    records: all,
                    truncated,
                },
            })
        }
        Read::LogsByKeys { .. } | Read::SearchLogs { .. } => {
            let mut all = Vec::new();
            let mut truncated = false;
            for p in parts {
                let ReadResult::Logs { found } = p else {
                    return Err(wrong(read));
                };
                truncated |= found.truncated;
                all.extend(found.records);
            }
            if newest_first {
                all.sort_by_key(|l| std::cmp::Reverse(l.time_unix_nano));
            }
            truncated |= all.len() > limit;
            all.truncate(limit);
            Ok(ReadResult::Logs {
                found: Found {
                    records: all,
                    truncated,
                },
            })
        }
        Read::LogsAround { before, after, .. } => {
            let (mut b, mut a) = (Vec::new(), Vec::new());
            for p in parts {
                let ReadResult::Around { before, after } = p else {
                    return Err(wrong(read));
                };
                b.extend(before);
                a.extend(after);
            }
            b.sort_by_key(|l| l.time_unix_nano);
            a.sort_by_key(|l| l.time_unix_nano);
            let cut = b.len().saturating_sub(*before);
            b.drain(..cut);
            a.truncate(*after);
            Ok(ReadResult::Around {
                before: b,
                after: a,
            })
        }
        Read::CountLogs { .. } | Read::CountSpans { .. } => {
            let mut sums: BTreeMap<Vec<String>, u64> = BTreeMap::new();
            let mut order: Vec<Vec<String>> = Vec::new();
            let mut truncated = false;
            for p in parts {
                let ReadResult::Counts { counts } = p else {
                    return Err(wrong(read));
                };
                truncated |= counts.truncated;
                for (g, n) in counts.groups {
                    let e = sums.entry(g.clone()).or_insert_with(|| {
                        order.push(g);
                        0
                    });
                    *e += n;
                }
            }
            let groups = order
                .into_iter()
                .map(|g| {
                    let n = sums.get(&g).copied().unwrap_or(0);
                    (g, n)
                })
                .collect();
            Ok(ReadResult::Counts {
                counts: Counts { groups, truncated },
            })
        }
        Read::LogsAfter { limit, .. } => {
            let mut all = Vec::new();
            let mut more = false;
            for p in parts {
                let ReadResult::Sequenced { logs, more: m } = p else {
                    return Err(wrong(read));
                };
                more |= m;
                all.extend(logs);
            }
            all.sort_by_key(|(seq, _)| *seq);
            more |= all.len() > *limit;
            all.truncate(*limit);
            Ok(ReadResult::Sequenced { logs: all, more })
        }
        Read::LastLogs { n, .. } => {
            let mut all = Vec::new();
            for p in parts {
                let ReadResult::Sequenced { logs, .. } = p else {
                    return Err(wrong(read));
                };
                all.extend(logs);
            }
            all.sort_by_key(|(seq, _)| *seq);
            let cut = all.len().saturating_sub(*n);
            all.drain(..cut);
            Ok(ReadResult::Sequenced {
                logs: all,
                more: false,
            })
        }
        Read::LastLogSeq => {
            let mut max = 0;
            for p in parts {
                let ReadResult::Seq { seq } = p else {
                    return Err(wrong(read));
                };
                max = max.max(seq);
            }
            Ok(ReadResult::Seq { seq: max })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn log(t: u64) -> LogRecord {
        LogRecord {
            time_unix_nano: t,
            ..Default::default()
        }
    }

    fn logs(ts: &[u64], truncated: bool) -> ReadResult {
        ReadResult::Logs {
            found: Found {
                records: ts.iter().map(|t| log(*t)).collect(),
                truncated,
            },
        }
    }

    #[test]
    fn searches_merge_newest_first_under_the_limit() {
        let read = Read::SearchLogs {
            filter: LogFilter::default(),
            range: TimeRange::ALL,
            limit: 3,
        };
        let merged = merge(&read, vec![logs(&[9, 5, 1], false), logs(&[8, 7], false)]).unwrap();
        let ReadResult::Logs { found } = merged else {
            panic!("wrong kind")
        };
        let times: Vec<u64> = found.records.iter().map(|l| l.time_unix_nano).collect();
        assert_eq!(times, vec![9, 8, 7]);
        assert!(found.truncated, "records were cut by the limit");
    }

    #[test]
    fn counts_sum_per_group_and_arrival_merges_by_position() {
        let read = Read::CountLogs {
            filter: LogFilter::default(),
            range: TimeRange::ALL,
            by: vec!["service".into()],
        };
        let c = |g: &[(&str, u64)]| ReadResult::Counts {
            counts: Counts {
                groups: g.iter().map(|(s, n)| (vec![s.to_string()], *n)).collect(),
                truncated: false,
            },
        };
        let ReadResult::Counts { counts } =
            merge(&read, vec![c(&[("a", 2), ("b", 1)]), c(&[("b", 4)])]).unwrap()
        else {
            panic!("wrong kind")
        };
        assert_eq!(
            counts.groups,
            vec![(vec!["a".to_string()], 2), (vec!["b".to_string()], 5)]
        );

        let read = Read::LogsAfter {
            filter: LogFilter::default(),
            after: 0,
            limit: 2,
        };
        let s = |v: &[u64]| ReadResult::Sequenced {
            logs: v.iter().map(|q| (*q, log(*q))).collect(),
            more: false,
        };
        let ReadResult::Sequenced { logs, more } =
            merge(&read, vec![s(&[3, 10]), s(&[1, 4])]).unwrap()
        else {
            panic!("wrong kind")
        };
        assert_eq!(logs.iter().map(|(q, _)| *q).collect::<Vec<_>>(), vec![1, 3]);
        assert!(more);
    }

    #[test]
    fn reads_past_the_bounds_are_refused() {
        let big = Read::SearchLogs {
            filter: LogFilter::default(),
            range: TimeRange::ALL,
            limit: usize::MAX,
        };
        assert!(big.check().is_err());
        let keys = Read::LogsByKeys {
            keys: vec!["k".into(); MAX_READ_KEYS + 1],
            limit: 10,
        };
        assert!(keys.check().is_err());
        assert!(Read::LastLogSeq.check().is_ok());
    }

    #[test]
    fn a_part_of_the_wrong_kind_is_an_error_not_a_panic() {
        let read = Read::LastLogSeq;
        assert!(merge(&read, vec![logs(&[1], false), logs(&[2], false)]).is_err());
    }
}
