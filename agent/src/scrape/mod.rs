//! Scraping Prometheus text format and OpenMetrics endpoints (`[[scrape]]` jobs), so
//! node_exporter and every app exporter work unchanged.
//!
//! One task per target on the agent's runtime. Each scrapes on a fixed schedule: every
//! `interval` from a start offset derived from the job and URL (targets are spread over the
//! interval, and each keeps its own steady rhythm, without random jitter, as in Prometheus);
//! a tick missed while a scrape ran is skipped. A scrape (`fetch.rs`) is one GET with
//! Prometheus' `Accept` header and gzip accepted, bounded by `timeout`, its body by
//! `body_limit` (as sent and once gunzipped); the answer is parsed (`parse.rs`) with the
//! job's `keep`/`drop` name filters and `sample_limit`, converted to OTLP (`convert.rs`: names
//! and labels as exposed plus `job`, `instance` and the job's labels), and written to the
//! disk buffer like host metrics, so it ships the same way (OTLP to the collector, or the
//! `[stream]` in cluster mode) and a collector outage loses nothing. When the buffer is full,
//! a scrape's batches are dropped and counted (`skein_agent_dropped_total{reason=
//! "buffer_full"}`), as host metrics are: a periodic sampler does not wait.
//!
//! Every scrape also writes `up` (1 or 0), `scrape_duration_seconds`,
//! `scrape_samples_scraped` and `scrape_samples_post_metric_relabeling`, with the target's
//! labels. A failed scrape (no answer, a status other than 2xx, too large, unreadable, over
//! `sample_limit`) stores none of the answer's samples, writes `up` = 0 and logs a warning
//! naming the target and the reason, at most once per [`WARN_EVERY`] per target.
//!
//! Bounds: per target, one answer of at most `body_limit` bytes in memory while it is read;
//! at most [`MAX_PROCESSING`] answers at once are gunzipped (again at most `body_limit`),
//! parsed (at most `sample_limit` samples kept) and buffered, on blocking threads; requests
//! to the buffer are cut at `batch.max_bytes`.

mod convert;
mod fetch;
mod parse;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests_http;

pub use convert::{Converted, Point, Report, SCOPE_NAME, convert, pack, report_points};
pub use fetch::{ACCEPT, Fetched};
pub use parse::{Format, MetricType, ParseError, Parsed, Sample, parse};

use crate::buffer::{self, Buffer, BufferError, Signal};
use crate::config::{AgentConfig, Compression, ScrapeConfig, WhenFull};
use crate::telemetry::Telemetry;
use prost::Message;
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

/// Most answers converted at once over every target (each holds up to `body_limit` bytes
/// unpacked and up to `sample_limit` samples).
pub const MAX_PROCESSING: usize = 4;

/// Least time between two warnings about one failing target.
pub const WARN_EVERY: Duration = Duration::from_secs(60);

/// A job's settings, shared by its targets.
#[derive(Debug)]
pub struct Job {
    /// The job's name.
    pub name: String,
    /// The job's extra labels.
    pub labels: Vec<(String, String)>,
    keep: Vec<regex::Regex>,
    drop: Vec<regex::Regex>,
    /// Most samples kept from one answer.
    pub sample_limit: usize,
    /// Most bytes of one answer.
    pub body_limit: usize,
    /// Time between scrapes.
    pub interval: Duration,
    /// Longest one scrape may take.
    pub timeout: Duration,
}

impl Job {
    /// The job of a `[[scrape]]` table (`i`: its place, for errors).
    pub fn new(cfg: &ScrapeConfig, i: usize) -> Result<Job, String> {
        let (keep, drop) = cfg.name_filters(&format!("scrape[{i}]"))?;
        Ok(Job {
            name: cfg.job.clone(),
            labels: cfg
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            keep,
            drop,
            sample_limit: cfg.sample_limit,
            body_limit: cfg.body_limit,
            interval: cfg.interval.0,
            timeout: cfg.timeout(),
        })
    }

    /// Whether a sample of this name is kept (`keep`, then `drop`).
    pub fn keeps(&self, name: &str) -> bool {
        (self.keep.is_empty() || self.keep.iter().any(|r| r.is_match(name)))
            && !self.drop.iter().any(|r| r.is_match(name))
    }
}

/// One target of a job.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its job.
    pub job: Arc<Job>,
    /// What is fetched.
    pub url: reqwest::Url,
    /// The labels every sample and report series gets: `job`, `instance`, the job's labels.
    pub labels: Vec<(String, String)>,
}

impl Target {
    /// A target of `job` at `url`, labelled `instance`.
    pub fn new(job: Arc<Job>, url: reqwest::Url, instance: &str) -> Target {
        let mut labels = vec![
            ("job".to_string(), job.name.clone()),
            ("instance".to_string(), instance.to_string()),
        ];
        labels.extend(job.labels.iter().cloned());
        Target { job, url, labels }
    }
}

/// What one scrape gives.
#[derive(Debug)]
pub struct Outcome {
    /// Export requests to buffer (the samples, then the report series).
    pub requests: Vec<ExportMetricsServiceRequest>,
    /// The report.
    pub report: Report,
    /// Why the scrape failed.
    pub error: Option<String>,
}

/// Turns an answer (or the reason there is none) into what is buffered. `started`: when the
/// request was sent; `now`: the same as ns since the epoch (the samples' time). CPU work:
/// blocking threads only.
pub fn process(
    target: &Target,
    fetched: Result<Fetched, String>,
    started: Instant,
    now: u64,
    max_bytes: usize,
) -> Outcome {
    let job = &target.job;
    // On failure: the reason, and the samples scraped and kept (known past sample_limit).
    let parsed = fetched.map_err(|e| (e, 0, 0)).and_then(|f| {
        let body = fetch::unpack(&f, job.body_limit).map_err(|e| (e, 0, 0))?;
        let format = Format::from_content_type(f.content_type.as_deref());
        parse(&body, format, &|n| job.keeps(n), job.sample_limit).map_err(|e| match e {
            ParseError::SampleLimit { scraped, kept, .. } => (e.to_string(), scraped, kept),
            e => (e.to_string(), 0, 0),
        })
    });
    let duration_s = started.elapsed().as_secs_f64();
    let (mut points, report, error) = match parsed {
        Ok(p) => {
            let report = Report {
                up: true,
                duration_s,
                scraped: p.scraped,
                kept: p.samples.len(),
            };
            let c = convert(p.samples, &target.labels, now);
            (c.points, report, None)
        }
        Err((e, scraped, kept)) => {
            let report = Report {
                up: false,
                duration_s,
                scraped,
                kept,
            };
            (Vec::new(), report, Some(e))
        }
    };
    points.extend(report_points(&report, &target.labels, now));
    Outcome {
        requests: pack(points, max_bytes),
        report,
        error,
    }
}

/// Where scraped batches go.
struct Sink {
    buffer: Arc<Buffer>,
    telemetry: Telemetry,
    compression: Compression,
    drop_oldest: bool,
    max_bytes: usize,
    permits: Arc<Semaphore>,
}

impl Sink {
    /// Buffers the requests of one scrape, as host metrics are. Blocking threads only.
    fn buffer(&self, requests: Vec<ExportMetricsServiceRequest>) {
        for req in requests {
            let points = skein_model::otlp::metric_points(&req);
            let (enc, body) = buffer::compress(&req.encode_to_vec(), self.compression);
            match self.buffer.append(
                Signal::Metrics,
                u32::try_from(points).unwrap_or(u32::MAX),
                &[],
                enc,
                &body,
                self.drop_oldest,
            ) {
                Ok(dropped) => {
                    self.telemetry.records_buffered("metrics", points);
                    if dropped > 0 {
                        self.telemetry.dropped("buffer_full", dropped);
                    }
                }
                Err(BufferError::Full) => self.telemetry.dropped("buffer_full", points),
                Err(e) => tracing::error!(error = %e, "cannot buffer scraped metrics"),
            }
        }
    }
}

/// Starts one task per target of every `[[scrape]]` job; they end when `stop` turns true.
pub fn start(
    cfg: &AgentConfig,
    buffer: Arc<Buffer>,
    telemetry: Telemetry,
    stop: watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, String> {
    let sink = Arc::new(Sink {
        buffer,
        telemetry,
        compression: cfg.collector.compression,
        drop_oldest: cfg.buffer.when_full == WhenFull::DropOldest,
        max_bytes: cfg.batch.max_bytes,
        permits: Arc::new(Semaphore::new(MAX_PROCESSING)),
    });
    let mut tasks = Vec::new();
    for (i, sc) in cfg.scrapes.iter().enumerate() {
        let key = format!("scrape[{i}]");
        let job = Arc::new(Job::new(sc, i)?);
        let mut client = reqwest::Client::builder()
            .connect_timeout(job.timeout)
            .no_proxy()
            .pool_max_idle_per_host(1)
            .user_agent(concat!("skein-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = sc.tls_config(&key)? {
            client = client.tls_backend_preconfigured(tls);
        }
        let client = client
            .build()
            .map_err(|e| format!("{key}: cannot build the HTTP client: {e}"))?;
        for t in sc.resolve_targets(&key)? {
            let target = Target::new(job.clone(), t.url, &t.instance);
            tracing::info!(job = %job.name, target = %target.url, interval = ?job.interval, "scraping");
            tasks.push(tokio::spawn(run_target(
                target,
                client.clone(),
                sink.clone(),
                stop.clone(),
            )));
        }
    }
    Ok(tasks)
}

/// Where in its interval a target is scraped: the same for the same job and URL.
fn offset(t: &Target) -> Duration {
    let mut h = DefaultHasher::new();
    t.job.name.hash(&mut h);
    t.url.as_str().hash(&mut h);
    let ms = u64::try_from(t.job.interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(h.finish() % ms)
}

/// Warnings about a failing target, at most one per [`WARN_EVERY`].
#[derive(Default)]
struct Warnings {
    last: Option<Instant>,
    failing: bool,
}

impl Warnings {
    fn failed(&mut self, t: &Target, reason: &str) {
        if self.last.is_none_or(|l| l.elapsed() >= WARN_EVERY) {
            tracing::warn!(
                job = %t.job.name,
                target = %t.url,
                reason,
                "scrape failed (up = 0); the next warning about this target comes a minute from now at the soonest"
            );
            self.last = Some(Instant::now());
        }
        self.failing = true;
    }

    fn succeeded(&mut self, t: &Target) {
        if std::mem::take(&mut self.failing) {
            tracing::info!(job = %t.job.name, target = %t.url, "scrape target answers again (up = 1)");
        }
    }
}

async fn run_target(
    t: Target,
    client: reqwest::Client,
    sink: Arc<Sink>,
    mut stop: watch::Receiver<bool>,
) {
    let job = t.job.clone();
    let start = tokio::time::Instant::now() + offset(&t);
    let mut tick = tokio::time::interval_at(start, job.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut warnings = Warnings::default();
    let t = Arc::new(t);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|v| *v) => return,
        }
        let started = Instant::now();
        let now = skein_model::time::now_unix_nano();
        let get = fetch::fetch(&client, &t.url, job.timeout, job.body_limit);
        let fetched = tokio::select! {
            r = tokio::time::timeout(job.timeout, get) => r.unwrap_or_else(|_| {
                Err(format!("no whole answer within the timeout ({:?})", job.timeout))
            }),
            _ = stop.wait_for(|v| *v) => return,
        };
        let Ok(permit) = sink.permits.clone().acquire_owned().await else {
            return;
        };
        let (tt, s) = (t.clone(), sink.clone());
        let done = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let o = process(&tt, fetched, started, now, s.max_bytes);
            s.buffer(o.requests);
            o.error
        })
        .await;
        let Ok(error) = done else {
            tracing::error!(job = %job.name, target = %t.url, "scrape task failed; this target is no longer scraped");
            return;
        };
        sink.telemetry.scrape(&job.name, error.is_none());
        match error {
            Some(e) => warnings.failed(&t, &e),
            None => warnings.succeeded(&t),
        }
    }
}
