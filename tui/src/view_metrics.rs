//! Drawing the metrics view: the dashboard's panels in two columns, each drawn as its kind
//! says (line chart, sparklines, gauges, table, log stream) over the chosen window.

use crate::app::Model;
use crate::dashboard::{Kind, Panel};
use crate::metrics::{PanelData, WINDOWS};
use crate::sparkline::sparkline;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph};
use skein_model::metrics_api::ResultSeries;
use skein_model::sanitize::sanitize;

const COLORS: [Color; 6] = [
    Color::Cyan,
    Color::Green,
    Color::Magenta,
    Color::Yellow,
    Color::Blue,
    Color::Red,
];

/// Series drawn in one chart at most (the rest are left out).
pub const MAX_SERIES_DRAWN: usize = 6;

fn label(s: &ResultSeries) -> String {
    let l: Vec<String> = s.labels.iter().map(|(_, v)| sanitize(v)).collect();
    if l.is_empty() {
        "all".into()
    } else {
        l.join(",")
    }
}

fn num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn draw_panel(f: &mut Frame<'_>, area: Rect, p: &Panel, data: Option<&Result<PanelData, String>>) {
    let title = format!(" {} ", sanitize(&p.title));
    let block = Block::default().borders(Borders::ALL).title(title.clone());
    let data = match data {
        None => {
            crate::view::note(f, area, &title, "loading…", Color::Reset);
            return;
        }
        Some(Err(e)) => {
            crate::view::note(f, area, &title, e, Color::Red);
            return;
        }
        Some(Ok(d)) => d,
    };
    let series: &[ResultSeries] = match data {
        PanelData::Logs(lines) => {
            let text: Vec<Line> = lines
                .iter()
                .take(area.height as usize)
                .map(|r| {
                    Line::from(format!(
                        "{} {} {}",
                        crate::view_logs::clock(r.time_unix_nano),
                        sanitize(&r.service),
                        sanitize(&r.body)
                    ))
                })
                .collect();
            f.render_widget(Paragraph::new(text).block(block), area);
            return;
        }
        PanelData::Metric(r) => &r.series,
    };
    if series.is_empty() {
        f.render_widget(Paragraph::new("no data in this window").block(block), area);
        return;
    }
    match p.kind {
        Kind::Line => {
            let pts: Vec<Vec<(f64, f64)>> = series
                .iter()
                .take(MAX_SERIES_DRAWN)
                .map(|s| s.points.iter().map(|(t, v)| (*t as f64, *v)).collect())
                .collect();
            let all = pts.iter().flatten();
            let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
            for (x, y) in all {
                x0 = x0.min(*x);
                x1 = x1.max(*x);
                if y.is_finite() {
                    y1 = y1.max(*y);
                }
            }
            let names: Vec<String> = series.iter().take(MAX_SERIES_DRAWN).map(label).collect();
            let sets: Vec<Dataset> = pts
                .iter()
                .zip(&names)
                .enumerate()
                .map(|(i, (p, n))| {
                    Dataset::default()
                        .name(n.clone())
                        .marker(Marker::Braille)
                        .graph_type(GraphType::Line)
                        .style(Style::default().fg(COLORS[i % COLORS.len()]))
                        .data(p)
                })
                .collect();
            let y1 = if y1 > 0.0 { y1 * 1.1 } else { 1.0 };
            let chart = Chart::new(sets)
                .block(block)
                .x_axis(Axis::default().bounds([x0, x1.max(x0 + 1.0)]))
                .y_axis(
                    Axis::default()
                        .bounds([0.0, y1])
                        .labels(vec![Line::from("0"), Line::from(num(y1))]),
                );
            f.render_widget(chart, area);
        }
        Kind::Sparkline | Kind::Table | Kind::Gauge => {
            let w = area.width.saturating_sub(4) as usize;
            let lines: Vec<Line> = series
                .iter()
                .take(area.height.saturating_sub(2) as usize)
                .enumerate()
                .map(|(i, s)| {
                    let name: String = label(s).chars().take(18).collect();
                    let last = s.points.last().map(|(_, v)| *v).unwrap_or(f64::NAN);
                    let text = match p.kind {
                        Kind::Sparkline => {
                            let vals: Vec<Option<f64>> =
                                s.points.iter().map(|(_, v)| Some(*v)).collect();
                            let room = w.saturating_sub(30).max(4);
                            let tail = &vals[vals.len().saturating_sub(room)..];
                            format!("{name:<18} {} {}", sparkline(tail), num(last))
                        }
                        Kind::Gauge => {
                            let room = w.saturating_sub(28).max(4);
                            let frac = if last.is_finite() {
                                last.clamp(0.0, 1.0)
                            } else {
                                0.0
                            };
                            let full = (frac * room as f64).round() as usize;
                            format!(
                                "{name:<18} {}{} {:>5.1}%",
                                "█".repeat(full),
                                "░".repeat(room - full),
                                frac * 100.0
                            )
                        }
                        _ => format!("{name:<18} {}", num(last)),
                    };
                    Line::styled(text, Style::default().fg(COLORS[i % COLORS.len()]))
                })
                .collect();
            f.render_widget(Paragraph::new(lines).block(block), area);
        }
        Kind::Logs => {}
    }
}

/// Draws the dashboard's panels.
pub fn draw_metrics(f: &mut Frame<'_>, area: Rect, m: &Model) {
    let [head, grid] = Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
    f.render_widget(
        Paragraph::new(format!(
            " {} · window {} (w: change, r: reload)",
            sanitize(&m.metrics.dashboard.title),
            WINDOWS[m.metrics.window % WINDOWS.len()]
        )),
        head,
    );
    let n = m.metrics.dashboard.panels.len();
    if n == 0 {
        return;
    }
    let rows = n.div_ceil(2);
    let row_areas = Layout::vertical(vec![Constraint::Ratio(1, rows as u32); rows]).split(grid);
    for (r, row_area) in row_areas.iter().enumerate() {
        let cols = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .split(*row_area);
        for (c, cell) in cols.iter().enumerate() {
            let i = r * 2 + c;
            if let Some(p) = m.metrics.dashboard.panels.get(i) {
                draw_panel(
                    f,
                    *cell,
                    p,
                    m.metrics.panels.get(i).and_then(|d| d.as_ref()),
                );
            }
        }
    }
}
