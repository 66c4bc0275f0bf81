//! Prometheus on the same samples: an OpenMetrics file, `promtool` blocks, a `prometheus`
//! process on them, and each query timed to the last byte of its answer.

use super::data::{Data, QueryDef, enc, window_ns};
use super::measure::{Answer, Timed, count, get, http_client, time_runs};
use super::{MetricsQueryArgs, PROM_NAME};
use crate::agent_util::{proc_stat, wait_quiet};
use crate::util;
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when dropped.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The first line a command prints for `--version`.
fn version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            s.lines().next().unwrap_or_default().to_string()
        })
        .unwrap_or_default()
}

/// A value of a Prometheus `/metrics` line without labels (0 when absent).
fn prom_metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A Prometheus `query_range` answer: groups by `host` (empty without), points by ms.
fn prom_answer(body: &[u8]) -> Result<Answer> {
    let v: serde_json::Value = serde_json::from_slice(body).context("read the answer")?;
    if v["status"] != "success" {
        bail!("prometheus answered {v}");
    }
    let mut out = Answer::new();
    let Some(result) = v["data"]["result"].as_array() else {
        bail!("no data.result in {v}");
    };
    for s in result {
        let key = s["metric"]["host"].as_str().unwrap_or_default().to_string();
        let pts = out.entry(key).or_default();
        for p in s["values"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let ts = p[0].as_f64().unwrap_or(0.0);
            let val: f64 = p[1].as_str().unwrap_or("NaN").parse().unwrap_or(f64::NAN);
            pts.insert((ts * 1000.0).round() as i64, val);
        }
    }
    Ok(out)
}

/// Prometheus on the same samples.
pub(super) struct Peer {
    pub(super) version: String,
    pub(super) write_secs: f64,
    pub(super) file_bytes: u64,
    pub(super) import_secs: f64,
    pub(super) blocks_imported: u64,
    pub(super) blocks_timed: u64,
    pub(super) block_bytes: u64,
    pub(super) hwm: u64,
    pub(super) timed: Vec<(Timed, Option<Timed>)>,
}

/// Writes the samples as OpenMetrics text, series after series.
fn write_openmetrics(d: &Data, path: &Path) -> Result<u64> {
    let f = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    writeln!(w, "# TYPE {PROM_NAME} gauge")?;
    for (i, vals) in d.values.iter().enumerate() {
        let labels = format!("{{host=\"{}\",cpu=\"{}\"}}", d.host(i), d.cpu(i));
        for (k, v) in vals.iter().enumerate() {
            writeln!(w, "{PROM_NAME}{labels} {v} {}", d.ts(k) / 1000)?;
        }
    }
    writeln!(w, "# EOF")?;
    w.flush().context("write the OpenMetrics file")?;
    drop(w);
    Ok(std::fs::metadata(path)?.len())
}

/// Block folders (those with a `meta.json`) under a Prometheus data dir: (count, bytes).
fn prom_blocks(dir: &Path) -> (u64, u64) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    rd.filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("meta.json").exists())
        .fold((0, 0), |(n, b), p| (n + 1, b + util::dir_bytes(&p)))
}

pub(super) fn peer(a: &MetricsQueryArgs, d: &Data, defs: &[QueryDef]) -> Result<Peer> {
    let dir = util::temp_dir("skein-bench-metrics-query-prom-")?;
    let file = dir.path().join("samples.om");
    let tsdb = dir.path().join("prom");
    let t = Instant::now();
    let file_bytes = write_openmetrics(d, &file)?;
    let write_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let out = Command::new(&a.promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(&tsdb)
        .output()
        .with_context(|| {
            format!(
                "run {} (apt-get install -y prometheus)",
                a.promtool.display()
            )
        })?;
    let import_secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "promtool failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_file(&file).context("remove the OpenMetrics file")?;
    let (blocks_imported, _) = prom_blocks(&tsdb);
    println!(
        "prometheus: OpenMetrics file of {:.1} MB written in {:.1} s; promtool made {blocks_imported} blocks in {:.1} s",
        util::mb(file_bytes),
        write_secs,
        import_secs
    );
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1m\nscrape_configs: []\n")
        .context("write prometheus.yml")?;
    // Prometheus needs a port number: take a free one and give it back.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("find a free port")?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("prometheus.log")).context("create log")?;
    let log2 = log.try_clone().context("clone log")?;
    let prom = Kid(Command::new(&a.prometheus)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--storage.tsdb.retention.time=30d")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .spawn()
        .with_context(|| format!("start {}", a.prometheus.display()))?);
    let pid = prom.0.id();
    let client = http_client()?;
    let base = format!("http://{addr}");
    let t = Instant::now();
    loop {
        if get(&client, &format!("{base}/-/ready")).is_ok() {
            break;
        }
        if t.elapsed() > Duration::from_secs(120) {
            let text =
                std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
            bail!("prometheus was not ready within 120 s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if a.prom_compaction_wait > 0 {
        // Prometheus compacts the 2 h blocks (to 6 h and 18 h) about a minute after start-up;
        // wait until the number of blocks went down and then stayed the same for 15 s.
        let t = Instant::now();
        let (mut last, mut since) = (u64::MAX, Instant::now());
        let first = prom_metric(
            &String::from_utf8_lossy(&get(&client, &format!("{base}/metrics"))?),
            "prometheus_tsdb_blocks_loaded",
        ) as u64;
        while t.elapsed() < Duration::from_secs(a.prom_compaction_wait) {
            let m = String::from_utf8_lossy(&get(&client, &format!("{base}/metrics"))?).to_string();
            let n = prom_metric(&m, "prometheus_tsdb_blocks_loaded") as u64;
            if n != last {
                (last, since) = (n, Instant::now());
            }
            if n < first && since.elapsed() >= Duration::from_secs(15) {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        println!(
            "prometheus: {first} blocks loaded at start, {last} after waiting {:.0} s for its compaction",
            t.elapsed().as_secs_f64()
        );
    }
    let (blocks_timed, block_bytes) = prom_blocks(&tsdb);
    wait_quiet(a.max_load, Duration::from_secs(a.load_wait_secs));
    let (start, end) = window_ns(d, a);
    let (start_s, end_s) = (start / 1_000_000_000, end / 1_000_000_000);
    let step = a.step_secs.max(1);
    let time_prom = |label: &str, key: &str, q: &str| -> Result<Timed> {
        let url = format!(
            "{base}/api/v1/query_range?query={}&start={start_s}&end={end_s}&step={step}",
            enc(q)
        );
        let first = get(&client, &url)?;
        let answer = prom_answer(&first)?;
        let (groups, points) = count(&answer);
        let hist = time_runs(a.warmup, a.runs, || get(&client, &url).map(|_| ()))?;
        let t = Timed {
            hist,
            groups,
            points,
            answer,
            bytes: first.len(),
        };
        println!(
            "  {label:<17} {key:<12} {}  ({groups} series, {points} points, {} KB of JSON)  {q}",
            t.line(),
            first.len() / 1000
        );
        Ok(t)
    };
    let mut timed = Vec::new();
    for def in defs {
        let plain = time_prom("prometheus", def.key, &def.prom)?;
        let same = match (&def.prom_same, a.prom_same_samples) {
            (Some(q), true) => Some(time_prom("prometheus same", def.key, q)?),
            _ => None,
        };
        timed.push((plain, same));
    }
    let hwm = proc_stat(pid)?.hwm;
    drop(prom);
    Ok(Peer {
        version: version(&a.prometheus),
        write_secs,
        file_bytes,
        import_secs,
        blocks_imported,
        blocks_timed,
        block_bytes,
        hwm,
        timed,
    })
}
