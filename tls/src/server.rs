//! The listener side: a certificate read again when its files change, optional client
//! certificates, and one listener type that serves plain TCP or TLS.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

pub use crate::conn::{Conn, Peer, identity};
use crate::conn::{Inner, slot};
use crate::{TlsError, load_certs, load_key, load_roots, provider};

/// How often the certificate and key files are checked for changes.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// A TLS handshake not finished in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes under way at once on one listener; further connections wait to be accepted.
const MAX_HANDSHAKES: usize = 1024;
/// Finished handshakes waiting for the server to take them.
const READY_QUEUE: usize = 64;

/// A server's TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// The PEM certificate chain, the server's own certificate first.
    pub cert_file: PathBuf,
    /// The PEM private key of the certificate.
    pub key_file: PathBuf,
    /// With a PEM CA file here, clients must present a certificate signed by it (mTLS).
    pub client_ca_file: Option<PathBuf>,
}

/// Reads the three files once and checks that they can serve; what a config check calls.
pub fn check(tls: &ServerTls) -> Result<(), TlsError> {
    load_certified(&tls.cert_file, &tls.key_file)?;
    if let Some(ca) = &tls.client_ca_file {
        client_verifier(ca)?;
    }
    Ok(())
}

fn load_certified(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = load_certs(cert)?;
    let der = load_key(key)?;
    let signing = provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| TlsError::Content {
            path: key.to_path_buf(),
            message: format!("the key cannot sign: {e}"),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| TlsError::Content {
        path: key.to_path_buf(),
        message: format!("is not the key of {}: {e}", cert.display()),
    })?;
    Ok(certified)
}

fn client_verifier(
    ca: &Path,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let roots = load_roots(ca)?;
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| TlsError::Content {
            path: ca.to_path_buf(),
            message: format!("cannot verify clients with it: {e}"),
        })
}

/// What identifies a version of the files: modification time and length of each.
type Stamp = Option<(SystemTime, u64, SystemTime, u64)>;

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let c = std::fs::metadata(cert).ok()?;
    let k = std::fs::metadata(key).ok()?;
    Some((c.modified().ok()?, c.len(), k.modified().ok()?, k.len()))
}

/// The served certificate: the current one, swapped for a new one when the files change and
/// the new files are good.
pub struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: ArcSwap<CertifiedKey>,
    seen: Mutex<Stamp>,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish()
    }
}

impl ReloadingCert {
    /// Reads the files; they must be good now.
    pub fn open(cert_file: &Path, key_file: &Path) -> Result<ReloadingCert, TlsError> {
        let seen = stamp(cert_file, key_file);
        let first = load_certified(cert_file, key_file)?;
        Ok(ReloadingCert {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            current: ArcSwap::from_pointee(first),
            seen: Mutex::new(seen),
        })
    }

    /// Reads the files again if they changed since the last look. A new pair that cannot be
    /// used keeps the certificate being served and logs a warning; it is tried again when the
    /// files change again. Returns true when a new certificate is served.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamp(&self.cert_file, &self.key_file);
        {
            let mut seen = match self.seen.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            if now.is_none() || *seen == now {
                return false;
            }
            *seen = now;
        }
        match load_certified(&self.cert_file, &self.key_file) {
            Ok(new) => {
                self.current.store(Arc::new(new));
                tracing::info!(
                    cert_file = %self.cert_file.display(),
                    "TLS: certificate files changed; serving the new certificate"
                );
                true
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "TLS: the changed certificate files cannot be used; still serving the previous certificate"
                );
                false
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Checks the files every [`RELOAD_EVERY`] on a blocking thread, for as long as the
/// certificate is in use.
fn watch(cert: &Arc<ReloadingCert>) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("TLS: no runtime to watch the certificate files; they are not reloaded");
        return;
    };
    let weak: Weak<ReloadingCert> = Arc::downgrade(cert);
    handle.spawn(async move {
        let mut tick = tokio::time::interval(RELOAD_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(cert) = weak.upgrade() else { return };
            let _ = tokio::task::spawn_blocking(move || cert.reload_if_changed()).await;
        }
    });
}

/// A TLS acceptor over a [`ReloadingCert`], requiring client certificates when the config
/// names a client CA.
#[derive(Clone)]
pub struct Acceptor {
    inner: tokio_rustls::TlsAcceptor,
    cert: Arc<ReloadingCert>,
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("cert", &self.cert)
            .finish()
    }
}

impl Acceptor {
    /// Reads the files and, inside a tokio runtime, starts watching them. `alpn` lists the
    /// protocols offered (`h2`, `http/1.1`), most preferred first.
    pub fn new(tls: &ServerTls, alpn: &[&[u8]]) -> Result<Acceptor, TlsError> {
        let cert = Arc::new(ReloadingCert::open(&tls.cert_file, &tls.key_file)?);
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        let builder = match &tls.client_ca_file {
            Some(ca) => builder.with_client_cert_verifier(client_verifier(ca)?),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(cert.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        watch(&cert);
        Ok(Acceptor {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            cert,
        })
    }

    /// The certificate being served.
    pub fn cert(&self) -> &Arc<ReloadingCert> {
        &self.cert
    }
}

/// A listener serving plain TCP or TLS, for [`crate::serve::serve`] (and `axum::serve`: it
/// implements [`axum::serve::Listener`]).
pub enum Listener {
    /// Plain TCP.
    Plain(TcpListener),
    /// TLS: connections are accepted and their handshakes run in the background; only
    /// finished handshakes reach the server.
    Tls(TlsListener),
}

/// The TLS side of [`Listener`].
pub struct TlsListener {
    ready: mpsc::Receiver<Conn>,
    local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Plain TCP when `acceptor` is None, else TLS. Must be called inside a tokio runtime.
    pub fn new(tcp: TcpListener, acceptor: Option<Acceptor>) -> io::Result<Listener> {
        let Some(acceptor) = acceptor else {
            return Ok(Listener::Plain(tcp));
        };
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let task = tokio::spawn(accept_loop(tcp, acceptor, tx));
        Ok(Listener::Tls(TlsListener { ready, local, task }))
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Listener::Tls(_))
    }
}

/// The next connection; None only when the TLS accept task has ended. Waits for a place
/// under the process's connection cap first ([`crate::conn`]).
pub(crate) async fn next(l: &mut Listener) -> Option<Conn> {
    match l {
        Listener::Plain(tcp) => {
            let slot = slot().await;
            let (s, addr) = accept_tcp(tcp).await;
            Some(Conn::new(Inner::Plain(s), addr, None, slot))
        }
        Listener::Tls(t) => t.ready.recv().await,
    }
}

async fn accept_tcp(tcp: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match tcp.accept().await {
            Ok(x) => return x,
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(error = %e, "accept failed; retrying in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

async fn accept_loop(tcp: TcpListener, acceptor: Acceptor, tx: mpsc::Sender<Conn>) {
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = tx.closed() => return,
        };
        let slot = tokio::select! {
            s = slot() => s,
            _ = tx.closed() => return,
        };
        let (sock, addr) = tokio::select! {
            x = accept_tcp(&tcp) => x,
            _ = tx.closed() => return,
        };
        let tx = tx.clone();
        let acceptor = acceptor.inner.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::warn!(peer = %addr, error = %e, "TLS handshake failed; connection closed");
                    return;
                }
                Err(_) => {
                    tracing::warn!(peer = %addr, "TLS handshake not finished in time; connection closed");
                    return;
                }
            };
            let identity = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| identity(c))
                .map(Arc::<str>::from);
            if let Some(id) = &identity {
                tracing::debug!(peer = %addr, client = %id, "TLS client certificate accepted");
            }
            let conn = Conn::new(Inner::Tls(Box::new(stream)), addr, identity, slot);
            let _ = tx.send(conn).await;
        });
    }
}

impl axum::serve::Listener for Listener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        match next(self).await {
            Some(c) => {
                let addr = c.peer().addr;
                (c, addr)
            }
            // The accept task only ends when this listener is dropped; should it ever end
            // otherwise, stop accepting rather than spin.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Listener::Plain(t) => t.local_addr(),
            Listener::Tls(t) => Ok(t.local),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{ClientTls, client_config};
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Ca {
        issuer: Issuer<'static, KeyPair>,
        pem: String,
    }

    fn ca() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "test ca");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
        }
    }

    /// A leaf signed by `ca`: (certificate PEM, key PEM).
    fn leaf(ca: &Ca, cn: &str) -> (String, String) {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Connects, sends "ping", reads the echo; returns the server certificate's identity.
    async fn call(addr: SocketAddr, client: &ClientTls) -> Result<String, String> {
        let config = client_config(client).map_err(|e| e.to_string())?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut s = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(b"ping").await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        let cert = s.get_ref().1.peer_certificates().unwrap()[0].clone();
        Ok(identity(&cert).unwrap_or_default())
    }

    /// Echoes four bytes per connection and reports each client's identity.
    fn echo(mut l: Listener, seen: mpsc::UnboundedSender<Option<Arc<str>>>) {
        tokio::spawn(async move {
            loop {
                let (mut c, _) = axum::serve::Listener::accept(&mut l).await;
                let _ = seen.send(c.peer().identity.clone());
                tokio::spawn(async move {
                    let mut buf = [0u8; 4];
                    if c.read_exact(&mut buf).await.is_ok() {
                        let _ = c.write_all(&buf).await;
                    }
                });
            }
        });
    }

    #[tokio::test]
    async fn serves_reloads_and_checks_client_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca();
        let ca_file = write(dir.path(), "ca.pem", &ca.pem);
        let (c, k) = leaf(&ca, "server one");
        let cert_file = write(dir.path(), "cert.pem", &c);
        let key_file = write(dir.path(), "key.pem", &k);
        let (cc, ck) = leaf(&ca, "agent-7");
        let client_cert = write(dir.path(), "client.pem", &cc);
        let client_key = write(dir.path(), "client.key", &ck);
        let server = ServerTls {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
            client_ca_file: Some(ca_file.clone()),
        };
        check(&server).unwrap();
        let acceptor = Acceptor::new(&server, &[b"http/1.1"]).unwrap();
        let cert = acceptor.cert().clone();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let (tx, mut seen) = mpsc::unbounded_channel();
        echo(Listener::new(tcp, Some(acceptor)).unwrap(), tx);

        let with_cert = ClientTls {
            ca_file: Some(ca_file.clone()),
            client_cert_file: Some(client_cert),
            client_key_file: Some(client_key),
            insecure_skip_verify: false,
        };
        assert_eq!(call(addr, &with_cert).await.unwrap(), "server one");
        assert_eq!(seen.recv().await.unwrap().as_deref(), Some("agent-7"));

        // Without a client certificate the handshake is refused, and the listener goes on.
        let without = ClientTls {
            ca_file: Some(ca_file.clone()),
            ..ClientTls::default()
        };
        assert!(call(addr, &without).await.is_err());
        assert_eq!(call(addr, &with_cert).await.unwrap(), "server one");

        // A bad new key keeps the old certificate; a good pair replaces it.
        let (c2, k2) = leaf(&ca, "server two");
        std::fs::write(&cert_file, &c2).unwrap();
        std::fs::write(&key_file, "not a key").unwrap();
        assert!(!cert.reload_if_changed());
        assert_eq!(call(addr, &with_cert).await.unwrap(), "server one");
        std::fs::write(&key_file, &k2).unwrap();
        // The watcher may have read the new pair already.
        cert.reload_if_changed();
        assert_eq!(call(addr, &with_cert).await.unwrap(), "server two");
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let junk = write(dir.path(), "junk.pem", "hello");
        let missing = dir.path().join("missing.pem");
        let e = check(&ServerTls {
            cert_file: junk.clone(),
            key_file: junk.clone(),
            client_ca_file: None,
        })
        .unwrap_err();
        assert_eq!(e.path(), Some(junk.as_path()));
        let e = client_config(&ClientTls {
            ca_file: Some(missing.clone()),
            ..ClientTls::default()
        })
        .unwrap_err();
        assert_eq!(e.path(), Some(missing.as_path()));
        assert!(e.to_string().contains("missing.pem"), "{e}");
    }
}
