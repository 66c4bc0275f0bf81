//! The one durable atomic file write: every state file that must survive a crash whole is
//! replaced through [`write_file`] or [`write_file_with`].
//!
//! The steps, and why each is there:
//! 1. write `<name>.tmp` beside the target (same directory, so the rename stays on one
//!    filesystem and is atomic);
//! 2. fsync it, so its bytes are on disk before any name points at them;
//! 3. rename it over the target: readers see the old file or the new one, never a mix;
//! 4. fsync the directory, so the rename itself survives power loss.
//!
//! A failure at any step removes the temporary file and leaves the old target untouched.
//! Stale `.tmp` files from a crash are harmless; their owners delete them on open.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The temporary name used for `path`: the file name with `.tmp` appended.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Replaces `path` with `bytes`, durably and atomically.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_file_with(path, |f| f.write_all(bytes))
}

/// Replaces `path` with what `fill` writes into the temporary file, durably and atomically.
/// For large files written in pieces (metric blocks).
pub fn write_file_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Fsyncs a directory, so entries created, renamed or removed in it survive power loss.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_file(&path, b"one").unwrap();
        write_file(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(!temp_path(&path).exists());
        assert_eq!(temp_path(&path), dir.path().join("state.json.tmp"));
    }

    #[test]
    fn a_failed_fill_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_file(&path, b"old").unwrap();
        let err = write_file_with(&path, |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("disk went away"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk went away");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert!(!temp_path(&path).exists());
    }

    #[test]
    fn a_missing_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/state.json");
        assert!(write_file(&path, b"x").is_err());
    }
}
