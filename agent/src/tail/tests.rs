//! Tests of the [`Tailer`](super::Tailer) on real files: reading, limits, multiline, errors.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::config::{Attach, Dur, Format, MultilineConfig, ReadFrom, SourceConfig};
use crate::telemetry::Telemetry;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

pub(super) fn source(name: &str, paths: &[&Path], read_from: ReadFrom) -> SourceConfig {
    SourceConfig {
        name: name.into(),
        paths: paths.iter().map(|p| p.display().to_string()).collect(),
        exclude: vec!["*.gz".into()],
        service: None,
        labels: Default::default(),
        read_from,
        format: Format::Plain,
        regex: None,
        max_line_bytes: 1024,
        multiline: None,
    }
}

pub(super) fn tailer(
    sources: Vec<SourceConfig>,
    start: HashMap<FileId, u64>,
) -> (Tailer, Telemetry) {
    let tel = Telemetry::new();
    let mut t = Tailer::new(sources, start, tel.clone()).unwrap();
    t.set_scan_interval(Duration::ZERO);
    (t, tel)
}

/// Polls until idle.
pub(super) fn drain(t: &mut Tailer) -> Vec<TailLine> {
    let mut out = vec![];
    while t.poll(1 << 20, &mut |l| out.push(l)) > 0 {}
    out
}

pub(super) fn texts(lines: &[TailLine]) -> Vec<&str> {
    lines.iter().map(|l| l.text.as_str()).collect()
}

pub(super) fn append(path: &Path, data: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(data).unwrap();
}

/// The value of a metric line such as `skein_agent_rotations_total{source="s",kind="rename"}`.
pub(super) fn metric(tel: &Telemetry, prefix: &str) -> u64 {
    let text = tel.encode();
    text.lines()
        .find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn reads_lines_and_waits_for_the_partial_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    std::fs::write(&p, "one\r\ntwo\nthr").unwrap();
    let (mut t, tel) = tailer(
        vec![source(
            "s",
            &[&dir.path().join("*.log")],
            ReadFrom::Beginning,
        )],
        HashMap::new(),
    );
    let out = drain(&mut t);
    assert_eq!(texts(&out), ["one", "two"]);
    assert_eq!(out[0].end_offset, 5);
    assert_eq!(out[1].end_offset, 9);
    assert_eq!(&*out[0].path, p.to_str().unwrap());
    assert_eq!(out[0].source, 0);
    append(&p, b"ee\n");
    let out = drain(&mut t);
    assert_eq!(texts(&out), ["three"]);
    assert_eq!(out[0].end_offset, 15);
    let files = t.files();
    assert_eq!(files.len(), 1);
    assert_eq!((files[0].0.as_str(), files[0].3), ("s", 15));
    assert_eq!(
        metric(&tel, "skein_agent_lines_read_total{source=\"s\"}"),
        3
    );
    assert_eq!(
        metric(&tel, "skein_agent_bytes_read_total{source=\"s\"}"),
        15
    );
    assert_eq!(metric(&tel, "skein_agent_files_open"), 1);
}

#[test]
fn read_from_end_or_beginning_and_new_files_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (b, e) = (dir.path().join("b"), dir.path().join("e"));
    std::fs::create_dir(&b).unwrap();
    std::fs::create_dir(&e).unwrap();
    std::fs::write(b.join("x.log"), "old b\n").unwrap();
    std::fs::write(e.join("x.log"), "old e\n").unwrap();
    std::fs::write(e.join("unidentified.log"), "no newline yet").unwrap();
    let (mut t, _) = tailer(
        vec![
            source("begin", &[&b.join("*.log")], ReadFrom::Beginning),
            source("end", &[&e.join("*.log")], ReadFrom::End),
        ],
        HashMap::new(),
    );
    assert_eq!(texts(&drain(&mut t)), ["old b"]);
    append(&e.join("x.log"), b"new e\n");
    append(&e.join("unidentified.log"), b", now there is\n");
    std::fs::write(e.join("later.log"), "later 1\nlater 2\n").unwrap();
    let mut got: Vec<String> = drain(&mut t).into_iter().map(|l| l.text).collect();
    got.sort();
    assert_eq!(
        got,
        [
            "later 1",
            "later 2",
            "new e",
            "no newline yet, now there is"
        ]
    );
}

#[test]
fn huge_line_is_cut_without_buffering_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    let big = 10 * 1024 * 1024;
    let mut data = vec![b'x'; big];
    data.extend_from_slice(b"\nnext line\n");
    std::fs::write(&p, &data).unwrap();
    let (mut t, tel) = tailer(
        vec![source("s", &[&p], ReadFrom::Beginning)],
        HashMap::new(),
    );
    let mut out = vec![];
    // Half way through the long line, at most the limit (plus a byte) is held.
    for _ in 0..20 {
        t.poll(256 * 1024, &mut |l| out.push(l));
        assert!(t.buffered_bytes() <= 2048, "{}", t.buffered_bytes());
    }
    assert!(out.is_empty());
    out.extend(drain(&mut t));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].text.len(), 1024);
    assert!(out[0].truncated);
    assert_eq!(out[0].end_offset, big as u64 + 1);
    assert_eq!(out[1].text, "next line");
    assert!(!out[1].truncated);
    assert_eq!(
        metric(&tel, "skein_agent_lines_truncated_total{source=\"s\"}"),
        1
    );
}

#[test]
fn invalid_utf8_is_kept_lossy() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    std::fs::write(&p, b"ok \xff\xfe bad\r\n\x00\x01binary\n").unwrap();
    let (mut t, _) = tailer(
        vec![source("s", &[&p], ReadFrom::Beginning)],
        HashMap::new(),
    );
    assert_eq!(
        texts(&drain(&mut t)),
        ["ok \u{FFFD}\u{FFFD} bad", "\u{0}\u{1}binary"]
    );
}

fn multiline(pattern: &str, attach: Attach, max_lines: usize) -> Option<MultilineConfig> {
    Some(MultilineConfig {
        pattern: pattern.into(),
        attach,
        max_lines,
        timeout: Dur::millis(300),
    })
}

#[test]
fn multiline_stack_traces_and_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    let trace = "ERROR boom\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)\nCaused by: x\n\t... 3 more\nINFO next\n";
    std::fs::write(&p, trace).unwrap();
    let mut s = source("s", &[&p], ReadFrom::Beginning);
    s.multiline = multiline(r"^\s+(at|\.\.\.)\s|^Caused by:", Attach::Previous, 500);
    let (mut t, tel) = tailer(vec![s], HashMap::new());
    let out = drain(&mut t);
    assert_eq!(
        texts(&out),
        ["ERROR boom\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)\nCaused by: x\n\t... 3 more"]
    );
    assert_eq!(
        out[0].end_offset,
        (trace.len() - "INFO next\n".len()) as u64
    );
    // "INFO next" waits for a possible continuation, then the timeout sends it.
    std::thread::sleep(Duration::from_millis(400));
    let out = drain(&mut t);
    assert_eq!(texts(&out), ["INFO next"]);
    assert_eq!(out[0].end_offset, trace.len() as u64);
    assert_eq!(
        metric(&tel, "skein_agent_lines_read_total{source=\"s\"}"),
        2
    );
}

#[test]
fn multiline_next_and_max_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    std::fs::write(&p, "a \\\nb \\\nc\nd\ne\\\nf\\\ng\\\nh\n").unwrap();
    let mut s = source("s", &[&p], ReadFrom::Beginning);
    s.multiline = multiline(r"\\$", Attach::Next, 2);
    let (mut t, _) = tailer(vec![s], HashMap::new());
    assert_eq!(
        texts(&drain(&mut t)),
        ["a \\\nb \\", "c", "d", "e\\\nf\\", "g\\\nh"]
    );
}

#[test]
fn open_errors_are_logged_once_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    // A symbolic link to itself fails for every user, root included.
    let looped = dir.path().join("loop.log");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    // Directories matching the glob are skipped quietly.
    std::fs::create_dir(dir.path().join("sub.log")).unwrap();
    let (mut t, tel) = tailer(
        vec![source(
            "s",
            &[&dir.path().join("*.log")],
            ReadFrom::Beginning,
        )],
        HashMap::new(),
    );
    for _ in 0..3 {
        assert!(drain(&mut t).is_empty());
    }
    assert_eq!(
        metric(&tel, "skein_agent_read_errors_total{source=\"s\"}"),
        1
    );
    std::fs::remove_file(&looped).unwrap();
    std::fs::write(&looped, "now readable\n").unwrap();
    assert_eq!(texts(&drain(&mut t)), ["now readable"]);
    assert_eq!(
        metric(&tel, "skein_agent_read_errors_total{source=\"s\"}"),
        1
    );
}

/// Set in the environment when [`permission_denied_is_retried`] runs itself again without
/// capabilities.
const WITHOUT_CAPABILITIES: &str = "SKEIN_TEST_WITHOUT_CAPABILITIES";

#[test]
fn permission_denied_is_retried() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("secret.log");
    std::fs::write(&p, "hidden\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
    if File::open(&p).is_ok() {
        // Root reads any file, so run this test again where it cannot: in a user namespace as
        // uid 65534, which has no capabilities but still owns the files it makes.
        assert!(
            std::env::var_os(WITHOUT_CAPABILITIES).is_none(),
            "a file of mode 000 is readable without capabilities"
        );
        rerun_without_capabilities("permission_denied_is_retried");
        return;
    }
    let (mut t, tel) = tailer(
        vec![source(
            "s",
            &[&dir.path().join("*.log")],
            ReadFrom::Beginning,
        )],
        HashMap::new(),
    );
    let first = drain(&mut t);
    drain(&mut t);
    assert!(first.is_empty());
    assert_eq!(
        metric(&tel, "skein_agent_read_errors_total{source=\"s\"}"),
        1
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(texts(&drain(&mut t)), ["hidden"]);
}

/// Runs the test `name` of this module again, in this test binary, inside a new user namespace
/// where the process is uid 65534 (`unshare --user --map-user=65534`), and panics unless it
/// ran and passed.
fn rerun_without_capabilities(name: &str) {
    let module = module_path!()
        .split_once("::")
        .map_or(module_path!(), |(_, m)| m);
    let test = format!("{module}::{name}");
    let out = std::process::Command::new("unshare")
        .args(["--user", "--map-user=65534", "--map-group=65534"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", &test, "--test-threads=1", "--nocapture"])
        .env(WITHOUT_CAPABILITIES, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{test} without capabilities: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn budget_is_shared_between_files() {
    let dir = tempfile::tempdir().unwrap();
    let line = "y".repeat(99) + "\n";
    for f in ["a.log", "b.log"] {
        std::fs::write(dir.path().join(f), line.repeat(10_000)).unwrap();
    }
    let (mut t, _) = tailer(
        vec![source(
            "s",
            &[&dir.path().join("*.log")],
            ReadFrom::Beginning,
        )],
        HashMap::new(),
    );
    let mut n = 0;
    let read = t.poll(256 * 1024, &mut |_| n += 1);
    assert_eq!(read, 256 * 1024);
    let files = t.files();
    assert_eq!(
        files.iter().map(|f| f.3).collect::<Vec<_>>(),
        [131072, 131072]
    );
    assert_eq!(n, 2 * 1310);
    let rest = drain(&mut t);
    assert_eq!(rest.len() + n, 20_000);
}

#[test]
fn open_files_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["a.log", "b.log", "c.log"] {
        std::fs::write(dir.path().join(f), format!("{f}\n")).unwrap();
    }
    let (mut t, tel) = tailer(
        vec![source(
            "s",
            &[&dir.path().join("*.log")],
            ReadFrom::Beginning,
        )],
        HashMap::new(),
    );
    t.set_max_open_files(2);
    assert_eq!(texts(&drain(&mut t)), ["a.log", "b.log"]);
    assert_eq!(t.files().len(), 2);
    assert_eq!(metric(&tel, "skein_agent_files_open"), 2);
    t.set_max_open_files(3);
    assert_eq!(texts(&drain(&mut t)), ["c.log"]);
}

/// Throughput of the read path: `cargo test -p skein-agent --release tail::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore = "timing printout; run by hand in release"]
fn throughput() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.log");
    let line = "2024-05-01T12:00:00.000Z INFO payment-service request handled id=1234 took=12ms user=someone ok\n";
    let mut f = std::io::BufWriter::new(File::create(&p).unwrap());
    let mut size = 0;
    while size < 512 * 1024 * 1024 {
        f.write_all(line.as_bytes()).unwrap();
        size += line.len();
    }
    drop(f);
    let (mut t, _) = tailer(
        vec![source("s", &[&p], ReadFrom::Beginning)],
        HashMap::new(),
    );
    let start = std::time::Instant::now();
    let mut n = 0u64;
    let mut bytes = 0u64;
    loop {
        let got = t.poll(4 << 20, &mut |l| {
            n += 1;
            bytes += l.text.len() as u64;
        });
        if got == 0 {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{n} lines, {:.0} MiB/s, {:.1} M lines/s",
        size as f64 / secs / 1048576.0,
        n as f64 / secs / 1e6
    );
    assert!(bytes > 0);
}
