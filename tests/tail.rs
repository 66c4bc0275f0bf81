//! End-to-end: the live tail (`GET /api/v1/logs/tail`, `skein tail`) over a real collector.
//! History then new lines in arrival order; a reconnect with the last position goes on
//! exactly after it, also across a collector restart; filters; bad cursors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Collector, SKEIN, SKEIN_ENV, client, get_json, log_record, logs_request, now_nanos, post,
};
use prost::Message;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn send(c: &Collector, service: &str, bodies: &[&str]) {
    let now = now_nanos();
    let records = bodies
        .iter()
        .map(|b| log_record(b, 9, now, vec![]))
        .collect();
    let (status, _) = post(
        &client(),
        &format!("{}/v1/logs", c.http_base()),
        "application/x-protobuf",
        None,
        logs_request(service, records).encode_to_vec(),
    )
    .unwrap();
    assert_eq!(status, 200);
}

fn searchable(c: &Collector, body: &str) {
    let ok = common::wait_for(
        || {
            let (_, v) = get_json(&common::url_with(
                &c.api_base(),
                "/api/v1/logs",
                &[("q", &format!("\"{body}\""))],
            ));
            !v["logs"].as_array().unwrap().is_empty()
        },
        Duration::from_secs(20),
    );
    assert!(ok, "{body} never searchable");
}

/// Reads SSE events from the tail endpoint until `n` log events or the timeout:
/// (position, body) pairs.
fn read_events(url: &str, n: usize, timeout: Duration) -> Vec<(u64, String)> {
    let http = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .unwrap();
    let mut resp = http.get(url).send().unwrap();
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < end {
        match resp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => text.push_str(&String::from_utf8_lossy(&buf[..k])),
        }
        while let Some(i) = text.find("\n\n") {
            let block: String = text.drain(..i + 2).collect();
            let mut id = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse::<u64>().ok();
                }
                if let Some(v) = line.strip_prefix("data:") {
                    data = serde_json::from_str::<Value>(v.trim()).ok();
                }
            }
            if let (Some(id), Some(d)) = (id, data) {
                out.push((id, d["body"].as_str().unwrap().to_string()));
            }
        }
    }
    out
}

#[test]
fn tail_sends_history_then_new_lines_and_resumes_without_gaps_or_repeats() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Collector::start_in(tmp.path(), &[]);
    send(&c, "a", &["l0", "l1", "l2"]);
    searchable(&c, "l2");

    // skein tail: the last 2 lines, then what arrives, until 5 lines.
    let mut cmd = Command::new(SKEIN);
    for v in SKEIN_ENV {
        cmd.env_remove(v);
    }
    let mut child = cmd
        .args([
            "tail",
            "--json",
            "--back",
            "2",
            "-n",
            "5",
            "--api",
            &c.api_base(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines: Vec<Value> = Vec::new();
    let first = rx.recv_timeout(Duration::from_secs(20)).expect("history");
    lines.push(serde_json::from_str(&first).unwrap());
    lines.push(serde_json::from_str(&rx.recv_timeout(Duration::from_secs(5)).unwrap()).unwrap());
    send(&c, "a", &["l3", "l4"]);
    send(&c, "a", &["l5"]);
    for _ in 0..3 {
        let l = rx.recv_timeout(Duration::from_secs(20)).expect("new line");
        lines.push(serde_json::from_str(&l).unwrap());
    }
    let status = child.wait().unwrap();
    assert!(status.success());
    let bodies: Vec<&str> = lines
        .iter()
        .map(|l| l["record"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["l1", "l2", "l3", "l4", "l5"]);
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // Reconnect after l3: exactly l4 and l5.
    let url = |c: &Collector, cursor: u64, extra: &str| {
        format!("{}/api/v1/logs/tail?cursor={cursor}{extra}", c.api_base())
    };
    let got = read_events(&url(&c, seqs[2], ""), 2, Duration::from_secs(10));
    assert_eq!(
        got,
        vec![(seqs[3], "l4".to_string()), (seqs[4], "l5".to_string())]
    );

    // Across a restart positions go on: after l5 comes exactly l6.
    assert!(c.terminate().success());
    c.restart();
    send(&c, "a", &["l6"]);
    send(&c, "b", &["other"]);
    searchable(&c, "other");
    let got = read_events(&url(&c, seqs[4], ""), 2, Duration::from_secs(10));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].1, "l6");
    assert!(got[0].0 > seqs[4]);
    // Filters apply: only service b.
    let got = read_events(&url(&c, seqs[4], "&service=b"), 1, Duration::from_secs(10));
    assert_eq!(
        got.iter().map(|g| g.1.as_str()).collect::<Vec<_>>(),
        ["other"]
    );

    // A bad cursor or back is a 400 with a message.
    for bad in ["cursor=abc", "back=5000", "severity=loud"] {
        let (status, v) = get_json(&format!("{}/api/v1/logs/tail?{bad}", c.api_base()));
        assert_eq!(status, 400, "{bad}: {v}");
        common::assert_error_body(bad, &v);
    }
}
