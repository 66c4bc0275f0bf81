//! Skein on many machines: NATS JetStream as the shared log, partitions by correlation key,
//! store reads that fan out.
//!
//! - [`config`]: the `[cluster]` section (off unless `nats` is set).
//! - [`publish`]: ingest publishes each record to `<prefix>.<signal>.<partition>` with a
//!   message id from the sender's batch id and answers only after the stream acknowledged.
//! - [`publish_metrics`]: metric samples published by series to `<prefix>.metrics.<partition>`.
//! - [`lease`]: nodes and partition leases in a key-value bucket (create, compare-and-set
//!   renewals, expiry by TTL), the balancing rule, the view of the cluster.
//! - [`worker`]: one durable pull consumer and one pair of tantivy split stores per partition
//!   held, the stream sequence in each commit payload.
//! - [`fanout`]: the cluster's store reads (`skein_query::reads::Reads`): every API route
//!   works on any node.
//! - [`agents`]: heartbeats shared through a bucket, so every node knows every agent.
//! - [`alerts`]: the alert engine's outbox (a work-queue stream) and state (a bucket),
//!   shared so a notification survives the node that made it.
//! - [`metrics`]: metric reads asked of every live node and merged, series labelled by
//!   node.
//! - [`routes`]: `POST /internal/v1/reads` and `GET /api/v1/cluster`.
//!
//! The trade-off: the stream is the write-ahead log, so an acknowledgement waits for a
//! JetStream quorum rather than a local fsync, and a new owner of a partition builds it from
//! what the stream still holds (`cluster.stream_max_age_hours`): the stream's retention bounds
//! how far back a rebuilt partition reaches.

pub mod agents;
pub mod alerts;
pub mod config;
pub mod fanout;
pub mod lease;
pub mod metrics;
pub mod routes;
pub mod worker;

pub use config::ClusterConfig;
pub use skein_stream::{PublishError, Published, Publisher, publish, publish_metrics};

use async_nats::jetstream::{self, kv, stream};
use lease::Membership;
use skein_query::reads::Reads;
use skein_store::SplitConfig;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What starting cluster mode needs from the collector.
pub struct Start {
    /// The `[cluster]` section.
    pub cfg: ClusterConfig,
    /// The collector's data directory (partitions go under `partitions/`).
    pub data_dir: PathBuf,
    /// Split settings of a partition's logs.
    pub logs: SplitConfig,
    /// Split settings of a partition's spans.
    pub spans: SplitConfig,
    /// Time between index commits.
    pub commit_interval: Duration,
    /// This node's query API as other nodes reach it.
    pub api_url: String,
    /// The query token, sent on reads to other nodes.
    pub query_token: Option<String>,
    /// Settings of each partition's metrics store (`dir` is set per partition).
    pub tsdb: skein_store::tsdb::TsdbConfig,
    /// Span metrics per partition, when on.
    pub deriver: Option<worker::DeriverFactory>,
    /// Time between span metric flushes.
    pub derive_interval: Duration,
}

struct Inner {
    membership: Arc<Membership>,
    js: jetstream::Context,
    cfg: ClusterConfig,
    stream_name: String,
    publisher: Publisher,
    stream: stream::Stream,
    kv: kv::Store,
    read_timeout: Duration,
    ticked: AtomicBool,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    reads: Arc<fanout::FanOut>,
}

/// A running cluster node: cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

async fn retry<T, E: std::fmt::Display, F, Fut>(what: &str, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut last = String::new();
    for _ in 0..20 {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                last = e.to_string();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    Err(format!("{what}: {last}"))
}

/// Opens a key-value bucket, creating it when it does not exist (retried while NATS starts).
pub(crate) async fn bucket(
    js: &jetstream::Context,
    cfg: kv::Config,
    what: &str,
) -> Result<kv::Store, String> {
    let name = cfg.bucket.clone();
    retry(what, || async {
        match js.get_key_value(name.clone()).await {
            Ok(kv) => Ok(kv),
            Err(_) => js
                .create_key_value(cfg.clone())
                .await
                .map_err(|e| e.to_string()),
        }
    })
    .await
}

impl Cluster {
    /// Connects to NATS, makes sure the stream and the bucket exist, and starts taking
    /// partition leases.
    pub async fn start(s: Start) -> Result<Cluster, String> {
        let c = &s.cfg;
        let node = c.node_name();
        let addrs: Vec<async_nats::ServerAddr> = c
            .nats
            .iter()
            .map(|u| {
                u.parse()
                    .map_err(|e| format!("key cluster.nats: value \"{u}\": {e}"))
            })
            .collect::<Result<_, _>>()?;
        let client = tokio::time::timeout(
            Duration::from_secs(15),
            async_nats::ConnectOptions::new()
                .name(format!("skein-collector-{node}"))
                .retry_on_initial_connect()
                .connect(addrs),
        )
        .await
        .map_err(|_| {
            format!(
                "cannot reach NATS at {} within 15 s (cluster.nats); is nats-server running with JetStream (-js)?",
                c.nats.join(", ")
            )
        })?
        .map_err(|e| format!("cannot connect to NATS at {}: {e}", c.nats.join(", ")))?;
        let js = jetstream::new(client);
        let stream_name = c.prefix.to_ascii_uppercase().replace('-', "_");
        let stream_cfg = stream::Config {
            name: stream_name.clone(),
            subjects: vec![
                format!("{}.logs.*", c.prefix),
                format!("{}.spans.*", c.prefix),
                format!("{}.metrics.*", c.prefix),
            ],
            storage: stream::StorageType::File,
            num_replicas: c.replicas,
            max_age: Duration::from_secs(c.stream_max_age_hours * 3600),
            max_bytes: if c.stream_max_mb == 0 {
                -1
            } else {
                i64::try_from(c.stream_max_mb.saturating_mul(1 << 20)).unwrap_or(i64::MAX)
            },
            duplicate_window: Duration::from_secs(c.duplicate_window_secs),
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        };
        // Create or update: a stream made by an older version gains the metrics subject.
        retry("cannot create the cluster's stream", || {
            js.create_or_update_stream(stream_cfg.clone())
        })
        .await?;
        let stream = retry("cannot open the cluster's stream", || {
            js.get_stream(stream_name.clone())
        })
        .await?;
        let ttl = Duration::from_millis(c.lease_ttl_ms);
        let kv_cfg = kv::Config {
            bucket: format!("{}-cluster", c.prefix),
            history: 1,
            max_age: ttl,
            storage: stream::StorageType::File,
            num_replicas: c.replicas,
            ..Default::default()
        };
        let kv = crate::bucket(&js, kv_cfg, "cannot create the cluster's key-value bucket").await?;
        let url = if c.advertise_url.is_empty() {
            s.api_url.clone()
        } else {
            c.advertise_url.clone()
        };
        let membership = Arc::new(Membership::new(
            node.clone(),
            url,
            c.partitions,
            c.index_replicas,
        ));
        let publisher = Publisher::new(
            js.clone(),
            c.prefix.clone(),
            c.partitions,
            c.max_message_bytes,
            Duration::from_millis(c.publish_timeout_ms),
        );
        let reads = Arc::new(fanout::FanOut {
            membership: membership.clone(),
            client: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))?,
            token: s.query_token.clone(),
            timeout: Duration::from_millis(c.read_timeout_ms),
            rt: tokio::runtime::Handle::current(),
        });
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let inner = Arc::new(Inner {
            membership,
            js: js.clone(),
            cfg: c.clone(),
            stream_name: stream_name.clone(),
            publisher,
            stream: stream.clone(),
            kv,
            read_timeout: Duration::from_millis(c.read_timeout_ms),
            ticked: AtomicBool::new(false),
            stop,
            task: tokio::sync::Mutex::new(None),
            reads,
        });
        let workers = worker::WorkerConfig {
            dir: s.data_dir.join("partitions"),
            stream,
            node,
            prefix: c.prefix.clone(),
            logs: s.logs,
            spans: s.spans,
            commit_interval: s.commit_interval,
            fetch_batch: c.fetch_batch,
            tsdb: s.tsdb,
            deriver: s.deriver,
            derive_interval: s.derive_interval,
        };
        let me = inner.clone();
        let tick = lease::tick_interval(ttl);
        let task = tokio::spawn(async move {
            let mut stop_rx = stop_rx;
            loop {
                me.membership.tick(&me.kv, &workers).await;
                me.ticked.store(true, Ordering::Release);
                tokio::select! {
                    _ = tokio::time::sleep(tick) => {}
                    _ = stop_rx.wait_for(|v| *v) => break,
                }
            }
            me.membership.leave(&me.kv).await;
        });
        *inner.task.lock().await = Some(task);
        tracing::info!(node = %inner.membership.node, partitions = c.partitions, "joined the cluster");
        Ok(Cluster { inner })
    }

    /// The alert engine's outbox and state in JetStream (see [`alerts`]), for the configured
    /// receivers.
    pub async fn alert_store(
        &self,
        receivers: Vec<String>,
        max_pending: usize,
    ) -> Result<skein_alert::shared::Shared, String> {
        let c = &self.inner.cfg;
        alerts::open(
            self.inner.js.clone(),
            alerts::AlertStoreConfig {
                prefix: c.prefix.clone(),
                stream: self.inner.stream_name.clone(),
                node: self.inner.membership.node.clone(),
                replicas: c.replicas,
                receivers,
                max_pending,
                // A notification is one NATS message.
                max_body_bytes: c.max_message_bytes,
                ack_wait: Duration::from_millis(c.lease_ttl_ms),
                timeout: Duration::from_millis(c.publish_timeout_ms),
            },
        )
        .await
    }

    /// Shares heartbeats taken here and merges the others' into `registry` (see [`agents`]).
    pub async fn agent_share(
        &self,
        registry: skein_store::agents::AgentRegistry,
    ) -> Result<agents::AgentShare, String> {
        let c = &self.inner.cfg;
        agents::AgentShare::open(
            &self.inner.js,
            &c.prefix,
            c.replicas,
            registry,
            Duration::from_millis(c.publish_timeout_ms),
        )
        .await
    }

    /// The metric reads of the cluster: every partition's store, plus this node's own `tsdb`
    /// (see [`metrics`]).
    pub fn metric_reads(
        &self,
        tsdb: skein_store::tsdb::Tsdb,
    ) -> Arc<dyn skein_query::metric_reads::MetricReads> {
        Arc::new(metrics::MetricFanOut {
            membership: self.inner.membership.clone(),
            local: tsdb,
            client: self.inner.reads.client.clone(),
            token: self.inner.reads.token.clone(),
            timeout: self.inner.read_timeout,
            rt: tokio::runtime::Handle::current(),
        })
    }

    /// The publisher ingest uses.
    pub fn publisher(&self) -> Publisher {
        self.inner.publisher.clone()
    }

    /// The store reads the query engine uses.
    pub fn reads(&self) -> Arc<dyn Reads> {
        self.inner.reads.clone()
    }

    /// The cluster's routes, for the query API's router.
    pub fn routes(&self) -> axum::Router {
        routes::routes(self.clone())
    }

    /// True once the leases were read and every partition held here caught up.
    pub fn ready(&self) -> bool {
        self.inner.ticked.load(Ordering::Acquire) && self.inner.membership.caught_up()
    }

    /// True while this node holds the alert engine's lease.
    pub fn is_leader(&self) -> bool {
        self.inner.membership.is_leader.load(Ordering::Acquire)
    }

    /// This node's cluster gauges in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let local = self.inner.membership.local();
        let view = self.inner.membership.view();
        let mut out = String::new();
        out.push_str("# HELP skein_cluster_nodes Live nodes in the cluster, as this node last read them.\n# TYPE skein_cluster_nodes gauge\n");
        out.push_str(&format!("skein_cluster_nodes {}\n", view.nodes.len()));
        out.push_str("# HELP skein_cluster_alert_leader Whether this node runs the cluster's alert engine (1) or not (0).\n# TYPE skein_cluster_alert_leader gauge\n");
        out.push_str(&format!(
            "skein_cluster_alert_leader {}\n",
            u8::from(self.is_leader())
        ));
        out.push_str("# HELP skein_cluster_partitions_held Partitions this node indexes.\n# TYPE skein_cluster_partitions_held gauge\n");
        out.push_str(&format!("skein_cluster_partitions_held {}\n", local.len()));
        out.push_str("# HELP skein_cluster_consumer_lag Messages of a partition in the stream that this node has not indexed yet.\n# TYPE skein_cluster_consumer_lag gauge\n");
        for (p, lp) in &local {
            out.push_str(&format!(
                "skein_cluster_consumer_lag{{partition=\"{p}\"}} {}\n",
                lp.lag.load(Ordering::Relaxed)
            ));
        }
        out
    }

    /// Stops indexing (each partition commits) and gives the leases back.
    pub async fn leave(&self) {
        let _ = self.inner.stop.send(true);
        let task = self.inner.task.lock().await.take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}
