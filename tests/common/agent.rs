//! The agent side of the harness: runs the real `skein agent` with a config file in a
//! temporary directory, and stops it cleanly or with SIGKILL.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::{SKEIN, SKEIN_ENV, run_until_ready};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

/// Addresses from `skein agent ready otlp_http=… otlp_grpc=… metrics=…`.
#[derive(Debug, Clone, Copy)]
pub struct AgentAddrs {
    /// Local OTLP/HTTP receiver.
    pub otlp_http: SocketAddr,
    /// Local OTLP/gRPC receiver.
    pub otlp_grpc: SocketAddr,
    /// `/metrics`.
    pub metrics: SocketAddr,
}

fn parse_ready(line: &str) -> Option<AgentAddrs> {
    let rest = line.trim().strip_prefix("skein agent ready ")?;
    let (mut h, mut g, mut m) = (None, None, None);
    for part in rest.split_whitespace() {
        let (k, v) = part.split_once('=')?;
        let addr: SocketAddr = v.parse().ok()?;
        match k {
            "otlp_http" => h = Some(addr),
            "otlp_grpc" => g = Some(addr),
            "metrics" => m = Some(addr),
            _ => {}
        }
    }
    Some(AgentAddrs {
        otlp_http: h?,
        otlp_grpc: g?,
        metrics: m?,
    })
}

/// A running `skein agent`.
pub struct Agent {
    child: Option<Child>,
    /// Where its config file is.
    pub config: PathBuf,
    /// Its addresses.
    pub addrs: AgentAddrs,
    output: Arc<Mutex<String>>,
    generation: usize,
}

/// The receiver and metrics ports are chosen by the OS; the caller's TOML must not set
/// `[receiver]` or `[telemetry]`.
fn with_free_ports(toml: &str) -> String {
    format!(
        "{toml}\n[receiver]\nhttp = \"127.0.0.1:0\"\ngrpc = \"127.0.0.1:0\"\n[telemetry]\nlisten = \"127.0.0.1:0\"\n"
    )
}

impl Agent {
    /// Writes `toml` (plus free ports) to `dir/agent.toml` and starts the agent with it.
    pub fn start(dir: &Path, toml: &str) -> Agent {
        let config = dir.join("agent.toml");
        std::fs::write(&config, with_free_ports(toml)).unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let (child, addrs) = spawn(&config, &output, 0);
        Agent {
            child: Some(child),
            config,
            addrs,
            output,
            generation: 0,
        }
    }

    /// Starts it again with the same config (after a stop).
    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.generation += 1;
        let (child, addrs) = spawn(&self.config, &self.output, self.generation);
        self.child = Some(child);
        self.addrs = addrs;
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let mut c = self.child.take().expect("agent running");
        c.kill().expect("SIGKILL the agent");
        let _ = c.wait();
        self.note("killed with SIGKILL");
    }

    /// SIGTERM and wait for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let c = self.child.take().expect("agent running");
        super::terminate(c, "agent", &self.output)
    }

    /// Everything it printed.
    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    fn note(&self, text: &str) {
        if let Ok(mut o) = self.output.lock() {
            o.push_str(&format!("[harness] {text}\n"));
        }
    }

    /// The agent's `/metrics` text.
    pub fn metrics(&self) -> String {
        super::client()
            .get(format!("http://{}/metrics", self.addrs.metrics))
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default()
    }

    /// One counter's value from `/metrics` (0 when absent), e.g.
    /// `skein_agent_lines_truncated_total{source="a"}`.
    pub fn counter(&self, series: &str) -> f64 {
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- skein agent output ----\n{}---- end of agent output ----",
                self.output()
            );
        }
    }
}

fn spawn(config: &Path, output: &Arc<Mutex<String>>, generation: usize) -> (Child, AgentAddrs) {
    let mut cmd = Command::new(SKEIN);
    cmd.arg("agent")
        .arg("--config")
        .arg(config)
        .env("NO_COLOR", "1")
        .env("SKEIN_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in SKEIN_ENV {
        if *v != "SKEIN_LOG" {
            cmd.env_remove(v);
        }
    }
    run_until_ready(cmd, output, generation, "agent", parse_ready)
}
