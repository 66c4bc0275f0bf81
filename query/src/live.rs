//! `GET /api/v1/logs/tail?q=&service=&severity=&back=`: new log lines as they become
//! searchable, as Server-Sent Events (`event: log`, `id:` the line's ingest position, `data:`
//! the record as JSON).
//!
//! A client that reconnects sends the last `id` it saw as `Last-Event-ID` (browsers' and most
//! SSE clients do it themselves) or as `cursor=`, and goes on from the next line: no gap, no
//! repeat, because positions grow in arrival order and are read back from the index. Without
//! a cursor the tail starts now, after the newest `back` matching lines (0 to 1,000).
//!
//! Bounds: at most [`MAX_TAILS`] tails at once (503 past it, with Retry-After); each read
//! takes at most [`BATCH`] lines; a slow client holds up only its own stream (the next read
//! waits until it has taken the last one); a record whose JSON is over [`MAX_EVENT_DATA`]
//! (half of what the client takes) is sent cut and marked, never whole, so no client is
//! handed an event it cannot read.

use crate::api::{ApiError, ApiState};
use crate::engine::Engine;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use skein_model::LogRecord;
use skein_store::search::LogFilter;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Most tails open at once.
pub const MAX_TAILS: usize = 64;
/// Most lines one read of the index takes.
pub const BATCH: usize = 500;
/// Most lines of history a tail starts with.
pub const MAX_BACK: usize = 1000;
/// How often an idle tail looks for new lines (the index commits every 500 ms by default).
pub const POLL: Duration = Duration::from_millis(250);

/// Largest event data sent (half the 16 MiB a client takes): a bigger record is sent cut
/// (see [`cut_record`]).
pub const MAX_EVENT_DATA: usize = 8 * 1024 * 1024;
/// Put at the end of a log body cut for the live tail.
pub const CUT_MARK: &str = "…[cut for the live tail]";
/// Attribute of a record cut for the live tail: its size as JSON.
pub const CUT_ATTRIBUTE: &str = "skein.tail.cut_bytes";

static OPEN: AtomicUsize = AtomicUsize::new(0);

/// One open tail among at most `max` counted by a static counter; dropping it frees its
/// place. Shared by this tail and Loki's (`crate::loki::tail`), each with its own counter.
pub(crate) struct Slot(&'static AtomicUsize);

impl Slot {
    /// A place, if fewer than `max` are taken.
    pub(crate) fn take(open: &'static AtomicUsize, max: usize) -> Option<Slot> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot(open))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Tail {
    engine: Arc<Engine>,
    filter: LogFilter,
    cursor: u64,
    pending: VecDeque<(u64, LogRecord)>,
    _slot: Slot,
}

fn event(seq: u64, rec: &LogRecord) -> Event {
    Event::default()
        .id(seq.to_string())
        .event("log")
        .data(event_data(rec))
}

/// The record as an event's JSON; over [`MAX_EVENT_DATA`], the record cut by [`cut_record`].
fn event_data(rec: &LogRecord) -> String {
    let data = serde_json::to_string(rec).unwrap_or_else(|_| "{}".into());
    if data.len() <= MAX_EVENT_DATA {
        return data;
    }
    serde_json::to_string(&cut_record(rec, data.len())).unwrap_or_else(|_| "{}".into())
}

/// Longest body of a cut record, bytes.
const CUT_BODY_BYTES: usize = 64 * 1024;
/// Longest other text of a cut record (service, host, IDs, each key), bytes.
const CUT_TEXT_BYTES: usize = 1024;

/// A record too big for a client, for the live stream: its times, severity, names, IDs and
/// keys (each cut to [`CUT_TEXT_BYTES`]), the body cut to [`CUT_BODY_BYTES`] and ended with
/// [`CUT_MARK`], no attributes but [`CUT_ATTRIBUTE`] (the whole record's size as JSON) and no
/// resource. Even escaped, that is far below [`MAX_EVENT_DATA`]; search shows the record whole.
fn cut_record(rec: &LogRecord, json_bytes: usize) -> LogRecord {
    let mut attributes = skein_model::Attributes::new();
    attributes.insert(CUT_ATTRIBUTE.into(), serde_json::Value::from(json_bytes));
    LogRecord {
        time_unix_nano: rec.time_unix_nano,
        observed_time_unix_nano: rec.observed_time_unix_nano,
        service: cut(&rec.service, CUT_TEXT_BYTES),
        host: cut(&rec.host, CUT_TEXT_BYTES),
        severity_text: cut(&rec.severity_text, CUT_TEXT_BYTES),
        severity_number: rec.severity_number,
        body: format!("{}{CUT_MARK}", cut(&rec.body, CUT_BODY_BYTES)),
        trace_id: cut(&rec.trace_id, CUT_TEXT_BYTES),
        span_id: cut(&rec.span_id, CUT_TEXT_BYTES),
        attributes,
        resource: Arc::default(),
        keys: rec
            .keys
            .iter()
            .take(skein_model::keys::MAX_KEYS_PER_RECORD)
            .map(|k| cut(k, CUT_TEXT_BYTES))
            .collect(),
    }
}

/// The longest start of `s` of at most `max` bytes that ends on a character boundary.
fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

async fn next(mut t: Tail) -> Option<(Result<Event, Infallible>, Tail)> {
    loop {
        if let Some((seq, rec)) = t.pending.pop_front() {
            return Some((Ok(event(seq, &rec)), t));
        }
        let (engine, filter, cursor) = (t.engine.clone(), t.filter.clone(), t.cursor);
        let read =
            tokio::task::spawn_blocking(move || engine.logs_after(&filter, cursor, BATCH)).await;
        match read {
            Ok(Ok((lines, _more))) => {
                if let Some((last, _)) = lines.last() {
                    t.cursor = *last;
                }
                if lines.is_empty() {
                    tokio::time::sleep(POLL).await;
                }
                t.pending.extend(lines);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "tail read failed; retrying");
                tokio::time::sleep(POLL * 4).await;
            }
            Err(_) => return None,
        }
    }
}

fn param<'a>(p: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    p.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// The route's handler.
pub async fn tail(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    match open(&s, &headers, &p).await {
        Ok(t) => Sse::new(futures::stream::unfold(t, next))
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn open(
    s: &ApiState,
    headers: &HeaderMap,
    p: &HashMap<String, String>,
) -> Result<Tail, ApiError> {
    let min_severity = param(p, "severity")
        .map(|v| {
            skein_model::otlp::severity_number_of(v).ok_or_else(|| {
                ApiError::bad(format!(
                    "severity '{v}' is not a level: use trace, debug, info, warn, error or fatal (that level and above)"
                ))
            })
        })
        .transpose()?;
    let filter = LogFilter {
        text: param(p, "q").map(str::to_string),
        service: param(p, "service").map(str::to_string),
        min_severity,
        host: None,
    };
    let cursor_text = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .or_else(|| param(p, "cursor"));
    let cursor = cursor_text
        .map(|c| {
            c.parse::<u64>().map_err(|_| {
                ApiError::bad(format!(
                    "cursor '{c}' is not a position: send back the id of the last event you got"
                ))
            })
        })
        .transpose()?;
    let back = match param(p, "back") {
        None => 0,
        Some(b) => match b.parse::<usize>() {
            Ok(n) if n <= MAX_BACK => n,
            _ => {
                return Err(ApiError::bad(format!(
                    "back '{b}' must be a whole number from 0 to {MAX_BACK}"
                )));
            }
        },
    };
    let slot = Slot::take(&OPEN, MAX_TAILS).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("{MAX_TAILS} tails are open, the most at once; try again later"),
        )
    })?;
    // The query is checked now, so a bad one is a 400 rather than a broken stream.
    let engine = s.engine.clone();
    let check = filter.clone();
    let (cursor, pending) = crate::api::run_blocking(s, "logs_tail", move || match cursor {
        Some(c) => {
            engine.logs_after(&check, c, 1)?;
            Ok((c, Vec::new()))
        }
        None => {
            let start = engine.last_log_seq();
            let history = engine.last_logs(&check, back)?;
            let history: Vec<_> = history.into_iter().filter(|(q, _)| *q <= start).collect();
            engine.logs_after(&check, start, 1)?;
            Ok((start, history))
        }
    })
    .await?;
    Ok(Tail {
        engine: s.engine.clone(),
        filter,
        cursor,
        pending: pending.into(),
        _slot: slot,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_record_too_big_for_clients_is_sent_cut_and_marked() {
        let mut rec = LogRecord {
            service: "pay".into(),
            body: "\u{1}".repeat(4 * 1024 * 1024),
            trace_id: "ab".repeat(16),
            ..Default::default()
        };
        rec.attributes
            .insert("big".into(), serde_json::Value::String("x".repeat(1 << 20)));
        let data = event_data(&rec);
        assert!(data.len() <= MAX_EVENT_DATA, "{}", data.len());
        let back: LogRecord = serde_json::from_str(&data).unwrap();
        assert_eq!(back.service, "pay");
        assert_eq!(back.trace_id, rec.trace_id);
        assert!(back.body.ends_with(CUT_MARK), "{}", back.body.len());
        assert!(back.attributes.contains_key(CUT_ATTRIBUTE));
        // A record that fits is sent as it is.
        let small = LogRecord {
            body: "hello".into(),
            ..Default::default()
        };
        assert_eq!(event_data(&small), serde_json::to_string(&small).unwrap());
    }
}
