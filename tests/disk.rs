//! The disk: a full disk gets 503 and loses nothing acknowledged, and ingest recovers when space
//! returns; a torn write at the end of the WAL is cut at start-up with a log line saying how much.
//!
//! The disk-full test mounts a small tmpfs, so it needs root (CI runs as root). It fails, not
//! skips, when it cannot mount.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use prost::Message;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs of a fixed size, unmounted on drop.
struct SmallDisk {
    path: PathBuf,
    _tmp: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().to_path_buf();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a {megabytes} MiB tmpfs to fill a disk and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { path, _tmp: tmp }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn batch(request_id: &str, n: usize) -> Vec<u8> {
    let now = now_nanos();
    let records = (0..n)
        .map(|i| {
            log_record(
                &format!("{request_id} line {i} {}", "payload ".repeat(30)),
                9,
                now + i as u64,
                vec![kv("request_id", request_id)],
            )
        })
        .collect();
    logs_request("order", records).encode_to_vec()
}

fn logs_of(c: &Collector, key: &str) -> Vec<String> {
    let (status, v) = get_json(&format!("{}/api/v1/traces/{key}", c.api_base()));
    if status != 200 {
        return vec![];
    }
    strings(&v["logs"], "body")
}

#[test]
fn full_disk_answers_503_loses_nothing_and_recovers() {
    let disk = SmallDisk::mount(48);
    // Ballast to delete later, as an operator frees space.
    let ballast = disk.path.join("ballast");
    std::fs::write(&ballast, vec![7u8; 20 * 1024 * 1024]).unwrap();
    let data = disk.path.join("data");
    let c = Collector::start_in(&data, &["--commit-interval-ms", "100"]);
    let http = client();
    let url = format!("{}/v1/logs", c.http_base());

    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..3000 {
        let id = format!("full-{}-{i}", unique());
        let (status, body) =
            post(&http, &url, "application/x-protobuf", None, batch(&id, 100)).unwrap();
        match status {
            200 => acked.push(id),
            503 => {
                refused = Some(body);
                break;
            }
            other => panic!(
                "unexpected status {other}: {}",
                String::from_utf8_lossy(&body)
            ),
        }
    }
    let body = refused.expect("the disk never filled: no 503 after 3000 batches");
    let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err["error"], "unavailable");
    assert!(
        err["message"].as_str().unwrap().contains("retry later"),
        "{err}"
    );
    assert!(
        !acked.is_empty(),
        "nothing was acknowledged before the disk filled"
    );

    // Still serving while full.
    let (status, _) = get_json(&format!("{}/healthz", c.api_base()));
    assert_eq!(status, 200);
    let resp = http
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(batch("while-full", 10))
        .send()
        .unwrap();
    if resp.status().as_u16() == 503 {
        assert_eq!(resp.headers()["retry-after"], "1");
    }

    // Space returns: every acknowledged batch becomes searchable, each record exactly once.
    std::fs::remove_file(&ballast).unwrap();
    for id in &acked {
        let ok = wait_for(|| logs_of(&c, id).len() >= 100, Duration::from_secs(60));
        assert!(
            ok,
            "acknowledged batch {id} not searchable after space returned"
        );
        let mut bodies = logs_of(&c, id);
        assert_eq!(bodies.len(), 100, "batch {id}");
        bodies.sort();
        bodies.dedup();
        assert_eq!(bodies.len(), 100, "batch {id} has duplicates");
    }
    // And ingest works again.
    let after = format!("after-{}", unique());
    let accepted = wait_for(
        || {
            post(
                &http,
                &url,
                "application/x-protobuf",
                None,
                batch(&after, 10),
            )
            .map(|(s, _)| s == 200)
            .unwrap_or(false)
        },
        Duration::from_secs(30),
    );
    assert!(accepted, "ingest did not recover after space returned");
    assert!(wait_for(
        || !logs_of(&c, &after).is_empty(),
        Duration::from_secs(20)
    ));
    drop(c);
    let _ = Path::new(&data);
}

fn newest_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segs.sort();
    segs.pop().expect("a wal segment")
}

#[test]
fn torn_wal_tail_is_cut_at_start_with_a_log_line() {
    let mut c = Collector::start(&[]);
    let http = client();
    let id = format!("torn-{}", unique());
    let (status, _) = post(
        &http,
        &format!("{}/v1/logs", c.http_base()),
        "application/x-protobuf",
        None,
        batch(&id, 20),
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(wait_for(
        || logs_of(&c, &id).len() == 20,
        Duration::from_secs(20)
    ));
    c.kill9();

    // A write torn by a crash: part of a record header and payload at the end.
    let seg = newest_segment(&c.dir);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[0x40, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7]);
    std::fs::write(&seg, &bytes).unwrap();

    c.restart();
    let out = c.output();
    assert!(
        out.contains("truncated torn wal tail") && out.contains("bytes=15"),
        "no log line about the cut tail:\n{out}"
    );
    assert_eq!(logs_of(&c, &id).len(), 20);
    let id2 = format!("torn-after-{}", unique());
    let (status, _) = post(
        &http,
        &format!("{}/v1/logs", c.http_base()),
        "application/x-protobuf",
        None,
        batch(&id2, 5),
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(wait_for(
        || logs_of(&c, &id2).len() == 5,
        Duration::from_secs(20)
    ));
}
