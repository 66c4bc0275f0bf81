//! `tui-frames`: how long `skein tui` takes to draw a frame, and what it costs when idle.
//!
//! - Trace view of a 10,000-span trace: the layout once ([`Waterfall::new`]), then frames
//!   with the selection moving 37 rows a frame, so every frame redraws the rows on screen.
//! - Logs view with 10,000 lines/s arriving: 167 new lines before each frame (60 frames/s).
//!
//! A frame is the whole of what the terminal loop does: `view::draw` into ratatui's buffer,
//! the diff with the previous frame, and the escape sequences for it, written to a sink
//! through the same crossterm backend the real terminal uses (160×48).
//!
//! - Idle CPU: the real `skein tui` in a pseudo-terminal (util-linux `script`) on the
//!   overview, against a collector in this process, for `--idle-secs`; CPU from /proc.

use crate::util::{self, Running, row, table};
use anyhow::{Context, Result, bail};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{TerminalOptions, Viewport};
use skein_model::api::TraceResponse;
use skein_model::{LogRecord, Span};
use skein_tui::app::{Model, Msg, View, update};
use skein_tui::logs::Line;
use skein_tui::waterfall::Waterfall;
use std::time::{Duration, Instant};

/// Options of `tui-frames`.
#[derive(Debug, Clone, clap::Args)]
pub struct TuiFramesArgs {
    /// Spans in the trace.
    #[arg(long, default_value_t = 10_000)]
    pub spans: usize,
    /// Frames to time per view.
    #[arg(long, default_value_t = 600)]
    pub frames: usize,
    /// Seconds to watch the idle dashboard (0 skips it).
    #[arg(long, default_value_t = 30)]
    pub idle_secs: u64,
    /// The `skein` binary for the idle measurement.
    #[arg(long, default_value = "target/release/skein")]
    pub skein: std::path::PathBuf,
}

fn trace(n: usize) -> TraceResponse {
    let base = 1_700_000_000_000_000_000u64;
    let mut spans = Vec::with_capacity(n);
    let mut logs = Vec::new();
    spans.push(Span {
        trace_id: "t".into(),
        span_id: "root".into(),
        service: "gateway".into(),
        name: "POST /orders".into(),
        start_unix_nano: base,
        end_unix_nano: base + 5_000_000_000,
        ..Default::default()
    });
    let services = ["order", "coupon", "payment", "delivery", "bank"];
    for i in 1..n {
        // 100 children of the root, each with its own children.
        let parent = if i <= 100 {
            "root".to_string()
        } else {
            format!("s{}", 1 + (i % 100))
        };
        let start = base + (i as u64 * 397_000) % 4_000_000_000;
        spans.push(Span {
            trace_id: "t".into(),
            span_id: format!("s{i}"),
            parent_span_id: parent,
            service: services[i % services.len()].into(),
            name: format!("operation {}", i % 37),
            start_unix_nano: start,
            end_unix_nano: start + 1_000_000 + (i as u64 * 7_919) % 50_000_000,
            status_code: if i.is_multiple_of(97) {
                "error".into()
            } else {
                "ok".into()
            },
            ..Default::default()
        });
        if i.is_multiple_of(10) {
            logs.push(LogRecord {
                span_id: format!("s{i}"),
                service: services[i % services.len()].into(),
                time_unix_nano: start,
                body: format!("step {i} done"),
                ..Default::default()
            });
        }
    }
    TraceResponse {
        trace_id: "t".into(),
        trace_ids: vec![],
        services: vec![],
        spans,
        logs,
        truncated: false,
    }
}

type Sink = Terminal<CrosstermBackend<std::io::Sink>>;

fn terminal() -> Result<Sink> {
    Terminal::with_options(
        CrosstermBackend::new(std::io::sink()),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, 160, 48)),
        },
    )
    .context("terminal")
}

fn frame(t: &mut Sink, m: &Model, h: &mut hdrhistogram::Histogram<u64>) -> Result<()> {
    let start = Instant::now();
    t.draw(|f| skein_tui::view::draw(f, m, 0))?;
    h.record(start.elapsed().as_micros().max(1) as u64)?;
    Ok(())
}

fn ms(h: &hdrhistogram::Histogram<u64>, q: f64) -> String {
    format!("{:.2}", h.value_at_quantile(q) as f64 / 1000.0)
}

fn skein_cpu_ticks(api: &str) -> Option<(u32, f64)> {
    for e in std::fs::read_dir("/proc").ok()?.filter_map(|e| e.ok()) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(" tui ")
            && cmd.contains(api)
            && !cmd.contains("script")
            && !cmd.contains("stty")
        {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let close = stat.rfind(')')?;
            let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            return Some((pid, t(11) + t(12)));
        }
    }
    None
}

fn idle_cpu(a: &TuiFramesArgs) -> Result<f64> {
    let tmp = util::temp_dir("skein-bench-tui")?;
    let c = Running::start(util::bench_config(tmp.path(), 500))?;
    let api = c.api_url();
    let mut child = std::process::Command::new("script")
        .args([
            "-qfec",
            &format!(
                "stty cols 160 rows 48; {} tui --api {api}",
                a.skein.display()
            ),
            "/dev/null",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("script (util-linux) runs the TUI in a pseudo-terminal")?;
    // Let it start and settle, then measure.
    std::thread::sleep(Duration::from_secs(3));
    let Some((pid, t0)) = skein_cpu_ticks(&api) else {
        let _ = child.kill();
        bail!("the skein tui process was not found");
    };
    let w0 = Instant::now();
    std::thread::sleep(Duration::from_secs(a.idle_secs));
    let (_, t1) = skein_cpu_ticks(&api).unwrap_or((pid, t0));
    let wall = w0.elapsed().as_secs_f64();
    if let Some(stdin) = child.stdin.as_mut() {
        use std::io::Write;
        let _ = stdin.write_all(b"q");
    }
    let _ = child.wait();
    c.stop()?;
    Ok((t1 - t0) / 100.0 / wall * 100.0)
}

/// Runs the benchmark.
pub fn run(a: TuiFramesArgs) -> Result<serde_json::Value> {
    let resp = trace(a.spans);
    let t = Instant::now();
    let w = Waterfall::new(resp);
    let layout_ms = t.elapsed().as_secs_f64() * 1000.0;
    let rows = w.rows.len();
    let mut m = Model::new("http://127.0.0.1:7700");
    m.view = View::Trace;
    m.trace.open = Some(w);
    let mut term = terminal()?;
    let mut trace_h = util::histogram()?;
    for i in 0..a.frames {
        if let Some(w) = m.trace.open.as_mut() {
            w.selected = (i * 37) % rows;
        }
        frame(&mut term, &m, &mut trace_h)?;
    }

    let mut m = Model::new("http://127.0.0.1:7700");
    m.view = View::Logs;
    let mut term = terminal()?;
    let mut logs_h = util::histogram()?;
    let mut seq = 0u64;
    for _ in 0..a.frames {
        let start = Instant::now();
        let lines: Vec<Line> = (0..167)
            .map(|k| {
                seq += 1;
                Line {
                    seq,
                    record: LogRecord {
                        time_unix_nano: 1_700_000_000_000_000_000 + seq * 100_000,
                        service: ["order", "payment", "delivery"][k % 3].into(),
                        severity_number: if seq.is_multiple_of(50) { 17 } else { 9 },
                        body: format!(
                            "request {seq} handled in {} ms, user u-{}",
                            seq % 300,
                            seq % 997
                        ),
                        ..Default::default()
                    },
                }
            })
            .collect();
        update(&mut m, Msg::TailLines(lines));
        term.draw(|f| skein_tui::view::draw(f, &m, 0))?;
        logs_h.record(start.elapsed().as_micros().max(1) as u64)?;
    }

    let idle = if a.idle_secs > 0 {
        Some(idle_cpu(&a)?)
    } else {
        None
    };
    table(
        "skein tui frames (160×48, crossterm backend into a sink)",
        &[
            row("trace: spans / rows", format!("{} / {rows}", a.spans)),
            row("trace: layout (ms, once)", format!("{layout_ms:.1}")),
            row(
                "trace: frame p50 / p99 / max (ms)",
                format!(
                    "{} / {} / {}",
                    ms(&trace_h, 0.5),
                    ms(&trace_h, 0.99),
                    ms(&trace_h, 1.0)
                ),
            ),
            row(
                "logs at 10k lines/s: frame p50 / p99 / max (ms)",
                format!(
                    "{} / {} / {}",
                    ms(&logs_h, 0.5),
                    ms(&logs_h, 0.99),
                    ms(&logs_h, 1.0)
                ),
            ),
            row(
                "idle CPU, overview open (% of a core)",
                idle.map_or("skipped".into(), |c| format!("{c:.2}")),
            ),
        ],
    );
    Ok(serde_json::json!({
        "bench": "tui-frames",
        "trace_layout_ms": layout_ms,
        "trace_frame_ms": util::percentiles_ms(&trace_h),
        "logs_frame_ms": util::percentiles_ms(&logs_h),
        "idle_cpu_percent": idle,
    }))
}
