//! A log file that takes whole lines and rotates itself when it grows too big.

use crate::DemoError;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Size past which a service's log file is rotated, in bytes (64 MiB).
pub(crate) const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;

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
        let size = file.metadata().map_err(fail)?.len();
        Ok(LogFile {
            inner: Arc::new(Mutex::new(Inner {
                path: path.to_path_buf(),
                file: Some(file),
                size,
                max_bytes,
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
            self.size = file.metadata().map(|m| m.len()).unwrap_or(0);
            self.file = Some(file);
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
    fn a_path_that_cannot_be_a_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").unwrap();
        let err = LogFile::open(&blocker.join("svc.log"), 10).unwrap_err();
        assert!(err.to_string().contains("svc.log"), "{err}");
    }
}
