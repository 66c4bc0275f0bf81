//! skein-tui: the live terminal dashboard (ratatui), over the query API's typed client.
//!
//! Built as ratatui's Elm pattern: [`app`] holds the model, the messages and `update` (pure,
//! unit-tested); [`view`] draws a model (tested by rendering into a `Buffer`); [`run`] is the
//! loop: keys from the terminal and refreshes from the API become messages.
//!
//! The terminal is restored on quit, on Ctrl-C (a key in raw mode) and on panic (ratatui's
//! panic hook). Text from logs, labels and names is stripped of control characters and
//! escape sequences before it is drawn.
//!
//! State of this crate: the overview (services, hosts, alerts), the status line, the key help
//! and view switching are built; the logs, traces, trace, metrics and alerts views and the
//! dashboards in `dashboards/` are not yet.

pub mod app;
pub mod view;

use app::{Key, Model, Msg, Snapshot, update};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use skein_query::client::Client;
use std::sync::mpsc;
use std::time::Duration;

/// How `skein tui` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Query API base URL.
    pub api: String,
    /// Bearer token.
    pub token: Option<String>,
    /// Time between refreshes.
    pub refresh: Duration,
}

fn now_ms() -> i64 {
    (skein_model::time::now_unix_nano() / 1_000_000) as i64
}

/// One refresh of the overview: services, hosts and alerts, asked at once.
pub async fn fetch(client: &Client) -> Msg {
    let (s, h, a) = tokio::join!(client.services("1m"), client.hosts(), client.alerts(None));
    match (s, h, a) {
        (Ok(services), Ok(hosts), Ok(alerts)) => Msg::Fetched {
            snapshot: Box::new(Snapshot {
                services,
                hosts,
                alerts,
            }),
            at_ms: now_ms(),
        },
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Msg::FetchFailed {
            error: e.to_string(),
            at_ms: now_ms(),
        },
    }
}

fn key(k: event::KeyEvent) -> Option<Key> {
    if k.kind == KeyEventKind::Release {
        return None;
    }
    Some(match k.code {
        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Key::CtrlC,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Tab => Key::Tab,
        KeyCode::BackTab => Key::BackTab,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Esc => Key::Esc,
        _ => return None,
    })
}

/// Runs the dashboard until `q` or Ctrl-C.
pub fn run(opts: Options) -> Result<(), String> {
    let client = Client::new(&opts.api, opts.token.clone()).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let (tx, rx) = mpsc::channel::<Msg>();
    let refresh = opts.refresh;
    rt.spawn(async move {
        loop {
            let msg = fetch(&client).await;
            if tx.send(msg).is_err() {
                return;
            }
            tokio::time::sleep(refresh).await;
        }
    });
    let mut terminal = ratatui::init();
    let mut m = Model::new(&opts.api);
    let result = (|| -> std::io::Result<()> {
        loop {
            terminal.draw(|f| view::draw(f, &m, now_ms()))?;
            // Wake at least every 250 ms: the status line's clock moves, refreshes arrive.
            if event::poll(Duration::from_millis(250))?
                && let Event::Key(k) = event::read()?
                && let Some(k) = key(k)
            {
                update(&mut m, Msg::Key(k));
            }
            while let Ok(msg) = rx.try_recv() {
                update(&mut m, msg);
            }
            if m.quit {
                return Ok(());
            }
        }
    })();
    ratatui::restore();
    rt.shutdown_timeout(Duration::from_millis(200));
    result.map_err(|e| format!("terminal: {e}"))
}
