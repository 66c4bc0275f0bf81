//! `skein alerts`, and the tables behind `skein rules` and `skein silence`
//! (their commands are in [`crate::cmd`]).
//!
//! `skein rules check` is in [`super::rulecheck`]. The commands here talk to the query API.
//! Labels and annotations come from outside (logs, metrics), so they go through [`sanitize`]
//! before they are printed.

use std::io::Write;

use anyhow::Context;
use skein_client::Client;
use skein_model::alert_api::{
    AlertsResponse, HistoryResponse, LabelSet, NotificationsResponse, RulesResponse,
    SilencesResponse, rfc3339_ms,
};
use skein_model::time::now_ms;

use super::monitor::{emit, num};
use super::render::sanitize;
use super::{EXIT_FOUND, EXIT_NOT_FOUND};

/// What `skein alerts` shows.
pub struct AlertsArgs {
    /// Only alerts in this state (`pending` or `firing`).
    pub state: Option<String>,
    /// State changes instead, newest first.
    pub history: bool,
    /// With `history`: only this rule.
    pub rule: Option<String>,
    /// With `history`: most changes.
    pub limit: usize,
    /// The receivers' delivery state instead.
    pub notifications: bool,
}

fn labels_text(l: &LabelSet, skip_alertname: bool) -> String {
    l.iter()
        .filter(|(k, _)| !(skip_alertname && k.as_str() == "alertname"))
        .map(|(k, v)| format!("{}={}", sanitize(k), sanitize(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn ago(now_ms: i64, t_ms: i64) -> String {
    let s = ((now_ms - t_ms).max(0) / 1000) as u64;
    if s >= 3600 {
        format!("{}h{}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The alerts table.
pub fn alerts_text(r: &AlertsResponse, now: i64) -> String {
    let mut out = format!(
        "{:<8} {:<24} {:>10} {:>8}  {}\n",
        "STATE", "ALERT", "VALUE", "SINCE", "LABELS"
    );
    for a in &r.alerts {
        let mut state = a.state.as_str().to_string();
        if !a.silenced_by.is_empty() {
            state.push_str("(s)");
        } else if !a.inhibited_by.is_empty() {
            state.push_str("(i)");
        }
        out.push_str(&format!(
            "{:<8} {:<24} {:>10} {:>8}  {}\n",
            state,
            sanitize(&a.rule),
            num(a.value),
            ago(now, a.firing_since_ms.unwrap_or(a.active_since_ms)),
            labels_text(&a.labels, true)
        ));
        if let Some(s) = a.annotations.get("summary") {
            out.push_str(&format!("         {}\n", sanitize(s)));
        }
    }
    out
}

/// The history table.
pub fn history_text(r: &HistoryResponse) -> String {
    let mut out = format!(
        "{:<24} {:<24} {:<20} {:>10}  {}\n",
        "TIME", "ALERT", "CHANGE", "VALUE", "LABELS"
    );
    for t in &r.transitions {
        out.push_str(&format!(
            "{:<24} {:<24} {:<20} {:>10}  {}\n",
            rfc3339_ms(t.at_ms),
            sanitize(&t.rule),
            format!("{} -> {}", t.from.as_str(), t.to.as_str()),
            num(t.value),
            labels_text(&t.labels, true)
        ));
    }
    out
}

/// The rules table.
pub fn rules_text(r: &RulesResponse, now: i64) -> String {
    let mut out = format!(
        "{:<24} {:<7} {:<7} {:>7} {:>6} {:>9}  {}\n",
        "RULE", "KIND", "HEALTH", "PENDING", "FIRING", "EVALUATED", "CONDITION"
    );
    for rule in &r.rules {
        out.push_str(&format!(
            "{:<24} {:<7} {:<7} {:>7} {:>6} {:>9}  {}\n",
            sanitize(&rule.name),
            rule.kind,
            rule.health,
            rule.pending,
            rule.firing,
            rule.last_evaluation_ms
                .map_or("-".into(), |t| format!("{} ago", ago(now, t))),
            sanitize(&rule.condition)
        ));
        if let Some(e) = &rule.last_error {
            out.push_str(&format!("  error: {}\n", sanitize(e)));
        }
    }
    for e in &r.errors {
        out.push_str(&format!(
            "refused {}:{}: {}\n",
            sanitize(&e.file),
            e.line,
            sanitize(&e.message)
        ));
    }
    out
}

/// The silences table.
pub fn silences_text(r: &SilencesResponse) -> String {
    let mut out = format!(
        "{:<36} {:<8} {:<24} {:<12}  {}\n",
        "ID", "STATE", "ENDS", "BY", "MATCHERS / COMMENT"
    );
    for s in &r.silences {
        out.push_str(&format!(
            "{:<36} {:<8} {:<24} {:<12}  {}\n",
            s.id,
            s.status.state,
            s.ends_at,
            sanitize(&s.created_by),
            sanitize(
                &s.matchers
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        ));
        if !s.comment.is_empty() {
            out.push_str(&format!("{:>83}{}\n", "", sanitize(&s.comment)));
        }
    }
    out
}

/// The receivers' delivery table.
pub fn notifications_text(r: &NotificationsResponse) -> String {
    let mut out = format!(
        "{:<16} {:>7} {:>6} {:>6} {:>7}  {}\n",
        "RECEIVER", "PENDING", "SENT", "FAILED", "RETRIES", "LAST ERROR"
    );
    for x in &r.receivers {
        out.push_str(&format!(
            "{:<16} {:>7} {:>6} {:>6} {:>7}  {}\n",
            sanitize(&x.receiver),
            x.pending,
            x.sent,
            x.failed,
            x.retries,
            sanitize(x.last_error.as_deref().unwrap_or("-"))
        ));
        for f in &x.failures {
            out.push_str(&format!(
                "  failed {} after {} attempts: {}\n",
                f.id,
                f.attempts,
                sanitize(&f.reason)
            ));
        }
    }
    out
}

/// `skein alerts`.
pub async fn alerts(
    client: &Client,
    args: &AlertsArgs,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    if args.notifications {
        let r = client.notifications().await.context("receivers")?;
        emit(out, json, &r, notifications_text)?;
        return Ok(EXIT_FOUND);
    }
    if args.history {
        let limit = args.limit.to_string();
        let mut p: Vec<(&str, &str)> = vec![("limit", &limit)];
        if let Some(r) = &args.rule {
            p.push(("rule", r));
        }
        let r = client.alert_history(&p).await.context("alert history")?;
        let code = if r.transitions.is_empty() {
            EXIT_NOT_FOUND
        } else {
            EXIT_FOUND
        };
        emit(out, json, &r, history_text)?;
        return Ok(code);
    }
    let r = client
        .alerts(args.state.as_deref())
        .await
        .context("alerts")?;
    let code = if r.alerts.is_empty() {
        EXIT_NOT_FOUND
    } else {
        EXIT_FOUND
    };
    let now = now_ms();
    emit(out, json, &r, |r| alerts_text(r, now))?;
    Ok(code)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tables_strip_escape_sequences_from_labels() {
        let mut labels = LabelSet::new();
        labels.insert("alertname".into(), "X".into());
        labels.insert("service".into(), "pay\u{1b}[31mment".into());
        let r = AlertsResponse {
            alerts: vec![skein_model::alert_api::AlertInfo {
                rule: "X".into(),
                state: skein_model::alert_api::AlertState::Firing,
                labels,
                annotations: LabelSet::new(),
                value: 0.25,
                active_since_ms: 0,
                firing_since_ms: Some(1_000),
                fingerprint: "f".into(),
                silenced_by: vec!["s".into()],
                inhibited_by: vec![],
            }],
        };
        let t = alerts_text(&r, 61_000);
        assert!(!t.contains('\u{1b}'), "{t}");
        assert!(
            t.contains("firing(s)") && t.contains("1m0s") && t.contains("0.250"),
            "{t}"
        );
    }
}
