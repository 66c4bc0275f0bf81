#![allow(clippy::unwrap_used)]

use super::*;

fn svc(name: &str, rate: f64, err: Option<f64>, p99: Option<f64>) -> ServiceHealth {
    ServiceHealth {
        name: name.into(),
        rate,
        error_rate: err,
        p99_ms: p99,
        ..Default::default()
    }
}

pub(crate) fn snapshot() -> Snapshot {
    Snapshot {
        services: ServicesResponse {
            window_ms: 60_000,
            services: vec![
                svc("order", 12.0, Some(0.01), Some(80.0)),
                svc("payment", 3.0, Some(0.25), Some(2_400.0)),
                svc("gateway", 20.0, None, Some(40.0)),
            ],
        },
        hosts: HostsResponse { hosts: vec![] },
        alerts: AlertsResponse { alerts: vec![] },
    }
}

fn names(m: &Model) -> Vec<&str> {
    m.services().iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn keys_switch_views_sort_and_quit() {
    let mut m = Model::new("http://x");
    update(&mut m, Msg::Key(Key::Tab));
    assert_eq!(m.view, View::Logs);
    update(&mut m, Msg::Key(Key::BackTab));
    update(&mut m, Msg::Key(Key::BackTab));
    assert_eq!(m.view, View::Alerts);
    update(&mut m, Msg::Key(Key::Char('1')));
    assert_eq!(m.view, View::Overview);
    update(
        &mut m,
        Msg::Fetched {
            snapshot: Box::new(snapshot()),
            at_ms: 5,
        },
    );
    assert_eq!(names(&m), ["gateway", "order", "payment"]);
    update(&mut m, Msg::Key(Key::Char('s')));
    assert_eq!(names(&m), ["gateway", "order", "payment"], "by rate");
    update(&mut m, Msg::Key(Key::Char('s')));
    assert_eq!(names(&m), ["payment", "order", "gateway"], "by error %");
    update(&mut m, Msg::Key(Key::Char('s')));
    assert_eq!(names(&m), ["payment", "order", "gateway"], "by p99");
    for _ in 0..5 {
        update(&mut m, Msg::Key(Key::Down));
    }
    assert_eq!(m.overview.selected, 2, "stops at the last row");
    update(&mut m, Msg::Key(Key::Char('?')));
    assert!(m.help);
    update(&mut m, Msg::Key(Key::Char('x')));
    assert!(!m.help && !m.quit, "a key closes the help");
    update(&mut m, Msg::Key(Key::Char('q')));
    assert!(m.quit);
}

#[test]
fn a_failed_refresh_keeps_the_data_and_remembers_the_last_success() {
    let mut m = Model::new("http://x");
    update(
        &mut m,
        Msg::FetchFailed {
            error: "refused".into(),
            at_ms: 1,
        },
    );
    assert!(matches!(
        m.conn,
        Conn::Failed {
            last_ok_ms: None,
            ..
        }
    ));
    update(
        &mut m,
        Msg::Fetched {
            snapshot: Box::new(snapshot()),
            at_ms: 2,
        },
    );
    update(
        &mut m,
        Msg::FetchFailed {
            error: "timeout".into(),
            at_ms: 3,
        },
    );
    assert_eq!(
        m.conn,
        Conn::Failed {
            error: "timeout".into(),
            at_ms: 3,
            last_ok_ms: Some(2)
        }
    );
    assert!(m.data.is_some());
}

#[test]
fn lines_from_a_replaced_tail_are_dropped() {
    use crate::logs::Line;
    let line = |b: &str| Line {
        seq: 1,
        record: LogRecord {
            body: b.into(),
            ..Default::default()
        },
    };
    let mut m = Model::new("http://x");
    update(&mut m, Msg::Key(Key::Char('2')));
    update(
        &mut m,
        Msg::TailBatch {
            generation: 0,
            lines: vec![line("first")],
        },
    );
    assert_eq!(m.logs.lines.len(), 1);
    update(&mut m, Msg::Key(Key::Char('f')));
    update(&mut m, Msg::Key(Key::Char('x')));
    assert!(matches!(
        update(&mut m, Msg::Key(Key::Enter)),
        Some(Cmd::Tail(_))
    ));
    assert_eq!(m.logs.generation, 1);
    update(
        &mut m,
        Msg::TailBatch {
            generation: 0,
            lines: vec![line("stale")],
        },
    );
    assert!(m.logs.lines.is_empty(), "the old tail's line is dropped");
    update(
        &mut m,
        Msg::TailBatch {
            generation: 1,
            lines: vec![line("new")],
        },
    );
    assert_eq!(m.logs.lines[0].record.body, "new");
}
