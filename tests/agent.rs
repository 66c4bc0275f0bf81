//! End-to-end: the real `skein agent` tails real files through rotation in both styles,
//! restarts, a collector outage and `kill -9`, and ships to a real collector process. Every
//! numbered line must arrive with its parsed fields and correlation key, exactly once: across
//! `kill -9` the agent sends again what it had not saved as acknowledged, with the same batch
//! ids, and the collector stores each batch once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::agent::Agent;
use common::{Collector, get_json, url_with, wait_for};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

const ARRIVAL: Duration = Duration::from_secs(60);

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    f.sync_data().unwrap();
}

/// JSON lines for source alpha.
fn alpha(phase: &str, from: u32, n: u32) -> Vec<String> {
    (from..from + n)
        .map(|i| {
            format!(
                r#"{{"ts":"2026-11-22T10:00:00.{i:06}Z","level":"warn","msg":"alpha line {i}","seq":{i},"request_id":"alpha-{i}","phase":"{phase}"}}"#
            )
        })
        .collect()
}

/// logfmt lines for source beta.
fn beta(phase: &str, from: u32, n: u32) -> Vec<String> {
    (from..from + n)
        .map(|i| {
            format!(
                r#"time=2026-11-22T11:00:00Z level=error msg="beta line {i}" seq={i} x-request-id=beta-{i} phase={phase}"#
            )
        })
        .collect()
}

/// Every log of `service` in `phase`, as seq → how many times it arrived.
fn arrived(c: &Collector, service: &str, phase: &str) -> BTreeMap<u64, usize> {
    let url = url_with(
        &c.api_base(),
        "/api/v1/logs",
        &[
            ("q", &format!("phase:{phase}")),
            ("service", service),
            ("limit", "1000"),
            ("since", "30d"),
        ],
    );
    let (status, body) = get_json(&url);
    let mut out = BTreeMap::new();
    if status != 200 {
        return out;
    }
    for l in body["logs"].as_array().cloned().unwrap_or_default() {
        let seq = l["attributes"]["seq"]
            .as_u64()
            .or_else(|| l["attributes"]["seq"].as_str().and_then(|s| s.parse().ok()));
        if let Some(s) = seq {
            *out.entry(s).or_default() += 1;
        }
    }
    out
}

fn wait_all(c: &Collector, service: &str, phase: &str, want: std::ops::Range<u64>) {
    let ok = wait_for(
        || {
            let got = arrived(c, service, phase);
            want.clone().all(|s| got.contains_key(&s))
        },
        ARRIVAL,
    );
    let got = arrived(c, service, phase);
    let missing: Vec<u64> = want.clone().filter(|s| !got.contains_key(s)).collect();
    assert!(
        ok,
        "{service} {phase}: {} of {} lines missing, first {:?}",
        missing.len(),
        want.end - want.start,
        &missing[..missing.len().min(10)]
    );
}

fn config(dir: &Path, collector: &Collector) -> String {
    format!(
        r#"
[agent]
id = "e2e-agent"
data_dir = "{data}"
[collector]
endpoint = "{endpoint}"
timeout = "5s"
[batch]
max_records = 100
max_wait = "100ms"
[retry]
initial_backoff = "50ms"
max_backoff = "500ms"
[heartbeat]
interval = "500ms"
[host_metrics]
enabled = false

[[source]]
name = "alpha"
paths = ["{dir}/alpha.log"]
read_from = "beginning"
format = "json"

[[source]]
name = "beta"
paths = ["{dir}/beta.log"]
read_from = "beginning"
format = "logfmt"
labels = {{ env = "e2e" }}
"#,
        data = dir.join("agent-data").display(),
        endpoint = collector.http_base(),
        dir = dir.display(),
    )
}

#[test]
fn every_line_arrives_exactly_once_through_rotation_restarts_and_an_outage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut collector = Collector::start(&[]);
    let a_path = dir.join("alpha.log");
    let b_path = dir.join("beta.log");
    append(&a_path, &alpha("p1", 0, 300));
    append(&b_path, &beta("p1", 0, 300));
    let mut agent = Agent::start(dir, &config(dir, &collector));

    // Phase 1: lines written before start are read from the beginning.
    wait_all(&collector, "alpha", "p1", 0..300);
    wait_all(&collector, "beta", "p1", 0..300);

    // Phase 2: rename rotation with writes to the old file after the rename (its unread
    // tail must still be read), then a new file at the path; copytruncate for beta.
    let mut old = std::fs::OpenOptions::new()
        .append(true)
        .open(&a_path)
        .unwrap();
    std::fs::rename(&a_path, dir.join("alpha.log.1")).unwrap();
    for l in alpha("p2", 0, 200) {
        writeln!(old, "{l}").unwrap();
    }
    drop(old);
    append(&a_path, &alpha("p2", 200, 200));
    std::fs::copy(&b_path, dir.join("beta.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&b_path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&b_path, &beta("p2", 0, 250));
    wait_all(&collector, "alpha", "p2", 0..400);
    wait_all(&collector, "beta", "p2", 0..250);

    // Phase 3: a clean restart while lines keep coming, some written while it is down.
    append(&a_path, &alpha("p3", 0, 100));
    assert!(agent.terminate().success(), "{}", agent.output());
    append(&a_path, &alpha("p3", 100, 100));
    append(&b_path, &beta("p3", 0, 150));
    agent.restart();
    append(&a_path, &alpha("p3", 200, 100));
    wait_all(&collector, "alpha", "p3", 0..300);
    wait_all(&collector, "beta", "p3", 0..150);

    // Phase 4: the collector is away for a while; the agent buffers and retries.
    assert!(collector.terminate().success());
    append(&a_path, &alpha("p4", 0, 300));
    append(&b_path, &beta("p4", 0, 300));
    assert!(
        wait_for(
            || agent.counter("skein_agent_retries_total{signal=\"logs\"}") >= 1.0,
            Duration::from_secs(20)
        ),
        "the agent retried while the collector was away:\n{}",
        agent.metrics()
    );
    // A clean agent restart during the outage: the buffer on disk carries the lines over.
    assert!(agent.terminate().success());
    agent.restart();
    std::thread::sleep(Duration::from_secs(1));
    collector.restart_same_ports();
    wait_all(&collector, "alpha", "p4", 0..300);
    wait_all(&collector, "beta", "p4", 0..300);

    // Exactly once: no line of any phase arrived twice.
    for (svc, phase, n) in [
        ("alpha", "p1", 300),
        ("alpha", "p2", 400),
        ("alpha", "p3", 300),
        ("alpha", "p4", 300),
        ("beta", "p1", 300),
        ("beta", "p2", 250),
        ("beta", "p3", 150),
        ("beta", "p4", 300),
    ] {
        let got = arrived(&collector, svc, phase);
        let twice: Vec<_> = got.iter().filter(|(_, c)| **c > 1).collect();
        assert!(twice.is_empty(), "{svc} {phase}: duplicates {twice:?}");
        assert_eq!(got.len(), n, "{svc} {phase}");
    }

    // Parsed fields and correlation keys made it: a trace lookup by request ID finds the line,
    // with severity, time, labels and attributes.
    let (status, t) = get_json(&format!("{}/api/v1/traces/beta-7", collector.api_base()));
    assert_eq!(status, 200, "{t}");
    let logs = t["logs"].as_array().unwrap();
    assert!(!logs.is_empty(), "request id beta-7 finds its lines: {t}");
    let l = &logs[0];
    assert_eq!(l["severity_number"], 17, "{l}");
    assert_eq!(l["body"], "beta line 7");
    assert_eq!(l["service"], "beta");
    assert_eq!(l["resource"]["env"], "e2e");
    assert_eq!(l["resource"]["skein.agent.id"], "e2e-agent");
    assert_eq!(l["time_unix_nano"], 1_795_345_200_000_000_000u64);
    let (_, t) = get_json(&format!("{}/api/v1/traces/alpha-5", collector.api_base()));
    let l = &t["logs"][0];
    assert_eq!(l["severity_text"], "warn", "{t}");
    assert_eq!(l["body"], "alpha line 5");

    // The agent is in the registry, up.
    let (_, agents) = get_json(&format!("{}/api/v1/agents", collector.api_base()));
    let a = &agents["agents"][0];
    assert_eq!(a["heartbeat"]["id"], "e2e-agent", "{agents}");
    assert_eq!(a["state"], "up");
    assert_eq!(a["heartbeat"]["sources"].as_array().unwrap().len(), 2);
    assert!(
        agent.counter("skein_agent_rotations_total{kind=\"truncate\",source=\"beta\"}") >= 1.0
            || agent.output().contains("truncat")
    );
}

/// The collector's counter of batches it answered without storing them again.
fn duplicate_batches(c: &Collector) -> f64 {
    c.metrics()
        .lines()
        .filter(|l| l.starts_with("skein_duplicate_batches_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Every seq of `phase` arrived exactly once (after the agent had time to send again).
fn assert_once(c: &Collector, service: &str, phase: &str, n: u64) {
    let got = arrived(c, service, phase);
    let twice: Vec<(&u64, &usize)> = got.iter().filter(|(_, k)| **k != 1).collect();
    assert!(
        twice.is_empty(),
        "{phase}: stored more than once: {twice:?}"
    );
    assert_eq!(got.len() as u64, n, "{phase}: lines stored");
}

#[test]
fn batches_sent_again_after_a_lost_cursor_are_stored_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let collector = Collector::start(&[]);
    let a_path = dir.join("alpha.log");
    let mut agent = Agent::start(dir, &config(dir, &collector));
    append(&a_path, &alpha("lost", 0, 300));
    wait_all(&collector, "alpha", "lost", 0..300);
    agent.terminate();
    // What a kill -9 does at worst: every acknowledgement since the last save is forgotten.
    // Here all of them: the buffer's cursor goes back to its first batch.
    std::fs::write(dir.join("agent-data/buffer/cursor"), "0").unwrap();
    assert_eq!(duplicate_batches(&collector), 0.0);
    agent.restart();
    assert!(
        wait_for(|| duplicate_batches(&collector) >= 3.0, ARRIVAL),
        "the agent did not send its batches again: {} duplicates\n{}",
        duplicate_batches(&collector),
        agent.output()
    );
    // Let the rest of the resent batches arrive too.
    std::thread::sleep(Duration::from_secs(2));
    assert_once(&collector, "alpha", "lost", 300);
}

#[test]
fn lines_survive_kill_9_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let collector = Collector::start(&[]);
    let a_path = dir.join("alpha.log");
    let mut agent = Agent::start(dir, &config(dir, &collector));
    // Each round has its own phase, so that the duplicates a kill may cause (everything sent
    // since the last save of the buffer cursor, at most a second's worth) stay within one
    // search page.
    for round in 0..3 {
        let phase = format!("k{round}");
        append(&a_path, &alpha(&phase, 0, 150));
        std::thread::sleep(Duration::from_millis(150));
        agent.kill9();
        append(&a_path, &alpha(&phase, 150, 50));
        agent.restart();
    }
    for round in 0..3 {
        wait_all(&collector, "alpha", &format!("k{round}"), 0..200);
    }
    std::thread::sleep(Duration::from_secs(2));
    for round in 0..3 {
        assert_once(&collector, "alpha", &format!("k{round}"), 200);
    }
}

#[test]
fn a_silent_agent_turns_down_and_a_record_too_large_alone_is_dropped_not_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let collector = Collector::start(&["--max-request-bytes", "4096"]);
    // Lines each over the collector's 4 KiB body limit on their own: 413. The agent splits a
    // refused batch down to single records; a record still refused alone is dropped, counted.
    let big: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"msg":"{}","seq":{i},"phase":"big"}}"#,
                "x".repeat(5000)
            )
        })
        .collect();
    append(&dir.join("alpha.log"), &big);
    let toml = config(dir, &collector)
        .replace("max_records = 100", "max_records = 10")
        .replace("[collector]", "[collector]\ncompression = \"none\"");
    let mut agent = Agent::start(dir, &toml);
    assert!(
        wait_for(
            || agent.counter("skein_agent_records_rejected_total{signal=\"logs\"}") >= 20.0,
            Duration::from_secs(30)
        ),
        "rejected batches are counted:\n{}",
        agent.metrics()
    );
    // Small lines after them still get through: the refused records did not block the queue.
    append(&dir.join("alpha.log"), &alpha("after", 0, 5));
    wait_all(&collector, "alpha", "after", 0..5);
    assert!(wait_for(
        || {
            let (_, a) = get_json(&format!("{}/api/v1/agents", collector.api_base()));
            a["agents"][0]["state"] == "up"
        },
        Duration::from_secs(10)
    ));
    agent.kill9();
    let (_, a) = get_json(&format!("{}/api/v1/agents", collector.api_base()));
    assert_eq!(a["agents"][0]["state"], "up");
    // down_after defaults to 15 s.
    assert!(
        wait_for(
            || {
                let (_, a) = get_json(&format!("{}/api/v1/agents", collector.api_base()));
                a["agents"][0]["state"] == "down"
            },
            Duration::from_secs(25)
        ),
        "a silent agent is marked down"
    );
    // The same state in /api/v1/hosts and in the agent's skein.agent.up series: 1 while its
    // heartbeats came, then 0.
    let (_, h) = get_json(&format!("{}/api/v1/hosts", collector.api_base()));
    assert_eq!(h["hosts"][0]["state"], "down", "{h}");
    assert!(
        !h["hosts"][0]["agents"].as_array().unwrap().is_empty(),
        "{h}"
    );
    let start = (common::now_nanos() - 300_000_000_000).to_string();
    let up_series = || {
        let url = url_with(
            &collector.api_base(),
            "/api/v1/metrics/query",
            &[
                ("name", "skein.agent.up"),
                ("agg", "max"),
                ("step", "1s"),
                ("start", &start),
            ],
        );
        let (status, v) = get_json(&url);
        assert_eq!(status, 200, "{v}");
        v["series"][0]["points"]
            .as_array()
            .map(|p| {
                p.iter()
                    .map(|p| p[1].as_f64().unwrap())
                    .collect::<Vec<f64>>()
            })
            .unwrap_or_default()
    };
    assert!(
        wait_for(
            || {
                let v = up_series();
                v.contains(&1.0) && v.last() == Some(&0.0)
            },
            Duration::from_secs(15)
        ),
        "skein.agent.up goes from 1 to 0: {:?}",
        up_series()
    );
}

#[test]
fn check_config_exits_0_or_2_naming_file_key_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.toml");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("agent.example.toml"),
        &good,
    )
    .unwrap();
    let run = |p: &Path| {
        let mut cmd = std::process::Command::new(common::SKEIN);
        cmd.args(["agent", "--check-config", "--config"]).arg(p);
        for v in common::SKEIN_ENV {
            cmd.env_remove(v);
        }
        cmd.output().unwrap()
    };
    let out = run(&good);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[buffer]\nwhen_full = \"explode\"\n").unwrap();
    let out = run(&bad);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("when_full") && err.contains("explode"),
        "{err}"
    );
    std::fs::write(
        &bad,
        "[[source]]\nname = \"x\"\npaths = [\"/a\"]\nfavourite = 1\n",
    )
    .unwrap();
    let out = run(&bad);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("favourite"));
}
