//! End-to-end: alert rules in a real collector process notify a real HTTP receiver run by
//! the test. Firing then resolved with Alertmanager's version 4 fields; a receiver that is
//! down, then back, with a collector restart in between; silences; a stopped agent firing the
//! absence rule; rules from spans; bad rule files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::agent::Agent;
use common::webhook::Receiver;
use common::{
    Collector, SKEIN, SKEIN_ENV, client, get_json, log_record, logs_request, new_trace_id,
    now_nanos, post, span, traces_request, wait_for,
};
use prost::Message;
use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A collector config: alerts every 500 ms, rules from `rules_dir`, one receiver.
fn config(dir: &Path, rules_dir: &Path, receiver_url: &str, extra: &str) -> String {
    let text = format!(
        r#"
[metrics]
derive_interval = "1s"

[alerts]
rules = ["{rules}"]
eval_interval = "500ms"
retry_first = "200ms"
retry_max = "1s"

[[alerts.receiver]]
name = "team"
url = "{receiver_url}"
headers = {{ X-Team-Token = "secret-1" }}
timeout = "2s"

[alerts.route]
receiver = "team"
group_by = ["alertname", "service"]
group_wait = "0s"
group_interval = "1s"
repeat_interval = "1h"
{extra}
"#,
        rules = rules_dir.display()
    );
    let path = dir.join("collector.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn send_logs(c: &Collector, service: &str, severity: i32, n: usize) {
    let now = now_nanos();
    let records = (0..n)
        .map(|i| log_record(&format!("charge failed {i}"), severity, now, vec![]))
        .collect();
    let body = logs_request(service, records).encode_to_vec();
    let (status, _) = post(
        &client(),
        &format!("{}/v1/logs", c.http_base()),
        "application/x-protobuf",
        None,
        body,
    )
    .unwrap();
    assert_eq!(status, 200);
}

const ERROR_RULE: &str = r#"
[[rule]]
name = "PaymentErrors"
for = "0s"
labels = { severity = "page" }
annotations.summary = "{{ $labels.service }} logged {{ $value }} errors in 5s"
  [rule.logs]
  severity = "error"
  by = ["service"]
  window = "5s"
  when = "> 2"
"#;

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn fires_then_resolves_with_the_alertmanager_v4_body() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("errors.toml"), ERROR_RULE).unwrap();
    let rx = Receiver::start(0);
    let cfg = config(tmp.path(), &rules, &rx.url(), "");
    let c = Collector::start(&["--config", &cfg]);

    send_logs(&c, "payment", 17, 5);
    send_logs(&c, "order", 9, 5); // info: not counted
    let got = rx.wait_accepted(1, Duration::from_secs(30));
    assert!(!got.is_empty(), "no notification:\n{}", c.output());
    let n = &got[0];
    let b = &n.body;
    assert_eq!(
        keys(b),
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
    assert_eq!(b["receiver"], "team");
    assert_eq!(b["status"], "firing");
    assert_eq!(b["version"], "4");
    assert_eq!(b["truncatedAlerts"], 0);
    assert_eq!(b["externalURL"], format!("http://{}", c.api));
    assert_eq!(
        b["groupLabels"],
        serde_json::json!({"alertname": "PaymentErrors", "service": "payment"})
    );
    assert_eq!(
        b["groupKey"],
        "{}:{alertname=\"PaymentErrors\",service=\"payment\"}"
    );
    let alerts = b["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{b}");
    let a = &alerts[0];
    assert_eq!(
        keys(a),
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
    assert_eq!(a["status"], "firing");
    assert_eq!(
        a["labels"],
        serde_json::json!({"alertname": "PaymentErrors", "service": "payment", "severity": "page"})
    );
    assert_eq!(a["annotations"]["summary"], "payment logged 5 errors in 5s");
    assert_eq!(b["commonLabels"], a["labels"]);
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert!(a["startsAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(a["fingerprint"].as_str().unwrap().len(), 16);
    assert!(
        a["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with(&format!("http://{}/api/v1/rules", c.api))
    );
    assert_eq!(n.header("x-team-token"), Some("secret-1"));
    assert_eq!(n.header("content-type"), Some("application/json"));
    let key1 = n.header("idempotency-key").unwrap().to_string();

    // While it fires, the API shows it with its value.
    let (_, list) = get_json(&format!("{}/api/v1/alerts", c.api_base()));
    let firing = &list["alerts"][0];
    assert_eq!(firing["state"], "firing", "{list}");
    assert_eq!(firing["value"], 5.0);
    let (_, rules_api) = get_json(&format!("{}/api/v1/rules", c.api_base()));
    assert_eq!(rules_api["rules"][0]["health"], "ok", "{rules_api}");
    assert_eq!(rules_api["rules"][0]["kind"], "logs");

    // The 5 s window passes: resolved, with an end time.
    let got = rx.wait_accepted(2, Duration::from_secs(30));
    assert!(got.len() >= 2, "no resolved notification:\n{}", c.output());
    let r = &got[1].body;
    assert_eq!(r["status"], "resolved", "{r}");
    assert_eq!(r["alerts"][0]["status"], "resolved");
    assert_ne!(r["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(r["alerts"][0]["fingerprint"], a["fingerprint"]);
    assert_ne!(got[1].header("idempotency-key").unwrap(), key1);
    let (_, list) = get_json(&format!("{}/api/v1/alerts", c.api_base()));
    assert!(list["alerts"].as_array().unwrap().is_empty(), "{list}");
    let (_, h) = get_json(&format!(
        "{}/api/v1/alerts/history?rule=PaymentErrors",
        c.api_base()
    ));
    let changes: Vec<String> = h["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}->{}",
                t["from"].as_str().unwrap(),
                t["to"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(changes, ["firing->resolved", "inactive->firing"], "{h}");
}

#[test]
fn receiver_down_gets_everything_in_order_across_a_collector_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let rule = ERROR_RULE.replace("window = \"5s\"", "window = \"10m\"");
    // The same condition with a long `for`: it stays pending, and its clock must survive.
    let pending_rule = rule
        .replace("PaymentErrors", "SlowBurn")
        .replace("for = \"0s\"", "for = \"1h\"");
    std::fs::write(rules.join("errors.toml"), format!("{rule}\n{pending_rule}")).unwrap();
    // A port with nobody listening: the receiver is down.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let cfg = config(tmp.path(), &rules, &url, "");
    let data = tmp.path().join("data");
    let mut c = Collector::start_in(&data, &["--config", &cfg]);

    send_logs(&c, "payment", 17, 3);
    let pending = |c: &Collector, n: u64| {
        wait_for(
            || {
                let (_, s) = get_json(&format!("{}/api/v1/alerts/notifications", c.api_base()));
                s["receivers"][0]["pending"].as_u64().unwrap_or(0) >= n
                    && s["receivers"][0]["retries"].as_u64().unwrap_or(0) >= 1
            },
            Duration::from_secs(30),
        )
    };
    assert!(
        pending(&c, 1),
        "first notification not queued:\n{}",
        c.output()
    );
    send_logs(&c, "order", 17, 3);
    assert!(
        pending(&c, 2),
        "second notification not queued:\n{}",
        c.output()
    );
    let (_, s) = get_json(&format!("{}/api/v1/alerts/notifications", c.api_base()));
    assert!(s["receivers"][0]["last_error"].is_string(), "{s}");

    // Restart while the receiver is still down.
    let clocks = |c: &Collector| {
        let (_, a) = get_json(&format!("{}/api/v1/alerts", c.api_base()));
        let mut v: Vec<String> = a["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                format!(
                    "{} {} {} {}",
                    x["rule"], x["labels"]["service"], x["state"], x["active_since_ms"]
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = clocks(&c);
    assert_eq!(before.len(), 4, "{before:?}");
    assert!(c.terminate().success());
    c.restart();
    assert!(
        pending(&c, 2),
        "outbox lost across restart:\n{}",
        c.output()
    );
    assert!(
        wait_for(|| clocks(&c).len() == 4, Duration::from_secs(20)),
        "{:?}",
        clocks(&c)
    );
    assert_eq!(
        clocks(&c),
        before,
        "states and pending clocks survive the restart"
    );

    // The receiver comes back on the same port.
    let rx = Receiver::start(port);
    let got = rx.wait_accepted(2, Duration::from_secs(30));
    assert!(got.len() >= 2, "not delivered:\n{}", c.output());
    let services: Vec<&str> = got
        .iter()
        .map(|g| g.body["alerts"][0]["labels"]["service"].as_str().unwrap())
        .collect();
    assert_eq!(&services[..2], ["payment", "order"], "in order");
    let mut ids: Vec<&str> = got
        .iter()
        .map(|g| g.header("idempotency-key").unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "each notification once, keys unique");
    // Nothing was sent twice for the restart: both alerts still fire, no new notification.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(rx.accepted().len(), 2, "{:?}", rx.accepted());
}

#[test]
fn silence_suppresses_and_expiry_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let rule = ERROR_RULE.replace("window = \"5s\"", "window = \"10m\"");
    std::fs::write(rules.join("errors.toml"), rule).unwrap();
    let rx = Receiver::start(0);
    let cfg = config(tmp.path(), &rules, &rx.url(), "");
    let c = Collector::start(&["--config", &cfg]);
    let skein = |args: &[&str]| {
        let mut cmd = std::process::Command::new(SKEIN);
        for v in SKEIN_ENV {
            cmd.env_remove(v);
        }
        let out = cmd
            .args(args)
            .args(["--api", &c.api_base()])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = skein(&[
        "silence",
        "add",
        "alertname=PaymentErrors",
        "service=~pay.*",
        "--for",
        "2h",
        "--comment",
        "bank maintenance",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let id = out.trim().to_string();
    assert_eq!(id.len(), 36, "{out}");

    send_logs(&c, "payment", 17, 3);
    assert!(wait_for(
        || {
            let (_, a) = get_json(&format!("{}/api/v1/alerts", c.api_base()));
            a["alerts"][0]["silenced_by"][0] == id.as_str()
        },
        Duration::from_secs(30)
    ));
    // Several evaluation and group rounds pass: nothing is sent.
    std::thread::sleep(Duration::from_secs(3));
    assert!(rx.accepted().is_empty(), "{:?}", rx.accepted());
    let (code, out, _) = skein(&["silence", "list"]);
    assert_eq!(code, Some(0));
    assert!(out.contains(&id) && out.contains("active"), "{out}");
    let (code, out, _) = skein(&["alerts"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("firing(s)") && out.contains("PaymentErrors"),
        "{out}"
    );

    let (code, _, err) = skein(&["silence", "expire", &id]);
    assert_eq!(code, Some(0), "{err}");
    let got = rx.wait_accepted(1, Duration::from_secs(30));
    assert_eq!(got.len(), 1, "expiry restores the notification");
    assert_eq!(got[0].body["alerts"][0]["labels"]["service"], "payment");
    let (code, _, err) = skein(&["silence", "expire", &id]);
    assert_eq!(code, Some(2), "already expired");
    assert!(err.contains("already expired"), "{err}");
    // A bad silence is a 400 with a message.
    let (status, body) = post(
        &client(),
        &format!("{}/api/v1/silences", c.api_base()),
        "application/json",
        None,
        br#"{"matchers":[{"name":"a","value":".*","isRegex":true}],"duration":"1h"}"#.to_vec(),
    )
    .unwrap();
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&body).unwrap();
    common::assert_error_body("silence matching everything", &v);
}

#[test]
fn a_stopped_agent_fires_the_absence_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("agents.toml"),
        r#"
[[rule]]
name = "AgentDown"
annotations.summary = "no heartbeat from {{ $labels.agent }} on {{ $labels.host }} for {{ $value }}s"
  [rule.absent]
  heartbeat = true
  after = "3s"
"#,
    )
    .unwrap();
    let rx = Receiver::start(0);
    let cfg = config(tmp.path(), &rules, &rx.url(), "");
    let c = Collector::start(&["--config", &cfg]);
    let agent_dir = tmp.path().join("agent");
    std::fs::create_dir_all(&agent_dir).unwrap();
    let mut agent = Agent::start(
        &agent_dir,
        &format!(
            r#"
[agent]
id = "alert-agent"
data_dir = "{}"
[collector]
endpoint = "{}"
[heartbeat]
interval = "500ms"
[host_metrics]
enabled = false
"#,
            agent_dir.join("data").display(),
            c.http_base()
        ),
    );
    assert!(wait_for(
        || {
            let (_, a) = get_json(&format!("{}/api/v1/agents", c.api_base()));
            a["agents"][0]["state"] == "up"
        },
        Duration::from_secs(20)
    ));
    std::thread::sleep(Duration::from_secs(2));
    assert!(rx.accepted().is_empty(), "a live agent is not absent");
    agent.kill9();
    let got = rx.wait_accepted(1, Duration::from_secs(30));
    assert!(!got.is_empty(), "no notification:\n{}", c.output());
    let a = &got[0].body["alerts"][0];
    assert_eq!(a["labels"]["alertname"], "AgentDown");
    assert_eq!(a["labels"]["agent"], "alert-agent");
    assert!(
        a["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("no heartbeat from alert-agent on "),
        "{a}"
    );
}

#[test]
fn rules_over_span_metrics_and_slow_traces_fire_per_service() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("red.toml"),
        r#"
[[rule]]
name = "HighErrorRate"
annotations.summary = "{{ $labels.service }}: {{ $value | humanizePercentage }} of calls fail"
  [rule.metric]
  name = "skein.span.errors"
  agg = "increase"
  window = "5m"
  by = ["service"]
  divide_by = { name = "skein.span.calls", agg = "increase" }
  when = "> 0.2"

[[rule]]
name = "SlowCheckout"
  [rule.traces]
  operation = "POST /checkout"
  min_duration = "2s"
  window = "5m"
  by = ["service", "operation"]
"#,
    )
    .unwrap();
    let rx = Receiver::start(0);
    let cfg = config(tmp.path(), &rules, &rx.url(), "");
    let c = Collector::start(&["--config", &cfg]);
    let now = now_nanos() - 1_000_000_000;
    let send = |service: &str, n: usize, errors: usize, name: &str, dur_ms: u64| {
        let spans = (0..n)
            .map(|i| {
                let mut s = span(&new_trace_id(), &[i as u8 + 1; 8], &[], name, now);
                s.end_time_unix_nano = now + dur_ms * 1_000_000;
                if i < errors {
                    s.status = Some(opentelemetry_proto::tonic::trace::v1::Status {
                        code: 2,
                        ..Default::default()
                    });
                }
                s
            })
            .collect();
        let (status, _) = post(
            &client(),
            &format!("{}/v1/traces", c.http_base()),
            "application/x-protobuf",
            None,
            traces_request(service, spans).encode_to_vec(),
        )
        .unwrap();
        assert_eq!(status, 200);
    };
    send("payment", 10, 5, "charge", 10);
    send("order", 10, 1, "create", 10);
    send("gateway", 2, 0, "POST /checkout", 2_500);
    let got = rx.wait_accepted(2, Duration::from_secs(40));
    let mut seen: Vec<(String, String)> = got
        .iter()
        .flat_map(|g| g.body["alerts"].as_array().unwrap().clone())
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap().to_string(),
                a["labels"]["service"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("HighErrorRate".to_string(), "payment".to_string()),
            ("SlowCheckout".to_string(), "gateway".to_string())
        ],
        "order's 10% is under the threshold:\n{}",
        c.output()
    );
    let high = got
        .iter()
        .find(|g| g.body["alerts"][0]["labels"]["alertname"] == "HighErrorRate")
        .unwrap();
    assert_eq!(
        high.body["alerts"][0]["annotations"]["summary"],
        "payment: 50% of calls fail"
    );
    let slow = got
        .iter()
        .find(|g| g.body["alerts"][0]["labels"]["alertname"] == "SlowCheckout")
        .unwrap();
    assert_eq!(
        slow.body["alerts"][0]["labels"]["operation"],
        "POST /checkout"
    );
}

#[test]
fn bad_rule_files_are_refused_with_file_and_line_and_the_rest_run() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("a_good.toml"), ERROR_RULE).unwrap();
    std::fs::write(
        rules.join("b_bad.toml"),
        "[[rule]]\nname = \"Broken\"\nfor = \"soon\"\n  [rule.logs]\n  when = \"> 1\"\n",
    )
    .unwrap();
    std::fs::write(rules.join("c_syntax.toml"), "[[rule]]\nname = \"Half\n").unwrap();
    std::fs::write(
        rules.join("d_metric.toml"),
        "[[rule]]\nname = \"Typo\"\n  [rule.metric]\n  name = \"skein.span.erors\"\n  when = \"> 1\"\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(SKEIN)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let dir = rules.display().to_string();
    let (code, out, err) = run(&["rules", "check", &dir]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("a_good.toml: 1 rules found"), "{out}");
    assert!(err.contains("b_bad.toml:3:"), "{err}");
    assert!(err.contains("soon"), "{err}");
    assert!(err.contains("c_syntax.toml:2:"), "{err}");
    assert!(
        err.contains("d_metric.toml:4:") || err.contains("d_metric.toml:2:"),
        "{err}"
    );
    assert!(err.contains("skein.span.erors"), "{err}");
    let good = rules.join("a_good.toml").display().to_string();
    let (code, out, _) = run(&["rules", "check", &good]);
    assert_eq!(code, Some(0), "{out}");

    // The collector runs the good file and lists the refused ones.
    let rx = Receiver::start(0);
    let cfg = config(tmp.path(), &rules, &rx.url(), "");
    let c = Collector::start(&["--config", &cfg]);
    assert!(wait_for(
        || {
            let (_, r) = get_json(&format!("{}/api/v1/rules", c.api_base()));
            r["rules"][0]["health"] == "ok"
        },
        Duration::from_secs(20)
    ));
    let (_, r) = get_json(&format!("{}/api/v1/rules", c.api_base()));
    assert_eq!(r["rules"].as_array().unwrap().len(), 1, "{r}");
    let files: Vec<String> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}:{}", e["file"].as_str().unwrap(), e["line"]))
        .collect();
    assert!(files.iter().any(|f| f.ends_with("b_bad.toml:3")), "{r}");
    assert!(files.iter().any(|f| f.ends_with("c_syntax.toml:2")), "{r}");
    send_logs(&c, "payment", 17, 3);
    assert!(!rx.wait_accepted(1, Duration::from_secs(30)).is_empty());

    // A bad receiver in the config: exit 2 naming the key and value.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[alerts.receiver]]\nname = \"x\"\nurl = \"ftp://nowhere\"\n",
    )
    .unwrap();
    let (code, _, err) = run(&["collector", "--config", &bad.display().to_string()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("alerts.receiver[0].url") && err.contains("ftp://nowhere"),
        "{err}"
    );
}

#[test]
fn a_4xx_is_a_permanent_failure_visible_in_the_api() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("errors.toml"), ERROR_RULE).unwrap();
    let rx = Receiver::start(0);
    rx.status.store(404, Ordering::SeqCst);
    let cfg = config(tmp.path(), &rules, &rx.url(), "");
    let c = Collector::start(&["--config", &cfg]);
    send_logs(&c, "payment", 17, 3);
    let failed = || {
        let (_, s) = get_json(&format!("{}/api/v1/alerts/notifications", c.api_base()));
        s
    };
    assert!(
        wait_for(
            || failed()["receivers"][0]["failed"].as_u64() == Some(1),
            Duration::from_secs(30)
        ),
        "{}\n{}",
        failed(),
        c.output()
    );
    let s = failed();
    let f = &s["receivers"][0]["failures"][0];
    assert!(f["reason"].as_str().unwrap().contains("404"), "{s}");
    assert_eq!(f["attempts"], 1, "a 4xx is not retried: {s}");
    assert_eq!(s["receivers"][0]["pending"], 0);
    assert_eq!(rx.got.lock().unwrap().len(), 1);
    // The same counts on the collector's /metrics.
    let metrics = || {
        client()
            .get(format!("{}/metrics", c.api_base()))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    assert!(
        wait_for(
            || metrics()
                .contains("skein_alert_notifications_total{receiver=\"team\",result=\"failed\"} 1"),
            Duration::from_secs(10)
        ),
        "{}",
        metrics()
    );
    let m = metrics();
    assert!(m.contains("skein_alerts{state=\"firing\"} 1"), "{m}");
    assert!(
        m.contains("skein_alert_rule_evaluations_total{result=\"ok\"}"),
        "{m}"
    );
}

#[test]
fn edited_rule_files_are_picked_up_and_a_broken_edit_keeps_the_last_good_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let rx = Receiver::start(0);
    let cfg = config(tmp.path(), &rules, &rx.url(), "");
    let c = Collector::start(&["--config", &cfg]);
    let names = || {
        let (_, r) = get_json(&format!("{}/api/v1/rules", c.api_base()));
        let n: Vec<String> = r["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_string())
            .collect();
        (n, r["errors"].as_array().unwrap().len())
    };
    assert_eq!(names(), (vec![], 0));
    // A new file is read without a restart.
    let file = rules.join("errors.toml");
    std::fs::write(&file, ERROR_RULE).unwrap();
    assert!(
        wait_for(|| names().0 == ["PaymentErrors"], Duration::from_secs(20)),
        "{:?}",
        names()
    );
    // A broken edit is refused with its line; the last good rule keeps running.
    std::thread::sleep(Duration::from_millis(1100)); // a new modification time
    std::fs::write(&file, format!("{ERROR_RULE}\n[[rule]]\nname = \"Bad\"\nfor = \"later\"\n  [rule.logs]\n  when = \"> 1\"\n")).unwrap();
    assert!(
        wait_for(|| names().1 == 1, Duration::from_secs(20)),
        "{:?}",
        names()
    );
    assert_eq!(names().0, ["PaymentErrors"]);
    send_logs(&c, "payment", 17, 3);
    assert!(!rx.wait_accepted(1, Duration::from_secs(30)).is_empty());
    // The fix replaces it; removing the file removes the rule and resolves its alert.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&file, ERROR_RULE.replace("PaymentErrors", "PaymentErrors2")).unwrap();
    assert!(
        wait_for(
            || names() == (vec!["PaymentErrors2".to_string()], 0),
            Duration::from_secs(20)
        ),
        "{:?}",
        names()
    );
    let resolved = || {
        rx.accepted().iter().any(|g| {
            g.body["status"] == "resolved"
                && g.body["alerts"][0]["labels"]["alertname"] == "PaymentErrors"
        })
    };
    assert!(
        wait_for(resolved, Duration::from_secs(30)),
        "the alert of the removed rule resolves: {:?}",
        rx.accepted()
    );
}

#[test]
fn a_firing_source_alert_inhibits_matching_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let page = ERROR_RULE.replace("window = \"5s\"", "window = \"10m\"");
    let warn = page
        .replace("PaymentErrors", "PaymentWarnings")
        .replace("severity = \"page\"", "severity = \"warning\"");
    std::fs::write(rules.join("errors.toml"), format!("{page}\n{warn}")).unwrap();
    let rx = Receiver::start(0);
    let inhibit = r#"
[[alerts.inhibit]]
source_matchers = ["alertname=PaymentErrors"]
target_matchers = ["severity=warning"]
equal = ["service"]
"#;
    let cfg = config(tmp.path(), &rules, &rx.url(), inhibit);
    let c = Collector::start(&["--config", &cfg]);
    send_logs(&c, "payment", 17, 3);
    let got = rx.wait_accepted(1, Duration::from_secs(30));
    assert_eq!(
        got[0].body["alerts"][0]["labels"]["alertname"],
        "PaymentErrors"
    );
    // Both fire, the warning is muted by the page with the same service.
    let (_, a) = get_json(&format!("{}/api/v1/alerts", c.api_base()));
    let warning = a["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["rule"] == "PaymentWarnings")
        .unwrap()
        .clone();
    assert_eq!(warning["state"], "firing", "{a}");
    assert_eq!(
        warning["inhibited_by"][0], got[0].body["alerts"][0]["fingerprint"],
        "{a}"
    );
    std::thread::sleep(Duration::from_secs(3));
    let names: Vec<Value> = rx
        .accepted()
        .iter()
        .map(|g| g.body["alerts"][0]["labels"]["alertname"].clone())
        .collect();
    assert_eq!(names, ["PaymentErrors"], "the warning is never sent");
}
