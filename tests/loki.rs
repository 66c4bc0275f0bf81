//! Grafana's Loki data source against a real collector: logs sent over OTLP/HTTP, then the
//! requests Grafana makes, with its query strings (from grafana/grafana's Loki client:
//! `pkg/tsdb/loki/api.go` sends `query`, `direction`, `limit`, `start`/`end` in ns and `step`
//! as `<n>ms`; the health check is the instant query `vector(1)+vector(1)` at `time`; the log
//! volume is `sum by (level, detected_level) (count_over_time(<expr> | drop __error__[…]))`;
//! the label browser calls `labels`, `label/{name}/values` and `series`; query hints call
//! `index/stats`; live tail opens the websocket), each answer checked for the fields Grafana
//! reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Collector, client, get_json_with, kv, log_record, logs_request, now_nanos, post, unique,
    url_with, wait_for,
};
use futures::StreamExt;
use prost::Message;
use serde_json::Value;
use std::time::Duration;

const TOKEN: &str = "grafana-loki";

fn grafana(c: &Collector, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    get_json_with(
        &client(),
        &url_with(&c.api_base(), path, params),
        Some(TOKEN),
    )
}

/// A line to send: body, OTLP severity number, attributes.
type Line<'a> = (&'a str, i32, Vec<(&'a str, &'a str)>);

fn send(c: &Collector, service: &str, lines: Vec<Line<'_>>) {
    let now = now_nanos();
    let records = lines
        .into_iter()
        .enumerate()
        .map(|(i, (body, sev, attrs))| {
            log_record(
                body,
                sev,
                now - 1_000_000 * (10 - i as u64),
                attrs.into_iter().map(|(k, v)| kv(k, v)).collect(),
            )
        })
        .collect();
    let body = logs_request(service, records).encode_to_vec();
    let (status, bytes) = post(
        &client(),
        &format!("{}/v1/logs", c.http_base()),
        "application/x-protobuf",
        None,
        body,
    )
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
}

/// Every `(stream, line)` of a streams answer.
fn lines(v: &Value) -> Vec<(Value, String)> {
    assert_eq!(v["status"], "success", "{v}");
    assert_eq!(v["data"]["resultType"], "streams", "{v}");
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().unwrap() {
        for e in s["values"].as_array().unwrap() {
            assert!(
                e[0].as_str().unwrap().parse::<u64>().is_ok(),
                "ns as a string: {e}"
            );
            out.push((s["stream"].clone(), e[1].as_str().unwrap().to_string()));
        }
    }
    out
}

#[test]
fn grafanas_loki_requests_get_the_shapes_it_parses() {
    let c = Collector::start(&["--query-token", TOKEN, "--commit-interval-ms", "100"]);
    let rid = format!("r-{}", unique());
    let svc = format!("payment-{}", unique());
    send(
        &c,
        &svc,
        vec![
            ("charging card", 9, vec![("request_id", &rid)]),
            (
                "card declined by bank",
                17,
                vec![("request_id", &rid), ("user", "u1")],
            ),
            ("{\"status\":503,\"path\":\"/pay\"}", 13, vec![]),
            ("health ok", 5, vec![]),
        ],
    );
    let start = (now_nanos() - 3_600_000_000_000).to_string();
    let end = (now_nanos() + 60_000_000_000).to_string();
    let range = |q: &str| {
        vec![
            ("query", q.to_string()),
            ("direction", "backward".to_string()),
            ("limit", "1000".to_string()),
            ("start", start.clone()),
            ("end", end.clone()),
            ("step", "60000ms".to_string()),
        ]
    };
    let ask = |path: &str, params: &[(&str, String)]| {
        let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        grafana(&c, path, &p)
    };
    let sel = format!("{{service_name=\"{svc}\"}}");
    assert!(
        wait_for(
            || {
                let (s, v) = ask("/loki/api/v1/query_range", &range(&sel));
                s == 200 && lines(&v).len() == 4
            },
            Duration::from_secs(30)
        ),
        "the 4 lines never became searchable"
    );

    // Without the token: 401.
    let (s, _) = get_json_with(
        &client(),
        &url_with(&c.api_base(), "/loki/api/v1/labels", &[]),
        None,
    );
    assert_eq!(s, 401);

    // The health check: an instant query at Unix 4 s (Grafana sends ns).
    let (s, v) = grafana(
        &c,
        "/loki/api/v1/query",
        &[
            ("query", "vector(1)+vector(1)"),
            ("direction", "backward"),
            ("time", "4000000000"),
        ],
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"]["result"][0]["value"][1], "2");

    // The request ID as a label filter, and the trace-to-logs form with a line filter.
    let (_, v) = ask(
        "/loki/api/v1/query_range",
        &range(&format!("{sel} | request_id=\"{rid}\"")),
    );
    let l = lines(&v);
    assert_eq!(l.len(), 2, "{v}");
    assert!(l.iter().all(|(s, _)| s["request_id"] == rid.as_str()));
    assert_eq!(l[0].1, "card declined by bank", "newest first");
    assert_eq!(l[0].0["level"], "error");
    assert_eq!(l[0].0["service"], svc.as_str());
    let (_, v) = ask(
        "/loki/api/v1/query_range",
        &range(&format!("{sel} |= \"declined\" | user=\"u1\"")),
    );
    assert_eq!(lines(&v).len(), 1, "{v}");
    let (_, v) = ask(
        "/loki/api/v1/query_range",
        &range(&format!(
            "{sel} | json | status >= 500 | line_format \"{{{{.path}}}} failed\""
        )),
    );
    let l = lines(&v);
    assert_eq!(l.len(), 1, "{v}");
    assert_eq!(l[0].1, "/pay failed");

    // The log volume Explore draws above the lines.
    let (s, v) = ask(
        "/loki/api/v1/query_range",
        &range(&format!(
            "sum by (level, detected_level) (count_over_time({sel} | drop __error__[1m]))"
        )),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    let levels: Vec<&str> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metric"]["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, vec!["debug", "error", "info", "warn"], "{v}");
    for r in v["data"]["result"].as_array().unwrap() {
        let total: f64 = r["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[1].as_str().unwrap().parse::<f64>().unwrap())
            .fold(0.0, f64::max);
        assert_eq!(total, 1.0, "one line per level at its step: {r}");
        assert!(r["values"][0][0].is_number(), "seconds as a number: {r}");
    }

    // The label browser and query hints.
    let (_, v) = ask(
        "/loki/api/v1/labels",
        &[("start", start.clone()), ("end", end.clone())],
    );
    let names: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"service") && names.contains(&"level"),
        "{v}"
    );
    let (_, v) = ask(
        "/loki/api/v1/label/service/values",
        &[("start", start.clone()), ("end", end.clone())],
    );
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == svc.as_str()),
        "{v}"
    );
    let (_, v) = ask(
        "/loki/api/v1/series",
        &[
            ("match[]", sel.clone()),
            ("start", start.clone()),
            ("end", end.clone()),
        ],
    );
    assert_eq!(
        v["data"].as_array().unwrap().len(),
        4,
        "one stream per level: {v}"
    );
    let (_, v) = ask(
        "/loki/api/v1/index/stats",
        &[
            ("query", sel.clone()),
            ("start", start.clone()),
            ("end", end.clone()),
        ],
    );
    assert_eq!(v["entries"], 4, "{v}");
    let (_, v) = ask(
        "/loki/api/v1/index/volume",
        &[
            ("query", sel.clone()),
            ("start", start.clone()),
            ("end", end.clone()),
        ],
    );
    assert_eq!(
        v["data"]["result"][0]["metric"]["service"],
        svc.as_str(),
        "{v}"
    );
    let (_, v) = ask("/loki/api/v1/status/buildinfo", &[]);
    assert!(v["version"].as_str().unwrap().starts_with('3'), "{v}");

    // Errors Grafana shows: JSON with a message.
    let (s, v) = ask("/loki/api/v1/query_range", &range("{service_name=\"x\""));
    assert_eq!(s, 400);
    assert!(
        v["message"].as_str().unwrap().contains("parse error"),
        "{v}"
    );

    // Live tail: history first, then a line sent after the socket opened.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ws_url = url_with(
        &c.api_base().replacen("http", "ws", 1),
        "/loki/api/v1/tail",
        &[("query", &sel), ("limit", "10"), ("start", &start)],
    );
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        ws_url.as_str(),
    )
    .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let got = rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let mut seen: Vec<String> = Vec::new();
        let mut sent = false;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !seen.iter().any(|l| l == "arrived while tailing") {
            let msg = tokio::time::timeout_at(deadline, ws.next())
                .await
                .expect("the tail sent the new line in time")
                .expect("the socket stays open")
                .unwrap();
            let text = msg.into_text().unwrap();
            let v: Value = serde_json::from_str(&text).unwrap();
            for s in v["streams"].as_array().unwrap() {
                for e in s["values"].as_array().unwrap() {
                    seen.push(e[1].as_str().unwrap().to_string());
                }
            }
            if !sent && seen.len() >= 4 {
                sent = true;
                let c2 = c.http_base();
                let svc2 = svc.clone();
                tokio::task::spawn_blocking(move || {
                    let records = vec![log_record("arrived while tailing", 9, now_nanos(), vec![])];
                    let body = logs_request(&svc2, records).encode_to_vec();
                    post(
                        &client(),
                        &format!("{c2}/v1/logs"),
                        "application/x-protobuf",
                        None,
                        body,
                    )
                    .unwrap()
                })
                .await
                .unwrap();
            }
        }
        let _ = ws.close(None).await;
        seen
    });
    assert_eq!(
        got.len(),
        5,
        "4 lines of history, then the new one: {got:?}"
    );
}
