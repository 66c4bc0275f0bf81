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
//! waits until it has taken the last one).

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

static OPEN: AtomicUsize = AtomicUsize::new(0);

/// One open tail; dropping it frees its place.
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        OPEN.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < MAX_TAILS).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::AcqRel);
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
    let data = serde_json::to_string(rec).unwrap_or_else(|_| "{}".into());
    Event::default().id(seq.to_string()).event("log").data(data)
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
    let slot = Slot::take().ok_or_else(|| {
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
