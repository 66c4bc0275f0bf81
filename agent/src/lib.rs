//! skein-agent: the per-host shipper. It tails log files ([`tail`]), parses their lines
//! ([`parse`]), receives OTLP from local apps ([`receiver`]), samples host and process
//! resources ([`hostmetrics`]), scrapes Prometheus and OpenMetrics endpoints ([`scrape`]),
//! writes everything to a bounded disk buffer ([`buffer`]) and ships it to the collector over
//! OTLP/HTTP ([`ship`]), with heartbeats ([`heartbeat`]) and its own counters ([`telemetry`]).
//!
//! The guarantee: a line is read, buffered on disk, sent, and only when the collector has
//! acknowledged it does its file's checkpoint move past it. On a clean stop everything is
//! saved exactly, so a restart sends nothing twice; after `kill -9` the last second of
//! acknowledgements may be sent again, each batch with the same `skein-batch-id` as before,
//! and the collector stores it once (exactly once end to end while the collector's window
//! remembers the id, `limits.dedupe_window_secs`). [`run`] starts the parts and stops them in
//! order: receivers, files, shipping, then the final save.

pub mod buffer;
pub mod config;
pub mod heartbeat;
pub mod hostmetrics;
pub mod parse;
pub mod pipeline;
pub mod receiver;
pub mod scrape;
pub mod ship;
pub mod tail;
pub mod telemetry;

use buffer::{Buffer, Signal};
use config::{AgentConfig, WhenFull};
use prost::Message;
use skein_model::api::HostSummary;
use skein_otlp::tls::server::Listener;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tail::Checkpoints;
use telemetry::Telemetry;
use tokio::net::TcpListener;

/// Addresses the agent listens on (port 0 in the config becomes the real port here).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// Local OTLP/HTTP receiver.
    pub otlp_http: Option<SocketAddr>,
    /// Local OTLP/gRPC receiver.
    pub otlp_grpc: Option<SocketAddr>,
    /// `/metrics`.
    pub telemetry: Option<SocketAddr>,
}

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Bad configuration (exit 2).
    #[error("{0}")]
    Config(String),
    /// The data directory cannot be used.
    #[error("data directory {dir}: {message}")]
    DataDir {
        /// The directory.
        dir: String,
        /// What is wrong.
        message: String,
    },
    /// An address cannot be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
    /// Something failed while running.
    #[error("{0}")]
    Run(String),
}

/// Most `/proc` files sysinfo keeps open for watched processes.
pub const MAX_PROC_FILES: usize = 256;

/// Saves checkpoints and the buffer cursor this often.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(1);

struct Shared {
    buffer: Arc<Buffer>,
    checkpoints: Mutex<Checkpoints>,
    checkpoints_dirty: AtomicBool,
    checkpoint_file: std::path::PathBuf,
    paths: pipeline::PathMap,
    telemetry: Telemetry,
}

impl Shared {
    /// Saves checkpoints, then the cursor: a crash between the two resends, never skips. The
    /// cursor is read first, so every batch it covers had its positions in the checkpoints
    /// before they were copied (`on_ack` runs before `Buffer::ack`). The checkpoint lock is
    /// held only to copy them, never across the write, so `on_ack` on the shipper's async
    /// task never waits on an fsync. Blocking threads only.
    fn save(&self) {
        let cursor = self.buffer.cursor();
        if self.checkpoints_dirty.swap(false, Ordering::SeqCst) {
            let copy = match self.checkpoints.lock() {
                Ok(c) => Ok(c.clone()),
                Err(_) => Err("checkpoint lock poisoned".to_string()),
            };
            if let Err(e) = copy.and_then(|c| c.save(&self.checkpoint_file)) {
                tracing::error!(error = %e, "cannot save checkpoints");
                self.checkpoints_dirty.store(true, Ordering::SeqCst);
                return;
            }
        }
        if let Err(e) = self.buffer.save_and_trim_to(cursor) {
            tracing::error!(error = %e, "cannot save the buffer cursor");
        }
        let (bytes, max) = self.buffer.fill();
        self.telemetry.set_buffer(bytes, max);
    }
}

/// ALPN offered on the HTTP listeners (receiver and telemetry).
const ALPN_HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];
/// ALPN offered on the gRPC listener.
const ALPN_GRPC: &[&[u8]] = &[b"h2"];

/// Wraps the agent's listeners in TLS when `[tls]` is set; plain otherwise.
struct TlsListeners {
    server: Option<skein_otlp::tls::server::ServerTls>,
}

impl TlsListeners {
    fn new(cfg: &AgentConfig) -> Result<TlsListeners, AgentError> {
        let server = cfg.tls.server().map_err(AgentError::Config)?;
        if server.is_some() {
            tracing::info!("TLS on the receiver and telemetry listeners");
        }
        Ok(TlsListeners { server })
    }

    fn wrap(&self, l: TcpListener, alpn: &[&[u8]]) -> Result<Listener, AgentError> {
        let acceptor = match &self.server {
            None => None,
            Some(tls) => Some(
                skein_otlp::tls::server::Acceptor::new(tls, alpn)
                    .map_err(|e| AgentError::Run(format!("TLS: {e}")))?,
            ),
        };
        Listener::new(l, acceptor).map_err(|e| AgentError::Run(e.to_string()))
    }
}

fn data_dir_error(dir: &Path, message: impl std::fmt::Display) -> AgentError {
    AgentError::DataDir {
        dir: dir.display().to_string(),
        message: message.to_string(),
    }
}

/// Takes the data directory's lock, so two agents never share checkpoints and buffer.
fn lock_data_dir(dir: &Path) -> Result<std::fs::File, AgentError> {
    std::fs::create_dir_all(dir).map_err(|e| data_dir_error(dir, e))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("agent.lock"))
        .map_err(|e| data_dir_error(dir, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(data_dir_error(
            dir,
            "another skein agent is using this data directory",
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(data_dir_error(dir, e)),
    }
}

/// Runs the agent until `shutdown` completes.
pub async fn run<F>(
    cfg: AgentConfig,
    shutdown: F,
    on_bound: impl FnOnce(Bound) + Send,
) -> Result<(), AgentError>
where
    F: Future<Output = ()> + Send + 'static,
{
    cfg.validate().map_err(AgentError::Config)?;
    skein_otlp::tls::conn::set_limits(skein_otlp::tls::conn::ConnLimits::from_ms(
        cfg.server.max_connections,
        cfg.server.idle_timeout_ms,
        cfg.server.header_timeout_ms,
        cfg.server.body_timeout_ms,
    ));
    let dir = cfg.agent.data_dir.clone();
    let host = cfg.host_name();
    let id = cfg.agent_id();
    let telemetry = Telemetry::new();
    let started = skein_model::time::now_unix_nano();

    // Open the state (disk reads: off the reactor).
    let open_dir = dir.clone();
    let buffer_cfg = cfg.buffer.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let lock = lock_data_dir(&open_dir)?;
        let buffer = Buffer::open(
            &open_dir.join("buffer"),
            buffer_cfg.max_mb * 1024 * 1024,
            buffer_cfg.segment_mb * 1024 * 1024,
        )
        .map_err(|e| data_dir_error(&open_dir, e))?;
        let file = open_dir.join("checkpoints.json");
        let checkpoints = Checkpoints::load(&file).map_err(|e| data_dir_error(&open_dir, e))?;
        let mut start = checkpoints.positions();
        start.extend(
            buffer
                .positions()
                .map_err(|e| data_dir_error(&open_dir, e))?,
        );
        Ok::<_, AgentError>((lock, buffer, checkpoints, start))
    })
    .await
    .map_err(|e| AgentError::Run(format!("start-up task failed: {e}")))?;
    let (_lock, buffer, checkpoints, start) = opened?;
    let buffer = Arc::new(buffer);
    let shared = Arc::new(Shared {
        buffer: buffer.clone(),
        checkpoints: Mutex::new(checkpoints),
        checkpoints_dirty: AtomicBool::new(false),
        checkpoint_file: dir.join("checkpoints.json"),
        paths: Arc::default(),
        telemetry: telemetry.clone(),
    });
    shared.save();

    let host_resource = vec![
        ("host.name".to_string(), host.clone()),
        ("skein.agent.id".to_string(), id.clone()),
    ];
    let bind = |what: &'static str, addr: &str| {
        let addr = addr.to_string();
        async move {
            TcpListener::bind(&addr)
                .await
                .map_err(|source| AgentError::Bind { what, addr, source })
        }
    };
    let (http_l, grpc_l) = if cfg.receiver.enabled {
        (
            Some(bind("receiver.http", &cfg.receiver.http).await?),
            Some(bind("receiver.grpc", &cfg.receiver.grpc).await?),
        )
    } else {
        (None, None)
    };
    let tel_l = if cfg.telemetry.listen.is_empty() {
        None
    } else {
        Some(bind("telemetry.listen", &cfg.telemetry.listen).await?)
    };
    let bound = Bound {
        otlp_http: http_l.as_ref().and_then(|l| l.local_addr().ok()),
        otlp_grpc: grpc_l.as_ref().and_then(|l| l.local_addr().ok()),
        telemetry: tel_l.as_ref().and_then(|l| l.local_addr().ok()),
    };
    // Plain or TLS ([tls]); from here on each is a `Listener` handed to its server.
    let tls = TlsListeners::new(&cfg)?;
    let http_l = http_l.map(|l| tls.wrap(l, ALPN_HTTP)).transpose()?;
    let grpc_l = grpc_l.map(|l| tls.wrap(l, ALPN_GRPC)).transpose()?;
    let tel_l = tel_l.map(|l| tls.wrap(l, ALPN_HTTP)).transpose()?;
    for (what, addr) in [
        ("receiver.http", bound.otlp_http),
        ("receiver.grpc", bound.otlp_grpc),
    ] {
        let fix = "the agent's receiver takes no token: listen on 127.0.0.1 or firewall the port";
        if let Some(w) =
            addr.and_then(|a| skein_model::auth::open_listener_warning(what, a, None, fix))
        {
            tracing::warn!("{w}");
        }
    }

    let mut client = reqwest::Client::builder()
        .timeout(cfg.collector.timeout.0)
        .connect_timeout(cfg.collector.timeout.0.min(Duration::from_secs(5)));
    if let Some(tls) = cfg.collector.tls_config().map_err(AgentError::Run)? {
        client = client.tls_backend_preconfigured(tls);
    }
    let client = client
        .build()
        .map_err(|e| AgentError::Run(format!("cannot build the HTTP client: {e}")))?;
    let target = ship::Target {
        client,
        endpoint: cfg.collector.endpoint.trim_end_matches('/').to_string(),
        token: cfg.collector.token.clone(),
        batch_ids: Some(ship::batch_id_prefix(&id)),
        stream: stream_target(&cfg.stream, &id).await?,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (ship_stop_tx, ship_stop_rx) = tokio::sync::watch::channel(false);

    // Receivers.
    let mut servers = Vec::new();
    let sink = receiver::AgentSink::new(
        buffer.clone(),
        host_resource.clone(),
        cfg.collector.compression,
        cfg.buffer.when_full,
        telemetry.clone(),
        cfg.receiver.max_inflight_requests,
    );
    let wait = |rx: &tokio::sync::watch::Receiver<bool>| {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    };
    if let (Some(hl), Some(gl)) = (http_l, grpc_l) {
        let serve = skein_otlp::serve(
            sink,
            hl,
            gl,
            skein_otlp::ServeConfig {
                max_body: cfg.receiver.max_request_bytes,
                token: None,
                admission: skein_otlp::AdmissionLimits::default(),
                extra_http: axum::Router::new(),
            },
            stop_rx.clone(),
        );
        servers.push(tokio::spawn(async move {
            serve.await.map_err(|e| format!("receiver: {e}"))
        }));
    }
    if let Some(tl) = tel_l {
        let t = telemetry.clone();
        let app = axum::Router::new()
            .route(
                "/metrics",
                axum::routing::get(move || {
                    let t = t.clone();
                    async move {
                        (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                skein_telemetry::CONTENT_TYPE,
                            )],
                            t.encode(),
                        )
                    }
                }),
            )
            .route(
                "/healthz",
                axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
            );
        let stop = wait(&stop_rx);
        servers.push(tokio::spawn(async move {
            skein_otlp::tls::serve::serve(tl, app, stop)
                .await
                .map_err(|e| format!("telemetry.listen: {e}"))
        }));
    }

    // Files.
    let stop_files = Arc::new(AtomicBool::new(false));
    let source_files: pipeline::SourceFiles = Arc::default();
    let files = if cfg.sources.is_empty() {
        None
    } else {
        Some(
            pipeline::FilePath::start(pipeline::FileParts {
                cfg: cfg.clone(),
                start,
                buffer: buffer.clone(),
                telemetry: telemetry.clone(),
                host_resource: host_resource.clone(),
                stop: stop_files.clone(),
                paths: shared.paths.clone(),
                source_files: source_files.clone(),
            })
            .map_err(AgentError::Config)?,
        )
    };

    // Shipping.
    let ack_shared = shared.clone();
    let shipper = ship::Shipper {
        target: target.clone(),
        buffer: buffer.clone(),
        retry: cfg.retry.clone(),
        max_in_flight: cfg.collector.max_in_flight,
        telemetry: telemetry.clone(),
        on_ack: Arc::new(move |positions| {
            if positions.is_empty() {
                return;
            }
            let paths = ack_shared.paths.lock().ok();
            if let Ok(mut c) = ack_shared.checkpoints.lock() {
                for (id, off) in positions {
                    let path = paths
                        .as_ref()
                        .and_then(|p| p.get(id).cloned())
                        .unwrap_or_else(|| Arc::from(""));
                    c.set(*id, *off, &path);
                }
                ack_shared.checkpoints_dirty.store(true, Ordering::SeqCst);
            }
        }),
    };
    let ship_task = tokio::spawn(shipper.run(ship_stop_rx));

    // Saving.
    let save_shared = shared.clone();
    let mut save_stop = stop_rx.clone();
    let saver = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(SAVE_INTERVAL) => {}
                _ = save_stop.wait_for(|v| *v) => return,
            }
            let s = save_shared.clone();
            let _ = tokio::task::spawn_blocking(move || s.save()).await;
        }
    });

    // Host metrics.
    let host_summary: Arc<Mutex<Option<HostSummary>>> = Arc::default();
    let metrics_task = if cfg.host_metrics.enabled {
        // sysinfo keeps one /proc/<pid>/stat open per watched process, by default up to half
        // the process's file limit: cap it so the tailer keeps its file handles.
        sysinfo::set_open_files_limit(MAX_PROC_FILES);
        let sampler = hostmetrics::HostSampler::new(&cfg.host_metrics, host_resource.clone())
            .map_err(AgentError::Config)?;
        Some(tokio::spawn(host_metrics_loop(
            sampler,
            cfg.clone(),
            buffer.clone(),
            telemetry.clone(),
            host_summary.clone(),
            stop_rx.clone(),
        )))
    } else {
        None
    };

    // Prometheus / OpenMetrics scrapes.
    let scrape_tasks = scrape::start(&cfg, buffer.clone(), telemetry.clone(), stop_rx.clone())
        .map_err(AgentError::Config)?;

    // Heartbeats.
    let hb_task = tokio::spawn(heartbeat::run(
        heartbeat::HeartbeatParts {
            id: id.clone(),
            host: host.clone(),
            started_unix_nano: started,
            sources: source_files,
            buffer: buffer.clone(),
            host_summary,
            telemetry: telemetry.clone(),
        },
        target,
        cfg.heartbeat.interval.0,
        stop_rx.clone(),
    ));

    tracing::info!(id = %id, host = %host, collector = %cfg.collector.endpoint, "agent running");
    on_bound(bound);
    shutdown.await;
    tracing::info!("agent stopping: receivers, files, then shipping");

    let _ = stop_tx.send(true);
    let mut failure = None;
    for s in servers {
        match s.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(e.to_string()),
        }
    }
    stop_files.store(true, Ordering::Release);
    if let Some(f) = files {
        let _ = tokio::task::spawn_blocking(move || f.join()).await;
    }
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    for t in scrape_tasks {
        let _ = t.await;
    }
    let _ = hb_task.await;
    // Requests in flight finish (bounded by collector.timeout); failing ones are abandoned
    // and sent after the next start.
    let _ = ship_stop_tx.send(true);
    let _ = ship_task.await;
    let _ = saver.await;
    let s = shared.clone();
    let _ = tokio::task::spawn_blocking(move || s.save()).await;
    tracing::info!("agent stopped");
    match failure {
        Some(f) => Err(AgentError::Run(f)),
        None => Ok(()),
    }
}

async fn host_metrics_loop(
    mut sampler: hostmetrics::HostSampler,
    cfg: AgentConfig,
    buffer: Arc<Buffer>,
    telemetry: Telemetry,
    summary: Arc<Mutex<Option<HostSummary>>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(cfg.host_metrics.interval.0);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|v| *v) => return,
        }
        let b = buffer.clone();
        let compression = cfg.collector.compression;
        let drop_oldest = cfg.buffer.when_full == WhenFull::DropOldest;
        let res = tokio::task::spawn_blocking(move || {
            let req = sampler.sample();
            let s = sampler.summary();
            let points = skein_model::otlp::metric_points(&req);
            let (enc, body) = buffer::compress(&req.encode_to_vec(), compression);
            let r = b.append(
                Signal::Metrics,
                u32::try_from(points).unwrap_or(u32::MAX),
                &[],
                enc,
                &body,
                drop_oldest,
            );
            (sampler, s, points, r)
        })
        .await;
        let Ok((back, s, points, r)) = res else {
            tracing::error!("host metrics task failed; host metrics stop");
            return;
        };
        sampler = back;
        if let Ok(mut g) = summary.lock() {
            *g = Some(HostSummary {
                cpu_utilization: s.cpu_utilization,
                memory_used_bytes: s.memory_used_bytes,
                memory_total_bytes: s.memory_total_bytes,
                load1: s.load1,
            });
        }
        match r {
            Ok(dropped) => {
                telemetry.records_buffered("metrics", points);
                if dropped > 0 {
                    telemetry.dropped("buffer_full", dropped);
                }
            }
            Err(buffer::BufferError::Full) => telemetry.dropped("buffer_full", points),
            Err(e) => tracing::error!(error = %e, "cannot buffer host metrics"),
        }
    }
}

/// With `[stream]` set: a publisher to the cluster's stream. The connection is made in the
/// background (NATS may be down at start; the buffer holds batches meanwhile).
async fn stream_target(
    cfg: &config::StreamSection,
    id: &str,
) -> Result<Option<ship::StreamTarget>, AgentError> {
    if !cfg.enabled() {
        return Ok(None);
    }
    let addrs: Vec<async_nats::ServerAddr> = cfg
        .nats
        .iter()
        .map(|u| {
            u.parse()
                .map_err(|e| AgentError::Run(format!("key stream.nats: value \"{u}\": {e}")))
        })
        .collect::<Result<_, _>>()?;
    let client = async_nats::ConnectOptions::new()
        .name(format!("skein-agent-{id}"))
        .retry_on_initial_connect()
        .connect(addrs)
        .await
        .map_err(|e| {
            AgentError::Run(format!(
                "cannot connect to NATS ({}): {e}",
                cfg.nats.join(", ")
            ))
        })?;
    tracing::info!(nats = %cfg.nats.join(", "), "publishing batches to the cluster's stream");
    Ok(Some(ship::StreamTarget {
        publisher: skein_stream::Publisher::new(
            async_nats::jetstream::new(client),
            cfg.prefix.clone(),
            cfg.partitions,
            cfg.max_message_bytes,
            cfg.publish_timeout.0,
        ),
        keys: std::sync::Arc::new(skein_model::keys::KeyExtractor::new(
            &skein_model::keys::KeyConfig::default(),
        )),
    }))
}
