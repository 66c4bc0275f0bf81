//! End-to-end TLS over the real binary, with a CA and certificates made by the test: the agent
//! ships to a collector over TLS and over mTLS (a client without a certificate is refused),
//! the CLI reads the query API over TLS with a CA file, and a certificate replaced on disk is
//! served without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::agent::Agent;
use common::pki::Pki;
use common::tls::{
    client_tls, count_logs, grpc_export, handshake, https, post_protobuf, tls_config_file,
};
use common::{Collector, kv, log_record, logs_request, now_nanos, run_skein, unique, wait_for};
use prost::Message;
use std::io::Write;
use std::time::Duration;

const ARRIVAL: Duration = Duration::from_secs(60);

#[test]
fn agent_ships_over_tls_and_mtls_refuses_clients_without_a_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = Pki::new(dir, "skein");
    let (server_cert, server_key) = pki.issue("server", "collector.test");
    let (agent_cert, agent_key) = pki.issue("agent", "agent-e2e");
    let config = tls_config_file(dir, &server_cert, &server_key, Some(&pki.ca_file));
    let collector = Collector::start(&["--config", config.to_str().unwrap()]);
    let api = format!("https://{}", collector.api);

    // A client with the CA but no certificate is refused on every listener.
    let anonymous = https(client_tls(&pki.ca_file, None));
    let refused = post_protobuf(
        &anonymous,
        &format!("https://{}/v1/logs", collector.otlp_http),
        logs_request("x", vec![]).encode_to_vec(),
    );
    assert!(
        refused.is_err(),
        "OTLP/HTTP answered without a client certificate: {refused:?}"
    );
    assert!(
        anonymous.get(format!("{api}/api/v1/logs")).send().is_err(),
        "the API answered without a client certificate"
    );
    // Plain HTTP on a TLS port is no answer either.
    assert!(
        common::client()
            .get(format!("http://{}/healthz", collector.api))
            .send()
            .is_err()
    );

    // With the agent's certificate: the gRPC port speaks h2 over TLS, the API answers.
    let trusted = client_tls(&pki.ca_file, Some((&agent_cert, &agent_key)));
    let (cn, alpn) = handshake(collector.otlp_grpc, trusted.clone(), b"h2").unwrap();
    assert_eq!(cn, "collector.test");
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    let http = https(trusted);
    let health = http.get(format!("{api}/healthz")).send().unwrap();
    assert_eq!(health.status().as_u16(), 200);

    // An agent with the CA and its certificate ships file lines over mTLS.
    let log = dir.join("app.log");
    let tag = unique();
    let mut f = std::fs::File::create(&log).unwrap();
    for i in 0..20 {
        writeln!(f, r#"{{"msg":"over tls {i}","tag":"{tag}","seq":{i}}}"#).unwrap();
    }
    f.sync_all().unwrap();
    let agent_toml = format!(
        r#"
[agent]
id = "tls-agent"
data_dir = "{data}"
[collector]
endpoint = "https://{http}"
timeout = "5s"
ca_file = "{ca}"
client_cert_file = "{cert}"
client_key_file = "{key}"
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
name = "app"
paths = ["{log}"]
read_from = "beginning"
format = "json"
"#,
        data = dir.join("agent-data").display(),
        http = collector.otlp_http,
        ca = pki.ca_file.display(),
        cert = agent_cert.display(),
        key = agent_key.display(),
        log = log.display(),
    );
    let agent_dir = dir.join("agent");
    std::fs::create_dir_all(&agent_dir).unwrap();
    let agent = Agent::start(&agent_dir, &agent_toml);
    let q = format!("tag:{tag}");
    let all = wait_for(|| count_logs(&http, &api, &q) == 20, ARRIVAL);
    assert!(
        all,
        "{} of 20 lines arrived over mTLS\nagent:\n{}\ncollector:\n{}",
        count_logs(&http, &api, &q),
        agent.output(),
        collector.output()
    );
    // The agent is known by its certificate, not by the id it sent ("tls-agent").
    let by_cert = || -> Option<serde_json::Value> {
        let v: serde_json::Value = http
            .get(format!("{api}/api/v1/agents"))
            .send()
            .ok()?
            .json()
            .ok()?;
        v["agents"].as_array()?.first().cloned()
    };
    assert!(
        wait_for(
            || by_cert().is_some_and(|a| a["heartbeat"]["certificate"] == "agent-e2e"),
            ARRIVAL
        ),
        "no agent listed under its certificate: {:?}",
        by_cert()
    );
    let listed = by_cert().unwrap();
    assert_eq!(listed["heartbeat"]["id"], "agent-e2e", "{listed}");
    // The collector logged why the anonymous handshakes failed.
    assert!(
        collector.output().contains("TLS handshake failed"),
        "{}",
        collector.output()
    );
}

#[test]
fn cli_reads_the_api_over_tls_and_a_replaced_certificate_is_served_without_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = Pki::new(dir, "skein");
    let (cert, key) = pki.issue("server", "first.test");
    let config = tls_config_file(dir, &cert, &key, None);
    let collector = Collector::start(&["--config", config.to_str().unwrap()]);
    let api = format!("https://{}", collector.api);
    let http = https(client_tls(&pki.ca_file, None));

    // A log with a request ID, sent over OTLP/HTTP with TLS.
    let request_id = format!("req-tls-{}", unique());
    let body = format!("paid over tls {request_id}");
    let record = log_record(&body, 9, now_nanos(), vec![kv("request_id", &request_id)]);
    let status = post_protobuf(
        &http,
        &format!("https://{}/v1/logs", collector.otlp_http),
        logs_request("payment", vec![record]).encode_to_vec(),
    )
    .unwrap();
    assert_eq!(status, 200);
    let q = format!("request_id:{request_id}");
    assert!(
        wait_for(|| count_logs(&http, &api, &q) == 1, ARRIVAL),
        "the log is not searchable over TLS\n{}",
        collector.output()
    );

    // OTLP/gRPC over TLS: an export is acknowledged and found.
    let grpc_body = format!("sent by grpc over tls {request_id}");
    let record = log_record(
        &grpc_body,
        9,
        now_nanos(),
        vec![kv("request_id", &request_id)],
    );
    grpc_export(
        collector.otlp_grpc,
        client_tls(&pki.ca_file, None),
        logs_request("payment", vec![record]),
    )
    .unwrap();
    assert!(
        wait_for(|| count_logs(&http, &api, &q) == 2, ARRIVAL),
        "the gRPC log is not searchable\n{}",
        collector.output()
    );

    // The CLI with --ca-file, and with SKEIN_CA_FILE.
    let ca = pki.ca_file.to_str().unwrap();
    let r = run_skein(&["trace", &request_id, "--api", &api, "--ca-file", ca], &[]);
    assert_eq!(r.code, Some(0), "skein trace: {}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&body), "{}", r.stdout);
    let r = run_skein(
        &["search", &q, "--api", &api],
        &[("SKEIN_CA_FILE", pki.ca_file.as_path())],
    );
    assert_eq!(r.code, Some(0), "skein search: {}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&body), "{}", r.stdout);
    // Without the CA the server's certificate is not trusted.
    let r = run_skein(&["trace", &request_id, "--api", &api], &[]);
    assert_ne!(r.code, Some(0), "{}", r.stdout);
    assert!(r.stdout.is_empty() || !r.stdout.contains(&body));

    // Rotation: new files at the same paths are served without a restart, on every listener.
    let check = client_tls(&pki.ca_file, None);
    for addr in [collector.api, collector.otlp_http, collector.otlp_grpc] {
        assert_eq!(
            handshake(addr, check.clone(), b"h2").unwrap().0,
            "first.test"
        );
    }
    // A broken key first: the old certificate stays.
    let (new_cert, new_key) = pki.issue_text("second.test");
    std::fs::write(&key, "not a key").unwrap();
    std::fs::write(&cert, &new_cert).unwrap();
    assert!(
        wait_for(
            || collector
                .output()
                .contains("still serving the previous certificate"),
            ARRIVAL
        ),
        "{}",
        collector.output()
    );
    assert_eq!(
        handshake(collector.api, check.clone(), b"h2").unwrap().0,
        "first.test"
    );
    std::fs::write(&key, &new_key).unwrap();
    for addr in [collector.api, collector.otlp_http, collector.otlp_grpc] {
        let served = wait_for(
            || handshake(addr, check.clone(), b"h2").is_ok_and(|(cn, _)| cn == "second.test"),
            ARRIVAL,
        );
        assert!(
            served,
            "{addr} does not serve the new certificate\n{}",
            collector.output()
        );
    }
    // Requests go on over the new certificate.
    assert_eq!(count_logs(&http, &api, &q), 2);
}

#[test]
fn bad_tls_files_are_config_errors_naming_file_key_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = Pki::new(dir, "skein");
    let (cert, _) = pki.issue("server", "x.test");
    let missing = dir.join("missing.key");
    let config = tls_config_file(dir, &cert, &missing, None);
    common::assert_collector_config_refused(&config, "tls.key_file", missing.to_str().unwrap());
}
