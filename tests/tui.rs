//! End-to-end: the real `skein tui` in a pseudo-terminal (util-linux `script`) against a real
//! collector fed with a test trace. Keys go in, the screen is read back through a terminal
//! emulator (`vt100`): the trace's services and spans appear in the traces list and the
//! waterfall, and quitting restores the terminal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pty::Pty;
use common::{Collector, SKEIN, client, hex, new_trace_id, now_nanos, post, span, traces_request};
use prost::Message;
use std::process::Command;
use std::time::Duration;

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

    let mut screen = Pty::spawn(&format!("{SKEIN} tui --api {}", c.api_base()));
    let t = screen.wait_for("Services", Duration::from_secs(20));
    assert!(t.contains("1 Overview"), "{t}");
    assert!(
        screen
            .wait_for("gateway", Duration::from_secs(20))
            .contains("payment"),
        "{}",
        screen.text()
    );

    screen.send(b"3");
    let t = screen.wait_for("gateway: POST /checkout", Duration::from_secs(20));
    assert!(t.contains("gateway: POST /checkout"), "{t}");
    screen.send(b"\r");
    let t = screen.wait_for("charge card", Duration::from_secs(20));
    assert!(t.contains(&format!("trace {}", hex(&tid))), "{t}");
    assert!(
        t.contains("gateway POST /checkout") && t.contains("payment charge card"),
        "{t}"
    );

    // The metrics view draws the built-in dashboard's panels.
    screen.send(b"5");
    let t = screen.wait_for("Calls per second, by service", Duration::from_secs(20));
    assert!(t.contains("window 1h"), "{t}");

    screen.send(b"q");
    let status = screen.wait_exit(Duration::from_secs(10));
    assert!(status.success());
    let raw = screen.raw();
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
