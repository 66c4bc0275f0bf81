//! Scanning: finds the sources' files by glob, opens new ones, and notices renames,
//! truncations, rewrites and files gone from every matched path.

use super::TailLine;
use super::fingerprint::identify;
use super::multiline::Joiner;
use super::reader::Reader;
use super::tailer::{Head, Tailer, Tracked};
use crate::config::ReadFrom;
use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

impl Tailer {
    /// Logs a path that cannot be tailed, once until it works again, and counts it.
    fn fail(
        &mut self,
        source: usize,
        path: &Path,
        failing: &mut HashSet<PathBuf>,
        e: &dyn Display,
    ) {
        failing.insert(path.to_path_buf());
        if self.warned.insert(path.to_path_buf()) {
            let name = &self.sources[source].name;
            tracing::warn!(source = %name, path = %path.display(), error = %e,
                "cannot tail file; retrying at each scan");
            self.telemetry.read_error(name);
        }
    }

    /// Finds the sources' files: opens new ones, notices renames, truncations and rewrites,
    /// and which files are gone from every matched path.
    pub(super) fn scan(&mut self, now: Instant, emit: &mut dyn FnMut(TailLine)) {
        let startup = self.scans == 0;
        self.scans += 1;
        let before = self.files.len();
        let mut by_key: HashMap<(u64, u64), usize> = self
            .files
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.dev_ino(), i))
            .collect();
        let mut at_path: HashMap<String, (u64, u64)> = HashMap::new();
        let mut at_current = vec![false; before];
        let mut elsewhere: Vec<Option<String>> = vec![None; before];
        let mut failing = HashSet::new();
        for s in 0..self.sources.len() {
            for path in self.sources[s].matcher.scan() {
                let meta = match std::fs::metadata(&path) {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        self.fail(s, &path, &mut failing, &e);
                        continue;
                    }
                };
                if meta.is_dir() {
                    continue;
                }
                if !meta.is_file() {
                    self.fail(s, &path, &mut failing, &"not a regular file");
                    continue;
                }
                let key = (meta.dev(), meta.ino());
                let name = path.to_string_lossy().into_owned();
                at_path.insert(name.clone(), key);
                if let Some(&i) = by_key.get(&key) {
                    if i < before {
                        if *self.files[i].path == *name {
                            at_current[i] = true;
                        } else if elsewhere[i].is_none() {
                            elsewhere[i] = Some(name);
                        }
                        self.check_rewrite(i, meta.len(), now, emit);
                    }
                    continue;
                }
                if let Some(i) = self.open(s, &path, name, startup, now, &mut failing)
                    && let Some(t) = self.files.get(i)
                {
                    by_key.insert(t.id.dev_ino(), i);
                }
            }
        }
        self.warned.retain(|p| failing.contains(p));
        for (i, t) in self.files.iter_mut().enumerate().take(before) {
            let key = t.id.dev_ino();
            if at_current[i] {
                t.present = true;
            } else if let Some(p) = elsewhere[i].take() {
                t.path = p.into();
                t.present = true;
                if !t.rotated {
                    t.rotated = true;
                    self.telemetry
                        .rotation(&self.sources[t.source].name, "rename");
                }
            } else {
                t.present = false;
                let replaced = at_path.get(&*t.path).is_some_and(|k| *k != key);
                if replaced && !t.rotated {
                    t.rotated = true;
                    self.telemetry
                        .rotation(&self.sources[t.source].name, "rename");
                }
            }
        }
        self.telemetry.set_files_open(self.files.len());
    }

    /// Notices a truncated (size below the read offset) or rewritten (other first line) file.
    fn check_rewrite(&mut self, i: usize, size: u64, now: Instant, emit: &mut dyn FnMut(TailLine)) {
        let t = &mut self.files[i];
        if t.needs_id {
            return;
        }
        let rewritten = size < t.reader.pos()
            || match identify(t.reader.file()) {
                Ok(Some(id)) => id.fp != t.id.fp,
                Ok(None) => true,
                Err(_) => false,
            };
        if !rewritten {
            return;
        }
        let head = Head::of(t);
        let mut records = 0;
        t.joiner.flush(&mut |l| {
            records += 1;
            emit(head.record(l));
        });
        if records > 0 {
            self.telemetry
                .lines_read(&self.sources[t.source].name, records);
        }
        t.reader.reset(0);
        t.needs_id = true;
        t.last_growth = now;
        self.telemetry
            .rotation(&self.sources[t.source].name, "truncate");
        tracing::debug!(path = %t.path, "file truncated or rewritten; reading it from the start");
        reidentify(t);
    }

    /// Opens a new file found at `path`. Returns its index, or None when it cannot be opened
    /// or identified yet.
    fn open(
        &mut self,
        s: usize,
        path: &Path,
        name: String,
        startup: bool,
        now: Instant,
        failing: &mut HashSet<PathBuf>,
    ) -> Option<usize> {
        if self.files.len() >= self.max_open {
            failing.insert(path.to_path_buf());
            if self.warned.insert(path.to_path_buf()) {
                tracing::warn!(path = %path.display(), max = self.max_open,
                    "too many files open; not tailing this one for now");
            }
            return None;
        }
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                self.fail(s, path, failing, &e);
                return None;
            }
        };
        let (id, size) = match identify(&file).and_then(|id| Ok((id, file.metadata()?.len()))) {
            Ok((Some(id), size)) => (id, size),
            Ok((None, _)) => return None,
            Err(e) => {
                self.fail(s, path, failing, &e);
                return None;
            }
        };
        if self.files.iter().any(|t| t.id.dev_ino() == id.dev_ino()) {
            return None;
        }
        let src = &self.sources[s];
        let pos = match self.known.remove(&id) {
            Some(off) if off > size => {
                self.telemetry.rotation(&src.name, "truncate");
                0
            }
            Some(off) => off,
            None if startup && src.read_from == ReadFrom::End => size,
            None => 0,
        };
        self.read_failed.remove(&id);
        tracing::debug!(source = %src.name, path = %name, offset = pos, "tailing file");
        self.files.push(Tracked {
            source: s,
            id,
            path: name.into(),
            reader: Reader::new(file, pos, src.max_line),
            joiner: Joiner::new(src.rule.clone()),
            present: true,
            rotated: false,
            needs_id: false,
            last_growth: now,
        });
        Some(self.files.len() - 1)
    }
}

/// Tries to identify a rewritten file again; true when it is identified (and reading from the
/// start may go on).
pub(super) fn reidentify(t: &mut Tracked) -> bool {
    match identify(t.reader.file()) {
        Ok(Some(id)) => {
            t.id = id;
            t.needs_id = false;
            true
        }
        _ => false,
    }
}
