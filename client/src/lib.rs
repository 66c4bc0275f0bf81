//! A typed HTTP client for Skein's query API, used by the CLI and the TUI.
//!
//! It depends only on the model's API shapes (and reqwest), never on the query engine or the
//! store, so the TUI cannot pull in tantivy: `cargo tree -p skein-client` has none. [`live`]
//! reads the live tail (Server-Sent Events) and resumes after the last line it got.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use skein_model::alert_api::{
    AlertsResponse, HistoryResponse, NewSilence, NotificationsResponse, RulesResponse,
    SilenceCreated, SilencesResponse,
};
use skein_model::api::{ErrorBody, HostsResponse, LogsResponse, TraceResponse, TracesResponse};
use skein_model::metrics_api::{
    DependenciesResponse, MetricNamesResponse, MetricQueryResponse, OperationsResponse,
    ServicesResponse,
};
pub use skein_tls::ClientTls;

/// How long one request may take, connection included. Queries are bounded on the server, so
/// an answer slower than this means something is wrong, not that the query is large.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Longest piece of a non-JSON error body kept in [`ClientError::Api`]: a proxy's HTML error
/// page is not worth printing whole.
const MAX_ERROR_TEXT: usize = 512;

/// What can go wrong talking to the query API.
#[derive(thiserror::Error, Debug)]
pub enum ClientError {
    /// The API answered with a non-2xx status.
    #[error("the query API answered {status} {error}: {message}")]
    Api {
        /// HTTP status code.
        status: u16,
        /// The error kind from the [`ErrorBody`] (`bad_request`, `unauthorized`, ...), or the
        /// status reason when the body was not an API error.
        error: String,
        /// The error message from the [`ErrorBody`], or the body's text.
        message: String,
    },
    /// No answer: bad address, connection refused, timeout.
    #[error("{0}")]
    Transport(String),
    /// An answer that is not the expected JSON.
    #[error("cannot read the query API's answer: {0}")]
    Decode(String),
}

/// Query parameters of `GET /api/v1/logs`. `None` fields are left out of the query string.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LogsQuery {
    /// Full-text query on log bodies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Only this service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Minimum severity, for example `warn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Start of the time range (any form `skein_model::time::parse_time` reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// End of the time range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Most logs to return.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// Query parameters of `GET /api/v1/traces`. `None` fields are left out of the query string.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TracesQuery {
    /// Only traces with a span of this service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Only traces with a span of this name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Only traces at least this long, for example `250ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_duration: Option<String>,
    /// Only traces at most this long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
    /// Start of the time range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// End of the time range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Only traces with (`true`) or without (`false`) an error span.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<bool>,
    /// Most traces to return.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// A client of one Skein query API.
#[derive(Clone)]
pub struct Client {
    base: Url,
    token: Option<String>,
    http: reqwest::Client,
    /// The TLS config when one was asked for (CA file, client certificate, insecure switch);
    /// the live tail's client uses it too.
    tls: Option<skein_tls::rustls::ClientConfig>,
}

// Written by hand so that the bearer token never ends up in a log line or a panic message.
impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    /// A client of the API at `base_url`, for example `http://127.0.0.1:7700`. A trailing slash
    /// and a missing scheme (`127.0.0.1:7700`, meaning `http://`) are accepted; a path prefix
    /// (`http://proxy/skein`) is kept. `token` is sent as a bearer token.
    ///
    /// The TLS files named by the environment are used as in [`Client::with_tls`]:
    /// `SKEIN_CA_FILE`, `SKEIN_CLIENT_CERT` and `SKEIN_CLIENT_KEY`.
    pub fn new(base_url: &str, token: Option<String>) -> Result<Client, ClientError> {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(std::path::PathBuf::from)
        };
        let tls = ClientTls {
            ca_file: var("SKEIN_CA_FILE"),
            client_cert_file: var("SKEIN_CLIENT_CERT"),
            client_key_file: var("SKEIN_CLIENT_KEY"),
            insecure_skip_verify: false,
        };
        Client::with_tls(base_url, token, &tls)
    }

    /// Like [`Client::new`], trusting the CA certificates of the PEM file `ca_file` besides the
    /// system's roots for an `https://` API.
    pub fn with_ca(
        base_url: &str,
        token: Option<String>,
        ca_file: Option<&Path>,
    ) -> Result<Client, ClientError> {
        let tls = ClientTls {
            ca_file: ca_file.map(Path::to_path_buf),
            ..ClientTls::default()
        };
        Client::with_tls(base_url, token, &tls)
    }

    /// Like [`Client::new`], with TLS set by `tls` for an `https://` API: a CA file trusted
    /// besides the system's roots, a client certificate for an API that asks for one (mTLS),
    /// or no check of the server's certificate at all (`insecure_skip_verify`; the caller
    /// warns the user). With nothing set, reqwest's own set-up is used (the system's roots).
    /// A file that cannot be used is an error naming it.
    pub fn with_tls(
        base_url: &str,
        token: Option<String>,
        tls: &ClientTls,
    ) -> Result<Client, ClientError> {
        let base = normalize_base(base_url)?;
        let tls = if *tls == ClientTls::default() {
            None
        } else {
            Some(
                skein_tls::client_config(tls)
                    .map_err(|e| ClientError::Transport(format!("TLS: {e}")))?,
            )
        };
        let http = with_tls(reqwest::Client::builder(), &tls)
            .timeout(TIMEOUT)
            .user_agent(concat!("skein/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Transport(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Client {
            base,
            token,
            http,
            tls,
        })
    }

    /// The normalized base URL.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// `GET /api/v1/traces/{key}`: everything tied to a trace ID or request ID. `Ok(None)` when
    /// nothing is known about the key (404).
    pub async fn trace(&self, key: &str) -> Result<Option<TraceResponse>, ClientError> {
        let Some(url) = self.trace_url(key) else {
            return Ok(None);
        };
        self.get(url, true).await
    }

    /// `GET /api/v1/logs`: a log search.
    pub async fn logs(&self, q: &LogsQuery) -> Result<LogsResponse, ClientError> {
        let url = self.query_url(&["api", "v1", "logs"], q)?;
        required(self.get(url, false).await?)
    }

    /// `GET /api/v1/traces`: a trace search.
    pub async fn traces(&self, q: &TracesQuery) -> Result<TracesResponse, ClientError> {
        let url = self.query_url(&["api", "v1", "traces"], q)?;
        required(self.get(url, false).await?)
    }

    /// `GET /api/v1/services`: every service's rate, errors and latency over `window`
    /// (`1m`, `5m`).
    pub async fn services(&self, window: &str) -> Result<ServicesResponse, ClientError> {
        self.fetch(&["api", "v1", "services"], &[("window", window)])
            .await
    }

    /// `GET /api/v1/services/{name}/operations`. `Ok(None)` for an unknown service.
    pub async fn operations(
        &self,
        service: &str,
        window: &str,
    ) -> Result<Option<OperationsResponse>, ClientError> {
        let url = self.pairs_url(
            &["api", "v1", "services", service, "operations"],
            &[("window", window)],
        );
        self.get(url, true).await
    }

    /// `GET /api/v1/dependencies` over `[start, end]` (times as the API reads them).
    pub async fn dependencies(
        &self,
        start: Option<&str>,
        end: Option<&str>,
    ) -> Result<DependenciesResponse, ClientError> {
        let mut p = Vec::new();
        if let Some(s) = start {
            p.push(("start", s));
        }
        if let Some(e) = end {
            p.push(("end", e));
        }
        self.fetch(&["api", "v1", "dependencies"], &p).await
    }

    /// `GET /api/v1/metrics/query`. `params` are the query pairs (`name`, `match` repeated,
    /// `start`, `end`, `step`, `agg`, `by`).
    pub async fn metric_query(
        &self,
        params: &[(&str, &str)],
    ) -> Result<MetricQueryResponse, ClientError> {
        self.fetch(&["api", "v1", "metrics", "query"], params).await
    }

    /// `GET /api/v1/metrics/names`.
    pub async fn metric_names(&self) -> Result<MetricNamesResponse, ClientError> {
        self.fetch(&["api", "v1", "metrics", "names"], &[]).await
    }

    /// `GET /api/v1/cluster` (a collector in cluster mode; 404 on a single node).
    pub async fn cluster(&self) -> Result<skein_model::cluster_api::ClusterStatus, ClientError> {
        self.fetch(&["api", "v1", "cluster"], &[]).await
    }

    /// `GET /api/v1/hosts`.
    pub async fn hosts(&self) -> Result<HostsResponse, ClientError> {
        self.fetch(&["api", "v1", "hosts"], &[]).await
    }

    /// `GET /api/v1/logs/context`: up to `before` and `after` lines around `time_unix_nano`
    /// from the same service (and host, when given).
    pub async fn log_context(
        &self,
        service: &str,
        host: Option<&str>,
        time_unix_nano: u64,
        before: usize,
        after: usize,
    ) -> Result<skein_model::api::LogContextResponse, ClientError> {
        let (t, b, a) = (
            time_unix_nano.to_string(),
            before.to_string(),
            after.to_string(),
        );
        let mut p = vec![
            ("service", service),
            ("time", &t),
            ("before", &b),
            ("after", &a),
        ];
        if let Some(h) = host {
            p.push(("host", h));
        }
        self.fetch(&["api", "v1", "logs", "context"], &p).await
    }

    /// `GET /api/v1/alerts`, optionally only `pending` or `firing` ones.
    pub async fn alerts(&self, state: Option<&str>) -> Result<AlertsResponse, ClientError> {
        let p: Vec<(&str, &str)> = state.map(|s| ("state", s)).into_iter().collect();
        self.fetch(&["api", "v1", "alerts"], &p).await
    }

    /// `GET /api/v1/alerts/history` with query pairs (`rule`, `fingerprint`, `since`, `limit`).
    pub async fn alert_history(
        &self,
        params: &[(&str, &str)],
    ) -> Result<HistoryResponse, ClientError> {
        self.fetch(&["api", "v1", "alerts", "history"], params)
            .await
    }

    /// `GET /api/v1/alerts/notifications`.
    pub async fn notifications(&self) -> Result<NotificationsResponse, ClientError> {
        self.fetch(&["api", "v1", "alerts", "notifications"], &[])
            .await
    }

    /// `GET /api/v1/rules`.
    pub async fn rules(&self) -> Result<RulesResponse, ClientError> {
        self.fetch(&["api", "v1", "rules"], &[]).await
    }

    /// `GET /api/v1/silences`.
    pub async fn silences(&self) -> Result<SilencesResponse, ClientError> {
        self.fetch(&["api", "v1", "silences"], &[]).await
    }

    /// `POST /api/v1/silences`: returns the new silence's ID.
    pub async fn add_silence(&self, s: &NewSilence) -> Result<SilenceCreated, ClientError> {
        let url = self.endpoint(&["api", "v1", "silences"]);
        let body = serde_json::to_vec(s)
            .map_err(|e| ClientError::Decode(format!("cannot encode the silence: {e}")))?;
        let req = self
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.send(req, &url).await
    }

    /// `DELETE /api/v1/silences/{id}`: ends a silence now.
    pub async fn expire_silence(&self, id: &str) -> Result<(), ClientError> {
        let url = self.endpoint(&["api", "v1", "silences", id]);
        let req = self.http.delete(url.clone());
        let _: serde_json::Value = self.send(req, &url).await?;
        Ok(())
    }

    /// Sends a request with the token and reads a JSON answer; any non-2xx is an error.
    async fn send<T: DeserializeOwned>(
        &self,
        mut req: reqwest::RequestBuilder,
        url: &Url,
    ) -> Result<T, ClientError> {
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        if !status.is_success() {
            return Err(api_error(status, &body));
        }
        serde_json::from_slice(&body)
            .map_err(|e| ClientError::Decode(format!("{e} (from {})", redact_query(url))))
    }

    /// `segments` plus query pairs, kept in order (a name may repeat).
    /// `GET` of an endpoint that must exist (a 404 means this is not a Skein API), as JSON.
    async fn fetch<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        pairs: &[(&str, &str)],
    ) -> Result<T, ClientError> {
        required(self.get(self.pairs_url(segments, pairs), false).await?)
    }

    fn pairs_url(&self, segments: &[&str], pairs: &[(&str, &str)]) -> Url {
        let mut url = self.endpoint(segments);
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        url
    }

    /// The base URL with `segments` appended, each percent-encoded as one path segment.
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // normalize_base made sure the URL can be a base, so this cannot fail; the `if let`
        // only keeps the code free of unwrap.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// The URL of a trace lookup, `None` for a key that cannot be a path segment.
    fn trace_url(&self, key: &str) -> Option<Url> {
        // URL path normalization turns `.` and `..` (and their %2e forms) into "this" and
        // "parent" segments, so such a key would query another route. No real correlation key
        // (a trace ID, a request ID) looks like that; treat it as not found.
        if key.is_empty() || key == "." || key == ".." {
            return None;
        }
        Some(self.endpoint(&["api", "v1", "traces", key]))
    }

    /// The URL of a search: `segments` plus the non-`None` fields of `query`.
    fn query_url<Q: Serialize>(&self, segments: &[&str], query: &Q) -> Result<Url, ClientError> {
        let mut url = self.endpoint(segments);
        // reqwest's own `.query()` needs a cargo feature this crate does not enable; going
        // through JSON gives the same pairs for these flat structs.
        let value = serde_json::to_value(query)
            .map_err(|e| ClientError::Decode(format!("cannot encode the query: {e}")))?;
        let serde_json::Value::Object(fields) = value else {
            return Err(ClientError::Decode("the query is not a flat struct".into()));
        };
        if !fields.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &fields {
                match value {
                    serde_json::Value::Null => {}
                    serde_json::Value::String(s) => {
                        pairs.append_pair(name, s);
                    }
                    other => {
                        pairs.append_pair(name, &other.to_string());
                    }
                }
            }
        }
        Ok(url)
    }

    /// Sends a GET and reads a JSON answer. With `not_found_is_none`, a 404 is `Ok(None)`.
    async fn get<T: DeserializeOwned>(
        &self,
        url: Url,
        not_found_is_none: bool,
    ) -> Result<Option<T>, ClientError> {
        let mut req = self.http.get(url.clone());
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        if not_found_is_none && status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(api_error(status, &body));
        }
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| ClientError::Decode(format!("{e} (from {})", redact_query(&url))))
    }

    /// Whether a failure looks like a TLS server that wants a client certificate we did not
    /// give: https, no client certificate, and the connection closed rather than refused or
    /// timed out.
    fn may_want_client_cert(&self, e: &reqwest::Error, detail: &str) -> bool {
        let has_cert = self
            .tls
            .as_ref()
            .is_some_and(|t| t.client_auth_cert_resolver.has_certs());
        self.base.scheme() == "https"
            && !has_cert
            && !e.is_timeout()
            && !["refused", "dns error", "certificate"]
                .iter()
                .any(|w| detail.to_ascii_lowercase().contains(w))
    }

    /// Turns a reqwest failure into a message that says where we tried to go and what to check.
    fn transport_error(&self, e: &reqwest::Error) -> ClientError {
        let addr = origin(&self.base);
        // reqwest's Display is only "error sending request"; the cause is down the chain.
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        let msg = if let Some(hint) = tls_hint(&detail) {
            // The hint first: the TUI's status line shows the start of the message only.
            format!("TLS to {addr} failed: {hint} ({detail})")
        } else if self.may_want_client_cert(e, &detail) {
            // Under TLS 1.3 a server that wants a client certificate may refuse after the
            // client has sent its request: the error then names no alert, only a closed
            // connection.
            format!(
                "the query API at {addr} closed the connection: if it wants a client certificate, give --client-cert and --client-key ({detail})"
            )
        } else if e.is_timeout() {
            format!(
                "no answer from the query API at {addr} within {}s ({detail})",
                TIMEOUT.as_secs()
            )
        } else if e.is_connect() {
            format!(
                "cannot connect to the query API at {addr} ({detail}); the Skein collector may \
                 not be running there, or the address is wrong"
            )
        } else {
            format!("request to the query API at {addr} failed ({detail})")
        };
        ClientError::Transport(msg)
    }
}

/// What to do about a TLS failure, read from the error's text (rustls names its alerts and
/// certificate errors); None for other failures. Short, so that it fits the TUI's status line.
fn tls_hint(detail: &str) -> Option<&'static str> {
    if detail.contains("CertificateRequired") {
        Some("the query API wants a client certificate: give --client-cert and --client-key")
    } else if detail.contains("UnknownIssuer") {
        Some("the server's certificate is from an unknown CA: give its CA with --ca-file")
    } else if ["BadCertificate", "UnknownCA", "CertificateUnknown"]
        .iter()
        .any(|a| detail.contains(&format!("alert: {a}")))
    {
        Some("the query API refused the client certificate: check --client-cert and --client-key")
    } else {
        None
    }
}

/// A search endpoint never answers 404 on purpose; if it does, the base URL is wrong, and that
/// is an error, not an empty result.
fn required<T>(answer: Option<T>) -> Result<T, ClientError> {
    answer.ok_or_else(|| ClientError::Api {
        status: 404,
        error: "not_found".into(),
        message: "no such endpoint; is the base URL that of a Skein query API?".into(),
    })
}

/// Uses `tls` when given, else reqwest's own TLS set-up (the system's roots).
fn with_tls(
    b: reqwest::ClientBuilder,
    tls: &Option<skein_tls::rustls::ClientConfig>,
) -> reqwest::ClientBuilder {
    match tls {
        Some(t) => b.tls_backend_preconfigured(t.clone()),
        None => b,
    }
}

/// Parses and normalizes a base URL: adds `http://` when there is no scheme, and checks that
/// paths can be appended.
fn normalize_base(base_url: &str) -> Result<Url, ClientError> {
    let text = base_url.trim();
    if text.is_empty() {
        return Err(ClientError::Transport("empty query API address".into()));
    }
    // "localhost:7700" parses as a URL with scheme "localhost", so the test is on "://", not on
    // whether it parses.
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    let url = Url::parse(&with_scheme).map_err(|e| {
        ClientError::Transport(format!(
            "invalid query API address '{text}': {e}; use a form such as http://127.0.0.1:7700"
        ))
    })?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(ClientError::Transport(format!(
            "invalid query API address '{text}': use an http:// or https:// URL such as \
             http://127.0.0.1:7700"
        )));
    }
    Ok(url)
}

/// The scheme, host and port of a URL, for messages.
fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// A URL for a message, without its query string (which may hold search terms).
fn redact_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

/// The error for a non-2xx answer: the API's [`ErrorBody`] when the body is one, else the
/// status reason and the start of the body's text.
fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    if let Ok(eb) = serde_json::from_slice::<ErrorBody>(body) {
        return ClientError::Api {
            status: status.as_u16(),
            error: eb.error,
            message: eb.message,
        };
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let message = if text.is_empty() {
        "(empty body)".to_string()
    } else if text.len() > MAX_ERROR_TEXT {
        let mut cut = MAX_ERROR_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}…", &text[..cut])
    } else {
        text.to_string()
    };
    ClientError::Api {
        status: status.as_u16(),
        error: status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
            .replace(' ', "_"),
        message,
    }
}

mod live;
pub use live::LiveLine;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn client(base: &str) -> Client {
        Client::new(base, None).unwrap()
    }

    #[test]
    fn client_base_is_normalized() {
        for base in [
            "http://127.0.0.1:7700",
            "http://127.0.0.1:7700/",
            "127.0.0.1:7700",
            "127.0.0.1:7700/",
            "  http://127.0.0.1:7700  ",
        ] {
            let c = client(base);
            assert_eq!(
                c.endpoint(&["api", "v1", "logs"]).as_str(),
                "http://127.0.0.1:7700/api/v1/logs",
                "base {base:?}"
            );
        }
        // A bare host name with a port must not be read as a scheme.
        assert_eq!(
            client("localhost:7700").trace_url("abc").unwrap().as_str(),
            "http://localhost:7700/api/v1/traces/abc"
        );
        // A path prefix (behind a reverse proxy) is kept, with or without trailing slash.
        for base in [
            "https://proxy.example/skein",
            "https://proxy.example/skein/",
        ] {
            assert_eq!(
                client(base).endpoint(&["api", "v1", "traces"]).as_str(),
                "https://proxy.example/skein/api/v1/traces"
            );
        }
    }

    #[test]
    fn client_rejects_bad_bases() {
        assert!(matches!(
            Client::new("", None),
            Err(ClientError::Transport(_))
        ));
        assert!(matches!(
            Client::new("ftp://host", None),
            Err(ClientError::Transport(_))
        ));
        assert!(matches!(
            Client::new("http://", None),
            Err(ClientError::Transport(_))
        ));
    }

    #[test]
    fn client_trace_key_is_one_encoded_segment() {
        let c = client("http://127.0.0.1:7700");
        let url = |k: &str| c.trace_url(k).unwrap().to_string();
        assert_eq!(
            url("4bf92f3577b34da6a3ce929d0e0e4736"),
            "http://127.0.0.1:7700/api/v1/traces/4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(
            url("req 42/a?b#c%d"),
            "http://127.0.0.1:7700/api/v1/traces/req%2042%2Fa%3Fb%23c%25d"
        );
        assert_eq!(url("é"), "http://127.0.0.1:7700/api/v1/traces/%C3%A9");
        // The encoded key stays one segment.
        let u = c.trace_url("a/b/../c").unwrap();
        assert_eq!(u.path_segments().unwrap().count(), 4);
        // Keys that would change the route are not sent at all.
        assert!(c.trace_url("..").is_none());
        assert!(c.trace_url(".").is_none());
        assert!(c.trace_url("").is_none());
    }

    /// Query pairs sorted: their order depends on serde_json's `preserve_order` feature, which
    /// other crates of the build may switch on, and does not matter to the server.
    fn pairs(url: &Url) -> Vec<String> {
        let mut v: Vec<String> = url.query_pairs().map(|(k, v)| format!("{k}={v}")).collect();
        v.sort();
        v
    }

    #[test]
    fn client_query_strings_skip_none() {
        let c = client("http://h:1");
        let url = c
            .query_url(&["api", "v1", "logs"], &LogsQuery::default())
            .unwrap();
        assert_eq!(url.as_str(), "http://h:1/api/v1/logs");

        let q = LogsQuery {
            q: Some("payment failed & more".into()),
            service: Some("checkout".into()),
            limit: Some(20),
            ..Default::default()
        };
        let url = c.query_url(&["api", "v1", "logs"], &q).unwrap();
        assert_eq!(url.path(), "/api/v1/logs");
        assert_eq!(
            pairs(&url),
            ["limit=20", "q=payment failed & more", "service=checkout"]
        );
        assert!(url.as_str().contains("q=payment+failed+%26+more"), "{url}");

        let q = TracesQuery {
            min_duration: Some("250ms".into()),
            error: Some(true),
            start: Some("15m".into()),
            ..Default::default()
        };
        let url = c.query_url(&["api", "v1", "traces"], &q).unwrap();
        assert_eq!(url.path(), "/api/v1/traces");
        assert_eq!(
            pairs(&url),
            ["error=true", "min_duration=250ms", "start=15m"]
        );
    }

    #[test]
    fn client_api_errors_use_the_error_body_or_the_text() {
        let e = api_error(
            StatusCode::BAD_REQUEST,
            br#"{"error":"bad_request","message":"bad limit"}"#,
        );
        match e {
            ClientError::Api {
                status,
                error,
                message,
            } => {
                assert_eq!(
                    (status, error.as_str(), message.as_str()),
                    (400, "bad_request", "bad limit")
                );
            }
            other => panic!("{other:?}"),
        }
        let e = api_error(StatusCode::BAD_GATEWAY, b"<html>upstream down</html>\n");
        assert_eq!(
            e.to_string(),
            "the query API answered 502 bad_gateway: <html>upstream down</html>"
        );
        let long = "x".repeat(5000);
        match api_error(StatusCode::INTERNAL_SERVER_ERROR, long.as_bytes()) {
            ClientError::Api { message, .. } => assert!(message.len() < 600),
            other => panic!("{other:?}"),
        }
        match api_error(StatusCode::SERVICE_UNAVAILABLE, b"") {
            ClientError::Api { message, .. } => assert_eq!(message, "(empty body)"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn client_debug_hides_the_token() {
        let c = Client::new("http://h:1", Some("s3cret".into())).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn tls_failures_say_which_flag_to_give() {
        let hint = |d: &str| tls_hint(d).unwrap_or_default();
        let needs_cert = hint("connection error: received fatal alert: CertificateRequired");
        assert!(needs_cert.contains("--client-cert"), "{needs_cert}");
        assert!(hint("invalid peer certificate: UnknownIssuer").contains("--ca-file"));
        let refused = hint("received fatal alert: BadCertificate");
        assert!(
            refused.contains("refused the client certificate"),
            "{refused}"
        );
        assert_eq!(tls_hint("connection refused"), None);
    }

    #[test]
    fn a_tls_file_that_cannot_be_used_is_named() {
        let dir = std::env::temp_dir().join(format!("skein-client-tls-{}", std::process::id()));
        let missing = dir.join("no-such-cert.pem");
        let tls = ClientTls {
            client_cert_file: Some(missing.clone()),
            client_key_file: Some(dir.join("no-such-key.pem")),
            // No roots are read, so the machine's own store plays no part.
            insecure_skip_verify: true,
            ..ClientTls::default()
        };
        let e = Client::with_tls("https://127.0.0.1:1", None, &tls).unwrap_err();
        assert!(e.to_string().contains(missing.to_str().unwrap()), "{e}");
        // Nothing asked for: reqwest's own set-up, no file read.
        assert!(Client::with_tls("http://127.0.0.1:1", None, &ClientTls::default()).is_ok());
    }
}
