//! File tailing: follows the files of every `[[source]]` through rotation (rename-and-create
//! and copytruncate), deletion and truncation, and turns their bytes into records.
//!
//! * Files are found by glob (`discover`) at every scan (default every second); a file is
//!   known by its [`FileId`] (device, inode and a fingerprint of its first line), so one file
//!   seen at two paths is read once, and a reused inode number is a new file.
//! * A file that is empty, or shorter than 256 bytes without a newline, cannot be identified
//!   yet and is left alone until it can.
//! * A file no longer found at a matched path (renamed away, deleted) is read from its open
//!   descriptor to its end, and closed once it has not grown for a grace period (default 5 s).
//! * Lines longer than `max_line_bytes` are cut; the rest is skipped without buffering.
//! * Multiline joining happens per file (`multiline`).
//! * [`Checkpoints`] keep how far each file was read and stored, to resume after a restart.

pub mod checkpoint;
mod discover;
mod fingerprint;
mod multiline;
mod reader;
#[cfg(test)]
mod rotation_tests;
mod scan;
mod tailer;
#[cfg(test)]
mod tests;

pub use checkpoint::{Checkpoint, Checkpoints};
pub use fingerprint::FileId;
pub use tailer::Tailer;

use std::sync::Arc;

/// One record read from a file (after multiline joining).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailLine {
    /// Index of the source in the `sources` given to [`Tailer::new`].
    pub source: usize,
    /// The file it was read from.
    pub file: FileId,
    /// The path where the file was last seen.
    pub path: Arc<str>,
    /// The text: lossy UTF-8 (invalid bytes become U+FFFD), without the trailing `\n` or
    /// `\r\n`; the lines of a multiline record are joined with `\n`.
    pub text: String,
    /// A line in it was cut at `max_line_bytes`.
    pub truncated: bool,
    /// File offset just past this record's last byte (including its newline): the position
    /// to resume from once this record is safely stored.
    pub end_offset: u64,
}
