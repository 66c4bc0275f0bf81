//! Serving an axum router (REST or gRPC) on a [`Listener`] under the process's connection
//! limits ([`crate::conn`]). Every HTTP listener of Skein goes through [`serve`].
//!
//! Per connection: HTTP/1 and HTTP/2 (prior knowledge or ALPN), WebSocket-style upgrades,
//! the HTTP/1 head timeout (hyper's `header_read_timeout`, which also bounds how long a
//! kept-alive connection waits for its next request), at most [`MAX_STREAMS`] HTTP/2 streams.
//! Per request: the body must arrive whole within the body timeout (else the body read fails
//! with [`BodyTimeout`]), the peer ([`Peer`], with its certificate identity under mTLS) is in
//! the request's extensions, and the request counts as in progress on its connection until its
//! response body is done, so the connection is not closed as idle meanwhile.
//!
//! On shutdown the listener is dropped, every connection is asked to finish (HTTP/1 after the
//! response in flight, HTTP/2 with GOAWAY), and [`serve`] waits for them up to
//! [`SHUTDOWN_GRACE`].

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::time::Sleep;
use tower::ServiceExt;

use crate::conn::{InProgress, Peer, limits};
use crate::server::{Listener, next};

/// HTTP/2 streams at once on one connection.
pub const MAX_STREAMS: u32 = 256;
/// How long a stopping server waits for its connections to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A request body that did not arrive whole within the body timeout.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

impl fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the request body did not arrive whole within {} s (server.body_timeout_ms); send it faster or in smaller batches",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for BodyTimeout {}

/// Whether an error from reading a body (as axum or http-body-util report it) is a
/// [`BodyTimeout`].
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimeout>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Serves `app` on `listener` until `stop` completes, then lets the connections finish (up to
/// [`SHUTDOWN_GRACE`]).
pub async fn serve(
    mut listener: Listener,
    app: axum::Router,
    stop: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let conn = tokio::select! {
            c = next(&mut listener) => c,
            () = &mut stop => break,
        };
        let Some(conn) = conn else {
            // The TLS accept task ended: only when the listener goes away.
            break;
        };
        let l = limits();
        let svc = TowerToHyperService::new(Tracked {
            app: app.clone(),
            peer: conn.peer().clone(),
            body_timeout: l.body_timeout,
        });
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(l.header_timeout)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(MAX_STREAMS);
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(conn), svc)
            .into_owned();
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open {SHUTDOWN_GRACE:?} after shutdown began; closing them"
        );
    }
    Ok(())
}

/// The per-connection service: the peer into the request, the body deadline, the request in
/// progress until its response body ends.
#[derive(Clone)]
struct Tracked {
    app: axum::Router,
    peer: Peer,
    body_timeout: Duration,
}

impl tower::Service<Request<hyper::body::Incoming>> for Tracked {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<hyper::body::Incoming>) -> Self::Future {
        let guard = self.peer.activity.begin();
        let mut req = req.map(|b| Body::new(Deadline::new(b, self.body_timeout)));
        req.extensions_mut().insert(self.peer.clone());
        let app = self.app.clone();
        Box::pin(async move {
            let resp = app.oneshot(req).await?;
            Ok(resp.map(|b| {
                Body::new(Guarded {
                    inner: b,
                    _guard: guard,
                })
            }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A request body that fails with [`BodyTimeout`] when it has not ended by its deadline.
    struct Deadline {
        #[pin]
        inner: hyper::body::Incoming,
        #[pin]
        sleep: Sleep,
        limit: Duration,
    }
}

impl Deadline {
    fn new(inner: hyper::body::Incoming, limit: Duration) -> Deadline {
        Deadline {
            inner,
            sleep: tokio::time::sleep(limit),
            limit,
        }
    }
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(f) => Poll::Ready(f.map(|r| r.map_err(Into::into))),
            Poll::Pending => match this.sleep.poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(*this.limit))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request in progress until it ends or is dropped.
    struct Guarded {
        #[pin]
        inner: Body,
        _guard: InProgress,
    }
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
