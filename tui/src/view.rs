//! Drawing the model: tabs, the view, the status line, the key help. Pure functions of the
//! model and the clock, so each is tested by rendering into a ratatui `Buffer`. Every string
//! that came from outside goes through [`sanitize`] first.

use crate::app::{Conn, Model, View};
use crate::sparkline::sparkline;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table, Tabs};
use skein_model::sanitize::sanitize;

/// Every key, for `?`.
pub const KEYS: &[(&str, &str)] = &[
    (
        "Tab / Shift-Tab  l h",
        "next / previous view (trace: h/l fold/unfold)",
    ),
    ("1-6", "overview, logs, traces, trace, metrics, alerts"),
    ("↑ ↓  k j", "move"),
    ("s", "sort services: name, rate, error %, p99"),
    ("/", "logs: search history (Enter), Esc back to live"),
    ("p  space", "logs: pause / resume the live tail"),
    ("G", "logs: jump to the newest line"),
    ("y", "logs: copy the selected line"),
    ("f", "logs: follow only service=… severity=… words"),
    ("c", "logs: the lines around the selected one"),
    ("S", "alerts: silence the selected alert for 1h"),
    (
        "Enter",
        "traces/logs: open the trace · trace: fold a subtree",
    ),
    ("e  d  r", "traces: errors only, least duration, reload"),
    ("f", "traces: only service=… operation=…"),
    ("w  r", "metrics: change the window, reload"),
    ("?", "this help"),
    ("q  Ctrl-C", "quit"),
];

fn ago(now_ms: i64, t_ms: i64) -> String {
    let s = (now_ms - t_ms).max(0) / 1000;
    if s >= 60 {
        format!("{}m{}s ago", s / 60, s % 60)
    } else {
        format!("{s}s ago")
    }
}

fn bytes_per_s(b: f64) -> String {
    match b {
        b if b >= 1e9 => format!("{:.1}G/s", b / 1e9),
        b if b >= 1e6 => format!("{:.1}M/s", b / 1e6),
        b if b >= 1e3 => format!("{:.0}k/s", b / 1e3),
        b => format!("{b:.0}B/s"),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

fn ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 1000.0 => format!("{:.2}s", v / 1000.0),
        Some(v) => format!("{v:.0}ms"),
    }
}

/// A bordered table with a bold header row.
pub(crate) fn table<'a>(
    rows: Vec<Row<'a>>,
    widths: &[Constraint],
    header: &[&'a str],
    title: impl Into<Line<'a>>,
) -> Table<'a> {
    Table::new(rows, widths.to_vec())
        .header(Row::new(header.to_vec()).style(Style::default().add_modifier(Modifier::BOLD)))
        .block(Block::default().borders(Borders::ALL).title(title))
}

/// A bordered box holding one message (loading, an error).
pub(crate) fn note(f: &mut Frame<'_>, area: Rect, title: &str, text: &str, color: Color) {
    f.render_widget(
        Paragraph::new(sanitize(text))
            .style(Style::default().fg(color))
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(title.to_string()),
            ),
        area,
    );
}

/// An alert's labels but its name, as `k=v` words.
fn alert_labels(a: &skein_model::alert_api::AlertInfo) -> String {
    a.labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{}={}", sanitize(k), sanitize(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame<'_>, m: &Model, now_ms: i64) {
    let [tabs, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let titles: Vec<String> = View::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{} {}", i + 1, v.title()))
        .collect();
    let selected = View::ALL.iter().position(|v| *v == m.view).unwrap_or(0);
    f.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)),
        tabs,
    );
    match m.view {
        View::Overview => overview(f, body, m),
        View::Logs => crate::view_logs::draw_logs(f, body, m),
        View::Alerts => alerts_view(f, body, m),
        View::Traces => crate::view_trace::draw_traces(f, body, m),
        View::Metrics => crate::view_metrics::draw_metrics(f, body, m),
        View::Trace => crate::view_trace::draw_trace(f, body, m),
    }
    f.render_widget(Paragraph::new(status_line(m, now_ms)), status);
    if m.help {
        help(f, body);
    }
}

/// The status line: the API, the connection, the last refresh.
pub fn status_line(m: &Model, now_ms: i64) -> Line<'static> {
    let api = Span::raw(format!(" · {}", sanitize(&m.api)));
    let state = match &m.conn {
        Conn::Connecting => Span::styled("connecting…", Style::default().fg(Color::Yellow)),
        Conn::Ok { at_ms } => Span::styled(
            format!("connected · refreshed {}", ago(now_ms, *at_ms)),
            Style::default().fg(Color::Green),
        ),
        Conn::Failed {
            error, last_ok_ms, ..
        } => Span::styled(
            format!(
                "unreachable ({}) · retrying · data from {}",
                sanitize(error),
                last_ok_ms.map_or("never".into(), |t| ago(now_ms, t))
            ),
            Style::default().fg(Color::Red),
        ),
    };
    Line::from(vec![Span::raw(" "), state, api, Span::raw(" · ? keys")])
}

fn overview(f: &mut Frame<'_>, area: Rect, m: &Model) {
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(area);
    let [hosts_area, alerts_area] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(bottom);

    let rows: Vec<Row> = m
        .services()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let spark = sparkline(&s.recent.iter().map(|p| Some(p.rate)).collect::<Vec<_>>());
            let failing = s.error_rate.is_some_and(|e| e >= 0.05);
            let mut style = Style::default();
            if failing {
                style = style.fg(Color::Red);
            }
            if i == m.overview.selected {
                style = style.add_modifier(Modifier::REVERSED);
            }
            Row::new(vec![
                sanitize(&s.name),
                format!("{:.2}", s.rate),
                pct(s.error_rate),
                ms(s.p50_ms),
                ms(s.p99_ms),
                spark,
            ])
            .style(style)
        })
        .collect();
    let title = format!(" Services (by {}, s to sort) ", m.overview.sort.label());
    f.render_widget(
        table(
            rows,
            &[
                Constraint::Min(16),
                Constraint::Length(8),
                Constraint::Length(7),
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Length(30),
            ],
            &["SERVICE", "RATE/s", "ERR%", "P50", "P99", "RATE (5m)"],
            title,
        ),
        top,
    );

    let spark = |v: &[f64], n: usize| {
        let tail: Vec<Option<f64>> = v[v.len().saturating_sub(n)..]
            .iter()
            .map(|x| Some(*x))
            .collect();
        sparkline(&tail)
    };
    let hosts: Vec<Row> = m
        .data
        .as_ref()
        .map(|d| d.hosts.hosts.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|h| {
            let down = h.state != "up";
            let mem = match (h.memory_used_bytes, h.memory_total_bytes) {
                (Some(u), Some(t)) if t > 0 => format!("{:.0}%", u as f64 / t as f64 * 100.0),
                _ => "-".into(),
            };
            let series = m
                .overview
                .host_series
                .get(&h.host)
                .cloned()
                .unwrap_or_default();
            let disk = series
                .disk
                .last()
                .map_or("-".into(), |d| format!("{:.0}%", d * 100.0));
            let net = series.net.last().map_or("-".into(), |b| bytes_per_s(*b));
            Row::new(vec![
                sanitize(&h.host),
                sanitize(&h.state),
                h.cpu_utilization
                    .map_or("-".into(), |c| format!("{:.0}%", c * 100.0)),
                spark(&series.cpu, 6),
                mem,
                spark(&series.mem, 6),
                disk,
                net,
                spark(&series.net, 6),
            ])
            .style(if down {
                Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
            } else {
                Style::default()
            })
        })
        .collect();
    f.render_widget(
        table(
            hosts,
            &[
                Constraint::Min(8),
                Constraint::Length(4),
                Constraint::Length(4),
                Constraint::Length(6),
                Constraint::Length(4),
                Constraint::Length(6),
                Constraint::Length(4),
                Constraint::Length(7),
                Constraint::Length(6),
            ],
            &[
                "HOST", "STATE", "CPU", "15m", "MEM", "15m", "DISK", "NET", "15m",
            ],
            " Hosts ",
        ),
        hosts_area,
    );

    let alerts: Vec<Row> = m
        .data
        .as_ref()
        .map(|d| d.alerts.alerts.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|a| {
            let firing = a.state == skein_model::alert_api::AlertState::Firing;
            Row::new(vec![
                a.state.as_str().to_string(),
                sanitize(&a.rule),
                alert_labels(a),
            ])
            .style(if firing {
                Style::default().fg(Color::Red)
            } else {
                Style::default().fg(Color::Yellow)
            })
        })
        .collect();
    f.render_widget(
        Table::new(
            alerts,
            [
                Constraint::Length(7),
                Constraint::Length(14),
                Constraint::Min(10),
            ],
        )
        .block(Block::default().borders(Borders::ALL).title(" Alerts ")),
        alerts_area,
    );
}

fn alerts_view(f: &mut Frame<'_>, area: Rect, m: &Model) {
    let rows: Vec<Row> = crate::app::alerts(m)
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let muted = if !a.silenced_by.is_empty() {
                "silenced"
            } else if !a.inhibited_by.is_empty() {
                "inhibited"
            } else {
                ""
            };
            let mut style = match a.state {
                skein_model::alert_api::AlertState::Firing => Style::default().fg(Color::Red),
                _ => Style::default().fg(Color::Yellow),
            };
            if i == m.alerts.selected {
                style = style.add_modifier(Modifier::REVERSED);
            }
            Row::new(vec![
                a.state.as_str().to_string(),
                sanitize(&a.rule),
                format!("{:.4}", a.value),
                muted.to_string(),
                alert_labels(a),
            ])
            .style(style)
        })
        .collect();
    let mut title = " Alerts (↑↓ select, S: silence 1h) ".to_string();
    if let Some(n) = &m.alerts.note {
        title = format!("{title}· {} ", sanitize(n));
    }
    f.render_widget(
        table(
            rows,
            &[
                Constraint::Length(8),
                Constraint::Length(22),
                Constraint::Length(12),
                Constraint::Length(9),
                Constraint::Min(10),
            ],
            &["STATE", "ALERT", "VALUE", "MUTED", "LABELS"],
            title,
        ),
        area,
    );
}

fn help(f: &mut Frame<'_>, area: Rect) {
    let w = 60.min(area.width);
    let h = (KEYS.len() as u16 + 2).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, what)| Line::from(format!(" {k:<16} {what}")))
        .collect();
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Keys ")),
        r,
    );
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
