//! End-to-end: the real `skein tui` in a pseudo-terminal (util-linux `script`) against a real
//! collector fed with a test trace. Keys go in, the screen is read back through a terminal
//! emulator (`vt100`): the trace's services and spans appear in the traces list and the
//! waterfall, and quitting restores the terminal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Collector, SKEIN, client, hex, new_trace_id, now_nanos, post, span, traces_request};
use prost::Message;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Screen {
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl Screen {
    fn text(&self) -> String {
        let mut p = vt100::Parser::new(40, 140, 0);
        p.process(&self.bytes.lock().unwrap());
        p.screen().contents()
    }

    fn wait_for(&self, what: &str, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            let t = self.text();
            if t.contains(what) || Instant::now() > end {
                return t;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn the_dashboard_shows_a_trace_and_restores_the_terminal() {
    let c = Collector::start(&[]);
    let tid = new_trace_id();
    let now = now_nanos() - 2_000_000_000;
    let mut root = span(&tid, &[1; 8], &[], "POST /checkout", now);
    root.end_time_unix_nano = now + 300_000_000;
    let mut child = span(&tid, &[2; 8], &[1; 8], "charge card", now + 50_000_000);
    child.end_time_unix_nano = now + 250_000_000;
    for (service, s) in [("gateway", root), ("payment", child)] {
        let (status, _) = post(
            &client(),
            &format!("{}/v1/traces", c.http_base()),
            "application/x-protobuf",
            None,
            traces_request(service, vec![s]).encode_to_vec(),
        )
        .unwrap();
        assert_eq!(status, 200);
    }
    assert!(common::wait_for(
        || {
            let (_, v) = common::get_json(&format!("{}/api/v1/traces/{}", c.api_base(), hex(&tid)));
            v["spans"].as_array().is_some_and(|s| s.len() == 2)
        },
        Duration::from_secs(20)
    ));

    let mut tui = Command::new("script")
        .args([
            "-qfec",
            &format!("stty cols 140 rows 40; {SKEIN} tui --api {}", c.api_base()),
            "/dev/null",
        ])
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script (util-linux) runs the TUI in a pseudo-terminal");
    let screen = Screen {
        bytes: Arc::new(Mutex::new(Vec::new())),
    };
    let sink = screen.bytes.clone();
    let mut out = tui.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut keys = tui.stdin.take().unwrap();
    let t = screen.wait_for("Services", Duration::from_secs(20));
    assert!(t.contains("1 Overview"), "{t}");
    assert!(
        screen
            .wait_for("gateway", Duration::from_secs(20))
            .contains("payment"),
        "{}",
        screen.text()
    );

    keys.write_all(b"3").unwrap();
    keys.flush().unwrap();
    let t = screen.wait_for("gateway: POST /checkout", Duration::from_secs(20));
    assert!(t.contains("gateway: POST /checkout"), "{t}");
    keys.write_all(b"\r").unwrap();
    keys.flush().unwrap();
    let t = screen.wait_for("charge card", Duration::from_secs(20));
    assert!(t.contains(&format!("trace {}", hex(&tid))), "{t}");
    assert!(
        t.contains("gateway POST /checkout") && t.contains("payment charge card"),
        "{t}"
    );

    // The metrics view draws the built-in dashboard's panels.
    keys.write_all(b"5").unwrap();
    keys.flush().unwrap();
    let t = screen.wait_for("Calls per second, by service", Duration::from_secs(20));
    assert!(t.contains("window 1h"), "{t}");

    keys.write_all(b"q").unwrap();
    keys.flush().unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = tui.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "the TUI did not quit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let _ = reader.join();
    let raw = screen.bytes.lock().unwrap().clone();
    let tail = String::from_utf8_lossy(&raw[raw.len().saturating_sub(200)..]).to_string();
    assert!(
        tail.contains("\u{1b}[?1049l"),
        "the alternate screen is left: {tail:?}"
    );
    assert!(
        tail.contains("\u{1b}[?25h"),
        "the cursor is shown again: {tail:?}"
    );
}

#[test]
fn a_bad_dashboard_is_refused_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("board.toml");
    std::fs::write(
        &file,
        "[[panel]]\ntitle = \"x\"\nkind = \"pie\"\nmetric = \"m\"\n",
    )
    .unwrap();
    let out = Command::new(SKEIN)
        .args(["tui", "--dashboard", &file.display().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("board.toml:3:") && err.contains("pie"),
        "{err}"
    );
}
