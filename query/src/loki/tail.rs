//! `GET /loki/api/v1/tail?query=&limit=&start=&delay_for=` (websocket), as Loki's: the
//! lines since `start` (at most `limit`, default 100), then new lines as they become
//! searchable, each message `{"streams":[{"stream":{…},"values":[["<ns>","<line>"]]}],
//! "dropped_entries":null}`.
//!
//! Bounds: at most [`MAX_TAILS`] tails at once (503 past it); each read takes at most
//! [`crate::live::BATCH`] lines; a client that stops reading holds up only its own tail (the
//! next read waits for the send); the socket closes when the client goes away.

use super::logql::ast::{Expr, LogExpr};
use super::pipeline;
use super::scan::prefilter;
use super::{DEFAULT_LIMIT, MAX_LIMIT, bad, error, parse_time};
use crate::api::ApiState;
use crate::live::Slot;
use crate::prom_api::render::json_string;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use skein_model::LogRecord;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

/// Most Loki tails open at once.
pub const MAX_TAILS: usize = 64;
/// How often an idle tail looks for new lines.
const POLL: Duration = Duration::from_millis(250);

static OPEN: AtomicUsize = AtomicUsize::new(0);

/// The websocket route.
pub async fn tail(
    State(s): State<ApiState>,
    Query(p): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(q) = p.get("query").filter(|q| !q.trim().is_empty()) else {
        return bad(
            "missing parameter \"query\": give a stream selector such as {service=\"checkout\"}",
        );
    };
    let log = match super::logql::parse(q) {
        Ok(Expr::Log(l)) => l,
        Ok(_) => return bad("tail takes a log query, not a metric query"),
        Err(e) => return bad(format!("parse error: {e}")),
    };
    let limit = match p.get("limit").map(|v| v.parse::<usize>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        _ => {
            return bad(format!(
                "limit must be a whole number from 1 to {MAX_LIMIT}"
            ));
        }
    };
    let start = match p.get("start").map(|v| parse_time(v)) {
        None => skein_model::time::now_unix_nano().saturating_sub(3600 * 1_000_000_000),
        Some(Ok(t)) => t,
        Some(Err(e)) => return bad(format!("invalid parameter \"start\": {e}")),
    };
    let Some(slot) = Slot::take(&OPEN, MAX_TAILS) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("{MAX_TAILS} tails are open, the most at once; try again later"),
        );
    };
    ws.on_upgrade(move |socket| run(socket, s, log, limit, start, slot))
        .into_response()
}

fn message(records: &[(u64, LogRecord)], log: &LogExpr, start: u64) -> Option<String> {
    let mut out = String::from("{\"streams\":[");
    let mut n = 0;
    for (_, r) in records {
        if r.time_unix_nano < start {
            continue;
        }
        let e = pipeline::entry(r);
        if !pipeline::selected(&e, &log.matchers) {
            continue;
        }
        let Some(e) = pipeline::run(e, &log.stages) else {
            continue;
        };
        if n > 0 {
            out.push(',');
        }
        n += 1;
        out.push_str("{\"stream\":{");
        let mut labels = e.labels.clone();
        for (k, v) in &e.metadata {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{}:{}", json_string(k), json_string(v));
        }
        let _ = write!(
            out,
            "}},\"values\":[[\"{}\",{}]]}}",
            e.time,
            json_string(&e.line)
        );
    }
    out.push_str("],\"dropped_entries\":null}");
    (n > 0).then_some(out)
}

async fn run(
    mut socket: WebSocket,
    s: ApiState,
    log: LogExpr,
    limit: usize,
    start: u64,
    _slot: Slot,
) {
    let filter = prefilter(&log, &s.keys);
    let engine = s.engine.clone();
    let f = filter.clone();
    let first = tokio::task::spawn_blocking(move || {
        let top = engine.last_log_seq();
        let history = engine.last_logs(&f, limit)?;
        Ok::<_, crate::QueryError>((top, history))
    })
    .await;
    let mut cursor = match first {
        Ok(Ok((top, history))) => {
            let history: Vec<_> = history.into_iter().filter(|(q, _)| *q <= top).collect();
            if let Some(m) = message(&history, &log, start)
                && socket.send(Message::Text(m.into())).await.is_err()
            {
                return;
            }
            top
        }
        Ok(Err(e)) => {
            let _ = socket
                .send(Message::Text(
                    format!("{{\"error\":{}}}", json_string(&e.to_string())).into(),
                ))
                .await;
            return;
        }
        Err(_) => return,
    };
    loop {
        let (engine, f) = (s.engine.clone(), filter.clone());
        let read =
            tokio::task::spawn_blocking(move || engine.logs_after(&f, cursor, crate::live::BATCH))
                .await;
        match read {
            Ok(Ok((lines, _))) => {
                if let Some((last, _)) = lines.last() {
                    cursor = *last;
                }
                if let Some(m) = message(&lines, &log, 0)
                    && socket.send(Message::Text(m.into())).await.is_err()
                {
                    return;
                }
                if lines.is_empty() {
                    // Wait for new lines, and notice a client that closed meanwhile.
                    tokio::select! {
                        _ = tokio::time::sleep(POLL) => {}
                        msg = socket.recv() => match msg {
                            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                            _ => {}
                        },
                    }
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "loki tail read failed; retrying");
                tokio::time::sleep(POLL * 4).await;
            }
            Err(_) => return,
        }
    }
}
