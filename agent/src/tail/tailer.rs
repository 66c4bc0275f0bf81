//! The [`Tailer`]: scans the sources' globs, keeps the matching files open and reads what is
//! new in them, round after round, within a byte budget.

use super::TailLine;
use super::discover::Matcher;
use super::fingerprint::FileId;
use super::multiline::{Joiner, Line, Rule};
use super::reader::Reader;
use super::scan::reidentify;
use crate::config::{ReadFrom, SourceConfig};
use crate::telemetry::Telemetry;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Size of one read.
const READ_BUF: usize = 64 * 1024;
/// Default time between glob scans.
const SCAN_INTERVAL: Duration = Duration::from_secs(1);
/// Default time a vanished file at its end is kept open without growing.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Default most files open at once.
const MAX_OPEN: usize = 1024;
/// Most remembered positions of closed files.
const MAX_KNOWN: usize = 16 * 1024;

pub(super) struct Source {
    pub(super) name: String,
    pub(super) matcher: Matcher,
    pub(super) read_from: ReadFrom,
    pub(super) max_line: usize,
    pub(super) rule: Option<Arc<Rule>>,
}

pub(super) struct Tracked {
    pub(super) source: usize,
    pub(super) id: FileId,
    pub(super) path: Arc<str>,
    pub(super) reader: Reader,
    pub(super) joiner: Joiner,
    /// Found at a matched path by the last scan.
    pub(super) present: bool,
    /// A rename was counted for it.
    pub(super) rotated: bool,
    /// Its content was rewritten and cannot be identified yet: not read until it can.
    pub(super) needs_id: bool,
    pub(super) last_growth: Instant,
}

/// Follows the files of every source. See the [module docs](super).
pub struct Tailer {
    pub(super) sources: Vec<Source>,
    pub(super) files: Vec<Tracked>,
    pub(super) known: HashMap<FileId, u64>,
    pub(super) warned: HashSet<PathBuf>,
    pub(super) read_failed: HashSet<FileId>,
    pub(super) telemetry: Telemetry,
    pub(super) buf: Vec<u8>,
    pub(super) scan_interval: Duration,
    pub(super) close_grace: Duration,
    pub(super) max_open: usize,
    pub(super) last_scan: Option<Instant>,
    pub(super) scans: u64,
    pub(super) next: usize,
}

impl Tailer {
    /// A tailer of `sources`. `start` holds resume positions of known files (from
    /// checkpoints). Files found by the first scan without a position follow the source's
    /// `read_from`; files that appear later are read from the beginning. Fails when a glob or
    /// multiline pattern is invalid.
    pub fn new(
        sources: Vec<SourceConfig>,
        start: HashMap<FileId, u64>,
        telemetry: Telemetry,
    ) -> Result<Tailer, String> {
        let sources = sources
            .into_iter()
            .map(|s| {
                let err = |e: String| format!("source \"{}\": {e}", s.name);
                let matcher = Matcher::new(&s.paths, &s.exclude).map_err(err)?;
                let rule = match &s.multiline {
                    Some(m) => Some(Arc::new(Rule::new(m).map_err(err)?)),
                    None => None,
                };
                Ok(Source {
                    matcher,
                    read_from: s.read_from,
                    max_line: s.max_line_bytes.max(1),
                    rule,
                    name: s.name,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Tailer {
            sources,
            files: Vec::new(),
            known: start,
            warned: HashSet::new(),
            read_failed: HashSet::new(),
            telemetry,
            buf: vec![0; READ_BUF],
            scan_interval: SCAN_INTERVAL,
            close_grace: CLOSE_GRACE,
            max_open: MAX_OPEN,
            last_scan: None,
            scans: 0,
            next: 0,
        })
    }

    /// Sets the time between glob scans (default 1 s; zero scans at every poll).
    pub fn set_scan_interval(&mut self, d: Duration) {
        self.scan_interval = d;
    }

    /// Sets how long a file no longer found at any matched path is kept open at its end
    /// without growing before it is closed (default 5 s).
    pub fn set_close_grace(&mut self, d: Duration) {
        self.close_grace = d;
    }

    /// Sets the most files open at once (default 1024); files beyond are logged and skipped.
    pub fn set_max_open_files(&mut self, n: usize) {
        self.max_open = n;
    }

    /// Files tailed now: (source name, path, FileId, offset read) for the heartbeat and tests.
    pub fn files(&self) -> Vec<(String, String, FileId, u64)> {
        self.files
            .iter()
            .map(|t| {
                (
                    self.sources[t.source].name.clone(),
                    t.path.to_string(),
                    t.id,
                    t.reader.pos(),
                )
            })
            .collect()
    }

    /// One round: rescans the globs when the scan interval has passed, reads what is new in
    /// every open file (at most `budget` bytes in total, shared fairly), emits multiline
    /// records whose timeout passed, closes vanished files after their grace period, and
    /// calls `emit` for each complete record, in file order. Returns the bytes read: 0 means
    /// idle, and the caller should sleep a little (100-250 ms). `emit` may block; reading
    /// waits for it.
    pub fn poll(&mut self, budget: usize, emit: &mut dyn FnMut(TailLine)) -> u64 {
        let now = Instant::now();
        if self
            .last_scan
            .is_none_or(|t| now.duration_since(t) >= self.scan_interval)
        {
            self.scan(now, emit);
            self.last_scan = Some(now);
        }
        let n = self.files.len();
        let mut used = 0usize;
        let mut failed = Vec::new();
        if let Some(per_file) = budget.checked_div(n) {
            let share = per_file.max(READ_BUF);
            let first = self.next % n;
            self.next = self.next.wrapping_add(1);
            for k in 0..n {
                let left = budget.saturating_sub(used);
                if left == 0 {
                    break;
                }
                let i = (first + k) % n;
                let (got, ok) = self.read_file(i, share.min(left), now, emit);
                used += got;
                if !ok {
                    failed.push(i);
                }
            }
        }
        failed.sort_unstable();
        for &i in failed.iter().rev() {
            self.close(i, false, emit);
        }
        let mut i = 0;
        while i < self.files.len() {
            let t = &mut self.files[i];
            if !t.present
                && t.reader.eof
                && now.saturating_duration_since(t.last_growth) >= self.close_grace
            {
                self.close(i, true, emit);
                continue;
            }
            if t.reader.eof && t.joiner.has_pending() {
                let head = Head::of(t);
                let mut records = 0;
                t.joiner.flush_if_stale(now, &mut |l| {
                    records += 1;
                    emit(head.record(l));
                });
                if records > 0 {
                    self.telemetry
                        .lines_read(&self.sources[head.source].name, records);
                }
            }
            i += 1;
        }
        used as u64
    }

    /// Reads file `i` up to `allowed` bytes. Returns the bytes read and false on a read error.
    fn read_file(
        &mut self,
        i: usize,
        allowed: usize,
        now: Instant,
        emit: &mut dyn FnMut(TailLine),
    ) -> (usize, bool) {
        let Tailer {
            files,
            sources,
            buf,
            telemetry,
            read_failed,
            ..
        } = self;
        let t = &mut files[i];
        let src = &sources[t.source];
        if t.needs_id && !reidentify(t) {
            return (0, true);
        }
        let head = Head::of(t);
        let mut got = 0usize;
        let mut records = 0u64;
        let mut truncated = 0u32;
        let mut ok = true;
        while got < allowed {
            let want = (allowed - got).min(buf.len());
            let Tracked { reader, joiner, .. } = &mut *t;
            let res = reader.read(&mut buf[..want], &mut |raw| {
                truncated += u32::from(raw.truncated);
                joiner.push(raw.to_line(), now, &mut |l| {
                    records += 1;
                    emit(head.record(l));
                });
            });
            match res {
                Ok(0) => break,
                Ok(n) => {
                    got += n;
                    t.last_growth = now;
                    if t.reader.eof {
                        break;
                    }
                }
                Err(e) => {
                    if read_failed.insert(t.id) {
                        tracing::warn!(source = %src.name, path = %t.path, error = %e,
                            "cannot read file; it will be reopened at the next scan");
                        telemetry.read_error(&src.name);
                    }
                    ok = false;
                    break;
                }
            }
        }
        if got > 0 {
            telemetry.bytes_read(&src.name, got as u64);
        }
        if records > 0 {
            telemetry.lines_read(&src.name, records);
        }
        for _ in 0..truncated {
            telemetry.line_truncated(&src.name);
        }
        (got, ok)
    }

    /// Closes file `i`: for good (`finished`: its last partial line and pending record are
    /// emitted), or after an error (its position is kept so the next scan resumes it).
    fn close(&mut self, i: usize, finished: bool, emit: &mut dyn FnMut(TailLine)) {
        let mut t = self.files.remove(i);
        let head = Head::of(&t);
        let now = Instant::now();
        let mut records = 0u64;
        if finished {
            let Tracked { reader, joiner, .. } = &mut t;
            let mut cut = false;
            reader.take_partial(&mut |raw| {
                cut = raw.truncated;
                joiner.push(raw.to_line(), now, &mut |l| {
                    records += 1;
                    emit(head.record(l));
                });
            });
            if cut {
                self.telemetry.line_truncated(&self.sources[t.source].name);
            }
        }
        t.joiner.flush(&mut |l| {
            records += 1;
            emit(head.record(l));
        });
        if records > 0 {
            self.telemetry
                .lines_read(&self.sources[t.source].name, records);
        }
        if !t.needs_id {
            let pos = if finished {
                t.reader.pos()
            } else {
                t.reader.line_start()
            };
            self.remember(t.id, pos);
        }
        tracing::debug!(path = %t.path, finished, "file closed");
        self.telemetry.set_files_open(self.files.len());
    }

    fn remember(&mut self, id: FileId, pos: u64) {
        if self.known.len() >= MAX_KNOWN
            && let Some(k) = self.known.keys().next().copied()
        {
            self.known.remove(&k);
        }
        self.known.insert(id, pos);
    }
}

/// What every record of one file carries.
pub(super) struct Head {
    pub(super) source: usize,
    pub(super) id: FileId,
    pub(super) path: Arc<str>,
}

impl Head {
    pub(super) fn of(t: &Tracked) -> Head {
        Head {
            source: t.source,
            id: t.id,
            path: t.path.clone(),
        }
    }

    pub(super) fn record(&self, l: Line) -> TailLine {
        TailLine {
            source: self.source,
            file: self.id,
            path: self.path.clone(),
            text: l.text,
            truncated: l.truncated,
            end_offset: l.end,
        }
    }
}

#[cfg(test)]
impl Tailer {
    /// Bytes of partial lines held in memory, over every file.
    pub(super) fn buffered_bytes(&self) -> usize {
        self.files.iter().map(|t| t.reader.buffered()).sum()
    }
}
