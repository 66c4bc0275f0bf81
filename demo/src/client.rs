//! Calls from one service to another, each with its own client span.
//!
//! Every call carries `traceparent` (the client span's context) and `X-Request-ID`, has a
//! timeout, and reads at most [`crate::server::MAX_BODY_BYTES`] of the answer.

use crate::server::MAX_BODY_BYTES;
use crate::{Addresses, DemoError, ServiceName, propagation, request_id};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::Value;
use std::time::Duration;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Timeout of a call to a service that answers by itself (coupon, payment, delivery).
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The HTTP client of one service, and where its peers listen.
pub(crate) struct Peers {
    client: reqwest::Client,
    addresses: Addresses,
}

/// One call to a peer.
pub(crate) struct Call<'a> {
    /// The service called.
    pub(crate) callee: ServiceName,
    /// The HTTP method.
    pub(crate) method: Method,
    /// The route template, for the span name (e.g. `/orders/{id}`).
    pub(crate) route: &'static str,
    /// The path actually requested.
    pub(crate) path: String,
    /// A JSON body, if any.
    pub(crate) body: Option<Value>,
    /// The request ID to pass on.
    pub(crate) request_id: &'a str,
    /// How long to wait for the whole answer.
    pub(crate) timeout: Duration,
    /// An explicit parent context; `None` makes the client span a child of the current span.
    pub(crate) parent: Option<opentelemetry::Context>,
}

/// A peer's answer.
#[derive(Debug)]
pub(crate) struct Reply {
    /// Its status.
    pub(crate) status: StatusCode,
    /// Its body (at most [`MAX_BODY_BYTES`]).
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// The body as JSON, if it is JSON.
    pub(crate) fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The `error` message of a JSON error body, or the start of the body.
    pub(crate) fn error_message(&self) -> String {
        self.json()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&self.body)
                    .chars()
                    .take(200)
                    .collect()
            })
    }
}

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// No whole answer within the timeout.
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The peer could not be reached or the connection broke.
    #[error("{0}")]
    Failed(String),
    /// The answer was larger than allowed.
    #[error("answer larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
}

impl CallError {
    /// A short name for the `error.type` span attribute.
    fn kind(&self) -> &'static str {
        match self {
            CallError::Timeout(_) => "timeout",
            CallError::Failed(_) => "connection",
            CallError::TooLarge => "too_large",
        }
    }
}

impl Peers {
    /// A client for calls to the services at `addresses`.
    pub(crate) fn new(addresses: Addresses) -> Result<Peers, DemoError> {
        let client = reqwest::Client::builder()
            .connect_timeout(CALL_TIMEOUT)
            .build()
            .map_err(DemoError::Client)?;
        Ok(Peers { client, addresses })
    }

    /// Makes one call under a client span named `"{METHOD} {route}"`.
    pub(crate) async fn call(&self, call: Call<'_>) -> Result<Reply, CallError> {
        let addr = self.addresses.of(call.callee);
        let name = format!("{} {}", call.method, call.route);
        let span = tracing::info_span!(
            "client",
            otel.name = %name,
            otel.kind = "client",
            http.request.method = %call.method,
            server.address = %addr.ip(),
            server.port = addr.port(),
            peer.service = call.callee.as_str(),
            http.response.status_code = Empty,
            otel.status_code = Empty,
            error.type = Empty,
            request_id = %call.request_id,
        );
        if let Some(parent) = call.parent.clone() {
            let _ = span.set_parent(parent);
        }
        let mut headers = HeaderMap::new();
        propagation::inject(&span.context(), &mut headers);
        if let Ok(v) = HeaderValue::from_str(call.request_id) {
            headers.insert(request_id::HEADER, v);
        }
        let url = format!("http://{addr}{}", call.path);
        let result = self
            .send(url, &call, headers)
            .instrument(span.clone())
            .await;
        match &result {
            Ok(reply) => {
                span.record("http.response.status_code", reply.status.as_u16());
                if reply.status.is_server_error() {
                    span.record("otel.status_code", "ERROR");
                    span.record("error.type", reply.status.as_str());
                }
            }
            Err(e) => {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", e.kind());
            }
        }
        result
    }

    async fn send(
        &self,
        url: String,
        call: &Call<'_>,
        headers: HeaderMap,
    ) -> Result<Reply, CallError> {
        let mut req = self
            .client
            .request(call.method.clone(), url)
            .headers(headers)
            .timeout(call.timeout);
        if let Some(body) = &call.body {
            req = req.json(body);
        }
        let map = |e: reqwest::Error| {
            if e.is_timeout() {
                CallError::Timeout(call.timeout)
            } else {
                CallError::Failed(describe(&e))
            }
        };
        let mut resp = req.send().await.map_err(map)?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(map)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(CallError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply { status, body })
    }
}

/// A reqwest error with its causes, e.g. "error sending request: connection refused".
fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s.chars().take(500).collect()
}
