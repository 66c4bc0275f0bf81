//! Delivery: one task per webhook receiver sends its outbox queue in order over HTTP.
//!
//! The head of a receiver's queue is POSTed until the receiver answers 2xx; only then is the
//! next one sent, so a slow or dead receiver holds back its own queue and no other. Each
//! request carries `Idempotency-Key: <notification id>`, the same on every retry and after a
//! restart, so a receiver can drop the duplicates that at-least-once delivery brings.
//!
//! - 2xx: delivered, the file is deleted.
//! - 5xx, 408, 429, connect errors, timeouts: retried after a capped exponential backoff
//!   (or the `Retry-After` seconds the receiver asked for), until the notification is older
//!   than [`RetryPolicy::give_up_after`].
//! - other 4xx, 3xx (redirects are never followed: the body and the configured headers go
//!   to the configured URL only), an invalid URL or header: permanent failure, the
//!   notification moves to the outbox's `failed/`.
//!
//! A receiver URL is shown (API, logs, failure reasons) only through [`redact_url`]: no
//! user, password, query value or fragment.
//!
//! An `https://` receiver is reached with Skein's TLS set-up (`skein-tls`: rustls, no
//! OpenSSL): the system's roots plus the receiver's `ca_file`; `insecure_skip_verify` skips
//! the certificate check and is logged as a warning at start. A certificate the receiver's
//! server presents that is not trusted is a connect error, so it is retried.

use super::outbox::{Notification, Outbox};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use reqwest::{StatusCode, Url};
use skein_model::time::now_ms;
use skein_tls::ClientTls;
use std::collections::BTreeSet;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[cfg(test)]
#[path = "deliver_tests.rs"]
mod tests;

/// Most bytes of a response body read for an error message.
const MAX_RESPONSE_READ: usize = 64 * 1024;
/// Most characters of a response body kept in an error message.
const MAX_SNIPPET_CHARS: usize = 200;
/// Longest connect timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One webhook receiver.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Name used in rules and as the outbox queue name.
    pub name: String,
    /// The `http://` or `https://` URL notifications are POSTed to (other schemes fail).
    pub url: String,
    /// Extra request headers, e.g. an authorization token.
    pub headers: Vec<(String, String)>,
    /// Limit for a whole request, response included.
    pub timeout: Duration,
    /// TLS of an `https://` URL: the system's roots, plus `ca_file`, or no check at all with
    /// `insecure_skip_verify`. Not used for `http://`.
    pub tls: ClientTls,
}

impl ReceiverConfig {
    /// A receiver with no extra headers and the default 10 s timeout.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> ReceiverConfig {
        ReceiverConfig {
            name: name.into(),
            url: url.into(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            tls: ClientTls::default(),
        }
    }
}

/// Retry policy.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Wait after the first failed attempt; it doubles after each further one.
    pub first_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// A notification older than this that still fails is a permanent failure.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// Counts per receiver, for the API and /metrics (the API's shape; `failures` is left
/// empty here and filled from the outbox by the API).
pub use skein_model::alert_api::ReceiverInfo as ReceiverStatus;

/// The running delivery tasks. Cheap to clone.
#[derive(Clone)]
pub struct Delivery {
    inner: Arc<DeliveryInner>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery").finish_non_exhaustive()
    }
}

struct DeliveryInner {
    outbox: Outbox,
    statuses: Vec<Arc<Mutex<ReceiverStatus>>>,
    /// Receivers with files in the outbox but no configuration.
    orphans: Vec<String>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Delivery {
    /// Starts one task per receiver on the current tokio runtime (panics outside one). Tasks
    /// stop when `shutdown` turns true, or its sender is dropped, promptly even mid-backoff
    /// or mid-request; a request cut short is sent again after a restart. A name configured
    /// twice keeps its first entry. Receivers found in the outbox but not configured keep
    /// their files and are logged once.
    pub fn start(
        outbox: Outbox,
        receivers: Vec<ReceiverConfig>,
        policy: RetryPolicy,
        shutdown: watch::Receiver<bool>,
    ) -> Delivery {
        let mut names = BTreeSet::new();
        let mut statuses = Vec::new();
        let mut tasks = Vec::new();
        for cfg in receivers {
            if !names.insert(cfg.name.clone()) {
                tracing::warn!(receiver = %cfg.name, "alert receiver configured twice; using the first");
                continue;
            }
            if cfg.tls.insecure_skip_verify {
                tracing::warn!(
                    receiver = %cfg.name,
                    url = %redact_url(&cfg.url),
                    "alert receiver has insecure_skip_verify = true: its certificate is NOT \
                     checked, so anyone on the network path can read and change its \
                     notifications and headers (tokens included). Use it for tests only."
                );
            }
            let sender = Sender::build(&cfg);
            let status = Arc::new(Mutex::new(ReceiverStatus {
                receiver: cfg.name.clone(),
                url: redact_url(&cfg.url),
                last_error: sender.as_ref().err().cloned(),
                ..ReceiverStatus::default()
            }));
            if let Err(e) = &sender {
                tracing::warn!(receiver = %cfg.name, error = %e, "alert receiver is misconfigured; its notifications will fail");
            }
            statuses.push(status.clone());
            let worker = Worker {
                outbox: outbox.clone(),
                name: cfg.name,
                policy: policy.clone(),
                status,
                sender,
            };
            tasks.push(tokio::spawn(worker.run(shutdown.clone())));
        }
        let orphans: Vec<String> = outbox
            .receivers()
            .into_iter()
            .filter(|r| !names.contains(r))
            .collect();
        for name in &orphans {
            tracing::warn!(
                receiver = %name,
                pending = outbox.pending(name),
                "alert receiver in the outbox is not configured; leaving its notifications on disk"
            );
        }
        Delivery {
            inner: Arc::new(DeliveryInner {
                outbox,
                statuses,
                orphans,
                tasks: Mutex::new(tasks),
            }),
        }
    }

    /// Counts for each configured receiver, in configuration order, then for each receiver
    /// found in the outbox but not configured (empty `url`, `last_error` "not configured").
    pub fn status(&self) -> Vec<ReceiverStatus> {
        let ob = &self.inner.outbox;
        let mut out: Vec<ReceiverStatus> = self
            .inner
            .statuses
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect();
        out.extend(self.inner.orphans.iter().map(|name| ReceiverStatus {
            receiver: name.clone(),
            last_error: Some("not configured".to_string()),
            ..ReceiverStatus::default()
        }));
        for s in &mut out {
            s.pending = ob.pending(&s.receiver);
            s.dropped = ob.dropped(&s.receiver);
        }
        out
    }

    /// Waits for all tasks to end (after shutdown). Only the first call on any clone waits.
    pub async fn join(self) {
        let tasks =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "alert delivery task ended abnormally");
            }
        }
    }
}

/// Resolves when shutdown is asked for (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// What one attempt came to.
#[derive(Debug)]
enum Outcome {
    Sent,
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    Permanent(String),
}

/// The HTTP side of one receiver.
struct Sender {
    client: reqwest::Client,
    url: Url,
    headers: HeaderMap,
}

impl Sender {
    /// Checks the URL and headers and builds the client; the error is the failure reason.
    fn build(cfg: &ReceiverConfig) -> Result<Sender, String> {
        let shown = redact_url(&cfg.url);
        let url = Url::parse(&cfg.url).map_err(|e| format!("invalid URL {shown:?}: {e}"))?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => {
                return Err(format!(
                    "invalid URL {shown:?}: only http:// and https:// are supported"
                ));
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("skein/", env!("CARGO_PKG_VERSION"))),
        );
        let mut extra = HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| format!("invalid header name {k:?}: {e}"))?;
            let value = HeaderValue::from_str(v)
                .map_err(|e| format!("invalid value of header {k:?}: {e}"))?;
            extra.append(name, value);
        }
        // Configured headers replace the defaults of the same name.
        headers.extend(extra);
        let mut builder = reqwest::Client::builder();
        if https {
            // Skein's own set-up (rustls with ring): the system's roots (read by
            // rustls-native-certs, which honours SSL_CERT_FILE and SSL_CERT_DIR), plus the
            // CA file; no OpenSSL.
            let tls = skein_tls::client_config(&cfg.tls)
                .map_err(|e| format!("TLS set-up of {shown:?}: {e}"))?;
            builder = builder.tls_backend_preconfigured(tls);
        }
        let client = builder
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(MAX_CONNECT_TIMEOUT))
            // A 3xx is a permanent failure: following it would send the body and the
            // configured (secret) headers to another address.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build HTTP client: {}", error_chain(&e)))?;
        Ok(Sender {
            client,
            url,
            headers,
        })
    }

    /// Sends one notification once.
    async fn send(&self, n: &Notification) -> Outcome {
        let body = match serde_json::to_vec(&n.body) {
            Ok(b) => b,
            Err(e) => return Outcome::Permanent(format!("cannot encode body: {e}")),
        };
        let Ok(key) = HeaderValue::from_str(&n.id) else {
            return Outcome::Permanent("notification id is not a valid header value".into());
        };
        let sent = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header("idempotency-key", key)
            .body(body)
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            // The URL may hold credentials: errors never show it.
            Err(e) => return classify_error(&e.without_url()),
        };
        let status = resp.status();
        let after = retry_after(resp.headers());
        let snippet = read_snippet(resp).await;
        classify_status(status, &snippet, after)
    }
}

fn classify_error(e: &reqwest::Error) -> Outcome {
    let detail = error_chain(e);
    if e.is_redirect() {
        Outcome::Permanent(format!("redirect loop: {detail}"))
    } else if e.is_builder() {
        Outcome::Permanent(format!("invalid request: {detail}"))
    } else if e.is_timeout() {
        Outcome::Retry {
            reason: format!("timed out: {detail}"),
            after: None,
        }
    } else if e.is_connect() {
        Outcome::Retry {
            reason: format!("cannot connect: {detail}"),
            after: None,
        }
    } else {
        Outcome::Retry {
            reason: detail,
            after: None,
        }
    }
}

fn classify_status(status: StatusCode, snippet: &str, after: Option<Duration>) -> Outcome {
    let mut reason = format!("HTTP {status}");
    if !snippet.is_empty() {
        reason.push_str(": ");
        reason.push_str(snippet);
    }
    if status.is_success() {
        Outcome::Sent
    } else if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        Outcome::Retry { reason, after }
    } else if status.is_redirection() {
        Outcome::Permanent(format!("HTTP {status}: redirect not followed"))
    } else {
        Outcome::Permanent(reason)
    }
}

/// A `Retry-After` given in seconds (the date form is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// Reads at most [`MAX_RESPONSE_READ`] bytes of the body; returns its start as one line.
async fn read_snippet(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < MAX_RESPONSE_READ {
        match resp.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    buf.truncate(MAX_RESPONSE_READ);
    String::from_utf8_lossy(&buf)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_SNIPPET_CHARS)
        .collect()
}

/// A receiver URL as it may be shown (API, logs, failure reasons): the user and password
/// become `***`, and so does every query value and the fragment, since any of them may hold
/// a secret: `http://u:p@host/hook?token=abc` is shown as `http://***@host/hook?token=***`.
/// Works on text that is not a valid URL too.
pub fn redact_url(url: &str) -> String {
    let (before_frag, frag) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let (before_query, query) = match before_frag.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (before_frag, None),
    };
    let mut out = String::with_capacity(url.len());
    let (scheme, rest) = match before_query.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, before_query),
    };
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        match authority.rsplit_once('@') {
            Some((_, host)) => {
                out.push_str("***@");
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        out.push_str(path);
    } else {
        out.push_str(rest);
    }
    if let Some(q) = query {
        out.push('?');
        let pairs: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) => format!("{k}=***"),
                None if p.is_empty() => String::new(),
                None => format!("{p}=***"),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    if frag.is_some_and(|f| !f.is_empty()) {
        out.push_str("#***");
    }
    out
}

/// An error with its sources, e.g. `error sending request: connection refused`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Wait before the next attempt after `attempts` recorded ones: `first_backoff` doubling up
/// to `max_backoff`, less up to 10% of jitter taken from the clock.
fn backoff(policy: &RetryPolicy, attempts: u32) -> Duration {
    let base = policy
        .first_backoff
        .saturating_mul(1u32 << attempts.min(20))
        .min(policy.max_backoff);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let jitter = base
        .checked_mul(nanos % 100)
        .map_or(Duration::ZERO, |d| d / 1000);
    base.saturating_sub(jitter)
}

/// One receiver's task.
struct Worker {
    outbox: Outbox,
    name: String,
    policy: RetryPolicy,
    status: Arc<Mutex<ReceiverStatus>>,
    sender: Result<Sender, String>,
}

impl Worker {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let notify = self.outbox.notified(&self.name);
        loop {
            if *shutdown.borrow() {
                return;
            }
            let n = match self.blocking(|ob, name| ob.peek(name)).await {
                Ok(Some(n)) => n,
                Ok(None) => {
                    tokio::select! {
                        () = notify.notified() => continue,
                        () = stopped(&mut shutdown) => return,
                    }
                }
                Err(e) => {
                    self.trouble("cannot read the outbox", &e);
                    if !self.pause(self.policy.max_backoff, &mut shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            let outcome = match &self.sender {
                Err(reason) => Outcome::Permanent(reason.clone()),
                Ok(sender) => {
                    self.update(|s| s.last_attempt_ms = Some(now_ms()));
                    tokio::select! {
                        outcome = sender.send(&n) => outcome,
                        () = stopped(&mut shutdown) => return,
                    }
                }
            };
            let ok = match outcome {
                Outcome::Sent => self.delivered(&n).await,
                Outcome::Permanent(reason) => self.give_up(&n, reason).await,
                Outcome::Retry { reason, after } => {
                    let age_ms = now_ms().saturating_sub(n.created_ms);
                    let limit_ms =
                        i64::try_from(self.policy.give_up_after.as_millis()).unwrap_or(i64::MAX);
                    if age_ms >= limit_ms {
                        let reason = format!(
                            "{reason} (gave up after {} attempts over {}s)",
                            n.attempts.saturating_add(1),
                            age_ms / 1000
                        );
                        self.give_up(&n, reason).await
                    } else {
                        let wait = match after {
                            Some(after) => after
                                .max(self.policy.first_backoff)
                                .min(self.policy.max_backoff),
                            None => backoff(&self.policy, n.attempts),
                        };
                        self.record_attempt(&n).await;
                        let next = now_ms()
                            .saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
                        tracing::debug!(receiver = %self.name, id = %n.id, %reason, ?wait, "alert notification will be retried");
                        self.update(|s| {
                            s.retries += 1;
                            s.last_error = Some(reason);
                            s.next_attempt_ms = Some(next);
                        });
                        let go_on = self.pause(wait, &mut shutdown).await;
                        self.update(|s| s.next_attempt_ms = None);
                        if !go_on {
                            return;
                        }
                        true
                    }
                }
            };
            if !ok && !self.pause(self.policy.max_backoff, &mut shutdown).await {
                return;
            }
        }
    }

    /// Removes a delivered notification, then counts it; false when the outbox could not
    /// be updated.
    async fn delivered(&self, n: &Notification) -> bool {
        let now = now_ms();
        let id = n.id.clone();
        let result = self.blocking(move |ob, name| ob.done(name, &id)).await;
        self.update(|s| {
            s.sent += 1;
            s.last_success_ms = Some(now);
            s.last_error = None;
        });
        match result {
            Ok(()) => true,
            Err(e) => {
                self.trouble("cannot remove a delivered notification", &e);
                false
            }
        }
    }

    /// Moves a notification to failed/, first counting the attempt that failed (if a request
    /// was made at all), then counts it.
    async fn give_up(&self, n: &Notification, reason: String) -> bool {
        tracing::warn!(receiver = %self.name, id = %n.id, %reason, "alert notification failed permanently");
        if self.sender.is_ok() {
            self.record_attempt(n).await;
        }
        let id = n.id.clone();
        let why = reason.clone();
        let result = self
            .blocking(move |ob, name| ob.fail(name, &id, &why))
            .await;
        self.update(|s| {
            s.failed += 1;
            s.last_error = Some(reason);
        });
        match result {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => {
                self.trouble("cannot move a failed notification", &e);
                false
            }
        }
    }

    /// Counts one attempt in the notification's file.
    async fn record_attempt(&self, n: &Notification) {
        let id = n.id.clone();
        match self.blocking(move |ob, name| ob.attempted(name, &id)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                self.trouble("cannot record an attempt", &e);
            }
            _ => {}
        }
    }

    /// Runs outbox file I/O off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Outbox, &str) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let ob = self.outbox.clone();
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || f(&ob, &name))
            .await
            .map_err(io::Error::other)?
    }

    /// Waits, or returns false when shutdown came first.
    async fn pause(&self, wait: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            () = stopped(shutdown) => false,
        }
    }

    fn trouble(&self, what: &str, e: &io::Error) {
        tracing::warn!(receiver = %self.name, error = %e, "alert delivery: {what}");
        let msg = format!("{what}: {e}");
        self.update(|s| s.last_error = Some(msg));
    }

    fn update(&self, f: impl FnOnce(&mut ReceiverStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }
}
