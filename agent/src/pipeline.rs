//! The file path: a tailer thread reads lines ([`crate::tail::Tailer`]) into a bounded
//! channel; a batcher thread parses them ([`crate::parse::Parser`]), groups them into OTLP
//! export requests by count, bytes and time, compresses them and appends them to the disk
//! buffer. When the buffer is full under `when_full = "block"` the batcher waits, the channel
//! fills, and the tailer stops reading: back-pressure all the way to the files, whose
//! checkpoints simply wait.

use crate::buffer::{Buffer, BufferError, Signal, compress};
use crate::config::{AgentConfig, SourceConfig, WhenFull};
use crate::parse::Parser;
use crate::receiver::string_kv;
use crate::tail::{FileId, TailLine, Tailer};
use crate::telemetry::Telemetry;
use prost::Message;
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use skein_model::proto::common::v1::InstrumentationScope;
use skein_model::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use skein_model::proto::resource::v1::Resource;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Records waiting between the tailer and the batcher. With `max_line_bytes` it bounds the
/// memory of this queue (`CHANNEL_RECORDS` × `max_line_bytes` at worst, a few MiB usually).
pub const CHANNEL_RECORDS: usize = 1024;
/// Bytes the tailer reads per round before it looks at the stop flag and timers again.
pub const READ_BUDGET: usize = 4 * 1024 * 1024;

/// Paths last seen for each file, for the checkpoint file (readability only).
pub type PathMap = Arc<Mutex<HashMap<FileId, Arc<str>>>>;

/// What the heartbeat reports of each source: (name, service, files).
pub type SourceFiles = Arc<Mutex<Vec<(String, String, u64)>>>;

/// The two threads of the file path.
pub struct FilePath {
    tailer: JoinHandle<()>,
    batcher: JoinHandle<()>,
}

/// Everything the file path needs.
pub struct FileParts {
    /// The configuration.
    pub cfg: AgentConfig,
    /// Resume positions.
    pub start: HashMap<FileId, u64>,
    /// The buffer.
    pub buffer: Arc<Buffer>,
    /// Counters.
    pub telemetry: Telemetry,
    /// Resource attributes of the host (host.name, skein.agent.id).
    pub host_resource: Vec<(String, String)>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// Paths by file, filled by the batcher.
    pub paths: PathMap,
    /// Files per source, filled by the tailer.
    pub source_files: SourceFiles,
}

impl FilePath {
    /// Starts both threads. Errors name the source whose configuration is wrong.
    pub fn start(mut p: FileParts) -> Result<FilePath, String> {
        let parsers = p
            .cfg
            .sources
            .iter()
            .map(|s| {
                Parser::new(s.format, s.regex.as_deref())
                    .map_err(|e| format!("source {}: {e}", s.name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut tailer = Tailer::new(
            p.cfg.sources.clone(),
            std::mem::take(&mut p.start),
            p.telemetry.clone(),
        )?;
        let (tx, rx) = sync_channel::<TailLine>(CHANNEL_RECORDS);
        let stop = p.stop.clone();
        let source_files = p.source_files.clone();
        let sources = p.cfg.sources.clone();
        let tailer = std::thread::Builder::new()
            .name("skein-tail".into())
            .spawn(move || tail_loop(&mut tailer, tx, &stop, &sources, &source_files))
            .map_err(|e| format!("cannot start the tailer thread: {e}"))?;
        let batcher = Batcher::new(&p, parsers);
        let batcher = std::thread::Builder::new()
            .name("skein-batch".into())
            .spawn(move || batcher.run(rx))
            .map_err(|e| format!("cannot start the batcher thread: {e}"))?;
        Ok(FilePath { tailer, batcher })
    }

    /// Waits for both threads after the stop flag is set: the tailer stops, the batcher
    /// buffers what it holds.
    pub fn join(self) {
        let _ = self.tailer.join();
        let _ = self.batcher.join();
    }
}

fn tail_loop(
    tailer: &mut Tailer,
    tx: SyncSender<TailLine>,
    stop: &AtomicBool,
    sources: &[SourceConfig],
    source_files: &SourceFiles,
) {
    let mut last_report = Instant::now() - Duration::from_secs(10);
    while !stop.load(Ordering::Acquire) {
        let mut closed = false;
        let n = tailer.poll(READ_BUDGET, &mut |line| {
            // A full channel blocks here: reading stops until the batcher catches up.
            if tx.send(line).is_err() {
                closed = true;
            }
        });
        if closed {
            return;
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let mut counts = vec![0u64; sources.len()];
            for (name, _, _, _) in tailer.files() {
                if let Some(i) = sources.iter().position(|s| s.name == name) {
                    counts[i] += 1;
                }
            }
            if let Ok(mut g) = source_files.lock() {
                *g = sources
                    .iter()
                    .zip(counts)
                    .map(|(s, c)| (s.name.clone(), s.service_name().to_string(), c))
                    .collect();
            }
        }
        if n == 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Groups parsed records into requests.
struct Batcher {
    parsers: Vec<Parser>,
    resources: Vec<Resource>,
    names: Vec<String>,
    buffer: Arc<Buffer>,
    telemetry: Telemetry,
    stop: Arc<AtomicBool>,
    paths: PathMap,
    cfg: AgentConfig,
    /// Records per source in the batch being built.
    pending: Vec<Vec<LogRecord>>,
    positions: HashMap<FileId, (u64, Arc<str>)>,
    records: usize,
    bytes: usize,
    since: Option<Instant>,
}

impl Batcher {
    fn new(p: &FileParts, parsers: Vec<Parser>) -> Batcher {
        let resources = p
            .cfg
            .sources
            .iter()
            .map(|s| {
                let mut attrs = vec![string_kv("service.name", s.service_name())];
                for (k, v) in &p.host_resource {
                    attrs.push(string_kv(k, v));
                }
                for (k, v) in &s.labels {
                    attrs.push(string_kv(k, v));
                }
                Resource {
                    attributes: attrs,
                    ..Default::default()
                }
            })
            .collect();
        Batcher {
            parsers,
            resources,
            names: p.cfg.sources.iter().map(|s| s.name.clone()).collect(),
            buffer: p.buffer.clone(),
            telemetry: p.telemetry.clone(),
            stop: p.stop.clone(),
            paths: p.paths.clone(),
            pending: vec![Vec::new(); p.cfg.sources.len()],
            cfg: p.cfg.clone(),
            positions: HashMap::new(),
            records: 0,
            bytes: 0,
            since: None,
        }
    }

    fn run(mut self, rx: Receiver<TailLine>) {
        let max_wait = self.cfg.batch.max_wait.0;
        loop {
            let timeout = match self.since {
                Some(t) => max_wait.saturating_sub(t.elapsed()),
                None => Duration::from_millis(500),
            };
            match rx.recv_timeout(timeout) {
                Ok(line) => {
                    self.add(line);
                    if self.records >= self.cfg.batch.max_records
                        || self.bytes >= self.cfg.batch.max_bytes
                    {
                        self.flush();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.since.is_some_and(|t| t.elapsed() >= max_wait) {
                        self.flush();
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush();
                    return;
                }
            }
        }
    }

    fn add(&mut self, line: TailLine) {
        let Some(parser) = self.parsers.get(line.source) else {
            return;
        };
        let now = skein_model::time::now_unix_nano();
        let parsed = parser.parse(&line.text, now);
        if !parsed.parsed {
            self.telemetry.parse_failure(&self.names[line.source]);
        }
        let mut rec = parsed.record;
        rec.attributes.push(string_kv("log.file.path", &line.path));
        if line.truncated {
            rec.attributes.push(crate::parse::lift::key_value(
                "skein.truncated".into(),
                skein_model::proto::common::v1::AnyValue {
                    value: Some(skein_model::proto::common::v1::any_value::Value::BoolValue(
                        true,
                    )),
                },
            ));
        }
        self.bytes += line.text.len() + line.path.len() + 64;
        self.records += 1;
        self.since.get_or_insert_with(Instant::now);
        let e = self
            .positions
            .entry(line.file)
            .or_insert((line.end_offset, line.path.clone()));
        if line.end_offset >= e.0 {
            *e = (line.end_offset, line.path);
        }
        self.pending[line.source].push(rec);
    }

    fn flush(&mut self) {
        if self.records == 0 {
            self.since = None;
            return;
        }
        let mut req = ExportLogsServiceRequest::default();
        for (i, recs) in self.pending.iter_mut().enumerate() {
            if recs.is_empty() {
                continue;
            }
            req.resource_logs.push(ResourceLogs {
                resource: Some(self.resources[i].clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "skein-agent".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    log_records: std::mem::take(recs),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            });
        }
        let body = req.encode_to_vec();
        drop(req);
        let (enc, bytes) = compress(&body, self.cfg.collector.compression);
        drop(body);
        let positions: Vec<(FileId, u64)> = self
            .positions
            .iter()
            .map(|(id, (off, _))| (*id, *off))
            .collect();
        let records = u32::try_from(self.records).unwrap_or(u32::MAX);
        let drop_oldest = self.cfg.buffer.when_full == WhenFull::DropOldest;
        let mut warned = false;
        loop {
            match self
                .buffer
                .append(Signal::Logs, records, &positions, enc, &bytes, drop_oldest)
            {
                Ok(dropped) => {
                    if dropped > 0 {
                        self.telemetry.dropped("buffer_full", dropped);
                    }
                    break;
                }
                Err(BufferError::Full) => {
                    if !warned {
                        tracing::warn!(
                            "the disk buffer is full; file reading waits for the collector (buffer.when_full = block)"
                        );
                        warned = true;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot write to the disk buffer; retrying");
                }
            }
            // On stop, give up waiting: the lines were not acknowledged, so their files
            // resume before them at the next start.
            if self.stop.load(Ordering::Acquire) {
                tracing::info!(
                    records,
                    "stopping with a full buffer: these lines are read again at the next start"
                );
                self.reset();
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.telemetry.records_buffered("logs", u64::from(records));
        if let Ok(mut g) = self.paths.lock() {
            for (id, (_, path)) in &self.positions {
                g.insert(*id, path.clone());
            }
        }
        self.reset();
    }

    fn reset(&mut self) {
        for p in &mut self.pending {
            p.clear();
        }
        self.positions.clear();
        self.records = 0;
        self.bytes = 0;
        self.since = None;
    }
}
