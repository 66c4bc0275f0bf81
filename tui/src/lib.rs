//! skein-tui: the live terminal dashboard (ratatui), over the query API's typed client.
//!
//! Built as ratatui's Elm pattern: [`app`] holds the model, the messages and `update` (pure,
//! unit-tested), with each view's own state and keys in its module ([`overview`], [`logs`],
//! [`traces`], [`waterfall`] for the trace view, [`metrics`], [`alerts`]); [`view`] draws a
//! model (tested by rendering into a `Buffer`); [`run`] is the loop: keys from the terminal
//! and refreshes from the API become messages.
//!
//! The terminal is restored on quit, on Ctrl-C (a key in raw mode) and on panic (ratatui's
//! panic hook). Text from logs, labels and names is stripped of control characters and
//! escape sequences before it is drawn.
//!
//! The views: the overview (services, hosts with resource sparklines, alerts), the logs view
//! (live tail with a filter and pause, selection, search over history with highlighted
//! matches, the lines around a line, copy, Enter opens the line's trace), the traces list
//! (errors only, least duration, service and operation), the trace waterfall ([`waterfall`]:
//! tree, skew correction, critical path, logs under spans, folding, span details), the metrics
//! view (the panels of a dashboard file, see [`dashboard`]; `dashboards/default.toml` is built
//! in) and the alerts view (silence the selected alert); then the status line, the key help
//! and view switching. [`sparkline`] draws series as text for these views and for the CLI's
//! tables.

pub mod alerts;
pub mod app;
pub mod dashboard;
pub mod logs;
pub mod metrics;
pub mod overview;
pub mod sparkline;
pub mod traces;
pub mod view;
mod view_logs;
mod view_metrics;
mod view_trace;
pub mod waterfall;

use app::{Cmd, Key, Model, Msg, Snapshot, update};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use skein_client::Client;
use skein_model::time::now_ms;
use std::sync::mpsc;
use std::time::Duration;

/// How `skein tui` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Query API base URL.
    pub api: String,
    /// Bearer token.
    pub token: Option<String>,
    /// TLS to an `https://` API: CA file, client certificate, insecure switch.
    pub tls: skein_client::ClientTls,
    /// Time between refreshes.
    pub refresh: Duration,
    /// The dashboard file of the metrics view (None: the built-in `dashboards/default.toml`).
    pub dashboard: Option<std::path::PathBuf>,
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
        KeyCode::Enter => Key::Enter,
        KeyCode::Backspace => Key::Backspace,
        _ => return None,
    })
}

/// Standard base64 of `bytes`.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(char::from(A[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Puts text on the clipboard through the terminal (OSC 52; the text travels base64-encoded,
/// so nothing in it can act on the terminal).
fn copy(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout();
    write!(out, "\x1b]52;c;{}\x07", base64(text.as_bytes()))?;
    out.flush()
}

/// The live tail: new lines as messages; on a drop it says so and goes on after the last
/// line it got, so the view has no gap and no repeat.
async fn follow(client: Client, filter: logs::TailFilter, generation: u64, tx: mpsc::Sender<Msg>) {
    let mut cursor = None;
    let back = logs::MAX_LINES.min(200).to_string();
    let owned = filter.params();
    loop {
        let mut params: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        params.push(("back", if cursor.is_none() { back.as_str() } else { "0" }));
        let res = client
            .tail(&params, cursor, |line| {
                cursor = Some(line.seq);
                tx.send(Msg::TailBatch {
                    generation,
                    lines: vec![logs::Line {
                        seq: line.seq,
                        record: line.record,
                    }],
                })
                .is_ok()
            })
            .await;
        match res {
            Ok(()) => return,
            Err(e) => {
                if tx.send(Msg::TailFailed(e.to_string())).is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// Hosts' resource figures over the last 15 minutes (30 s points): CPU, memory, the fullest
/// filesystem and network bytes/s, by host. A metric with no data yet is left empty.
pub async fn host_series(c: &Client) -> std::collections::BTreeMap<String, overview::HostSeries> {
    let q = |name: &'static str, agg: &'static str, matcher: Option<&'static str>| {
        let mut p = vec![
            ("name", name),
            ("agg", agg),
            ("by", "host"),
            ("start", "15m"),
            ("step", "30s"),
        ];
        if let Some(m) = matcher {
            p.push(("match", m));
        }
        async move {
            c.metric_query(&p)
                .await
                .map(|r| r.series)
                .unwrap_or_default()
        }
    };
    let (cpu, mem, disk, net) = tokio::join!(
        q("system.cpu.utilization", "avg", None),
        q(
            "system.memory.utilization",
            "avg",
            Some("system.memory.state=used")
        ),
        q("system.filesystem.utilization", "max", None),
        q("system.network.io", "rate", None),
    );
    let mut out: std::collections::BTreeMap<String, overview::HostSeries> = Default::default();
    for (which, series) in [(0, cpu), (1, mem), (2, disk), (3, net)] {
        for s in series {
            let Some(host) = s.labels.get("host").map(str::to_string) else {
                continue;
            };
            let v: Vec<f64> = s.points.iter().map(|(_, v)| *v).collect();
            let e = out.entry(host).or_default();
            match which {
                0 => e.cpu = v,
                1 => e.mem = v,
                2 => e.disk = v,
                _ => e.net = v,
            }
        }
    }
    out
}

/// Reads one dashboard panel over `window` (`1h`).
async fn panel(
    c: &Client,
    p: &dashboard::Panel,
    window: &str,
) -> Result<metrics::PanelData, String> {
    if p.kind == dashboard::Kind::Logs {
        let q = skein_client::LogsQuery {
            q: p.logs.clone(),
            start: Some(window.to_string()),
            limit: Some(50),
            ..Default::default()
        };
        return c
            .logs(&q)
            .await
            .map(|r| metrics::PanelData::Logs(r.logs))
            .map_err(|e| e.to_string());
    }
    let by = p.by.join(",");
    let mut params: Vec<(&str, &str)> = vec![
        ("name", p.metric.as_deref().unwrap_or("")),
        ("agg", p.agg.as_deref().unwrap_or("avg")),
        ("start", window),
    ];
    if !by.is_empty() {
        params.push(("by", &by));
    }
    for mt in &p.matchers {
        params.push(("match", mt));
    }
    c.metric_query(&params)
        .await
        .map(metrics::PanelData::Metric)
        .map_err(|e| e.to_string())
}

/// Runs the dashboard until `q` or Ctrl-C.
pub fn run(opts: Options) -> Result<(), String> {
    // A bad dashboard is refused before the terminal is touched.
    let board = match &opts.dashboard {
        Some(p) => dashboard::load(p)?,
        None => dashboard::parse("dashboards/default.toml", dashboard::DEFAULT)?,
    };
    let client =
        Client::with_tls(&opts.api, opts.token.clone(), &opts.tls).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let (tx, rx) = mpsc::channel::<Msg>();
    let search_tx = tx.clone();
    let tail_tx = tx.clone();
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
    // Hosts' sparklines change slowly: every 10 s is enough.
    let hosts_client =
        Client::with_tls(&opts.api, opts.token.clone(), &opts.tls).map_err(|e| e.to_string())?;
    let hosts_tx = search_tx.clone();
    rt.spawn(async move {
        loop {
            let h = host_series(&hosts_client).await;
            if hosts_tx.send(Msg::HostSeries(h)).is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    });
    let tail_client =
        Client::with_tls(&opts.api, opts.token.clone(), &opts.tls).map_err(|e| e.to_string())?;
    let mut tail_task = rt.spawn(follow(
        tail_client.clone(),
        logs::TailFilter::default(),
        0,
        tail_tx.clone(),
    ));
    let search_client =
        Client::with_tls(&opts.api, opts.token.clone(), &opts.tls).map_err(|e| e.to_string())?;
    let mut terminal = ratatui::init();
    let mut m = Model::with_dashboard(&opts.api, board);
    let result = (|| -> std::io::Result<()> {
        loop {
            terminal.draw(|f| view::draw(f, &m, now_ms()))?;
            // Wake at least every 250 ms: the status line's clock moves, refreshes arrive.
            let mut cmds = Vec::new();
            if event::poll(Duration::from_millis(250))?
                && let Event::Key(k) = event::read()?
                && let Some(k) = key(k)
                && let Some(cmd) = update(&mut m, Msg::Key(k))
            {
                cmds.push(cmd);
            }
            while let Ok(msg) = rx.try_recv() {
                cmds.extend(update(&mut m, msg));
            }
            for cmd in cmds {
                match cmd {
                    Cmd::Search(q) => {
                        let (c, tx) = (search_client.clone(), search_tx.clone());
                        rt.spawn(async move {
                            let query = skein_client::LogsQuery {
                                q: Some(q.clone()),
                                limit: Some(1000),
                                ..Default::default()
                            };
                            let result = c
                                .logs(&query)
                                .await
                                .map(|r| r.logs)
                                .map_err(|e| e.to_string());
                            let _ = tx.send(Msg::SearchDone { query: q, result });
                        });
                    }
                    Cmd::Copy(text) => copy(&text)?,
                    Cmd::LoadPanels(window) => {
                        m.metrics.asked_ms = now_ms();
                        for (index, p) in m.metrics.dashboard.panels.iter().enumerate() {
                            let (c, tx, p) = (search_client.clone(), search_tx.clone(), p.clone());
                            let window = p.window.clone().unwrap_or_else(|| window.clone());
                            rt.spawn(async move {
                                let result = panel(&c, &p, &window).await;
                                let _ = tx.send(Msg::Panel {
                                    index,
                                    result,
                                    at_ms: now_ms(),
                                });
                            });
                        }
                    }
                    Cmd::Tail(filter) => {
                        tail_task.abort();
                        tail_task = rt.spawn(follow(
                            tail_client.clone(),
                            filter,
                            m.logs.generation,
                            tail_tx.clone(),
                        ));
                    }
                    Cmd::Context {
                        service,
                        host,
                        time,
                    } => {
                        let (c, tx) = (search_client.clone(), search_tx.clone());
                        rt.spawn(async move {
                            let r = c
                                .log_context(&service, host.as_deref(), time, 5, 6)
                                .await
                                .map_err(|e| e.to_string());
                            let _ = tx.send(Msg::Context(r));
                        });
                    }
                    Cmd::LoadTraces {
                        errors_only,
                        min_duration,
                        service,
                        operation,
                    } => {
                        let (c, tx) = (search_client.clone(), search_tx.clone());
                        rt.spawn(async move {
                            let q = skein_client::TracesQuery {
                                min_duration,
                                service,
                                operation,
                                error: errors_only.then_some(true),
                                limit: Some(200),
                                ..Default::default()
                            };
                            let r = c
                                .traces(&q)
                                .await
                                .map(|t| t.traces)
                                .map_err(|e| e.to_string());
                            let _ = tx.send(Msg::Traces(r));
                        });
                    }
                    Cmd::OpenTrace(key) => {
                        let (c, tx) = (search_client.clone(), search_tx.clone());
                        rt.spawn(async move {
                            let r = c.trace(&key).await.map_err(|e| e.to_string());
                            let _ = tx.send(Msg::TraceLoaded(r));
                        });
                    }
                    Cmd::Silence(labels) => {
                        let (c, tx) = (search_client.clone(), search_tx.clone());
                        rt.spawn(async move {
                            let new = skein_model::alert_api::NewSilence {
                                matchers: labels
                                    .iter()
                                    .map(|(k, v)| skein_model::alert_api::LabelMatcher {
                                        name: k.clone(),
                                        value: v.clone(),
                                        is_regex: false,
                                        is_equal: true,
                                    })
                                    .collect(),
                                duration: Some("1h".into()),
                                created_by: std::env::var("USER")
                                    .unwrap_or_else(|_| "skein tui".into()),
                                comment: "silenced from skein tui".into(),
                                ..Default::default()
                            };
                            let r = c
                                .add_silence(&new)
                                .await
                                .map(|s| s.silence_id)
                                .map_err(|e| e.to_string());
                            let _ = tx.send(Msg::Silenced(r));
                        });
                    }
                }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }
}
