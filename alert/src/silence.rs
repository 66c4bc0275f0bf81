//! Silences: label matchers and a time window in which matching alerts are not notified.
//! They are kept in `<data_dir>/alerts/silences.json`, rewritten whole (write, fsync, rename)
//! on every change, so a silence made through the API survives a restart. Expired silences
//! are kept five days for the record, then dropped; at most `max` are kept in all.

use skein_model::alert_api::{
    LabelMatcher, LabelSet, NewSilence, Silence, SilenceStatus, rfc3339_ms,
};
use skein_model::time::{parse_duration, parse_time};
use std::path::{Path, PathBuf};

/// Expired silences are kept this long (ms), as Alertmanager's default retention.
const KEEP_EXPIRED_MS: i64 = 5 * 24 * 3_600_000;
/// Longest comment or author (bytes).
const MAX_TEXT: usize = 4096;
/// Most matchers in one silence.
const MAX_MATCHERS: usize = 64;

/// Compiles a regular expression anchored at both ends, as label matchers use them.
pub fn compile(re: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(&format!("^(?:{re})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("bad regular expression {re:?}: {e}"))
}

/// A label matcher with its regular expression compiled.
#[derive(Debug, Clone)]
pub struct CompiledMatcher {
    /// As written.
    pub matcher: LabelMatcher,
    re: Option<regex::Regex>,
}

impl CompiledMatcher {
    /// Compiles a matcher.
    pub fn new(matcher: LabelMatcher) -> Result<CompiledMatcher, String> {
        let re = if matcher.is_regex {
            Some(compile(&matcher.value)?)
        } else {
            None
        };
        Ok(CompiledMatcher { matcher, re })
    }

    /// Parses and compiles `name=value` and the like.
    pub fn parse(s: &str) -> Result<CompiledMatcher, String> {
        CompiledMatcher::new(LabelMatcher::parse(s)?)
    }

    /// Whether the labels pass; a missing label is the empty string.
    pub fn matches(&self, labels: &LabelSet) -> bool {
        let v = labels
            .get(&self.matcher.name)
            .map(String::as_str)
            .unwrap_or("");
        let hit = match &self.re {
            Some(re) => re.is_match(v),
            None => v == self.matcher.value,
        };
        hit == self.matcher.is_equal
    }
}

impl PartialEq for CompiledMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.matcher == other.matcher
    }
}

/// Whether the labels pass every matcher.
pub fn matches_all(ms: &[CompiledMatcher], labels: &LabelSet) -> bool {
    ms.iter().all(|m| m.matches(labels))
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Stored {
    id: String,
    matchers: Vec<LabelMatcher>,
    starts_ms: i64,
    ends_ms: i64,
    created_by: String,
    comment: String,
    updated_ms: i64,
}

/// Why a silence change was refused.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// Bad request: the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// No silence with that ID.
    #[error("no silence with id {0}")]
    NotFound(String),
    /// The file could not be written.
    #[error("cannot save silences: {0}")]
    Io(#[from] std::io::Error),
}

/// The silences, in memory and on disk.
pub struct Silences {
    file: PathBuf,
    max: usize,
    list: Vec<(Stored, Vec<CompiledMatcher>)>,
    counter: u64,
}

/// Reads saved silences; one whose matchers no longer compile is dropped with a warning.
fn parse(bytes: &[u8]) -> Result<Vec<(Stored, Vec<CompiledMatcher>)>, String> {
    let stored = serde_json::from_slice::<Vec<Stored>>(bytes).map_err(|e| e.to_string())?;
    let mut list = Vec::with_capacity(stored.len());
    for st in stored {
        let compiled: Result<Vec<_>, _> = st
            .matchers
            .iter()
            .cloned()
            .map(CompiledMatcher::new)
            .collect();
        match compiled {
            Ok(c) => list.push((st, c)),
            Err(e) => tracing::warn!(id = %st.id, error = %e, "silence dropped"),
        }
    }
    Ok(list)
}

impl Silences {
    /// Opens the file (absent: none). A file that cannot be read is set aside as `.bad`.
    pub fn open(file: &Path, max: usize) -> Silences {
        let mut s = Silences {
            file: file.to_path_buf(),
            max,
            list: Vec::new(),
            counter: 0,
        };
        let Ok(text) = std::fs::read(file) else {
            return s;
        };
        match parse(&text) {
            Ok(list) => s.list = list,
            Err(e) => {
                let bad = file.with_extension("json.bad");
                tracing::warn!(file = %file.display(), error = %e, "silences file unreadable; set aside");
                let _ = std::fs::rename(file, bad);
            }
        }
        s
    }

    fn save(&self) -> std::io::Result<()> {
        super::state::write_atomic(&self.file, &self.to_bytes()?)
    }

    /// Every silence as saved (JSON).
    pub fn to_bytes(&self) -> std::io::Result<Vec<u8>> {
        let stored: Vec<&Stored> = self.list.iter().map(|(s, _)| s).collect();
        serde_json::to_vec_pretty(&stored).map_err(std::io::Error::other)
    }

    /// Replaces every silence with those of `bytes` (as [`Self::to_bytes`] writes them, e.g.
    /// another node's) and saves the file.
    pub fn replace(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.list = parse(bytes)?;
        self.save().map_err(|e| e.to_string())
    }

    fn new_id(&mut self, now_ms: i64) -> String {
        self.counter += 1;
        let seed = format!(
            "{now_ms}-{}-{}-{:?}",
            self.counter,
            std::process::id(),
            std::time::SystemTime::now()
        );
        let a = super::state::fnv64(seed.as_bytes());
        let b = super::state::fnv64(format!("{seed}-b").as_bytes());
        let h = format!("{a:016x}{b:016x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// Adds a silence, or replaces one when `new.id` is set; returns its ID.
    pub fn add(&mut self, new: NewSilence, now_ms: i64) -> Result<String, SilenceError> {
        let bad = |m: String| SilenceError::Invalid(m);
        if new.matchers.is_empty() {
            return Err(bad(
                "a silence needs at least one matcher, such as alertname=HighErrorRate".into(),
            ));
        }
        if new.matchers.len() > MAX_MATCHERS {
            return Err(bad(format!(
                "a silence takes at most {MAX_MATCHERS} matchers"
            )));
        }
        if new.comment.len() > MAX_TEXT || new.created_by.len() > MAX_TEXT {
            return Err(bad(format!(
                "comment and createdBy take at most {MAX_TEXT} bytes"
            )));
        }
        let compiled = new
            .matchers
            .iter()
            .cloned()
            .map(CompiledMatcher::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        if compiled.iter().all(|m| m.matches(&LabelSet::new())) {
            return Err(bad(
                "every matcher also matches alerts without that label, so the silence would mute everything: add a matcher such as alertname=X".into(),
            ));
        }
        let now_ns = (now_ms.max(0) as u64).saturating_mul(1_000_000);
        let time = |key: &str, v: &str| -> Result<i64, SilenceError> {
            if v.trim() == "now" {
                return Ok(now_ms);
            }
            parse_time(v, now_ns)
                .map(|ns| (ns / 1_000_000) as i64)
                .map_err(|e| bad(format!("{key}: {e}")))
        };
        let starts_ms = match new.starts_at.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => time("startsAt", s)?.max(now_ms),
            None => now_ms,
        };
        let ends_ms = match (
            new.ends_at.as_deref().filter(|s| !s.is_empty()),
            new.duration.as_deref(),
        ) {
            (Some(e), _) => time("endsAt", e)?,
            (None, Some(d)) => {
                let d = parse_duration(d).map_err(|e| bad(format!("duration: {e}")))?;
                starts_ms.saturating_add(d.as_millis() as i64)
            }
            (None, None) => {
                return Err(bad("give endsAt (a time) or duration (such as 2h)".into()));
            }
        };
        if ends_ms <= starts_ms {
            return Err(bad(format!(
                "endsAt ({}) must be after startsAt ({})",
                rfc3339_ms(ends_ms),
                rfc3339_ms(starts_ms)
            )));
        }
        if ends_ms <= now_ms {
            return Err(bad(format!(
                "endsAt ({}) is in the past",
                rfc3339_ms(ends_ms)
            )));
        }
        let id = match &new.id {
            Some(id) => {
                let Some(pos) = self.list.iter().position(|(s, _)| &s.id == id) else {
                    return Err(SilenceError::NotFound(id.clone()));
                };
                self.list.remove(pos);
                id.clone()
            }
            None => {
                self.gc(now_ms);
                if self.list.len() >= self.max {
                    // Drop the oldest expired one; when none is, refuse.
                    match self
                        .list
                        .iter()
                        .enumerate()
                        .filter(|(_, (s, _))| s.ends_ms <= now_ms)
                        .min_by_key(|(_, (s, _))| s.ends_ms)
                        .map(|(i, _)| i)
                    {
                        Some(i) => {
                            self.list.remove(i);
                        }
                        None => {
                            return Err(bad(format!(
                                "there are {} silences, the most kept (alerts.max_silences); expire some first",
                                self.list.len()
                            )));
                        }
                    }
                }
                self.new_id(now_ms)
            }
        };
        self.list.push((
            Stored {
                id: id.clone(),
                matchers: new.matchers,
                starts_ms,
                ends_ms,
                created_by: new.created_by,
                comment: new.comment,
                updated_ms: now_ms,
            },
            compiled,
        ));
        self.save()?;
        Ok(id)
    }

    /// Ends a silence now.
    pub fn expire(&mut self, id: &str, now_ms: i64) -> Result<(), SilenceError> {
        let Some((s, _)) = self.list.iter_mut().find(|(s, _)| s.id == id) else {
            return Err(SilenceError::NotFound(id.to_string()));
        };
        if s.ends_ms <= now_ms {
            return Err(SilenceError::Invalid(format!(
                "silence {id} has already expired"
            )));
        }
        s.ends_ms = now_ms;
        s.starts_ms = s.starts_ms.min(now_ms);
        s.updated_ms = now_ms;
        self.save()?;
        Ok(())
    }

    /// Drops silences expired for longer than five days.
    pub fn gc(&mut self, now_ms: i64) {
        self.list
            .retain(|(s, _)| now_ms - s.ends_ms < KEEP_EXPIRED_MS);
    }

    /// Every silence: active and pending first, then expired; newest first within each.
    pub fn list(&self, now_ms: i64) -> Vec<Silence> {
        let mut v: Vec<Silence> = self
            .list
            .iter()
            .map(|(s, _)| Silence {
                id: s.id.clone(),
                matchers: s.matchers.clone(),
                starts_at: rfc3339_ms(s.starts_ms),
                ends_at: rfc3339_ms(s.ends_ms),
                created_by: s.created_by.clone(),
                comment: s.comment.clone(),
                status: SilenceStatus {
                    state: state_of(s, now_ms).into(),
                },
                updated_at: rfc3339_ms(s.updated_ms),
            })
            .collect();
        let rank = |st: &str| if st == "expired" { 1 } else { 0 };
        v.sort_by(|a, b| {
            rank(&a.status.state)
                .cmp(&rank(&b.status.state))
                .then(b.updated_at.cmp(&a.updated_at))
        });
        v
    }

    /// IDs of the active silences that mute these labels.
    pub fn muting(&self, labels: &LabelSet, now_ms: i64) -> Vec<String> {
        self.list
            .iter()
            .filter(|(s, c)| state_of(s, now_ms) == "active" && matches_all(c, labels))
            .map(|(s, _)| s.id.clone())
            .collect()
    }
}

fn state_of(s: &Stored, now_ms: i64) -> &'static str {
    if s.ends_ms <= now_ms {
        "expired"
    } else if s.starts_ms > now_ms {
        "pending"
    } else {
        "active"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn new(ms: &[&str], dur: &str) -> NewSilence {
        NewSilence {
            matchers: ms.iter().map(|m| LabelMatcher::parse(m).unwrap()).collect(),
            duration: Some(dur.into()),
            created_by: "ops".into(),
            comment: "deploy".into(),
            ..Default::default()
        }
    }

    #[test]
    fn mutes_while_active_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("silences.json");
        let mut s = Silences::open(&file, 10);
        let id = s
            .add(
                new(&["alertname=HighErrorRate", "service=~pay.*"], "2h"),
                1_000,
            )
            .unwrap();
        let hit = labels(&[("alertname", "HighErrorRate"), ("service", "payment")]);
        let miss = labels(&[("alertname", "HighErrorRate"), ("service", "order")]);
        assert_eq!(s.muting(&hit, 2_000), vec![id.clone()]);
        assert!(s.muting(&miss, 2_000).is_empty());
        assert!(s.muting(&hit, 1_000 + 7_200_000).is_empty(), "ended");
        let s2 = Silences::open(&file, 10);
        assert_eq!(s2.muting(&hit, 2_000), vec![id.clone()]);
        let mut s = s2;
        s.expire(&id, 3_000).unwrap();
        assert!(s.muting(&hit, 3_001).is_empty());
        assert_eq!(s.list(3_001)[0].status.state, "expired");
        assert!(matches!(
            s.expire(&id, 4_000),
            Err(SilenceError::Invalid(_))
        ));
        assert!(matches!(
            s.expire("nope", 4_000),
            Err(SilenceError::NotFound(_))
        ));
    }

    #[test]
    fn refuses_bad_silences() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Silences::open(&dir.path().join("s.json"), 2);
        assert!(s.add(new(&[], "1h"), 0).is_err());
        assert!(
            s.add(new(&["service=~"], "1h"), 0).is_err(),
            "matches everything"
        );
        assert!(s.add(new(&["service=~("], "1h"), 0).is_err(), "bad regex");
        assert!(s.add(new(&["a=b"], "soon"), 0).is_err(), "bad duration");
        let mut past = new(&["a=b"], "1h");
        past.duration = None;
        past.ends_at = Some("1970-01-01T00:00:00Z".into());
        assert!(s.add(past, 10_000).is_err());
        s.add(new(&["a=b"], "1h"), 0).unwrap();
        s.add(new(&["a=c"], "1h"), 0).unwrap();
        assert!(
            s.add(new(&["a=d"], "1h"), 0).is_err(),
            "full of active ones"
        );
        let id = s.list(0)[0].id.clone();
        s.expire(&id, 5).unwrap();
        s.add(new(&["a=d"], "1h"), 10).unwrap();
        assert_eq!(s.list(10).len(), 2, "the expired one made room");
    }

    #[test]
    fn matcher_ops() {
        let l = labels(&[("service", "payment")]);
        for (m, want) in [
            ("service=payment", true),
            ("service!=payment", false),
            ("service=~pay.*", true),
            ("service!~pay.*", false),
            ("host=", true),
            ("service=~pay", false),
        ] {
            assert_eq!(CompiledMatcher::parse(m).unwrap().matches(&l), want, "{m}");
        }
    }
}
