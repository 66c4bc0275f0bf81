//! The alert engine's outbox and state in JetStream, shared by every node, so a
//! notification survives the death of the node that made it and the next alert leader
//! carries on from the same alert states and notification groups.
//!
//! - Stream `<STREAM>_OUTBOX` (work-queue retention), subject
//!   `<prefix>.outbox.<receiver in hex>`: one message per notification, its id as
//!   `Nats-Msg-Id` (a push retried after a lost ack is stored once). At most
//!   `alerts.outbox_max_pending` per receiver: the oldest is dropped first.
//! - One durable pull consumer per receiver, `outbox-<receiver in hex>`, shared by the
//!   nodes, with at most one message unacknowledged: one node at a time holds a receiver's
//!   oldest notification, and notifications go out in order. The holder tells the server
//!   "in progress" every second while it sends and waits between retries. A node that dies
//!   stops doing so; after `ack_wait` (the lease TTL) the server gives the message to the next
//!   node that asks. `done` and `fail` acknowledge it, which removes it from the stream.
//!   Delivery is at least once: a node killed after the receiver answered but before the
//!   acknowledgement leaves the notification to be sent again, with the same id as its
//!   `Idempotency-Key`.
//! - Bucket `<prefix>-alerts` (no expiry): `state` (the engine's states and groups, written
//!   by the leader, read by the others every 2 s) and `failed.<receiver in hex>` (the last
//!   [`MAX_FAILED_KEPT`] notifications given up).

use async_nats::jetstream::consumer::{AckPolicy, Consumer, DeliverPolicy, pull};
use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use futures::StreamExt;
use skein_alert::outbox::{FailedNotification, Notification};
use skein_alert::shared::{Modify, RemoteOutbox, Shared, SharedState};
use skein_model::time::now_ms;
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::Notify;

/// Failed notifications kept per receiver in the bucket.
pub const MAX_FAILED_KEPT: usize = 50;
/// How often a held notification is reported in progress, and queues are looked at.
const TICK: Duration = Duration::from_secs(1);
/// Longest a fetch waits for a message of a receiver.
const FETCH_WAIT: Duration = Duration::from_millis(500);

/// What [`open`] needs.
pub struct AlertStoreConfig {
    /// Names the subjects and the bucket.
    pub prefix: String,
    /// Name of the cluster's stream (the outbox stream is `<stream>_OUTBOX`).
    pub stream: String,
    /// This node (part of notification ids).
    pub node: String,
    /// Copies on NATS servers.
    pub replicas: usize,
    /// Configured receivers.
    pub receivers: Vec<String>,
    /// Pending notifications kept per receiver.
    pub max_pending: usize,
    /// Largest notification body, in bytes of JSON.
    pub max_body_bytes: usize,
    /// Time after which a notification held by a silent node goes to another one.
    pub ack_wait: Duration,
    /// Time one call to NATS may take.
    pub timeout: Duration,
}

struct Held {
    reply: String,
    n: Notification,
}

struct Rx {
    subject: String,
    failed_key: String,
    consumer: Consumer<pull::Config>,
    notify: Arc<Notify>,
    held: Mutex<Option<Held>>,
    pending: AtomicUsize,
    failed: Mutex<Vec<FailedNotification>>,
}

struct Store {
    rt: Handle,
    client: async_nats::Client,
    js: jetstream::Context,
    kv: kv::Store,
    node: String,
    boot: u64,
    seq: AtomicU64,
    max_body: usize,
    timeout: Duration,
    receivers: BTreeMap<String, Rx>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn net(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// Makes sure the outbox stream, the receivers' consumers and the bucket exist; the two
/// seams the alert engine takes.
pub async fn open(js: jetstream::Context, cfg: AlertStoreConfig) -> Result<Shared, String> {
    let stream_cfg = stream::Config {
        name: format!("{}_OUTBOX", cfg.stream),
        subjects: vec![format!("{}.outbox.*", cfg.prefix)],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        max_messages_per_subject: i64::try_from(cfg.max_pending.max(1)).unwrap_or(i64::MAX),
        discard: stream::DiscardPolicy::Old,
        duplicate_window: Duration::from_secs(600),
        ..Default::default()
    };
    let stream = crate::retry("cannot create the alert outbox stream", || {
        js.get_or_create_stream(stream_cfg.clone())
    })
    .await?;
    let kv_cfg = kv::Config {
        bucket: format!("{}-alerts", cfg.prefix),
        history: 1,
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        ..Default::default()
    };
    let kv = crate::bucket(&js, kv_cfg, "cannot create the alert bucket").await?;
    let mut receivers = BTreeMap::new();
    for name in &cfg.receivers {
        let h = hex(name);
        let subject = format!("{}.outbox.{h}", cfg.prefix);
        let consumer_cfg = pull::Config {
            durable_name: Some(format!("outbox-{h}")),
            filter_subject: subject.clone(),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: cfg.ack_wait,
            max_ack_pending: 1,
            ..Default::default()
        };
        let consumer = crate::retry("cannot create an alert receiver's consumer", || {
            stream.create_consumer(consumer_cfg.clone())
        })
        .await?;
        receivers.insert(
            name.clone(),
            Rx {
                subject,
                failed_key: format!("failed.{h}"),
                consumer,
                notify: Arc::new(Notify::new()),
                held: Mutex::new(None),
                pending: AtomicUsize::new(0),
                failed: Mutex::new(Vec::new()),
            },
        );
    }
    let store = Arc::new(Store {
        rt: Handle::current(),
        client: js.client(),
        js,
        kv,
        node: cfg.node,
        boot: u64::try_from(now_ms()).unwrap_or(0),
        seq: AtomicU64::new(0),
        max_body: cfg.max_body_bytes,
        timeout: cfg.timeout,
        receivers,
    });
    tokio::spawn(tick(Arc::downgrade(&store)));
    Ok(Shared {
        outbox: store.clone(),
        state: store,
    })
}

/// Every second, while the store lives: tells the server that held notifications are in
/// progress, reads the queues' sizes, wakes delivery when a queue has something, and now
/// and then reads the failed lists.
async fn tick(store: Weak<Store>) {
    let mut round: u64 = 0;
    loop {
        tokio::time::sleep(TICK).await;
        let Some(s) = store.upgrade() else {
            return;
        };
        for rx in s.receivers.values() {
            let reply = lock(&rx.held).as_ref().map(|h| h.reply.clone());
            if let Some(reply) = &reply {
                let _ = s
                    .client
                    .publish(reply.clone(), Bytes::from_static(b"+WPI"))
                    .await;
            }
            if let Ok(Ok(info)) = tokio::time::timeout(s.timeout, rx.consumer.get_info()).await {
                let n = usize::try_from(info.num_pending)
                    .unwrap_or(usize::MAX)
                    .saturating_add(info.num_ack_pending);
                rx.pending.store(n, Ordering::Relaxed);
                // Held elsewhere counts too: that node may be dead, and after `ack_wait`
                // the next fetch here gets the message.
                if n > 0 && reply.is_none() {
                    rx.notify.notify_one();
                }
            }
            if round.is_multiple_of(5) {
                let got = tokio::time::timeout(s.timeout, s.kv.get(rx.failed_key.clone())).await;
                if let Ok(Ok(Some(b))) = got
                    && let Ok(list) = serde_json::from_slice::<Vec<FailedNotification>>(&b)
                {
                    *lock(&rx.failed) = list;
                }
            }
        }
        round += 1;
    }
}

impl Store {
    fn rx(&self, receiver: &str) -> io::Result<&Rx> {
        self.receivers.get(receiver).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("alert receiver {receiver:?} is not configured"),
            )
        })
    }

    /// Runs a NATS call on the runtime from a blocking thread, within the timeout.
    fn wait<T, E: std::fmt::Display>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, E>>,
    ) -> io::Result<T> {
        // The timer is made inside the runtime, whatever thread this is.
        match self
            .rt
            .block_on(async { tokio::time::timeout(self.timeout, f).await })
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(net(what, e)),
            Err(_) => Err(net(what, format!("no answer within {:?}", self.timeout))),
        }
    }

    /// Acknowledges a held message and waits for the server to confirm.
    fn ack(&self, reply: String) -> io::Result<()> {
        self.wait(
            "cannot acknowledge a notification",
            self.client.request(reply, Bytes::from_static(b"+ACK")),
        )
        .map(|_| ())
    }

    /// Takes the held notification of `id` off the receiver.
    fn take(&self, rx: &Rx, id: &str) -> Option<Held> {
        let mut held = lock(&rx.held);
        if held.as_ref().is_some_and(|h| h.n.id == id) {
            held.take()
        } else {
            None
        }
    }
}

impl RemoteOutbox for Store {
    fn push(&self, receiver: &str, body: serde_json::Value) -> io::Result<String> {
        let rx = self.rx(receiver)?;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let n = Notification {
            id: format!("{}-{:x}-{seq}", self.node, self.boot),
            receiver: receiver.to_string(),
            created_ms: now_ms(),
            attempts: 0,
            body,
        };
        let bytes = serde_json::to_vec(&n)?;
        let msg = jetstream::message::PublishMessage::build()
            .payload(Bytes::from(bytes))
            .message_id(&n.id);
        self.wait("cannot queue a notification in the cluster", async {
            let ack = self
                .js
                .send_publish(rx.subject.clone(), msg)
                .await
                .map_err(|e| e.to_string())?;
            ack.await.map_err(|e| e.to_string())
        })?;
        rx.notify.notify_one();
        Ok(n.id)
    }

    fn peek(&self, receiver: &str) -> io::Result<Option<Notification>> {
        let Ok(rx) = self.rx(receiver) else {
            return Ok(None);
        };
        if let Some(h) = lock(&rx.held).as_ref() {
            return Ok(Some(h.n.clone()));
        }
        // A message that does not decode is ended (+TERM) and the next one read; a bounded
        // number of them per call.
        for _ in 0..16 {
            let got = self.wait("cannot read the alert outbox", async {
                let mut batch = rx
                    .consumer
                    .fetch()
                    .max_messages(1)
                    .expires(FETCH_WAIT)
                    .messages()
                    .await
                    .map_err(|e| e.to_string())?;
                batch.next().await.transpose().map_err(|e| e.to_string())
            })?;
            let Some(m) = got else {
                return Ok(None);
            };
            let Some(reply) = m.reply.as_ref().map(|r| r.to_string()) else {
                continue;
            };
            match serde_json::from_slice::<Notification>(&m.payload) {
                Ok(n) => {
                    *lock(&rx.held) = Some(Held {
                        reply,
                        n: n.clone(),
                    });
                    return Ok(Some(n));
                }
                Err(e) => {
                    tracing::warn!(receiver, error = %e, "alert outbox: a message that is not a notification was dropped");
                    let _ = self.wait(
                        "cannot end a bad message",
                        self.client.publish(reply, Bytes::from_static(b"+TERM")),
                    );
                }
            }
        }
        Ok(None)
    }

    fn done(&self, receiver: &str, id: &str) -> io::Result<()> {
        let rx = self.rx(receiver)?;
        match self.take(rx, id) {
            Some(h) => self.ack(h.reply),
            None => Ok(()),
        }
    }

    fn fail(&self, receiver: &str, id: &str, reason: &str) -> io::Result<()> {
        let rx = self.rx(receiver)?;
        let Some(h) = self.take(rx, id) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("notification {id} is not held here"),
            ));
        };
        let record = FailedNotification {
            id: h.n.id.clone(),
            created_ms: h.n.created_ms,
            failed_ms: now_ms(),
            attempts: h.n.attempts,
            reason: reason.to_string(),
        };
        let mut list = self
            .wait(
                "cannot read the failed notifications",
                self.kv.get(rx.failed_key.clone()),
            )
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice::<Vec<FailedNotification>>(&b).ok())
            .unwrap_or_default();
        list.insert(0, record);
        list.truncate(MAX_FAILED_KEPT);
        let bytes = Bytes::from(serde_json::to_vec(&list)?);
        if let Err(e) = self.wait(
            "cannot save the failed notifications",
            self.kv.put(rx.failed_key.clone(), bytes),
        ) {
            tracing::warn!(receiver, error = %e, "the failed notification is only logged");
        }
        *lock(&rx.failed) = list;
        self.ack(h.reply)
    }

    fn attempted(&self, receiver: &str, id: &str) -> io::Result<()> {
        let rx = self.rx(receiver)?;
        let mut held = lock(&rx.held);
        match held.as_mut() {
            Some(h) if h.n.id == id => {
                h.n.attempts = h.n.attempts.saturating_add(1);
                Ok(())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("notification {id} is not held here"),
            )),
        }
    }

    fn max_body_bytes(&self) -> usize {
        self.max_body
    }

    fn pending(&self, receiver: &str) -> usize {
        self.receivers
            .get(receiver)
            .map_or(0, |rx| rx.pending.load(Ordering::Relaxed))
    }

    fn failed(&self, receiver: &str, limit: usize) -> Vec<FailedNotification> {
        self.receivers.get(receiver).map_or_else(Vec::new, |rx| {
            lock(&rx.failed).iter().take(limit).cloned().collect()
        })
    }

    fn notified(&self, receiver: &str) -> Arc<Notify> {
        self.receivers
            .get(receiver)
            .map_or_else(|| Arc::new(Notify::new()), |rx| rx.notify.clone())
    }
}

impl Store {
    fn fits(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        if bytes.len() > self.max_body {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the alert {key} is {} bytes, more than one NATS message may be ({})",
                    bytes.len(),
                    self.max_body
                ),
            ));
        }
        Ok(())
    }
}

/// Attempts of a compare-and-set before giving up.
const CAS_ATTEMPTS: usize = 10;

impl SharedState for Store {
    fn load(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        self.wait("cannot read the shared alert state", self.kv.get(key))
            .map(|v| v.map(|b| b.to_vec()))
    }

    fn save(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        self.fits(key, bytes)?;
        self.wait(
            "cannot save the shared alert state",
            self.kv.put(key, Bytes::copy_from_slice(bytes)),
        )
        .map(|_| ())
    }

    fn modify(&self, key: &str, f: &mut Modify<'_>) -> io::Result<()> {
        let mut last = None;
        for _ in 0..CAS_ATTEMPTS {
            let entry = self.wait("cannot read the shared alert state", self.kv.entry(key))?;
            let (current, revision) = match &entry {
                Some(e) if e.operation == kv::Operation::Put => {
                    (Some(e.value.clone()), Some(e.revision))
                }
                Some(e) => (None, Some(e.revision)),
                None => (None, None),
            };
            let Some(new) = f(current.as_deref()) else {
                return Ok(());
            };
            self.fits(key, &new)?;
            let written = match revision {
                Some(r) => self
                    .wait(
                        "cannot change the shared alert state",
                        self.kv.update(key, Bytes::from(new), r),
                    )
                    .map(|_| ()),
                None => self
                    .wait(
                        "cannot change the shared alert state",
                        self.kv.create(key, Bytes::from(new)),
                    )
                    .map(|_| ()),
            };
            match written {
                Ok(()) => return Ok(()),
                // Another node wrote in between (or the server was busy): read again.
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("compare-and-set failed")))
    }
}
