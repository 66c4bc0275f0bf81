//! A test CA made with rcgen, and the PEM files of the certificates it signs, for the TLS
//! tests over the real binary.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::path::{Path, PathBuf};

/// A CA (its certificate in `ca_file`) that signs certificates into `dir`.
pub struct Pki {
    dir: PathBuf,
    name: String,
    issuer: Issuer<'static, KeyPair>,
    /// The CA's certificate, PEM.
    pub ca_file: PathBuf,
}

impl Pki {
    /// A new CA named `name`; its certificate is `<dir>/<name>-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test ca"));
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let ca_file = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca_file, cert.pem()).unwrap();
        Pki {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            issuer: Issuer::new(params, key),
            ca_file,
        }
    }

    /// Writes `<ca name>-<file>.pem` and `.key`: a certificate with subject `cn`, valid for
    /// 127.0.0.1 and localhost, as a server or a client certificate.
    pub fn issue(&self, file: &str, cn: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = self.issue_text(cn);
        let base = format!("{}-{file}", self.name);
        let (c, k) = (
            self.dir.join(format!("{base}.pem")),
            self.dir.join(format!("{base}.key")),
        );
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key).unwrap();
        (c, k)
    }

    /// The PEM text of a certificate as [`Pki::issue`] makes it, and of its key, written
    /// nowhere (for a test that replaces files in place).
    pub fn issue_text(&self, cn: &str) -> (String, String) {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}
