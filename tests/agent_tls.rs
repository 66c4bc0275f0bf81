//! End-to-end TLS on the agent's own listeners, over the real binary, with a CA made by the
//! test: local apps export over OTLP/HTTP and OTLP/gRPC with TLS and a client certificate
//! (mTLS), `/metrics` answers over TLS, a client without a certificate and a plain-HTTP
//! client are refused, and bad TLS files are config errors (exit 2) naming file, key, value.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::agent::Agent;
use common::pki::Pki;
use common::tls::{client_tls, count_logs, grpc_export, https, post_protobuf, tls_section};
use common::{Collector, kv, log_record, logs_request, now_nanos, unique, wait_for};
use prost::Message;
use std::time::Duration;

const ARRIVAL: Duration = Duration::from_secs(60);

#[test]
fn local_apps_export_to_the_agent_over_mtls_and_clients_without_a_certificate_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = Pki::new(dir, "agent");
    let (server_cert, server_key) = ca.issue("agent-server", "agent.test");
    let (app_cert, app_key) = ca.issue("app", "payment-app");
    let collector = Collector::start(&[]);
    let agent_toml = format!(
        r#"
[agent]
id = "tls-receiver-agent"
data_dir = "{data}"
[collector]
endpoint = "http://{http}"
timeout = "5s"
[retry]
initial_backoff = "50ms"
max_backoff = "500ms"
[heartbeat]
interval = "500ms"
[host_metrics]
enabled = false
{tls}"#,
        data = dir.join("agent-data").display(),
        http = collector.otlp_http,
        tls = tls_section(&server_cert, &server_key, Some(&ca.ca_file)),
    );
    let agent_dir = dir.join("agent");
    std::fs::create_dir_all(&agent_dir).unwrap();
    let agent = Agent::start(&agent_dir, &agent_toml);
    let api = collector.api_base();
    let plain = common::client();
    let tag = unique();

    // OTLP/HTTP over TLS with the app's certificate: acknowledged.
    let app = https(client_tls(&ca.ca_file, Some((&app_cert, &app_key))));
    let record = |text: &str| log_record(text, 9, now_nanos(), vec![kv("tag", &tag)]);
    let status = post_protobuf(
        &app,
        &format!("https://{}/v1/logs", agent.addrs.otlp_http),
        logs_request("payment", vec![record("over https")]).encode_to_vec(),
    )
    .unwrap();
    assert_eq!(status, 200, "{}", agent.output());

    // OTLP/gRPC over TLS (h2) with the app's certificate: acknowledged.
    grpc_export(
        agent.addrs.otlp_grpc,
        client_tls(&ca.ca_file, Some((&app_cert, &app_key))),
        logs_request("payment", vec![record("over grpc with tls")]),
    )
    .unwrap();

    // Both reach the collector through the agent's buffer.
    let q = format!("tag:{tag}");
    assert!(
        wait_for(|| count_logs(&plain, &api, &q) == 2, ARRIVAL),
        "{} of 2 exports arrived\nagent:\n{}\ncollector:\n{}",
        count_logs(&plain, &api, &q),
        agent.output(),
        collector.output()
    );

    // The telemetry endpoint speaks TLS too.
    let metrics = app
        .get(format!("https://{}/metrics", agent.addrs.metrics))
        .send()
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    assert!(metrics.text().unwrap().contains("skein_agent_"));
    let health = app
        .get(format!("https://{}/healthz", agent.addrs.metrics))
        .send()
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);

    // Without a client certificate, every listener refuses the handshake.
    let anonymous = https(client_tls(&ca.ca_file, None));
    let refused = post_protobuf(
        &anonymous,
        &format!("https://{}/v1/logs", agent.addrs.otlp_http),
        logs_request("payment", vec![record("anonymous")]).encode_to_vec(),
    );
    assert!(
        refused.is_err(),
        "answered without a certificate: {refused:?}"
    );
    assert!(
        anonymous
            .get(format!("https://{}/metrics", agent.addrs.metrics))
            .send()
            .is_err()
    );
    assert!(
        grpc_export(
            agent.addrs.otlp_grpc,
            client_tls(&ca.ca_file, None),
            logs_request("payment", vec![record("anonymous grpc")]),
        )
        .is_err()
    );
    // Plain HTTP on a TLS port gets no answer.
    assert!(
        common::client()
            .get(format!("http://{}/healthz", agent.addrs.metrics))
            .send()
            .is_err()
    );
    assert!(
        agent.output().contains("TLS handshake failed"),
        "{}",
        agent.output()
    );
    // Nothing from the refused clients was buffered or shipped.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count_logs(&plain, &api, &q), 2);
}

/// Runs `skein agent --config <file> --check-config` and the agent itself: both exit 2
/// naming the file, the key and the value.
#[test]
fn bad_agent_tls_files_are_config_errors_naming_file_key_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = Pki::new(dir, "agent");
    let (cert, _) = ca.issue("agent-server", "agent.test");
    let missing = dir.join("missing.key");
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\ndata_dir = \"{}\"\n{}",
            dir.join("data").display(),
            tls_section(&cert, &missing, None)
        ),
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    for extra in [&["--check-config"][..], &[][..]] {
        let args: Vec<&str> = ["agent", "--config", config_arg]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        common::assert_config_refused(&args, &config, "tls.key_file", missing.to_str().unwrap());
    }
}
