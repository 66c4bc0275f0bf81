//! From alerts to notifications, as Alertmanager does it: a routing tree picks the receiver,
//! `group_by` labels split alerts into groups, and each group is notified `group_wait` after
//! it appears, then at most every `group_interval` when it changed, and again every
//! `repeat_interval` while it fires. Silenced and inhibited alerts are left out; an alert
//! that comes back from a silence counts as a change. The groups (what each receiver was last
//! told) are saved with the alert states, so a restart neither repeats nor forgets.

use super::silence::{CompiledMatcher, matches_all};
use skein_model::alert_api::{LabelSet, WebhookAlert, WebhookMessage, ZERO_TIME, rfc3339_ms};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Put at the end of a value cut short to make a notification fit the body limit.
pub const CUT_MARK: &str = "…[cut]";

/// Wait before a notification that could not be queued is made again (at most the
/// route's `group_interval`).
pub const PUSH_RETRY: Duration = Duration::from_secs(10);

/// Grouping and timing of a route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTiming {
    /// Labels that split alerts into groups; `...` means every label.
    pub group_by: Vec<String>,
    /// Wait before a new group's first notification.
    pub group_wait: Duration,
    /// Wait between notifications of a changed group.
    pub group_interval: Duration,
    /// Wait before an unchanged firing group is notified again.
    pub repeat_interval: Duration,
}

/// Separates a group's key from the place of its route among same-matcher siblings.
const TWIN: char = '\u{1}';

/// A node of the routing tree.
#[derive(Debug, Clone)]
pub struct Route {
    /// Position in the tree (depth first), part of the group key.
    pub id: usize,
    /// Receiver name.
    pub receiver: String,
    /// Matchers an alert must pass.
    pub matchers: Vec<CompiledMatcher>,
    /// Grouping and timing.
    pub timing: RouteTiming,
    /// Go on to the next sibling after a match.
    pub continue_: bool,
    /// Children, tried in order.
    pub children: Vec<Route>,
}

impl Route {
    /// A root route to one receiver with Alertmanager's default timing.
    pub fn root(receiver: String) -> Route {
        Route {
            id: 0,
            receiver,
            matchers: Vec::new(),
            timing: RouteTiming {
                group_by: Vec::new(),
                group_wait: Duration::from_secs(30),
                group_interval: Duration::from_secs(300),
                repeat_interval: Duration::from_secs(4 * 3600),
            },
            continue_: false,
            children: Vec::new(),
        }
    }

    /// The routes an alert goes to: the deepest matching ones, first match per level unless
    /// a route says `continue`.
    pub fn matching(&self, labels: &LabelSet) -> Vec<&Route> {
        if !matches_all(&self.matchers, labels) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for c in &self.children {
            let m = c.matching(labels);
            if !m.is_empty() {
                out.extend(m);
                if !c.continue_ {
                    break;
                }
            }
        }
        if out.is_empty() {
            out.push(self);
        }
        out
    }

    fn matchers_text(&self) -> String {
        format!(
            "{{{}}}",
            self.matchers
                .iter()
                .map(|m| m.matcher.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )
    }

    /// Among the siblings of route `id` with the same matchers, its place (0 for the first).
    /// Alertmanager keeps such twins apart (its route ID); their group keys read the same.
    fn twin_index(&self, id: usize) -> Option<usize> {
        for (i, c) in self.children.iter().enumerate() {
            if c.id == id {
                let mine = c.matchers_text();
                return Some(
                    self.children[..i]
                        .iter()
                        .filter(|s| s.matchers_text() == mine)
                        .count(),
                );
            }
            if let Some(n) = c.twin_index(id) {
                return Some(n);
            }
        }
        None
    }

    fn path(&self, id: usize, prefix: &str) -> Option<String> {
        let me = format!("{prefix}{}", self.matchers_text());
        if self.id == id {
            return Some(me);
        }
        self.children
            .iter()
            .find_map(|c| c.path(id, &format!("{me}/")))
    }
}

/// An inhibition rule.
#[derive(Debug, Clone)]
pub struct Inhibit {
    /// Matchers of the muting (source) alert.
    pub source: Vec<CompiledMatcher>,
    /// Matchers of the muted (target) alerts.
    pub target: Vec<CompiledMatcher>,
    /// Labels both must share.
    pub equal: Vec<String>,
}

/// The fingerprints of firing alerts that inhibit `labels` (never the alert itself).
pub fn inhibited_by(
    rules: &[Inhibit],
    firing: &[(&str, &LabelSet)],
    labels: &LabelSet,
) -> Vec<String> {
    let mut out = Vec::new();
    for r in rules {
        if !matches_all(&r.target, labels) {
            continue;
        }
        for (fp, src) in firing {
            if *src != labels
                && matches_all(&r.source, src)
                && r.equal.iter().all(|l| src.get(l) == labels.get(l))
                && !out.iter().any(|o| o == fp)
            {
                out.push(fp.to_string());
            }
        }
    }
    out
}

/// One alert as the dispatcher sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// Fingerprint.
    pub fingerprint: String,
    /// Rule name.
    pub rule: String,
    /// Labels.
    pub labels: LabelSet,
    /// Annotations.
    pub annotations: LabelSet,
    /// Started firing (ms).
    pub starts_ms: i64,
    /// Resolved (ms), None while firing.
    pub ends_ms: Option<i64>,
    /// Silenced or inhibited now.
    pub muted: bool,
}

/// A group of alerts notified together.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Group {
    /// Route id.
    pub route: usize,
    /// Receiver.
    pub receiver: String,
    /// The `group_by` labels' values.
    pub group_labels: LabelSet,
    /// Alerts by fingerprint.
    pub alerts: BTreeMap<String, Snapshot>,
    /// Next time the group is looked at (ms).
    pub next_flush_ms: i64,
    /// Last notification (ms).
    pub last_sent_ms: Option<i64>,
    /// Fingerprints the receiver was told fire (and still do).
    pub sent_firing: BTreeSet<String>,
}

/// Per receiver: send resolved alerts, most alerts per notification (0: all).
pub type ReceiverOpts = BTreeMap<String, (bool, usize)>;

/// Every group, by group key.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Dispatcher {
    /// Groups.
    pub groups: BTreeMap<String, Group>,
}

/// A notification to queue for a receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Receiver.
    pub receiver: String,
    /// The body.
    pub message: WebhookMessage,
}

fn group_labels(by: &[String], labels: &LabelSet) -> LabelSet {
    if by.iter().any(|b| b == "...") {
        return labels.clone();
    }
    by.iter()
        .filter_map(|b| labels.get(b).map(|v| (b.clone(), v.clone())))
        .collect()
}

fn label_text(l: &LabelSet) -> String {
    format!(
        "{{{}}}",
        l.iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(",")
    )
}

fn common(maps: &[&LabelSet]) -> LabelSet {
    let Some(first) = maps.first() else {
        return LabelSet::new();
    };
    first
        .iter()
        .filter(|(k, v)| maps.iter().all(|m| m.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Dispatcher {
    /// Takes the current firing and resolved alerts and returns the notifications due at
    /// `now`. Alerts a group holds that are no longer given count as resolved now.
    pub fn tick(
        &mut self,
        now_ms: i64,
        alerts: &[Snapshot],
        root: &Route,
        opts: &ReceiverOpts,
        external_url: &str,
    ) -> Vec<Outgoing> {
        let mut out = Vec::new();
        self.tick_with(now_ms, alerts, root, opts, external_url, |o| {
            out.push(o.clone());
            true
        });
        out
    }

    /// As [`Dispatcher::tick`], handing each notification due to `push`, which queues it
    /// and says whether it did. A group is marked as notified only once its notification is
    /// queued; one that could not be (false) is made again after [`PUSH_RETRY`] (or the
    /// route's `group_interval` when shorter), its resolved alerts kept until then.
    pub fn tick_with(
        &mut self,
        now_ms: i64,
        alerts: &[Snapshot],
        root: &Route,
        opts: &ReceiverOpts,
        external_url: &str,
        mut push: impl FnMut(&Outgoing) -> bool,
    ) {
        let mut present: BTreeSet<String> = BTreeSet::new();
        for a in alerts {
            for r in root.matching(&a.labels) {
                let gl = group_labels(&r.timing.group_by, &a.labels);
                let mut key = format!(
                    "{}:{}",
                    root.path(r.id, "").unwrap_or_default(),
                    label_text(&gl)
                );
                // A second route with the same matchers under the same parent (`continue`
                // to two receivers) gets groups of its own; its notices show the same key.
                if let Some(n) = root.twin_index(r.id).filter(|n| *n > 0) {
                    key.push_str(&format!("{TWIN}{n}"));
                }
                present.insert(format!("{key}\u{0}{}", a.fingerprint));
                let g = self.groups.entry(key).or_insert_with(|| Group {
                    route: r.id,
                    receiver: r.receiver.clone(),
                    group_labels: gl,
                    alerts: BTreeMap::new(),
                    next_flush_ms: now_ms + r.timing.group_wait.as_millis() as i64,
                    last_sent_ms: None,
                    sent_firing: BTreeSet::new(),
                });
                g.alerts.insert(a.fingerprint.clone(), a.clone());
            }
        }
        for (key, g) in self.groups.iter_mut() {
            for (fp, a) in g.alerts.iter_mut() {
                if a.ends_ms.is_none() && !present.contains(&format!("{key}\u{0}{fp}")) {
                    a.ends_ms = Some(now_ms);
                }
            }
        }
        let mut empty = Vec::new();
        for (key, g) in self.groups.iter_mut() {
            if now_ms < g.next_flush_ms {
                continue;
            }
            let Some(route) = find(root, g.route) else {
                empty.push(key.clone());
                continue;
            };
            let (send_resolved, max_alerts) = opts.get(&g.receiver).copied().unwrap_or((true, 0));
            let firing: BTreeSet<String> = g
                .alerts
                .values()
                .filter(|a| a.ends_ms.is_none() && !a.muted)
                .map(|a| a.fingerprint.clone())
                .collect();
            let resolved: BTreeSet<String> = g
                .alerts
                .values()
                .filter(|a| {
                    a.ends_ms.is_some() && !a.muted && g.sent_firing.contains(&a.fingerprint)
                })
                .map(|a| a.fingerprint.clone())
                .collect();
            let repeat = route.timing.repeat_interval.as_millis() as i64;
            let due_repeat =
                !firing.is_empty() && g.last_sent_ms.is_none_or(|t| now_ms - t >= repeat);
            let needs = !firing.is_subset(&g.sent_firing)
                || (send_resolved && !resolved.is_empty())
                || due_repeat;
            if needs && !(firing.is_empty() && resolved.is_empty()) {
                let mut list: Vec<&Snapshot> = g
                    .alerts
                    .values()
                    .filter(|a| {
                        firing.contains(&a.fingerprint)
                            || (send_resolved && resolved.contains(&a.fingerprint))
                    })
                    .collect();
                if !list.is_empty() {
                    // Firing first, then by start.
                    list.sort_by_key(|a| (a.ends_ms.is_some(), a.starts_ms, a.fingerprint.clone()));
                    let all_labels: Vec<&LabelSet> = list.iter().map(|a| &a.labels).collect();
                    let all_ann: Vec<&LabelSet> = list.iter().map(|a| &a.annotations).collect();
                    let common_labels = common(&all_labels);
                    let common_annotations = common(&all_ann);
                    let truncated = if max_alerts > 0 && list.len() > max_alerts {
                        list.len() - max_alerts
                    } else {
                        0
                    };
                    list.truncate(list.len() - truncated);
                    let message = WebhookMessage {
                        receiver: g.receiver.clone(),
                        status: if firing.is_empty() {
                            "resolved"
                        } else {
                            "firing"
                        }
                        .into(),
                        alerts: list
                            .iter()
                            .map(|a| WebhookAlert {
                                status: if a.ends_ms.is_some() {
                                    "resolved"
                                } else {
                                    "firing"
                                }
                                .into(),
                                labels: a.labels.clone(),
                                annotations: a.annotations.clone(),
                                starts_at: rfc3339_ms(a.starts_ms),
                                ends_at: a
                                    .ends_ms
                                    .map(rfc3339_ms)
                                    .unwrap_or_else(|| ZERO_TIME.into()),
                                generator_url: format!(
                                    "{external_url}/api/v1/rules?name={}",
                                    url_escape(&a.rule)
                                ),
                                fingerprint: a.fingerprint.clone(),
                            })
                            .collect(),
                        group_labels: g.group_labels.clone(),
                        common_labels,
                        common_annotations,
                        external_url: external_url.to_string(),
                        version: "4".into(),
                        group_key: key.split(TWIN).next().unwrap_or_default().to_string(),
                        truncated_alerts: truncated as u64,
                    };
                    if !push(&Outgoing {
                        receiver: g.receiver.clone(),
                        message,
                    }) {
                        // Not queued (a full disk, say): nothing is marked as told, and the
                        // resolved alerts are kept, so the same notice is made again soon.
                        g.next_flush_ms =
                            now_ms + route.timing.group_interval.min(PUSH_RETRY).as_millis() as i64;
                        continue;
                    }
                    g.sent_firing = firing.clone();
                    g.last_sent_ms = Some(now_ms);
                }
            }
            // What the receiver believes fires: an alert that resolved or went muted
            // without a notification is no longer in it, so its return is a change.
            g.sent_firing.retain(|fp| firing.contains(fp));
            g.next_flush_ms = now_ms + route.timing.group_interval.as_millis() as i64;
            // Resolved alerts are done once looked at: notified, or nobody knew of them.
            g.alerts.retain(|_, a| a.ends_ms.is_none());
            if g.alerts.is_empty() {
                empty.push(key.clone());
            }
        }
        for k in empty {
            self.groups.remove(&k);
        }
    }

    /// When the next group is due (ms), to sleep until then.
    pub fn next_due(&self) -> Option<i64> {
        self.groups.values().map(|g| g.next_flush_ms).min()
    }
}

/// Caps tried in turn on the values of a notification that is over the body limit (bytes).
const CUT_CAPS: [usize; 3] = [64 * 1024, 4 * 1024, 256];

/// Makes a notification fit in `max_bytes` of JSON; false when it cannot. Alerts are left
/// out from the end of the list (resolved ones, then the latest to fire), as many as needed,
/// and counted in `truncatedAlerts`; while even one alert is too big, label and annotation
/// values (and the group key and links) are cut to 64 KiB, then 4 KiB, then 256 bytes, each
/// ended with [`CUT_MARK`]. A notification that fits is left as it is.
pub fn fit(message: &mut WebhookMessage, max_bytes: usize) -> bool {
    let fits = |m: &WebhookMessage| json_len(m).is_some_and(|n| n <= max_bytes);
    if fits(message) {
        return true;
    }
    let total = message.alerts.len();
    for cap in [None].into_iter().chain(CUT_CAPS.into_iter().map(Some)) {
        let mut m = message.clone();
        if let Some(cap) = cap {
            cut_values(&mut m, cap);
        }
        // The most alerts that fit: fewer alerts, fewer bytes.
        let with = |k: usize| {
            let mut t = m.clone();
            t.alerts.truncate(k);
            t.truncated_alerts = m.truncated_alerts + (total - k) as u64;
            t
        };
        if total == 0 || !fits(&with(1)) {
            continue;
        }
        let (mut lo, mut hi) = (1, total);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if fits(&with(mid)) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        *message = with(lo);
        return true;
    }
    // Not one alert fits, even cut: the group's notice without its alerts, as a last resort.
    let mut m = message.clone();
    cut_values(&mut m, CUT_CAPS[CUT_CAPS.len() - 1]);
    m.truncated_alerts += total as u64;
    m.alerts.clear();
    if fits(&m) {
        *message = m;
        return true;
    }
    false
}

/// Size of a value as JSON; None when it cannot be written.
fn json_len<T: serde::Serialize>(value: &T) -> Option<usize> {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, value).ok()?;
    Some(counter.0)
}

/// Cuts every label and annotation value, the group key and the links longer than `cap`
/// bytes.
fn cut_values(m: &mut WebhookMessage, cap: usize) {
    let cut_map = |l: &mut LabelSet| l.values_mut().for_each(|v| cut_text(v, cap));
    for a in &mut m.alerts {
        cut_map(&mut a.labels);
        cut_map(&mut a.annotations);
        cut_text(&mut a.generator_url, cap);
    }
    cut_map(&mut m.group_labels);
    cut_map(&mut m.common_labels);
    cut_map(&mut m.common_annotations);
    cut_text(&mut m.group_key, cap);
    cut_text(&mut m.external_url, cap);
}

/// Cuts `s` to at most `cap` bytes on a character boundary, ended with [`CUT_MARK`].
fn cut_text(s: &mut String, cap: usize) {
    if s.len() <= cap {
        return;
    }
    let mut end = cap.saturating_sub(CUT_MARK.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str(CUT_MARK);
}

fn find(r: &Route, id: usize) -> Option<&Route> {
    if r.id == id {
        return Some(r);
    }
    r.children.iter().find_map(|c| find(c, id))
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;
