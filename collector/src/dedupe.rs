//! The window of batch ids the collector has stored ([`skein_model::batch_id`]), so a sender
//! that retries a batch it already had acknowledged (the agent after a `kill -9`, which loses
//! up to a second of acknowledgements) gets 2xx without the batch being stored twice.
//!
//! An id is claimed before its batch is written: a second request with the same id while the
//! first is being written gets "retry later"; once the WAL holds the batch the id is kept as
//! stored. Ids leave the window after `limits.dedupe_window_secs` or when it holds
//! `limits.dedupe_max_ids`, oldest first. The WAL holds each stored id next to its batch, and
//! start-up puts the ids of every WAL segment still on disk back into the window.

use skein_model::batch_id::BatchId;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bytes of memory one id costs in the window, about (for the documentation of the limit).
pub const BYTES_PER_ID: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Writing,
    Stored,
}

struct Inner {
    ids: HashMap<BatchId, State>,
    /// Stored ids in the order they were stored or restored, with when. Ids being written
    /// are not in it: they are bounded by the requests in flight and leave with their claim.
    order: VecDeque<(Instant, BatchId)>,
}

/// The window. Cheap to clone.
#[derive(Clone)]
pub struct Seen {
    inner: Arc<Mutex<Inner>>,
    window: Duration,
    max_ids: usize,
}

/// What a claim found.
#[derive(Debug)]
pub enum Claim {
    /// A new id: write the batch, then call [`Claimed::stored`]. Dropping it without that
    /// (the write failed) lets a retry in.
    New(Claimed),
    /// Stored already: answer as if taken, store nothing.
    Stored,
    /// Another request with this id is being written: answer "retry later".
    Writing,
}

/// An id being written.
#[derive(Debug)]
pub struct Claimed {
    seen: Option<Seen>,
    id: BatchId,
}

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seen")
            .field("window", &self.window)
            .field("max_ids", &self.max_ids)
            .finish()
    }
}

impl Seen {
    /// An empty window of `window` and at most `max_ids` ids (at least one).
    pub fn new(window: Duration, max_ids: usize) -> Seen {
        Seen {
            inner: Arc::new(Mutex::new(Inner {
                ids: HashMap::new(),
                order: VecDeque::new(),
            })),
            window,
            max_ids: max_ids.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The lock guards plain maps; a panic elsewhere leaves them consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops stored ids past the window or over the count, oldest first.
    fn expire(&self, g: &mut Inner, now: Instant) {
        while let Some((at, _)) = g.order.front() {
            let old = now.saturating_duration_since(*at) > self.window;
            if !old && g.order.len() <= self.max_ids {
                break;
            }
            if let Some((_, id)) = g.order.pop_front()
                && g.ids.get(&id) == Some(&State::Stored)
            {
                g.ids.remove(&id);
            }
        }
    }

    /// Claims `id` for a write.
    pub fn claim(&self, id: &BatchId) -> Claim {
        let now = Instant::now();
        let mut g = self.lock();
        self.expire(&mut g, now);
        match g.ids.get(id) {
            Some(State::Stored) => Claim::Stored,
            Some(State::Writing) => Claim::Writing,
            None => {
                g.ids.insert(id.clone(), State::Writing);
                Claim::New(Claimed {
                    seen: Some(self.clone()),
                    id: id.clone(),
                })
            }
        }
    }

    /// Puts back an id read from the WAL at start-up.
    pub fn restore(&self, id: BatchId) {
        let now = Instant::now();
        let mut g = self.lock();
        if g.ids.insert(id.clone(), State::Stored).is_none() {
            g.order.push_back((now, id));
        }
        self.expire(&mut g, now);
    }

    /// Ids in the window (stored or being written).
    pub fn len(&self) -> usize {
        self.lock().ids.len()
    }

    /// True when the window holds no id.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Claimed {
    /// The id.
    pub fn id(&self) -> &BatchId {
        &self.id
    }

    /// The batch is in the WAL: keep the id as stored.
    pub fn stored(mut self) {
        if let Some(seen) = self.seen.take() {
            let mut g = seen.lock();
            if let Some(s) = g.ids.get_mut(&self.id)
                && *s == State::Writing
            {
                *s = State::Stored;
                g.order.push_back((Instant::now(), self.id.clone()));
            }
        }
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        if let Some(seen) = self.seen.take() {
            let mut g = seen.lock();
            if g.ids.get(&self.id) == Some(&State::Writing) {
                g.ids.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn id(s: &str) -> BatchId {
        BatchId::parse(s).unwrap()
    }

    #[test]
    fn a_stored_id_is_answered_as_stored_and_a_failed_write_lets_the_retry_in() {
        let seen = Seen::new(Duration::from_secs(60), 100);
        let Claim::New(c) = seen.claim(&id("a.1")) else {
            panic!("first claim")
        };
        assert!(matches!(seen.claim(&id("a.1")), Claim::Writing));
        c.stored();
        assert!(matches!(seen.claim(&id("a.1")), Claim::Stored));

        let Claim::New(c) = seen.claim(&id("a.2")) else {
            panic!("first claim")
        };
        drop(c); // the write failed
        assert!(matches!(seen.claim(&id("a.2")), Claim::New(_)));
    }

    #[test]
    fn ids_leave_by_count_and_by_age() {
        let seen = Seen::new(Duration::from_secs(60), 2);
        for n in 0..3 {
            let Claim::New(c) = seen.claim(&id(&format!("b.{n}"))) else {
                panic!("new")
            };
            c.stored();
        }
        // b.0 went when b.2 came in (two at most); its retry is new again.
        assert!(matches!(seen.claim(&id("b.2")), Claim::Stored));
        assert!(matches!(seen.claim(&id("b.0")), Claim::New(_)));

        let short = Seen::new(Duration::from_millis(20), 100);
        short.restore(id("c.1"));
        assert!(matches!(short.claim(&id("c.1")), Claim::Stored));
        std::thread::sleep(Duration::from_millis(40));
        assert!(matches!(short.claim(&id("c.1")), Claim::New(_)));
    }

    #[test]
    fn an_id_being_written_is_not_expired_under_it() {
        let seen = Seen::new(Duration::from_millis(1), 1);
        let Claim::New(c) = seen.claim(&id("d.1")) else {
            panic!("new")
        };
        std::thread::sleep(Duration::from_millis(5));
        let Claim::New(other) = seen.claim(&id("d.2")) else {
            panic!("new")
        };
        other.stored();
        // Expiry ran while d.1 was being written: it stays until its claim ends.
        assert!(matches!(seen.claim(&id("d.1")), Claim::Writing));
        c.stored();
        assert!(matches!(seen.claim(&id("d.1")), Claim::Stored));
        // Only stored ids count towards the limit: d.2 made room for d.1.
        assert_eq!(seen.len(), 1);
    }
}
