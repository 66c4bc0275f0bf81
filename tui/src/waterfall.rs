//! The trace view's state ([`Trace`]): one trace laid out as a waterfall. On top of the span
//! tree ([`SpanTree`], the one the API and the CLI use): times corrected for clock skew
//! between hosts, the critical path, each span's logs under it, and collapsed subtrees. Built
//! once when a trace is opened; the view then draws only the rows on screen, so a
//! 10,000-span trace stays fluid.
//!
//! Clock skew, as Jaeger does it: a child that starts before its parent or ends after it
//! because host clocks disagree is shifted inside its parent, and so are its descendants; the
//! span is marked adjusted. The API keeps the raw times. Lying clocks (an end before the
//! start, times near `u64::MAX`) are laid out with saturating and clamped arithmetic, so for
//! every span `t0 <= start <= end <= t1` holds and the view's subtractions cannot overflow.

use crate::app::Key;
use skein_model::api::TraceResponse;
use skein_model::span_tree::SpanTree;
use skein_model::{LogRecord, Span};
use std::collections::{HashMap, HashSet};

/// A row of the waterfall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// A span, by index.
    Span(usize),
    /// A log line under a span: (log index, depth to draw it at).
    Log(usize, usize),
}

/// A trace ready to draw.
#[derive(Debug, Clone)]
pub struct Waterfall {
    /// The trace ID.
    pub trace_id: String,
    /// Spans as the API gave them.
    pub spans: Vec<Span>,
    /// Span indexes in tree order: roots by start, each followed by its subtree.
    pub order: Vec<usize>,
    /// Logs by time.
    pub logs: Vec<LogRecord>,
    /// Depth of each span (roots 0).
    pub depth: Vec<usize>,
    /// Children of each span, by start.
    pub children: Vec<Vec<usize>>,
    /// Start after the skew correction (ns).
    pub start: Vec<u64>,
    /// End after the skew correction (ns).
    pub end: Vec<u64>,
    /// The span was shifted to fit inside its parent.
    pub adjusted: Vec<bool>,
    /// The span is on the critical path (what the trace's end waited for).
    pub critical: Vec<bool>,
    /// Logs of each span (by `span_id`), by time.
    pub logs_of: Vec<Vec<usize>>,
    /// Logs tied to no span of the trace.
    pub loose_logs: Vec<usize>,
    /// Earliest start and latest end (ns).
    pub t0: u64,
    /// Latest end (ns).
    pub t1: u64,
    /// Service names in order of appearance (their colors).
    pub services: Vec<String>,
    /// Collapsed spans.
    pub collapsed: HashSet<usize>,
    /// The rows, given what is collapsed.
    pub rows: Vec<Row>,
    /// Selected row.
    pub selected: usize,
    /// The answer was cut by a bound.
    pub truncated: bool,
}

impl Waterfall {
    /// Lays out an API answer.
    pub fn new(resp: TraceResponse) -> Waterfall {
        let spans = resp.spans;
        let n = spans.len();
        // The tree is the shared one, so the waterfall, the CLI and the API agree on it.
        let SpanTree {
            order,
            parent,
            children,
            depth,
        } = SpanTree::build(&spans);
        let mut start: Vec<u64> = spans.iter().map(|s| s.start_unix_nano).collect();
        let mut end: Vec<u64> = spans
            .iter()
            .map(|s| s.end_unix_nano.max(s.start_unix_nano))
            .collect();
        let mut adjusted = vec![false; n];
        for &i in &order {
            let Some(p) = parent[i] else { continue };
            let (ps, pe) = (start[p], end[p]);
            let len = end[i].saturating_sub(start[i]);
            let mut s = start[i];
            if s < ps {
                s = ps;
            }
            if s.saturating_add(len) > pe {
                s = pe.saturating_sub(len).max(ps);
            }
            if s != start[i] {
                adjusted[i] = true;
                let shift = s as i128 - start[i] as i128;
                // The whole subtree moves with it (same host clock, most likely).
                let mut todo = vec![i];
                while let Some(j) = todo.pop() {
                    start[j] = shifted(start[j], shift);
                    end[j] = shifted(end[j], shift);
                    todo.extend(children[j].iter().copied());
                }
            }
        }
        let t0 = start.iter().copied().min().unwrap_or(0);
        // At most u64::MAX: the view divides by `t1 - t0`, at least 1 when it can be.
        let t1 = end
            .iter()
            .copied()
            .max()
            .unwrap_or(t0)
            .max(t0.saturating_add(1));
        // The critical path: from the first root, the child that ended last, down the tree.
        let mut critical = vec![false; n];
        if let Some(&root) = order.first() {
            let mut at = Some(root);
            while let Some(i) = at {
                critical[i] = true;
                at = children[i].iter().copied().max_by_key(|&c| end[c]);
            }
        }
        // Logs name only a span ID; when spans share one, its logs go under the last of them.
        let by_id: HashMap<&str, usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id.as_str(), i))
            .collect();
        let mut logs_of: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut loose_logs = Vec::new();
        for (li, l) in resp.logs.iter().enumerate() {
            match by_id.get(l.span_id.as_str()) {
                Some(&i) if !l.span_id.is_empty() => logs_of[i].push(li),
                _ => loose_logs.push(li),
            }
        }
        let mut services: Vec<String> = Vec::new();
        for &i in &order {
            if !services.contains(&spans[i].service) {
                services.push(spans[i].service.clone());
            }
        }
        let mut w = Waterfall {
            trace_id: resp.trace_id,
            spans,
            order,
            logs: resp.logs,
            depth,
            children,
            start,
            end,
            adjusted,
            critical,
            logs_of,
            loose_logs,
            t0,
            t1,
            services,
            collapsed: HashSet::new(),
            rows: Vec::new(),
            selected: 0,
            truncated: resp.truncated,
        };
        w.rebuild();
        w
    }
}

impl Waterfall {
    /// Rows for the current collapsed set: spans in tree order, each followed by its logs;
    /// the children and logs of a collapsed span are left out.
    pub fn rebuild(&mut self) {
        let mut rows = Vec::with_capacity(self.spans.len() + self.logs.len());
        let mut hidden_below: Option<usize> = None;
        for &i in &self.order {
            let d = self.depth[i];
            if let Some(h) = hidden_below {
                if d > h {
                    continue;
                }
                hidden_below = None;
            }
            rows.push(Row::Span(i));
            if self.collapsed.contains(&i) {
                hidden_below = Some(d);
                continue;
            }
            rows.extend(self.logs_of[i].iter().map(|&l| Row::Log(l, d + 1)));
        }
        rows.extend(self.loose_logs.iter().map(|&l| Row::Log(l, 0)));
        self.rows = rows;
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    /// Collapses or expands the selected span's subtree.
    pub fn toggle(&mut self) {
        if let Some(Row::Span(i)) = self.rows.get(self.selected).copied()
            && (!self.children[i].is_empty() || !self.logs_of[i].is_empty())
        {
            if !self.collapsed.remove(&i) {
                self.collapsed.insert(i);
            }
            self.rebuild();
        }
    }

    /// Folds (`true`) or unfolds the selected span's subtree.
    pub fn fold(&mut self, fold: bool) {
        if let Some(Row::Span(i)) = self.rows.get(self.selected).copied()
            && self.collapsed.contains(&i) != fold
        {
            self.toggle();
        }
    }

    /// The selected span, if a span row is selected.
    pub fn selected_span(&self) -> Option<usize> {
        match self.rows.get(self.selected) {
            Some(Row::Span(i)) => Some(*i),
            _ => None,
        }
    }

    /// The first row of a window of `height` rows that keeps the selection in view.
    pub fn window_start(&self, height: usize) -> usize {
        if height == 0 {
            return 0;
        }
        let max_start = self.rows.len().saturating_sub(height);
        self.selected.saturating_sub(height / 2).min(max_start)
    }

    /// The trace view's keys: move, fold and unfold, jump to either end; false when the key
    /// is not one of them.
    pub fn key(&mut self, k: Key) -> bool {
        match k {
            Key::Down | Key::Char('j') => {
                self.selected = (self.selected + 1).min(self.rows.len().saturating_sub(1))
            }
            Key::Up | Key::Char('k') => self.selected = self.selected.saturating_sub(1),
            Key::Enter | Key::Char(' ') => self.toggle(),
            Key::Char('h') => self.fold(true),
            Key::Char('l') => self.fold(false),
            Key::Char('G') => self.selected = self.rows.len().saturating_sub(1),
            Key::Char('g') => self.selected = 0,
            _ => return false,
        }
        true
    }
}

/// A time moved by `shift` ns, kept within 0..=u64::MAX: clocks can lie by any amount, and
/// clamping both ends of a span keeps its end at or after its start.
fn shifted(t: u64, shift: i128) -> u64 {
    u64::try_from((i128::from(t) + shift).clamp(0, i128::from(u64::MAX))).unwrap_or(u64::MAX)
}

/// The trace view's state: the open trace, or why none is open.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// The open trace.
    pub open: Option<Waterfall>,
    /// Why the trace could not be opened, or that it is loading.
    pub note: Option<String>,
}

impl Trace {
    /// Takes a trace that came back (None: not found). A failure keeps the trace on screen.
    pub fn loaded(&mut self, r: Result<Option<TraceResponse>, String>) {
        match r {
            Ok(Some(t)) => {
                self.open = Some(Waterfall::new(t));
                self.note = None;
            }
            Ok(None) => self.note = Some("no such trace".into()),
            Err(e) => self.note = Some(e),
        }
    }
}

#[cfg(test)]
#[path = "waterfall_tests.rs"]
mod tests;
