//! Prometheus as the peer of the query benchmarks (`metrics-query`, `promql-query`): the
//! samples as an OpenMetrics file ([`OmWriter`]), `promtool tsdb create-blocks-from
//! openmetrics`, a `prometheus` process on those blocks, ready and (optionally) after its
//! own compaction of them ([`PromPeer`]).

use crate::agent_util::proc_stat;
use crate::metrics_query::measure::get;
use crate::util;
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
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
pub fn version(bin: &Path) -> String {
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

/// Block folders (those with a `meta.json`) under a Prometheus data dir: (count, bytes).
pub fn prom_blocks(dir: &Path) -> (u64, u64) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    rd.filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("meta.json").exists())
        .fold((0, 0), |(n, b), p| (n + 1, b + util::dir_bytes(&p)))
}

/// Writes samples as OpenMetrics text, one series after the other (what `promtool tsdb
/// create-blocks-from openmetrics` reads).
pub struct OmWriter {
    w: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
    line: String,
}

impl OmWriter {
    /// A new file at `path`.
    pub fn create(path: &Path) -> Result<OmWriter> {
        let f =
            std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
        Ok(OmWriter {
            w: std::io::BufWriter::with_capacity(1 << 20, f),
            path: path.to_path_buf(),
            line: String::new(),
        })
    }

    /// Starts a metric family: `# TYPE name kind` (`gauge`, `counter`, `histogram`).
    pub fn family(&mut self, name: &str, kind: &str) -> Result<()> {
        writeln!(self.w, "# TYPE {name} {kind}")?;
        Ok(())
    }

    /// One series: `name{labels} value seconds` for each `(ms, value)`, labels in the order
    /// given. Times that are whole seconds are written without a fraction.
    pub fn series(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        samples: impl IntoIterator<Item = (i64, f64)>,
    ) -> Result<()> {
        use std::fmt::Write as _;
        let mut head = name.to_string();
        if !labels.is_empty() {
            head.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    head.push(',');
                }
                let _ = write!(head, "{k}=\"{v}\"");
            }
            head.push('}');
        }
        for (ms, v) in samples {
            self.line.clear();
            let _ = if ms % 1000 == 0 {
                writeln!(self.line, "{head} {v} {}", ms / 1000)
            } else {
                let sign = if ms < 0 { "-" } else { "" };
                let abs = ms.unsigned_abs();
                writeln!(
                    self.line,
                    "{head} {v} {sign}{}.{:03}",
                    abs / 1000,
                    abs % 1000
                )
            };
            self.w.write_all(self.line.as_bytes())?;
        }
        Ok(())
    }

    /// Ends the file (`# EOF`); its size in bytes.
    pub fn finish(mut self) -> Result<u64> {
        writeln!(self.w, "# EOF")?;
        self.w.flush().context("write the OpenMetrics file")?;
        drop(self.w);
        Ok(std::fs::metadata(&self.path)?.len())
    }
}

/// A `prometheus` process on blocks `promtool` made from an OpenMetrics file, in a temporary
/// folder deleted with it.
pub struct PromPeer {
    kid: Kid,
    /// Its process id.
    pub pid: u32,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// `prometheus --version`, first line.
    pub version: String,
    /// Size of the OpenMetrics file.
    pub file_bytes: u64,
    /// Time to write it.
    pub write_secs: f64,
    /// Time `promtool` took to make blocks of it.
    pub import_secs: f64,
    /// Blocks `promtool` made.
    pub blocks_imported: u64,
    tsdb: PathBuf,
    /// Kept until the process is gone (fields drop in order).
    _dir: tempfile::TempDir,
}

impl PromPeer {
    /// Writes the OpenMetrics file with `write` (which returns its size), imports it with
    /// `promtool`, deletes it, starts `prometheus` on the blocks and waits (up to 120 s) until
    /// it is ready.
    pub fn start(
        prometheus: &Path,
        promtool: &Path,
        prefix: &str,
        client: &reqwest::blocking::Client,
        write: impl FnOnce(&Path) -> Result<u64>,
    ) -> Result<PromPeer> {
        let dir = util::temp_dir(prefix)?;
        let file = dir.path().join("samples.om");
        let tsdb = dir.path().join("prom");
        let t = Instant::now();
        let file_bytes = write(&file)?;
        let write_secs = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let out = Command::new(promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&file)
            .arg(&tsdb)
            .output()
            .with_context(|| {
                format!("run {} (apt-get install -y prometheus)", promtool.display())
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
        let kid = Kid(Command::new(prometheus)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--storage.tsdb.retention.time=30d")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .with_context(|| format!("start {}", prometheus.display()))?);
        let pid = kid.0.id();
        let base = format!("http://{addr}");
        let t = Instant::now();
        loop {
            if get(client, &format!("{base}/-/ready")).is_ok() {
                break;
            }
            if t.elapsed() > Duration::from_secs(120) {
                let text =
                    std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
                bail!("prometheus was not ready within 120 s:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(PromPeer {
            kid,
            pid,
            base,
            version: version(prometheus),
            file_bytes,
            write_secs,
            import_secs,
            blocks_imported,
            tsdb,
            _dir: dir,
        })
    }

    /// Waits (at most `max_secs`) for Prometheus to compact the imported 2 h blocks (to 6 h
    /// and 18 h; it starts about a minute after start-up): until the number of blocks went
    /// down and then stayed the same for 15 s.
    pub fn wait_compaction(&self, client: &reqwest::blocking::Client, max_secs: u64) -> Result<()> {
        let base = &self.base;
        let t = Instant::now();
        let (mut last, mut since) = (u64::MAX, Instant::now());
        let first = prom_metric(
            &String::from_utf8_lossy(&get(client, &format!("{base}/metrics"))?),
            "prometheus_tsdb_blocks_loaded",
        ) as u64;
        while t.elapsed() < Duration::from_secs(max_secs) {
            let m = String::from_utf8_lossy(&get(client, &format!("{base}/metrics"))?).to_string();
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
        Ok(())
    }

    /// Blocks in its data dir now: (count, bytes).
    pub fn blocks(&self) -> (u64, u64) {
        prom_blocks(&self.tsdb)
    }

    /// Its peak RSS (VmHWM) so far, bytes.
    pub fn hwm(&self) -> Result<u64> {
        Ok(proc_stat(self.pid)?.hwm)
    }

    /// Stops it (also done when dropped).
    pub fn stop(self) {
        drop(self.kid);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.om");
        let mut w = OmWriter::create(&p).unwrap();
        w.family("m", "counter").unwrap();
        w.series(
            "m_total",
            &[("x", "a"), ("i", "1")],
            [(10_000, 1.5), (12_250, 2.0)],
        )
        .unwrap();
        w.series("up", &[], [(-1_500, 1.0)]).unwrap();
        let n = w.finish().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            "# TYPE m counter\nm_total{x=\"a\",i=\"1\"} 1.5 10\nm_total{x=\"a\",i=\"1\"} 2 12.250\nup 1 -1.500\n# EOF\n"
        );
        assert_eq!(n, text.len() as u64);
    }
}
