//! A log file that takes whole lines and rotates itself when it grows too big. When another
//! program renames the file away (logrotate's `create` mode), the next line after a short
//! check interval goes to a new file at the path.

use crate::DemoError;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Size past which a service's log file is rotated, in bytes (64 MiB).
pub(crate) const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;

/// How often the path is checked for a rename by another program (one `stat` each time).
const RENAME_CHECK: Duration = Duration::from_millis(100);

/// A shared handle to one rotating log file.
#[derive(Clone, Debug)]
pub(crate) struct LogFile {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    /// `None` after a failed reopen; the next line tries again.
    file: Option<File>,
    /// Bytes in the current file.
    size: u64,
    max_bytes: u64,
    /// Device and inode of the open file, to notice a rename by another program.
    id: Option<(u64, u64)>,
    /// When the path was last checked against `id`.
    checked: Instant,
    /// How often to check (shorter in tests).
    check_every: Duration,
}

impl LogFile {
    /// Opens `path` for appending (creating it and its parents). When a line would take it
    /// past `max_bytes`, the file is renamed to `<path>.1` (replacing an older one) and a new
    /// file is started.
    pub(crate) fn open(path: &Path, max_bytes: u64) -> Result<LogFile, DemoError> {
        let fail = |source| DemoError::LogFile {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let file = open_append(path).map_err(fail)?;
        let meta = file.metadata().map_err(fail)?;
        Ok(LogFile {
            inner: Arc::new(Mutex::new(Inner {
                path: path.to_path_buf(),
                file: Some(file),
                size: meta.len(),
                max_bytes,
                id: Some((meta.dev(), meta.ino())),
                checked: Instant::now(),
                check_every: RENAME_CHECK,
            })),
        })
    }

    /// Appends one line (the newline is added here) with a single write, so a reader tailing
    /// the file never sees half a line. Write errors are dropped: logging must not stop the
    /// service.
    pub(crate) fn write_line(&self, line: &str) {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        let mut inner = self.lock();
        let len = buf.len() as u64;
        if inner.checked.elapsed() >= inner.check_every {
            inner.checked = Instant::now();
            if inner.renamed_away() {
                inner.reopen();
            }
        }
        if inner.size > 0 && inner.size.saturating_add(len) > inner.max_bytes {
            inner.rotate();
        }
        if inner.file.is_none() {
            inner.reopen();
        }
        if let Some(file) = inner.file.as_mut()
            && file.write_all(&buf).is_ok()
        {
            inner.size = inner.size.saturating_add(len);
        }
    }

    /// Pushes written lines to disk.
    pub(crate) fn flush(&self) {
        if let Some(file) = self.lock().file.as_mut() {
            let _ = file.flush();
            let _ = file.sync_data();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves at worst a short line; keep logging.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    fn rotate(&mut self) {
        self.file = None;
        let mut old = OsString::from(self.path.as_os_str());
        old.push(".1");
        let _ = std::fs::rename(&self.path, PathBuf::from(old));
        self.reopen();
    }

    fn reopen(&mut self) {
        if let Ok(file) = open_append(&self.path) {
            let meta = file.metadata().ok();
            self.size = meta.as_ref().map_or(0, |m| m.len());
            self.id = meta.map(|m| (m.dev(), m.ino()));
            self.file = Some(file);
        }
    }

    /// True when the path no longer names the open file (renamed or deleted by another
    /// program). A failed `stat` for another reason keeps the file.
    fn renamed_away(&self) -> bool {
        match std::fs::metadata(&self.path) {
            Ok(m) => self.id != Some((m.dev(), m.ino())),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn creates_parents_and_appends_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/svc.log");
        let log = LogFile::open(&path, MAX_LOG_BYTES).unwrap();
        log.write_line("one");
        log.write_line("two");
        drop(log);
        let log = LogFile::open(&path, MAX_LOG_BYTES).unwrap();
        log.write_line("three");
        log.flush();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\nthree\n");
    }

    #[test]
    fn rotates_past_the_limit_and_replaces_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.log");
        let old = dir.path().join("svc.log.1");
        let log = LogFile::open(&path, 10).unwrap();
        log.write_line("aaaa"); // 5 bytes
        log.write_line("bbbb"); // 10 bytes: still fits
        log.write_line("cccc"); // would be 15: rotate first
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "aaaa\nbbbb\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "cccc\n");
        log.write_line("dddd");
        log.write_line("eeee");
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "cccc\ndddd\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "eeee\n");
    }

    #[test]
    fn a_file_renamed_away_is_followed_by_a_new_one_at_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.log");
        let moved = dir.path().join("svc.log.rotated");
        let log = LogFile::open(&path, MAX_LOG_BYTES).unwrap();
        log.lock().check_every = Duration::ZERO;
        log.write_line("before");
        std::fs::rename(&path, &moved).unwrap();
        // logrotate's `create`: a new empty file at the path.
        std::fs::write(&path, "").unwrap();
        log.write_line("after");
        log.flush();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        std::fs::remove_file(&path).unwrap();
        log.write_line("after removal");
        log.flush();
        assert_eq!(std::fs::read_to_string(&moved).unwrap(), "before\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after removal\n");
    }

    #[test]
    fn a_path_that_cannot_be_a_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").unwrap();
        let err = LogFile::open(&blocker.join("svc.log"), 10).unwrap_err();
        assert!(err.to_string().contains("svc.log"), "{err}");
    }
}
