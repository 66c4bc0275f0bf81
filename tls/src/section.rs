//! The `[tls]` config section of the collector and the agent, and its checks: the error names
//! the key and the file, as every config error does.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use crate::server::{ServerTls, check};

/// TLS on a process's listeners (the collector's three, the agent's receiver and telemetry).
/// `cert_file` and `key_file` go together; with neither, the listeners are plain (the
/// default). The files are read again when they change, so a rotated certificate is served
/// without a restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// PEM certificate chain, the server's own certificate first.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the certificate.
    pub key_file: Option<PathBuf>,
    /// PEM CA certificates; when set, clients must present a certificate signed by one of
    /// them (mTLS).
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
