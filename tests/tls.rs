//! End-to-end TLS over the real binary, with a CA and certificates made by the test: the agent
//! ships to a collector over TLS and over mTLS (a client without a certificate is refused),
//! the CLI reads the query API over TLS with a CA file, and a certificate replaced on disk is
//! served without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::agent::Agent;
use common::{
    Collector, SKEIN, kv, log_record, logs_request, now_nanos, read_all, unique, url_with, wait_for,
};
use prost::Message;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const ARRIVAL: Duration = Duration::from_secs(60);

/// A test CA and the files of the certificates it signs.
struct Pki {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    ca_file: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "skein test ca");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, cert.pem()).unwrap();
        Pki {
            dir: dir.to_path_buf(),
            issuer: Issuer::new(params, key),
            ca_file,
        }
    }

    /// Writes `<name>.pem` and `<name>.key` for a certificate with subject `cn`, valid for
    /// 127.0.0.1 and localhost.
    fn issue(&self, name: &str, cn: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = self.issue_text(cn);
        let (c, k) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key).unwrap();
        (c, k)
    }

    fn issue_text(&self, cn: &str) -> (String, String) {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn client_tls(ca: &Path, cert: Option<(&Path, &Path)>) -> rustls::ClientConfig {
    skein_tls::client_config(&skein_tls::ClientTls {
        ca_file: Some(ca.to_path_buf()),
        client_cert_file: cert.map(|c| c.0.to_path_buf()),
        client_key_file: cert.map(|c| c.1.to_path_buf()),
        insecure_skip_verify: false,
    })
    .unwrap()
}

fn https(tls: rustls::ClientConfig) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Handshakes with `addr` offering `alpn`; the served certificate's CN and the protocol
/// agreed.
fn handshake(
    addr: SocketAddr,
    mut tls: rustls::ClientConfig,
    alpn: &[u8],
) -> Result<(String, Option<Vec<u8>>), String> {
    tls.alpn_protocols = vec![alpn.to_vec()];
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(tls), name).unwrap();
    let mut tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    let cert = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no certificate")?;
    let cn = skein_tls::server::identity(cert).ok_or("no CN")?;
    Ok((cn, conn.alpn_protocol().map(|p| p.to_vec())))
}

/// One OTLP/gRPC logs export over TLS (h2 by ALPN) to `addr`.
fn grpc_export(
    addr: SocketAddr,
    mut tls: rustls::ClientConfig,
    req: opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest,
) -> Result<(), String> {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let connect = tower::service_fn(move |_: tonic::codegen::http::Uri| {
            let connector = connector.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
                let s = connector.connect(name, tcp).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        });
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_with_connector(connect)
            .await
            .map_err(|e| format!("connect: {e:?}"))?;
        LogsServiceClient::new(channel)
            .export(req)
            .await
            .map_err(|e| format!("export: {e:?}"))?;
        Ok(())
    })
}

fn tls_config_file(dir: &Path, cert: &Path, key: &Path, client_ca: Option<&Path>) -> PathBuf {
    let mut text = format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        cert.display(),
        key.display()
    );
    if let Some(ca) = client_ca {
        text.push_str(&format!("client_ca_file = \"{}\"\n", ca.display()));
    }
    let path = dir.join("collector.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// How many logs with `q` the API over TLS finds.
fn count_logs(http: &reqwest::blocking::Client, api: &str, q: &str) -> usize {
    let url = url_with(
        api,
        "/api/v1/logs",
        &[("q", q), ("limit", "1000"), ("since", "30d")],
    );
    let Ok(resp) = http.get(url).send() else {
        return 0;
    };
    if !resp.status().is_success() {
        return 0;
    }
    let body: serde_json::Value = resp.json().unwrap_or_default();
    body["logs"].as_array().map_or(0, |a| a.len())
}

#[test]
fn agent_ships_over_tls_and_mtls_refuses_clients_without_a_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = Pki::new(dir);
    let (server_cert, server_key) = pki.issue("server", "collector.test");
    let (agent_cert, agent_key) = pki.issue("agent", "agent-e2e");
    let config = tls_config_file(dir, &server_cert, &server_key, Some(&pki.ca_file));
    let collector = Collector::start(&["--config", config.to_str().unwrap()]);
    let api = format!("https://{}", collector.api);

    // A client with the CA but no certificate is refused on every listener.
    let anonymous = https(client_tls(&pki.ca_file, None));
    let refused = anonymous
        .post(format!("https://{}/v1/logs", collector.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(logs_request("x", vec![]).encode_to_vec())
        .send();
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

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn skein(args: &[&str], env: &[(&str, &Path)]) -> Run {
    let mut cmd = Command::new(SKEIN);
    cmd.args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in common::SKEIN_ENV {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn skein");
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || read_all(out));
    let err = std::thread::spawn(move || read_all(err));
    let status = child.wait().expect("wait");
    Run {
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

#[test]
fn cli_reads_the_api_over_tls_and_a_replaced_certificate_is_served_without_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = Pki::new(dir);
    let (cert, key) = pki.issue("server", "first.test");
    let config = tls_config_file(dir, &cert, &key, None);
    let collector = Collector::start(&["--config", config.to_str().unwrap()]);
    let api = format!("https://{}", collector.api);
    let http = https(client_tls(&pki.ca_file, None));

    // A log with a request ID, sent over OTLP/HTTP with TLS.
    let request_id = format!("req-tls-{}", unique());
    let body = format!("paid over tls {request_id}");
    let record = log_record(&body, 9, now_nanos(), vec![kv("request_id", &request_id)]);
    let resp = http
        .post(format!("https://{}/v1/logs", collector.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(logs_request("payment", vec![record]).encode_to_vec())
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
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
    let r = skein(&["trace", &request_id, "--api", &api, "--ca-file", ca], &[]);
    assert_eq!(r.code, Some(0), "skein trace: {}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&body), "{}", r.stdout);
    let r = skein(
        &["search", &q, "--api", &api],
        &[("SKEIN_CA_FILE", pki.ca_file.as_path())],
    );
    assert_eq!(r.code, Some(0), "skein search: {}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&body), "{}", r.stdout);
    // Without the CA the server's certificate is not trusted.
    let r = skein(&["trace", &request_id, "--api", &api], &[]);
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
    let pki = Pki::new(dir);
    let (cert, _) = pki.issue("server", "x.test");
    let missing = dir.join("missing.key");
    let config = tls_config_file(dir, &cert, &missing, None);
    let data = dir.join("data");
    let r = skein(
        &[
            "collector",
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    for want in [
        config.to_str().unwrap(),
        "tls.key_file",
        missing.to_str().unwrap(),
    ] {
        assert!(r.stderr.contains(want), "{want} not in: {}", r.stderr);
    }
}
