//! The `skein` command line against a running collector: `skein trace`, `skein search`, their
//! exit codes and `--json`, and `skein collector` refusing bad configuration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Collector, SKEIN, client, get_json, kv, log_record, logs_request, new_trace_id, now_nanos,
    post, read_all, span, traces_request, unique, url_with, wait_for,
};
use prost::Message;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a finished command gave.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `skein <args>` and waits (at most 60 s) for it to exit.
fn skein(args: &[&str]) -> Run {
    let mut cmd = Command::new(SKEIN);
    cmd.args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in common::SKEIN_ENV {
        cmd.env_remove(v);
    }
    let mut child = cmd.spawn().expect("spawn skein");
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || read_all(out));
    let err = std::thread::spawn(move || read_all(err));
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "skein {args:?} did not exit within 60 s; stderr:\n{}",
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// One request: a gateway span with the request ID, a payment child span, a payment log tied
/// to the child span and a payment log tied only by `x-request-id`.
struct Story {
    trace_id: String,
    request_id: String,
    timeout_log: String,
    span_log: String,
}

fn send_story(c: &Collector) -> Story {
    let tag = unique();
    let request_id = format!("req-cli-{tag}");
    let trace = new_trace_id();
    let now = now_nanos();
    let http = client();
    let mut root = span(&trace, &[0x11; 8], &[], "POST /orders", now);
    root.attributes.push(kv("request_id", &request_id));
    root.end_time_unix_nano = now + 9_000_000;
    let child = span(
        &trace,
        &[0x22; 8],
        &[0x11; 8],
        "charge card",
        now + 1_000_000,
    );
    for (svc, s) in [("gateway", root), ("payment", child)] {
        let (status, _) = post(
            &http,
            &format!("{}/v1/traces", c.http_base()),
            "application/x-protobuf",
            None,
            traces_request(svc, vec![s]).encode_to_vec(),
        )
        .expect("post spans");
        assert_eq!(status, 200);
    }
    let timeout_log = format!("payment timeout talking to bank {tag}");
    let span_log = format!("charging card {tag}");
    let mut tied = log_record(&span_log, 9, now + 1_500_000, vec![]);
    tied.trace_id = trace.to_vec();
    tied.span_id = vec![0x22; 8];
    let loose = log_record(
        &timeout_log,
        17,
        now + 2_000_000,
        vec![kv("x-request-id", &request_id)],
    );
    let (status, _) = post(
        &http,
        &format!("{}/v1/logs", c.http_base()),
        "application/x-protobuf",
        None,
        logs_request("payment", vec![tied, loose]).encode_to_vec(),
    )
    .expect("post logs");
    assert_eq!(status, 200);

    let url = format!("{}/api/v1/traces/{request_id}", c.api_base());
    let mut last = Value::Null;
    let ready = wait_for(
        || {
            let (s, b) = get_json(&url);
            let ok = s == 200
                && b["spans"].as_array().is_some_and(|a| a.len() == 2)
                && b["logs"].as_array().is_some_and(|a| a.len() == 2);
            last = b;
            ok
        },
        Duration::from_secs(20),
    );
    assert!(ready, "the story is not searchable: {last}");
    Story {
        trace_id: hex(&trace),
        request_id,
        timeout_log,
        span_log,
    }
}

fn hex(b: &[u8]) -> String {
    common::hex(b)
}

#[test]
fn trace_and_search_commands_against_a_collector() {
    let c = Collector::start(&["--commit-interval-ms", "100"]);
    let story = send_story(&c);
    let api = c.api_base();

    // skein trace, by request ID and by trace ID.
    for key in [&story.request_id, &story.trace_id] {
        let r = skein(&["trace", key, "--api", &api, "--color", "never"]);
        assert_eq!(r.code, Some(0), "skein trace {key}: {r}");
        let out = &r.stdout;
        assert!(out.contains(&story.trace_id), "shows the trace id: {r}");
        let root = out
            .find("POST /orders")
            .unwrap_or_else(|| panic!("root span: {r}"));
        let child = out
            .find("charge card")
            .unwrap_or_else(|| panic!("child span: {r}"));
        let log = out
            .find(&story.timeout_log)
            .unwrap_or_else(|| panic!("log body: {r}"));
        assert!(out.contains(&story.span_log), "span's log: {r}");
        assert!(root < child, "the root comes before its child: {r}");
        assert!(root < log, "the log is shown under the trace: {r}");
        assert!(
            !out.contains('\x1b'),
            "--color never prints no escapes: {r}"
        );
    }

    // Unknown key: 1. Unreachable API: 2.
    let r = skein(&[
        "trace",
        &format!("req-nobody-{}", unique()),
        "--api",
        &api,
        "--color",
        "never",
    ]);
    assert_eq!(r.code, Some(1), "unknown key: {r}");
    let r = skein(&[
        "trace",
        &story.request_id,
        "--api",
        "http://127.0.0.1:1",
        "--color",
        "never",
    ]);
    assert_eq!(r.code, Some(2), "unreachable API: {r}");
    assert!(!r.stderr.trim().is_empty(), "says why: {r}");

    // skein search.
    let r = skein(&[
        "search",
        "timeout service:payment",
        "--since",
        "15m",
        "--api",
        &api,
        "--color",
        "never",
    ]);
    assert_eq!(r.code, Some(0), "search: {r}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one matching log: {r}");
    assert!(lines[0].contains(&story.timeout_log), "{r}");
    assert!(lines[0].contains("payment"), "{r}");
    assert!(lines[0].contains("ERROR"), "{r}");
    let r = skein(&[
        "search",
        &format!("nomatch{}", unique().replace('x', "")),
        "--since",
        "15m",
        "--api",
        &api,
        "--color",
        "never",
    ]);
    assert_eq!(r.code, Some(1), "search without a match: {r}");
    assert!(r.stdout.trim().is_empty(), "{r}");
    let r = skein(&["search", "foo:(", "--api", &api]);
    assert_eq!(r.code, Some(2), "a bad query is an error: {r}");
    assert!(r.stderr.contains("foo:("), "quotes the query: {r}");

    // --json prints the API's answer.
    let r = skein(&["trace", &story.request_id, "--api", &api, "--json"]);
    assert_eq!(r.code, Some(0), "{r}");
    let printed: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r}"));
    let (status, answer) = get_json(&format!("{api}/api/v1/traces/{}", story.request_id));
    assert_eq!(status, 200);
    assert_eq!(printed, answer, "skein trace --json differs from the API");

    let r = skein(&["search", "timeout service:payment", "--api", &api, "--json"]);
    assert_eq!(r.code, Some(0), "{r}");
    let printed: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r}"));
    let (status, answer) = get_json(&url_with(
        &api,
        "/api/v1/logs",
        &[("q", "timeout service:payment"), ("limit", "100")],
    ));
    assert_eq!(status, 200);
    assert_eq!(printed, answer, "skein search --json differs from the API");
    assert_eq!(printed["logs"].as_array().map(Vec::len), Some(1));

    // The collector counted what it received.
    let resp = client()
        .get(format!("{api}/metrics"))
        .send()
        .expect("metrics");
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().expect("metrics text");
    let line = text
        .lines()
        .find(|l| l.starts_with("skein_received_records_total{signal=\"logs\"}"))
        .unwrap_or_else(|| panic!("no received logs counter in:\n{text}"));
    let n: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {line}"));
    assert!(n >= 2.0, "{line}");
}

#[test]
fn collector_refuses_bad_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8 path");

    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[wal]\nsync = \"sometimes\"\n").expect("write config");
    let path = file.to_str().expect("utf-8 path");
    let r = skein(&[
        "collector",
        "--config",
        path,
        "--data-dir",
        data,
        "--otlp-http",
        "127.0.0.1:0",
        "--otlp-grpc",
        "127.0.0.1:0",
        "--api",
        "127.0.0.1:0",
    ]);
    assert_eq!(r.code, Some(2), "bad config file: {r}");
    assert!(r.stderr.contains(path), "names the file: {r}");
    assert!(
        r.stderr.contains("sync") && r.stderr.contains("sometimes"),
        "names the key and value: {r}"
    );

    let r = skein(&[
        "collector",
        "--data-dir",
        data,
        "--otlp-http",
        "127.0.0.1:0",
        "--otlp-grpc",
        "127.0.0.1:0",
        "--api",
        "not-an-address",
    ]);
    assert_eq!(r.code, Some(2), "bad --api: {r}");
    assert!(
        r.stderr.contains("listen.api") && r.stderr.contains("not-an-address"),
        "names the key and value: {r}"
    );

    let file = dir.path().join("zero.toml");
    std::fs::write(&file, "[index]\ncommit_interval_ms = 0\n").expect("write config");
    let path = file.to_str().expect("utf-8 path");
    let r = skein(&["collector", "--config", path, "--data-dir", data]);
    assert_eq!(r.code, Some(2), "zero commit interval: {r}");
    assert!(
        r.stderr.contains(path) && r.stderr.contains("index.commit_interval_ms"),
        "names the file and key: {r}"
    );

    let file = dir.path().join("unknown.toml");
    std::fs::write(&file, "[index]\ncommit_every = 3\n").expect("write config");
    let path = file.to_str().expect("utf-8 path");
    let r = skein(&["collector", "--config", path, "--data-dir", data]);
    assert_eq!(r.code, Some(2), "unknown key: {r}");
    assert!(
        r.stderr.contains(path) && r.stderr.contains("commit_every"),
        "names the file and key: {r}"
    );

    let r = skein(&[
        "collector",
        "--config",
        dir.path().join("missing.toml").to_str().expect("utf-8"),
        "--data-dir",
        data,
    ]);
    assert_eq!(r.code, Some(2), "missing config file: {r}");
    assert!(r.stderr.contains("missing.toml"), "names the file: {r}");
}
