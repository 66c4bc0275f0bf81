#![allow(clippy::unwrap_used)]

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
        crate::overview::HostSeries {
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
    use crate::app::Cmd;
    use crate::metrics::PanelData;
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
    for (i, p) in m.metrics.dashboard.panels.clone().iter().enumerate() {
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
            min_duration: None,
            ..
        })
    ));
    // f filters by service and operation (an operation may hold spaces).
    update(&mut m, Msg::Key(Key::Char('f')));
    for c in "service=gateway operation=POST /orders".chars() {
        update(&mut m, Msg::Key(Key::Char(c)));
    }
    match update(&mut m, Msg::Key(Key::Enter)) {
        Some(Cmd::LoadTraces {
            service, operation, ..
        }) => {
            assert_eq!(service.as_deref(), Some("gateway"));
            assert_eq!(operation.as_deref(), Some("POST /orders"));
        }
        other => panic!("{other:?}"),
    }
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
