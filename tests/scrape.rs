//! End-to-end: the real `skein agent` scrapes the real Prometheus node_exporter and a target
//! that never answers, every second, into a real collector; the collector's query API then
//! shows `node_cpu_seconds_total` with exactly its exposed labels plus job, instance and the
//! job's extra label, `up` = 1 for the exporter and 0 for the silent target, and the other
//! scrape series. A bad `[[scrape]]` key is refused with exit 2 naming file, key and value.
//!
//! node_exporter comes from Debian's `prometheus-node-exporter` package
//! (`scripts/install-prometheus.sh`); `SKEIN_NODE_EXPORTER` may name another binary. Missing,
//! the test fails: it is never skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::agent::Agent;
use common::{Collector, client, get_json, url_with, wait_for};
use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long scraped samples may take to go exporter → agent → collector → store.
const ARRIVAL: Duration = Duration::from_secs(60);

/// A running node_exporter on a free loopback port, killed on drop.
struct NodeExporter {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl NodeExporter {
    fn start(dir: &Path) -> NodeExporter {
        let bin = std::env::var_os("SKEIN_NODE_EXPORTER")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus-node-exporter"));
        assert!(
            bin.is_file(),
            "node_exporter not found at {} (set SKEIN_NODE_EXPORTER, or run \
             scripts/install-prometheus.sh to install Debian's prometheus-node-exporter)",
            bin.display()
        );
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr = format!("127.0.0.1:{port}");
        let log = dir.join("node_exporter.log");
        let child = Command::new(&bin)
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let ne = NodeExporter { child, addr, log };
        let url = format!("http://{}/metrics", ne.addr);
        let up = wait_for(
            || {
                client()
                    .get(&url)
                    .send()
                    .is_ok_and(|r| r.status().is_success())
            },
            Duration::from_secs(30),
        );
        assert!(up, "node_exporter does not answer at {url}:\n{}", ne.log());
        ne
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent_config(dir: &Path, c: &Collector, targets: &[&str]) -> String {
    let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
    format!(
        r#"
[agent]
id = "scrape-agent"
host_name = "scrape-host"
data_dir = "{data}"
[collector]
endpoint = "{endpoint}"
timeout = "5s"
[batch]
max_wait = "100ms"
[retry]
initial_backoff = "50ms"
max_backoff = "500ms"
[heartbeat]
interval = "500ms"
[host_metrics]
enabled = false

[[scrape]]
job = "node"
targets = [{targets}]
interval = "1s"
timeout = "500ms"
labels = {{ env = "e2e" }}
drop = ["go_memstats_.*"]
"#,
        data = dir.join("agent-data").display(),
        endpoint = c.http_base(),
        targets = targets.join(", "),
    )
}

/// The last value of each series of `name` grouped by `by`, as (labels, value).
fn last_values(c: &Collector, name: &str, by: &str) -> Vec<(Value, f64)> {
    let (status, v) = get_json(&url_with(
        &c.api_base(),
        "/api/v1/metrics/query",
        &[("name", name), ("agg", "max"), ("by", by), ("start", "5m")],
    ));
    if status != 200 {
        return Vec::new();
    }
    v["series"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let last = s["points"].as_array()?.last()?[1].as_f64()?;
            Some((s["labels"].clone(), last))
        })
        .collect()
}

fn kinds(c: &Collector) -> Vec<(String, String)> {
    let (_, names) = get_json(&format!("{}/api/v1/metrics/names", c.api_base()));
    names["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_string(),
                m["kind"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn node_exporter_and_a_silent_target_are_scraped_into_the_collector() {
    let tmp = tempfile::tempdir().unwrap();
    let ne = NodeExporter::start(tmp.path());
    // Accepts connections (the kernel's backlog) but never answers: each scrape times out.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let c = Collector::start(&[]);
    let started = Instant::now();
    let agent = Agent::start(
        tmp.path(),
        &agent_config(tmp.path(), &c, &[&ne.addr, &silent_addr]),
    );
    let context = |what: &str| {
        format!(
            "{what}\nmetric names: {:?}\nagent /metrics:\n{}\nagent output:\n{}\nnode_exporter:\n{}",
            kinds(&c),
            agent.metrics(),
            agent.output(),
            ne.log()
        )
    };

    // `up` for both targets: 1 for node_exporter, 0 for the silent one.
    let mut ups = Vec::new();
    let both = wait_for(
        || {
            ups = last_values(&c, "up", "instance,job,env");
            let of = |addr: &str| {
                ups.iter()
                    .find(|(l, _)| l["instance"] == addr)
                    .map(|(_, v)| *v)
            };
            of(&ne.addr) == Some(1.0) && of(&silent_addr) == Some(0.0)
        },
        ARRIVAL,
    );
    assert!(both, "{}", context(&format!("up: {ups:?}")));
    for (labels, _) in &ups {
        assert_eq!(labels["job"], "node", "{labels}");
        assert_eq!(labels["env"], "e2e", "{labels}");
    }

    // node_cpu_seconds_total: its cpu and mode labels, job, instance and env, and nothing
    // else (no host, agent or service label from the agent's resource).
    let (status, labels) = get_json(&url_with(
        &c.api_base(),
        "/api/v1/metrics/labels",
        &[("name", "node_cpu_seconds_total")],
    ));
    assert_eq!(status, 200, "{}", context(&labels.to_string()));
    assert_eq!(
        labels["labels"],
        serde_json::json!(["cpu", "env", "instance", "job", "mode"]),
        "{labels}"
    );
    let cpu = last_values(&c, "node_cpu_seconds_total", "cpu,mode,job,instance");
    let idle = cpu
        .iter()
        .find(|(l, _)| l["mode"] == "idle" && l["cpu"] == "0")
        .unwrap_or_else(|| panic!("{}", context(&format!("no cpu 0 idle in {cpu:?}"))));
    assert_eq!(idle.0["job"], "node");
    assert_eq!(idle.0["instance"], ne.addr.as_str());
    assert!(idle.1 > 0.0, "{idle:?}");

    // Kinds from # TYPE, the scrape series, and the dropped family.
    let k = kinds(&c);
    let kind = |n: &str| {
        k.iter()
            .find(|(name, _)| name == n)
            .map(|(_, k)| k.as_str())
    };
    assert_eq!(kind("node_cpu_seconds_total"), Some("counter"), "{k:?}");
    assert_eq!(kind("go_gc_duration_seconds"), Some("summary"), "{k:?}");
    assert_eq!(kind("node_load1"), Some("gauge"), "{k:?}");
    for n in [
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
    ] {
        assert_eq!(kind(n), Some("gauge"), "{n}: {k:?}");
    }
    assert!(
        !k.iter().any(|(n, _)| n.starts_with("go_memstats_")),
        "drop = [\"go_memstats_.*\"] was not applied: {k:?}"
    );
    let durations = last_values(&c, "scrape_duration_seconds", "instance");
    assert!(
        durations
            .iter()
            .any(|(l, _)| l["instance"] == ne.addr.as_str())
            && durations
                .iter()
                .any(|(l, _)| l["instance"] == silent_addr.as_str()),
        "{durations:?}"
    );
    let scraped = last_values(&c, "scrape_samples_scraped", "instance");
    let kept = last_values(&c, "scrape_samples_post_metric_relabeling", "instance");
    let of = |v: &[(Value, f64)]| {
        v.iter()
            .find(|(l, _)| l["instance"] == ne.addr.as_str())
            .map(|(_, v)| *v)
            .unwrap_or(0.0)
    };
    assert!(
        of(&scraped) > of(&kept) && of(&kept) > 100.0,
        "scraped {scraped:?}, kept {kept:?}"
    );

    // The agent counts both results, and warns about the silent target, at most once a
    // minute.
    assert!(agent.counter("skein_agent_scrapes_total{job=\"node\",result=\"ok\"}") > 0.0);
    // The collector took every point it was sent (names, labels and values it accepts).
    assert_eq!(
        agent.counter("skein_agent_records_rejected_total{signal=\"metrics\"}"),
        0.0,
        "{}",
        agent.metrics()
    );
    assert!(agent.counter("skein_agent_scrapes_total{job=\"node\",result=\"failed\"}") > 0.0);
    let out = agent.output();
    let warnings = out
        .lines()
        .filter(|l| l.contains("scrape failed") && l.contains(&silent_addr))
        .count();
    let minutes = started.elapsed().as_secs() / 60;
    assert!(
        warnings >= 1 && warnings as u64 <= 1 + minutes,
        "{warnings} warnings in {minutes} min:\n{out}"
    );
    assert!(
        !out.lines()
            .any(|l| l.contains("scrape failed") && l.contains(&ne.addr)),
        "{out}"
    );
    drop(silent);
}

#[test]
fn a_bad_scrape_key_is_refused_naming_file_key_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\ndata_dir = \"{}\"\n[[scrape]]\njob = \"node\"\ntargets = [\"127.0.0.1:9100\"]\ninterval = \"5s\"\ntimeout = \"7s\"\n",
            tmp.path().join("data").display()
        ),
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    common::assert_config_refused(
        &["agent", "--config", config_arg, "--check-config"],
        &config,
        "scrape[0].timeout",
        "7s",
    );
}
