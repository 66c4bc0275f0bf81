//! The disk: a full disk gets 503 and loses nothing acknowledged, and ingest recovers when space
//! returns; a torn write at the end of the WAL is cut at start-up with a log line saying how much.
//!
//! The disk-full test needs a small disk, and an ordinary user can have one: the collector
//! runs in its own user and mount namespaces (`unshare --user --map-root-user --mount`) and
//! mounts a small tmpfs there. So it runs as root and as any other user alike. It fails, not
//! skips, when it cannot get that disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use prost::Message;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Mounts the tmpfs, writes the ballast, then execs the collector (the rest of the arguments).
/// Arguments: the mount point, the tmpfs size in MiB, the ballast size in MiB.
const MOUNT_THEN_RUN: &str = r#"set -e
disk="$1"; size="$2"; ballast="$3"; shift 3
mount -t tmpfs -o "size=${size}m" tmpfs "$disk"
head -c "$((ballast * 1048576))" /dev/zero | tr '\000' '\007' > "$disk/ballast"
exec "$@""#;

/// A tmpfs of a fixed size that only the collector sees. The mount lives in the collector's
/// own mount namespace, so it goes away with the collector; the test reaches the files through
/// `/proc/<pid>/root`, which shows the collector's view.
struct SmallDisk {
    path: PathBuf,
    megabytes: u32,
    _tmp: tempfile::TempDir,
}

impl SmallDisk {
    fn new(megabytes: u32) -> SmallDisk {
        let tmp = tempfile::tempdir().unwrap();
        SmallDisk {
            path: tmp.path().to_path_buf(),
            megabytes,
            _tmp: tmp,
        }
    }

    /// Starts a collector on `data` (a path on the disk), with `ballast_mb` MiB of ballast in
    /// `ballast` on the disk before it starts.
    fn start_collector(&self, data: &Path, ballast_mb: u32, extra: &[&str]) -> Collector {
        let disk = self.path.to_str().expect("a UTF-8 temp path");
        let (size, ballast) = (self.megabytes.to_string(), ballast_mb.to_string());
        let wrapper = [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            MOUNT_THEN_RUN,
            "small-disk",
            disk,
            &size,
            &ballast,
        ];
        Collector::start_wrapped(data, extra, &wrapper)
    }

    /// Panics unless the collector `c` sees the tmpfs mounted at the disk's path.
    fn assert_mounted(&self, c: &Collector) {
        let mounts = std::fs::read_to_string(format!("/proc/{}/mountinfo", c.pid())).unwrap();
        let at = format!(" {} ", self.path.display());
        assert!(
            mounts
                .lines()
                .any(|l| l.contains(&at) && l.contains(" - tmpfs ")),
            "no tmpfs at {} for the collector:\n{mounts}",
            self.path.display()
        );
    }

    /// Where the collector `c` sees `name` on the disk, as a path the test can use.
    fn seen_by(&self, c: &Collector, name: &str) -> PathBuf {
        let inside = self.path.join(name);
        let relative = inside.strip_prefix("/").unwrap_or(&inside);
        PathBuf::from(format!("/proc/{}/root", c.pid())).join(relative)
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
    let disk = SmallDisk::new(48);
    let data = disk.path.join("data");
    // 20 MiB of ballast to delete later, as an operator frees space.
    let c = disk.start_collector(&data, 20, &["--commit-interval-ms", "100"]);
    disk.assert_mounted(&c);
    let ballast = disk.seen_by(&c, "ballast");
    assert_eq!(
        std::fs::metadata(&ballast).unwrap().len(),
        20 * 1024 * 1024,
        "the ballast on the small disk"
    );
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
