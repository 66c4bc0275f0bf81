//! A map that keeps at most a fixed number of entries, evicting the oldest.

use std::collections::{HashMap, VecDeque};

/// String-keyed map holding at most `cap` entries; inserting past that evicts the entry
/// inserted longest ago. Its insertion log holds at most `2 * cap + 1` keys.
#[derive(Debug)]
pub(crate) struct BoundedMap<V> {
    cap: usize,
    map: HashMap<String, (u64, V)>,
    /// Keys in insertion order with the sequence number they were inserted under; keys
    /// removed or re-inserted since stay here until skipped or compacted.
    log: VecDeque<(String, u64)>,
    next: u64,
}

impl<V> BoundedMap<V> {
    /// An empty map keeping at most `cap` (at least 1) entries.
    pub(crate) fn new(cap: usize) -> BoundedMap<V> {
        BoundedMap {
            cap: cap.max(1),
            map: HashMap::new(),
            log: VecDeque::new(),
            next: 0,
        }
    }

    /// The value under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key).map(|(_, v)| v)
    }

    /// The value under `key`, to change in place (keeps its age).
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.map.get_mut(key).map(|(_, v)| v)
    }

    /// Whether `key` is present.
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Inserts or replaces `key` (it becomes the newest), evicting the oldest if full.
    pub(crate) fn insert(&mut self, key: String, value: V) {
        let seq = self.next;
        self.next += 1;
        self.log.push_back((key.clone(), seq));
        self.map.insert(key, (seq, value));
        while self.map.len() > self.cap {
            let Some((old, old_seq)) = self.log.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|(s, _)| *s == old_seq) {
                self.map.remove(&old);
            }
        }
        if self.log.len() > 2 * self.cap {
            let map = &self.map;
            self.log
                .retain(|(k, s)| map.get(k).is_some_and(|(live, _)| live == s));
        }
    }

    /// Removes `key`, giving back its value.
    pub(crate) fn remove(&mut self, key: &str) -> Option<V> {
        self.map.remove(key).map(|(_, v)| v)
    }

    /// Number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Length of the insertion log.
    #[cfg(test)]
    fn log_len(&self) -> usize {
        self.log.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_oldest_and_stays_bounded() {
        let mut m = BoundedMap::new(3);
        for i in 0..5 {
            m.insert(format!("k{i}"), i);
        }
        assert_eq!(m.len(), 3);
        assert!(!m.contains("k0") && !m.contains("k1"));
        assert_eq!(m.get("k4"), Some(&4));
        // Re-inserting makes a key the newest.
        m.insert("k2".into(), 20);
        m.insert("k5".into(), 5);
        assert!(m.contains("k2") && !m.contains("k3"));
        // Churn through insert and remove keeps the log bounded; the first insert of "x"
        // evicted the oldest entry, k4.
        for i in 0..1000 {
            m.insert("x".into(), i);
            m.remove("x");
            assert!(m.log_len() <= 2 * 3 + 1);
        }
        assert_eq!(m.len(), 2);
        assert!(m.contains("k2") && m.contains("k5"));
        if let Some(v) = m.get_mut("k5") {
            *v = 50;
        }
        assert_eq!(m.remove("k5"), Some(50));
    }
}
