//! The metrics view's state: the dashboard, each panel's data, and the window the panels are
//! read over. Pure, like [`crate::app`]; the loop reads the panels.

use crate::app::{Cmd, Key};
use crate::dashboard::Dashboard;
use skein_model::LogRecord;

/// The windows `w` cycles through in the metrics view.
pub const WINDOWS: [&str; 5] = ["15m", "1h", "6h", "24h", "7d"];

/// What a dashboard panel shows.
#[derive(Debug, Clone, PartialEq)]
pub enum PanelData {
    /// Series of a metric query.
    Metric(skein_model::metrics_api::MetricQueryResponse),
    /// Log lines, newest first.
    Logs(Vec<LogRecord>),
}

/// What the metrics view shows and how.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// The dashboard.
    pub dashboard: Dashboard,
    /// Each panel's data, by index.
    pub panels: Vec<Option<Result<PanelData, String>>>,
    /// Index in [`WINDOWS`].
    pub window: usize,
    /// When the panels were last asked for (Unix ms).
    pub asked_ms: i64,
}

impl Metrics {
    /// The view of `dashboard`, nothing read yet, over the last hour.
    pub fn new(dashboard: Dashboard) -> Metrics {
        let n = dashboard.panels.len();
        Metrics {
            dashboard,
            panels: vec![None; n],
            window: 1,
            asked_ms: 0,
        }
    }

    /// The command that reads every panel over the view's window.
    pub fn load(&self) -> Cmd {
        Cmd::LoadPanels(WINDOWS[self.window % WINDOWS.len()].to_string())
    }

    /// Takes one panel's data that came back.
    pub fn loaded(&mut self, index: usize, result: Result<PanelData, String>) {
        if let Some(p) = self.panels.get_mut(index) {
            *p = Some(result);
        }
    }

    /// No panel has data or an error yet.
    pub fn is_empty(&self) -> bool {
        self.panels.iter().all(Option::is_none)
    }

    /// The view's keys; None when the key is not one of them.
    pub fn key(&mut self, k: Key) -> Option<Option<Cmd>> {
        match k {
            Key::Char('w') => {
                self.window = (self.window + 1) % WINDOWS.len();
                self.panels = vec![None; self.dashboard.panels.len()];
                Some(Some(self.load()))
            }
            Key::Char('r') => Some(Some(self.load())),
            _ => None,
        }
    }
}
