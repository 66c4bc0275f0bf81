//! Multiline joining: lines matching a source's pattern are joined with their neighbour so a
//! stack trace or a `\`-continued line is one record. One [`Joiner`] per file.

use crate::config::{Attach, MultilineConfig};
use regex::Regex;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One line or joined record: text, whether a line in it was cut, and the file offset just
/// past its last line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The text; joined lines are separated by `\n`.
    pub text: String,
    /// A line in it was cut at `max_line_bytes`.
    pub truncated: bool,
    /// File offset just past the last line's newline.
    pub end: u64,
}

/// A source's compiled multiline rule.
#[derive(Debug)]
pub struct Rule {
    re: Regex,
    attach: Attach,
    max_lines: usize,
    timeout: Duration,
}

impl Rule {
    /// Compiles a source's multiline settings.
    pub fn new(cfg: &MultilineConfig) -> Result<Rule, String> {
        let re = Regex::new(&cfg.pattern).map_err(|e| {
            format!(
                "multiline pattern \"{}\" is not a regular expression: {e}",
                cfg.pattern
            )
        })?;
        Ok(Rule {
            re,
            attach: cfg.attach,
            max_lines: cfg.max_lines.max(1),
            timeout: cfg.timeout.0,
        })
    }
}

struct Pending {
    line: Line,
    lines: usize,
    last: Instant,
}

/// Joins the lines of one file into records.
pub struct Joiner {
    rule: Option<Arc<Rule>>,
    pending: Option<Pending>,
}

impl Joiner {
    /// A joiner with `rule`, or a pass-through one without.
    pub fn new(rule: Option<Arc<Rule>>) -> Joiner {
        Joiner {
            rule,
            pending: None,
        }
    }

    /// Whether a record is waiting for more lines.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Takes one line; calls `out` for every record it completes.
    pub fn push(&mut self, line: Line, now: Instant, out: &mut dyn FnMut(Line)) {
        let Some(rule) = &self.rule else {
            out(line);
            return;
        };
        let matches = rule.re.is_match(&line.text);
        match rule.attach {
            Attach::Previous => {
                if let Some(p) = &mut self.pending {
                    if matches && p.lines < rule.max_lines {
                        join(p, line, now);
                        return;
                    }
                    if let Some(done) = self.pending.take() {
                        out(done.line);
                    }
                }
                self.pending = Some(Pending {
                    line,
                    lines: 1,
                    last: now,
                });
            }
            Attach::Next => {
                if let Some(mut p) = self.pending.take() {
                    join(&mut p, line, now);
                    if matches && p.lines < rule.max_lines {
                        self.pending = Some(p);
                    } else {
                        out(p.line);
                    }
                } else if matches && rule.max_lines > 1 {
                    self.pending = Some(Pending {
                        line,
                        lines: 1,
                        last: now,
                    });
                } else {
                    out(line);
                }
            }
        }
    }

    /// Emits the waiting record when no line arrived for the rule's timeout.
    pub fn flush_if_stale(&mut self, now: Instant, out: &mut dyn FnMut(Line)) {
        let stale = match (&self.rule, &self.pending) {
            (Some(rule), Some(p)) => now.saturating_duration_since(p.last) >= rule.timeout,
            _ => false,
        };
        if stale {
            self.flush(out);
        }
    }

    /// Emits the waiting record, if any.
    pub fn flush(&mut self, out: &mut dyn FnMut(Line)) {
        if let Some(p) = self.pending.take() {
            out(p.line);
        }
    }
}

fn join(p: &mut Pending, line: Line, now: Instant) {
    p.line.text.push('\n');
    p.line.text.push_str(&line.text);
    p.line.truncated |= line.truncated;
    p.line.end = line.end;
    p.lines += 1;
    p.last = now;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Dur;

    fn rule(pattern: &str, attach: Attach, max_lines: usize) -> Option<Arc<Rule>> {
        let cfg = MultilineConfig {
            pattern: pattern.into(),
            attach,
            max_lines,
            timeout: Dur::millis(100),
        };
        Some(Arc::new(Rule::new(&cfg).unwrap()))
    }

    fn feed(j: &mut Joiner, lines: &[&str], now: Instant) -> Vec<Line> {
        let mut out = vec![];
        let mut end = 0;
        for l in lines {
            end += l.len() as u64 + 1;
            let line = Line {
                text: l.to_string(),
                truncated: false,
                end,
            };
            j.push(line, now, &mut |r| out.push(r));
        }
        out
    }

    #[test]
    fn previous_joins_continuations_and_timeout_flushes() {
        let mut j = Joiner::new(rule(r"^\s+at |^Caused by:", Attach::Previous, 100));
        let now = Instant::now();
        let out = feed(
            &mut j,
            &["boom", "  at a", "Caused by: x", "  at b", "next"],
            now,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text, "boom\n  at a\nCaused by: x\n  at b");
        assert_eq!(out[0].end, 5 + 7 + 13 + 7);
        assert!(j.has_pending());
        let mut later = vec![];
        j.flush_if_stale(now + Duration::from_millis(50), &mut |r| later.push(r));
        assert!(later.is_empty());
        j.flush_if_stale(now + Duration::from_millis(100), &mut |r| later.push(r));
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].text, "next");
        assert!(!j.has_pending());
    }

    #[test]
    fn next_joins_backslash_continuations() {
        let mut j = Joiner::new(rule(r"\\$", Attach::Next, 100));
        let out = feed(&mut j, &["a \\", "b \\", "c", "d"], Instant::now());
        let texts: Vec<_> = out.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a \\\nb \\\nc", "d"]);
        assert_eq!(out[0].end, 4 + 4 + 2);
        assert!(!j.has_pending());
    }

    #[test]
    fn max_lines_cuts_records() {
        let mut j = Joiner::new(rule(r"^\s", Attach::Previous, 3));
        let mut out = feed(&mut j, &["x", " 1", " 2", " 3", " 4", "y"], Instant::now());
        j.flush(&mut |r| out.push(r));
        let texts: Vec<_> = out.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["x\n 1\n 2", " 3\n 4", "y"]);

        let mut j = Joiner::new(rule(r"\\$", Attach::Next, 2));
        let out = feed(&mut j, &["a\\", "b\\", "c\\", "d"], Instant::now());
        let texts: Vec<_> = out.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a\\\nb\\", "c\\\nd"]);
    }

    #[test]
    fn without_rule_lines_pass_through() {
        let mut j = Joiner::new(None);
        let out = feed(&mut j, &["a", "  at b"], Instant::now());
        assert_eq!(out.len(), 2);
        assert!(!j.has_pending());
    }
}
