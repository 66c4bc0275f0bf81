//! Reading records back by sequence number.
//!
//! A [`WalReader`] works from a snapshot taken when it is created: the list
//! of segments and the number of bytes and records that were complete at
//! that moment. It never sees records appended later, which is the price for
//! never seeing a half-written one and for needing no lock shared with the
//! writer. Callers that want newer records create a new reader from where the
//! last one stopped.
//!
//! Segment files are opened lazily, one at a time, except the first, which
//! is opened by [`super::Wal::read_from`]. On unix an open segment stays
//! readable even if `truncate_before` deletes it; a segment deleted before
//! the reader reached it yields an io error (NotFound) naming the file.

use std::collections::VecDeque;
use std::path::PathBuf;

use super::segment::{SegmentCursor, Step};
use super::{Record, WalError};

/// One segment as seen at snapshot time.
#[derive(Debug, Clone)]
pub(crate) struct SegmentSnap {
    pub(crate) first_seq: u64,
    pub(crate) path: PathBuf,
    /// Bytes known complete when the snapshot was taken.
    pub(crate) len: u64,
}

/// Iterator over records with `seq >= from`, in seq order. Created by
/// [`super::Wal::read_from`].
///
/// Yields `Err` at most once (on an io error or a record that fails its
/// checks) and then ends.
#[derive(Debug)]
pub struct WalReader {
    pending: VecDeque<SegmentSnap>,
    cursor: Option<SegmentCursor>,
    from: u64,
    /// Seq of the next record the cursor should produce.
    expected: u64,
    /// Exclusive end: `next_seq` of the WAL at snapshot time.
    end_seq: u64,
    done: bool,
}

impl WalReader {
    /// `segments` must be consecutive, oldest first, with the first one
    /// holding `from` (or starting after it).
    pub(crate) fn new(
        segments: Vec<SegmentSnap>,
        from: u64,
        end_seq: u64,
    ) -> Result<WalReader, WalError> {
        let mut pending: VecDeque<SegmentSnap> = segments.into();
        let expected = pending.front().map_or(end_seq, |s| s.first_seq);
        let mut reader = WalReader {
            pending: VecDeque::new(),
            cursor: None,
            from,
            expected,
            end_seq,
            done: from >= end_seq,
        };
        if !reader.done {
            // Open the first file now: errors surface at creation, and the
            // segment is pinned against deletion from here on.
            if let Some(first) = pending.pop_front() {
                reader.cursor = Some(SegmentCursor::open(&first.path, Some(first.len))?);
            }
        }
        reader.pending = pending;
        Ok(reader)
    }

    /// Seq of the next record this reader will consider. After the iterator
    /// has ended cleanly this is where a follow-up reader should start.
    pub fn position(&self) -> u64 {
        self.expected.max(self.from)
    }

    fn advance(&mut self) -> Result<Option<Record>, WalError> {
        let mut payload = Vec::new();
        loop {
            if self.expected >= self.end_seq {
                return Ok(None);
            }
            let cursor = match &mut self.cursor {
                Some(c) => c,
                None => {
                    let Some(next) = self.pending.pop_front() else {
                        return Err(WalError::Corrupt {
                            path: PathBuf::new(),
                            offset: 0,
                            reason: format!(
                                "segments ended at seq {} but the wal held records up to {}",
                                self.expected,
                                self.end_seq - 1
                            ),
                        });
                    };
                    if next.first_seq != self.expected {
                        return Err(WalError::Corrupt {
                            path: next.path,
                            offset: 0,
                            reason: format!(
                                "segment starts at seq {} but {} was expected",
                                next.first_seq, self.expected
                            ),
                        });
                    }
                    self.cursor
                        .insert(SegmentCursor::open(&next.path, Some(next.len))?)
                }
            };
            let want = self.expected >= self.from;
            let buf = if want { Some(&mut payload) } else { None };
            match cursor.step(self.expected, buf)? {
                Step::Record { seq, kind } => {
                    self.expected += 1;
                    return Ok(Some(Record { seq, kind, payload }));
                }
                Step::Skipped => self.expected += 1,
                Step::End => self.cursor = None,
                Step::Bad { offset, reason } => {
                    return Err(WalError::Corrupt {
                        path: cursor.path().to_path_buf(),
                        offset,
                        reason,
                    });
                }
            }
        }
    }
}

impl Iterator for WalReader {
    type Item = Result<Record, WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.advance() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                self.cursor = None;
                None
            }
            Err(e) => {
                self.done = true;
                self.cursor = None;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for WalReader {}
