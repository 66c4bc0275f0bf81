//! Tests of delivery, against real HTTP receivers on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::outbox::OutboxLimits;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;

/// One request a test receiver got.
#[derive(Debug, Clone)]
struct Hit {
    headers: HeaderMap,
    body: Value,
}

impl Hit {
    fn key(&self) -> String {
        header(&self.headers, "idempotency-key")
    }
    fn n(&self) -> i64 {
        self.body["n"].as_i64().unwrap_or(-1)
    }
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

type Respond = Arc<dyn Fn(usize, &Value) -> Response + Send + Sync>;

#[derive(Clone)]
struct Srv {
    hits: Arc<Mutex<Vec<Hit>>>,
    respond: Respond,
}

impl Srv {
    fn new(respond: impl Fn(usize, &Value) -> Response + Send + Sync + 'static) -> Srv {
        Srv {
            hits: Arc::default(),
            respond: Arc::new(respond),
        }
    }
    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
    /// The `n` of every request body, in arrival order.
    fn ns(&self) -> Vec<i64> {
        self.hits().iter().map(Hit::n).collect()
    }
    /// Serves on the listener until the test ends.
    fn serve(&self, listener: TcpListener) {
        let app = axum::Router::new()
            .route("/hook", axum::routing::any(handle))
            .with_state(self.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
}

async fn handle(State(srv): State<Srv>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let i = {
        let mut hits = srv.hits.lock().unwrap();
        hits.push(Hit {
            headers,
            body: body.clone(),
        });
        hits.len() - 1
    };
    (srv.respond)(i, &body)
}

fn ok() -> Response {
    StatusCode::OK.into_response()
}

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

fn receiver(name: &str, addr: SocketAddr) -> ReceiverConfig {
    ReceiverConfig {
        timeout: Duration::from_secs(3),
        ..ReceiverConfig::new(name, format!("http://{addr}/hook"))
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        give_up_after: Duration::from_secs(3600),
    }
}

fn outbox(dir: &tempfile::TempDir) -> Outbox {
    Outbox::open(dir.path(), OutboxLimits::default()).unwrap()
}

fn push(ob: &Outbox, receiver: &str, n: i64) -> String {
    ob.push(receiver, json!({ "n": n })).unwrap()
}

/// Polls until `cond` holds; a guard against hanging, not a speed check.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn status_of(d: &Delivery, receiver: &str) -> ReceiverStatus {
    d.status()
        .into_iter()
        .find(|s| s.receiver == receiver)
        .unwrap()
}

async fn stop(tx: &watch::Sender<bool>, d: Delivery) {
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), d.join())
        .await
        .expect("delivery tasks stop after shutdown");
}

#[tokio::test]
async fn delivers_in_order_with_headers() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    let srv = Srv::new(|_, _| ok());
    let (l, addr) = listener().await;
    srv.serve(l);
    let mut ids: Vec<String> = (0..5).map(|i| push(&ob, "ops", i)).collect();
    push(&ob, "old", 99);
    let mut cfg = receiver("ops", addr);
    cfg.headers = vec![
        ("X-Token".into(), "secret".into()),
        ("X-Multi".into(), "a".into()),
    ];
    let (tx, rx) = watch::channel(false);
    let d = Delivery::start(ob.clone(), vec![cfg], policy(), rx);
    // More after the task found the queue empty or while it works.
    ids.extend((5..10).map(|i| push(&ob, "ops", i)));
    wait_until("10 sent", || status_of(&d, "ops").sent == 10).await;

    let hits = srv.hits();
    assert_eq!(srv.ns(), (0..10).collect::<Vec<_>>());
    assert_eq!(hits.iter().map(Hit::key).collect::<Vec<_>>(), ids);
    for h in &hits {
        assert_eq!(header(&h.headers, "content-type"), "application/json");
        assert_eq!(header(&h.headers, "x-token"), "secret");
        assert_eq!(header(&h.headers, "x-multi"), "a");
        assert!(header(&h.headers, "user-agent").starts_with("skein/"));
    }
    let st = status_of(&d, "ops");
    assert_eq!((st.pending, st.failed, st.retries), (0, 0, 0));
    assert!(st.last_success_ms.is_some());
    assert!(st.last_error.is_none());
    // The receiver that is no longer configured is left alone and shown.
    assert_eq!(ob.pending("old"), 1);
    let old = status_of(&d, "old");
    assert_eq!(old.pending, 1);
    assert_eq!(old.last_error.as_deref(), Some("not configured"));
    stop(&tx, d).await;
}

#[tokio::test]
async fn retries_503_then_delivers_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    let srv = Srv::new(|i, _| match i {
        0 => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "0")],
            "busy",
        )
            .into_response(),
        1 | 2 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        _ => ok(),
    });
    let (l, addr) = listener().await;
    srv.serve(l);
    let ids: Vec<String> = (0..3).map(|i| push(&ob, "ops", i)).collect();
    let (tx, rx) = watch::channel(false);
    let d = Delivery::start(ob.clone(), vec![receiver("ops", addr)], policy(), rx);
    wait_until("3 sent", || status_of(&d, "ops").sent == 3).await;

    let hits = srv.hits();
    assert_eq!(srv.ns(), vec![0, 0, 0, 0, 1, 2]);
    let keys: Vec<String> = hits.iter().map(Hit::key).collect();
    assert_eq!(
        keys,
        vec![
            ids[0].clone(),
            ids[0].clone(),
            ids[0].clone(),
            ids[0].clone(),
            ids[1].clone(),
            ids[2].clone()
        ]
    );
    let st = status_of(&d, "ops");
    assert_eq!((st.sent, st.retries, st.failed, st.pending), (3, 3, 0, 0));
    stop(&tx, d).await;
}

#[tokio::test]
async fn not_found_is_permanent_and_the_queue_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    let srv = Srv::new(|_, body| {
        if body["n"] == 0 {
            (StatusCode::NOT_FOUND, "no such hook").into_response()
        } else {
            ok()
        }
    });
    let (l, addr) = listener().await;
    srv.serve(l);
    let first = push(&ob, "ops", 0);
    push(&ob, "ops", 1);
    push(&ob, "ops", 2);
    let (tx, rx) = watch::channel(false);
    let d = Delivery::start(ob.clone(), vec![receiver("ops", addr)], policy(), rx);
    wait_until("2 sent", || status_of(&d, "ops").sent == 2).await;

    assert_eq!(srv.ns(), vec![0, 1, 2]);
    let st = status_of(&d, "ops");
    assert_eq!((st.failed, st.retries, st.pending), (1, 0, 0));
    let failed = ob.failed("ops", 10);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, first);
    assert_eq!(failed[0].attempts, 1);
    assert_eq!(failed[0].reason, "HTTP 404 Not Found: no such hook");
    stop(&tx, d).await;
}

#[tokio::test]
async fn receiver_down_then_up_gets_everything_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    let (l, addr) = listener().await;
    drop(l);
    for i in 0..3 {
        push(&ob, "ops", i);
    }
    let (tx, rx) = watch::channel(false);
    let d = Delivery::start(ob.clone(), vec![receiver("ops", addr)], policy(), rx);
    wait_until("2 retries", || status_of(&d, "ops").retries >= 2).await;
    let st = status_of(&d, "ops");
    assert!(
        st.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("connect"),
        "{st:?}"
    );
    assert_eq!(st.sent, 0);
    push(&ob, "ops", 3);

    let srv = Srv::new(|_, _| ok());
    // The port is free again, unless a connection took it as its local port for a moment.
    let mut tries = 0;
    let l = loop {
        match TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) if tries < 100 => {
                tries += 1;
                eprintln!("rebinding {addr}: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot bind {addr} again: {e}"),
        }
    };
    srv.serve(l);
    wait_until("4 sent", || status_of(&d, "ops").sent == 4).await;
    assert_eq!(srv.ns(), vec![0, 1, 2, 3]);
    assert_eq!(status_of(&d, "ops").failed, 0);
    stop(&tx, d).await;
}

#[tokio::test]
async fn shutdown_mid_backoff_then_restart_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    let up = Arc::new(AtomicBool::new(false));
    let up2 = up.clone();
    let srv = Srv::new(move |_, _| {
        if up2.load(Ordering::SeqCst) {
            ok()
        } else {
            StatusCode::BAD_GATEWAY.into_response()
        }
    });
    let (l, addr) = listener().await;
    srv.serve(l);
    for i in 0..3 {
        push(&ob, "ops", i);
    }
    let slow = RetryPolicy {
        first_backoff: Duration::from_secs(600),
        max_backoff: Duration::from_secs(600),
        ..policy()
    };
    let (tx, rx) = watch::channel(false);
    let d = Delivery::start(ob.clone(), vec![receiver("ops", addr)], slow, rx);
    wait_until("a retry", || status_of(&d, "ops").retries == 1).await;
    assert!(status_of(&d, "ops").next_attempt_ms.is_some());
    stop(&tx, d).await;
    drop(ob);

    up.store(true, Ordering::SeqCst);
    let ob = outbox(&dir);
    assert_eq!(ob.pending("ops"), 3);
    assert_eq!(ob.peek("ops").unwrap().unwrap().attempts, 1);
    let (tx, rx) = watch::channel(false);
    let d = Delivery::start(ob.clone(), vec![receiver("ops", addr)], policy(), rx);
    wait_until("3 sent", || status_of(&d, "ops").sent == 3).await;
    let hits = srv.hits();
    assert_eq!(srv.ns(), vec![0, 0, 1, 2]);
    assert_eq!(hits[0].key(), hits[1].key(), "same key after restart");
    assert_eq!(ob.pending("ops"), 0);
    stop(&tx, d).await;
}

#[tokio::test]
async fn a_receiver_that_never_answers_does_not_delay_another() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    // Accepts connections and never answers.
    let (silent, silent_addr) = listener().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
    let srv = Srv::new(|_, _| ok());
    let (l, addr) = listener().await;
    srv.serve(l);
    for i in 0..3 {
        push(&ob, "silent", i);
    }
    for i in 0..5 {
        push(&ob, "healthy", i);
    }
    let mut silent_cfg = receiver("silent", silent_addr);
    silent_cfg.timeout = Duration::from_millis(300);
    let (tx, rx) = watch::channel(false);
    let d = Delivery::start(
        ob.clone(),
        vec![silent_cfg, receiver("healthy", addr)],
        policy(),
        rx,
    );
    wait_until("healthy done", || status_of(&d, "healthy").sent == 5).await;
    assert_eq!(srv.ns(), vec![0, 1, 2, 3, 4]);
    assert_eq!(ob.pending("silent"), 3);
    assert_eq!(status_of(&d, "silent").sent, 0);
    wait_until("a timeout", || status_of(&d, "silent").retries >= 1).await;
    let st = status_of(&d, "silent");
    assert!(
        st.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("timed out"),
        "{st:?}"
    );
    // Shutdown ends the task even mid-request.
    stop(&tx, d).await;
    assert_eq!(ob.pending("silent"), 3);
}

#[tokio::test]
async fn a_redirect_is_a_permanent_failure_and_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    // The redirect target is another server: it must see neither the body nor the secret.
    let target = Srv::new(|_, _| ok());
    let (tl, taddr) = listener().await;
    target.serve(tl);
    let location = format!("http://{taddr}/hook");
    let srv = Srv::new(move |_, body| {
        if body["n"] == 1 {
            ok()
        } else {
            (
                StatusCode::TEMPORARY_REDIRECT,
                [("location", location.clone())],
            )
                .into_response()
        }
    });
    let (l, addr) = listener().await;
    srv.serve(l);
    let first = push(&ob, "ops", 0);
    push(&ob, "ops", 1);
    let mut cfg = receiver("ops", addr);
    cfg.headers = vec![("authorization".into(), "Bearer secret".into())];
    let (tx, rx) = watch::channel(false);
    let d = Delivery::start(ob.clone(), vec![cfg], policy(), rx);
    wait_until("1 sent", || status_of(&d, "ops").sent == 1).await;
    let failed = ob.failed("ops", 10);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, first);
    assert!(failed[0].reason.contains("redirect"), "{failed:?}");
    assert_eq!(srv.ns(), vec![0, 1]);
    assert!(target.hits().is_empty(), "{:?}", target.hits());
    assert_eq!(status_of(&d, "ops").failed, 1);
    stop(&tx, d).await;
}

#[tokio::test]
async fn receiver_urls_are_shown_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    let url = "http://user:pa55@127.0.0.1:1/hook?token=s3cret&team=ops";
    let bad = "http://user:pa55@[::1/hook?token=s3cret";
    push(&ob, "down", 0);
    push(&ob, "bad", 0);
    let cfg = ReceiverConfig {
        timeout: Duration::from_millis(500),
        ..ReceiverConfig::new("down", url)
    };
    let p = RetryPolicy {
        give_up_after: Duration::ZERO,
        ..policy()
    };
    let (tx, rx) = watch::channel(false);
    let d = Delivery::start(
        ob.clone(),
        vec![cfg, ReceiverConfig::new("bad", bad)],
        p,
        rx,
    );
    wait_until("both failed", || {
        status_of(&d, "down").failed == 1 && status_of(&d, "bad").failed == 1
    })
    .await;
    let shown = format!(
        "{:?} {:?} {:?} {:?}",
        d.status(),
        ob.failed("down", 10),
        ob.failed("bad", 10),
        Sender::build(&ReceiverConfig::new("bad", bad)).err()
    );
    for secret in ["user", "pa55", "s3cret", "ops"] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
    assert_eq!(
        status_of(&d, "down").url,
        "http://***@127.0.0.1:1/hook?token=***&team=***"
    );
    stop(&tx, d).await;
}

#[test]
fn urls_are_redacted() {
    for (url, shown) in [
        ("http://h:1/p", "http://h:1/p"),
        (
            "http://u:p@h/p?a=1&b&c=",
            "http://***@h/p?a=***&b=***&c=***",
        ),
        ("http://u@h?x=1#frag", "http://***@h?x=***#***"),
        ("http://h/a@b", "http://h/a@b"),
        ("not a url?k=v", "not a url?k=***"),
        ("", ""),
    ] {
        assert_eq!(redact_url(url), shown, "{url}");
    }
}

#[tokio::test]
async fn a_bad_header_fails_every_notification() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    push(&ob, "ops", 0);
    push(&ob, "ops", 1);
    let mut cfg = ReceiverConfig::new("ops", "http://127.0.0.1:1/hook");
    cfg.headers = vec![("bad header".into(), "x".into())];
    let bad_url = ReceiverConfig::new("url", "not a url");
    let ftp = ReceiverConfig::new("ftp", "ftp://127.0.0.1:1/hook");
    push(&ob, "url", 0);
    push(&ob, "ftp", 0);
    let (tx, rx) = watch::channel(false);
    let d = Delivery::start(ob.clone(), vec![cfg, bad_url, ftp], policy(), rx);
    wait_until("all failed", || {
        status_of(&d, "ops").failed == 2
            && status_of(&d, "url").failed == 1
            && status_of(&d, "ftp").failed == 1
    })
    .await;
    let failed = ob.failed("ops", 10);
    assert!(failed[0].reason.contains("invalid header"), "{failed:?}");
    assert_eq!(failed[0].attempts, 0);
    assert!(ob.failed("url", 1)[0].reason.contains("invalid URL"));
    let ftp = &ob.failed("ftp", 1)[0].reason;
    assert!(ftp.contains("only http:// and https://"), "{ftp}");
    stop(&tx, d).await;
}

/// A CA and a server certificate for 127.0.0.1 signed by it, as files in `dir`; returns the
/// CA file and the server's files.
fn test_pki(dir: &std::path::Path, name: &str) -> (PathBuf, skein_tls::server::ServerTls) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, name);
    let ca_key = KeyPair::generate().unwrap();
    let ca_file = dir.join(format!("{name}-ca.pem"));
    std::fs::write(&ca_file, ca.self_signed(&ca_key).unwrap().pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let (cert_file, key_file) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let server = skein_tls::server::ServerTls {
        cert_file,
        key_file,
        client_ca_file: None,
    };
    (ca_file, server)
}

/// Serves `srv` over TLS with `tls`'s certificate.
async fn serve_tls(srv: &Srv, tls: &skein_tls::server::ServerTls) -> SocketAddr {
    let (tcp, addr) = listener().await;
    let acceptor = skein_tls::server::Acceptor::new(tls, &[b"http/1.1"]).unwrap();
    let l = skein_tls::server::Listener::new(tcp, Some(acceptor)).unwrap();
    let app = axum::Router::new()
        .route("/hook", axum::routing::any(handle))
        .with_state(srv.clone());
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    addr
}

#[tokio::test]
async fn https_receivers_are_reached_and_their_certificate_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, server) = test_pki(dir.path(), "hooks");
    let srv = Srv::new(|_, _| ok());
    let addr = serve_tls(&srv, &server).await;
    let url = format!("https://127.0.0.1:{}/hook", addr.port());
    let ob = outbox(&dir);
    // Trusting the test CA: delivered, in order, over TLS.
    let mut trusted = ReceiverConfig::new("trusted", &url);
    trusted.tls.ca_file = Some(ca_file);
    // The system's roots alone do not know the test CA: the handshake fails, it is retried.
    let system = ReceiverConfig::new("system", &url);
    // No check at all: delivered.
    let mut insecure = ReceiverConfig::new("insecure", &url);
    insecure.tls.insecure_skip_verify = true;
    for r in ["trusted", "system", "insecure"] {
        push(&ob, r, 0);
    }
    push(&ob, "trusted", 1);
    let (tx, rx) = watch::channel(false);
    let d = Delivery::start(ob.clone(), vec![trusted, system, insecure], policy(), rx);
    wait_until("delivered over TLS", || {
        status_of(&d, "trusted").sent == 2 && status_of(&d, "insecure").sent == 1 && {
            // Retried; on a machine with no system roots at all, failed at once.
            let s = status_of(&d, "system");
            s.retries >= 1 || s.failed == 1
        }
    })
    .await;
    // Two from the trusted receiver, one from the insecure one, none from the untrusted one.
    let mut ns = srv.ns();
    ns.sort_unstable();
    assert_eq!(ns, vec![0, 0, 1]);
    let system = status_of(&d, "system");
    assert_eq!(system.sent, 0);
    let why = system.last_error.unwrap_or_default();
    assert!(why.contains("certificate"), "{why}");
    stop(&tx, d).await;
}

#[tokio::test]
async fn old_notifications_are_given_up() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(&dir);
    let srv = Srv::new(|_, _| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    let (l, addr) = listener().await;
    srv.serve(l);
    push(&ob, "ops", 0);
    let p = RetryPolicy {
        give_up_after: Duration::ZERO,
        ..policy()
    };
    let (tx, rx) = watch::channel(false);
    let d = Delivery::start(ob.clone(), vec![receiver("ops", addr)], p, rx);
    wait_until("given up", || status_of(&d, "ops").failed == 1).await;
    let failed = ob.failed("ops", 1);
    assert!(failed[0].reason.starts_with("HTTP 500"), "{failed:?}");
    assert!(failed[0].reason.contains("gave up"), "{failed:?}");
    assert_eq!(srv.ns(), vec![0]);
    stop(&tx, d).await;
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let p = RetryPolicy {
        first_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(60),
        ..RetryPolicy::default()
    };
    let within = |d: Duration, full: Duration| d <= full && d >= full * 9 / 10;
    assert!(within(backoff(&p, 0), Duration::from_secs(1)));
    assert!(within(backoff(&p, 1), Duration::from_secs(2)));
    assert!(within(backoff(&p, 3), Duration::from_secs(8)));
    assert!(within(backoff(&p, 10), Duration::from_secs(60)));
    assert!(within(backoff(&p, u32::MAX), Duration::from_secs(60)));
}

#[test]
fn statuses_are_classified() {
    let c = |code: u16| classify_status(StatusCode::from_u16(code).unwrap(), "", None);
    assert!(matches!(c(204), Outcome::Sent));
    for code in [500, 502, 503, 408, 429] {
        assert!(matches!(c(code), Outcome::Retry { .. }), "{code}");
    }
    for code in [301, 304, 400, 401, 404, 410] {
        assert!(matches!(c(code), Outcome::Permanent(_)), "{code}");
    }
    let mut h = HeaderMap::new();
    h.insert(RETRY_AFTER, HeaderValue::from_static(" 7 "));
    assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
    h.insert(
        RETRY_AFTER,
        HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
    );
    assert_eq!(retry_after(&h), None);
}
