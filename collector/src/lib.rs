//! The Skein collector: the ingest path (OTLP in over `skein-otlp`, a write-ahead log before
//! every acknowledgement, tantivy indexes of logs and spans, the metrics store, span metrics)
//! and the wiring of the whole server (query API from `skein-query`, alerts from
//! `skein-alert`).
//!
//! - [`config`]: the TOML configuration and its validation.
//! - [`ingest`]: the collector's [`skein_otlp::OtlpSink`]: OTLP to model records, validation,
//!   correlation keys, then the WAL.
//! - [`pipeline`]: WAL writer and indexer threads with bounded queues between them.
//! - [`spanmetrics`]: RED figures and the service graph derived from accepted spans.
//! - [`heartbeat`]: agents' heartbeats (`POST /skein/v1/heartbeat`), kept in the registry the
//!   query API serves at `/api/v1/agents`; [`housekeeping`]: liveness series, block cuts,
//!   retention, the registry saved.
//! - [`telemetry`]: the collector's own counters at `/metrics`.
//!
//! [`run`] starts everything and stops it cleanly: on shutdown the servers stop accepting,
//! finish the requests in flight, the WAL writer drains its queue and the indexer commits.
//! The trade-off chosen: an acknowledgement waits for an fsync (shared by the batches that
//! arrive together), so a 2xx always means the batch survives `kill -9` and power loss.

pub mod config;
pub mod dedupe;
pub mod heartbeat;
pub mod housekeeping;
pub mod ingest;
pub mod memory;
pub mod pipeline;
pub mod spanmetrics;
pub mod telemetry;

use config::{CollectorConfig, WalSync};
use skein_model::keys::KeyExtractor;
use skein_otlp::tls::server::Listener;
use skein_query::api::{ApiState, router_with as api_router_with};
use skein_query::engine::{Engine, QueryLimits};
use skein_store::{Logs, Spans, SplitConfig, SplitStore};
use skein_wal::{SyncPolicy, Wal, WalConfig};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::net::TcpListener;

/// Why the collector could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The data directory could not be opened.
    #[error("data directory {dir}: {source}")]
    Store {
        /// The data dir.
        dir: String,
        /// The cause.
        #[source]
        source: skein_store::StoreError,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// Its address.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A server failed.
    #[error("{0}")]
    Serve(String),
}

/// Where the collector listens, once bound (ports chosen when the config said 0).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// OTLP/HTTP.
    pub otlp_http: SocketAddr,
    /// OTLP/gRPC.
    pub otlp_grpc: SocketAddr,
    /// Query API.
    pub api: SocketAddr,
}

fn mb(n: u64) -> u64 {
    n.saturating_mul(1024 * 1024)
}

/// Runs the collector until `shutdown` completes. `on_bound` is called once every listener
/// is bound and the WAL is replayed.
pub async fn run<F>(
    cfg: CollectorConfig,
    shutdown: F,
    on_bound: impl FnOnce(Bound) + Send,
) -> Result<(), CollectorError>
where
    F: Future<Output = ()> + Send + 'static,
{
    cfg.validate().map_err(|message| config::ConfigError {
        source_name: "configuration".into(),
        message,
    })?;
    skein_otlp::tls::conn::set_limits(skein_otlp::tls::conn::ConnLimits::from_ms(
        cfg.server.max_connections,
        cfg.server.idle_timeout_ms,
        cfg.server.header_timeout_ms,
        cfg.server.body_timeout_ms,
    ));
    let telemetry = telemetry::Telemetry::new();
    let data_dir = cfg.data_dir.clone();
    let store_err = |source| CollectorError::Store {
        dir: data_dir.display().to_string(),
        source,
    };

    // Opening and replaying reads the disk: keep it off the reactor.
    let open_cfg = cfg.clone();
    let tel = telemetry.clone();
    let seen = dedupe::Seen::new(
        Duration::from_secs(cfg.limits.dedupe_window_secs),
        usize::try_from(cfg.limits.dedupe_max_ids).unwrap_or(usize::MAX),
    );
    let open_seen = seen.clone();
    let opened = tokio::task::spawn_blocking(move || open_stores(&open_cfg, tel, &open_seen))
        .await
        .map_err(|e| CollectorError::Serve(format!("start-up task failed: {e}")))?;
    let (writer, pipeline, tsdb, engine, _lock) = opened.map_err(store_err)?;
    let (_, _, derive_interval, join_window) =
        cfg.metrics_durations()
            .map_err(|message| config::ConfigError {
                source_name: "configuration".into(),
                message,
            })?;
    let derived = Arc::new(tokio::sync::Notify::new());
    let (derive_tx, derive_thread) = spanmetrics::thread::start_deriver(
        telemetry.clone(),
        tsdb.clone(),
        derive_interval,
        join_window,
        derived.clone(),
    )
    .map_err(|e| CollectorError::Serve(format!("cannot start the span deriver: {e}")))?;

    let bind = |what: &'static str, addr: &str| {
        let addr = addr.to_string();
        async move {
            TcpListener::bind(&addr)
                .await
                .map_err(|source| CollectorError::Bind { what, addr, source })
        }
    };
    let http_l = bind("otlp_http", &cfg.listen.otlp_http).await?;
    let grpc_l = bind("otlp_grpc", &cfg.listen.otlp_grpc).await?;
    let api_l = bind("api", &cfg.listen.api).await?;
    let local = |l: &TcpListener| {
        l.local_addr()
            .map_err(|e| CollectorError::Serve(e.to_string()))
    };
    let bound = Bound {
        otlp_http: local(&http_l)?,
        otlp_grpc: local(&grpc_l)?,
        api: local(&api_l)?,
    };
    let cluster = if cfg.cluster.enabled() {
        let scheme = if cfg.tls.cert_file.is_some() {
            "https"
        } else {
            "http"
        };
        let (logs, spans) = split_configs(&cfg, true).map_err(store_err)?;
        let started = skein_cluster::Cluster::start(skein_cluster::Start {
            cfg: cfg.cluster.clone(),
            data_dir: cfg.data_dir.clone(),
            logs,
            spans,
            commit_interval: Duration::from_millis(cfg.index.commit_interval_ms),
            api_url: format!("{scheme}://{}", bound.api),
            query_token: cfg.auth.query_token.clone(),
            tsdb: tsdb_config(&cfg, cfg.data_dir.join("tsdb")).map_err(store_err)?,
            deriver: Some(spanmetrics::deriver_factory(derive_interval, join_window)),
            derive_interval,
        })
        .await
        .map_err(CollectorError::Serve)?;
        Some(started)
    } else {
        None
    };
    let memory = memory::MemoryLimit::start(cfg.limits.memory_limit_mb);
    let token = |t: &Option<String>| t.as_deref().map(Arc::<str>::from);
    let ingest = ingest::Ingest::new(
        writer,
        tsdb.clone(),
        Some(derive_tx),
        KeyExtractor::new(&cfg.correlation),
        cfg.limits.record(),
        telemetry.clone(),
        ingest::Guards {
            max_inflight: cfg.limits.max_inflight_requests,
            seen,
            memory: memory.clone(),
        },
    );
    let ingest = match &cluster {
        Some(c) => ingest.with_cluster(c.publisher()),
        None => ingest,
    };

    let (http_l, grpc_l, api_l) = tls_listeners(&cfg, http_l, grpc_l, api_l)?;
    let (in_t, q_t) = (&cfg.auth.ingest_token, &cfg.auth.query_token);
    for (what, addr, key, token) in [
        ("listen.otlp_http", bound.otlp_http, "ingest", in_t),
        ("listen.otlp_grpc", bound.otlp_grpc, "ingest", in_t),
        ("listen.api", bound.api, "query", q_t),
    ] {
        let fix = format!("set auth.{key}_token or listen on 127.0.0.1");
        let token = token.as_deref();
        if let Some(w) = skein_model::auth::open_listener_warning(what, addr, token, &fix) {
            tracing::warn!("{w}");
        }
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let agents = skein_store::agents::AgentRegistry::open(
        &cfg.data_dir.join("agents.json"),
        cfg.agents_down_after()
            .map_err(|message| config::ConfigError {
                source_name: "configuration".into(),
                message,
            })?,
    );
    let agent_share = match &cluster {
        Some(c) => Some(
            c.agent_share(agents.clone())
                .await
                .map_err(CollectorError::Serve)?,
        ),
        None => None,
    };
    let housekeeping = tokio::spawn(housekeeping::run(
        tsdb.clone(),
        agents.clone(),
        telemetry.clone(),
    ));
    let otlp_task = tokio::spawn(skein_otlp::serve(
        ingest.clone(),
        http_l,
        grpc_l,
        skein_otlp::ServeConfig {
            max_body: cfg.limits.max_request_bytes,
            token: token(&cfg.auth.ingest_token),
            admission: cfg.limits.admission(),
            extra_http: heartbeat::router(
                agents.clone(),
                token(&cfg.auth.ingest_token),
                agent_share,
            ),
        },
        stop_rx.clone(),
    ));
    drop(ingest);

    let engine = Arc::new(match &cluster {
        Some(c) => Engine::over(c.reads(), engine.limits().clone()),
        None => engine,
    });
    let alert_plan = cfg.alerts.plan().map_err(|message| config::ConfigError {
        source_name: "configuration".into(),
        message,
    })?;
    let external_url = if alert_plan.external_url.is_empty() {
        let scheme = if cfg.tls.cert_file.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", bound.api)
    } else {
        alert_plan.external_url.clone()
    };
    let metric_reads: Arc<dyn skein_query::metric_reads::MetricReads> = match &cluster {
        Some(c) => c.metric_reads(tsdb.clone()),
        None => Arc::new(tsdb.clone()),
    };
    let sources = skein_alert::cond::Sources {
        tsdb: metric_reads.clone(),
        engine: engine.clone(),
        agents: agents.clone(),
    };
    let alert_dir = cfg.data_dir.join("alerts");
    let alerts = match &cluster {
        // In a cluster the outbox and the state live in JetStream: a notification outlives
        // the node that made it.
        Some(c) => {
            let receivers = alert_plan
                .receivers
                .iter()
                .map(|r| r.name.clone())
                .collect();
            let shared = c
                .alert_store(receivers, alert_plan.outbox_max_pending)
                .await
                .map_err(CollectorError::Serve)?;
            skein_alert::AlertEngine::open_shared(
                &alert_dir,
                alert_plan,
                sources,
                external_url,
                telemetry.alerts(),
                shared,
            )
        }
        None => skein_alert::AlertEngine::open(
            &alert_dir,
            alert_plan,
            sources,
            external_url,
            telemetry.alerts(),
        ),
    }
    .map_err(|e| CollectorError::Serve(format!("cannot open the alert state: {e}")))?;
    // Prometheus rule files evaluate through the PromQL engine over the same reads as the
    // API; recording rules write to this node's store (in a cluster every node's own store is
    // read by the fan-out, so any node's recorded series are seen everywhere).
    alerts.connect_promql(
        Arc::new(skein_query::promql::Engine::new(
            Arc::new(skein_query::promql::source::StoreSource::new(
                metric_reads.clone(),
            )),
            skein_query::promql::engine::Limits {
                timeout: Duration::from_millis(cfg.query.timeout_ms),
                ..Default::default()
            },
        )),
        Arc::new(tsdb.clone()),
    );
    let alert_task = match &cluster {
        // One node of a cluster evaluates and notifies: the holder of the alert lease.
        Some(c) => {
            let c = c.clone();
            tokio::spawn(alerts.clone().run_while(
                stop_rx.clone(),
                derived,
                Arc::new(move || c.is_leader()),
            ))
        }
        None => tokio::spawn(alerts.clone().run(stop_rx.clone(), derived)),
    };

    let tel_m = telemetry.clone();
    let tel_o = telemetry.clone();
    let ready = Arc::new(AtomicBool::new(cluster.is_none()));
    let cluster_m = cluster.clone();
    let extra = skein_alert::http::routes(alerts);
    let extra = match &cluster {
        Some(c) => {
            let (c2, ready2) = (c.clone(), ready.clone());
            let mut rx = stop_rx.clone();
            tokio::spawn(async move {
                // Ready once every partition this node holds has caught up with the stream.
                loop {
                    ready2.store(c2.ready(), std::sync::atomic::Ordering::Release);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = rx.wait_for(|v| *v) => break,
                    }
                }
            });
            extra.merge(c.routes())
        }
        None => extra,
    };
    let api_app = api_router_with(
        ApiState {
            engine,
            token: token(&cfg.auth.query_token),
            ready,
            metrics: Arc::new(move || {
                let mut text = tel_m.render();
                if let Some(c) = &cluster_m {
                    text.push_str(&c.metrics_text());
                }
                text
            }),
            observe: Arc::new(move |route, secs| tel_o.query_took(route, secs)),
            timeout: Duration::from_millis(cfg.query.timeout_ms),
            slots: Arc::new(tokio::sync::Semaphore::new(cfg.query.max_concurrent)),
            agents: agents.clone(),
            metric_reads,
            keys: Arc::new(skein_model::keys::KeyExtractor::new(&cfg.correlation)),
        },
        extra,
    );
    let api_stop = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    };
    let api_task = tokio::spawn(skein_otlp::tls::serve::serve(api_l, api_app, api_stop));

    tracing::info!(
        otlp_http = %bound.otlp_http,
        otlp_grpc = %bound.otlp_grpc,
        api = %bound.api,
        data_dir = %cfg.data_dir.display(),
        "collector listening"
    );
    on_bound(bound);

    shutdown.await;
    tracing::info!("shutting down: finishing requests in flight");
    let _ = stop_tx.send(true);
    let mut failure = None;
    match otlp_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => failure = Some(e.to_string()),
        Err(e) => failure = Some(format!("otlp server task: {e}")),
    }
    match api_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => failure = Some(format!("api server: {e}")),
        Err(e) => failure = Some(format!("api server task: {e}")),
    }
    if let Err(e) = alert_task.await {
        failure = Some(format!("alert engine task: {e}"));
    }
    if let Some(c) = &cluster {
        // Each partition commits; the leases go back so other nodes take over at once.
        c.leave().await;
    }
    housekeeping.abort();
    if let Err(e) = agents.save() {
        tracing::warn!(error = %e, "cannot save the agent registry");
    }
    // Every handle to the writer is gone with the servers: the threads drain and commit.
    tokio::task::spawn_blocking(move || pipeline.join())
        .await
        .map_err(|e| CollectorError::Serve(format!("pipeline did not stop cleanly: {e}")))?;
    // The servers held the last span senders: the deriver makes its last flush and stops.
    tokio::task::spawn_blocking(move || derive_thread.join())
        .await
        .map_err(|e| CollectorError::Serve(format!("deriver did not stop cleanly: {e}")))?;
    tracing::info!("collector stopped");
    match failure {
        Some(f) => Err(CollectorError::Serve(f)),
        None => Ok(()),
    }
}

/// Wraps the three listeners in TLS when `[tls]` is set (OTLP/gRPC offers `h2` only).
fn tls_listeners(
    cfg: &CollectorConfig,
    http: TcpListener,
    grpc: TcpListener,
    api: TcpListener,
) -> Result<(Listener, Listener, Listener), CollectorError> {
    let server = cfg.tls.server().map_err(|message| config::ConfigError {
        source_name: "configuration".into(),
        message,
    })?;
    let acceptor = |alpn: &[&[u8]]| match &server {
        None => Ok(None),
        Some(tls) => skein_otlp::tls::server::Acceptor::new(tls, alpn)
            .map(Some)
            .map_err(|e| CollectorError::Serve(format!("TLS: {e}"))),
    };
    let wrap = |l: TcpListener, a: Option<skein_otlp::tls::server::Acceptor>| {
        Listener::new(l, a).map_err(|e| CollectorError::Serve(e.to_string()))
    };
    let both: &[&[u8]] = &[b"h2", b"http/1.1"];
    let listeners = (
        wrap(http, acceptor(both)?)?,
        wrap(grpc, acceptor(&[b"h2"])?)?,
        wrap(api, acceptor(both)?)?,
    );
    if server.is_some() {
        tracing::info!("TLS on the OTLP/HTTP, OTLP/gRPC and API listeners");
    }
    Ok(listeners)
}

type Opened = (
    pipeline::Writer,
    pipeline::Pipeline,
    skein_store::tsdb::Tsdb,
    Engine,
    std::fs::File,
);

/// Takes the data directory's lock file, so a second collector on the same directory stops
/// with a clear error instead of corrupting the WAL. The OS releases it when the process ends,
/// `kill -9` included.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, skein_store::StoreError> {
    let path = dir.join("skein.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| skein_store::StoreError::Io {
            op: "open",
            path: path.clone(),
            source: e,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(skein_store::StoreError::Io {
            op: "lock",
            path,
            source: std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "another skein collector is using this data directory",
            ),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(skein_store::StoreError::Io {
            op: "lock",
            path,
            source: e,
        }),
    }
}

/// Split settings of the logs and the spans. For one partition in cluster mode
/// (`partition`): a quarter of the writers' memory each (a node holds several partitions; at
/// least 16 MiB, tantivy's floor), one indexing thread, no size limit (the stream's retention
/// bounds a partition).
fn split_configs(
    cfg: &CollectorConfig,
    partition: bool,
) -> Result<(SplitConfig, SplitConfig), skein_store::StoreError> {
    let split_max_age = cfg
        .split_max_age()
        .map_err(skein_store::StoreError::Internal)?;
    let retention_max_age = cfg
        .retention_max_age()
        .map_err(skein_store::StoreError::Internal)?;
    let split = |memory_mb: usize| SplitConfig {
        split_max_age,
        split_max_docs: 20_000_000,
        writer_memory_bytes: if partition {
            (memory_mb / 4).max(16)
        } else {
            memory_mb
        } * 1024
            * 1024,
        indexing_threads: if partition {
            1
        } else {
            cfg.index.indexing_threads
        },
        retention_max_age,
        retention_max_bytes: (cfg.retention.max_mb > 0 && !partition)
            .then(|| mb(cfg.retention.max_mb)),
        docstore_block_bytes: cfg.index.docstore_block_kb * 1024,
    };
    Ok((
        split(cfg.index.writer_memory_mb),
        split(CollectorConfig::spans_writer_mb(cfg.index.writer_memory_mb)),
    ))
}

/// The settings of a metrics store in `dir` (the node's, or in a cluster a partition's).
fn tsdb_config(
    cfg: &CollectorConfig,
    dir: std::path::PathBuf,
) -> Result<skein_store::tsdb::TsdbConfig, skein_store::StoreError> {
    let (retention, block_duration, _, _) = cfg
        .metrics_durations()
        .map_err(skein_store::StoreError::Internal)?;
    Ok(skein_store::tsdb::TsdbConfig {
        dir,
        retention,
        block_duration,
        max_series_per_metric: cfg.metrics.max_series_per_metric,
        max_series: cfg.metrics.max_series,
        wal_segment_bytes: mb(cfg.wal.segment_mb),
        wal_max_bytes: mb(cfg.wal.metrics_max_mb),
        sync: wal_sync(cfg),
        cache_bytes: mb(cfg.metrics.cache_mb),
    })
}

fn wal_sync(cfg: &CollectorConfig) -> SyncPolicy {
    match cfg.wal.sync {
        WalSync::Batch => SyncPolicy::EveryBatch,
        WalSync::Interval => SyncPolicy::Interval(Duration::from_millis(cfg.wal.sync_interval_ms)),
    }
}

fn open_stores(
    cfg: &CollectorConfig,
    telemetry: telemetry::Telemetry,
    seen: &dedupe::Seen,
) -> Result<Opened, skein_store::StoreError> {
    let dir = &cfg.data_dir;
    std::fs::create_dir_all(dir).map_err(|e| skein_store::StoreError::Io {
        op: "create",
        path: dir.clone(),
        source: e,
    })?;
    let lock = lock_data_dir(dir)?;
    let sync = wal_sync(cfg);
    let (wal, report) = Wal::open(WalConfig {
        dir: dir.join("wal"),
        segment_bytes: mb(cfg.wal.segment_mb),
        max_bytes: mb(cfg.wal.max_mb),
        sync,
    })?;
    if report.truncated_bytes > 0 {
        tracing::warn!(
            bytes = report.truncated_bytes,
            "cut a torn write off the end of the wal"
        );
    }
    let tsdb = skein_store::tsdb::Tsdb::open(tsdb_config(cfg, dir.join("tsdb"))?)?;
    let (logs_split, spans_split) = split_configs(cfg, false)?;
    let logs = SplitStore::<Logs>::open(dir, logs_split)?;
    let spans = SplitStore::<Spans>::open(dir, spans_split)?;
    let engine = Engine::new(
        logs.split_list(),
        logs.fields().clone(),
        spans.split_list(),
        spans.fields().clone(),
        QueryLimits {
            max_limit: cfg.query.max_limit,
            max_trace_records: cfg.query.max_trace_records,
            ..QueryLimits::default()
        },
    );
    let (writer, pipeline) = pipeline::start(
        pipeline::PipelineConfig {
            ingest_queue: cfg.limits.ingest_queue,
            index_queue: cfg.limits.index_queue,
            commit_interval: Duration::from_millis(cfg.index.commit_interval_ms),
        },
        wal,
        logs,
        spans,
        telemetry,
        seen,
    )?;
    Ok((writer, pipeline, tsdb, engine, lock))
}
