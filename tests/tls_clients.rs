//! End-to-end TLS on Skein's client side, over the real binary, with CAs and certificates made
//! by the test: `https://` webhook receivers get a firing rule's notification (trusted through
//! the system's roots, through the receiver's `ca_file`, or not checked at all with
//! `insecure_skip_verify`; a receiver whose certificate is not trusted gets nothing), the CLI
//! reaches a query API with mTLS on with `--client-cert`/`--client-key` and is refused without
//! them, and the TUI shows a collector's data over TLS with `--ca-file` (and, without it, says
//! to give it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pki::Pki;
use common::pty::Pty;
use common::tls::{client_tls, count_logs, https, post_protobuf, tls_config_file};
use common::{
    Collector, SKEIN, get_json, hex, kv, log_record, logs_request, new_trace_id, now_nanos,
    run_skein, span, traces_request, unique, wait_for,
};
use prost::Message;
use serde_json::Value;
use skein_tls::server::{Acceptor, Listener, ServerTls};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ARRIVAL: Duration = Duration::from_secs(60);

/// An `https://` webhook receiver on 127.0.0.1 that records every body it gets and answers
/// 200. It runs until dropped.
struct HookServer {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Value>>>,
    _rt: tokio::runtime::Runtime,
}

impl HookServer {
    fn start(cert: &Path, key: &Path) -> HookServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let tls = ServerTls {
            cert_file: cert.to_path_buf(),
            key_file: key.to_path_buf(),
            client_ca_file: None,
        };
        let sink = got.clone();
        let addr = rt.block_on(async move {
            let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = tcp.local_addr().unwrap();
            let acceptor = Acceptor::new(&tls, &[b"http/1.1"]).unwrap();
            let listener = Listener::new(tcp, Some(acceptor)).unwrap();
            let app = axum::Router::new().route(
                "/hook",
                axum::routing::post(move |body: axum::body::Bytes| {
                    let sink = sink.clone();
                    async move {
                        let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        sink.lock().unwrap().push(v);
                        "ok"
                    }
                }),
            );
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            addr
        });
        HookServer { addr, got, _rt: rt }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/hook", self.addr.port())
    }

    /// The names of the receivers whose notifications arrived, sorted, once each.
    fn receivers(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .got
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| b["receiver"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn bodies(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }
}

const ERROR_RULE: &str = r#"
[[rule]]
name = "PaymentErrors"
for = "0s"
labels = { severity = "page" }
annotations.summary = "{{ $labels.service }} logged {{ $value }} errors"
  [rule.logs]
  severity = "error"
  by = ["service"]
  window = "1m"
  when = "> 2"
"#;

#[test]
fn https_webhook_receivers_get_notifications_and_untrusted_ones_get_none() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Receiver A's certificate comes from a CA the collector has as a system root (through
    // SSL_CERT_FILE); receiver B's from another CA, known only through a receiver's ca_file.
    let system_ca = Pki::new(dir, "system");
    let private_ca = Pki::new(dir, "private");
    let (a_cert, a_key) = system_ca.issue("hooks-a", "hooks-a.test");
    let (b_cert, b_key) = private_ca.issue("hooks-b", "hooks-b.test");
    let a = HookServer::start(&a_cert, &a_key);
    let b = HookServer::start(&b_cert, &b_key);

    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("errors.toml"), ERROR_RULE).unwrap();
    let config = dir.join("collector.toml");
    let text = format!(
        r#"
[alerts]
rules = ["{rules}"]
eval_interval = "500ms"
retry_first = "200ms"
retry_max = "1s"

[[alerts.receiver]]
name = "system-roots"
url = "{a}"

[[alerts.receiver]]
name = "own-ca"
url = "{b}"
ca_file = "{private_ca}"

[[alerts.receiver]]
name = "untrusted"
url = "{b}"

[[alerts.receiver]]
name = "insecure"
url = "{b}"
insecure_skip_verify = true

[alerts.route]
receiver = "system-roots"
group_wait = "0s"
group_interval = "1s"
repeat_interval = "1h"
  # Sibling routes with the same matchers would share their groups, so each has its own.
  [[alerts.route.routes]]
  receiver = "system-roots"
  matchers = ["service=payment"]
  continue = true
  [[alerts.route.routes]]
  receiver = "own-ca"
  matchers = ["severity=page"]
  continue = true
  [[alerts.route.routes]]
  receiver = "untrusted"
  matchers = ["alertname=PaymentErrors"]
  continue = true
  [[alerts.route.routes]]
  receiver = "insecure"
  matchers = ["service=~pay.*"]
"#,
        rules = rules.display(),
        a = a.url(),
        b = b.url(),
        private_ca = private_ca.ca_file.display(),
    );
    std::fs::write(&config, text).unwrap();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let ssl_cert_file = format!("SSL_CERT_FILE={}", system_ca.ca_file.display());
    let c = Collector::start_wrapped(
        &data,
        &["--config", config.to_str().unwrap()],
        &["env", "-u", "SSL_CERT_DIR", &ssl_cert_file],
    );
    // The insecure receiver is announced loudly at start.
    assert!(
        wait_for(
            || c.output().contains("insecure_skip_verify = true"),
            ARRIVAL
        ),
        "no warning about the insecure receiver:\n{}",
        c.output()
    );

    let now = now_nanos();
    let records = (0..5)
        .map(|i| log_record(&format!("charge failed {i}"), 17, now, vec![]))
        .collect();
    let (status, _) = common::post(
        &common::client(),
        &format!("{}/v1/logs", c.http_base()),
        "application/x-protobuf",
        None,
        logs_request("payment", records).encode_to_vec(),
    )
    .unwrap();
    assert_eq!(status, 200);

    let all = wait_for(
        || a.receivers() == ["system-roots"] && b.receivers() == ["insecure", "own-ca"],
        ARRIVAL,
    );
    assert!(
        all,
        "A got {:?}, B got {:?}\n{}",
        a.receivers(),
        b.receivers(),
        c.output()
    );
    let body = &a.bodies()[0];
    assert_eq!(body["status"], "firing", "{body}");
    assert_eq!(body["alerts"][0]["labels"]["alertname"], "PaymentErrors");
    assert_eq!(body["alerts"][0]["labels"]["service"], "payment");

    // The receiver whose certificate is not trusted got nothing: its notification waits, and
    // its last error says why.
    let untrusted = wait_for(
        || {
            let (_, v) = get_json(&format!("{}/api/v1/alerts/notifications", c.api_base()));
            v["receivers"].as_array().into_iter().flatten().any(|r| {
                r["receiver"] == "untrusted"
                    && r["pending"] == 1
                    && r["sent"] == 0
                    && r["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("UnknownIssuer"))
            })
        },
        ARRIVAL,
    );
    let (_, v) = get_json(&format!("{}/api/v1/alerts/notifications", c.api_base()));
    assert!(untrusted, "{v:#}");
    assert!(!b.receivers().contains(&"untrusted".to_string()));
}

/// A collector with TLS on its listeners; with `client_ca`, clients need a certificate it
/// signed (mTLS).
fn tls_collector(dir: &Path, cert: &Path, key: &Path, client_ca: Option<&Path>) -> Collector {
    let config = tls_config_file(dir, cert, key, client_ca);
    Collector::start(&["--config", config.to_str().unwrap()])
}

#[test]
fn the_cli_reaches_an_mtls_api_with_a_client_certificate_and_is_refused_without() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = Pki::new(dir, "corp");
    let (server_cert, server_key) = pki.issue("server", "collector.test");
    let (cli_cert, cli_key) = pki.issue("cli", "oncall-laptop");
    let c = tls_collector(dir, &server_cert, &server_key, Some(&pki.ca_file));
    let api = format!("https://{}", c.api);
    let http = https(client_tls(&pki.ca_file, Some((&cli_cert, &cli_key))));

    let request_id = format!("req-mtls-{}", unique());
    let body = format!("refund sent {request_id}");
    let record = log_record(&body, 9, now_nanos(), vec![kv("request_id", &request_id)]);
    let status = post_protobuf(
        &http,
        &format!("https://{}/v1/logs", c.otlp_http),
        logs_request("payment", vec![record]).encode_to_vec(),
    )
    .unwrap();
    assert_eq!(status, 200);
    let q = format!("request_id:{request_id}");
    let found = wait_for(|| count_logs(&http, &api, &q) == 1, ARRIVAL);
    assert!(found, "the log is not searchable\n{}", c.output());

    let (ca, cert, key) = (
        pki.ca_file.to_str().unwrap(),
        cli_cert.to_str().unwrap(),
        cli_key.to_str().unwrap(),
    );
    // With the flags.
    let r = run_skein(
        &[
            "search",
            &q,
            "--api",
            &api,
            "--ca-file",
            ca,
            "--client-cert",
            cert,
            "--client-key",
            key,
        ],
        &[],
    );
    assert_eq!(r.code, Some(0), "skein search: {}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&body), "{}", r.stdout);
    // With the environment.
    let r = run_skein(
        &["trace", &request_id, "--api", &api],
        &[
            ("SKEIN_CA_FILE", pki.ca_file.as_path()),
            ("SKEIN_CLIENT_CERT", cli_cert.as_path()),
            ("SKEIN_CLIENT_KEY", cli_key.as_path()),
        ],
    );
    assert_eq!(r.code, Some(0), "skein trace: {}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&body), "{}", r.stdout);

    // Without a client certificate: refused, with an error that says what is missing.
    let r = run_skein(&["search", &q, "--api", &api, "--ca-file", ca], &[]);
    assert_ne!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains(&body), "{}", r.stdout);
    assert!(
        r.stderr.contains("--client-cert") && r.stderr.contains(&c.api.to_string()),
        "{}",
        r.stderr
    );

    // A certificate without its key is refused before any request.
    let r = run_skein(
        &[
            "search",
            &q,
            "--api",
            &api,
            "--ca-file",
            ca,
            "--client-cert",
            cert,
        ],
        &[],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("--client-key"), "{}", r.stderr);

    // A client certificate file that cannot be read is named.
    let missing = dir.join("missing.pem");
    let r = run_skein(
        &[
            "search",
            &q,
            "--api",
            &api,
            "--ca-file",
            ca,
            "--client-cert",
            missing.to_str().unwrap(),
            "--client-key",
            key,
        ],
        &[],
    );
    assert_ne!(r.code, Some(0));
    assert!(r.stderr.contains(missing.to_str().unwrap()), "{}", r.stderr);

    // Not checking the server's certificate works without the CA, and warns.
    let r = run_skein(
        &[
            "search",
            &q,
            "--api",
            &api,
            "--insecure-skip-verify",
            "--client-cert",
            cert,
            "--client-key",
            key,
        ],
        &[],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&body), "{}", r.stdout);
    assert!(
        r.stderr.contains("WARNING") && r.stderr.contains("NOT checked"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_tui_shows_a_tls_collector_with_a_ca_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = Pki::new(dir, "corp");
    let (cert, key) = pki.issue("server", "collector.test");
    let c = tls_collector(dir, &cert, &key, None);
    let api = format!("https://{}", c.api);
    let http = https(client_tls(&pki.ca_file, None));

    let tid = new_trace_id();
    let now = now_nanos() - 2_000_000_000;
    let mut root = span(&tid, &[1; 8], &[], "POST /checkout", now);
    root.end_time_unix_nano = now + 300_000_000;
    let mut child = span(&tid, &[2; 8], &[1; 8], "charge card", now + 50_000_000);
    child.end_time_unix_nano = now + 250_000_000;
    for (service, s) in [("tls-gateway", root), ("tls-payment", child)] {
        let status = post_protobuf(
            &http,
            &format!("https://{}/v1/traces", c.otlp_http),
            traces_request(service, vec![s]).encode_to_vec(),
        )
        .unwrap();
        assert_eq!(status, 200);
    }
    let stored = wait_for(
        || {
            http.get(format!("{api}/api/v1/traces/{}", hex(&tid)))
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["spans"].as_array().is_some_and(|s| s.len() == 2))
        },
        ARRIVAL,
    );
    assert!(stored, "{}", c.output());

    let mut screen = Pty::spawn(&format!(
        "{SKEIN} tui --api {api} --ca-file {}",
        pki.ca_file.display()
    ));
    let t = screen.wait_for("tls-payment", ARRIVAL);
    assert!(t.contains("tls-gateway"), "{t}");
    screen.send(b"3");
    let t = screen.wait_for("tls-gateway: POST /checkout", ARRIVAL);
    assert!(t.contains("tls-gateway: POST /checkout"), "{t}");
    screen.send(b"q");
    assert!(screen.wait_exit(Duration::from_secs(10)).success());

    // Without the CA the collector's certificate is not trusted, and the screen says what to
    // give.
    let mut screen = Pty::spawn(&format!("{SKEIN} tui --api {api}"));
    let t = screen.wait_for("--ca-file", ARRIVAL);
    assert!(t.contains("--ca-file"), "{t}");
    assert!(!t.contains("tls-payment"), "{t}");
    screen.send(b"q");
    assert!(screen.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn a_webhook_ca_file_that_cannot_be_read_stops_the_start_naming_file_key_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let missing = dir.join("hooks-ca.pem");
    let config = dir.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[[alerts.receiver]]\nname = \"pager\"\nurl = \"https://hooks.example/x\"\n\
             ca_file = \"{}\"\n",
            missing.display()
        ),
    )
    .unwrap();
    common::assert_collector_config_refused(
        &config,
        "alerts.receiver[0].ca_file",
        missing.to_str().unwrap(),
    );
}
