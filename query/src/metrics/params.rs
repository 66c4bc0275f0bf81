//! Query-string parameters of the metrics routes: repeated names kept, times and durations
//! read the way the rest of the API reads them.

use crate::QueryError;
use skein_model::time::{parse_duration, parse_time};

/// The parameters of one request, in order, repeats kept.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a raw query string (`a=1&b=2&b=3`); none is no parameters.
    pub fn parse(raw: Option<&str>) -> Result<Params, QueryError> {
        match raw {
            None => Ok(Params::default()),
            Some(q) => serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .map(Params)
                .map_err(|e| QueryError::BadRequest(format!("cannot read the query string: {e}"))),
        }
    }

    /// Parameters from pairs (for tests and callers that have them already).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Params {
        Params(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The last non-empty value of `name`, trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .find(|v| !v.is_empty())
    }

    /// Every non-empty value of `name`, trimmed, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// A point in time in ms (see [`parse_time`]); `now_ns` is what relative times count
    /// back from.
    pub fn time_ms(&self, name: &str, now_ns: u64) -> Result<Option<i64>, QueryError> {
        self.get(name)
            .map(|t| {
                parse_time(t, now_ns)
                    .map(ns_to_ms)
                    .map_err(|e| QueryError::BadRequest(format!("{name}: {e}")))
            })
            .transpose()
    }

    /// A duration in ms: `250ms`, `10s`, `5m`, or a bare number of seconds.
    pub fn duration_ms(&self, name: &str) -> Result<Option<i64>, QueryError> {
        self.get(name)
            .map(|t| {
                let ms = match t.parse::<f64>() {
                    Ok(secs) if secs.is_finite() => (secs * 1000.0).round() as i64,
                    _ => parse_duration(t)
                        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                        .map_err(|e| QueryError::BadRequest(format!("{name}: {e}")))?,
                };
                if ms <= 0 {
                    return Err(QueryError::BadRequest(format!(
                        "{name} must be longer than zero, such as 10s or 1m"
                    )));
                }
                Ok(ms)
            })
            .transpose()
    }

    /// A start and end in ms: end defaults to now, start to end − `default_len_ms`. Start
    /// after end is an error.
    pub fn range_ms(&self, now_ns: u64, default_len_ms: i64) -> Result<(i64, i64), QueryError> {
        let end = self
            .time_ms("end", now_ns)?
            .unwrap_or_else(|| ns_to_ms(now_ns));
        let start = self
            .time_ms("start", now_ns)?
            .unwrap_or(end - default_len_ms);
        if start > end {
            return Err(QueryError::BadRequest(
                "start is after end: give start before end (or leave end out for now)".into(),
            ));
        }
        Ok((start, end))
    }
}

/// Unix nanoseconds to ms.
pub fn ns_to_ms(ns: u64) -> i64 {
    i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX)
}
