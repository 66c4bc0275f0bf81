//! Drawing the logs view: one line per record (time, level, service, body), the newest at the
//! bottom, search matches highlighted, the selected line reversed; a title that says what is
//! shown (live, paused, or a search) and a prompt while `/` is typed. Only the lines that fit
//! are laid out.

use crate::app::Model;
use crate::logs::split_matches;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use skein_model::LogRecord;
use skein_model::sanitize::sanitize;

fn level(r: &LogRecord) -> (&'static str, Color) {
    match r.severity_number {
        n if n >= 21 => ("FATAL", Color::Magenta),
        n if n >= 17 => ("ERROR", Color::Red),
        n if n >= 13 => ("WARN ", Color::Yellow),
        n if n >= 9 => ("INFO ", Color::Green),
        n if n >= 5 => ("DEBUG", Color::Blue),
        n if n >= 1 => ("TRACE", Color::DarkGray),
        _ => ("     ", Color::Reset),
    }
}

/// `HH:MM:SS.mmm` (UTC) of Unix nanoseconds.
pub fn clock(ns: u64) -> String {
    let ms = ns / 1_000_000;
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

fn line<'a>(r: &LogRecord, search: Option<&str>, selected: bool) -> Line<'a> {
    let (lv, color) = level(r);
    let mut spans = vec![
        Span::styled(
            clock(r.time_unix_nano),
            Style::default().fg(Color::DarkGray),
        ),
        Span::raw(" "),
        Span::styled(lv, Style::default().fg(color)),
        Span::raw(" "),
        Span::styled(sanitize(&r.service), Style::default().fg(Color::Cyan)),
        Span::raw(" "),
    ];
    let body = sanitize(&r.body);
    for (part, hit) in split_matches(&body, search.unwrap_or("")) {
        let style = if hit {
            Style::default().bg(Color::Yellow).fg(Color::Black)
        } else {
            Style::default()
        };
        spans.push(Span::styled(part.to_string(), style));
    }
    if !r.trace_id.is_empty() {
        spans.push(Span::styled(
            " ⤷trace",
            Style::default().fg(Color::DarkGray),
        ));
    }
    let mut l = Line::from(spans);
    if selected {
        l = l.style(Style::default().add_modifier(Modifier::REVERSED));
    }
    l
}

/// Draws the logs view into `area`.
pub fn draw_logs(f: &mut Frame<'_>, area: Rect, m: &Model) {
    let l = &m.logs;
    let area =
        match &l.context {
            None => area,
            Some(ctx) => {
                let [top, bottom] = ratatui::layout::Layout::vertical([
                    ratatui::layout::Constraint::Percentage(55),
                    ratatui::layout::Constraint::Percentage(45),
                ])
                .areas(area);
                let lines: Vec<Line> = match ctx {
                    Err(e) => vec![Line::styled(sanitize(e), Style::default().fg(Color::Red))],
                    Ok(c) => c
                        .before
                        .iter()
                        .map(|r| line(r, None, false))
                        .chain(
                            c.after
                                .iter()
                                .enumerate()
                                .map(|(i, r)| line(r, None, i == 0)),
                        )
                        .collect(),
                };
                f.render_widget(
                    Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(
                        " Context: the same service and host around the line (Esc closes) ",
                    )),
                    bottom,
                );
                top
            }
        };
    let shown = l.shown();
    let inner_h = area.height.saturating_sub(2) as usize;
    // The window: the selection (counted from the newest) stays in view.
    let from_bottom = l.selected.unwrap_or(0);
    let end = shown
        .len()
        .saturating_sub(from_bottom.saturating_sub(inner_h.saturating_sub(1)));
    let start = end.saturating_sub(inner_h);
    let selected_idx = l.selected.and_then(|s| shown.len().checked_sub(1 + s));
    let lines: Vec<Line> = shown[start..end]
        .iter()
        .enumerate()
        .map(|(i, r)| line(r, l.search.as_deref(), Some(start + i) == selected_idx))
        .collect();
    let mode = match (&l.search, &l.results) {
        (Some(q), Some(r)) => format!(
            " search \"{}\": {} lines (Esc: back to live) ",
            sanitize(q),
            r.len()
        ),
        (Some(q), None) => format!(" searching \"{}\"… ", sanitize(q)),
        _ if l.paused => {
            " Logs · paused (p: resume, G: newest, c: context, Enter: trace) ".to_string()
        }
        _ => " Logs · live (p: pause, f: filter, /: search, ↑: select, y: copy) ".to_string(),
    };
    let filter = l.filter.text();
    let mode = if filter.is_empty() {
        mode
    } else {
        format!("{mode}· following \"{}\" ", sanitize(&filter))
    };
    let mut title = vec![Span::raw(mode)];
    if let Some(e) = &l.error {
        title.push(Span::styled(
            format!(" {} ", sanitize(e)),
            Style::default().fg(Color::Red),
        ));
    }
    if let Some(input) = &l.filter_input {
        title = vec![Span::styled(
            format!(
                " follow: {}▏ (service=… severity=… words; Enter: apply, Esc: cancel) ",
                sanitize(input)
            ),
            Style::default().fg(Color::Yellow),
        )];
    }
    if let Some(input) = &l.input {
        title = vec![Span::styled(
            format!(
                " /{}▏ (Enter: search history, Esc: cancel) ",
                sanitize(input)
            ),
            Style::default().fg(Color::Yellow),
        )];
    }
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Line::from(title)),
        ),
        area,
    );
}
