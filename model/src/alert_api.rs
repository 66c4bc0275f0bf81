//! JSON shapes of alerts: the query API's alert, rule, history, silence and notification
//! answers, and the webhook body sent to receivers (Alertmanager's version 4, field for
//! field, so receivers written for Alertmanager work unchanged).
//!
//! Times in the API are RFC 3339 strings (as Alertmanager's) plus Unix milliseconds where a
//! program may want to compute with them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Labels of an alert, sorted by name.
pub type LabelSet = BTreeMap<String, String>;

/// The state of one alert (a rule and one label set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition does not hold.
    Inactive,
    /// The condition holds, but not yet for the rule's `for`.
    Pending,
    /// The condition has held for `for` (or is within `keep_firing_for` after it stopped).
    Firing,
    /// It fired and stopped; kept for a while so the resolved notification can go out.
    Resolved,
}

impl AlertState {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One active alert in `GET /api/v1/alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertInfo {
    /// The rule's name (also the `alertname` label).
    pub rule: String,
    /// pending or firing.
    pub state: AlertState,
    /// All labels: the rule's, the condition's and `alertname`.
    pub labels: LabelSet,
    /// Annotations rendered with the labels and value.
    pub annotations: LabelSet,
    /// The last value of the condition (NaN and ±Inf, which a PromQL rule may give, as the
    /// strings of [`crate::metric::exact_f64`]).
    #[serde(with = "crate::metric::exact_f64")]
    pub value: f64,
    /// When the condition started to hold (Unix ms).
    pub active_since_ms: i64,
    /// When it started firing (Unix ms), if it fires.
    pub firing_since_ms: Option<i64>,
    /// Identity of the rule and label set (hex).
    pub fingerprint: String,
    /// IDs of silences that mute it now.
    pub silenced_by: Vec<String>,
    /// Fingerprints of firing alerts that inhibit it now.
    pub inhibited_by: Vec<String>,
}

/// `GET /api/v1/alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertsResponse {
    /// Pending and firing alerts, firing first, then by rule and labels.
    pub alerts: Vec<AlertInfo>,
}

/// How a rule fared at its last evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleInfo {
    /// Name.
    pub name: String,
    /// File and line it came from.
    pub file: String,
    /// Line of its name in the file.
    pub line: usize,
    /// metric, logs, traces or absent; for a Prometheus rule, alerting or recording.
    pub kind: String,
    /// The condition in words (a Prometheus rule's expression).
    pub condition: String,
    /// `for`, as written (for example `30s`).
    pub for_duration: String,
    /// `keep_firing_for`, as written.
    pub keep_firing_for: String,
    /// The rule's own labels.
    pub labels: LabelSet,
    /// ok, err (the last evaluation failed) or unknown (not evaluated yet).
    pub health: String,
    /// Why the last evaluation failed.
    pub last_error: Option<String>,
    /// When it was last evaluated (Unix ms).
    pub last_evaluation_ms: Option<i64>,
    /// How long the last evaluation took (seconds).
    pub evaluation_seconds: f64,
    /// Alerts of this rule by state (pending, firing).
    pub pending: usize,
    /// Firing alerts of this rule.
    pub firing: usize,
    /// The group of a Prometheus rule (`alerts.rule_files`); none for a TOML rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// A rule file that could not be loaded (its other rules, and other files, keep running).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleFileError {
    /// The file.
    pub file: String,
    /// 1-based line, 0 when not known.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// `GET /api/v1/rules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesResponse {
    /// Loaded rules.
    pub rules: Vec<RuleInfo>,
    /// Files refused at the last load.
    pub errors: Vec<RuleFileError>,
    /// Evaluation interval (seconds).
    pub interval_seconds: f64,
}

/// One state change in `GET /api/v1/alerts/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertTransition {
    /// When (Unix ms).
    pub at_ms: i64,
    /// Rule name.
    pub rule: String,
    /// The alert's labels.
    pub labels: LabelSet,
    /// Its fingerprint.
    pub fingerprint: String,
    /// State before.
    pub from: AlertState,
    /// State after.
    pub to: AlertState,
    /// The condition's value at the change (NaN and ±Inf as the strings of
    /// [`crate::metric::exact_f64`]).
    #[serde(with = "crate::metric::exact_f64")]
    pub value: f64,
}

/// `GET /api/v1/alerts/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryResponse {
    /// Changes, newest first.
    pub transitions: Vec<AlertTransition>,
}

/// One label matcher of a silence or route, as Alertmanager writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelMatcher {
    /// Label name.
    pub name: String,
    /// Value or regular expression.
    pub value: String,
    /// True for `=~` and `!~`.
    pub is_regex: bool,
    /// True for `=` and `=~` (absent means true).
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl LabelMatcher {
    /// Parses `name=value`, `name!=value`, `name=~re` or `name!~re`.
    pub fn parse(s: &str) -> Result<LabelMatcher, String> {
        let bad = || {
            format!(
                "cannot read matcher {s:?}: write name=value, name!=value, name=~regex or name!~regex"
            )
        };
        let (idx, len, is_regex, is_equal) = [
            ("!~", true, false),
            ("=~", true, true),
            ("!=", false, false),
        ]
        .iter()
        .find_map(|(tok, re, eq)| s.find(tok).map(|i| (i, 2, *re, *eq)))
        .or_else(|| s.find('=').map(|i| (i, 1, false, true)))
        .ok_or_else(bad)?;
        let name = s[..idx].trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(bad());
        }
        let value = s[idx + len..].trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        Ok(LabelMatcher {
            name: name.to_string(),
            value: value.to_string(),
            is_regex,
            is_equal,
        })
    }

    /// The operator: `=`, `!=`, `=~` or `!~`.
    pub fn op(&self) -> &'static str {
        match (self.is_regex, self.is_equal) {
            (false, true) => "=",
            (false, false) => "!=",
            (true, true) => "=~",
            (true, false) => "!~",
        }
    }
}

impl std::fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op(), self.value)
    }
}

/// A silence: alerts whose labels pass every matcher are not notified between start and end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    /// ID.
    pub id: String,
    /// All must pass.
    pub matchers: Vec<LabelMatcher>,
    /// From (RFC 3339).
    pub starts_at: String,
    /// Until (RFC 3339).
    pub ends_at: String,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// pending (not started), active or expired.
    pub status: SilenceStatus,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// `{"state": ...}` as Alertmanager's API writes a silence status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceStatus {
    /// pending, active or expired.
    pub state: String,
}

/// `POST /api/v1/silences`: a new silence (or, with `id`, a change to one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct NewSilence {
    /// Set to replace an existing silence.
    #[serde(default)]
    pub id: Option<String>,
    /// At least one; at least one must not match the empty string.
    pub matchers: Vec<LabelMatcher>,
    /// From (RFC 3339 or `now`); default now.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// Until (RFC 3339); or give `duration`.
    #[serde(default)]
    pub ends_at: Option<String>,
    /// Length such as `2h`, when `endsAt` is not given.
    #[serde(default)]
    pub duration: Option<String>,
    /// Who makes it.
    #[serde(default)]
    pub created_by: String,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

/// `POST /api/v1/silences` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceCreated {
    /// The silence's ID (`silenceID`, as Alertmanager writes it).
    #[serde(rename = "silenceID")]
    pub silence_id: String,
}

/// `GET /api/v1/silences`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilencesResponse {
    /// Active and pending first, then expired; newest first within each.
    pub silences: Vec<Silence>,
}

/// Alertmanager's webhook body, version 4.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage {
    /// The receiver's name.
    pub receiver: String,
    /// firing when any alert of the group fires, else resolved.
    pub status: String,
    /// The group's alerts.
    pub alerts: Vec<WebhookAlert>,
    /// Labels the group is keyed by.
    pub group_labels: LabelSet,
    /// Labels every alert shares.
    pub common_labels: LabelSet,
    /// Annotations every alert shares.
    pub common_annotations: LabelSet,
    /// The collector's query API.
    #[serde(rename = "externalURL")]
    pub external_url: String,
    /// Always "4".
    pub version: String,
    /// The group's key: its route and group labels.
    pub group_key: String,
    /// Alerts left out because the group had more than the receiver takes.
    pub truncated_alerts: u64,
}

/// One alert in a [`WebhookMessage`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    /// firing or resolved.
    pub status: String,
    /// Labels.
    pub labels: LabelSet,
    /// Annotations.
    pub annotations: LabelSet,
    /// When it started firing (RFC 3339).
    pub starts_at: String,
    /// When it resolved (RFC 3339); `0001-01-01T00:00:00Z` while it fires.
    pub ends_at: String,
    /// Where to look at it.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// Identity of the alert (hex).
    pub fingerprint: String,
}

/// A receiver's delivery state in `GET /api/v1/alerts/notifications`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ReceiverInfo {
    /// Receiver name.
    pub receiver: String,
    /// Its URL.
    pub url: String,
    /// Notifications waiting in the outbox.
    pub pending: usize,
    /// Delivered since start.
    pub sent: u64,
    /// Failed for good since start.
    pub failed: u64,
    /// Attempts that will be retried, since start.
    pub retries: u64,
    /// Dropped because the outbox queue was full, since start.
    pub dropped: u64,
    /// The last error.
    pub last_error: Option<String>,
    /// Last attempt (Unix ms).
    pub last_attempt_ms: Option<i64>,
    /// Last success (Unix ms).
    pub last_success_ms: Option<i64>,
    /// Next attempt when backing off (Unix ms).
    pub next_attempt_ms: Option<i64>,
    /// Notifications that failed for good, newest first.
    pub failures: Vec<FailedNotificationInfo>,
}

/// A notification that failed for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FailedNotificationInfo {
    /// Its ID (the idempotency key).
    pub id: String,
    /// Queued at (Unix ms).
    pub created_ms: i64,
    /// Given up at (Unix ms).
    pub failed_ms: i64,
    /// Attempts made.
    pub attempts: u32,
    /// Why.
    pub reason: String,
}

/// `GET /api/v1/alerts/notifications`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationsResponse {
    /// One per receiver.
    pub receivers: Vec<ReceiverInfo>,
}

/// Formats Unix ms as RFC 3339 UTC with milliseconds (`2026-11-22T10:00:00.123Z`).
pub fn rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// The zero time Alertmanager sends as `endsAt` of a firing alert.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn matchers() {
        let m = LabelMatcher::parse("service=~pay.*").unwrap();
        assert!(m.is_regex && m.is_equal);
        assert_eq!(m.to_string(), "service=~\"pay.*\"");
        let m = LabelMatcher::parse("alertname!=\"X\"").unwrap();
        assert_eq!(
            (m.name.as_str(), m.value.as_str(), m.op()),
            ("alertname", "X", "!=")
        );
        assert!(LabelMatcher::parse("=x").is_err());
        assert!(LabelMatcher::parse("novalue").is_err());
        let json = serde_json::to_string(&LabelMatcher::parse("a!~b").unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"name":"a","value":"b","isRegex":true,"isEqual":false}"#
        );
    }

    #[test]
    fn non_finite_alert_values_read_back() {
        // A PromQL rule's value may be NaN or infinite: JSON's null would not read back.
        for v in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 0.5] {
            let t = AlertTransition {
                at_ms: 1,
                rule: "r".into(),
                labels: LabelSet::new(),
                fingerprint: "f".into(),
                from: AlertState::Pending,
                to: AlertState::Firing,
                value: v,
            };
            let json = serde_json::to_string(&t).unwrap();
            assert!(!json.contains("null"), "{json}");
            let back: AlertTransition = serde_json::from_str(&json).unwrap();
            assert_eq!(back.value.to_bits(), v.to_bits(), "{json}");
        }
    }

    #[test]
    fn webhook_field_names() {
        let m = WebhookMessage {
            receiver: "r".into(),
            status: "firing".into(),
            alerts: vec![WebhookAlert {
                status: "firing".into(),
                labels: LabelSet::new(),
                annotations: LabelSet::new(),
                starts_at: rfc3339_ms(0),
                ends_at: ZERO_TIME.into(),
                generator_url: "u".into(),
                fingerprint: "f".into(),
            }],
            group_labels: LabelSet::new(),
            common_labels: LabelSet::new(),
            common_annotations: LabelSet::new(),
            external_url: "e".into(),
            version: "4".into(),
            group_key: "k".into(),
            truncated_alerts: 0,
        };
        let v = serde_json::to_value(&m).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "alerts",
                "commonAnnotations",
                "commonLabels",
                "externalURL",
                "groupKey",
                "groupLabels",
                "receiver",
                "status",
                "truncatedAlerts",
                "version"
            ]
        );
        let mut a: Vec<&str> = v["alerts"][0]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        a.sort();
        assert_eq!(
            a,
            [
                "annotations",
                "endsAt",
                "fingerprint",
                "generatorURL",
                "labels",
                "startsAt",
                "status"
            ]
        );
    }
}
