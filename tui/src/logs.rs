//! The logs view's state: the live tail's newest lines, pause, selection, a filter on the
//! tail (`f`), the lines around a line (`c`), and a search over history (`/`). Pure, like
//! [`crate::app`]; the loop runs the tail and the searches.

use crate::app::{Cmd, Key};
use skein_model::LogRecord;
use std::collections::VecDeque;

/// Lines of the live tail kept on screen's behalf; older ones are in the collector (search
/// with `/`).
pub const MAX_LINES: usize = 5_000;

/// One line, with its ingest position when it came from the tail.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Position (0 for search results).
    pub seq: u64,
    /// The record.
    pub record: LogRecord,
}

/// What the live tail follows: a service, a least severity, words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailFilter {
    /// Only this service.
    pub service: Option<String>,
    /// This level and above.
    pub severity: Option<String>,
    /// Words and field:value terms.
    pub q: Option<String>,
}

impl TailFilter {
    /// Reads `service=payment severity=error timeout`: the two keys, the rest as words.
    pub fn parse(text: &str) -> TailFilter {
        let mut f = TailFilter::default();
        let mut words = Vec::new();
        for t in text.split_whitespace() {
            if let Some(v) = t.strip_prefix("service=") {
                f.service = Some(v.to_string()).filter(|v| !v.is_empty());
            } else if let Some(v) = t.strip_prefix("severity=") {
                f.severity = Some(v.to_string()).filter(|v| !v.is_empty());
            } else {
                words.push(t);
            }
        }
        if !words.is_empty() {
            f.q = Some(words.join(" "));
        }
        f
    }

    /// The tail's query parameters.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if let Some(v) = &self.service {
            p.push(("service", v.clone()));
        }
        if let Some(v) = &self.severity {
            p.push(("severity", v.clone()));
        }
        if let Some(v) = &self.q {
            p.push(("q", v.clone()));
        }
        p
    }

    /// As typed, for the title.
    pub fn text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = &self.service {
            parts.push(format!("service={v}"));
        }
        if let Some(v) = &self.severity {
            parts.push(format!("severity={v}"));
        }
        if let Some(v) = &self.q {
            parts.push(v.clone());
        }
        parts.join(" ")
    }
}

/// What the logs view shows and how.
#[derive(Debug, Clone, Default)]
pub struct Logs {
    /// Newest last.
    pub lines: VecDeque<Line>,
    /// New lines are kept but the view does not follow them.
    pub paused: bool,
    /// Selected line, counted from the newest (0) upwards; None follows the newest.
    pub selected: Option<usize>,
    /// The search being typed after `/`.
    pub input: Option<String>,
    /// The search whose results are shown (and whose words are highlighted).
    pub search: Option<String>,
    /// Results of `search`, newest first; None while it runs.
    pub results: Option<Vec<LogRecord>>,
    /// Why the tail or the search failed.
    pub error: Option<String>,
    /// What the live tail follows.
    pub filter: TailFilter,
    /// The filter being typed after `f`.
    pub filter_input: Option<String>,
    /// Lines around the selected one (`c`), or why they could not be read.
    pub context: Option<Result<skein_model::api::LogContextResponse, String>>,
    /// Which tail the lines come from: a new filter starts a new one, and lines still on
    /// their way from the previous tail are dropped.
    pub generation: u64,
}

impl Logs {
    /// Adds tail lines, dropping the oldest past [`MAX_LINES`]. A selection stays on its line.
    pub fn push(&mut self, lines: impl IntoIterator<Item = Line>) {
        for l in lines {
            self.lines.push_back(l);
            if let Some(s) = self.selected.as_mut() {
                *s += 1;
            }
            if self.lines.len() > MAX_LINES {
                self.lines.pop_front();
            }
        }
        if let Some(s) = self.selected {
            self.selected = Some(s.min(self.lines.len().saturating_sub(1)));
        }
    }

    /// The lines shown: search results (oldest first) or the tail.
    pub fn shown(&self) -> Vec<&LogRecord> {
        match (&self.search, &self.results) {
            (Some(_), Some(r)) => r.iter().rev().collect(),
            (Some(_), None) => Vec::new(),
            _ => self.lines.iter().map(|l| &l.record).collect(),
        }
    }

    /// The selected record, if any.
    pub fn selected_record(&self) -> Option<&LogRecord> {
        let shown = self.shown();
        let s = self.selected?;
        shown
            .len()
            .checked_sub(1 + s)
            .and_then(|i| shown.get(i).copied())
    }

    /// Moves the selection up (older) by `n`.
    pub fn up(&mut self, n: usize) {
        let len = self.shown().len();
        if len == 0 {
            return;
        }
        // From following, the first step lands on the newest line.
        let s = self.selected.map_or(n.saturating_sub(1), |s| s + n);
        self.selected = Some(s.min(len - 1));
    }

    /// Moves the selection down (newer) by `n`; past the newest it follows again.
    pub fn down(&mut self, n: usize) {
        self.selected = match self.selected {
            Some(s) if s >= n => Some(s - n),
            _ => None,
        };
    }

    /// A search or a filter is being typed: keys are text.
    pub fn typing(&self) -> bool {
        self.input.is_some() || self.filter_input.is_some()
    }

    /// The trace of the selected line, if it has one.
    pub fn selected_trace(&self) -> Option<String> {
        self.selected_record()
            .map(|r| r.trace_id.clone())
            .filter(|t| !t.is_empty())
    }

    /// The view's keys but Enter on a line (it opens its trace, another view); None when the
    /// key is not one of them.
    pub fn key(&mut self, k: Key) -> Option<Option<Cmd>> {
        if let Some(input) = self.filter_input.as_mut() {
            match k {
                Key::Char(c) => input.push(c),
                Key::Backspace => {
                    input.pop();
                }
                Key::Esc => self.filter_input = None,
                Key::Enter => {
                    let f = TailFilter::parse(&self.filter_input.take().unwrap_or_default());
                    self.filter = f.clone();
                    self.generation += 1;
                    self.lines.clear();
                    self.selected = None;
                    return Some(Some(Cmd::Tail(f)));
                }
                _ => return None,
            }
            return Some(None);
        }
        if let Some(input) = self.input.as_mut() {
            match k {
                Key::Char(c) => input.push(c),
                Key::Backspace => {
                    input.pop();
                }
                Key::Esc => self.input = None,
                Key::Enter => {
                    let q = self.input.take().unwrap_or_default();
                    self.selected = None;
                    if q.trim().is_empty() {
                        self.search = None;
                        self.results = None;
                        return Some(None);
                    }
                    self.search = Some(q.clone());
                    self.results = None;
                    return Some(Some(Cmd::Search(q)));
                }
                _ => return None,
            }
            return Some(None);
        }
        match k {
            Key::Char('/') => self.input = Some(String::new()),
            Key::Char('f') => self.filter_input = Some(self.filter.text()),
            Key::Char('c') => {
                let r = self.selected_record()?;
                let cmd = Cmd::Context {
                    service: r.service.clone(),
                    host: Some(r.host.clone()).filter(|h| !h.is_empty()),
                    time: r.time_unix_nano,
                };
                self.context = None;
                return Some(Some(cmd));
            }
            Key::Char('p') | Key::Char(' ') => {
                self.paused = !self.paused;
                // Paused, the view holds on the newest line of the moment; resumed, it follows.
                self.selected = if self.paused && !self.shown().is_empty() {
                    Some(0)
                } else {
                    None
                };
            }
            Key::Esc if self.context.is_some() => self.context = None,
            Key::Esc => {
                self.search = None;
                self.results = None;
                self.selected = None;
            }
            Key::Up | Key::Char('k') => {
                self.paused = true;
                self.up(1);
            }
            Key::Down | Key::Char('j') => self.down(1),
            Key::Char('G') => {
                self.selected = None;
                self.paused = false;
            }
            Key::Char('y') => {
                let r = self.selected_record()?;
                return Some(Some(Cmd::Copy(format!(
                    "{} {} {}",
                    r.service, r.severity_text, r.body
                ))));
            }
            _ => return None,
        }
        Some(None)
    }
}

/// Parts of `text` and whether each matches `needle` (case-insensitive), for highlighting.
pub fn split_matches<'a>(text: &'a str, needle: &str) -> Vec<(&'a str, bool)> {
    let needle = needle.trim();
    if needle.is_empty() {
        return vec![(text, false)];
    }
    let lower = text.to_lowercase();
    let n = needle.to_lowercase();
    // Lower-casing can change byte lengths; highlight only when it did not.
    if lower.len() != text.len() {
        return vec![(text, false)];
    }
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = lower[at..].find(&n) {
        let start = at + i;
        let end = start + n.len();
        if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            break;
        }
        if start > at {
            out.push((&text[at..start], false));
        }
        out.push((&text[start..end], true));
        at = end;
    }
    if at < text.len() {
        out.push((&text[at..], false));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn line(seq: u64, body: &str) -> Line {
        Line {
            seq,
            record: LogRecord {
                body: body.into(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn bounded_and_the_selection_stays_on_its_line() {
        let mut l = Logs::default();
        l.push((0..MAX_LINES as u64 + 10).map(|i| line(i, &format!("b{i}"))));
        assert_eq!(l.lines.len(), MAX_LINES);
        assert_eq!(l.lines.front().unwrap().seq, 10);
        l.up(2);
        assert_eq!(
            l.selected_record().unwrap().body,
            format!("b{}", MAX_LINES + 8)
        );
        l.push([line(9_999_999, "new")]);
        assert_eq!(
            l.selected_record().unwrap().body,
            format!("b{}", MAX_LINES + 8),
            "new lines do not move the selection"
        );
        l.down(5);
        assert_eq!(l.selected, None, "past the newest it follows again");
    }

    #[test]
    fn filters_read_keys_and_words() {
        let f = TailFilter::parse("service=payment  bank timeout severity=error");
        assert_eq!(f.service.as_deref(), Some("payment"));
        assert_eq!(f.severity.as_deref(), Some("error"));
        assert_eq!(f.q.as_deref(), Some("bank timeout"));
        assert_eq!(f.text(), "service=payment severity=error bank timeout");
        assert_eq!(TailFilter::parse(""), TailFilter::default());
    }

    #[test]
    fn matches_are_split_case_insensitively() {
        assert_eq!(
            split_matches("Bank TIMEOUT, timeout", "timeout"),
            vec![
                ("Bank ", false),
                ("TIMEOUT", true),
                (", ", false),
                ("timeout", true)
            ]
        );
        assert_eq!(split_matches("abc", ""), vec![("abc", false)]);
        assert_eq!(split_matches("abc", "x"), vec![("abc", false)]);
    }
}
