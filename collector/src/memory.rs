//! The memory limit (`limits.memory_limit_mb`): a thread samples the process's anonymous
//! resident memory (`RssAnon` in `/proc/self/status`: the heap, without the index files
//! tantivy maps, which the kernel can drop and read again) every [`SAMPLE_EVERY`]. Above the
//! limit, ingest takes one request at a time and refuses the others with 503 and
//! `Retry-After` (gRPC: UNAVAILABLE with retry info) before reading their bodies, until memory
//! is back under [`RESUME_AT_PERCENT`] % of the limit; queries are still answered. The
//! OpenTelemetry Collector's `memory_limiter` refuses the same way. One request at a time
//! rather than none, because the allocator may keep freed memory: refusing everything could
//! then stop ingest for good.
//!
//! What memory holds is bounded by the other limits (bodies in flight, the decoding budget,
//! the two queues, the index writers' `index.writer_memory_mb`); this is the backstop for
//! what they do not count: allocator slack, merges, the sum of everything at once. The
//! configuration check makes sure the parts that are known ahead fit under it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How often memory is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Ingest resumes under this share of the limit.
pub const RESUME_AT_PERCENT: u64 = 90;

/// The limit's state. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MemoryLimit {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit_bytes: u64,
    over: AtomicBool,
    last_bytes: AtomicU64,
}

/// The process's anonymous resident memory in bytes, where the system says (Linux).
pub fn anon_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_kib(&status, "RssAnon:").map(|k| k * 1024)
}

fn parse_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

impl MemoryLimit {
    /// A limit of `limit_mb` MiB; 0 turns it off. Starts the sampling thread when on and the
    /// system reports memory.
    pub fn start(limit_mb: u64) -> MemoryLimit {
        let m = MemoryLimit {
            inner: Arc::new(Inner {
                limit_bytes: limit_mb.saturating_mul(1024 * 1024),
                over: AtomicBool::new(false),
                last_bytes: AtomicU64::new(0),
            }),
        };
        if limit_mb > 0 && anon_rss_bytes().is_some() {
            let weak = Arc::downgrade(&m.inner);
            let spawned = std::thread::Builder::new()
                .name("skein-memory".into())
                .spawn(move || {
                    // Ends when the last clone of the limit is dropped.
                    while let Some(inner) = weak.upgrade() {
                        if let Some(b) = anon_rss_bytes() {
                            inner.observe(b);
                        }
                        drop(inner);
                        std::thread::sleep(SAMPLE_EVERY);
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the memory sampler; limits.memory_limit_mb is not enforced");
            }
        } else if limit_mb > 0 {
            tracing::warn!(
                "this system does not report RssAnon; limits.memory_limit_mb is not enforced"
            );
        }
        m
    }

    /// True while ingest must refuse.
    pub fn over(&self) -> bool {
        self.inner.over.load(Ordering::Relaxed)
    }

    /// The last sample, in bytes (0 before the first).
    pub fn last_bytes(&self) -> u64 {
        self.inner.last_bytes.load(Ordering::Relaxed)
    }

    /// The limit in MiB.
    pub fn limit_mb(&self) -> u64 {
        self.inner.limit_bytes >> 20
    }

    /// Takes a sample (the thread's work; tests call it directly).
    pub fn observe(&self, bytes: u64) {
        self.inner.observe(bytes);
    }
}

impl Inner {
    fn observe(&self, bytes: u64) {
        self.last_bytes.store(bytes, Ordering::Relaxed);
        if self.limit_bytes == 0 {
            return;
        }
        let was = self.over.load(Ordering::Relaxed);
        let now = if was {
            bytes > self.limit_bytes / 100 * RESUME_AT_PERCENT
        } else {
            bytes > self.limit_bytes
        };
        if now != was {
            self.over.store(now, Ordering::Relaxed);
            if now {
                tracing::warn!(
                    rss_anon_mb = bytes >> 20,
                    limit_mb = self.limit_bytes >> 20,
                    "over the memory limit (limits.memory_limit_mb): ingest answers 503 until memory is back under {RESUME_AT_PERCENT} %"
                );
            } else {
                tracing::info!(
                    rss_anon_mb = bytes >> 20,
                    "back under the memory limit: ingest resumes"
                );
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn refuses_over_the_limit_and_resumes_under_ninety_percent() {
        let m = MemoryLimit {
            inner: Arc::new(Inner {
                limit_bytes: 1000 * 1024 * 1024,
                over: AtomicBool::new(false),
                last_bytes: AtomicU64::new(0),
            }),
        };
        let mib = |n: u64| n * 1024 * 1024;
        m.observe(mib(999));
        assert!(!m.over());
        m.observe(mib(1001));
        assert!(m.over());
        // Between 90 % and the limit it stays refusing: no flapping at the edge.
        m.observe(mib(950));
        assert!(m.over());
        m.observe(mib(899));
        assert!(!m.over());
        assert_eq!(m.last_bytes(), mib(899));
    }

    #[test]
    fn zero_is_off_and_the_status_file_parses() {
        let m = MemoryLimit::start(0);
        m.observe(u64::MAX);
        assert!(!m.over());
        let status = "Name:\tskein\nVmRSS:\t  812 kB\nRssAnon:\t  5120 kB\nRssFile:\t 100 kB\n";
        assert_eq!(parse_kib(status, "RssAnon:"), Some(5120));
        assert_eq!(parse_kib(status, "Missing:"), None);
        if cfg!(target_os = "linux") {
            assert!(anon_rss_bytes().unwrap() > 0);
        }
    }
}
