//! Connection hygiene against the real collector binary: ten thousand idle connections and
//! clients that send one byte a second do not stop ingest or queries; a slow request head is
//! cut, a slow body gets 408, a connection that begins no request is closed; at the
//! connection cap new clients wait until idle connections, closed early near the cap, make
//! room.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Collector, assert_serving, get_json, kv, log_record, logs_request, now_nanos, raw_logs_export,
    unique, wait_for,
};
use prost::Message;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn config(dir: &std::path::Path, server: &str) -> PathBuf {
    let path = dir.join("collector.toml");
    std::fs::write(&path, format!("[server]\n{server}\n")).unwrap();
    path
}

/// Opens `n` connections to `addr` that send nothing.
fn idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect()
}

/// How many of `conns` the server has closed (a read gives end of file or a reset).
fn closed(conns: &[TcpStream]) -> usize {
    conns
        .iter()
        .filter(|s| {
            s.set_nonblocking(true).unwrap();
            let mut b = [0u8; 64];
            match (&**s).read(&mut b) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != ErrorKind::WouldBlock,
            }
        })
        .count()
}

/// Sends `head` then `trickle` one byte a second until the server answers or closes, or
/// `stop` is set; what the server sent back.
fn slow_client(
    addr: SocketAddr,
    head: &str,
    trickle: &'static [u8],
    stop: Arc<AtomicBool>,
) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let mut got = Vec::new();
    for b in trickle.iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if s.write_all(&[*b]).is_err() {
            break;
        }
        let mut buf = [0u8; 1024];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn ten_thousand_idle_connections_and_one_byte_a_second_clients_do_not_stop_ingest_or_queries() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "max_connections = 12000\nheader_timeout_ms = 15000\nbody_timeout_ms = 3000",
    );
    let c = Collector::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--commit-interval-ms",
        "100",
    ]);

    let stop = Arc::new(AtomicBool::new(false));
    let slow = |head: String, trickle: &'static [u8]| {
        let (addr, stop) = (c.otlp_http, stop.clone());
        std::thread::spawn(move || slow_client(addr, &head, trickle, stop))
    };
    // A request head sent one byte a second; a body sent one byte a second.
    let slow_head = slow(String::new(), b"POST /v1/logs HTTP/1.1\r\nX-Slow: ");
    let slow_body = slow(
        "POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\n"
            .to_string(),
        b"x",
    );

    let mut conns = idle(c.otlp_http, 5_000);
    conns.extend(idle(c.api, 3_000));
    conns.extend(idle(c.otlp_grpc, 2_000));
    assert_eq!(conns.len(), 10_000);

    // Ingest over both transports and queries still work.
    assert_serving(&c);
    let rid = format!("req-conn-grpc-{}", unique());
    let rl = logs_request(
        "checker",
        vec![log_record(
            "ok",
            9,
            now_nanos(),
            vec![kv("request_id", &rid)],
        )],
    )
    .resource_logs
    .remove(0)
    .encode_to_vec();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(raw_logs_export(&c.grpc_endpoint(), vec![rl], false))
        .expect("gRPC ingest is answered");
    let url = format!("{}/api/v1/traces/{rid}", c.api_base());
    assert!(wait_for(
        || get_json(&url).0 == 200,
        Duration::from_secs(30)
    ));

    // The slow head is cut by the head timeout, the slow body gets 408.
    let head_answer = slow_head.join().unwrap();
    assert!(
        head_answer.is_empty() || head_answer.starts_with("HTTP/1.1 408"),
        "a head sent one byte a second got: {head_answer}"
    );
    let body_answer = slow_body.join().unwrap();
    assert!(
        body_answer.starts_with("HTTP/1.1 408") && body_answer.contains("body_timeout"),
        "a body sent one byte a second got: {body_answer}"
    );

    // A connection that has begun no request within the head timeout is closed.
    assert!(
        wait_for(|| closed(&conns) == 10_000, Duration::from_secs(60)),
        "connections that never sent a request are still open: {} of 10000 closed",
        closed(&conns)
    );
    stop.store(true, Ordering::Relaxed);
    assert_serving(&c);
}

#[test]
fn at_the_connection_cap_new_clients_wait_until_idle_ones_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    // Long idle and head timeouts: only the shorter idle timeout near the cap can free a place
    // before the client's own 60 s timeout.
    let cfg = config(
        dir.path(),
        "max_connections = 40\nidle_timeout_ms = 120000\nheader_timeout_ms = 120000",
    );
    let c = Collector::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--commit-interval-ms",
        "100",
    ]);
    // Forty connections that send nothing take every place.
    let conns = idle(c.otlp_http, 40);
    assert!(
        wait_for(
            || c.output().contains("connection cap reached"),
            Duration::from_secs(20)
        ),
        "the collector did not say the cap was reached:\n{}",
        c.output()
    );
    // A new client waits in the backlog; idle connections past three quarters of the cap go
    // after 5 s, and it is served.
    assert_serving(&c);
    assert!(closed(&conns) > 0, "no idle connection was closed");
}
