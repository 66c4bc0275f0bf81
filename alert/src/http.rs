//! The alert routes of the query API: `GET /api/v1/alerts`, `GET /api/v1/alerts/history`,
//! `GET /api/v1/alerts/notifications`, `GET /api/v1/rules`, `GET|POST /api/v1/silences`,
//! `GET|DELETE /api/v1/silences/{id}`. Errors are JSON `{"error", "message"}` as in the rest
//! of the API.

use super::engine::AlertEngine;
use super::silence::SilenceError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use skein_model::alert_api::{
    AlertInfo, AlertState, AlertsResponse, HistoryResponse, NewSilence, NotificationsResponse,
    ReceiverInfo, RuleFileError, RuleInfo, RulesResponse, SilenceCreated, SilencesResponse,
};
use skein_model::api::ErrorBody;
use skein_model::time::now_ms;
use std::collections::HashMap;

/// Largest silence request body (bytes).
pub const MAX_SILENCE_BODY: usize = 64 * 1024;
/// Most history entries one answer holds.
pub const MAX_HISTORY: usize = 10_000;

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(ErrorBody {
            error: kind.into(),
            message: message.into(),
        }),
    )
        .into_response()
}

fn bad(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// The routes, with the engine as state.
pub fn routes(engine: AlertEngine) -> Router {
    Router::new()
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/history", get(history))
        .route("/api/v1/alerts/notifications", get(notifications))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/silences", get(silences).post(add_silence))
        .route(
            "/api/v1/silences/{id}",
            get(one_silence).delete(expire_silence),
        )
        .layer(DefaultBodyLimit::max(MAX_SILENCE_BODY))
        .with_state(engine)
}

async fn alerts(
    State(e): State<AlertEngine>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let want = match q.get("state").map(String::as_str) {
        None | Some("") => None,
        Some("pending") => Some(AlertState::Pending),
        Some("firing") => Some(AlertState::Firing),
        Some(other) => {
            return bad(format!(
                "state '{other}' is not an alert state: use pending or firing"
            ));
        }
    };
    off_workers(e, move |e| {
        let now = now_ms();
        let g = e.lock();
        let mut list: Vec<AlertInfo> = g
            .states
            .alerts
            .values()
            .filter(|a| matches!(a.state, AlertState::Pending | AlertState::Firing))
            .filter(|a| want.is_none_or(|w| a.state == w))
            .filter(|a| q.get("rule").is_none_or(|r| &a.rule == r))
            .map(|a| {
                let (silenced_by, inhibited_by) = e.mutes(&g, &a.labels, now);
                AlertInfo {
                    rule: a.rule.clone(),
                    state: a.state,
                    labels: a.labels.clone(),
                    annotations: a.annotations.clone(),
                    value: a.value,
                    active_since_ms: a.active_ms,
                    firing_since_ms: a.fired_ms,
                    fingerprint: a.fingerprint.clone(),
                    silenced_by,
                    inhibited_by,
                }
            })
            .collect();
        list.sort_by(|a, b| {
            (a.state != AlertState::Firing, &a.rule, &a.labels).cmp(&(
                b.state != AlertState::Firing,
                &b.rule,
                &b.labels,
            ))
        });
        axum::Json(AlertsResponse { alerts: list }).into_response()
    })
    .await
}

async fn history(
    State(e): State<AlertEngine>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=MAX_HISTORY).contains(&n) => n,
        Some(_) => return bad(format!("limit must be a number from 1 to {MAX_HISTORY}")),
    };
    let since = match q.get("since") {
        None => 0,
        Some(s) => {
            let now = skein_model::time::now_unix_nano();
            match skein_model::time::parse_time(s, now) {
                Ok(ns) => (ns / 1_000_000) as i64,
                Err(m) => return bad(format!("since: {m}")),
            }
        }
    };
    off_workers(e, move |e| {
        let g = e.lock();
        let transitions = g.history.list(
            q.get("rule").map(String::as_str),
            q.get("fingerprint").map(String::as_str),
            since,
            limit,
        );
        axum::Json(HistoryResponse { transitions }).into_response()
    })
    .await
}

async fn notifications(State(e): State<AlertEngine>) -> Response {
    let Some(outbox) = e.shared.outbox.clone() else {
        return axum::Json(NotificationsResponse {
            receivers: Vec::new(),
        })
        .into_response();
    };
    let status = e.delivery_status();
    let receivers = tokio::task::spawn_blocking(move || {
        let mut out: Vec<ReceiverInfo> = status
            .into_iter()
            .map(|mut s| {
                s.failures = outbox.failed(&s.receiver, 20);
                s
            })
            .collect();
        out.sort_by(|a, b| a.receiver.cmp(&b.receiver));
        out
    })
    .await
    .unwrap_or_default();
    axum::Json(NotificationsResponse { receivers }).into_response()
}

async fn rules(State(e): State<AlertEngine>, Query(q): Query<HashMap<String, String>>) -> Response {
    off_workers(e, move |e| rules_answer(&e, &q)).await
}

fn rules_answer(e: &AlertEngine, q: &HashMap<String, String>) -> Response {
    let g = e.lock();
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for a in g.states.alerts.values() {
        let c = counts.entry(a.rule_key.as_str()).or_default();
        match a.state {
            AlertState::Pending => c.0 += 1,
            AlertState::Firing => c.1 += 1,
            _ => {}
        }
    }
    let mut rules = g
        .rules()
        .iter()
        .filter(|r| q.get("name").is_none_or(|n| &r.name == n))
        .map(|r| {
            let key = super::state::rule_key(&r.name, &r.labels);
            let h = g.health.get(&key).cloned().unwrap_or_default();
            let (pending, firing) = counts.get(key.as_str()).copied().unwrap_or_default();
            RuleInfo {
                name: r.name.clone(),
                file: r.file.display().to_string(),
                line: r.line,
                kind: r.kind().into(),
                condition: r.describe(),
                for_duration: humantime::format_duration(r.for_).to_string(),
                keep_firing_for: humantime::format_duration(r.keep_firing_for).to_string(),
                labels: r.labels.clone(),
                health: match (&h.last_ms, &h.error) {
                    (None, _) => "unknown",
                    (Some(_), Some(_)) => "err",
                    (Some(_), None) => "ok",
                }
                .into(),
                last_error: h.error,
                last_evaluation_ms: h.last_ms,
                evaluation_seconds: h.seconds,
                pending,
                firing,
                group: None,
            }
        })
        .collect::<Vec<_>>();
    rules.extend(e.prom_rule_infos(&g, q.get("name")));
    let errors = g
        .errors()
        .into_iter()
        .map(|e| RuleFileError {
            file: e.file.display().to_string(),
            line: e.line,
            message: e.message,
        })
        .collect();
    axum::Json(RulesResponse {
        rules,
        errors,
        interval_seconds: e.shared.plan.eval_interval.as_secs_f64(),
    })
    .into_response()
}

async fn silences(State(e): State<AlertEngine>) -> Response {
    off_workers(e, |e| {
        let g = e.lock();
        axum::Json(SilencesResponse {
            silences: g.silences.list(now_ms()),
        })
        .into_response()
    })
    .await
}

async fn one_silence(State(e): State<AlertEngine>, Path(id): Path<String>) -> Response {
    off_workers(e, move |e| {
        let g = e.lock();
        match g.silences.list(now_ms()).into_iter().find(|s| s.id == id) {
            Some(s) => axum::Json(s).into_response(),
            None => error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no silence with id {id}; GET /api/v1/silences lists them"),
            ),
        }
    })
    .await
}

/// Runs `f` on a blocking thread. The engine's lock is held by evaluation, dispatch and
/// silence changes while they write and fsync their files; a handler waiting for it on an
/// async worker would stall every other request on that worker.
async fn off_workers(
    e: AlertEngine,
    f: impl FnOnce(AlertEngine) -> Response + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(move || f(e)).await {
        Ok(r) => r,
        Err(err) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the alert request failed: {err}"),
        ),
    }
}

fn silence_error(e: SilenceError) -> Response {
    match e {
        SilenceError::Invalid(m) => bad(m),
        SilenceError::NotFound(id) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no silence with id {id}; GET /api/v1/silences lists them"),
        ),
        SilenceError::Io(err) => {
            tracing::error!(error = %err, "cannot save silences");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the silence could not be saved; the collector's log has the details",
            )
        }
    }
}

async fn add_silence(State(e): State<AlertEngine>, body: Bytes) -> Response {
    let new: NewSilence = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(err) => {
            return bad(format!(
                "cannot read the silence: {err}; send JSON such as {{\"matchers\":[{{\"name\":\"alertname\",\"value\":\"HighErrorRate\",\"isRegex\":false}}],\"duration\":\"2h\",\"createdBy\":\"me\",\"comment\":\"why\"}}"
            ));
        }
    };
    let me = e.clone();
    let res =
        tokio::task::spawn_blocking(move || me.change_silences(|s| s.add(new.clone(), now_ms())))
            .await;
    match res {
        Ok(Ok(id)) => {
            tracing::info!(id = %id, "silence saved");
            axum::Json(SilenceCreated { silence_id: id }).into_response()
        }
        Ok(Err(err)) => silence_error(err),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the silence could not be saved",
        ),
    }
}

async fn expire_silence(State(e): State<AlertEngine>, Path(id): Path<String>) -> Response {
    let me = e.clone();
    let res =
        tokio::task::spawn_blocking(move || me.change_silences(|s| s.expire(&id, now_ms()))).await;
    match res {
        Ok(Ok(())) => axum::Json(serde_json::json!({"status": "expired"})).into_response(),
        Ok(Err(err)) => silence_error(err),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the silence could not be saved",
        ),
    }
}
