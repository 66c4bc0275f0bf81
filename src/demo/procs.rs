//! The demo's child processes: started with a pipe on standard input (closing it is the stop
//! request), in their own process group, output to `<data>/logs/<name>.out` and `.err`; ready
//! when they print their `... ready key=value ...` line.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Environment variables of the `skein` binary that a child must not inherit from the user's
/// shell: the demo gives each child its whole configuration.
const CLEARED_ENV: &[&str] = &[
    "SKEIN_CONFIG",
    "SKEIN_DATA_DIR",
    "SKEIN_INGEST_TOKEN",
    "SKEIN_QUERY_TOKEN",
    "SKEIN_API",
    "SKEIN_AGENT_CONFIG",
    "SKEIN_AGENT_DATA_DIR",
    "SKEIN_COLLECTOR",
];

/// How long a child may take to stop after its standard input closed, before it is killed.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// One running child.
pub(crate) struct Proc {
    /// Short name (`collector`, `agent`, `gateway`, ...).
    pub(crate) name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    ready: mpsc::Receiver<HashMap<String, String>>,
    err_path: PathBuf,
}

impl Proc {
    /// Starts `exe args` as `name`.
    pub(crate) fn spawn(
        name: &str,
        exe: &Path,
        args: &[String],
        logs: &Path,
    ) -> Result<Proc, String> {
        let out_path = logs.join(format!("{name}.out"));
        let err_path = logs.join(format!("{name}.err"));
        let err = std::fs::File::create(&err_path)
            .map_err(|e| format!("cannot create {}: {e}", err_path.display()))?;
        let mut out_file = std::fs::File::create(&out_path)
            .map_err(|e| format!("cannot create {}: {e}", out_path.display()))?;
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .env(super::STOP_ON_STDIN_EOF, "1")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err));
        for v in CLEARED_ENV {
            cmd.env_remove(v);
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // Ctrl-C in the terminal goes to the demo only; it stops the children in order.
            cmd.process_group(0);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start the {name} ({}): {e}", exe.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = stdout {
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-out"))
                .spawn(move || {
                    let mut sent = false;
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        let _ = writeln!(out_file, "{line}");
                        if !sent && line.contains(" ready ") {
                            sent = true;
                            let _ = tx.send(parse_ready(&line));
                        }
                    }
                });
            if let Err(e) = spawned {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("cannot start a thread: {e}"));
            }
        }
        Ok(Proc {
            name: name.to_string(),
            child,
            stdin,
            ready: rx,
            err_path,
        })
    }

    /// Waits for the ready line and returns its `key=value` pairs. An exit or a timeout is an
    /// error with the end of the child's error output.
    pub(crate) fn wait_ready(
        &mut self,
        timeout: Duration,
    ) -> Result<HashMap<String, String>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.ready.recv_timeout(Duration::from_millis(100)) {
                Ok(map) => return Ok(map),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Output closed without a ready line: the process is ending.
                    let _ = self.child.wait();
                    return Err(self.failure("exited before it was ready"));
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.failure(&format!("exited before it was ready ({status})")));
            }
            if Instant::now() > deadline {
                return Err(self.failure(&format!("was not ready within {timeout:?}")));
            }
        }
    }

    fn failure(&self, what: &str) -> String {
        let text = std::fs::read_to_string(&self.err_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "the {} {what}; its last words ({}):\n  {}",
            self.name,
            self.err_path.display(),
            tail.join("\n  ")
        )
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub(crate) fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks the process to stop: closes its standard input.
    pub(crate) fn request_stop(&mut self) {
        drop(self.stdin.take());
    }

    /// Asks the process to stop, waits up to `timeout`, then kills it. Returns how it ended,
    /// in words.
    pub(crate) fn stop(&mut self, timeout: Duration) -> String {
        self.request_stop();
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return "stopped".into(),
                Ok(Some(status)) => return format!("stopped ({status})"),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(25));
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return format!("killed: it did not stop within {timeout:?}");
                }
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.running() {
            self.stop(STOP_TIMEOUT);
        }
    }
}

/// `skein collector ready otlp_http=A otlp_grpc=B api=C` → {otlp_http: A, ...}.
fn parse_ready(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_give_their_addresses() {
        let m = parse_ready("skein collector ready otlp_http=127.0.0.1:1 api=127.0.0.1:3");
        assert_eq!(m["otlp_http"], "127.0.0.1:1");
        assert_eq!(m["api"], "127.0.0.1:3");
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn a_child_stops_when_its_input_closes() {
        let tmp = tempfile::tempdir().unwrap();
        // `sh` reads its script from standard input: it prints the ready line, then waits
        // for the end of input (`read` fails at EOF), as the demo's children do.
        let args = vec![
            "-c".to_string(),
            "echo 'x ready a=1'; while read -r _; do :; done; exit 0".to_string(),
        ];
        let mut p = Proc::spawn("sh", Path::new("sh"), &args, tmp.path()).unwrap();
        assert_eq!(p.wait_ready(Duration::from_secs(10)).unwrap()["a"], "1");
        assert!(p.running());
        assert_eq!(p.stop(Duration::from_secs(10)), "stopped");
        assert!(!p.running());
        let out = std::fs::read_to_string(tmp.path().join("sh.out")).unwrap();
        assert!(out.contains("x ready a=1"), "{out}");
    }

    #[test]
    fn a_child_that_exits_early_is_an_error_with_its_words() {
        let tmp = tempfile::tempdir().unwrap();
        let args = vec![
            "-c".to_string(),
            "echo 'port 8080 is taken' >&2; exit 3".to_string(),
        ];
        let mut p = Proc::spawn("gateway", Path::new("sh"), &args, tmp.path()).unwrap();
        let err = p.wait_ready(Duration::from_secs(10)).unwrap_err();
        assert!(err.contains("gateway exited before it was ready"), "{err}");
        assert!(err.contains("port 8080 is taken"), "{err}");
    }
}
