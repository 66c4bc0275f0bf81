//! TLS clients for the end-to-end tests: a rustls config trusting a test CA (with or without a
//! client certificate), an HTTPS client, a bare handshake, an OTLP/gRPC export over TLS, and
//! the `[tls]` section of a config file. The CA itself is in [`super::pki`].

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;

use super::url_with;

/// A rustls client config trusting only `ca`, with the client certificate and key `cert`.
pub fn client_tls(ca: &Path, cert: Option<(&Path, &Path)>) -> rustls::ClientConfig {
    skein_tls::client_config(&skein_tls::ClientTls {
        ca_file: Some(ca.to_path_buf()),
        client_cert_file: cert.map(|c| c.0.to_path_buf()),
        client_key_file: cert.map(|c| c.1.to_path_buf()),
        insecure_skip_verify: false,
    })
    .unwrap()
}

/// A blocking HTTPS client over `tls`, with a 30 s timeout. Must not be built or dropped on an
/// async runtime's thread.
pub fn https(tls: rustls::ClientConfig) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Handshakes with `addr` offering `alpn`; the served certificate's CN and the protocol
/// agreed.
pub fn handshake(
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

/// One OTLP/gRPC logs export over TLS (h2 by ALPN) to `addr`, on a runtime of its own.
pub fn grpc_export(
    addr: SocketAddr,
    mut tls: rustls::ClientConfig,
    req: ExportLogsServiceRequest,
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

/// POSTs an OTLP protobuf `body` to `url` through `http`; the status.
pub fn post_protobuf(
    http: &reqwest::blocking::Client,
    url: &str,
    body: Vec<u8>,
) -> reqwest::Result<u16> {
    http.post(url)
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .map(|r| r.status().as_u16())
}

/// How many logs with `q` the query API at `api` finds through `http` (0 when it does not
/// answer 2xx).
pub fn count_logs(http: &reqwest::blocking::Client, api: &str, q: &str) -> usize {
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

/// A `[tls]` config section serving `cert` and `key`; with `client_ca`, clients need a
/// certificate it signed (mTLS).
pub fn tls_section(cert: &Path, key: &Path, client_ca: Option<&Path>) -> String {
    let mut text = format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        cert.display(),
        key.display()
    );
    if let Some(ca) = client_ca {
        text.push_str(&format!("client_ca_file = \"{}\"\n", ca.display()));
    }
    text
}

/// Writes `<dir>/collector.toml` holding only that `[tls]` section; its path.
pub fn tls_config_file(dir: &Path, cert: &Path, key: &Path, client_ca: Option<&Path>) -> PathBuf {
    let path = dir.join("collector.toml");
    std::fs::write(&path, tls_section(cert, key, client_ca)).unwrap();
    path
}
