//! Drawing the model: tabs, the view, the status line, the key help. Pure functions of the
//! model and the clock, so each is tested by rendering into a ratatui `Buffer`. Every string
//! that came from outside goes through [`sanitize`] first.

use crate::app::{Conn, Model, View};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table, Tabs};
use skein_model::text::{sanitize, sparkline};

/// Every key, for `?`.
pub const KEYS: &[(&str, &str)] = &[
    ("Tab / Shift-Tab", "next / previous view"),
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
            if i == m.selected {
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
    let title = format!(" Services (by {}, s to sort) ", m.sort.label());
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
            let series = m.host_series.get(&h.host).cloned().unwrap_or_default();
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
            if i == m.alert_selected {
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
    if let Some(n) = &m.alert_note {
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::app::{Key, Msg, Snapshot, update};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use skein_model::alert_api::{AlertInfo, AlertState, AlertsResponse};
    use skein_model::api::{HostStatus, HostsResponse};
    use skein_model::metrics_api::{ServiceHealth, ServicesResponse};

    fn screen(m: &Model, now_ms: i64) -> String {
        let mut t = Terminal::new(TestBackend::new(100, 30)).unwrap();
        t.draw(|f| draw(f, m, now_ms)).unwrap();
        let buf = t.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    fn model() -> Model {
        let mut m = Model::new("http://127.0.0.1:7700");
        let mut labels = std::collections::BTreeMap::new();
        labels.insert("alertname".to_string(), "HighErrorRate".to_string());
        labels.insert("service".to_string(), "pay\u{1b}[2Jment".to_string());
        update(
            &mut m,
            Msg::Fetched {
                snapshot: Box::new(Snapshot {
                    services: ServicesResponse {
                        window_ms: 60_000,
                        services: vec![ServiceHealth {
                            name: "payment\u{1b}]0;owned\u{7}".into(),
                            rate: 3.5,
                            error_rate: Some(0.25),
                            p50_ms: Some(12.0),
                            p99_ms: Some(2_400.0),
                            ..Default::default()
                        }],
                    },
                    hosts: HostsResponse {
                        hosts: vec![HostStatus {
                            host: "web-1".into(),
                            state: "down".into(),
                            cpu_utilization: Some(0.5),
                            ..Default::default()
                        }],
                    },
                    alerts: AlertsResponse {
                        alerts: vec![AlertInfo {
                            rule: "HighErrorRate".into(),
                            state: AlertState::Firing,
                            labels,
                            annotations: Default::default(),
                            value: 0.25,
                            active_since_ms: 0,
                            firing_since_ms: Some(0),
                            fingerprint: "f".into(),
                            silenced_by: vec![],
                            inhibited_by: vec![],
                        }],
                    },
                }),
                at_ms: 10_000,
            },
        );
        m
    }

    #[test]
    fn overview_shows_services_hosts_and_alerts_without_escapes() {
        let s = screen(&model(), 12_000);
        assert!(s.contains("payment"), "{s}");
        assert!(
            s.contains("3.50") && s.contains("25.0%") && s.contains("2.40s"),
            "{s}"
        );
        assert!(
            s.contains("web-1") && s.contains("down") && s.contains("50%"),
            "{s}"
        );
        assert!(s.contains("firing") && s.contains("HighErrorRate"), "{s}");
        assert!(s.contains("service=payment"), "{s}");
        assert!(!s.contains('\u{1b}') && !s.contains("owned\u{7}"), "{s}");
        assert!(s.contains("connected · refreshed 2s ago"), "{s}");
    }

    #[test]
    fn hosts_show_resource_sparklines() {
        let mut m = model();
        let mut h = std::collections::BTreeMap::new();
        h.insert(
            "web-1".to_string(),
            crate::app::HostSeries {
                cpu: vec![0.1, 0.5, 0.9],
                mem: vec![0.4, 0.4, 0.5],
                disk: vec![0.73],
                net: vec![1_000.0, 1_500_000.0],
            },
        );
        update(&mut m, Msg::HostSeries(h));
        let s = screen(&m, 12_000);
        assert!(s.contains("73%") && s.contains("1.5M/s"), "{s}");
        assert!(s.contains('█') && s.contains('▁'), "sparklines: {s}");
    }

    #[test]
    fn status_line_says_when_the_api_is_unreachable() {
        let mut m = model();
        update(
            &mut m,
            Msg::FetchFailed {
                error: "connection refused".into(),
                at_ms: 20_000,
            },
        );
        let s = screen(&m, 21_000);
        assert!(s.contains("unreachable (connection refused)"), "{s}");
        assert!(s.contains("data from 11s ago"), "{s}");
        assert!(s.contains("payment"), "the old data stays: {s}");
    }

    #[test]
    fn help_lists_every_key() {
        let mut m = model();
        update(&mut m, Msg::Key(Key::Char('?')));
        let s = screen(&m, 12_000);
        for (k, _) in KEYS {
            assert!(s.contains(k), "{k} missing: {s}");
        }
    }

    #[test]
    fn metrics_view_draws_each_panel_kind_and_changes_the_window() {
        use crate::app::{Cmd, PanelData};
        use skein_model::metric::Labels;
        use skein_model::metrics_api::{MetricQueryResponse, ResultSeries};
        let mut m = model();
        assert_eq!(
            update(&mut m, Msg::Key(Key::Char('5'))),
            Some(Cmd::LoadPanels("1h".into()))
        );
        let series = |name: &str, v: f64| MetricQueryResponse {
            name: name.into(),
            agg: "avg".into(),
            start_ms: 0,
            end_ms: 60_000,
            step_ms: 10_000,
            series: vec![ResultSeries {
                labels: Labels::from_pairs([("host", "web-1")]),
                points: (0..6).map(|i| (i * 10_000, v * i as f64 / 5.0)).collect(),
            }],
        };
        for (i, p) in m.dashboard.panels.clone().iter().enumerate() {
            let result = match p.kind {
                crate::dashboard::Kind::Logs => {
                    Ok(PanelData::Logs(vec![rec("payment", 17, "declined")]))
                }
                _ => Ok(PanelData::Metric(series(
                    p.metric.as_deref().unwrap_or(""),
                    0.42,
                ))),
            };
            update(
                &mut m,
                Msg::Panel {
                    index: i,
                    result,
                    at_ms: 0,
                },
            );
        }
        let s = screen(&m, 12_000);
        assert!(s.contains("window 1h"), "{s}");
        assert!(s.contains("Calls per second, by service"), "{s}");
        assert!(s.contains("web-1") && s.contains("42.0%"), "the gauge: {s}");
        assert!(s.contains("declined"), "the log stream: {s}");
        assert_eq!(
            update(&mut m, Msg::Key(Key::Char('w'))),
            Some(Cmd::LoadPanels("6h".into()))
        );
        assert!(screen(&m, 12_000).contains("window 6h"));
    }

    fn rec(service: &str, sev: i32, body: &str) -> skein_model::LogRecord {
        skein_model::LogRecord {
            time_unix_nano: 1_000_000_000,
            service: service.into(),
            severity_number: sev,
            body: body.into(),
            ..Default::default()
        }
    }

    #[test]
    fn alerts_view_lists_alerts_and_silences_the_selected_one() {
        use crate::app::Cmd;
        let mut m = model();
        update(&mut m, Msg::Key(Key::Char('6')));
        let s = screen(&m, 12_000);
        assert!(
            s.contains("firing") && s.contains("HighErrorRate") && s.contains("0.2500"),
            "{s}"
        );
        assert!(s.contains("service=payment"), "{s}");
        match update(&mut m, Msg::Key(Key::Char('S'))) {
            Some(Cmd::Silence(labels)) => assert_eq!(labels["alertname"], "HighErrorRate"),
            other => panic!("{other:?}"),
        }
        update(&mut m, Msg::Silenced(Ok("abc".into())));
        assert!(screen(&m, 12_000).contains("silenced for 1h: abc"));
    }

    #[test]
    fn logs_view_tails_pauses_searches_and_copies() {
        use crate::app::Cmd;
        use crate::logs::Line;
        let mut m = model();
        update(&mut m, Msg::Key(Key::Char('2')));
        update(
            &mut m,
            Msg::TailLines(vec![
                Line {
                    seq: 1,
                    record: rec("payment", 17, "bank timeout\u{1b}[2J"),
                },
                Line {
                    seq: 2,
                    record: rec("order", 9, "order placed"),
                },
            ]),
        );
        let s = screen(&m, 12_000);
        assert!(s.contains("Logs · live"), "{s}");
        assert!(s.contains("ERROR payment bank timeout"), "{s}");
        assert!(s.contains("INFO  order order placed"), "{s}");
        assert!(!s.contains('\u{1b}'), "{s}");
        // Pause, select the older line, copy it.
        update(&mut m, Msg::Key(Key::Char('p')));
        assert!(screen(&m, 12_000).contains("paused"));
        update(&mut m, Msg::Key(Key::Up));
        assert_eq!(
            update(&mut m, Msg::Key(Key::Char('y'))),
            Some(Cmd::Copy("payment  bank timeout\u{1b}[2J".into()))
        );
        // Search history: typing shows a prompt, Enter asks the loop to search.
        update(&mut m, Msg::Key(Key::Char('/')));
        for c in "timeout".chars() {
            update(&mut m, Msg::Key(Key::Char(c)));
        }
        assert!(screen(&m, 12_000).contains("/timeout"));
        assert_eq!(
            update(&mut m, Msg::Key(Key::Enter)),
            Some(Cmd::Search("timeout".into()))
        );
        update(
            &mut m,
            Msg::SearchDone {
                query: "timeout".into(),
                result: Ok(vec![rec("payment", 17, "old bank timeout")]),
            },
        );
        let s = screen(&m, 12_000);
        assert!(s.contains("search \"timeout\": 1 lines"), "{s}");
        assert!(
            s.contains("old bank timeout") && !s.contains("order placed"),
            "{s}"
        );
        // f: follow a filter (the loop restarts the tail); c: context of the selection.
        update(&mut m, Msg::Key(Key::Esc));
        update(&mut m, Msg::Key(Key::Char('f')));
        for c in "service=payment".chars() {
            update(&mut m, Msg::Key(Key::Char(c)));
        }
        match update(&mut m, Msg::Key(Key::Enter)) {
            Some(Cmd::Tail(f)) => assert_eq!(f.service.as_deref(), Some("payment")),
            other => panic!("{other:?}"),
        }
        assert!(screen(&m, 12_000).contains("following \"service=payment\""));
        update(
            &mut m,
            Msg::TailLines(vec![Line {
                seq: 3,
                record: rec("payment", 17, "declined"),
            }]),
        );
        update(&mut m, Msg::Key(Key::Up));
        assert!(matches!(
            update(&mut m, Msg::Key(Key::Char('c'))),
            Some(Cmd::Context { .. })
        ));
        update(
            &mut m,
            Msg::Context(Ok(skein_model::api::LogContextResponse {
                before: vec![rec("payment", 9, "card checked")],
                after: vec![rec("payment", 17, "declined")],
            })),
        );
        let s = screen(&m, 12_000);
        assert!(s.contains("Context") && s.contains("card checked"), "{s}");
        update(&mut m, Msg::Key(Key::Esc));
        assert!(!screen(&m, 12_000).contains("card checked"));
        // The filter started the tail afresh: only the followed lines are there.
        let s = screen(&m, 12_000);
        assert!(s.contains("declined") && !s.contains("order placed"), "{s}");
        // q while typing is text, not quit.
        update(&mut m, Msg::Key(Key::Char('/')));
        update(&mut m, Msg::Key(Key::Char('q')));
        assert!(!m.quit);
    }

    #[test]
    fn traces_list_opens_a_waterfall_with_skew_critical_path_and_logs() {
        use crate::app::Cmd;
        use skein_model::api::{TraceResponse, TraceSummary};
        let mut m = model();
        assert!(matches!(
            update(&mut m, Msg::Key(Key::Char('3'))),
            Some(Cmd::LoadTraces {
                errors_only: false,
                min_duration: None
            })
        ));
        update(
            &mut m,
            Msg::Traces(Ok(vec![TraceSummary {
                trace_id: "abc".into(),
                root_service: "gateway".into(),
                root_name: "POST /orders".into(),
                start_unix_nano: 1_000_000_000,
                duration_ns: 2_500_000_000,
                span_count: 3,
                error: true,
                services: vec!["gateway".into(), "payment".into()],
            }])),
        );
        let s = screen(&m, 12_000);
        assert!(
            s.contains("gateway: POST /orders") && s.contains("2.50s") && s.contains("✗"),
            "{s}"
        );
        assert!(matches!(
            update(&mut m, Msg::Key(Key::Char('e'))),
            Some(Cmd::LoadTraces {
                errors_only: true,
                ..
            })
        ));
        update(
            &mut m,
            Msg::Traces(Ok(vec![TraceSummary {
                trace_id: "abc".into(),
                ..Default::default()
            }])),
        );
        assert_eq!(
            update(&mut m, Msg::Key(Key::Enter)),
            Some(Cmd::OpenTrace("abc".into()))
        );
        assert_eq!(m.view, View::Trace);
        let span = |id: &str, parent: &str, service: &str, start: u64, end: u64, err: bool| {
            skein_model::Span {
                trace_id: "abc".into(),
                span_id: id.into(),
                parent_span_id: parent.into(),
                service: service.into(),
                name: format!("op-{id}"),
                start_unix_nano: start,
                end_unix_nano: end,
                status_code: if err { "error".into() } else { "ok".into() },
                ..Default::default()
            }
        };
        update(
            &mut m,
            Msg::TraceLoaded(Ok(Some(TraceResponse {
                trace_id: "abc".into(),
                trace_ids: vec![],
                services: vec![],
                spans: vec![
                    span("a", "", "gateway", 0, 1_000_000, false),
                    span("b", "a", "payment", 100_000, 900_000, false),
                    span("c", "b", "bank\u{1b}[31m", 50_000, 150_000, true),
                ],
                logs: vec![skein_model::LogRecord {
                    span_id: "b".into(),
                    service: "payment".into(),
                    body: "charging card".into(),
                    ..Default::default()
                }],
                truncated: false,
            }))),
        );
        let s = screen(&m, 12_000);
        assert!(s.contains("trace abc · 3 spans"), "{s}");
        assert!(
            s.contains("gateway op-a") && s.contains("payment op-b"),
            "{s}"
        );
        assert!(s.contains("~bank"), "the skewed span is marked: {s}");
        assert!(s.contains("✗") && s.contains("charging card"), "{s}");
        assert!(!s.contains('\u{1b}'), "{s}");
        // Folding the payment span hides its child and its log.
        update(&mut m, Msg::Key(Key::Down));
        update(&mut m, Msg::Key(Key::Enter));
        let s = screen(&m, 12_000);
        assert!(!s.contains("charging card") && !s.contains("op-c"), "{s}");
    }
}
