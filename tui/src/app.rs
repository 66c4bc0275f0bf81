//! The dashboard's state and how messages change it (ratatui's Elm pattern: model, message,
//! update). Pure: no terminal, no network, no clock; the loop in [`crate::run`] feeds it.
//!
//! Each view keeps its own state and keys beside its concept: [`crate::overview`],
//! [`crate::logs`], [`crate::traces`], [`crate::waterfall`] (the trace view),
//! [`crate::metrics`] and [`crate::alerts`]. The [`Model`] holds one of each and what the views
//! share; [`update`] routes messages and keys to them and does what crosses views (Enter on a
//! log line or a trace opens the trace view).

use crate::alerts::Alerts;
use crate::dashboard::Dashboard;
use crate::logs::{Line, Logs, TailFilter};
use crate::metrics::{Metrics, PanelData};
use crate::overview::{HostSeries, Overview};
use crate::traces::Traces;
use crate::waterfall::Trace;
use skein_model::LogRecord;
use skein_model::alert_api::AlertsResponse;
use skein_model::api::HostsResponse;
use skein_model::api::{TraceResponse, TraceSummary};
use skein_model::metrics_api::{ServiceHealth, ServicesResponse};

/// The views, in Tab order; `1`..`6` pick them directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Services, hosts, alerts.
    Overview,
    /// Live tail and search over history.
    Logs,
    /// Recent traces, filtered by errors, least duration, service and operation.
    Traces,
    /// One trace's waterfall with its logs.
    Trace,
    /// The dashboard's panels: charts, sparklines, gauges, tables, log streams.
    Metrics,
    /// Firing and pending alerts; silence the selected one.
    Alerts,
}

impl View {
    /// Every view, in order.
    pub const ALL: [View; 6] = [
        View::Overview,
        View::Logs,
        View::Traces,
        View::Trace,
        View::Metrics,
        View::Alerts,
    ];

    /// Its tab title.
    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Logs => "Logs",
            View::Traces => "Traces",
            View::Trace => "Trace",
            View::Metrics => "Metrics",
            View::Alerts => "Alerts",
        }
    }

    fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

/// The connection to the query API.
#[derive(Debug, Clone, PartialEq)]
pub enum Conn {
    /// No answer yet.
    Connecting,
    /// The last refresh worked, at this time (Unix ms).
    Ok {
        /// When.
        at_ms: i64,
    },
    /// The last refresh failed; older data stays on screen.
    Failed {
        /// Why, in words.
        error: String,
        /// When (Unix ms).
        at_ms: i64,
        /// Last success, if any.
        last_ok_ms: Option<i64>,
    },
}

/// What one refresh of the overview brought.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Services and their RED figures.
    pub services: ServicesResponse,
    /// Hosts and their agents.
    pub hosts: HostsResponse,
    /// Pending and firing alerts.
    pub alerts: AlertsResponse,
}

/// A key, reduced to what the dashboard uses (so the update needs no terminal types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A character.
    Char(char),
    /// Tab.
    Tab,
    /// Shift-Tab.
    BackTab,
    /// Up arrow.
    Up,
    /// Down arrow.
    Down,
    /// Escape.
    Esc,
    /// Enter.
    Enter,
    /// Backspace.
    Backspace,
    /// Ctrl-C.
    CtrlC,
}

/// Everything that can happen.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// A key was pressed.
    Key(Key),
    /// A refresh came back.
    Fetched {
        /// The data.
        snapshot: Box<Snapshot>,
        /// When (Unix ms).
        at_ms: i64,
    },
    /// A refresh failed.
    FetchFailed {
        /// Why.
        error: String,
        /// When (Unix ms).
        at_ms: i64,
    },
    /// New lines from the live tail, whichever tail they come from (the loop sends
    /// [`Msg::TailBatch`], so that lines from a replaced tail are dropped).
    TailLines(Vec<Line>),
    /// New lines from the live tail number `generation`; dropped when a newer tail runs.
    TailBatch {
        /// The tail they come from.
        generation: u64,
        /// The lines.
        lines: Vec<Line>,
    },
    /// The live tail dropped (it reconnects by itself).
    TailFailed(String),
    /// A silence was made (its ID) or refused (why).
    Silenced(Result<String, String>),
    /// Recent traces came back.
    Traces(Result<Vec<TraceSummary>, String>),
    /// Lines around a line came back.
    Context(Result<skein_model::api::LogContextResponse, String>),
    /// Hosts' recent resource figures came back.
    HostSeries(std::collections::BTreeMap<String, HostSeries>),
    /// A dashboard panel's data came back.
    Panel {
        /// Its index.
        index: usize,
        /// The data or why it failed.
        result: Result<PanelData, String>,
        /// When (Unix ms).
        at_ms: i64,
    },
    /// A trace came back (None: not found).
    TraceLoaded(Result<Option<TraceResponse>, String>),
    /// A search over history came back.
    SearchDone {
        /// The search it answers.
        query: String,
        /// Records, newest first, or why it failed.
        result: Result<Vec<LogRecord>, String>,
    },
}

/// Work the loop does for the update.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    /// Search logs over history.
    Search(String),
    /// Put this text on the clipboard (OSC 52).
    Copy(String),
    /// Silence alerts with exactly these labels for an hour.
    Silence(std::collections::BTreeMap<String, String>),
    /// Load recent traces: only with errors, at least this long, of a service or operation.
    LoadTraces {
        /// Only traces with an error span.
        errors_only: bool,
        /// Least duration, as the API takes it (`2s`).
        min_duration: Option<String>,
        /// Only traces with a span of this service.
        service: Option<String>,
        /// Only traces with a span of this name.
        operation: Option<String>,
    },
    /// Load one trace by ID or key.
    OpenTrace(String),
    /// Follow the live tail with this filter from now on.
    Tail(TailFilter),
    /// Read every panel of the dashboard over this window (`1h`).
    LoadPanels(String),
    /// Read the lines around a moment of one service and host.
    Context {
        /// Service.
        service: String,
        /// Host, when known.
        host: Option<String>,
        /// The line's time (ns).
        time: u64,
    },
}

/// The dashboard's state: what the views share, then one field per view.
#[derive(Debug, Clone)]
pub struct Model {
    /// The query API's base URL.
    pub api: String,
    /// The view on screen.
    pub view: View,
    /// Connection state.
    pub conn: Conn,
    /// The newest data (kept when a refresh fails); the overview and the alerts view show it.
    pub data: Option<Snapshot>,
    /// The key help is open.
    pub help: bool,
    /// Quit was asked.
    pub quit: bool,
    /// The overview.
    pub overview: Overview,
    /// The logs view.
    pub logs: Logs,
    /// The traces view.
    pub traces: Traces,
    /// The trace view.
    pub trace: Trace,
    /// The metrics view.
    pub metrics: Metrics,
    /// The alerts view.
    pub alerts: Alerts,
}

impl Model {
    /// A dashboard for the API at `api`, on the overview, with the built-in dashboard.
    pub fn new(api: &str) -> Model {
        let d = crate::dashboard::parse("default dashboard", crate::dashboard::DEFAULT).unwrap_or(
            Dashboard {
                title: String::new(),
                panels: Vec::new(),
            },
        );
        Model::with_dashboard(api, d)
    }

    /// A dashboard for the API at `api` with these panels in the metrics view.
    pub fn with_dashboard(api: &str, dashboard: Dashboard) -> Model {
        Model {
            api: api.to_string(),
            view: View::Overview,
            conn: Conn::Connecting,
            data: None,
            help: false,
            quit: false,
            overview: Overview::default(),
            logs: Logs::default(),
            traces: Traces::default(),
            trace: Trace::default(),
            metrics: Metrics::new(dashboard),
            alerts: Alerts::default(),
        }
    }

    /// The services in the overview's order.
    pub fn services(&self) -> Vec<&ServiceHealth> {
        self.overview.services(self.data.as_ref())
    }
}

/// Applies a message; returns work for the loop, if any.
pub fn update(m: &mut Model, msg: Msg) -> Option<Cmd> {
    match msg {
        Msg::TailBatch { generation, lines } => {
            if generation == m.logs.generation {
                m.logs.error = None;
                m.logs.push(lines);
            }
        }
        Msg::TailLines(lines) => {
            m.logs.error = None;
            m.logs.push(lines);
        }
        Msg::TailFailed(e) => m.logs.error = Some(format!("live tail: {e}; reconnecting")),
        Msg::Context(r) => m.logs.context = Some(r),
        Msg::HostSeries(h) => m.overview.host_series = h,
        Msg::Panel { index, result, .. } => m.metrics.loaded(index, result),
        Msg::Traces(r) => m.traces.loaded(r),
        Msg::TraceLoaded(r) => m.trace.loaded(r),
        Msg::Silenced(r) => m.alerts.silenced(r),
        Msg::SearchDone { query, result } => {
            if m.logs.search.as_deref() == Some(query.as_str()) {
                match result {
                    Ok(r) => {
                        m.logs.results = Some(r);
                        m.logs.error = None;
                    }
                    Err(e) => m.logs.error = Some(format!("search: {e}")),
                }
            }
        }
        Msg::Fetched { snapshot, at_ms } => {
            m.data = Some(*snapshot);
            m.conn = Conn::Ok { at_ms };
            let n = m.services().len();
            m.overview.selected = m.overview.selected.min(n.saturating_sub(1));
            if m.view == View::Metrics && at_ms - m.metrics.asked_ms >= 15_000 {
                m.metrics.asked_ms = at_ms;
                return Some(m.metrics.load());
            }
        }
        Msg::FetchFailed { error, at_ms } => {
            let last_ok_ms = match &m.conn {
                Conn::Ok { at_ms } => Some(*at_ms),
                Conn::Failed { last_ok_ms, .. } => *last_ok_ms,
                Conn::Connecting => None,
            };
            m.conn = Conn::Failed {
                error,
                at_ms,
                last_ok_ms,
            };
        }
        Msg::Key(k) => return key(m, k),
    }
    None
}

/// The alerts shown in the alerts view, firing first (as the API orders them).
pub fn alerts(m: &Model) -> &[skein_model::alert_api::AlertInfo] {
    shown_alerts(m.data.as_ref())
}

fn shown_alerts(data: Option<&Snapshot>) -> &[skein_model::alert_api::AlertInfo] {
    data.map(|d| d.alerts.alerts.as_slice()).unwrap_or_default()
}

fn open_trace(m: &mut Model, key: String) -> Option<Cmd> {
    m.view = View::Trace;
    m.trace.note = Some("loading…".into());
    Some(Cmd::OpenTrace(key))
}

/// Keys of the view on screen; None when the key is not one of them.
fn view_key(m: &mut Model, k: Key) -> Option<Option<Cmd>> {
    match m.view {
        View::Overview => None,
        View::Logs => {
            let typing = m.logs.typing();
            if k == Key::Enter
                && !typing
                && let Some(id) = m.logs.selected_trace()
            {
                return Some(open_trace(m, id));
            }
            match m.logs.key(k) {
                Some(cmd) => Some(cmd),
                // While typing, a key the prompt does not take does nothing else either.
                None if typing => Some(None),
                None => None,
            }
        }
        View::Traces => {
            if k == Key::Enter && m.traces.input.is_none() {
                let id = m.traces.selected_id()?;
                return Some(open_trace(m, id));
            }
            m.traces.key(k)
        }
        View::Trace => m.trace.open.as_mut()?.key(k).then_some(None),
        View::Metrics => m.metrics.key(k),
        View::Alerts => m.alerts.key(shown_alerts(m.data.as_ref()), k),
    }
}

fn key(m: &mut Model, k: Key) -> Option<Cmd> {
    if !m.help
        && !matches!(k, Key::CtrlC)
        && let Some(cmd) = view_key(m, k)
    {
        return cmd;
    }
    if m.help {
        // Any key closes the help; q and Ctrl-C still quit.
        m.help = false;
        if !matches!(k, Key::Char('q') | Key::CtrlC) {
            return None;
        }
    }
    let n = View::ALL.len();
    match k {
        Key::Char('q') | Key::CtrlC => m.quit = true,
        Key::Char('?') => m.help = true,
        Key::Tab | Key::Char('l') => m.view = View::ALL[(m.view.index() + 1) % n],
        Key::BackTab | Key::Char('h') => m.view = View::ALL[(m.view.index() + n - 1) % n],
        Key::Char(c @ '1'..='6') => {
            m.view = View::ALL[(c as usize) - ('1' as usize)];
        }
        _ => return other_key(m, k),
    }
    // A view with nothing read yet asks for its data.
    if m.view == View::Traces && m.traces.list.is_none() {
        return Some(m.traces.load());
    }
    if m.view == View::Metrics && m.metrics.is_empty() {
        return Some(m.metrics.load());
    }
    None
}

/// Keys no view took: sorting and moving in the services table.
fn other_key(m: &mut Model, k: Key) -> Option<Cmd> {
    match k {
        Key::Char('s') if m.view == View::Overview => m.overview.sort = m.overview.sort.next(),
        Key::Down | Key::Char('j') => {
            let last = m.services().len().saturating_sub(1);
            m.overview.selected = (m.overview.selected + 1).min(last);
        }
        Key::Up | Key::Char('k') => m.overview.selected = m.overview.selected.saturating_sub(1),
        _ => {}
    }
    None
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
