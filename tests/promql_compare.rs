//! Skein's PromQL side by side with the real Prometheus: runs `scripts/promql-compare/run.sh`
//! with the `skein` binary under test. The script loads the same two hours of series into
//! Prometheus (promtool blocks) and into Skein (remote write), runs every query of
//! `scripts/promql-compare/queries.txt` against both, instant and range, and compares the
//! answers; then `promtool query` and the `prometheus-api-client` Python package against both.
//! It exits 0 only when everything agrees, or differs as `known-differences.txt` lists.
//!
//! Needs `prometheus` and `promtool` (`scripts/install-prometheus.sh` installs them; the script
//! also reads `$SKEIN_PROMETHEUS` / `$SKEIN_PROMTOOL`) and python3; the script installs its
//! Python packages with pip when they are missing. Without Prometheus the test fails: it never
//! skips.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the whole comparison may take (it takes 10-20 s, more when pip installs packages).
const LIMIT: Duration = Duration::from_secs(420);

/// `name` as the script finds it: `$env`, else PATH, else /usr/bin.
fn find_tool(name: &str, env: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[test]
fn promql_answers_as_prometheus_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("scripts/promql-compare/run.sh");
    for (tool, env) in [
        ("prometheus", "SKEIN_PROMETHEUS"),
        ("promtool", "SKEIN_PROMTOOL"),
    ] {
        assert!(
            find_tool(tool, env).is_some(),
            "`{tool}` is not installed (looked at ${env}, PATH and /usr/bin): the PromQL \
             comparison needs the real Prometheus; install it with scripts/install-prometheus.sh"
        );
    }

    let out_dir = tempfile::tempdir().expect("temporary dir");
    let mut child = Command::new("bash")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_skein"))
        .arg("--out")
        .arg(out_dir.path())
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout stops Prometheus and the collector too.
        .process_group(0)
        .spawn()
        .expect("run scripts/promql-compare/run.sh");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for run.sh") {
            break Some(status);
        }
        if started.elapsed() > LIMIT {
            let _ = Command::new("kill")
                .args(["-TERM", &format!("-{}", child.id())])
                .status();
            std::thread::sleep(Duration::from_secs(2));
            let _ = Command::new("kill")
                .args(["-KILL", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    println!("{stderr}");
    println!("{stdout}");
    // The closing lines (run.sh prints them last, after the full output).
    let mut summary: Vec<&str> = Vec::new();
    for prefix in ["SUMMARY", "CLIENTS", "RESULT"] {
        if let Some(l) = stdout.lines().rev().find(|l| l.starts_with(prefix)) {
            summary.push(l);
        }
    }
    // What differs, for the failure message: each query or check and its first lines.
    let mut diffs: Vec<&str> = Vec::new();
    let mut in_diff = false;
    for l in stdout.lines() {
        if l.starts_with("MISMATCH") || l.starts_with("DIFF") {
            in_diff = true;
        } else if !l.starts_with(' ') {
            in_diff = false;
        }
        if in_diff && diffs.len() < 80 {
            diffs.push(l);
        }
    }
    eprintln!("{}", summary.join("\n"));
    if status.is_some_and(|s| s.success()) {
        return;
    }
    // Keep the work dir (data, logs of both servers, JSON reports) for a look.
    let dir = out_dir.keep();
    let Some(status) = status else {
        panic!(
            "run.sh did not finish within {LIMIT:?}; its files are in {}",
            dir.display()
        );
    };
    if status.code() == Some(3) {
        panic!(
            "run.sh could not run the comparison (a prerequisite is missing or a server did not \
             start; prometheus and promtool come from scripts/install-prometheus.sh): {}; its \
             files are in {}",
            stderr.lines().rev().take(5).collect::<Vec<_>>().join(" / "),
            dir.display()
        );
    }
    panic!(
        "Skein and Prometheus answer differently ({status}); reports and logs in {}:\n{}\n{}",
        dir.display(),
        diffs.join("\n"),
        summary.join("\n")
    );
}
