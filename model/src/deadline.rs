//! The deadline of the query running on this thread. The query API sets it
//! ([`with_deadline`]) on the blocking thread that runs a query; the store's read loops
//! ([`expired`]) give up once it has passed, so a query past its time limit stops its work
//! instead of running on after its client got a 503.
//!
//! A thread-local, not a parameter: every store read path would otherwise carry it, and work
//! on one query never leaves its thread (tantivy searches segments on the calling thread).

use std::cell::Cell;
use std::time::Instant;

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` with `deadline` as this thread's deadline, then puts the previous one back.
pub fn with_deadline<T>(deadline: Instant, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEADLINE.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(DEADLINE.with(|d| d.replace(Some(deadline))));
    f()
}

/// This thread's deadline, if one is set (a read sent to another node carries what is left).
pub fn current() -> Option<Instant> {
    DEADLINE.with(|d| d.get())
}

/// Whether this thread's deadline has passed. False when none is set.
pub fn expired() -> bool {
    DEADLINE
        .with(|d| d.get())
        .is_some_and(|d| Instant::now() >= d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn set_for_the_call_only_and_nested_calls_restore() {
        assert!(!expired());
        let past = Instant::now();
        let later = Instant::now() + Duration::from_secs(3600);
        with_deadline(past, || {
            assert!(expired());
            with_deadline(later, || assert!(!expired()));
            assert!(expired());
        });
        assert!(!expired());
        // Other threads do not see it.
        with_deadline(past, || {
            let other = std::thread::spawn(expired).join().unwrap_or(true);
            assert!(!other);
        });
    }
}
