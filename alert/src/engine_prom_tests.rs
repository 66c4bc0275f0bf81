//! Prometheus rule files in the alert engine: loading, `for` and `keep_firing_for` through the
//! shared states, recording, group intervals, refused files, and the rules listing, with a
//! fake PromQL engine and a fake store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::cond::Sources;
use crate::config::AlertsSection;
use crate::promrules::{PromQuery, RecordSink};
use skein_model::metric::{Labels, MetricBatch};
use skein_query::QueryError;
use skein_query::engine::{Engine, QueryLimits};
use skein_query::metric_reads::MetricReads;
use skein_query::reads::{Read, ReadResult, Reads};
use skein_store::tsdb::{Matcher, MetricInfo, SelectedSeries};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// No logs, spans or metrics: the TOML side has nothing to read.
struct Empty;

impl Reads for Empty {
    fn read(&self, _: &Read) -> Result<ReadResult, QueryError> {
        Err(QueryError::Internal("no store in this test".into()))
    }
}

impl MetricReads for Empty {
    fn metrics(&self) -> Vec<MetricInfo> {
        Vec::new()
    }
    fn metric(&self, _: &str) -> Option<MetricInfo> {
        None
    }
    fn label_names(&self, _: Option<&str>) -> Vec<String> {
        Vec::new()
    }
    fn label_values(&self, _: &str, _: Option<&str>) -> Vec<String> {
        Vec::new()
    }
    fn select(
        &self,
        _: &str,
        _: &[Matcher],
        _: i64,
        _: i64,
        _: usize,
    ) -> skein_store::Result<Vec<SelectedSeries>> {
        Ok(Vec::new())
    }
}

/// Answers each expression from a table that the test changes between rounds.
#[derive(Default)]
struct Fake {
    answers: Mutex<HashMap<String, Vec<(Labels, f64)>>>,
    asked: Mutex<Vec<(String, i64)>>,
    written: Mutex<Vec<MetricBatch>>,
}

impl Fake {
    fn set(&self, expr: &str, samples: &[(&[(&str, &str)], f64)]) {
        let v = samples
            .iter()
            .map(|(l, v)| (Labels::from_pairs(l.iter().copied()), *v))
            .collect();
        self.answers.lock().unwrap().insert(expr.into(), v);
    }
    fn asked(&self, expr: &str) -> Vec<i64> {
        let a = self.asked.lock().unwrap();
        a.iter()
            .filter(|(e, _)| e == expr)
            .map(|(_, t)| *t)
            .collect()
    }
}

impl PromQuery for Fake {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        self.asked.lock().unwrap().push((expr.into(), t_ms));
        Ok(self
            .answers
            .lock()
            .unwrap()
            .get(expr)
            .cloned()
            .unwrap_or_default())
    }
}

impl RecordSink for Fake {
    fn append(&self, batch: MetricBatch) -> Result<(), String> {
        self.written.lock().unwrap().push(batch);
        Ok(())
    }
}

const RULES: &str = r#"groups:
  - name: api
    rules:
      - alert: HighErrors
        expr: errors > 1
        for: 10s
        keep_firing_for: 20s
        labels: {severity: page}
        annotations:
          summary: "{{ $labels.service }} at {{ $value }} in {{ $externalLabels.cluster }}"
      - record: service:errors:sum
        expr: sum by (service) (errors)
  - name: slow
    interval: 1m
    rules:
      - alert: HighErrors
        expr: hourly > 0
"#;

fn engine(dir: &Path, rules: &str) -> (AlertEngine, Arc<Fake>) {
    std::fs::write(dir.join("api.rules.yml"), rules).unwrap();
    let section = AlertsSection {
        rule_files: vec![dir.join("*.rules.yml").display().to_string()],
        external_labels: [("cluster".to_string(), "eu-1".to_string())].into(),
        ..AlertsSection::default()
    };
    let plan = section.plan().unwrap();
    let sources = Sources {
        tsdb: Arc::new(Empty),
        engine: Arc::new(Engine::over(Arc::new(Empty), QueryLimits::default())),
        agents: skein_store::agents::AgentRegistry::in_memory(Duration::from_secs(15)),
    };
    let mut m = skein_telemetry::Metrics::new("skein_");
    let tel = crate::telemetry::AlertTelemetry::register(&mut m);
    let e = AlertEngine::open(&dir.join("state"), plan, sources, "http://x".into(), tel).unwrap();
    let fake = Arc::new(Fake::default());
    assert!(e.connect_promql(fake.clone(), fake.clone()));
    assert!(
        !e.connect_promql(fake.clone(), fake.clone()),
        "the first connection stays"
    );
    (e, fake)
}

/// (alertname, service, state) of every alert.
fn alerts(e: &AlertEngine) -> Vec<(String, String, AlertState)> {
    let g = e.lock();
    g.states
        .alerts
        .values()
        .map(|a| {
            let l = |k: &str| a.labels.get(k).cloned().unwrap_or_default();
            (l("alertname"), l("service"), a.state)
        })
        .collect()
}

#[test]
fn alerts_go_pending_firing_and_resolve_after_keep_firing_for() {
    let dir = tempfile::tempdir().unwrap();
    let (e, fake) = engine(dir.path(), RULES);
    let pay: &[(&str, &str)] = &[("__name__", "errors"), ("service", "pay")];
    fake.set("errors > 1", &[(pay, 3.0)]);
    let t0 = 1_000_000;
    e.evaluate(t0);
    let pending = (
        "HighErrors".to_string(),
        "pay".to_string(),
        AlertState::Pending,
    );
    assert_eq!(alerts(&e), std::slice::from_ref(&pending));
    {
        let g = e.lock();
        let a = g.states.alerts.values().next().unwrap();
        assert_eq!(a.annotations["summary"], "pay at 3 in eu-1");
        assert_eq!(a.labels.get("severity").map(String::as_str), Some("page"));
        assert!(!a.labels.contains_key("__name__"));
        assert!(
            a.rule_key.contains("api.rules.yml#api#HighErrors"),
            "{}",
            a.rule_key
        );
    }
    e.evaluate(t0 + 5_000);
    assert_eq!(alerts(&e), [pending]);
    e.evaluate(t0 + 10_000);
    let firing = (
        "HighErrors".to_string(),
        "pay".to_string(),
        AlertState::Firing,
    );
    assert_eq!(alerts(&e), std::slice::from_ref(&firing));
    // The expression stops returning it: it keeps firing for 20 s after it last held.
    fake.set("errors > 1", &[]);
    e.evaluate(t0 + 15_000);
    e.evaluate(t0 + 25_000);
    assert_eq!(alerts(&e), [firing]);
    e.evaluate(t0 + 30_000);
    let resolved = (
        "HighErrors".to_string(),
        "pay".to_string(),
        AlertState::Resolved,
    );
    assert_eq!(alerts(&e), [resolved]);
    let h = e.lock().history.list(None, None, 0, 10);
    let moves: Vec<(AlertState, AlertState)> = h.iter().rev().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        moves,
        [
            (AlertState::Inactive, AlertState::Pending),
            (AlertState::Pending, AlertState::Firing),
            (AlertState::Firing, AlertState::Resolved),
        ]
    );
}

#[test]
fn recording_rules_write_and_groups_keep_their_interval() {
    let dir = tempfile::tempdir().unwrap();
    let (e, fake) = engine(dir.path(), RULES);
    fake.set("sum by (service) (errors)", &[(&[("service", "pay")], 4.0)]);
    let t0 = 2_000_000;
    for i in 0..13 {
        e.evaluate(t0 + i * 5_000);
    }
    // The default group runs every eval_interval (5 s), the other every minute.
    assert_eq!(fake.asked("errors > 1").len(), 13);
    assert_eq!(fake.asked("hourly > 0"), [t0, t0 + 60_000]);
    let written = fake.written.lock().unwrap();
    assert_eq!(written.len(), 13);
    let s = &written[0].series[0];
    assert_eq!(
        (s.name.as_str(), s.labels.get("service")),
        ("service:errors:sum", Some("pay"))
    );
    assert_eq!(written[0].samples[0].ts_ms, t0);
}

#[test]
fn rules_listing_errors_and_refused_edits() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _fake) = engine(dir.path(), RULES);
    e.evaluate(3_000_000);
    let infos = {
        let g = e.lock();
        e.prom_rule_infos(&g, None)
    };
    let rows: Vec<(String, String, String, String)> = infos
        .iter()
        .map(|r| {
            let group = r.group.clone().unwrap_or_default();
            (r.name.clone(), group, r.kind.clone(), r.health.clone())
        })
        .collect();
    let row = |n: &str, g: &str, k: &str| {
        (
            n.to_string(),
            g.to_string(),
            k.to_string(),
            "ok".to_string(),
        )
    };
    assert_eq!(
        rows,
        [
            row("HighErrors", "api", "alerting"),
            row("service:errors:sum", "api", "recording"),
            row("HighErrors", "slow", "alerting"),
        ]
    );
    assert_eq!((infos[0].line, infos[0].for_duration.as_str()), (4, "10s"));
    assert_eq!(infos[0].condition, "errors > 1");
    // A bad edit is refused with file and line; the last good rules keep running.
    let file = dir.path().join("api.rules.yml");
    std::fs::write(
        &file,
        "groups:\n  - name: api\n    rules:\n      - alert: X\n        expr: up(\n",
    )
    .unwrap();
    let later = SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(later)
        .unwrap();
    e.evaluate(3_005_000);
    let g = e.lock();
    let errors = g.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].line, 5);
    assert!(
        errors[0]
            .message
            .contains(r#"group "api", rule 1, "X": could not parse expression"#),
        "{errors:?}"
    );
    assert_eq!(e.prom_rule_infos(&g, None).len(), 3);
    assert_eq!(
        e.prom_rule_infos(&g, Some(&"service:errors:sum".to_string()))
            .len(),
        1
    );
}

#[test]
fn unconnected_rules_report_it_and_bad_files_stop_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.rules.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: a\n    rules:\n      - record: a-b\n        expr: up\n",
    )
    .unwrap();
    let section = AlertsSection {
        rule_files: vec![dir.path().join("*.yml").display().to_string()],
        ..AlertsSection::default()
    };
    let e = section.plan().unwrap_err();
    assert!(e.starts_with("key alerts.rule_files: "), "{e}");
    assert!(
        e.contains(
            "bad.rules.yml:4: group \"a\", rule 1, \"a-b\": invalid recording rule name: a-b"
        ),
        "{e}"
    );
    let section = AlertsSection {
        external_labels: [("a-b".to_string(), "x".to_string())].into(),
        ..AlertsSection::default()
    };
    let e = section.plan().unwrap_err();
    assert!(
        e.contains("key alerts.external_labels") && e.contains("a-b"),
        "{e}"
    );
    // Loaded without an engine: each evaluation fails saying so, and no alert changes.
    std::fs::write(&bad, RULES).unwrap();
    let section = AlertsSection {
        rule_files: vec![bad.display().to_string()],
        ..AlertsSection::default()
    };
    let sources = Sources {
        tsdb: Arc::new(Empty),
        engine: Arc::new(Engine::over(Arc::new(Empty), QueryLimits::default())),
        agents: skein_store::agents::AgentRegistry::in_memory(Duration::from_secs(15)),
    };
    let mut m = skein_telemetry::Metrics::new("skein_");
    let tel = crate::telemetry::AlertTelemetry::register(&mut m);
    let e = AlertEngine::open(
        &dir.path().join("s"),
        section.plan().unwrap(),
        sources,
        String::new(),
        tel,
    )
    .unwrap();
    e.evaluate(1_000);
    let g = e.lock();
    let infos = e.prom_rule_infos(&g, None);
    assert!(infos.iter().all(|r| {
        r.health == "err"
            && r.last_error
                .as_deref()
                .is_some_and(|m| m.contains("no PromQL engine"))
    }));
    assert!(g.states.alerts.is_empty());
}
