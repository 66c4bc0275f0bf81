//! A command in a pseudo-terminal (util-linux `script`), 140 columns by 40 rows: keys go in,
//! the screen is read back through a terminal emulator (`vt100`).

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The running command and what it drew so far.
pub struct Pty {
    child: Child,
    keys: Option<ChildStdin>,
    bytes: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Pty {
    /// Runs `command_line` (a shell command line) in a pseudo-terminal.
    pub fn spawn(command_line: &str) -> Pty {
        let mut child = Command::new("script")
            .args([
                "-qfec",
                &format!("stty cols 140 rows 40; {command_line}"),
                "/dev/null",
            ])
            .env("TERM", "xterm-256color")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("script (util-linux) runs the command in a pseudo-terminal");
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let sink = bytes.clone();
        let mut out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let keys = child.stdin.take();
        Pty {
            child,
            keys,
            bytes,
            reader: Some(reader),
        }
    }

    /// The screen as text.
    pub fn text(&self) -> String {
        let mut p = vt100::Parser::new(40, 140, 0);
        p.process(&self.bytes.lock().unwrap());
        p.screen().contents()
    }

    /// Everything written so far, escapes included.
    pub fn raw(&self) -> Vec<u8> {
        self.bytes.lock().unwrap().clone()
    }

    /// Waits until the screen shows `what` (or `timeout` passes); returns the screen.
    pub fn wait_for(&self, what: &str, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            let t = self.text();
            if t.contains(what) || Instant::now() > end {
                return t;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types `keys`.
    pub fn send(&mut self, keys: &[u8]) {
        let k = self.keys.as_mut().expect("keys still open");
        k.write_all(keys).unwrap();
        k.flush().unwrap();
    }

    /// Waits for the command to exit (panics with the screen after `timeout`), then for its
    /// last output.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let end = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < end,
                "the command did not exit within {timeout:?}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        drop(self.keys.take());
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        status
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
