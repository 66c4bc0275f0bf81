//! Skein's TLS set-up, shared by the collector, the agent and the CLI. rustls only, with the
//! `ring` provider; certificates and keys come from PEM files.
//!
//! The client side ([`client_config`]) trusts the system's roots, plus a CA file when one is
//! given, can present a client certificate (mTLS), and has an insecure switch that skips
//! checking the server's certificate (logged as a warning each time a config is built).
//!
//! The server side (feature `server`, module [`server`]) serves a certificate that is read
//! again when its files change, so a rotated certificate is served without a restart; a new
//! file that cannot be used keeps the old certificate and logs a warning. With a client CA
//! file, clients must present a certificate signed by it, and the certificate's subject CN (or
//! its first DNS name) is the client's identity. [`server::Listener`] serves plain TCP or TLS
//! to REST and gRPC alike; a failed handshake is logged and skipped.
//!
//! Every HTTP listener is served by [`serve::serve`], under the process's connection limits
//! ([`conn`]): a cap on open connections, idle and stall timeouts, HTTP/1 head and request body
//! timeouts.

#[cfg(feature = "server")]
pub mod conn;
#[cfg(feature = "server")]
pub mod section;
#[cfg(feature = "server")]
pub mod serve;
#[cfg(feature = "server")]
pub mod server;

pub use rustls;
pub use rustls_pki_types;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// Why a TLS set-up could not be built. Each names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file was read but does not hold what it should.
    #[error("{path}: {message}")]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// rustls refused the set-up.
    #[error("TLS set-up: {0}")]
    Setup(String),
}

impl TlsError {
    /// The file the error is about, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            TlsError::Read { path, .. } | TlsError::Content { path, .. } => Some(path),
            TlsError::Setup(_) => None,
        }
    }
}

/// The crypto provider every Skein TLS config uses (`ring`).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads every certificate of a PEM file; at least one is required.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Content {
            path: path.to_path_buf(),
            message: format!("not a PEM certificate file: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Content {
            path: path.to_path_buf(),
            message: "holds no PEM certificate".into(),
        });
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Content {
        path: path.to_path_buf(),
        message: format!("holds no usable PEM private key: {e}"),
    })
}

/// Reads a CA file into a root store; every certificate in it must be usable as a root.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| TlsError::Content {
            path: path.to_path_buf(),
            message: format!("a certificate cannot be used as a CA: {e}"),
        })?;
    }
    Ok(roots)
}

/// How a client reaches a TLS server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// A PEM file of CA certificates trusted besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate chain to present (with `client_key_file`).
    pub client_cert_file: Option<PathBuf>,
    /// The PEM private key of `client_cert_file`.
    pub client_key_file: Option<PathBuf>,
    /// Accept any server certificate. For tests only: anyone on the path can read and change
    /// the traffic.
    pub insecure_skip_verify: bool,
}

/// Builds a rustls client config: the system's roots plus `ca_file`, the client certificate
/// when both its files are given, ALPN `http/1.1`. A system root that cannot be read is
/// skipped; having no root at all is an error unless a CA file or the insecure switch is set.
pub fn client_config(tls: &ClientTls) -> Result<rustls::ClientConfig, TlsError> {
    let alone = |path: &PathBuf, message: &str| TlsError::Content {
        path: path.clone(),
        message: message.into(),
    };
    match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert), None) => {
            return Err(alone(cert, "a client certificate needs its key file too"));
        }
        (None, Some(key)) => {
            return Err(alone(key, "a client key needs its certificate file too"));
        }
        _ => {}
    }
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let builder = if tls.insecure_skip_verify {
        tracing::warn!(
            "TLS: insecure_skip_verify is on: the server's certificate is NOT checked; anyone \
             on the network path can read and change this traffic. Use it only for tests."
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider.clone())))
    } else {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::debug!(error = %e, "TLS: a system root certificate could not be read");
        }
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if let Some(ca) = &tls.ca_file {
            roots.roots.extend(load_roots(ca)?.roots);
        } else if added == 0 {
            return Err(TlsError::Setup(
                "no system root certificate found; give a CA file".into(),
            ));
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(|e| TlsError::Content {
                path: key.clone(),
                message: format!("does not go with {}: {e}", cert.display()),
            })?,
        // One without the other was refused above.
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts every server certificate but still checks the handshake's signatures.
#[derive(Debug)]
struct AnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
