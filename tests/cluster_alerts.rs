//! Alerts in cluster mode over real processes: three NATS servers and three collectors. One
//! node (the alert leader) evaluates; its notification goes to the shared outbox in
//! JetStream. The leader is killed with `kill -9` while the receiver is down; another node
//! delivers the notification, once, and the new leader, carrying on from the shared state,
//! does not notify the same alert again. A silence made through any node mutes every node's
//! notifications.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::nats::NatsCluster;
use common::webhook::Receiver;
use common::{Collector, client, get_json, log_record, logs_request, now_nanos, post, wait_for};
use prost::Message;
use std::sync::atomic::Ordering;
use std::time::Duration;

const RULE: &str = r#"
[[rule]]
name = "PaymentErrors"
for = "0s"
labels = { severity = "page" }
annotations.summary = "{{ $labels.service }} logged {{ $value }} errors"
  [rule.logs]
  severity = "error"
  by = ["service"]
  window = "10m"
  when = "> 2"
"#;

fn config(
    dir: &std::path::Path,
    nats: &NatsCluster,
    node: &str,
    rules: &str,
    hook: &str,
) -> String {
    let urls: Vec<String> = nats.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let text = format!(
        r#"
[index]
commit_interval_ms = 200

[cluster]
nats = [{urls}]
node = "{node}"
partitions = 4
replicas = 3
index_replicas = 2

[alerts]
rules = ["{rules}"]
eval_interval = "500ms"
retry_first = "200ms"
retry_max = "1s"

[[alerts.receiver]]
name = "team"
url = "{hook}"
timeout = "2s"

[alerts.route]
receiver = "team"
group_by = ["alertname", "service"]
group_wait = "0s"
group_interval = "1s"
repeat_interval = "1h"
"#,
        urls = urls.join(", ")
    );
    let path = dir.join(format!("{node}.toml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn leader(c: &Collector) -> Option<String> {
    let (code, s) = get_json(&format!("{}/api/v1/cluster", c.api_base()));
    let l = s["alert_leader"].as_str().unwrap_or_default();
    (code == 200 && !l.is_empty()).then(|| l.to_string())
}

#[test]
fn a_notification_made_on_a_killed_node_is_delivered_once_by_another() {
    let nats = NatsCluster::start(3);
    let rx = Receiver::start(0);
    // The receiver is down at first: the notification stays in the outbox.
    rx.status.store(503, Ordering::SeqCst);
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("errors.toml"), RULE).unwrap();
    let rules = rules.display().to_string();
    let mut nodes: Vec<Collector> = (0..3)
        .map(|i| {
            let path = config(tmp.path(), &nats, &format!("n{i}"), &rules, &rx.url());
            Collector::start(&["--config", &path])
        })
        .collect();
    let all_ready = |nodes: &[Collector], live: &[usize]| {
        live.iter().all(|&i| {
            get_json(&format!("{}/readyz", nodes[i].api_base())).0 == 200
                && leader(&nodes[i]).is_some()
        })
    };
    assert!(
        wait_for(|| all_ready(&nodes, &[0, 1, 2]), Duration::from_secs(90)),
        "the cluster did not come up:\n{}",
        nodes
            .iter()
            .map(|n| n.output())
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    let first = leader(&nodes[0]).unwrap();
    let li: usize = first.trim_start_matches('n').parse().unwrap();
    let other = (li + 2) % 3;

    // A silence made through a node that does not evaluate mutes the leader's notifications.
    let (status, made) = post(
        &client(),
        &format!("{}/api/v1/silences", nodes[other].api_base()),
        "application/json",
        None,
        br#"{"matchers":[{"name":"service","value":"checkout","isRegex":false}],"duration":"1h","createdBy":"test","comment":"known"}"#.to_vec(),
    )
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&made));
    assert!(
        wait_for(
            || {
                let (_, l) = get_json(&format!("{}/api/v1/silences", nodes[li].api_base()));
                l["silences"][0]["matchers"][0]["value"] == "checkout"
            },
            Duration::from_secs(20)
        ),
        "the leader did not see the silence"
    );

    // Errors enter through a node that is not the leader.
    let entry = &nodes[(li + 1) % 3];
    let now = now_nanos();
    for service in ["checkout", "payment"] {
        let records = (0..5)
            .map(|i| log_record(&format!("charge failed {i}"), 17, now, vec![]))
            .collect();
        let (status, _) = post(
            &client(),
            &format!("{}/v1/logs", entry.http_base()),
            "application/x-protobuf",
            None,
            logs_request(service, records).encode_to_vec(),
        )
        .unwrap();
        assert_eq!(status, 200);
    }

    // The leader made the notification; the receiver refused it at least once.
    assert!(
        wait_for(
            || !rx.got.lock().unwrap().is_empty(),
            Duration::from_secs(60)
        ),
        "no notification was attempted:\n{}",
        nodes[li].output()
    );
    let tried = rx.got.lock().unwrap()[0].clone();
    assert_eq!(tried.body["status"], "firing", "{}", tried.body);
    assert_eq!(tried.body["alerts"][0]["labels"]["service"], "payment");
    let id = tried.header("idempotency-key").unwrap().to_string();
    assert!(
        id.starts_with(&format!("{first}-")),
        "made by the leader {first}: {id}"
    );
    // Any node shows the firing alert: the others read the leader's shared state.
    assert!(
        wait_for(
            || {
                let (_, list) = get_json(&format!("{}/api/v1/alerts", nodes[other].api_base()));
                list["alerts"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|x| x["state"] == "firing" && x["labels"]["service"] == "payment")
                })
            },
            Duration::from_secs(20)
        ),
        "a node that does not evaluate does not show the alert"
    );

    // The leader dies; the receiver comes back.
    nodes[li].kill9();
    rx.status.store(200, Ordering::SeqCst);
    let live: Vec<usize> = (0..3).filter(|&i| i != li).collect();
    let got = rx.wait_accepted(1, Duration::from_secs(90));
    assert!(
        !got.is_empty(),
        "the notification of the killed node was not delivered:\n{}",
        live.iter()
            .map(|&i| nodes[i].output())
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    assert_eq!(got[0].header("idempotency-key"), Some(id.as_str()));
    assert_eq!(got[0].body["alerts"][0]["labels"]["service"], "payment");

    // Another node leads now and carries on from the shared state: the alert still fires,
    // and it is not notified again.
    assert!(
        wait_for(
            || leader(&nodes[live[0]]).is_some_and(|l| l != first),
            Duration::from_secs(60)
        ),
        "no new alert leader"
    );
    let settle = std::time::Instant::now() + Duration::from_secs(8);
    while std::time::Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(500));
    }
    let accepted = rx.accepted();
    let firing: Vec<_> = accepted
        .iter()
        .filter(|g| g.body["status"] == "firing")
        .collect();
    assert_eq!(
        firing.len(),
        1,
        "the firing notification was delivered more than once: {:?}",
        accepted
            .iter()
            .map(|g| g.header("idempotency-key").unwrap_or("").to_string())
            .collect::<Vec<_>>()
    );
    let (_, list) = get_json(&format!("{}/api/v1/alerts", nodes[live[1]].api_base()));
    let services: Vec<&str> = list["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["service"].as_str().unwrap_or(""))
        .collect();
    assert!(services.contains(&"payment"), "{list}");
    // Every firing notification was payment's: checkout's was silenced.
    assert!(
        accepted
            .iter()
            .chain(rx.got.lock().unwrap().iter())
            .all(|g| g.body["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["labels"]["service"] == "payment")),
        "a silenced alert was notified"
    );
    let (_, n) = get_json(&format!(
        "{}/api/v1/alerts/notifications",
        nodes[live[0]].api_base()
    ));
    assert_eq!(n["receivers"][0]["pending"], 0, "{n}");
}
