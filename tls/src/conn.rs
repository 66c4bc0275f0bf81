//! One accepted connection ([`Conn`]) and the limits every connection of the process lives
//! under ([`ConnLimits`]): a cap on open connections, and the idle and stall timeouts.
//!
//! The cap is process-wide, because what runs out is the process's file descriptors: the
//! collector's three listeners share it. At the cap a listener stops accepting (the kernel's
//! backlog holds the next clients) until a connection closes. Past three quarters of the cap
//! the idle timeout shrinks to [`PRESSURE_IDLE`], so idle clients make room for working ones
//! (Envoy's overload manager does the same).
//!
//! A connection that has not begun a request within the head timeout of being accepted is
//! closed, whatever it trickles. A connection is idle when no request is in progress on it ([`Activity`], counted by
//! [`crate::serve`]) and no byte moved either way for the idle timeout. A response the client
//! does not read is cut when no byte could be written for the idle timeout, request or not.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Sleep;

/// The idle timeout while more than three quarters of the connection cap are open.
pub const PRESSURE_IDLE: Duration = Duration::from_secs(5);

/// Limits on the connections of the whole process. Set once at start with [`set_limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections open at once over every listener of the process, TLS handshakes included.
    pub max_connections: usize,
    /// A connection with no request in progress and no byte either way for this long is
    /// closed; a response that cannot be written for this long is cut.
    pub idle_timeout: Duration,
    /// An HTTP/1 request head (the request line and headers) must arrive within this; it is
    /// also how long a kept-alive HTTP/1 connection may wait for its next request.
    pub header_timeout: Duration,
    /// A request body must arrive whole within this from the head (HTTP/1, HTTP/2, gRPC).
    pub body_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 16_384,
            idle_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
        }
    }
}

impl ConnLimits {
    /// From a config's `[server]` numbers: the cap, then the idle, head and body timeouts in
    /// milliseconds.
    pub fn from_ms(max_connections: usize, idle: u64, header: u64, body: u64) -> ConnLimits {
        ConnLimits {
            max_connections,
            idle_timeout: Duration::from_millis(idle),
            header_timeout: Duration::from_millis(header),
            body_timeout: Duration::from_millis(body),
        }
    }
}

struct Gate {
    limits: RwLock<ConnLimits>,
    open: AtomicUsize,
    freed: Notify,
    started: Instant,
}

static GATE: LazyLock<Gate> = LazyLock::new(|| Gate {
    limits: RwLock::new(ConnLimits::default()),
    open: AtomicUsize::new(0),
    freed: Notify::new(),
    started: Instant::now(),
});

/// Sets the limits of every listener of this process (the collector and the agent call it at
/// start, from their config). Connections already open keep running under the new limits.
pub fn set_limits(limits: ConnLimits) {
    let limits = ConnLimits {
        max_connections: limits.max_connections.max(1),
        ..limits
    };
    match GATE.limits.write() {
        Ok(mut g) => *g = limits,
        Err(p) => *p.into_inner() = limits,
    }
    GATE.freed.notify_waiters();
}

/// The limits in force.
pub fn limits() -> ConnLimits {
    match GATE.limits.read() {
        Ok(g) => *g,
        Err(p) => *p.into_inner(),
    }
}

/// Connections open now in this process.
pub fn open_connections() -> usize {
    GATE.open.load(Ordering::Relaxed)
}

/// The idle timeout now: shorter while the process is near its connection cap.
pub fn idle_timeout_now() -> Duration {
    let l = limits();
    if open_connections() > l.max_connections / 4 * 3 {
        l.idle_timeout.min(PRESSURE_IDLE)
    } else {
        l.idle_timeout
    }
}

/// A place under the connection cap, given back when dropped.
pub struct Slot(());

impl Drop for Slot {
    fn drop(&mut self) {
        GATE.open.fetch_sub(1, Ordering::AcqRel);
        GATE.freed.notify_one();
    }
}

/// Waits for a place under the cap. Logs once each time the cap is reached.
pub async fn slot() -> Slot {
    let mut warned = false;
    loop {
        let freed = GATE.freed.notified();
        let max = limits().max_connections;
        let open = GATE.open.load(Ordering::Acquire);
        if open < max
            && GATE
                .open
                .compare_exchange(open, open + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            return Slot(());
        }
        if open < max {
            continue;
        }
        if !warned {
            tracing::warn!(
                max_connections = max,
                "connection cap reached: new connections wait until one closes (server.max_connections)"
            );
            warned = true;
        }
        freed.await;
    }
}

fn millis_since_start() -> u64 {
    GATE.started.elapsed().as_millis() as u64
}

/// What a connection is doing: requests in progress and the time of its last byte. Shared
/// between the connection and the service that answers its requests.
#[derive(Debug)]
pub struct Activity {
    active: AtomicUsize,
    last_ms: AtomicU64,
    born_ms: u64,
    seen_request: AtomicBool,
}

impl Activity {
    fn new() -> Arc<Activity> {
        let now = millis_since_start();
        Arc::new(Activity {
            active: AtomicUsize::new(0),
            last_ms: AtomicU64::new(now),
            born_ms: now,
            seen_request: AtomicBool::new(false),
        })
    }

    fn touch(&self) {
        self.last_ms.store(millis_since_start(), Ordering::Relaxed);
    }

    /// Marks a request in progress until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InProgress {
        self.active.fetch_add(1, Ordering::AcqRel);
        self.seen_request.store(true, Ordering::Relaxed);
        InProgress(self.clone())
    }

    /// Requests in progress.
    pub fn in_progress(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    fn age(&self) -> Duration {
        Duration::from_millis(millis_since_start().saturating_sub(self.born_ms))
    }

    fn quiet_for(&self) -> Duration {
        let last = self.last_ms.load(Ordering::Relaxed);
        Duration::from_millis(millis_since_start().saturating_sub(last))
    }
}

/// A request in progress on a connection ([`Activity::begin`]).
#[derive(Debug)]
pub struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.touch();
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The remote address.
    pub addr: SocketAddr,
    /// With client certificates: the certificate's subject CN, else its first DNS name.
    pub identity: Option<Arc<str>>,
    /// The connection's activity, for the service that answers it.
    pub activity: Arc<Activity>,
}

/// The identity in a certificate: its subject CN, else its first DNS subject alternative
/// name. None when it has neither or cannot be parsed.
pub fn identity(cert: &[u8]) -> Option<String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(cert).ok()?;
    if let Some(cn) = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
    {
        return Some(cn.to_string());
    }
    let san = cert.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|n| match n {
        GeneralName::DNSName(d) => Some(d.to_string()),
        _ => None,
    })
}

pub(crate) enum Inner {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// One accepted connection, plain or TLS, holding its place under the connection cap.
pub struct Conn {
    inner: Inner,
    peer: Peer,
    timer: Option<Pin<Box<Sleep>>>,
    _slot: Slot,
}

impl Conn {
    pub(crate) fn new(
        inner: Inner,
        addr: SocketAddr,
        identity: Option<Arc<str>>,
        slot: Slot,
    ) -> Conn {
        let _ = match &inner {
            Inner::Plain(s) => s.set_nodelay(true),
            Inner::Tls(s) => s.get_ref().0.set_nodelay(true),
        };
        Conn {
            inner,
            peer: Peer {
                addr,
                identity,
                activity: Activity::new(),
            },
            timer: None,
            _slot: slot,
        }
    }

    /// Who is on the other end.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Called when the inner stream is not ready: Ready(error) once the connection has been
    /// quiet too long, else Pending with a timer armed to look again.
    fn poll_quiet(&mut self, cx: &mut Context<'_>, writing: bool) -> Poll<io::Result<()>> {
        let a = &self.peer.activity;
        let limit = if writing {
            limits().idle_timeout
        } else if a.in_progress() > 0 {
            // The request is being answered: reading waits on the service, not the client.
            return Poll::Pending;
        } else {
            idle_timeout_now()
        };
        // A client that has not begun a request within the head timeout of connecting is
        // cut, however many bytes it trickles (an HTTP/2 preface or TLS-wrapped head sent
        // one byte a second has no other bound).
        let first_by =
            (!writing && !a.seen_request.load(Ordering::Relaxed)).then(|| limits().header_timeout);
        loop {
            if let Some(first) = first_by
                && a.age() >= first
            {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no request began within {first:?} of connecting"),
                )));
            }
            let quiet = a.quiet_for();
            if quiet >= limit {
                let what = if writing {
                    "the client did not read the response"
                } else {
                    "the connection was idle"
                };
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{what} for {limit:?}"),
                )));
            }
            // Look again at least every PRESSURE_IDLE, so a timeout that shrinks under
            // pressure takes effect.
            let mut wait = (limit - quiet).min(PRESSURE_IDLE);
            if let Some(first) = first_by {
                wait = wait.min(first.saturating_sub(a.age()));
            }
            let deadline = tokio::time::Instant::now() + wait;
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

use std::future::Future;

macro_rules! both {
    ($self:ident, $s:ident => $e:expr) => {
        match &mut $self.inner {
            Inner::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            Inner::Tls($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
        }
    };
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match both!(this, s => s.poll_read(cx, buf)) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.peer.activity.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_quiet(cx, false),
        }
    }
}

impl Conn {
    /// After a write to the inner stream: progress counts as activity; a write that cannot
    /// go on for the idle timeout fails the connection.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match r {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.peer.activity.touch();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // poll_quiet is Pending or an error, never Ready(Ok).
            Poll::Pending => self.poll_quiet(cx, true).map(|r| r.map(|()| 0)),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = both!(this, s => s.poll_write(cx, buf));
        this.wrote(cx, r)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match both!(this, s => s.poll_flush(cx)) {
            Poll::Pending => this.poll_quiet(cx, true),
            done => done,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        both!(this, s => s.poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = both!(this, s => s.poll_write_vectored(cx, bufs));
        this.wrote(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Inner::Plain(s) => s.is_write_vectored(),
            Inner::Tls(s) => s.is_write_vectored(),
        }
    }
}
