//! The demo's data directory (one demo at a time, fresh each run), its ports and the config
//! files it writes for the collector and the agent.

use skein_demo::{Addresses, ServiceName};
use std::fs::{File, OpenOptions};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

/// The lock file that marks a directory as a demo's and keeps a second demo out.
const LOCK_FILE: &str = "demo.lock";
/// The demo's commentary (faults, notifications, progress); the agent tails it.
pub(crate) const EVENTS_FILE: &str = "events.log";
/// The service name of the commentary's lines.
pub(crate) const EVENTS_SERVICE: &str = "skein-demo";
/// What a running demo writes about itself (for `skein demo fault`).
pub(crate) const STATE_FILE: &str = "demo.json";

/// The demo's data directory, locked for the life of the demo.
pub(crate) struct DataDir {
    /// Its path.
    pub(crate) path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Takes `path` for this demo: creates it, locks it (a second demo on the same directory
    /// is refused), then empties it. A directory that holds something but no lock file is
    /// not a demo's and is refused, so nothing of the user's is deleted.
    pub(crate) fn take(path: &Path) -> Result<DataDir, String> {
        let shown = path.display();
        if path.exists() && !path.is_dir() {
            return Err(format!(
                "data directory {shown} is a file; pass --data with a directory"
            ));
        }
        let lock_path = path.join(LOCK_FILE);
        if path.is_dir() && !lock_path.exists() {
            let mut entries = std::fs::read_dir(path)
                .map_err(|e| format!("cannot read data directory {shown}: {e}"))?;
            if entries.next().is_some() {
                return Err(format!(
                    "data directory {shown} is not empty and is not a demo's (no {LOCK_FILE}); \
                     pass --data with a new directory"
                ));
            }
        }
        std::fs::create_dir_all(path)
            .map_err(|e| format!("cannot create data directory {shown}: {e}"))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("data directory {shown} is not writable: {e}"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let who = std::fs::read_to_string(path.join(STATE_FILE))
                    .ok()
                    .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                    .and_then(|v| v.get("pid").and_then(|p| p.as_u64()))
                    .map_or(String::new(), |pid| format!(" (pid {pid})"));
                return Err(format!(
                    "a demo is already running on {shown}{who}; stop it (q or Ctrl-C in its \
                     terminal) or pass --data with another directory"
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", lock_path.display()));
            }
        }
        let entries = std::fs::read_dir(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {shown}: {e}"))?;
            if entry.file_name() == LOCK_FILE {
                continue;
            }
            let p = entry.path();
            let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            removed.map_err(|e| format!("cannot empty {}: {e}", p.display()))?;
        }
        for sub in ["logs", "rules"] {
            std::fs::create_dir_all(path.join(sub))
                .map_err(|e| format!("data directory {shown} is not writable: {e}"))?;
        }
        Ok(DataDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// `<data>/<rel>`.
    pub(crate) fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }
}

/// Ports the demo listens on. Each has a usual port; when it is taken another free one is
/// used and the note says so.
pub(crate) struct Ports {
    /// Collector OTLP/HTTP, OTLP/gRPC, query API.
    pub(crate) otlp_http: SocketAddr,
    pub(crate) otlp_grpc: SocketAddr,
    pub(crate) api: SocketAddr,
    /// Agent's local OTLP receiver (HTTP, gRPC) and its own metrics.
    pub(crate) agent_http: SocketAddr,
    pub(crate) agent_grpc: SocketAddr,
    pub(crate) agent_metrics: SocketAddr,
    /// The five services.
    pub(crate) services: Addresses,
    /// The webhook receiver and the demo's control endpoint.
    pub(crate) webhook: SocketAddr,
    pub(crate) control: SocketAddr,
    /// One line per port that was taken.
    pub(crate) notes: Vec<String>,
}

impl Ports {
    /// Picks every port. A port is free when it can be bound now; the child binds it a moment
    /// later (a race only another program starting in that moment can lose).
    pub(crate) fn pick() -> Result<Ports, String> {
        let mut notes = Vec::new();
        let mut taken: Vec<u16> = Vec::new();
        let mut pick = |what: &str, port: u16| -> Result<SocketAddr, String> {
            let a = pick_one(what, port, &taken, &mut notes)?;
            taken.push(a.port());
            Ok(a)
        };
        let otlp_http = pick("collector OTLP/HTTP", 4318)?;
        let otlp_grpc = pick("collector OTLP/gRPC", 4317)?;
        let api = pick("query API", 7700)?;
        let agent_http = pick("agent OTLP/HTTP", 4328)?;
        let agent_grpc = pick("agent OTLP/gRPC", 4327)?;
        let agent_metrics = pick("agent metrics", 7701)?;
        let services = Addresses {
            gateway: pick("gateway", 8080)?,
            order: pick("order", 8081)?,
            coupon: pick("coupon", 8082)?,
            payment: pick("payment", 8083)?,
            delivery: pick("delivery", 8084)?,
        };
        let webhook = pick("webhook receiver", 9095)?;
        let control = pick("demo control", 7709)?;
        Ok(Ports {
            otlp_http,
            otlp_grpc,
            api,
            agent_http,
            agent_grpc,
            agent_metrics,
            services,
            webhook,
            control,
            notes,
        })
    }
}

fn pick_one(
    what: &str,
    port: u16,
    taken: &[u16],
    notes: &mut Vec<String>,
) -> Result<SocketAddr, String> {
    let usual = SocketAddr::from(([127, 0, 0, 1], port));
    if TcpListener::bind(usual).is_ok() {
        return Ok(usual);
    }
    // Another free port, not one already handed out in this run.
    for _ in 0..16 {
        let l = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("cannot find a free port on 127.0.0.1 for the {what}: {e}"))?;
        let a = l
            .local_addr()
            .map_err(|e| format!("cannot read a bound address: {e}"))?;
        if !taken.contains(&a.port()) {
            notes.push(format!("port {port} ({what}) is taken; using {a} instead"));
            return Ok(a);
        }
    }
    Err(format!(
        "cannot find a free port on 127.0.0.1 for the {what}"
    ))
}

/// A TOML basic string (JSON's string escapes are valid TOML).
fn q(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn q_path(p: &Path) -> String {
    q(&p.display().to_string())
}

/// Writes the alert rules (built into the binary) to `<data>/rules`.
pub(crate) fn write_rules(dir: &DataDir) -> Result<PathBuf, String> {
    let rules = dir.join("rules");
    for (name, text) in [
        ("demo.toml", include_str!("../../alerts/demo.toml")),
        ("skein.toml", include_str!("../../alerts/skein.toml")),
    ] {
        let p = rules.join(name);
        std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    Ok(rules)
}

/// Writes `<data>/collector.toml`: data under `<data>/collector`, the demo's rules, one
/// webhook receiver (the demo's), short waits so notifications come within seconds.
pub(crate) fn write_collector_config(
    dir: &DataDir,
    ports: &Ports,
    rules: &Path,
) -> Result<PathBuf, String> {
    let listen = [ports.otlp_http, ports.otlp_grpc, ports.api];
    write_node_config(dir, "collector", listen, ports.webhook, rules, "")
}

/// Writes `<data>/<name>.toml` for a collector with its data under `<data>/<name>`,
/// listening on `listen` (OTLP/HTTP, OTLP/gRPC, API), with `extra` (a `[cluster]` section)
/// at the end.
pub(crate) fn write_node_config(
    dir: &DataDir,
    name: &str,
    listen: [SocketAddr; 3],
    webhook: SocketAddr,
    rules: &Path,
    extra: &str,
) -> Result<PathBuf, String> {
    let mut text = format!(
        r#"# Written by `skein demo`; rewritten on every run.
data_dir = {data}

[listen]
otlp_http = "{otlp_http}"
otlp_grpc = "{otlp_grpc}"
api = "{api}"

[agents]
down_after = "15s"

[alerts]
rules = [{rules}]
eval_interval = "5s"

[[alerts.receiver]]
name = "demo-webhook"
url = "http://{webhook}/hook"
timeout = "5s"
send_resolved = true

[alerts.route]
receiver = "demo-webhook"
group_by = ["alertname", "service"]
group_wait = "2s"
group_interval = "5s"
repeat_interval = "1h"
"#,
        data = q_path(&dir.join(name)),
        otlp_http = listen[0],
        otlp_grpc = listen[1],
        api = listen[2],
        rules = q_path(rules),
        webhook = webhook,
    );
    text.push_str(extra);
    let p = dir.join(&format!("{name}.toml"));
    std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    Ok(p)
}

/// The log file of one service, in the logs directory `logs`.
pub(crate) fn log_file(logs: &Path, s: ServiceName) -> PathBuf {
    logs.join(format!("{}.log", s.as_str()))
}

/// Writes `<data>/agent.toml`: tails the five services' log files from their beginning,
/// watches their processes, receives their spans, ships to the demo's collector.
pub(crate) fn write_agent_config(
    dir: &DataDir,
    ports: &Ports,
    collector_http: SocketAddr,
) -> Result<PathBuf, String> {
    let mut text = format!(
        r#"# Written by `skein demo`; rewritten on every run.
[agent]
id = "demo-agent"
data_dir = {data}

[collector]
endpoint = "http://{collector_http}"

[batch]
max_wait = "250ms"

[receiver]
enabled = true
http = "{agent_http}"
grpc = "{agent_grpc}"

[telemetry]
listen = "{agent_metrics}"

[heartbeat]
interval = "5s"

[host_metrics]
enabled = true
interval = "5s"
"#,
        data = q_path(&dir.join("agent")),
        agent_http = ports.agent_http,
        agent_grpc = ports.agent_grpc,
        agent_metrics = ports.agent_metrics,
    );
    for s in ServiceName::ALL {
        let name = s.as_str();
        text.push_str(&format!(
            r#"
[[host_metrics.process]]
service = "{name}"
cmdline = {cmdline}

[[source]]
name = "{name}"
paths = [{path}]
service = "{name}"
format = "json"
read_from = "beginning"
"#,
            path = q_path(&log_file(&dir.join("logs"), s)),
            // This demo's processes only: the command line names the service and its log file.
            cmdline = q(&format!(
                "demo service {name} .*{}",
                regex::escape(&log_file(&dir.join("logs"), s).display().to_string())
            )),
        ));
    }
    // The demo's own commentary, so the logs view shows faults and notifications in place.
    text.push_str(&format!(
        r#"
[[source]]
name = "{EVENTS_SERVICE}"
paths = [{path}]
service = "{EVENTS_SERVICE}"
format = "plain"
read_from = "beginning"
"#,
        path = q_path(&dir.join(EVENTS_FILE)),
    ));
    let p = dir.join("agent.toml");
    std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    Ok(p)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_second_demo_on_the_same_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d");
        let first = DataDir::take(&path).unwrap();
        std::fs::write(first.join("logs/x.log"), "x").unwrap();
        let err = DataDir::take(&path).err().expect("refused");
        assert!(err.contains("already running"), "{err}");
        drop(first);
        // The next run starts fresh: the old file is gone.
        let again = DataDir::take(&path).unwrap();
        assert!(!again.join("logs/x.log").exists());
        assert!(again.join("rules").is_dir());
    }

    #[test]
    fn a_directory_with_other_things_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("precious.txt"), "keep").unwrap();
        let err = DataDir::take(tmp.path()).err().expect("refused");
        assert!(err.contains("not a demo's"), "{err}");
        assert!(tmp.path().join("precious.txt").exists());
    }

    #[test]
    fn a_taken_port_is_replaced_and_named() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let mut notes = Vec::new();
        let a = pick_one("gateway", port, &[], &mut notes).unwrap();
        assert_ne!(a.port(), port);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains(&format!("port {port} (gateway) is taken")));
    }

    #[test]
    fn configs_are_valid_for_their_parsers() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::take(&tmp.path().join("d \"q\"")).unwrap();
        let ports = Ports::pick().unwrap();
        let rules = write_rules(&dir).unwrap();
        let c = write_collector_config(&dir, &ports, &rules).unwrap();
        let cfg = skein_collector::config::CollectorConfig::from_file(&c).unwrap();
        assert_eq!(cfg.listen.api, ports.api.to_string());
        assert_eq!(cfg.alerts.rules, vec![rules]);
        let a = write_agent_config(&dir, &ports, ports.otlp_http).unwrap();
        let cfg = skein_agent::config::AgentConfig::from_file(&a).unwrap();
        assert_eq!(cfg.sources.len(), 6);
        assert_eq!(cfg.host_metrics.processes.len(), 5);
    }
}
