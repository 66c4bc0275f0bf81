//! What the alert engine shares with the other nodes of a cluster.
//!
//! On one node the outbox is a directory and the state a file. In a cluster the node that
//! makes a notification may die before it is delivered, and the next alert leader must carry
//! on from the same states and notification groups. The cluster crate implements these two
//! seams over NATS JetStream (a work-queue stream and a key-value bucket); this crate only
//! knows the traits, so it keeps no dependency on NATS.
//!
//! Every method that may wait on the network is blocking and is called only from blocking
//! threads (`tokio::task::spawn_blocking`). The others read memory.

use crate::outbox::{FailedNotification, Notification};
use std::io;
use std::sync::Arc;
use tokio::sync::Notify;

/// A queue of notifications shared by the nodes. One node at a time holds a receiver's
/// oldest notification (peeked, not yet done or failed); when that node dies, another one
/// gets it after a timeout, so a notification survives the node that made it. Delivery is
/// at least once: a node that dies after the receiver answered but before `done` leaves the
/// notification to be sent again, with the same id as its `Idempotency-Key`.
pub trait RemoteOutbox: Send + Sync {
    /// Queues a body for a receiver and waits until the queue has it; the notification id.
    fn push(&self, receiver: &str, body: serde_json::Value) -> io::Result<String>;
    /// The receiver's oldest notification, held by this node until `done` or `fail`.
    fn peek(&self, receiver: &str) -> io::Result<Option<Notification>>;
    /// Removes a delivered notification.
    fn done(&self, receiver: &str, id: &str) -> io::Result<()>;
    /// Removes a notification that will not be delivered, keeping it in the failed list.
    fn fail(&self, receiver: &str, id: &str, reason: &str) -> io::Result<()>;
    /// Records one more delivery attempt of the held notification.
    fn attempted(&self, receiver: &str, id: &str) -> io::Result<()>;
    /// Largest body `push` takes, in bytes of JSON.
    fn max_body_bytes(&self) -> usize;
    /// Pending notifications of a receiver as last seen (memory only).
    fn pending(&self, receiver: &str) -> usize;
    /// Failed notifications, newest first, at most `limit`, as last seen (memory only).
    fn failed(&self, receiver: &str, limit: usize) -> Vec<FailedNotification>;
    /// Signalled when a receiver's queue may have something for this node.
    fn notified(&self, receiver: &str) -> Arc<Notify>;
}

/// Key of the alert states and notification groups, written by the leader.
pub const STATE_KEY: &str = "state";
/// Key of the silences, changed by any node's API.
pub const SILENCES_KEY: &str = "silences";

/// A change of a shared value: the current value (if any) to the new one, or `None` to
/// leave it.
pub type Modify<'a> = dyn FnMut(Option<&[u8]>) -> Option<Vec<u8>> + 'a;

/// Values kept where every node reads them: the engine's state ([`STATE_KEY`]) and the
/// silences ([`SILENCES_KEY`]).
pub trait SharedState: Send + Sync {
    /// The last saved value of a key, if any.
    fn load(&self, key: &str) -> io::Result<Option<Vec<u8>>>;
    /// Saves a value.
    fn save(&self, key: &str, bytes: &[u8]) -> io::Result<()>;
    /// Read-modify-write with compare-and-set: `f` gets the current value and gives the new
    /// one (or `None` to leave it); when another node wrote in between, `f` runs again on
    /// the newer value.
    fn modify(&self, key: &str, f: &mut Modify<'_>) -> io::Result<()>;
}

/// Both seams, handed to [`crate::AlertEngine::open_shared`].
#[derive(Clone)]
pub struct Shared {
    /// The notification queue.
    pub outbox: Arc<dyn RemoteOutbox>,
    /// The state.
    pub state: Arc<dyn SharedState>,
}
