//! The `[alerts]` section of the collector's configuration: where rules are, how often they
//! run, receivers, the routing tree, inhibition and the outbox's bounds. Validation names the
//! key and the value, as the rest of the configuration does.

use super::deliver::{ReceiverConfig, RetryPolicy, redact_url};
use super::dispatch::{Inhibit, Route, RouteTiming};
use super::silence::CompiledMatcher;
use serde::{Deserialize, Serialize};
use skein_model::time::parse_duration;
use skein_tls::ClientTls;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// `[alerts]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSection {
    /// Rule files, or directories whose `*.toml` files are rule files. Default none.
    pub rules: Vec<PathBuf>,
    /// Prometheus rule files (YAML), as globs such as `alerts/*.rules.yml` (Prometheus's
    /// `rule_files`). Checked at start: a bad file stops the start naming file and line.
    /// Default none.
    pub rule_files: Vec<String>,
    /// Labels templates read as `$externalLabels.NAME` (Prometheus's `external_labels`).
    /// Default none.
    pub external_labels: BTreeMap<String, String>,
    /// How often every rule is evaluated. Default `5s`.
    pub eval_interval: String,
    /// Base URL put in notifications (`externalURL`, `generatorURL`). Default the query API's
    /// address.
    pub external_url: String,
    /// State changes kept for `GET /api/v1/alerts/history` (in memory and on disk).
    /// Default 10,000.
    pub history_max: usize,
    /// Alerts (rule and label set) kept at once, over all rules; a rule's further label sets
    /// are not tracked and its health says so. Default 10,000.
    pub max_alerts: usize,
    /// Silences kept (active, pending and expired). Default 10,000.
    pub max_silences: usize,
    /// Notifications waiting per receiver; when full the oldest is dropped and counted.
    /// Default 10,000.
    pub outbox_max_pending: usize,
    /// First retry delay after a failed delivery; it doubles up to `retry_max`. Default `1s`.
    pub retry_first: String,
    /// Longest retry delay. Default `30s`.
    pub retry_max: String,
    /// A notification still failing after this long is given up (a permanent failure).
    /// Default `24h`.
    pub give_up_after: String,
    /// Webhook receivers.
    #[serde(rename = "receiver")]
    pub receivers: Vec<ReceiverSection>,
    /// The routing tree. Default: every alert to the first receiver.
    pub route: Option<RouteSection>,
    /// Inhibition rules.
    pub inhibit: Vec<InhibitSection>,
}

impl Default for AlertsSection {
    fn default() -> Self {
        AlertsSection {
            rules: Vec::new(),
            rule_files: Vec::new(),
            external_labels: BTreeMap::new(),
            eval_interval: "5s".into(),
            external_url: String::new(),
            history_max: 10_000,
            max_alerts: 10_000,
            max_silences: 10_000,
            outbox_max_pending: 10_000,
            retry_first: "1s".into(),
            retry_max: "30s".into(),
            give_up_after: "24h".into(),
            receivers: Vec::new(),
            route: None,
            inhibit: Vec::new(),
        }
    }
}

/// `[[alerts.receiver]]`: a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverSection {
    /// Name routes refer to.
    pub name: String,
    /// `http://` or `https://` URL the notifications are POSTed to.
    pub url: String,
    /// For an `https://` URL: a PEM file of CA certificates trusted besides the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// For an `https://` URL: do not check the receiver's certificate (logged as a warning at
    /// start). For tests only. Default false.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Extra request headers (for example `Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Time limit of one request. Default `10s`.
    #[serde(default = "default_timeout")]
    pub timeout: String,
    /// Send notifications of resolved alerts. Default true.
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// Most alerts in one notification, 0 for no limit; the rest are counted in
    /// `truncatedAlerts`. Default 0.
    #[serde(default)]
    pub max_alerts: usize,
}

fn default_timeout() -> String {
    "10s".into()
}

fn yes() -> bool {
    true
}

/// `[alerts.route]` and its `[[...routes]]`: which receiver an alert goes to, and how
/// alerts are grouped into notifications. Unset values are inherited from the parent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteSection {
    /// Receiver name.
    pub receiver: Option<String>,
    /// Label matchers an alert must pass (`=`, `!=`, `=~`, `!~`); the root takes all.
    pub matchers: Vec<String>,
    /// Labels that split alerts into groups; `["..."]` for every label. Root default: none
    /// (one group).
    pub group_by: Option<Vec<String>>,
    /// Wait before a new group's first notification. Root default `30s`.
    pub group_wait: Option<String>,
    /// Wait between notifications of a group that changed. Root default `5m`.
    pub group_interval: Option<String>,
    /// Wait before a group that did not change is notified again. Root default `4h`.
    pub repeat_interval: Option<String>,
    /// Go on to the next sibling after a match.
    #[serde(rename = "continue")]
    pub continue_: bool,
    /// Child routes, tried in order.
    pub routes: Vec<RouteSection>,
}

/// `[[alerts.inhibit]]`: while an alert passing `source_matchers` fires, alerts passing
/// `target_matchers` with the same values of `equal` are not notified.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InhibitSection {
    /// Matchers of the muting alert.
    pub source_matchers: Vec<String>,
    /// Matchers of the muted alerts.
    pub target_matchers: Vec<String>,
    /// Labels both must share.
    pub equal: Vec<String>,
}

/// The section, checked and turned into what the engine runs on.
#[derive(Debug, Clone)]
pub struct AlertsPlan {
    /// Rule paths.
    pub rules: Vec<PathBuf>,
    /// Prometheus rule file globs.
    pub rule_files: Vec<String>,
    /// External labels, for templates.
    pub external_labels: BTreeMap<String, String>,
    /// Evaluation interval.
    pub eval_interval: Duration,
    /// `externalURL`, empty when the caller fills in the API address.
    pub external_url: String,
    /// History bound.
    pub history_max: usize,
    /// Alerts bound.
    pub max_alerts: usize,
    /// Silences bound.
    pub max_silences: usize,
    /// Outbox bound per receiver.
    pub outbox_max_pending: usize,
    /// Retries.
    pub retry: RetryPolicy,
    /// Receivers.
    pub receivers: Vec<ReceiverConfig>,
    /// Per receiver: send resolved, most alerts per notification.
    pub receiver_opts: BTreeMap<String, (bool, usize)>,
    /// The routing tree; None without receivers.
    pub route: Option<Route>,
    /// Inhibition.
    pub inhibit: Vec<Inhibit>,
}

fn dur(key: &str, v: &str) -> Result<Duration, String> {
    parse_duration(v).map_err(|e| format!("key {key}: value \"{v}\": {e}"))
}

fn matchers(key: &str, list: &[String]) -> Result<Vec<CompiledMatcher>, String> {
    list.iter()
        .map(|m| CompiledMatcher::parse(m).map_err(|e| format!("key {key}: {e}")))
        .collect()
}

impl AlertsSection {
    /// The `[alerts]` section of a collector configuration file's text (the defaults when it
    /// has none); the other sections are not looked at. For `skein rules check`.
    pub fn from_config_text(text: &str) -> Result<AlertsSection, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        match table.get("alerts") {
            None => Ok(AlertsSection::default()),
            Some(v) => v
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| format!("key alerts: {}", e.message())),
        }
    }

    /// Checks every value and builds the plan; errors name the key and value.
    pub fn plan(&self) -> Result<AlertsPlan, String> {
        let eval_interval = dur("alerts.eval_interval", &self.eval_interval)?;
        if eval_interval < Duration::from_millis(100) {
            return Err(format!(
                "key alerts.eval_interval: value \"{}\" is too short; the least is 100ms",
                self.eval_interval
            ));
        }
        for (key, v) in [
            ("alerts.history_max", self.history_max),
            ("alerts.max_alerts", self.max_alerts),
            ("alerts.max_silences", self.max_silences),
            ("alerts.outbox_max_pending", self.outbox_max_pending),
        ] {
            if v == 0 {
                return Err(format!(
                    "key {key}: value 0 is not allowed, it must be at least 1"
                ));
            }
        }
        let retry = RetryPolicy {
            first_backoff: dur("alerts.retry_first", &self.retry_first)?,
            max_backoff: dur("alerts.retry_max", &self.retry_max)?,
            give_up_after: dur("alerts.give_up_after", &self.give_up_after)?,
        };
        if retry.first_backoff.is_zero() || retry.max_backoff < retry.first_backoff {
            return Err(format!(
                "key alerts.retry_max: value \"{}\" must be at least alerts.retry_first (\"{}\"), which must be above 0",
                self.retry_max, self.retry_first
            ));
        }
        let web = ["http://", "https://"]
            .iter()
            .any(|p| self.external_url.starts_with(p));
        if !self.external_url.is_empty() && !web {
            return Err(format!(
                "key alerts.external_url: value \"{}\" is not an http:// or https:// URL",
                self.external_url
            ));
        }
        let mut receivers = Vec::new();
        let mut receiver_opts = BTreeMap::new();
        for (i, r) in self.receivers.iter().enumerate() {
            let key = format!("alerts.receiver[{i}]");
            if r.name.trim().is_empty() {
                return Err(format!("key {key}.name: a receiver needs a name"));
            }
            if receiver_opts.contains_key(&r.name) {
                return Err(format!(
                    "key {key}.name: value \"{}\" names two receivers",
                    r.name
                ));
            }
            let tls = receiver_tls(&key, r)?;
            for (h, v) in &r.headers {
                if http::HeaderName::from_bytes(h.as_bytes()).is_err()
                    || http::HeaderValue::from_str(v).is_err()
                {
                    return Err(format!(
                        "key {key}.headers: \"{h}\" is not a valid header name and value"
                    ));
                }
            }
            let timeout = dur(&format!("{key}.timeout"), &r.timeout)?;
            if timeout.is_zero() {
                return Err(format!("key {key}.timeout: value \"0s\" is not allowed"));
            }
            receivers.push(ReceiverConfig {
                name: r.name.clone(),
                url: r.url.clone(),
                headers: r
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                timeout,
                tls,
            });
            receiver_opts.insert(r.name.clone(), (r.send_resolved, r.max_alerts));
        }
        let route = match (&self.route, self.receivers.first()) {
            (_, None) => {
                if self.route.is_some() {
                    return Err(
                        "key alerts.route: a route needs at least one [[alerts.receiver]]".into(),
                    );
                }
                None
            }
            (None, Some(first)) => Some(Route::root(first.name.clone())),
            (Some(r), Some(first)) => {
                let root_timing = RouteTiming {
                    group_by: Vec::new(),
                    group_wait: Duration::from_secs(30),
                    group_interval: Duration::from_secs(300),
                    repeat_interval: Duration::from_secs(4 * 3600),
                };
                Some(build_route(
                    r,
                    "alerts.route",
                    first.name.as_str(),
                    &root_timing,
                    &receiver_opts,
                    &mut 0,
                )?)
            }
        };
        let inhibit = self
            .inhibit
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let key = format!("alerts.inhibit[{i}]");
                Ok(Inhibit {
                    source: matchers(&format!("{key}.source_matchers"), &x.source_matchers)?,
                    target: matchers(&format!("{key}.target_matchers"), &x.target_matchers)?,
                    equal: x.equal.clone(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        for k in self.external_labels.keys() {
            if !crate::promrules::names::valid_label_name(k) {
                return Err(format!(
                    "key alerts.external_labels: label name \"{k}\" must match [a-zA-Z_][a-zA-Z0-9_]*"
                ));
            }
        }
        if let Err(errors) = crate::promrules::load_rule_files(&self.rule_files) {
            let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            return Err(format!("key alerts.rule_files: {}", list.join("; ")));
        }
        Ok(AlertsPlan {
            rules: self.rules.clone(),
            rule_files: self.rule_files.clone(),
            external_labels: self.external_labels.clone(),
            eval_interval,
            external_url: self.external_url.trim_end_matches('/').to_string(),
            history_max: self.history_max,
            max_alerts: self.max_alerts,
            max_silences: self.max_silences,
            outbox_max_pending: self.outbox_max_pending,
            retry,
            receivers,
            receiver_opts,
            route,
            inhibit,
        })
    }
}

/// Checks a receiver's URL and TLS keys; an `https://` receiver's TLS set-up is built once
/// here so that a file that cannot be used stops the start. Errors name the key and value.
fn receiver_tls(key: &str, r: &ReceiverSection) -> Result<ClientTls, String> {
    let https = r.url.starts_with("https://");
    let scheme = if https { "https://" } else { "http://" };
    if !r.url.starts_with(scheme) || r.url.len() <= scheme.len() {
        return Err(format!(
            "key {key}.url: value \"{}\" is not an http:// or https:// URL",
            redact_url(&r.url)
        ));
    }
    if !https {
        if let Some(ca) = &r.ca_file {
            return Err(format!(
                "key {key}.ca_file: value \"{}\" is only used with an https:// url",
                ca.display()
            ));
        }
        if r.insecure_skip_verify {
            return Err(format!(
                "key {key}.insecure_skip_verify: value true is only used with an https:// url"
            ));
        }
    }
    let tls = ClientTls {
        ca_file: r.ca_file.clone(),
        insecure_skip_verify: r.insecure_skip_verify,
        ..ClientTls::default()
    };
    // With the insecure switch nothing is read; building it here would only log its warning
    // once more.
    if https && !tls.insecure_skip_verify {
        skein_tls::client_config(&tls).map_err(|e| match (&tls.ca_file, e.path()) {
            (Some(ca), Some(_)) => format!("key {key}.ca_file: value \"{}\": {e}", ca.display()),
            _ => format!("key {key}.url: value \"{}\": {e}", redact_url(&r.url)),
        })?;
    }
    Ok(tls)
}

fn build_route(
    r: &RouteSection,
    key: &str,
    parent_receiver: &str,
    parent: &RouteTiming,
    receivers: &BTreeMap<String, (bool, usize)>,
    next_id: &mut usize,
) -> Result<Route, String> {
    let receiver = r.receiver.clone().unwrap_or(parent_receiver.to_string());
    if !receivers.contains_key(&receiver) {
        return Err(format!(
            "key {key}.receiver: value \"{receiver}\" is not a receiver; known: {}",
            receivers.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let timing = RouteTiming {
        group_by: r.group_by.clone().unwrap_or(parent.group_by.clone()),
        group_wait: match &r.group_wait {
            Some(v) => dur(&format!("{key}.group_wait"), v)?,
            None => parent.group_wait,
        },
        group_interval: match &r.group_interval {
            Some(v) => dur(&format!("{key}.group_interval"), v)?,
            None => parent.group_interval,
        },
        repeat_interval: match &r.repeat_interval {
            Some(v) => dur(&format!("{key}.repeat_interval"), v)?,
            None => parent.repeat_interval,
        },
    };
    for (k, d) in [
        ("group_interval", timing.group_interval),
        ("repeat_interval", timing.repeat_interval),
    ] {
        if d.is_zero() {
            return Err(format!(
                "key {key}.{k}: 0 is not allowed, it must be above 0"
            ));
        }
    }
    let id = *next_id;
    *next_id += 1;
    let mut children = Vec::new();
    for (i, c) in r.routes.iter().enumerate() {
        children.push(build_route(
            c,
            &format!("{key}.routes[{i}]"),
            &receiver,
            &timing,
            receivers,
            next_id,
        )?);
    }
    Ok(Route {
        id,
        receiver,
        matchers: matchers(&format!("{key}.matchers"), &r.matchers)?,
        timing,
        continue_: r.continue_,
        children,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AlertsPlan, String> {
        let s: AlertsSection = toml::from_str(text).map_err(|e| e.to_string())?;
        s.plan()
    }

    #[test]
    fn defaults_have_no_receivers_and_no_route() {
        let p = AlertsSection::default().plan().unwrap();
        assert!(p.route.is_none() && p.receivers.is_empty());
        assert_eq!(p.eval_interval, Duration::from_secs(5));
    }

    #[test]
    fn a_receiver_alone_gets_every_alert() {
        let p = parse("[[receiver]]\nname = \"a\"\nurl = \"http://x/\"\n").unwrap();
        let r = p.route.unwrap();
        assert_eq!(r.receiver, "a");
        assert_eq!(r.timing.group_wait, Duration::from_secs(30));
        assert_eq!(p.receiver_opts["a"], (true, 0));
    }

    #[test]
    fn errors_name_the_key_and_value() {
        let cases = [
            ("eval_interval = \"soon\"", "alerts.eval_interval"),
            ("eval_interval = \"10ms\"", "alerts.eval_interval"),
            (
                "[[receiver]]\nname = \"a\"\nurl = \"ftp://x\"",
                "alerts.receiver[0].url",
            ),
            (
                "[[receiver]]\nname = \"a\"\nurl = \"http://x\"\nca_file = \"/ca.pem\"",
                "alerts.receiver[0].ca_file",
            ),
            (
                "[[receiver]]\nname = \"a\"\nurl = \"http://x\"\ninsecure_skip_verify = true",
                "alerts.receiver[0].insecure_skip_verify",
            ),
            (
                "[[receiver]]\nname = \"a\"\nurl = \"http://x\"\n[[receiver]]\nname = \"a\"\nurl = \"http://y\"",
                "alerts.receiver[1].name",
            ),
            (
                "[[receiver]]\nname = \"a\"\nurl = \"http://x\"\ntimeout = \"0s\"",
                "alerts.receiver[0].timeout",
            ),
            (
                "[[receiver]]\nname = \"a\"\nurl = \"http://x\"\n[route]\nreceiver = \"b\"",
                "alerts.route.receiver",
            ),
            (
                "[[receiver]]\nname = \"a\"\nurl = \"http://x\"\n[route]\n[[route.routes]]\nmatchers = [\"x=~(\"]",
                "alerts.route.routes[0].matchers",
            ),
            (
                "[[receiver]]\nname = \"a\"\nurl = \"http://x\"\n[route]\ngroup_interval = \"0s\"",
                "alerts.route.group_interval",
            ),
            ("[route]\nreceiver = \"a\"", "alerts.route"),
            (
                "retry_first = \"10s\"\nretry_max = \"1s\"",
                "alerts.retry_max",
            ),
            (
                "[[inhibit]]\nsource_matchers = [\"novalue\"]",
                "alerts.inhibit[0].source_matchers",
            ),
        ];
        for (text, key) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn https_receivers_take_a_ca_file_checked_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing-ca.pem");
        let text = format!(
            "[[receiver]]\nname = \"a\"\nurl = \"https://hooks.example/x\"\nca_file = \"{}\"",
            missing.display()
        );
        let e = parse(&text).unwrap_err();
        for want in ["alerts.receiver[0].ca_file", missing.to_str().unwrap()] {
            assert!(e.contains(want), "{want} not in {e}");
        }
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        let e = parse(&text.replace("missing-ca.pem", "garbage.pem")).unwrap_err();
        assert!(e.contains("alerts.receiver[0].ca_file"), "{e}");

        let p = parse(
            "[[receiver]]\nname = \"a\"\nurl = \"https://hooks.example/x\"\n\
             insecure_skip_verify = true",
        )
        .unwrap();
        assert!(p.receivers[0].tls.insecure_skip_verify);
        assert_eq!(p.receivers[0].tls.ca_file, None);
    }
}
