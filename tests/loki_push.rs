//! Loki's push API end to end, over a real collector process: pushes in protobuf + snappy and
//! in JSON carrying a request ID (as a stream label, as structured metadata) are found through
//! Skein's own API, by that ID (`/api/v1/traces/{id}`) and by search (`/api/v1/logs`); and
//! the real `python-logging-loki` package (PyPI, installed with pip when missing) ships lines
//! with the ingest token as its basic-auth password, found by their request ID.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Collector, client, get_json, now_nanos, unique, url_with, wait_for};
use prost::Message;
use serde_json::Value;
use skein_model::lokipb::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, Timestamp};
use std::process::Command;
use std::time::Duration;

const TOKEN: &str = "loki-token";

/// How long a pushed line may take to be searchable (the index commits every second).
const FOUND_WITHIN: Duration = Duration::from_secs(30);

fn push_url(c: &Collector) -> String {
    format!("{}/loki/api/v1/push", c.http_base())
}

/// The records that `GET /api/v1/traces/{key}` answers once it has at least `n` logs.
fn logs_by_key(c: &Collector, key: &str, n: usize) -> Vec<Value> {
    let url = format!("{}/api/v1/traces/{key}", c.api_base());
    let mut last = Value::Null;
    let found = wait_for(
        || {
            let (status, body) = get_json(&url);
            let enough = status == 200 && body["logs"].as_array().is_some_and(|l| l.len() >= n);
            last = body;
            enough
        },
        FOUND_WITHIN,
    );
    assert!(found, "GET {url}: not {n} logs; last answer: {last:#}");
    last["logs"].as_array().unwrap().clone()
}

/// The bodies of the logs that `GET /api/v1/logs` finds for `q` in `service`, once there are
/// `n`.
fn search(c: &Collector, service: &str, q: &str, n: usize) -> Vec<String> {
    let url = url_with(
        &c.api_base(),
        "/api/v1/logs",
        &[("q", q), ("service", service)],
    );
    let mut last = Value::Null;
    let found = wait_for(
        || {
            let (status, body) = get_json(&url);
            let enough = status == 200 && body["logs"].as_array().is_some_and(|l| l.len() >= n);
            last = body;
            enough
        },
        FOUND_WITHIN,
    );
    assert!(found, "GET {url}: not {n} logs; last answer: {last:#}");
    common::strings(&last["logs"], "body")
}

fn entry(ns: u64, line: &str, meta: &[(&str, &str)]) -> EntryAdapter {
    EntryAdapter {
        timestamp: Some(Timestamp {
            seconds: (ns / 1_000_000_000) as i64,
            nanos: (ns % 1_000_000_000) as i32,
        }),
        line: line.into(),
        structured_metadata: meta
            .iter()
            .map(|(n, v)| LabelPairAdapter {
                name: (*n).into(),
                value: (*v).into(),
            })
            .collect(),
    }
}

#[test]
fn protobuf_and_json_pushes_are_found_by_request_id_and_search() {
    let c = Collector::start(&["--ingest-token", TOKEN]);
    let http = client();
    let id = unique();
    let rid = format!("req-loki-{id}");
    let now = now_nanos();

    // Protobuf + snappy, as Promtail and Alloy send it: the request ID is a stream label.
    let req = PushRequest {
        streams: vec![StreamAdapter {
            labels: format!(
                r#"{{job="promtail", service_name="cart-{id}", host="node-1", request_id="{rid}", level="warn"}}"#
            ),
            entries: vec![
                entry(now, &format!("cart opened proto{id}"), &[]),
                entry(
                    now + 1,
                    &format!("cart failed proto{id}"),
                    &[("level", "error"), ("user", "u-9")],
                ),
            ],
            hash: 0,
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let resp = http
        .post(push_url(&c))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-protobuf")
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204, "{}", resp.text().unwrap());

    // The same without the token is refused, and stores nothing more.
    let resp = http
        .post(push_url(&c))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    // JSON, as Fluent Bit and Vector send it: the request ID is structured metadata.
    let json = serde_json::json!({"streams": [{
        "stream": {"app": format!("pay-{id}"), "instance": "10.1.1.1:80"},
        "values": [[(now + 2).to_string(), format!("payment declined json{id}"),
                    {"request_id": rid, "level": "error"}]],
    }]});
    let resp = http
        .post(push_url(&c))
        .bearer_auth(TOKEN)
        .json(&json)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204, "{}", resp.text().unwrap());

    // A malformed push gets a 400 a person can act on.
    let resp = http
        .post(push_url(&c))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"streams":[{"stream":{"a":"b"},"values":[["yesterday","x"]]}]}"#)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let err: Value = resp.json().unwrap();
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("stream 0, entry 0: timestamp"),
        "{err}"
    );

    // All three lines under the one request ID, across both services.
    let logs = logs_by_key(&c, &rid, 3);
    assert_eq!(logs.len(), 3, "{logs:#?}");
    let find = |word: &str| {
        logs.iter()
            .find(|l| l["body"].as_str().unwrap().starts_with(word))
            .unwrap_or_else(|| panic!("no '{word}' line in {logs:#?}"))
    };
    let opened = find("cart opened");
    assert_eq!(opened["service"], format!("cart-{id}"));
    assert_eq!(opened["host"], "node-1");
    assert_eq!(opened["severity_text"], "warn");
    assert_eq!(opened["time_unix_nano"], now);
    let failed = find("cart failed");
    assert_eq!(failed["severity_text"], "error");
    assert_eq!(failed["attributes"]["user"], "u-9");
    let declined = find("payment declined");
    assert_eq!(declined["service"], format!("pay-{id}"));
    assert_eq!(declined["host"], "10.1.1.1:80");
    assert_eq!(declined["attributes"]["request_id"], rid.as_str());

    // And by search, per service.
    let got = search(&c, &format!("cart-{id}"), &format!("proto{id}"), 2);
    assert_eq!(got.len(), 2, "{got:?}");
    let got = search(&c, &format!("pay-{id}"), &format!("json{id}"), 1);
    assert_eq!(got, vec![format!("payment declined json{id}")]);
}

/// The Python side of the test: the package as its README shows it (`version="1"`), the
/// ingest token as the basic-auth password; exits 1 when the handler reported a failed push.
const PYTHON: &str = r#"
import logging, sys
import logging_loki

url, token, rid, service = sys.argv[1:5]
handler = logging_loki.LokiHandler(
    url=url, tags={"service": service}, auth=("skein", token), version="1")
failed = []
report = handler.handleError
def on_error(record):
    failed.append(record)
    report(record)
handler.handleError = on_error
log = logging.getLogger("shop")
log.setLevel(logging.INFO)
log.addHandler(handler)
log.info("order placed py-%s", rid, extra={"tags": {"request_id": rid}})
log.warning("stock low py-%s", rid, extra={"tags": {"request_id": rid}})
sys.exit(1 if failed else 0)
"#;

/// Imports `logging_loki`, installing the package with pip first when it is missing.
fn python_logging_loki() {
    let imports = || {
        Command::new("python3")
            .args(["-c", "import logging_loki"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if imports() {
        return;
    }
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--break-system-packages",
            "python-logging-loki",
        ])
        .output()
        .expect("python3 is installed");
    assert!(
        out.status.success() && imports(),
        "python3 -m pip install python-logging-loki failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn python_logging_loki_ships_lines_found_by_request_id() {
    python_logging_loki();
    let c = Collector::start(&["--ingest-token", TOKEN]);
    let id = unique();
    let rid = format!("req-py-{id}");
    let service = format!("py-shop-{id}");
    let run = |token: &str| {
        Command::new("python3")
            .args(["-c", PYTHON, &push_url(&c), token, &rid, &service])
            .output()
            .expect("python3 runs")
    };
    // A wrong token: the package reports the refusal.
    let out = run("wrong");
    assert!(
        !out.status.success(),
        "a push with a wrong token was not refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(TOKEN);
    assert!(
        out.status.success(),
        "python-logging-loki failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = logs_by_key(&c, &rid, 2);
    assert_eq!(logs.len(), 2, "{logs:#?}");
    let mut bodies: Vec<&str> = logs.iter().map(|l| l["body"].as_str().unwrap()).collect();
    bodies.sort();
    assert_eq!(
        bodies,
        vec![
            format!("order placed py-{rid}").as_str(),
            format!("stock low py-{rid}").as_str()
        ]
    );
    for l in &logs {
        assert_eq!(l["service"], service.as_str(), "{l}");
        assert_eq!(l["resource"]["logger"], "shop", "{l}");
    }
    let warn = logs
        .iter()
        .find(|l| l["body"].as_str().unwrap().starts_with("stock low"))
        .unwrap();
    assert_eq!(warn["severity_text"], "warning");
    assert_eq!(warn["severity_number"], 13);
    // The same lines through the Loki query API, by the request ID label.
    let url = common::url_with(
        &c.api_base(),
        "/loki/api/v1/query_range",
        &[(
            "query",
            &format!("{{service=\"{service}\"}} | request_id=\"{rid}\""),
        )],
    );
    let (status, v) = common::get_json(&url);
    assert_eq!(status, 200, "{v}");
    let mut lines: Vec<String> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["values"].as_array().unwrap().clone())
        .map(|e| e[1].as_str().unwrap().to_string())
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            format!("order placed py-{rid}"),
            format!("stock low py-{rid}")
        ],
        "{v}"
    );
    let levels: Vec<&str> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stream"]["level"].as_str().unwrap())
        .collect();
    assert!(levels.contains(&"warn"), "{v}");
}
