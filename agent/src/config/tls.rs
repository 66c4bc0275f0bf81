//! The agent's `[tls]` section: TLS on its own listeners (the local OTLP receiver, HTTP and
//! gRPC, and the telemetry endpoint). The same keys and checks as the collector's `[tls]`.

use serde::{Deserialize, Serialize};
use skein_otlp::tls::server::{ServerTls, check};
use std::path::PathBuf;

/// TLS on the receiver's two listeners and on `telemetry.listen`. `cert_file` and `key_file`
/// go together; with neither, the listeners are plain (the default). The files are read
/// again when they change, so a rotated certificate is served without a restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// PEM certificate chain, the agent's certificate first.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the certificate.
    pub key_file: Option<PathBuf>,
    /// PEM CA certificates; when set, clients (local apps, scrapers) must present a
    /// certificate signed by one of them (mTLS).
    pub client_ca_file: Option<PathBuf>,
}

impl TlsSection {
    /// The server TLS files, read once to check them; None when TLS is off. The error names
    /// the key and the file.
    pub fn server(&self) -> Result<Option<ServerTls>, String> {
        let (cert_file, key_file) = match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            (None, None) => {
                if let Some(ca) = &self.client_ca_file {
                    return Err(format!(
                        "key tls.client_ca_file: value \"{}\" needs tls.cert_file and tls.key_file",
                        ca.display()
                    ));
                }
                return Ok(None);
            }
            (Some(c), None) => {
                return Err(format!(
                    "key tls.cert_file: value \"{}\" needs tls.key_file too",
                    c.display()
                ));
            }
            (None, Some(k)) => {
                return Err(format!(
                    "key tls.key_file: value \"{}\" needs tls.cert_file too",
                    k.display()
                ));
            }
        };
        let tls = ServerTls {
            cert_file,
            key_file,
            client_ca_file: self.client_ca_file.clone(),
        };
        check(&tls).map_err(|e| {
            let key = match e.path() {
                Some(p) if p == tls.cert_file => "tls.cert_file",
                Some(p) if p == tls.key_file => "tls.key_file",
                Some(p) if Some(p) == tls.client_ca_file.as_deref() => "tls.client_ca_file",
                _ => "tls.cert_file",
            };
            match e.path() {
                Some(p) => format!("key {key}: value \"{}\": {e}", p.display()),
                None => format!("key {key}: {e}"),
            }
        })?;
        Ok(Some(tls))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::AgentConfig;

    #[test]
    fn plain_is_the_default_and_bad_tls_keys_name_key_and_value() {
        assert_eq!(TlsSection::default().server().unwrap(), None);
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let junk = junk.display().to_string();
        let cases = [
            (
                "[tls]\ncert_file = \"/no/such/cert.pem\"".to_string(),
                "key tls.cert_file: value \"/no/such/cert.pem\" needs tls.key_file".to_string(),
            ),
            (
                "[tls]\nkey_file = \"/no/such/key.pem\"".into(),
                "key tls.key_file: value \"/no/such/key.pem\" needs tls.cert_file".into(),
            ),
            (
                "[tls]\nclient_ca_file = \"/ca.pem\"".into(),
                "key tls.client_ca_file: value \"/ca.pem\"".into(),
            ),
            (
                "[tls]\ncert_file = \"/no/such/cert.pem\"\nkey_file = \"/no/such/key.pem\"".into(),
                "key tls.cert_file: value \"/no/such/cert.pem\"".into(),
            ),
            (
                format!("[tls]\ncert_file = \"{junk}\"\nkey_file = \"{junk}\""),
                format!("key tls.cert_file: value \"{junk}\""),
            ),
            ("[tls]\ncolour = \"blue\"".into(), "colour".into()),
        ];
        for (text, want) in cases {
            let e = AgentConfig::from_toml(&text).unwrap_err();
            assert!(e.contains(&want), "{text:?} gave {e:?}, want {want:?}");
        }
    }
}
