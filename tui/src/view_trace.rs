//! Drawing the traces list and one trace's waterfall: an indented span tree on a shared time
//! axis, one colour per service, errors in red with ✗, the critical path marked ●, spans
//! shifted for clock skew marked ~, each span's logs under it, and the selected span's
//! details (attributes, events, links) below. Only the rows on screen are drawn.

use crate::app::Model;
use crate::traces::MIN_DURATIONS;
use crate::waterfall::{Row, Waterfall};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row as TRow};
use skein_model::sanitize::sanitize;

const PALETTE: [Color; 8] = [
    Color::Cyan,
    Color::Green,
    Color::Magenta,
    Color::Blue,
    Color::Yellow,
    Color::LightCyan,
    Color::LightGreen,
    Color::LightMagenta,
];

/// A duration for people: `950ns`, `812µs`, `12.3ms`, `3.20s`.
pub fn dur(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{:.0}µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1}ms", ns as f64 / 1e6),
        _ => format!("{:.2}s", ns as f64 / 1e9),
    }
}

/// Draws the traces list.
pub fn draw_traces(f: &mut Frame<'_>, area: Rect, m: &Model) {
    let traces = &m.traces;
    let min = MIN_DURATIONS[traces.min % MIN_DURATIONS.len()].unwrap_or("any");
    let (svc, op) = &traces.filter;
    let mut title = format!(
        " Traces · errors only: {} (e) · at least: {min} (d) · service: {} · operation: {} (f) · Enter opens ",
        if traces.errors_only { "yes" } else { "no" },
        sanitize(svc.as_deref().unwrap_or("any")),
        sanitize(op.as_deref().unwrap_or("any"))
    );
    if let Some(input) = &traces.input {
        title = format!(
            " filter: {}▏ (service=… operation=…; Enter: apply, Esc: cancel) ",
            sanitize(input)
        );
    }
    let list = match &traces.list {
        None => {
            crate::view::note(f, area, &title, "loading…", Color::Reset);
            return;
        }
        Some(Err(e)) => {
            crate::view::note(f, area, &title, e, Color::Red);
            return;
        }
        Some(Ok(t)) => t,
    };
    let rows: Vec<TRow> = list
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut style = if t.error {
                Style::default().fg(Color::Red)
            } else {
                Style::default()
            };
            if i == traces.selected {
                style = style.add_modifier(Modifier::REVERSED);
            }
            TRow::new(vec![
                crate::view_logs::clock(t.start_unix_nano),
                format!("{}: {}", sanitize(&t.root_service), sanitize(&t.root_name)),
                dur(t.duration_ns),
                t.span_count.to_string(),
                if t.error { "✗".into() } else { String::new() },
                sanitize(&t.services.join(", ")),
            ])
            .style(style)
        })
        .collect();
    f.render_widget(
        crate::view::table(
            rows,
            &[
                Constraint::Length(12),
                Constraint::Min(24),
                Constraint::Length(9),
                Constraint::Length(6),
                Constraint::Length(3),
                Constraint::Min(10),
            ],
            &["START", "ROOT", "DURATION", "SPANS", "ERR", "SERVICES"],
            title,
        ),
        area,
    );
}

fn color_of(w: &Waterfall, service: &str) -> Color {
    let i = w.services.iter().position(|s| s == service).unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

fn span_row<'a>(w: &Waterfall, i: usize, label_w: usize, bar_w: usize, selected: bool) -> Line<'a> {
    let s = &w.spans[i];
    let error = s.is_error();
    let fold = if w.children[i].is_empty() && w.logs_of[i].is_empty() {
        " "
    } else if w.collapsed.contains(&i) {
        "▸"
    } else {
        "▾"
    };
    let mark = if w.critical[i] { "●" } else { " " };
    let skew = if w.adjusted[i] { "~" } else { " " };
    let label = format!(
        "{}{fold}{mark}{skew}{} {}",
        "  ".repeat(w.depth[i].min(20)),
        sanitize(&s.service),
        sanitize(&s.name)
    );
    let label: String = label.chars().take(label_w).collect();
    let pad = label_w.saturating_sub(label.chars().count());
    let span_ns = (w.t1 - w.t0).max(1) as f64;
    let x0 = (((w.start[i] - w.t0) as f64 / span_ns) * bar_w as f64) as usize;
    let x1 = ((((w.end[i] - w.t0) as f64 / span_ns) * bar_w as f64).ceil() as usize)
        .max(x0 + 1)
        .min(bar_w);
    let color = if error {
        Color::Red
    } else {
        color_of(w, &s.service)
    };
    let mut spans = vec![
        Span::styled(label, Style::default().fg(color_of(w, &s.service))),
        Span::raw(" ".repeat(pad + 1)),
        Span::raw(" ".repeat(x0.min(bar_w))),
        Span::styled(
            "█".repeat(x1.saturating_sub(x0)),
            Style::default().fg(color),
        ),
        Span::raw(format!(" {}", dur(w.end[i] - w.start[i]))),
    ];
    if error {
        spans.push(Span::styled(" ✗", Style::default().fg(Color::Red)));
    }
    let mut line = Line::from(spans);
    if selected {
        line = line.style(Style::default().add_modifier(Modifier::REVERSED));
    }
    line
}

fn details(w: &Waterfall) -> Vec<Line<'static>> {
    let Some(i) = w.selected_span() else {
        return vec![Line::from("a log line; select a span for its details")];
    };
    let s = &w.spans[i];
    let mut out = vec![Line::from(format!(
        "{} {} · {} · {} · status {}{} · span {}{}",
        sanitize(&s.service),
        sanitize(&s.name),
        sanitize(&s.kind),
        dur(s.end_unix_nano.saturating_sub(s.start_unix_nano)),
        sanitize(&s.status_code),
        if s.status_message.is_empty() {
            String::new()
        } else {
            format!(" ({})", sanitize(&s.status_message))
        },
        sanitize(&s.span_id),
        if w.adjusted[i] {
            " · shifted for clock skew (raw times in the API)"
        } else {
            ""
        }
    ))];
    for (k, v) in s.attributes.iter() {
        out.push(Line::from(format!(
            "  {} = {}",
            sanitize(k),
            sanitize(&v.to_string())
        )));
    }
    for e in &s.events {
        out.push(Line::from(format!(
            "  event +{} {}",
            dur(e.time_unix_nano.saturating_sub(s.start_unix_nano)),
            sanitize(&e.name)
        )));
    }
    for l in &s.links {
        out.push(Line::from(format!(
            "  link → trace {} span {}",
            sanitize(&l.trace_id),
            sanitize(&l.span_id)
        )));
    }
    out
}

/// Draws the open trace.
pub fn draw_trace(f: &mut Frame<'_>, area: Rect, m: &Model) {
    let Some(w) = &m.trace.open else {
        let text = m.trace.note.clone().unwrap_or_else(|| {
            "no trace open: Enter on a trace (3) or on a log line with ⤷trace (2)".into()
        });
        f.render_widget(
            Paragraph::new(sanitize(&text))
                .block(Block::default().borders(Borders::ALL).title(" Trace ")),
            area,
        );
        return;
    };
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(70), Constraint::Percentage(30)]).areas(area);
    let inner_w = top.width.saturating_sub(2) as usize;
    let label_w = (inner_w / 3).clamp(10, 60);
    let bar_w = inner_w.saturating_sub(label_w + 12).max(1);
    let height = top.height.saturating_sub(2) as usize;
    let first = w.window_start(height);
    let lines: Vec<Line> = w.rows[first..(first + height).min(w.rows.len())]
        .iter()
        .enumerate()
        .map(|(k, row)| {
            let selected = first + k == w.selected;
            match *row {
                Row::Span(i) => span_row(w, i, label_w, bar_w, selected),
                Row::Log(l, d) => {
                    let r = &w.logs[l];
                    let mut line = Line::from(vec![
                        Span::raw("  ".repeat(d.min(20) + 1)),
                        Span::styled("· ", Style::default().fg(Color::DarkGray)),
                        Span::styled(
                            crate::view_logs::clock(r.time_unix_nano),
                            Style::default().fg(Color::DarkGray),
                        ),
                        Span::raw(format!(" {} ", sanitize(&r.service))),
                        Span::raw(sanitize(&r.body)),
                    ]);
                    if selected {
                        line = line.style(Style::default().add_modifier(Modifier::REVERSED));
                    }
                    line
                }
            }
        })
        .collect();
    let title = format!(
        " trace {} · {} spans · {} · {}{} (Enter folds, ● critical path, ~ clock skew) ",
        sanitize(&w.trace_id),
        w.spans.len(),
        dur(w.t1 - w.t0),
        sanitize(&w.services.join(", ")),
        if w.truncated {
            " · cut by a bound"
        } else {
            ""
        }
    );
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)),
        top,
    );
    f.render_widget(
        Paragraph::new(details(w)).block(Block::default().borders(Borders::ALL).title(" Span ")),
        bottom,
    );
}
