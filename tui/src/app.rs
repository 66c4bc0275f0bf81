//! The dashboard's state and how messages change it (ratatui's Elm pattern: model, message,
//! update). Pure: no terminal, no network, no clock; the loop in [`crate::run`] feeds it.

use crate::dashboard::Dashboard;
use crate::logs::{Line, Logs, TailFilter};
use crate::waterfall::Waterfall;
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
    /// Recent traces, filtered by errors and least duration.
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

/// How the services table is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// By name.
    Name,
    /// Busiest first.
    Rate,
    /// Most failing first.
    Errors,
    /// Slowest p99 first.
    P99,
}

impl SortBy {
    /// Next order (`s` cycles).
    pub fn next(self) -> SortBy {
        match self {
            SortBy::Name => SortBy::Rate,
            SortBy::Rate => SortBy::Errors,
            SortBy::Errors => SortBy::P99,
            SortBy::P99 => SortBy::Name,
        }
    }

    /// In words, for the table title.
    pub fn label(self) -> &'static str {
        match self {
            SortBy::Name => "name",
            SortBy::Rate => "rate",
            SortBy::Errors => "error %",
            SortBy::P99 => "p99",
        }
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
    /// New lines from the live tail.
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

/// A host's recent resource figures (oldest first), for the overview's sparklines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostSeries {
    /// CPU in use, 0 to 1.
    pub cpu: Vec<f64>,
    /// Memory in use, 0 to 1.
    pub mem: Vec<f64>,
    /// The fullest filesystem, 0 to 1.
    pub disk: Vec<f64>,
    /// Network bytes per second, both ways.
    pub net: Vec<f64>,
}

/// What a dashboard panel shows.
#[derive(Debug, Clone, PartialEq)]
pub enum PanelData {
    /// Series of a metric query.
    Metric(skein_model::metrics_api::MetricQueryResponse),
    /// Log lines, newest first.
    Logs(Vec<LogRecord>),
}

/// The windows `w` cycles through in the metrics view.
pub const WINDOWS: [&str; 5] = ["15m", "1h", "6h", "24h", "7d"];

/// The least durations `d` cycles through in the traces view.
pub const MIN_DURATIONS: [Option<&str>; 4] = [None, Some("100ms"), Some("1s"), Some("2s")];

/// The dashboard's state.
#[derive(Debug, Clone)]
pub struct Model {
    /// The query API's base URL.
    pub api: String,
    /// The view on screen.
    pub view: View,
    /// Connection state.
    pub conn: Conn,
    /// The newest data (kept when a refresh fails).
    pub data: Option<Snapshot>,
    /// Services order.
    pub sort: SortBy,
    /// Selected row of the services table.
    pub selected: usize,
    /// The key help is open.
    pub help: bool,
    /// Quit was asked.
    pub quit: bool,
    /// The logs view.
    pub logs: Logs,
    /// Selected row of the alerts view.
    pub alert_selected: usize,
    /// The last word from a silence made here.
    pub alert_note: Option<String>,
    /// Recent traces, or why they could not be read; None while loading.
    pub traces: Option<Result<Vec<TraceSummary>, String>>,
    /// Selected row of the traces view.
    pub traces_selected: usize,
    /// Traces view: only traces with errors.
    pub traces_errors_only: bool,
    /// Traces view: index in [`MIN_DURATIONS`].
    pub traces_min: usize,
    /// Traces view: `service=… operation=…` filter.
    pub traces_filter: (Option<String>, Option<String>),
    /// Traces view: the filter being typed after `f`.
    pub traces_input: Option<String>,
    /// The open trace.
    pub trace: Option<Waterfall>,
    /// Why the trace could not be opened, or "loading".
    pub trace_note: Option<String>,
    /// The dashboard of the metrics view.
    pub dashboard: Dashboard,
    /// Each panel's data, by index.
    pub panels: Vec<Option<Result<PanelData, String>>>,
    /// Index in [`WINDOWS`].
    pub window: usize,
    /// When the panels were last asked for (Unix ms).
    pub panels_asked_ms: i64,
    /// Hosts' recent resource figures, by host.
    pub host_series: std::collections::BTreeMap<String, HostSeries>,
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
        let n = dashboard.panels.len();
        Model {
            api: api.to_string(),
            view: View::Overview,
            conn: Conn::Connecting,
            data: None,
            sort: SortBy::Name,
            selected: 0,
            help: false,
            quit: false,
            logs: Logs::default(),
            alert_selected: 0,
            alert_note: None,
            traces: None,
            traces_selected: 0,
            traces_errors_only: false,
            traces_min: 0,
            traces_filter: (None, None),
            traces_input: None,
            trace: None,
            trace_note: None,
            dashboard,
            panels: vec![None; n],
            window: 1,
            panels_asked_ms: 0,
            host_series: Default::default(),
        }
    }

    /// The services in the chosen order.
    pub fn services(&self) -> Vec<&ServiceHealth> {
        let Some(d) = &self.data else {
            return Vec::new();
        };
        let mut v: Vec<&ServiceHealth> = d.services.services.iter().collect();
        let desc = |a: Option<f64>, b: Option<f64>| {
            b.unwrap_or(f64::MIN)
                .partial_cmp(&a.unwrap_or(f64::MIN))
                .unwrap_or(std::cmp::Ordering::Equal)
        };
        match self.sort {
            SortBy::Name => v.sort_by(|a, b| a.name.cmp(&b.name)),
            SortBy::Rate => v.sort_by(|a, b| desc(Some(a.rate), Some(b.rate))),
            SortBy::Errors => v.sort_by(|a, b| desc(a.error_rate, b.error_rate)),
            SortBy::P99 => v.sort_by(|a, b| desc(a.p99_ms, b.p99_ms)),
        }
        v
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
        Msg::HostSeries(h) => m.host_series = h,
        Msg::Panel { index, result, .. } => {
            if let Some(p) = m.panels.get_mut(index) {
                *p = Some(result);
            }
        }
        Msg::Traces(r) => {
            let n = r.as_ref().map(|v| v.len()).unwrap_or(0);
            m.traces = Some(r);
            m.traces_selected = m.traces_selected.min(n.saturating_sub(1));
        }
        Msg::TraceLoaded(r) => match r {
            Ok(Some(t)) => {
                m.trace = Some(Waterfall::new(t));
                m.trace_note = None;
            }
            Ok(None) => m.trace_note = Some("no such trace".into()),
            Err(e) => m.trace_note = Some(e),
        },
        Msg::Silenced(r) => {
            m.alert_note = Some(match r {
                Ok(id) => format!("silenced for 1h: {id}"),
                Err(e) => format!("silence refused: {e}"),
            })
        }
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
            m.selected = m.selected.min(n.saturating_sub(1));
            if m.view == View::Metrics && at_ms - m.panels_asked_ms >= 15_000 {
                m.panels_asked_ms = at_ms;
                return Some(load_panels(m));
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

/// Keys of the logs view; None when the key is not one of them.
fn logs_key(m: &mut Model, k: Key) -> Option<Option<Cmd>> {
    let l = &mut m.logs;
    if let Some(input) = l.filter_input.as_mut() {
        match k {
            Key::Char(c) => input.push(c),
            Key::Backspace => {
                input.pop();
            }
            Key::Esc => l.filter_input = None,
            Key::Enter => {
                let f = TailFilter::parse(&l.filter_input.take().unwrap_or_default());
                l.filter = f.clone();
                l.generation += 1;
                l.lines.clear();
                l.selected = None;
                return Some(Some(Cmd::Tail(f)));
            }
            _ => return None,
        }
        return Some(None);
    }
    if let Some(input) = l.input.as_mut() {
        match k {
            Key::Char(c) => input.push(c),
            Key::Backspace => {
                input.pop();
            }
            Key::Esc => l.input = None,
            Key::Enter => {
                let q = l.input.take().unwrap_or_default();
                l.selected = None;
                if q.trim().is_empty() {
                    l.search = None;
                    l.results = None;
                    return Some(None);
                }
                l.search = Some(q.clone());
                l.results = None;
                return Some(Some(Cmd::Search(q)));
            }
            _ => return None,
        }
        return Some(None);
    }
    match k {
        Key::Char('/') => l.input = Some(String::new()),
        Key::Char('f') => l.filter_input = Some(l.filter.text()),
        Key::Char('c') => {
            let r = l.selected_record()?;
            let cmd = Cmd::Context {
                service: r.service.clone(),
                host: Some(r.host.clone()).filter(|h| !h.is_empty()),
                time: r.time_unix_nano,
            };
            l.context = None;
            return Some(Some(cmd));
        }
        Key::Char('p') | Key::Char(' ') => {
            l.paused = !l.paused;
            // Paused, the view holds on the newest line of the moment; resumed, it follows.
            l.selected = if l.paused && !l.shown().is_empty() {
                Some(0)
            } else {
                None
            };
        }
        Key::Esc if l.context.is_some() => l.context = None,
        Key::Esc => {
            l.search = None;
            l.results = None;
            l.selected = None;
        }
        Key::Up | Key::Char('k') => {
            l.paused = true;
            l.up(1);
        }
        Key::Down | Key::Char('j') => l.down(1),
        Key::Char('G') => {
            l.selected = None;
            l.paused = false;
        }
        Key::Char('y') => {
            let r = l.selected_record()?;
            return Some(Some(Cmd::Copy(format!(
                "{} {} {}",
                r.service, r.severity_text, r.body
            ))));
        }
        _ => return None,
    }
    Some(None)
}

/// The alerts shown in the alerts view, firing first (as the API orders them).
pub fn alerts(m: &Model) -> &[skein_model::alert_api::AlertInfo] {
    m.data
        .as_ref()
        .map(|d| d.alerts.alerts.as_slice())
        .unwrap_or_default()
}

/// The command that reads every panel over the view's window.
pub fn load_panels(m: &Model) -> Cmd {
    Cmd::LoadPanels(WINDOWS[m.window % WINDOWS.len()].to_string())
}

/// The command that loads the traces list with the view's filters.
pub fn load_traces(m: &Model) -> Cmd {
    Cmd::LoadTraces {
        errors_only: m.traces_errors_only,
        min_duration: MIN_DURATIONS[m.traces_min % MIN_DURATIONS.len()].map(str::to_string),
        service: m.traces_filter.0.clone(),
        operation: m.traces_filter.1.clone(),
    }
}

fn open_trace(m: &mut Model, key: String) -> Option<Cmd> {
    m.view = View::Trace;
    m.trace_note = Some("loading…".into());
    Some(Cmd::OpenTrace(key))
}

/// Reads `service=… operation=…` (an operation may hold spaces: everything after
/// `operation=`).
pub fn parse_traces_filter(text: &str) -> (Option<String>, Option<String>) {
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

fn traces_key(m: &mut Model, k: Key) -> Option<Option<Cmd>> {
    if let Some(input) = m.traces_input.as_mut() {
        match k {
            Key::Char(c) => input.push(c),
            Key::Backspace => {
                input.pop();
            }
            Key::Esc => m.traces_input = None,
            Key::Enter => {
                m.traces_filter = parse_traces_filter(&m.traces_input.take().unwrap_or_default());
                m.traces = None;
                m.traces_selected = 0;
                return Some(Some(load_traces(m)));
            }
            _ => return None,
        }
        return Some(None);
    }
    if k == Key::Char('f') {
        let (s, o) = &m.traces_filter;
        let mut text = String::new();
        if let Some(s) = s {
            text.push_str(&format!("service={s} "));
        }
        if let Some(o) = o {
            text.push_str(&format!("operation={o}"));
        }
        m.traces_input = Some(text);
        return Some(None);
    }
    let n = m
        .traces
        .as_ref()
        .and_then(|t| t.as_ref().ok())
        .map_or(0, Vec::len);
    match k {
        Key::Down | Key::Char('j') => {
            m.traces_selected = (m.traces_selected + 1).min(n.saturating_sub(1))
        }
        Key::Up | Key::Char('k') => m.traces_selected = m.traces_selected.saturating_sub(1),
        Key::Char('e') => {
            m.traces_errors_only = !m.traces_errors_only;
            m.traces = None;
            return Some(Some(load_traces(m)));
        }
        Key::Char('d') => {
            m.traces_min = (m.traces_min + 1) % MIN_DURATIONS.len();
            m.traces = None;
            return Some(Some(load_traces(m)));
        }
        Key::Char('r') => return Some(Some(load_traces(m))),
        Key::Enter => {
            let id = m
                .traces
                .as_ref()
                .and_then(|t| t.as_ref().ok())
                .and_then(|t| t.get(m.traces_selected))
                .map(|t| t.trace_id.clone())?;
            return Some(open_trace(m, id));
        }
        _ => return None,
    }
    Some(None)
}

fn trace_key(m: &mut Model, k: Key) -> Option<Option<Cmd>> {
    let w = m.trace.as_mut()?;
    match k {
        Key::Down | Key::Char('j') => {
            w.selected = (w.selected + 1).min(w.rows.len().saturating_sub(1))
        }
        Key::Up | Key::Char('k') => w.selected = w.selected.saturating_sub(1),
        Key::Enter | Key::Char(' ') => w.toggle(),
        Key::Char('h') => w.fold(true),
        Key::Char('l') => w.fold(false),
        Key::Char('G') => w.selected = w.rows.len().saturating_sub(1),
        Key::Char('g') => w.selected = 0,
        _ => return None,
    }
    Some(None)
}

fn key(m: &mut Model, k: Key) -> Option<Cmd> {
    if !m.help && !matches!(k, Key::CtrlC) {
        let handled = match m.view {
            View::Traces => traces_key(m, k),
            View::Metrics => match k {
                Key::Char('w') => {
                    m.window = (m.window + 1) % WINDOWS.len();
                    m.panels = vec![None; m.dashboard.panels.len()];
                    Some(Some(load_panels(m)))
                }
                Key::Char('r') => Some(Some(load_panels(m))),
                _ => None,
            },
            View::Trace => trace_key(m, k),
            View::Logs
                if k == Key::Enter && m.logs.input.is_none() && m.logs.filter_input.is_none() =>
            {
                let id = m
                    .logs
                    .selected_record()
                    .map(|r| r.trace_id.clone())
                    .filter(|t| !t.is_empty());
                id.map(|id| open_trace(m, id))
            }
            _ => None,
        };
        if let Some(cmd) = handled {
            return cmd;
        }
    }
    if m.view == View::Alerts && !m.help {
        let n = alerts(m).len();
        match k {
            Key::Down | Key::Char('j') => {
                m.alert_selected = (m.alert_selected + 1).min(n.saturating_sub(1));
                return None;
            }
            Key::Up | Key::Char('k') => {
                m.alert_selected = m.alert_selected.saturating_sub(1);
                return None;
            }
            Key::Char('S') => {
                let a = alerts(m).get(m.alert_selected)?;
                return Some(Cmd::Silence(a.labels.clone()));
            }
            _ => {}
        }
    }
    if m.view == View::Logs && !m.help && !matches!(k, Key::CtrlC) {
        let typing = m.logs.input.is_some() || m.logs.filter_input.is_some();
        if let Some(cmd) = logs_key(m, k) {
            return cmd;
        }
        if typing {
            return None;
        }
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
    if m.view == View::Traces && m.traces.is_none() {
        return Some(load_traces(m));
    }
    if m.view == View::Metrics && m.panels.iter().all(Option::is_none) {
        return Some(load_panels(m));
    }
    None
}

fn other_key(m: &mut Model, k: Key) -> Option<Cmd> {
    match k {
        Key::Char('s') if m.view == View::Overview => m.sort = m.sort.next(),
        Key::Down | Key::Char('j') => {
            let last = m.services().len().saturating_sub(1);
            m.selected = (m.selected + 1).min(last);
        }
        Key::Up | Key::Char('k') => m.selected = m.selected.saturating_sub(1),
        _ => {}
    }
    None
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
