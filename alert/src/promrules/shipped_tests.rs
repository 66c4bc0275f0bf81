//! The shipped Prometheus rule files (`alerts/*.rules.yml`) against `promtool check rules`
//! and Skein's own check, and Skein's check against promtool on files it must accept or
//! refuse alike. promtool is `$SKEIN_PROMTOOL`, else `/usr/bin/promtool`; without it these
//! tests fail (they are never skipped): `scripts/install-prometheus.sh` installs it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::rules::{Condition, load_file, offline_known};
use std::path::{Path, PathBuf};
use std::process::Command;

fn promtool() -> PathBuf {
    let p = std::env::var_os("SKEIN_PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/promtool"));
    assert!(
        p.is_file(),
        "promtool not found at {}: run scripts/install-prometheus.sh, or set SKEIN_PROMTOOL",
        p.display()
    );
    p
}

/// promtool's verdict on a file: whether it passes, the rules it found (when it says), and
/// what it printed.
fn promtool_check(file: &Path) -> (bool, Option<usize>, String) {
    let out = Command::new(promtool())
        .args(["check", "rules"])
        .arg(file)
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let found = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("SUCCESS: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    (out.status.success(), found, text)
}

fn alerts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../alerts")
}

fn shipped() -> Vec<PathBuf> {
    let pattern = alerts_dir().join("*.rules.yml").display().to_string();
    let files = expand_rule_files(&[pattern]).unwrap();
    let names: Vec<_> = files.iter().filter_map(|f| f.file_name()).collect();
    assert!(
        names.contains(&"skein.rules.yml".as_ref()) && names.contains(&"demo.rules.yml".as_ref()),
        "{names:?}"
    );
    files
}

#[test]
fn shipped_rule_files_pass_promtool_and_skein() {
    for f in shipped() {
        let (ok, found, text) = promtool_check(&f);
        assert!(ok, "{}: {text}", f.display());
        let groups = load_prom_file(&f).unwrap_or_else(|e| panic!("{e:?}"));
        let ours: usize = groups.iter().map(|g| g.rules.len()).sum();
        assert_eq!(found, Some(ours), "{}: {text}", f.display());
        assert!(duplicate_rules(&groups).is_empty());
    }
}

/// Every metric a shipped expression reads is the Prometheus name of a series Skein writes
/// (collector/src/spanmetrics/red.rs, collector/src/housekeeping.rs), by the OpenTelemetry
/// to Prometheus rules: counters get `_total`, the ms histogram `_milliseconds_bucket`, a
/// gauge of unit 1 `_ratio`.
#[test]
fn shipped_rules_read_skein_series_by_their_prometheus_names() {
    let known = [
        "skein_span_calls_total",
        "skein_span_errors_total",
        "skein_span_duration_milliseconds_bucket",
        "skein_agent_up_ratio",
    ];
    let word = regex::Regex::new(r"[A-Za-z_:][A-Za-z0-9_:]*").unwrap();
    for f in shipped() {
        for g in load_prom_file(&f).unwrap() {
            for r in &g.rules {
                let names: Vec<&str> = word
                    .find_iter(&r.expr)
                    .map(|m| m.as_str())
                    .filter(|w| w.starts_with("skein"))
                    .collect();
                assert!(!names.is_empty(), "{}", r.expr);
                for n in names {
                    assert!(
                        known.contains(&n),
                        "{}: {n} is not a series of Skein's",
                        r.name
                    );
                }
            }
        }
    }
}

/// Each shipped Prometheus alert is a TOML rule of `alerts/*.toml` with the same name,
/// `for`, `keep_firing_for` and labels, and the TOML rule's threshold appears in the
/// expression.
#[test]
fn shipped_rules_mirror_the_toml_rules() {
    let mut toml = Vec::new();
    for f in crate::rules::rule_files(&[alerts_dir()]).unwrap() {
        toml.extend(load_file(&f, &offline_known).unwrap());
    }
    let mut seen = 0;
    for f in shipped() {
        for g in load_prom_file(&f).unwrap() {
            for r in &g.rules {
                let t = toml
                    .iter()
                    .find(|t| t.name == r.name)
                    .unwrap_or_else(|| panic!("{}: no TOML rule {}", f.display(), r.name));
                // An absent heartbeat fires `after` it stopped; skein.agent.up turns 0 after
                // agents.down_after (15 s by default), so `for` is the rest.
                let for_ = match &t.condition {
                    Condition::Absent(crate::rules::AbsentCond::Heartbeat { after, .. }) => {
                        after.saturating_sub(std::time::Duration::from_secs(15))
                    }
                    _ => t.for_,
                };
                assert_eq!(
                    (r.for_, r.keep_firing_for),
                    (for_, t.keep_firing_for),
                    "{}",
                    r.name
                );
                assert_eq!(r.labels, t.labels, "{}", r.name);
                let threshold = match &t.condition {
                    Condition::Metric(m) => m.when.threshold,
                    Condition::Traces(c) => c.when.threshold,
                    _ => continue,
                };
                let written = format!("{threshold}");
                assert!(
                    r.expr.contains(&written),
                    "{}: {} lacks {written}",
                    r.name,
                    r.expr
                );
                seen += 1;
            }
        }
    }
    assert!(seen >= 6, "{seen}");
}

/// Files Skein's check must judge as promtool does: (file, accepted).
const CASES: &[(&str, bool)] = &[
    ("", true),
    ("groups:\n", true),
    ("groups:\n  - name: a\n    rules:\n", true),
    (
        "groups:\n  - name: a\n    interval: 1m30s\n    limit: -2\n    rules:\n      - alert: \"any name!\"\n        expr: up == 0\n        for: 0\n        keep_firing_for: 1h\n        labels: {a: 1, b: null}\n        annotations: {s: \"{{ $labels.x }} {{ $value | humanize }} {{ $externalLabels.c }}\"}\n",
        true,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - record: job:x:rate5m\n        expr: sum by (job) (rate(x_total[5m]))\n        labels: {a: b}\n",
        true,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - &r\n        alert: A\n        expr: up\n      - *r\n",
        true,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n---\ngroups: nope\n",
        true,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: max_over_time(x[5m:1m] offset 1m) > 0 and on(b) y\n",
        true,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: x[5m:1m] offset 1m > 0\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: rate(x)\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: sum(x[5m])\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: nofunc(x)\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: '{__name__=~\".*\"}'\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        record: b\n        expr: up\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - expr: up\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: \"up(\"\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: sum(up) by\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - record: a{b}\n        expr: up\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - record: 1abc\n        expr: up\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: up\n        for: 1m\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: up\n        keep_firing_for: 1m\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: up\n        annotations: {a: b}\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        labels: {1a: x}\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        labels: {__name__: x}\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        annotations: {b-c: x}\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        annotations: {a: \"{{ if }}\"}\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        for: 5\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        for: 1m1h\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        for: 300y\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        expr: down\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        bar: 1\n",
        false,
    ),
    ("groups:\n  - name: a\n    foo: 1\n    rules: []\n", false),
    ("groups: []\nextra: 1\n", false),
    (
        "groups:\n  - name: a\n    rules: []\n  - name: a\n    rules: []\n",
        false,
    ),
    ("groups:\n  - name: \"\"\n    rules: []\n", false),
    (
        "groups:\n  - name: a\n    limit: \"5\"\n    rules: []\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    interval: 1x\n    rules: []\n",
        false,
    ),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        labels: [a]\n",
        false,
    ),
    ("- a\n- b\n", false),
    (
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n   bad indent\n",
        false,
    ),
];

#[test]
fn skein_judges_files_as_promtool_does() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (text, accepted)) in CASES.iter().enumerate() {
        let f = dir.path().join(format!("case{i}.yml"));
        std::fs::write(&f, text).unwrap();
        let (passed, found, out) = promtool_check(&f);
        assert_eq!(passed, *accepted, "promtool on case {i} {text:?}: {out}");
        let ours = load_prom_file(&f);
        assert_eq!(
            ours.is_ok(),
            *accepted,
            "skein on case {i} {text:?}: {ours:?}"
        );
        if let Ok(groups) = ours {
            let n: usize = groups.iter().map(|g| g.rules.len()).sum();
            // promtool does not count the rules of a file its lint warns about.
            assert!(found.is_none_or(|f| f == n), "case {i}: {found:?} {n}");
        } else if let Err(errors) = ours {
            assert!(errors.iter().all(|e| e.line > 0), "case {i}: {errors:?}");
        }
    }
}
