//! Tests of Prometheus rule files: what the checks accept and refuse (each case was run
//! through `promtool check rules` 2.42 too, which agrees on accept or refuse), and the
//! evaluation of groups through a fake PromQL engine and a fake store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::eval::{EvalContext, Outcome, evaluate_group};
use super::*;
use crate::rule_types::RuleError;
use std::path::Path;
use std::sync::Mutex;

fn parse(text: &str) -> Result<Vec<PromGroup>, Vec<RuleError>> {
    parse_prom_rules(Path::new("r.yml"), text)
}

/// The errors of a file, each as "line: message".
fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(g) => panic!("accepted: {g:?}"),
        Err(e) => e
            .iter()
            .map(|e| format!("{}: {}", e.line, e.message))
            .collect(),
    }
}

fn has(errs: &[String], line: usize, part: &str) -> bool {
    errs.iter()
        .any(|e| e.starts_with(&format!("{line}: ")) && e.contains(part))
}

const GOOD: &str = r#"groups:
  - name: api
    interval: 1m
    limit: 3
    rules:
      - alert: HighErrors
        expr: sum by (service) (rate(errors_total[5m])) > 0.5
        for: 1h30m
        keep_firing_for: 5m
        labels: {severity: page, n: 1, empty: null}
        annotations:
          summary: "{{ $labels.service }}: {{ $value | humanize }} ({{ $externalLabels.cluster }})"
      - record: job:up:sum
        expr: sum by (job) (up)
        labels: {a: b}
  - name: other
    rules:
"#;

#[test]
fn a_good_file_reads_into_groups() {
    let groups = parse(GOOD).unwrap();
    assert_eq!(groups.len(), 2);
    let g = &groups[0];
    assert_eq!((g.name.as_str(), g.line, g.limit), ("api", 2, 3));
    assert_eq!(g.interval, Some(std::time::Duration::from_secs(60)));
    let a = &g.rules[0];
    assert_eq!(
        (a.kind, a.name.as_str(), a.line),
        (PromKind::Alerting, "HighErrors", 6)
    );
    assert_eq!(a.for_.as_secs(), 5400);
    assert_eq!(a.keep_firing_for.as_secs(), 300);
    assert_eq!(a.labels["n"], "1");
    assert_eq!(a.labels["empty"], "");
    assert!(a.annotations.contains_key("summary"));
    let r = &g.rules[1];
    assert_eq!(
        (r.kind, r.name.as_str(), r.line),
        (PromKind::Recording, "job:up:sum", 13)
    );
    assert!(
        r.label_templates.is_empty(),
        "recording labels are not templates"
    );
    assert!(groups[1].rules.is_empty());
    assert_eq!(groups[1].interval, None);
    // Nothing at all is a file with no rules, as in promtool.
    for empty in ["", "groups:\n", "# nothing\n", "groups: []\n"] {
        assert!(parse(empty).unwrap().is_empty(), "{empty:?}");
    }
}

#[test]
fn rule_errors_name_line_group_and_rule() {
    let text = r#"groups:
  - name: a
    rules:
      - alert: X
        record: y
        expr: up
      - expr: up
      - record: 'a{b}'
        expr: up
        for: 1m
        annotations: {x: y}
      - record: ok
        expr: up
        keep_firing_for: 1m
      - alert: Y
        expr: up(
        labels: {"1a": x, __name__: y}
        annotations: {"b-c": x}
      - alert: Z
        expr: ""
  - name: a
    rules: []
  - name: ""
    rules: []
"#;
    let e = errors(text);
    assert!(
        has(
            &e,
            5,
            r#"group "a", rule 1, "X": only one of 'record' and 'alert'"#
        ),
        "{e:#?}"
    );
    assert!(
        has(
            &e,
            7,
            r#"rule 2, "": one of 'record' or 'alert' must be set"#
        ),
        "{e:#?}"
    );
    assert!(
        has(&e, 8, "invalid field 'annotations' in recording rule"),
        "{e:#?}"
    );
    assert!(
        has(&e, 8, "invalid field 'for' in recording rule"),
        "{e:#?}"
    );
    assert!(has(&e, 8, "invalid recording rule name: a{b}"), "{e:#?}");
    assert!(
        has(&e, 12, "invalid field 'keep_firing_for' in recording rule"),
        "{e:#?}"
    );
    assert!(
        has(&e, 16, r#"rule 5, "Y": could not parse expression"#),
        "{e:#?}"
    );
    assert!(has(&e, 17, "invalid label name: 1a"), "{e:#?}");
    assert!(has(&e, 17, "invalid label name: __name__"), "{e:#?}");
    assert!(has(&e, 18, "invalid annotation name: b-c"), "{e:#?}");
    assert!(has(&e, 20, r#""Z": field 'expr' must be set"#), "{e:#?}");
    assert!(
        has(
            &e,
            21,
            r#"group name "a" is repeated in the same file (first at line 2)"#
        ),
        "{e:#?}"
    );
    assert!(has(&e, 23, "group name must not be empty"), "{e:#?}");
    assert_eq!(e.len(), 13, "{e:#?}");
    // Sorted by line.
    let lines: Vec<usize> = e
        .iter()
        .map(|l| l.split(':').next().unwrap().parse().unwrap())
        .collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
}

#[test]
fn unknown_keys_types_and_durations_are_errors() {
    let e = errors(
        "groups:\n  - name: a\n    foo: 1\n    rules:\n      - alert: X\n        expr: up\n        bar: 2\nextra: 1\n",
    );
    assert!(has(&e, 3, r#"field "foo" not found in a group"#), "{e:#?}");
    assert!(
        has(
            &e,
            7,
            r#"group "a", rule 1, "X": field "bar" not found in a rule"#
        ),
        "{e:#?}"
    );
    assert!(
        has(
            &e,
            8,
            r#"field "extra" not found: a rule file holds only groups"#
        ),
        "{e:#?}"
    );
    let rule = |extra: &str| {
        format!("groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: up\n{extra}")
    };
    for (extra, part) in [
        (
            "        for: 5\n",
            r#"for: not a valid duration string: "5""#,
        ),
        ("        for: 1.5m\n", "not a valid duration string"),
        ("        for: 1m1h\n", "not a valid duration string"),
        ("        for: \"\"\n", "for: empty duration string"),
        (
            "        keep_firing_for: 300y\n",
            "keep_firing_for: duration out of range",
        ),
        (
            "        labels: [a]\n",
            "labels must be a mapping of names to text, not a list",
        ),
        (
            "        labels: {a: [b]}\n",
            r#"the value of "a" must be text, not a list"#,
        ),
        (
            "        expr: down\n",
            r#"mapping key "expr" already defined at line 5"#,
        ),
        (
            "        annotations: {a: \"{{ if }}\"}\n",
            r#"annotation "a""#,
        ),
        (
            "        labels: {a: \"{{ $nope }}\"}\n",
            r#"label "a": in action at byte 0: unknown variable '$nope'"#,
        ),
    ] {
        let e = errors(&rule(extra));
        assert!(has(&e, 6, part), "{extra:?}: {e:#?}");
        assert!(e.iter().all(|l| !l.is_empty()));
    }
    let e = errors("groups:\n  - name: a\n    limit: \"5\"\n    interval: 1x\n    rules: nope\n");
    assert!(
        has(&e, 3, r#"group "a": limit: "5" is not a whole number"#),
        "{e:#?}"
    );
    assert!(
        has(
            &e,
            4,
            r#"group "a": interval: not a valid duration string: "1x""#
        ),
        "{e:#?}"
    );
    assert!(
        has(
            &e,
            5,
            r#"group "a": rules must be a list of rules, not text"#
        ),
        "{e:#?}"
    );
    let e = errors("- a\n- b\n");
    assert!(
        has(
            &e,
            1,
            "a rule file is a mapping with the key groups, not a list"
        ),
        "{e:#?}"
    );
    let e = errors(
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n   bad indent\n",
    );
    assert!(e.len() == 1 && e[0].contains("YAML syntax"), "{e:#?}");
    let e = errors("groups:\n  - name: a\n    rules:\n      - up\n");
    assert!(
        has(&e, 4, r#"group "a", rule 1: a rule must be a mapping"#),
        "{e:#?}"
    );
}

#[test]
fn what_promtool_accepts_is_accepted() {
    // Aliases, names that are not Prometheus names for alerts, negative limits, zero
    // durations, plain numbers and booleans as text, a second document (ignored).
    let text = "groups:\n  - name: 5\n    limit: -2\n    interval: 0\n    rules:\n      - &r\n        alert: \"bad name!\"\n        expr: up\n        for: 0\n        labels: {a: !!int 5, b: true, c: 1.5}\n      - *r\n      - record: \"a:b\"\n        expr: x[5m:1m] offset 1m\n---\ngroups: nope\n";
    let g = parse(text).unwrap();
    assert_eq!(
        (g[0].name.as_str(), g[0].limit, g[0].interval),
        ("5", 0, None)
    );
    assert_eq!(g[0].rules.len(), 3);
    assert_eq!(g[0].rules[0].labels["b"], "true");
    let dups = duplicate_rules(&g);
    assert_eq!(dups.len(), 1, "{dups:?}");
    assert!(
        dups[0].contains(r#"rule "bad name!" repeats the rule at line 6"#),
        "{dups:?}"
    );
}

#[test]
fn file_bounds() {
    let mut text = String::from("groups:\n  - name: a\n    rules:\n");
    for i in 0..=crate::rule_types::MAX_RULES_PER_FILE {
        text.push_str(&format!("      - record: r{i}\n        expr: up\n"));
    }
    let e = errors(&text);
    assert!(
        e.iter().any(|l| l.contains("more than 1000 rules")),
        "{:?}",
        e.first()
    );
    let big = format!("# {}\n", "x".repeat(crate::rule_types::MAX_FILE_BYTES));
    assert!(errors(&big)[0].contains("over 1048576 bytes"));
}

#[test]
fn rule_file_globs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("b.rules.yml"), GOOD).unwrap();
    std::fs::write(d.join("a.rules.yml"), "groups: []\n").unwrap();
    std::fs::write(d.join("c.toml"), "").unwrap();
    std::fs::create_dir(d.join("sub.rules.yml")).unwrap();
    let pat = |p: &str| vec![d.join(p).display().to_string()];
    let files = expand_rule_files(&pat("[ab].rules.yml")).unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(names, ["a.rules.yml", "b.rules.yml"]);
    assert!(expand_rule_files(&pat("none*.yml")).unwrap().is_empty());
    let e = expand_rule_files(&pat("*.rules.yml")).unwrap_err();
    assert!(e.message.contains("a directory"), "{e}");
    let e = expand_rule_files(&pat("[")).unwrap_err();
    assert!(e.message.contains("not a valid glob"), "{e}");
    assert_eq!(load_rule_files(&pat("b.rules.yml")).unwrap().len(), 2);
    std::fs::write(
        d.join("b.rules.yml"),
        "groups:\n  - name: a\n    rules:\n      - alert: X\n",
    )
    .unwrap();
    let e = load_rule_files(&pat("b.rules.yml")).unwrap_err();
    assert!(
        e[0].to_string().ends_with(
            r#"b.rules.yml:4: group "a", rule 1, "X": field 'expr' must be set in rule"#
        ),
        "{}",
        e[0]
    );
}

// ---- evaluation ----

/// An answer of the fake engine.
type Answer = Result<Vec<(Labels, f64)>, String>;

/// A PromQL engine that answers each expression from a table.
#[derive(Default)]
pub(crate) struct FakeQuery {
    pub(crate) answers: Mutex<std::collections::HashMap<String, Answer>>,
    pub(crate) asked: Mutex<Vec<(String, i64)>>,
}

impl FakeQuery {
    pub(crate) fn set(&self, expr: &str, answer: Answer) {
        self.answers
            .lock()
            .unwrap()
            .insert(expr.to_string(), answer);
    }
}

impl PromQuery for FakeQuery {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        self.asked.lock().unwrap().push((expr.to_string(), t_ms));
        self.answers
            .lock()
            .unwrap()
            .get(expr)
            .cloned()
            .unwrap_or(Ok(Vec::new()))
    }
}

/// A store that keeps every batch.
#[derive(Default)]
pub(crate) struct FakeSink {
    pub(crate) batches: Mutex<Vec<MetricBatch>>,
}

impl RecordSink for FakeSink {
    fn append(&self, batch: MetricBatch) -> Result<(), String> {
        self.batches.lock().unwrap().push(batch);
        Ok(())
    }
}

pub(crate) fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

#[test]
fn alerting_rules_make_one_alert_per_sample_with_rendered_templates() {
    let text = r#"groups:
  - name: g
    rules:
      - alert: Slow
        expr: latency > 1
        labels:
          severity: page
          where: "{{ $labels.service }}@{{ $externalLabels.cluster }}"
          gone: "{{ $labels.nope }}"
        annotations:
          summary: "{{ $labels.__name__ }} of {{ $labels.service }} is {{ $value | humanize }}"
"#;
    let g = &parse(text).unwrap()[0];
    let q = FakeQuery::default();
    q.set(
        "latency > 1",
        Ok(vec![
            (
                labels(&[("__name__", "latency"), ("service", "pay")]),
                1500.0,
            ),
            (
                labels(&[
                    ("__name__", "latency"),
                    ("service", "ship"),
                    ("severity", "low"),
                ]),
                2.0,
            ),
        ]),
    );
    let ext = [("cluster".to_string(), "eu".to_string())].into();
    let cx = EvalContext {
        query: Some(&q),
        sink: None,
        external: &ext,
    };
    let out = evaluate_group(g, &cx, 1_000);
    let Ok(Outcome::Alerts(found)) = &out[0] else {
        panic!("not alerts")
    };
    assert_eq!(found.len(), 2);
    let pay = &found[0];
    let want: Vec<(&str, &str)> = vec![
        ("alertname", "Slow"),
        ("service", "pay"),
        ("severity", "page"),
        ("where", "pay@eu"),
    ];
    let got: Vec<(&str, &str)> = pay
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        got, want,
        "no __name__, rule labels over the sample's, an empty one removed"
    );
    assert_eq!(pay.value, 1500.0);
    assert_eq!(pay.annotations["summary"], "latency of pay is 1.5k");
    assert_eq!(found[1].labels["severity"], "page", "the rule's label wins");
    assert_eq!(
        q.asked.lock().unwrap()[0],
        ("latency > 1".to_string(), 1_000)
    );
}

#[test]
fn rule_failures_duplicates_and_limits() {
    let text = "groups:\n  - name: g\n    limit: 1\n    rules:\n      - alert: A\n        expr: a\n      - alert: B\n        expr: b\n      - alert: C\n        expr: c\n      - record: r\n        expr: r\n";
    let g = &parse(text).unwrap()[0];
    let q = FakeQuery::default();
    q.set("a", Err("bad_data: boom".into()));
    // Two samples that differ only in __name__ make the same alert.
    q.set(
        "b",
        Ok(vec![
            (labels(&[("__name__", "x")]), 1.0),
            (labels(&[("__name__", "y")]), 1.0),
        ]),
    );
    q.set(
        "c",
        Ok(vec![
            (labels(&[("i", "1")]), 1.0),
            (labels(&[("i", "2")]), 1.0),
        ]),
    );
    q.set(
        "r",
        Ok(vec![
            (labels(&[("i", "1")]), 1.0),
            (labels(&[("i", "2")]), 1.0),
        ]),
    );
    let sink = FakeSink::default();
    let ext = Default::default();
    let out = evaluate_group(
        g,
        &EvalContext {
            query: Some(&q),
            sink: Some(&sink),
            external: &ext,
        },
        0,
    );
    let errs: Vec<String> = out
        .iter()
        .map(|r| r.as_ref().err().cloned().unwrap_or_default())
        .collect();
    assert_eq!(errs[0], "bad_data: boom");
    assert!(
        errs[1].contains("same labelset after applying alert labels"),
        "{errs:?}"
    );
    assert_eq!(errs[2], "exceeded limit of 1 with 2 alerts");
    assert_eq!(errs[3], "exceeded limit of 1 with 2 series");
    assert!(sink.batches.lock().unwrap().is_empty());
    // No engine connected: every rule fails saying so.
    let out = evaluate_group(
        g,
        &EvalContext {
            query: None,
            sink: None,
            external: &ext,
        },
        0,
    );
    assert!(out.iter().all(|r| {
        r.as_ref()
            .err()
            .is_some_and(|e| e.contains("no PromQL engine"))
    }));
}

#[test]
fn recording_rules_write_series_named_by_record() {
    let text = "groups:\n  - name: g\n    rules:\n      - record: job:calls:rate5m\n        expr: sum by (job) (rate(calls_total[5m]))\n        labels: {team: core}\n";
    let g = &parse(text).unwrap()[0];
    let q = FakeQuery::default();
    q.set(
        "sum by (job) (rate(calls_total[5m]))",
        Ok(vec![
            (labels(&[("job", "api")]), 2.5),
            (
                labels(&[("__name__", "calls_total"), ("job", "web"), ("team", "x")]),
                1.0,
            ),
            (labels(&[("job", "nan")]), f64::NAN),
        ]),
    );
    let sink = FakeSink::default();
    let ext = Default::default();
    let out = evaluate_group(
        g,
        &EvalContext {
            query: Some(&q),
            sink: Some(&sink),
            external: &ext,
        },
        7_000,
    );
    assert!(matches!(out[0], Ok(Outcome::Recorded(3))));
    let batches = sink.batches.lock().unwrap();
    let b = &batches[0];
    let series: Vec<String> = b
        .series
        .iter()
        .map(|s| format!("{}{}", s.name, s.labels))
        .collect();
    assert_eq!(
        series,
        [
            r#"job:calls:rate5m{job="api",team="core"}"#,
            r#"job:calls:rate5m{job="web",team="core"}"#,
            r#"job:calls:rate5m{job="nan",team="core"}"#
        ]
    );
    assert!(
        b.series
            .iter()
            .all(|s| s.kind == skein_model::metric::MetricKind::Gauge)
    );
    let samples: Vec<(i64, f64)> = b.samples.iter().map(|s| (s.ts_ms, s.value)).collect();
    assert_eq!(samples[..2], [(7_000, 2.5), (7_000, 1.0)]);
    // NaN is recorded as Prometheus records it.
    assert!(samples[2].1.is_nan());
}
