//! End-to-end: Prometheus rule files (`alerts.rule_files`) in a real collector process and
//! `skein rules check` on them: the shipped `alerts/*.rules.yml` listed by `GET /api/v1/rules`
//! with their groups, a bad file stopping the start with exit 2 naming file and line, and the
//! check's output and exit codes (promtool's: 0 good, 1 bad), and a shipped Prometheus rule
//! firing the same as its TOML twin over the same spans.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Collector, SKEIN, SKEIN_ENV, client, get_json, new_trace_id, now_nanos, post, span,
    traces_request, wait_for,
};
use prost::Message;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn shipped_glob() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("alerts");
    dir.join("*.rules.yml").display().to_string()
}

fn write_config(dir: &Path, rule_files: &str) -> String {
    let path = dir.join("collector.toml");
    let text = format!("[alerts]\nrules = []\nrule_files = [\"{rule_files}\"]\n");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs the binary to its end: exit code, stdout, stderr.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(SKEIN);
    cmd.args(args).env("NO_COLOR", "1");
    for v in SKEIN_ENV {
        cmd.env_remove(v);
    }
    let out = cmd.output().unwrap();
    let s = |b: Vec<u8>| String::from_utf8_lossy(&b).to_string();
    (out.status.code(), s(out.stdout), s(out.stderr))
}

#[test]
fn shipped_prometheus_rules_are_listed_with_their_groups() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), &shipped_glob());
    let c = Collector::start(&["--config", &cfg]);
    let url = format!("{}/api/v1/rules", c.api_base());
    // The files are read at the engine's first round, just after the start.
    let listed = || get_json(&url).1["rules"].as_array().map_or(0, Vec::len) == 7;
    assert!(wait_for(listed, Duration::from_secs(20)));
    let (status, r) = get_json(&url);
    assert_eq!(status, 200, "{r}");
    assert!(r["errors"].as_array().unwrap().is_empty(), "{r}");
    let rules = r["rules"].as_array().unwrap();
    let rows: Vec<(String, String, String)> = rules
        .iter()
        .map(|x| {
            let s = |k: &str| x[k].as_str().unwrap_or_default().to_string();
            (s("group"), s("name"), s("kind"))
        })
        .collect();
    let row = |g: &str, n: &str| (g.to_string(), n.to_string(), "alerting".to_string());
    assert_eq!(
        rows,
        [
            row("demo", "PaymentSlow"),
            row("demo", "CouponFailing"),
            row("demo", "DeliveryStopped"),
            row("skein", "AgentDown"),
            row("skein", "HighErrorRate"),
            row("skein", "HighLatencyP99"),
            row("skein", "VerySlowRequests"),
        ]
    );
    let high = rules.iter().find(|x| x["name"] == "HighErrorRate").unwrap();
    assert!(
        high["file"].as_str().unwrap().ends_with("skein.rules.yml"),
        "{high}"
    );
    assert!(high["line"].as_u64().unwrap() > 0, "{high}");
    assert_eq!(high["for_duration"], "1m", "{high}");
    assert_eq!(high["keep_firing_for"], "2m", "{high}");
    assert_eq!(high["labels"]["severity"], "page", "{high}");
}

#[test]
fn a_bad_rule_file_stops_the_start_and_fails_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.rules.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: api\n    rules:\n      - alert: Down\n        expr: up ==\n        for: 5\n",
    )
    .unwrap();
    let cfg = write_config(
        tmp.path(),
        &tmp.path().join("*.rules.yml").display().to_string(),
    );
    let data = tmp.path().join("data").display().to_string();
    let (code, _, err) = run(&["collector", "--config", &cfg, "--data-dir", &data]);
    assert_eq!(code, Some(2), "{err}");
    let at = format!(
        "{}:5: group \"api\", rule 1, \"Down\": could not parse expression",
        bad.display()
    );
    assert!(
        err.contains("alerts.rule_files") && err.contains(&at),
        "{err}"
    );
    assert!(
        err.contains(
            ":6: group \"api\", rule 1, \"Down\": for: not a valid duration string: \"5\""
        ),
        "{err}"
    );

    // The check: the bad file fails with exit 1; the shipped ones pass, by path or through
    // the configuration.
    let (code, out, err) = run(&["rules", "check", &bad.display().to_string()]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains(&at), "{err}");
    let (code, out, err) = run(&["rules", "check", "-c", &cfg]);
    assert_eq!(code, Some(1), "{out}{err}");
    std::fs::remove_file(&bad).unwrap();
    let shipped = shipped_glob();
    let cfg = write_config(tmp.path(), &shipped);
    let (code, out, err) = run(&["rules", "check", "--config", &cfg]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("skein.rules.yml: 4 rules found"), "{out}");
    assert!(out.contains("demo.rules.yml: 3 rules found"), "{out}");
    let (code, _, err) = run(&["rules", "check"]);
    assert_eq!(code, Some(2), "no file and no configuration: {err}");
}

/// A collector evaluating every 500 ms with span metrics derived every second, and the given
/// `[alerts]` rule lines.
fn alerting_config(dir: &Path, rules: &str) -> String {
    let path = dir.join("collector.toml");
    let text = format!(
        "[metrics]\nderive_interval = \"1s\"\n\n[alerts]\neval_interval = \"500ms\"\n{rules}\n"
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The firing `CouponFailing` alert of a collector: its labels and summary.
fn coupon_failing(c: &Collector) -> Option<(serde_json::Value, serde_json::Value)> {
    let (_, v) = get_json(&format!("{}/api/v1/alerts", c.api_base()));
    v["alerts"].as_array()?.iter().find_map(|a| {
        (a["rule"] == "CouponFailing" && a["state"] == "firing")
            .then(|| (a["labels"].clone(), a["annotations"]["summary"].clone()))
    })
}

#[test]
fn a_shipped_prometheus_rule_fires_as_its_toml_twin() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("alerts");
    let tmp_toml = tempfile::tempdir().unwrap();
    let tmp_yaml = tempfile::tempdir().unwrap();
    let toml = alerting_config(
        tmp_toml.path(),
        &format!("rules = [\"{}\"]", repo.join("demo.toml").display()),
    );
    let yaml = alerting_config(
        tmp_yaml.path(),
        &format!(
            "rules = []\nrule_files = [\"{}\"]",
            repo.join("demo.rules.yml").display()
        ),
    );
    let by_toml = Collector::start(&["--config", &toml]);
    let by_yaml = Collector::start(&["--config", &yaml]);
    // Coupon fails half of its calls: over the 20% of CouponFailing.
    let now = now_nanos() - 1_000_000_000;
    let spans: Vec<_> = (0..10u8)
        .map(|i| {
            let mut s = span(&new_trace_id(), &[i + 1; 8], &[], "redeem", now);
            s.end_time_unix_nano = now + 5_000_000;
            if i < 5 {
                s.status = Some(opentelemetry_proto::tonic::trace::v1::Status {
                    code: 2,
                    ..Default::default()
                });
            }
            s
        })
        .collect();
    let body = traces_request("coupon", spans).encode_to_vec();
    for c in [&by_toml, &by_yaml] {
        let (status, _) = post(
            &client(),
            &format!("{}/v1/traces", c.http_base()),
            "application/x-protobuf",
            None,
            body.clone(),
        )
        .unwrap();
        assert_eq!(status, 200);
    }
    assert!(
        wait_for(
            || coupon_failing(&by_toml).is_some() && coupon_failing(&by_yaml).is_some(),
            Duration::from_secs(40)
        ),
        "CouponFailing did not fire on both:\nTOML: {}\nPromQL: {}\n{}",
        get_json(&format!("{}/api/v1/alerts", by_toml.api_base())).1,
        get_json(&format!("{}/api/v1/alerts", by_yaml.api_base())).1,
        by_yaml.output()
    );
    let (toml_labels, toml_summary) = coupon_failing(&by_toml).unwrap();
    let (yaml_labels, yaml_summary) = coupon_failing(&by_yaml).unwrap();
    assert_eq!(toml_labels, yaml_labels);
    assert_eq!(yaml_labels["service"], "coupon");
    assert_eq!(toml_summary, yaml_summary);
    assert_eq!(yaml_summary, "coupon fails 50% of calls");
}
