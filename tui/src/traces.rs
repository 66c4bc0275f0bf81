//! The traces view's state: recent traces, the selected one, and the filters they were read
//! with (errors only, least duration, service and operation). Pure, like [`crate::app`]; the
//! loop reads the list, and Enter opens the selected trace (see [`crate::app`]).

use crate::app::{Cmd, Key};
use skein_model::api::TraceSummary;

/// The least durations `d` cycles through in the traces view.
pub const MIN_DURATIONS: [Option<&str>; 4] = [None, Some("100ms"), Some("1s"), Some("2s")];

/// What the traces view shows and how.
#[derive(Debug, Clone, Default)]
pub struct Traces {
    /// Recent traces, or why they could not be read; None while loading.
    pub list: Option<Result<Vec<TraceSummary>, String>>,
    /// Selected row.
    pub selected: usize,
    /// Only traces with errors.
    pub errors_only: bool,
    /// Index in [`MIN_DURATIONS`].
    pub min: usize,
    /// The `service=… operation=…` filter.
    pub filter: (Option<String>, Option<String>),
    /// The filter being typed after `f`.
    pub input: Option<String>,
}

/// Reads `service=… operation=…` (an operation may hold spaces: everything after
/// `operation=`).
pub fn parse_filter(text: &str) -> (Option<String>, Option<String>) {
    let (mut service, mut operation) = (None, None);
    let text = text.trim();
    let (head, op) = match text.find("operation=") {
        Some(i) => (&text[..i], Some(text[i + "operation=".len()..].trim())),
        None => (text, None),
    };
    for t in head.split_whitespace() {
        if let Some(v) = t.strip_prefix("service=") {
            service = Some(v.to_string()).filter(|v| !v.is_empty());
        }
    }
    if let Some(o) = op.filter(|o| !o.is_empty()) {
        operation = Some(o.to_string());
    }
    (service, operation)
}

impl Traces {
    /// The command that loads the list with the view's filters.
    pub fn load(&self) -> Cmd {
        Cmd::LoadTraces {
            errors_only: self.errors_only,
            min_duration: MIN_DURATIONS[self.min % MIN_DURATIONS.len()].map(str::to_string),
            service: self.filter.0.clone(),
            operation: self.filter.1.clone(),
        }
    }

    /// Takes a list that came back; the selection stays within it.
    pub fn loaded(&mut self, r: Result<Vec<TraceSummary>, String>) {
        let n = r.as_ref().map(|v| v.len()).unwrap_or(0);
        self.list = Some(r);
        self.selected = self.selected.min(n.saturating_sub(1));
    }

    fn len(&self) -> usize {
        self.list
            .as_ref()
            .and_then(|t| t.as_ref().ok())
            .map_or(0, Vec::len)
    }

    /// The selected trace's ID, if the list has one there.
    pub fn selected_id(&self) -> Option<String> {
        self.list
            .as_ref()
            .and_then(|t| t.as_ref().ok())
            .and_then(|t| t.get(self.selected))
            .map(|t| t.trace_id.clone())
    }

    /// The view's keys but Enter on the list (it opens a trace, another view); None when the
    /// key is not one of them.
    pub fn key(&mut self, k: Key) -> Option<Option<Cmd>> {
        if let Some(input) = self.input.as_mut() {
            match k {
                Key::Char(c) => input.push(c),
                Key::Backspace => {
                    input.pop();
                }
                Key::Esc => self.input = None,
                Key::Enter => {
                    self.filter = parse_filter(&self.input.take().unwrap_or_default());
                    self.list = None;
                    self.selected = 0;
                    return Some(Some(self.load()));
                }
                _ => return None,
            }
            return Some(None);
        }
        if k == Key::Char('f') {
            let (s, o) = &self.filter;
            let mut text = String::new();
            if let Some(s) = s {
                text.push_str(&format!("service={s} "));
            }
            if let Some(o) = o {
                text.push_str(&format!("operation={o}"));
            }
            self.input = Some(text);
            return Some(None);
        }
        let n = self.len();
        match k {
            Key::Down | Key::Char('j') => {
                self.selected = (self.selected + 1).min(n.saturating_sub(1))
            }
            Key::Up | Key::Char('k') => self.selected = self.selected.saturating_sub(1),
            Key::Char('e') => {
                self.errors_only = !self.errors_only;
                self.list = None;
                return Some(Some(self.load()));
            }
            Key::Char('d') => {
                self.min = (self.min + 1) % MIN_DURATIONS.len();
                self.list = None;
                return Some(Some(self.load()));
            }
            Key::Char('r') => return Some(Some(self.load())),
            _ => return None,
        }
        Some(None)
    }
}
