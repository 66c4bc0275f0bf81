//! Alert states per rule and label set, and their history.
//!
//! An alert is a rule and one label set (the condition's labels, the rule's labels and
//! `alertname`), named by a fingerprint of those labels. Its state moves
//! inactive → pending (the condition holds) → firing (it held for the rule's `for`) →
//! resolved (it stopped holding, after `keep_firing_for`); a pending alert whose condition
//! stops goes back to inactive. Each change is a [`AlertTransition`] in the history.
//!
//! The states, with the times that start the `for` clocks, are saved after every evaluation
//! that changed them (`alerts/state.json`, with the notification groups), so a restart picks
//! up where it left off. The history is appended to `alerts/history.jsonl`.

use skein_model::alert_api::{AlertState, AlertTransition, LabelSet};
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Resolved alerts are kept this long (ms) for the API and the notifications, then forgotten.
pub const KEEP_RESOLVED_MS: i64 = 15 * 60_000;

/// FNV-1a, 64 bits: stable across builds and restarts (unlike std's hasher).
pub fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// An alert's identity: 16 hex digits over its sorted labels.
pub fn fingerprint(labels: &LabelSet) -> String {
    let mut buf = Vec::new();
    for (k, v) in labels {
        buf.extend_from_slice(k.as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(v.as_bytes());
        buf.push(0xfe);
    }
    format!("{:016x}", fnv64(&buf))
}

/// Writes a file whole ([`skein_wal::durable`]), creating its directory first.
pub fn write_atomic(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(file.parent().unwrap_or(Path::new(".")))?;
    skein_wal::durable::write_file(file, bytes)
}

/// One alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// The rule's key ([`rule_key`]).
    pub rule_key: String,
    /// Rule name.
    pub rule: String,
    /// Labels, with `alertname`.
    pub labels: LabelSet,
    /// Rendered annotations.
    pub annotations: LabelSet,
    /// Fingerprint of the labels.
    pub fingerprint: String,
    /// pending, firing or resolved.
    pub state: AlertState,
    /// Last value (NaN and ±Inf, which a PromQL rule may give, saved as strings: JSON has no
    /// number for them).
    #[serde(with = "skein_model::metric::exact_f64")]
    pub value: f64,
    /// When the condition started to hold.
    pub active_ms: i64,
    /// When it started firing.
    pub fired_ms: Option<i64>,
    /// When it resolved.
    pub resolved_ms: Option<i64>,
    /// Last evaluation at which the condition held.
    pub last_held_ms: i64,
}

/// The key of a rule in the state: its name and own labels, so that the same rule in an
/// edited file keeps its alerts.
pub fn rule_key(name: &str, labels: &BTreeMap<String, String>) -> String {
    let mut k = name.to_string();
    for (l, v) in labels {
        k.push_str(&format!(",{l}={v}"));
    }
    k
}

/// What one evaluation of a rule found: label sets (condition and rule labels, with
/// `alertname`) and values, annotations rendered.
pub struct Found {
    /// Labels.
    pub labels: LabelSet,
    /// Value.
    pub value: f64,
    /// Annotations.
    pub annotations: LabelSet,
}

/// The timing of a rule.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// `for`, ms.
    pub for_ms: i64,
    /// `keep_firing_for`, ms.
    pub keep_firing_for_ms: i64,
}

/// Every alert, by fingerprint.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct States {
    /// Alerts.
    pub alerts: BTreeMap<String, Alert>,
}

impl States {
    /// The firing alerts' fingerprints and labels (inhibition sources).
    pub fn firing(&self) -> Vec<(&str, &LabelSet)> {
        self.alerts
            .values()
            .filter(|a| a.state == AlertState::Firing)
            .map(|a| (a.fingerprint.as_str(), &a.labels))
            .collect()
    }

    /// Applies one evaluation of a rule at `now`: returns the state changes. `max_alerts`
    /// bounds how many alerts exist in all; label sets past it are not tracked (the count of
    /// those left out is returned).
    pub fn apply(
        &mut self,
        rule_key: &str,
        rule: &str,
        timing: Timing,
        found: Vec<Found>,
        now_ms: i64,
        max_alerts: usize,
    ) -> (Vec<AlertTransition>, usize) {
        let mut changes = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut left_out = 0;
        let mut change = |a: &Alert, from: AlertState, to: AlertState| {
            changes.push(AlertTransition {
                at_ms: now_ms,
                rule: a.rule.clone(),
                labels: a.labels.clone(),
                fingerprint: a.fingerprint.clone(),
                from,
                to,
                value: a.value,
            });
        };
        for f in found {
            let fp = fingerprint(&f.labels);
            seen.insert(fp.clone());
            let is_new = match self.alerts.get(&fp) {
                None => true,
                Some(a) => a.state == AlertState::Resolved,
            };
            if is_new {
                if !self.alerts.contains_key(&fp) && self.alerts.len() >= max_alerts {
                    left_out += 1;
                    continue;
                }
                let firing = timing.for_ms <= 0;
                let a = Alert {
                    rule_key: rule_key.to_string(),
                    rule: rule.to_string(),
                    labels: f.labels,
                    annotations: f.annotations,
                    fingerprint: fp.clone(),
                    state: if firing {
                        AlertState::Firing
                    } else {
                        AlertState::Pending
                    },
                    value: f.value,
                    active_ms: now_ms,
                    fired_ms: firing.then_some(now_ms),
                    resolved_ms: None,
                    last_held_ms: now_ms,
                };
                let from = self
                    .alerts
                    .get(&fp)
                    .map(|_| AlertState::Resolved)
                    .unwrap_or(AlertState::Inactive);
                change(&a, from, a.state);
                self.alerts.insert(fp, a);
                continue;
            }
            if let Some(a) = self.alerts.get_mut(&fp) {
                a.value = f.value;
                a.annotations = f.annotations;
                a.last_held_ms = now_ms;
                if a.state == AlertState::Pending && now_ms - a.active_ms >= timing.for_ms {
                    a.state = AlertState::Firing;
                    a.fired_ms = Some(now_ms);
                    change(a, AlertState::Pending, AlertState::Firing);
                }
            }
        }
        let mut gone = Vec::new();
        for (fp, a) in self.alerts.iter_mut() {
            if a.rule_key != rule_key || seen.contains(fp) {
                continue;
            }
            match a.state {
                AlertState::Pending => {
                    change(a, AlertState::Pending, AlertState::Inactive);
                    gone.push(fp.clone());
                }
                AlertState::Firing => {
                    if now_ms - a.last_held_ms >= timing.keep_firing_for_ms {
                        a.state = AlertState::Resolved;
                        a.resolved_ms = Some(now_ms);
                        change(a, AlertState::Firing, AlertState::Resolved);
                    }
                }
                AlertState::Resolved => {
                    if a.resolved_ms.is_none_or(|r| now_ms - r >= KEEP_RESOLVED_MS) {
                        gone.push(fp.clone());
                    }
                }
                AlertState::Inactive => gone.push(fp.clone()),
            }
        }
        for fp in gone {
            self.alerts.remove(&fp);
        }
        (changes, left_out)
    }

    /// Resolves the alerts of rules that no longer exist (their file was edited or removed).
    pub fn drop_rules(
        &mut self,
        live: &std::collections::HashSet<String>,
        now_ms: i64,
    ) -> Vec<AlertTransition> {
        let mut changes = Vec::new();
        self.alerts.retain(|_, a| {
            if live.contains(&a.rule_key) {
                return true;
            }
            if a.state == AlertState::Firing {
                a.state = AlertState::Resolved;
                a.resolved_ms = Some(now_ms);
                changes.push(AlertTransition {
                    at_ms: now_ms,
                    rule: a.rule.clone(),
                    labels: a.labels.clone(),
                    fingerprint: a.fingerprint.clone(),
                    from: AlertState::Firing,
                    to: AlertState::Resolved,
                    value: a.value,
                });
                return true;
            }
            a.state == AlertState::Resolved
                && a.resolved_ms.is_some_and(|r| now_ms - r < KEEP_RESOLVED_MS)
        });
        changes
    }
}

/// The history of state changes: the newest `max` in memory, all appended to a file that is
/// cut to the newest `max` lines when it grows past twice that.
pub struct History {
    file: PathBuf,
    max: usize,
    recent: VecDeque<AlertTransition>,
    lines_in_file: usize,
}

impl History {
    /// Reads the newest `max` changes from the file (unreadable lines are skipped).
    pub fn open(file: &Path, max: usize) -> History {
        let mut recent = VecDeque::new();
        let mut lines = 0;
        if let Ok(text) = std::fs::read_to_string(file) {
            for line in text.lines() {
                lines += 1;
                if let Ok(t) = serde_json::from_str::<AlertTransition>(line) {
                    recent.push_back(t);
                    if recent.len() > max {
                        recent.pop_front();
                    }
                }
            }
        }
        History {
            file: file.to_path_buf(),
            max,
            recent,
            lines_in_file: lines,
        }
    }

    /// Appends changes (to memory and the file).
    pub fn record(&mut self, changes: &[AlertTransition]) {
        if changes.is_empty() {
            return;
        }
        let mut text = String::new();
        for c in changes {
            if let Ok(line) = serde_json::to_string(c) {
                text.push_str(&line);
                text.push('\n');
            }
            self.recent.push_back(c.clone());
            if self.recent.len() > self.max {
                self.recent.pop_front();
            }
        }
        self.lines_in_file += changes.len();
        let res = if self.lines_in_file > self.max.saturating_mul(2) {
            self.lines_in_file = self.recent.len();
            let all: String = self
                .recent
                .iter()
                .filter_map(|t| serde_json::to_string(t).ok())
                .map(|l| l + "\n")
                .collect();
            write_atomic(&self.file, all.as_bytes())
        } else {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.file)
                .and_then(|mut f| f.write_all(text.as_bytes()))
        };
        if let Err(e) = res {
            tracing::warn!(file = %self.file.display(), error = %e, "cannot write alert history");
        }
    }

    /// Newest first, filtered by rule and fingerprint, at most `limit`, not before `since_ms`.
    pub fn list(
        &self,
        rule: Option<&str>,
        fingerprint: Option<&str>,
        since_ms: i64,
        limit: usize,
    ) -> Vec<AlertTransition> {
        self.recent
            .iter()
            .rev()
            .filter(|t| t.at_ms >= since_ms)
            .filter(|t| rule.is_none_or(|r| t.rule == r))
            .filter(|t| fingerprint.is_none_or(|f| t.fingerprint == f))
            .take(limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn found(service: &str, value: f64) -> Found {
        Found {
            labels: [("alertname", "X"), ("service", service)]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
            annotations: LabelSet::new(),
        }
    }

    const T: Timing = Timing {
        for_ms: 10_000,
        keep_firing_for_ms: 0,
    };

    fn states(s: &States) -> Vec<AlertState> {
        s.alerts.values().map(|a| a.state).collect()
    }

    #[test]
    fn non_finite_values_survive_the_state_file() {
        // A PromQL rule's value may be NaN or infinite; saved as null it would not read back
        // and the whole state would be lost at the next start.
        let mut s = States::default();
        let found = vec![found("a", f64::INFINITY), found("b", f64::NAN)];
        s.apply("X", "X", T, found, 0, 100);
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains(r#""value":null"#), "{json}");
        assert!(json.contains(r#""value":"+Inf""#), "{json}");
        let back: States = serde_json::from_str(&json).unwrap();
        let values: Vec<u64> = back.alerts.values().map(|a| a.value.to_bits()).collect();
        let want: Vec<u64> = s.alerts.values().map(|a| a.value.to_bits()).collect();
        assert_eq!(values.len(), 2);
        assert_eq!(values, want);
    }

    #[test]
    fn pending_then_firing_then_resolved() {
        let mut s = States::default();
        let (c, _) = s.apply("X", "X", T, vec![found("pay", 1.0)], 0, 100);
        assert_eq!(
            (c[0].from, c[0].to),
            (AlertState::Inactive, AlertState::Pending)
        );
        let (c, _) = s.apply("X", "X", T, vec![found("pay", 2.0)], 5_000, 100);
        assert!(c.is_empty());
        assert_eq!(states(&s), [AlertState::Pending]);
        let (c, _) = s.apply("X", "X", T, vec![found("pay", 3.0)], 10_000, 100);
        assert_eq!(
            (c[0].from, c[0].to),
            (AlertState::Pending, AlertState::Firing)
        );
        let a = s.alerts.values().next().unwrap();
        assert_eq!((a.active_ms, a.fired_ms, a.value), (0, Some(10_000), 3.0));
        let (c, _) = s.apply("X", "X", T, vec![], 15_000, 100);
        assert_eq!(
            (c[0].from, c[0].to),
            (AlertState::Firing, AlertState::Resolved)
        );
        // Resolved is kept for a while, then forgotten.
        s.apply("X", "X", T, vec![], 20_000, 100);
        assert_eq!(states(&s), [AlertState::Resolved]);
        s.apply("X", "X", T, vec![], 15_000 + KEEP_RESOLVED_MS, 100);
        assert!(s.alerts.is_empty());
    }

    #[test]
    fn pending_that_stops_goes_inactive_and_for_zero_fires_at_once() {
        let mut s = States::default();
        s.apply("X", "X", T, vec![found("pay", 1.0)], 0, 100);
        let (c, _) = s.apply("X", "X", T, vec![], 5_000, 100);
        assert_eq!(c[0].to, AlertState::Inactive);
        assert!(s.alerts.is_empty());
        let zero = Timing {
            for_ms: 0,
            keep_firing_for_ms: 0,
        };
        let (c, _) = s.apply("X", "X", zero, vec![found("pay", 1.0)], 0, 100);
        assert_eq!(
            (c[0].from, c[0].to),
            (AlertState::Inactive, AlertState::Firing)
        );
    }

    #[test]
    fn keep_firing_for_holds_and_refiring_after_resolved_starts_again() {
        let keep = Timing {
            for_ms: 0,
            keep_firing_for_ms: 20_000,
        };
        let mut s = States::default();
        s.apply("X", "X", keep, vec![found("pay", 1.0)], 0, 100);
        let (c, _) = s.apply("X", "X", keep, vec![], 10_000, 100);
        assert!(c.is_empty(), "still firing within keep_firing_for");
        let (c, _) = s.apply("X", "X", keep, vec![], 20_000, 100);
        assert_eq!(c[0].to, AlertState::Resolved);
        let (c, _) = s.apply("X", "X", keep, vec![found("pay", 1.0)], 25_000, 100);
        assert_eq!(
            (c[0].from, c[0].to),
            (AlertState::Resolved, AlertState::Firing)
        );
        assert_eq!(s.alerts.values().next().unwrap().active_ms, 25_000);
    }

    #[test]
    fn bounded_and_rules_kept_apart() {
        let mut s = States::default();
        let (_, left) = s.apply(
            "X",
            "X",
            T,
            vec![found("a", 1.0), found("b", 1.0), found("c", 1.0)],
            0,
            2,
        );
        assert_eq!((s.alerts.len(), left), (2, 1));
        // Another rule's evaluation does not touch X's alerts.
        s.apply("Y", "Y", T, vec![], 1_000, 10);
        assert_eq!(s.alerts.len(), 2);
    }

    #[test]
    fn history_keeps_newest_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("h.jsonl");
        let mut h = History::open(&file, 3);
        let mut s = States::default();
        for i in 0..5 {
            let (c, _) = s.apply("X", "X", T, vec![found(&format!("s{i}"), 1.0)], i, 100);
            h.record(&c);
        }
        assert_eq!(h.list(None, None, 0, 10).len(), 3);
        let h2 = History::open(&file, 3);
        let l = h2.list(None, None, 0, 10);
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].at_ms, 4, "newest first");
        assert_eq!(l[2].at_ms, 3);
        assert_eq!(h2.list(None, None, 4, 10).len(), 2);
        assert_eq!(h2.list(Some("Y"), None, 0, 10).len(), 0);
    }
}
