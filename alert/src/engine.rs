//! The alert engine: loads rules, evaluates them on a timer, keeps states, silences and
//! notification groups, and hands notifications to the outbox.

use super::cond::{Sources, evaluate_rule};
use super::config::AlertsPlan;
use super::deliver::Delivery;
use super::dispatch::{Dispatcher, Outgoing, Snapshot, fit, inhibited_by};
use super::outbox::{Outbox, OutboxLimits};
use super::rules::{Rule, RuleError, load_file, offline_known, rule_files};
use super::shared::{SILENCES_KEY, STATE_KEY, Shared as SharedAlerts, SharedState};
use super::silence::{SilenceError, Silences};
use super::state::{Found, History, States, Timing, rule_key, write_atomic};
use skein_model::alert_api::{AlertState, LabelSet};
use skein_model::time::now_ms;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

#[path = "engine_prom.rs"]
mod prom;

/// Rule files with errors are read again this often (ms): a metric unknown now may exist later.
const RETRY_BAD_FILES_MS: i64 = 30_000;
/// In a cluster, a node that does not evaluate reads the shared state this often (ms).
const SHARED_SYNC_MS: i64 = 2_000;

/// Queues one notification in the outbox; false when it could not be queued (it is then
/// tried again at a later round).
/// A body over the outbox's limit is made to fit first ([`fit`]); one that cannot be is
/// logged and counts as queued, as trying again would not help.
fn queue(outbox: &Outbox, o: &Outgoing) -> bool {
    let mut message = o.message.clone();
    if !fit(&mut message, outbox.max_body_bytes()) {
        tracing::error!(receiver = %o.receiver, status = %o.message.status, "a notification cannot be made to fit the body limit; not sent");
        return true;
    }
    if message != o.message {
        tracing::warn!(receiver = %o.receiver, alerts = message.alerts.len(), left_out = message.truncated_alerts, "notification over the body limit: alerts left out or values cut to fit");
    }
    let body = match serde_json::to_value(&message) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(receiver = %o.receiver, error = %e, "cannot encode a notification");
            return false;
        }
    };
    match outbox.push(&o.receiver, body) {
        Ok(id) => {
            tracing::info!(receiver = %o.receiver, id = %id, status = %o.message.status, alerts = o.message.alerts.len(), "notification queued");
            true
        }
        Err(e) => {
            tracing::error!(receiver = %o.receiver, error = %e, "cannot queue a notification");
            false
        }
    }
}

/// How the last evaluation of a rule went.
#[derive(Debug, Clone, Default)]
pub(crate) struct Health {
    pub(crate) last_ms: Option<i64>,
    pub(crate) seconds: f64,
    pub(crate) error: Option<String>,
}

struct FileState {
    mtime: Option<SystemTime>,
    rules: Vec<Arc<Rule>>,
    errors: Vec<RuleError>,
    read_ms: i64,
}

pub(crate) struct Inner {
    files: BTreeMap<PathBuf, FileState>,
    pub(crate) list_error: Option<RuleError>,
    pub(crate) states: States,
    pub(crate) dispatcher: Dispatcher,
    pub(crate) history: History,
    pub(crate) silences: Silences,
    pub(crate) health: HashMap<String, Health>,
    /// When each rule was first evaluated (absence of never-seen series counts from it).
    since: HashMap<String, i64>,
    dirty: bool,
    /// Hash of the shared silences last read (in a cluster).
    silences_seen: u64,
    /// Prometheus rule files (`alerts.rule_files`).
    pub(crate) prom: prom::PromState,
}

impl Inner {
    /// Every loaded rule, in file order.
    pub(crate) fn rules(&self) -> Vec<Arc<Rule>> {
        self.files.values().flat_map(|f| f.rules.clone()).collect()
    }

    /// Every refused file's errors.
    pub(crate) fn errors(&self) -> Vec<RuleError> {
        self.list_error
            .iter()
            .cloned()
            .chain(self.files.values().flat_map(|f| f.errors.clone()))
            .chain(self.prom.errors())
            .collect()
    }
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Saved {
    alerts: States,
    groups: Dispatcher,
}

/// [`Saved`] by reference, for writing without moving the state out.
#[derive(serde::Serialize)]
struct SavedRef<'a> {
    alerts: &'a States,
    groups: &'a Dispatcher,
}

pub(crate) struct Shared {
    pub(crate) plan: AlertsPlan,
    pub(crate) external_url: String,
    pub(crate) sources: Sources,
    pub(crate) outbox: Option<Outbox>,
    pub(crate) delivery: Mutex<Option<Delivery>>,
    state_file: PathBuf,
    /// In a cluster: where the state is shared with the other nodes.
    shared_state: Option<Arc<dyn SharedState>>,
    /// True while this node evaluates (in a cluster: holds the alert lease); only then is
    /// the shared state written.
    leading: AtomicBool,
    telemetry: crate::telemetry::AlertTelemetry,
    /// Delivery counts already added to telemetry, by (receiver, result).
    counted: Mutex<HashMap<(String, &'static str), u64>>,
    /// The PromQL engine and recording store, once connected.
    prom: OnceLock<prom::PromConn>,
}

/// The alert engine; cheap to clone.
#[derive(Clone)]
pub struct AlertEngine {
    pub(crate) inner: Arc<Mutex<Inner>>,
    pub(crate) shared: Arc<Shared>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl AlertEngine {
    /// Opens the engine's files under `dir` (`<data_dir>/alerts`): saved states, history,
    /// silences and the outbox. Rules are read at the first evaluation.
    pub fn open(
        dir: &Path,
        plan: AlertsPlan,
        sources: Sources,
        external_url: String,
        telemetry: crate::telemetry::AlertTelemetry,
    ) -> std::io::Result<AlertEngine> {
        Self::open_with(dir, plan, sources, external_url, telemetry, None)
    }

    /// Like [`Self::open`] for a node of a cluster: notifications go to the shared queue and
    /// the state is read from and saved to the shared store (see [`crate::shared`]). History
    /// and silences stay in `dir`.
    pub fn open_shared(
        dir: &Path,
        plan: AlertsPlan,
        sources: Sources,
        external_url: String,
        telemetry: crate::telemetry::AlertTelemetry,
        shared: SharedAlerts,
    ) -> std::io::Result<AlertEngine> {
        Self::open_with(dir, plan, sources, external_url, telemetry, Some(shared))
    }

    fn open_with(
        dir: &Path,
        plan: AlertsPlan,
        sources: Sources,
        external_url: String,
        telemetry: crate::telemetry::AlertTelemetry,
        shared: Option<SharedAlerts>,
    ) -> std::io::Result<AlertEngine> {
        std::fs::create_dir_all(dir)?;
        let state_file = dir.join("state.json");
        let saved: Saved = match std::fs::read(&state_file) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!(file = %state_file.display(), error = %e, "alert state unreadable; starting afresh");
                Saved::default()
            }),
            Err(_) => Saved::default(),
        };
        let outbox = if plan.receivers.is_empty() {
            None
        } else if let Some(sh) = &shared {
            Some(Outbox::remote(sh.outbox.clone()))
        } else {
            Some(Outbox::open(
                &dir.join("outbox"),
                OutboxLimits {
                    max_pending: plan.outbox_max_pending,
                    ..OutboxLimits::default()
                },
            )?)
        };
        let inner = Inner {
            files: BTreeMap::new(),
            list_error: None,
            states: saved.alerts,
            dispatcher: saved.groups,
            history: History::open(&dir.join("history.jsonl"), plan.history_max),
            silences: Silences::open(&dir.join("silences.json"), plan.max_silences),
            health: HashMap::new(),
            since: HashMap::new(),
            dirty: false,
            silences_seen: 0,
            prom: prom::PromState::default(),
        };
        Ok(AlertEngine {
            inner: Arc::new(Mutex::new(inner)),
            shared: Arc::new(Shared {
                plan,
                external_url,
                sources,
                outbox,
                delivery: Mutex::new(None),
                state_file,
                shared_state: shared.map(|s| s.state),
                leading: AtomicBool::new(false),
                telemetry,
                counted: Mutex::new(HashMap::new()),
                prom: OnceLock::new(),
            }),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Runs until `shutdown` turns true: evaluation every `eval_interval` and whenever
    /// `derived` is notified (new span-derived samples), notification groups every second,
    /// delivery in its own tasks.
    pub async fn run(
        self,
        shutdown: tokio::sync::watch::Receiver<bool>,
        derived: Arc<tokio::sync::Notify>,
    ) {
        self.run_while(shutdown, derived, Arc::new(|| true)).await
    }

    /// Like [`Self::run`], evaluating and dispatching only while `active` says so (in a
    /// cluster: while this node holds the alert engine's lease). Delivery of what this node's
    /// outbox holds goes on either way.
    pub async fn run_while(
        self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
        derived: Arc<tokio::sync::Notify>,
        active: Arc<dyn Fn() -> bool + Send + Sync>,
    ) {
        if let Some(outbox) = &self.shared.outbox {
            let d = Delivery::start(
                outbox.clone(),
                self.shared.plan.receivers.clone(),
                self.shared.plan.retry.clone(),
                shutdown.clone(),
            );
            if let Ok(mut g) = self.shared.delivery.lock() {
                *g = Some(d);
            }
        }
        let interval = ms(self.shared.plan.eval_interval);
        let mut next_eval = now_ms();
        let mut next_sync = 0;
        loop {
            let leading = active();
            let was_leading = self.shared.leading.swap(leading, Ordering::AcqRel);
            // In a cluster every node reads the shared silences every 2 s. A node that is not
            // leading also keeps a recent copy of the shared state, so its API shows the
            // cluster's alerts; one that starts leading carries on from it.
            let starts = leading && !was_leading;
            if self.shared.shared_state.is_some() && (starts || now_ms() >= next_sync) {
                let me = self.clone();
                let state_too = starts || !leading;
                let _ = tokio::task::spawn_blocking(move || me.load_shared(state_too)).await;
                next_sync = now_ms() + SHARED_SYNC_MS;
            }
            if !leading {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.wait_for(|v| *v) => break,
                }
                next_eval = now_ms();
                continue;
            }
            let now = now_ms();
            if now >= next_eval {
                let me = self.clone();
                let _ = tokio::task::spawn_blocking(move || me.evaluate(now_ms())).await;
                // Missed rounds are skipped, not run back to back.
                while next_eval <= now_ms() {
                    next_eval += interval;
                }
            }
            let me = self.clone();
            let due = tokio::task::spawn_blocking(move || me.dispatch(now_ms()))
                .await
                .ok()
                .flatten();
            let wake = due.unwrap_or(i64::MAX).min(next_eval).min(now_ms() + 1_000);
            let wait = Duration::from_millis(u64::try_from(wake - now_ms()).unwrap_or(0));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = derived.notified() => next_eval = now_ms(),
                _ = shutdown.wait_for(|v| *v) => break,
            }
        }
        let me = self.clone();
        let _ = tokio::task::spawn_blocking(move || me.save()).await;
        let d = self.shared.delivery.lock().ok().and_then(|mut g| g.take());
        if let Some(d) = d {
            d.join().await;
        }
    }

    /// Reads rule files that are new, changed, or had errors a while ago.
    fn reload(&self, now: i64) {
        let tsdb = self.shared.sources.tsdb.clone();
        let known = move |name: &str| {
            if ["skein.span.", "skein.edge.", "skein.agent."]
                .iter()
                .any(|p| name.starts_with(p))
            {
                return offline_known(name);
            }
            tsdb.metric(name).is_some()
                || ["_bucket", "_sum", "_count"].iter().any(|s| {
                    name.strip_suffix(s)
                        .is_some_and(|b| tsdb.metric(b).is_some())
                })
        };
        let files = match rule_files(&self.shared.plan.rules) {
            Ok(f) => {
                self.lock().list_error = None;
                f
            }
            Err(e) => {
                let mut g = self.lock();
                if g.list_error.as_ref() != Some(&e) {
                    tracing::error!(error = %e, "rule path unreadable");
                }
                g.list_error = Some(e);
                return;
            }
        };
        let mut read = Vec::new();
        {
            let g = self.lock();
            for f in &files {
                let mtime = std::fs::metadata(f).and_then(|m| m.modified()).ok();
                let stale = match g.files.get(f) {
                    None => true,
                    Some(s) => {
                        s.mtime != mtime
                            || (!s.errors.is_empty() && now - s.read_ms >= RETRY_BAD_FILES_MS)
                    }
                };
                if stale {
                    read.push((f.clone(), mtime));
                }
            }
        }
        let mut loaded = Vec::new();
        for (f, mtime) in read {
            let result = load_file(&f, &known);
            loaded.push((f, mtime, result));
        }
        let mut g = self.lock();
        g.files.retain(|f, _| files.contains(f));
        for (f, mtime, result) in loaded {
            let st = match result {
                Ok(rules) => {
                    tracing::info!(file = %f.display(), rules = rules.len(), "rule file loaded");
                    FileState {
                        mtime,
                        rules: rules.into_iter().map(Arc::new).collect(),
                        errors: Vec::new(),
                        read_ms: now,
                    }
                }
                Err(errors) => {
                    let old = g.files.get(&f);
                    let changed = old.is_none_or(|o| o.errors != errors);
                    if changed {
                        for e in &errors {
                            tracing::error!(error = %e, "rule file refused");
                        }
                    }
                    // A file that was good keeps its last good rules running.
                    FileState {
                        mtime,
                        rules: old.map(|o| o.rules.clone()).unwrap_or_default(),
                        errors,
                        read_ms: now,
                    }
                }
            };
            g.files.insert(f, st);
        }
    }

    /// One evaluation of every rule.
    pub fn evaluate(&self, now: i64) {
        self.reload(now);
        self.prom_reload(now);
        let prom = self.prom_evaluate(now);
        let rules = self.lock().rules();
        let mut results = Vec::with_capacity(rules.len());
        for r in &rules {
            let key = rule_key(&r.name, &r.labels);
            let since = *self.lock().since.entry(key.clone()).or_insert(now);
            let t0 = Instant::now();
            let res = evaluate_rule(r, &self.shared.sources, now, since);
            results.push((key, r.clone(), res, t0.elapsed().as_secs_f64()));
        }
        let max_alerts = self.shared.plan.max_alerts;
        let external = &self.shared.plan.external_labels;
        let mut g = self.lock();
        let mut all_changes = Vec::new();
        let mut live: HashSet<String> = results.iter().map(|(k, ..)| k.clone()).collect();
        for (key, rule, res, secs) in results {
            let mut health = Health {
                last_ms: Some(now),
                seconds: secs,
                error: None,
            };
            match res {
                Ok(breaches) => {
                    let found = breaches
                        .into_iter()
                        .map(|(cond_labels, value)| {
                            let mut labels = cond_labels;
                            for (k, v) in &rule.labels {
                                labels.insert(k.clone(), v.clone());
                            }
                            labels.insert("alertname".into(), rule.name.clone());
                            let annotations = rule
                                .annotations
                                .iter()
                                .map(|(k, t)| (k.clone(), t.render_with(&labels, value, external)))
                                .collect();
                            Found {
                                labels,
                                value,
                                annotations,
                            }
                        })
                        .collect();
                    let timing = Timing {
                        for_ms: ms(rule.for_),
                        keep_firing_for_ms: ms(rule.keep_firing_for),
                    };
                    let (changes, left_out) = g
                        .states
                        .apply(&key, &rule.name, timing, found, now, max_alerts);
                    if left_out > 0 {
                        health.error = Some(format!(
                            "{left_out} label sets not tracked: alerts.max_alerts ({max_alerts}) reached"
                        ));
                    }
                    all_changes.extend(changes);
                }
                Err(e) => {
                    // States stay as they were: an error is not a resolution.
                    if g.health.get(&key).and_then(|h| h.error.as_ref()) != Some(&e) {
                        tracing::warn!(rule = %rule.name, error = %e, "rule evaluation failed");
                    }
                    health.error = Some(e);
                }
            }
            g.health.insert(key, health);
        }
        let failed = g
            .health
            .values()
            .filter(|h| h.last_ms == Some(now) && h.error.is_some())
            .count() as u64;
        self.shared
            .telemetry
            .alert_evaluations(live.len() as u64 - failed.min(live.len() as u64), failed);
        all_changes.extend(self.prom_apply(&mut g, prom, now, &mut live));
        all_changes.extend(g.states.drop_rules(&live, now));
        let count =
            |st: AlertState| g.states.alerts.values().filter(|a| a.state == st).count() as u64;
        self.shared
            .telemetry
            .alerts(count(AlertState::Pending), count(AlertState::Firing));
        g.health.retain(|k, _| live.contains(k));
        g.since.retain(|k, _| live.contains(k));
        for c in &all_changes {
            tracing::info!(rule = %c.rule, fingerprint = %c.fingerprint, from = c.from.as_str(), to = c.to.as_str(), value = c.value, "alert state changed");
        }
        g.history.record(&all_changes);
        // Values and annotations change every round, so every round is saved.
        g.dirty = true;
        drop(g);
        self.save();
    }

    /// Muted state of every firing and resolved alert, for the dispatcher and the API.
    fn snapshots(g: &Inner, now: i64, inhibit: &[super::dispatch::Inhibit]) -> Vec<Snapshot> {
        let firing = g.states.firing();
        g.states
            .alerts
            .values()
            .filter(|a| matches!(a.state, AlertState::Firing | AlertState::Resolved))
            .map(|a| Snapshot {
                fingerprint: a.fingerprint.clone(),
                rule: a.rule.clone(),
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_ms: a.fired_ms.unwrap_or(a.active_ms),
                ends_ms: a.resolved_ms,
                muted: !g.silences.muting(&a.labels, now).is_empty()
                    || !inhibited_by(inhibit, &firing, &a.labels).is_empty(),
            })
            .collect()
    }

    /// Each receiver's delivery figures (none before delivery started).
    pub(crate) fn delivery_status(&self) -> Vec<crate::deliver::ReceiverStatus> {
        self.shared
            .delivery
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|d| d.status()))
            .unwrap_or_default()
    }

    /// Copies the receivers' delivery counts into the collector's telemetry.
    fn count_deliveries(&self) {
        let status = self.delivery_status();
        let Ok(mut counted) = self.shared.counted.lock() else {
            return;
        };
        let tel = &self.shared.telemetry;
        for s in status {
            tel.alert_outbox_pending(&s.receiver, s.pending as u64);
            for (result, total) in [
                ("sent", s.sent),
                ("failed", s.failed),
                ("retried", s.retries),
                ("dropped", s.dropped),
            ] {
                let seen = counted.entry((s.receiver.clone(), result)).or_insert(0);
                if total > *seen {
                    tel.alert_notifications(&s.receiver, result, total - *seen);
                    *seen = total;
                }
            }
        }
    }

    /// Looks at the notification groups; returns when the next one is due.
    pub fn dispatch(&self, now: i64) -> Option<i64> {
        self.count_deliveries();
        let (Some(route), Some(outbox)) = (&self.shared.plan.route, &self.shared.outbox) else {
            return None;
        };
        let mut g = self.lock();
        let snaps = Self::snapshots(&g, now, &self.shared.plan.inhibit);
        let mut pushed = false;
        g.dispatcher.tick_with(
            now,
            &snaps,
            route,
            &self.shared.plan.receiver_opts,
            &self.shared.external_url,
            |o| {
                pushed = true;
                queue(outbox, o)
            },
        );
        let due = g.dispatcher.next_due();
        if !pushed {
            return due;
        }
        g.dirty = true;
        drop(g);
        self.save();
        due
    }

    /// Saves states and groups when they changed: to the state file, and in a cluster,
    /// while leading, to the shared store.
    fn save(&self) {
        let mut g = self.lock();
        if !g.dirty {
            return;
        }
        let bytes = serde_json::to_vec(&SavedRef {
            alerts: &g.states,
            groups: &g.dispatcher,
        });
        let b = match bytes {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode the alert state");
                return;
            }
        };
        let mut saved = match write_atomic(&self.shared.state_file, &b) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot save the alert state");
                false
            }
        };
        if let Some(st) = &self.shared.shared_state
            && self.shared.leading.load(Ordering::Acquire)
            && let Err(e) = st.save(STATE_KEY, &b)
        {
            tracing::warn!(error = %e, "cannot save the alert state to the cluster");
            saved = false;
        }
        if saved {
            g.dirty = false;
        }
    }

    /// Reads the shared silences when they changed, and with `state_too` replaces states and
    /// groups with the shared copy (in a cluster).
    fn load_shared(&self, state_too: bool) {
        let Some(st) = &self.shared.shared_state else {
            return;
        };
        match st.load(SILENCES_KEY) {
            Ok(Some(b)) => {
                let h = super::state::fnv64(&b);
                let mut g = self.lock();
                if g.silences_seen != h {
                    match g.silences.replace(&b) {
                        Ok(()) => g.silences_seen = h,
                        Err(e) => {
                            tracing::warn!(error = %e, "the cluster's silences are unreadable")
                        }
                    }
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the cluster's silences"),
        }
        if !state_too {
            return;
        }
        match st.load(STATE_KEY) {
            Ok(Some(b)) => match serde_json::from_slice::<Saved>(&b) {
                Ok(saved) => {
                    let mut g = self.lock();
                    g.states = saved.alerts;
                    g.dispatcher = saved.groups;
                    g.dirty = false;
                }
                Err(e) => tracing::warn!(error = %e, "the cluster's alert state is unreadable"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the cluster's alert state"),
        }
    }

    /// Changes the silences with `f`: on one node in memory and in the file; in a cluster on
    /// the newest shared copy, with compare-and-set, so every node sees the change.
    pub(crate) fn change_silences<T>(
        &self,
        mut f: impl FnMut(&mut Silences) -> Result<T, SilenceError>,
    ) -> Result<T, SilenceError> {
        let Some(st) = &self.shared.shared_state else {
            return f(&mut self.lock().silences);
        };
        let mut out = None;
        st.modify(SILENCES_KEY, &mut |cur| {
            let mut g = self.lock();
            if let Some(b) = cur
                && let Err(e) = g.silences.replace(b)
            {
                tracing::warn!(error = %e, "the cluster's silences are unreadable; replacing them");
            }
            let r = f(&mut g.silences);
            let bytes = match &r {
                Ok(_) => match g.silences.to_bytes() {
                    Ok(b) => Some(b),
                    Err(e) => {
                        out = Some(Err(SilenceError::Io(e)));
                        return None;
                    }
                },
                Err(_) => None,
            };
            if let Some(b) = &bytes {
                g.silences_seen = super::state::fnv64(b);
            }
            out = Some(r);
            bytes
        })?;
        out.unwrap_or_else(|| {
            Err(SilenceError::Io(std::io::Error::other(
                "the silences were not changed",
            )))
        })
    }

    /// Whether an alert is muted now, by which silences and which firing alerts.
    pub(crate) fn mutes(
        &self,
        g: &Inner,
        labels: &LabelSet,
        now: i64,
    ) -> (Vec<String>, Vec<String>) {
        let firing = g.states.firing();
        (
            g.silences.muting(labels, now),
            inhibited_by(&self.shared.plan.inhibit, &firing, labels),
        )
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
