//! One data directory, one collector: a second one on the same directory stops with a clear
//! error instead of writing into the first one's WAL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::process::Command;

#[test]
fn second_collector_on_the_same_data_dir_refuses_to_start() {
    let c = Collector::start(&[]);
    let out = Command::new(env!("CARGO_BIN_EXE_skein"))
        .arg("collector")
        .arg("--data-dir")
        .arg(&c.dir)
        .args([
            "--otlp-http",
            "127.0.0.1:0",
            "--otlp-grpc",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another skein collector is using this data directory"),
        "{stderr}"
    );
    // The first one still serves.
    let (status, _) = get_json(&format!("{}/healthz", c.api_base()));
    assert_eq!(status, 200);
}
