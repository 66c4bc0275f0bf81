//! What `overload` watches while it loads the collector: correlation lookups at a steady rate
//! (latency and status), and the collector's RSS every 100 ms.

use super::load::Shared;
use super::records;
use anyhow::Result;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lookups of one phase: latency of every answer (any status) and counts by status.
pub(super) struct Lookups {
    /// Microseconds from sending to the whole answer read.
    pub latency: Mutex<hdrhistogram::Histogram<u64>>,
    /// "200", "404", "503", "timeout", ...
    pub by_status: Mutex<BTreeMap<String, u64>>,
}

impl Lookups {
    pub fn new() -> Result<Lookups> {
        Ok(Lookups {
            latency: Mutex::new(crate::util::histogram()?),
            by_status: Mutex::new(BTreeMap::new()),
        })
    }

    fn count(&self, what: String) {
        if let Ok(mut m) = self.by_status.lock() {
            *m.entry(what).or_insert(0) += 1;
        }
    }

    /// p50, p90, p99, max in ms, with the counts by status.
    pub fn summary(&self) -> serde_json::Value {
        let mut v = match self.latency.lock() {
            Ok(h) => crate::util::percentiles_ms(&h),
            Err(_) => serde_json::json!({}),
        };
        if let Ok(m) = self.by_status.lock() {
            v["by_status"] = serde_json::to_value(&*m).unwrap_or_default();
        }
        v
    }
}

/// Longest a lookup may take before it counts as a timeout.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

/// `GET {api}/api/v1/traces/{key}` of batches acknowledged at least `age` ago, `rate` a
/// second on a fixed schedule until `stop` is set. Each lookup is its own task, so a slow
/// answer does not delay the next one.
pub(super) async fn lookups(
    api: String,
    shared: Arc<Shared>,
    out: Arc<Lookups>,
    rate: f64,
    age: Duration,
    stop: Arc<AtomicBool>,
) {
    let Ok(client) = reqwest::Client::builder().timeout(LOOKUP_TIMEOUT).build() else {
        return;
    };
    let every = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rng = crate::datagen::Rng::new(5);
    let mut tasks = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let key = {
            let Ok(v) = shared.acked.lock() else { return };
            let old = v.partition_point(|(_, at)| at.elapsed() >= age);
            if old == 0 {
                continue;
            }
            records::batch_key(v[rng.below(old as u64) as usize].0)
        };
        let (client, api, out) = (client.clone(), api.clone(), out.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = client
                .get(format!("{api}/api/v1/traces/{key}"))
                .send()
                .await;
            let status = match r {
                Ok(resp) => {
                    let st = resp.status().as_u16();
                    match resp.bytes().await {
                        Ok(_) => st.to_string(),
                        Err(_) => format!("{st} body cut"),
                    }
                }
                Err(e) if e.is_timeout() => "timeout".to_string(),
                Err(_) => "transport error".to_string(),
            };
            let us = t.elapsed().as_micros() as u64;
            if let Ok(mut h) = out.latency.lock() {
                let _ = h.record(us.max(1));
            }
            out.count(status);
        }));
        tasks.retain(|t| !t.is_finished());
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// The collector's RSS, read from `/proc/PID/status` every 100 ms on a thread of its own.
pub(super) struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<(Instant, Rss)>>>,
}

/// Resident memory of a process, bytes.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Rss {
    /// VmRSS: everything resident.
    pub all: u64,
    /// RssAnon: the heap and stacks, what the process itself allocated. The rest is mostly
    /// files mapped into memory (tantivy's segment files), which the kernel can drop.
    pub anon: u64,
}

/// [`Rss`] of `pid`.
pub(super) fn rss(pid: u32) -> Option<Rss> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<u64> {
        let v: u64 = s
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(v * 1024)
    };
    Some(Rss {
        all: kib("VmRSS:")?,
        anon: kib("RssAnon:").unwrap_or(0),
    })
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut out = Vec::new();
            while !s.load(Ordering::Relaxed) {
                if let Some(r) = rss(pid) {
                    out.push((Instant::now(), r));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            out
        });
        RssSampler {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling; every sample with its time.
    pub fn finish(mut self) -> Vec<(Instant, Rss)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

/// The largest samples (VmRSS and RssAnon, each its own peak) between `from` and `to`.
pub(super) fn peak(samples: &[(Instant, Rss)], from: Instant, to: Instant) -> Rss {
    let within = || samples.iter().filter(|(t, _)| *t >= from && *t <= to);
    Rss {
        all: within().map(|(_, r)| r.all).max().unwrap_or(0),
        anon: within().map(|(_, r)| r.anon).max().unwrap_or(0),
    }
}

/// Busy and total jiffies of the whole machine, from the first line of `/proc/stat`.
pub(super) fn machine_jiffies() -> (u64, u64) {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    // idle and iowait are fields 4 and 5.
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// `some avg10` of `/proc/pressure/cpu`: the share of the last 10 s in which some runnable
/// task waited for a CPU, in percent.
pub(super) fn cpu_pressure() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
    s.lines()
        .find(|l| l.starts_with("some"))?
        .split_whitespace()
        .find_map(|w| w.strip_prefix("avg10="))?
        .parse()
        .ok()
}

/// Sum (seconds) and count of the collector's `skein_query_seconds{route="ROUTE"}`: the time
/// its handler measured, from the handler's start to the answer built.
pub(super) async fn query_seconds(api: &str, route: &str) -> Result<(f64, f64)> {
    let text = reqwest::Client::new()
        .get(format!("{api}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let label = format!("route=\"{route}\"");
    let mut out = (0.0, 0.0);
    for line in text.lines() {
        let (which, rest) = if let Some(r) = line.strip_prefix("skein_query_seconds_sum{") {
            (0, r)
        } else if let Some(r) = line.strip_prefix("skein_query_seconds_count{") {
            (1, r)
        } else {
            continue;
        };
        if !rest.contains(&label) {
            continue;
        }
        let v: f64 = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if which == 0 {
            out.0 = v;
        } else {
            out.1 = v;
        }
    }
    Ok(out)
}

/// Per thread group (name without digits) of `pid`: nanoseconds on a CPU and nanoseconds
/// runnable but waiting for one, from `/proc/PID/task/TID/schedstat`.
pub(super) fn sched_ns(pid: u32) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let (Ok(comm), Ok(st)) = (
            std::fs::read_to_string(e.path().join("comm")),
            std::fs::read_to_string(e.path().join("schedstat")),
        ) else {
            continue;
        };
        let name: String = comm
            .trim()
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect();
        let mut f = st.split_whitespace().map(|x| x.parse::<u64>().unwrap_or(0));
        let (run, wait) = (f.next().unwrap_or(0), f.next().unwrap_or(0));
        let v = out.entry(name).or_insert((0, 0));
        v.0 += run;
        v.1 += wait;
    }
    out
}

/// The collector's `skein_ingest_errors_total` samples (by signal and reason), as
/// `labels -> count`.
pub(super) async fn ingest_errors(api: &str) -> Result<BTreeMap<String, u64>> {
    let text = reqwest::Client::new()
        .get(format!("{api}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("skein_ingest_errors_total{") else {
            continue;
        };
        let Some((labels, v)) = rest.rsplit_once("} ") else {
            continue;
        };
        let v: f64 = v.trim().parse().unwrap_or(0.0);
        out.insert(labels.to_string(), v as u64);
    }
    Ok(out)
}
