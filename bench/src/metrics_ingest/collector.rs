//! `skein collector` as a child process, and its tsdb gauges read from `/metrics`.

use crate::agent_util::{ProcStat, proc_stat};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `skein collector` running as a child process on its own data dir, every listener on a
/// free port of 127.0.0.1.
pub struct CollectorProc {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// OTLP/HTTP base URL.
    pub otlp: String,
    /// OTLP/gRPC address (`host:port`).
    pub grpc: String,
    /// Query API base URL.
    pub api: String,
    log: PathBuf,
}

impl CollectorProc {
    /// Starts `skein collector --data-dir DIR` (with `--config` when given) and waits (up to
    /// 120 s) for its ready line; its log (stderr) goes to `log`.
    pub fn start(
        skein: &Path,
        data_dir: &Path,
        config: Option<&Path>,
        log: &Path,
    ) -> Result<CollectorProc> {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("create {}", log.display()))?;
        let mut cmd = Command::new(skein);
        cmd.arg("collector");
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(["--otlp-http", "127.0.0.1:0"])
            .args(["--otlp-grpc", "127.0.0.1:0"])
            .args(["--api", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err));
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "start {} collector (build it: cargo build --release -p skein)",
                skein.display()
            )
        })?;
        let pid = child.id();
        let rx = crate::agent_util::ready_lines(&mut child, "skein collector ready")?;
        let mut me = CollectorProc {
            child,
            pid,
            otlp: String::new(),
            grpc: String::new(),
            api: String::new(),
            log: log.to_path_buf(),
        };
        let line = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(l) => l,
            Err(_) => bail!(
                "the collector printed no ready line within 120 s; its log:\n{}",
                me.log_tail(30)
            ),
        };
        let addr = |key: &str| -> Result<String> {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .map(|a| format!("http://{a}"))
                .ok_or_else(|| anyhow!("no {key} in the ready line {line:?}"))
        };
        me.otlp = addr("otlp_http=")?;
        me.api = addr("api=")?;
        me.grpc = addr("otlp_grpc=")?
            .trim_start_matches("http://")
            .to_string();
        Ok(me)
    }

    /// `/proc` figures of the collector now.
    pub fn stat(&self) -> Result<ProcStat> {
        proc_stat(self.pid)
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Stops it with SIGTERM and waits up to 60 s (then SIGKILL). Returns how long it took.
    pub fn stop(mut self) -> Result<Duration> {
        let t = Instant::now();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        while t.elapsed() < Duration::from_secs(60) {
            if let Some(st) = self.child.try_wait().context("wait for the collector")? {
                if !st.success() {
                    bail!(
                        "the collector exited with {st}; its log:\n{}",
                        self.log_tail(30)
                    );
                }
                return Ok(t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        bail!("the collector did not stop within 60 s of SIGTERM; killed")
    }
}

impl Drop for CollectorProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The collector's `skein_tsdb{size="..."}` gauges (series, head_samples, blocks,
/// block_samples, block_bytes, block_chunk_bytes, wal_bytes); updated every 5 s.
pub fn tsdb_sizes(client: &reqwest::blocking::Client, api: &str) -> Result<BTreeMap<String, u64>> {
    let text = client
        .get(format!("{api}/metrics"))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .with_context(|| format!("GET {api}/metrics"))?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("skein_tsdb{size=\"") else {
            continue;
        };
        let Some((what, tail)) = rest.split_once("\"}") else {
            continue;
        };
        if let Ok(v) = tail.trim().parse::<f64>() {
            out.insert(what.to_string(), v as u64);
        }
    }
    Ok(out)
}
