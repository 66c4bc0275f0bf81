//! Text rendering of API answers for the terminal. Pure functions: no I/O, no clock.
//!
//! Everything that came from logs or spans is passed through [`sanitize`] before it is shown:
//! a log body is written by whoever can make a service log something (often an outside user),
//! and raw escape sequences in it could recolor, retitle or rewrite the operator's terminal.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use skein_model::api::TraceResponse;
use skein_model::span_tree::SpanTree;
use skein_model::{LogRecord, Span};

/// Width of the time-axis bar in `skein trace`, in columns.
pub const BAR_WIDTH: usize = 40;

/// Widest span label column (tree guides, service and name); longer labels are cut with `…`
/// so that the bars stay in one column.
const LABEL_MAX: usize = 64;

/// Longest error message shown after a span's `✗`; the full text is in `--json`.
const MESSAGE_MAX: usize = 200;

const RED: &str = "31";
const BOLD_RED: &str = "1;31";
const YELLOW: &str = "33";
const CYAN: &str = "36";
const DIM: &str = "2";
const BOLD: &str = "1";

pub use skein_model::sanitize::sanitize;

/// Wraps `text` in an SGR color when `color` is on.
fn paint(text: &str, code: &str, color: bool) -> String {
    if color && !text.is_empty() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Cuts `text` to at most `max` characters, marking the cut with `…`.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// Display width in columns, counting one per character (good enough for the box-drawing
/// guides and most text; wide CJK characters make a line longer, never unsafe).
fn cols(text: &str) -> usize {
    text.chars().count()
}

/// A number with three significant digits, trailing zeros removed: `1.24`, `12.4`, `124`, `3.2`.
fn sig3(v: f64) -> String {
    let s = if v >= 99.95 {
        format!("{v:.0}")
    } else if v >= 9.995 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A duration for people: `0s`, `950ns`, `812µs`, `1.24ms`, `3.2s`, `2m05s`, `1h02m`.
pub fn format_duration(ns: u64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    let n = ns as f64;
    // Pick the unit after rounding, so 999.96µs reads 1ms and not 1000µs.
    for (scale, unit) in [(1e3, "µs"), (1e6, "ms")] {
        let v = n / scale;
        if v < 999.95 {
            return format!("{}{unit}", sig3(v));
        }
    }
    let secs = n / 1e9;
    if secs < 59.95 {
        return format!("{}s", sig3(secs));
    }
    let total = (secs + 0.5) as u64;
    if total < 3600 {
        format!("{}m{:02}s", total / 60, total % 60)
    } else {
        format!("{}h{:02}m", total / 3600, (total % 3600) / 60)
    }
}

/// A signed offset from a reference time: `+12.3ms`, `-1.5s`.
pub fn format_offset(ns: i128) -> String {
    let sign = if ns < 0 { '-' } else { '+' };
    let abs = u64::try_from(ns.unsigned_abs()).unwrap_or(u64::MAX);
    format!("{sign}{}", format_duration(abs))
}

/// A timestamp as RFC 3339 UTC with milliseconds: `2026-11-22T03:00:00.123Z`.
pub fn format_time(unix_nano: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_nanos(unix_nano)).to_string()
}

/// Severity levels, for coloring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Unknown,
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

/// The level of a record: from the OTLP number when set, else from the text.
fn level(rec: &LogRecord) -> Level {
    match rec.severity_number {
        1..=4 => return Level::Trace,
        5..=8 => return Level::Debug,
        9..=12 => return Level::Info,
        13..=16 => return Level::Warn,
        17..=20 => return Level::Error,
        21..=24 => return Level::Fatal,
        _ => {}
    }
    let t = rec.severity_text.trim().to_ascii_uppercase();
    if t.starts_with("FATAL")
        || t.starts_with("CRIT")
        || t.starts_with("EMERG")
        || t.starts_with("ALERT")
        || t.starts_with("PANIC")
    {
        Level::Fatal
    } else if t.starts_with("ERR") {
        Level::Error
    } else if t.starts_with("WARN") {
        Level::Warn
    } else if t.starts_with("INFO") || t.starts_with("NOTICE") {
        Level::Info
    } else if t.starts_with("DEBUG") {
        Level::Debug
    } else if t.starts_with("TRACE") {
        Level::Trace
    } else {
        Level::Unknown
    }
}

/// The severity as shown: the sender's text, else a name from the number, else `-`; padded to
/// five columns and colored by level.
fn severity(rec: &LogRecord, color: bool) -> String {
    let lvl = level(rec);
    let text = sanitize(rec.severity_text.trim());
    let label = if !text.is_empty() {
        text
    } else {
        match lvl {
            Level::Unknown => "-",
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
        .to_string()
    };
    let padded = format!("{label:<5}");
    match lvl {
        Level::Fatal => paint(&padded, BOLD_RED, color),
        Level::Error => paint(&padded, RED, color),
        Level::Warn => paint(&padded, YELLOW, color),
        Level::Trace | Level::Debug => paint(&padded, DIM, color),
        Level::Info | Level::Unknown => padded,
    }
}

/// One log as a line for `skein search`: time, severity, service, body and the start of the
/// trace ID. No newline at the end.
pub fn log_line(rec: &LogRecord, color: bool) -> String {
    let mut line = format!(
        "{} {} {} {}",
        paint(&format_time(rec.time_unix_nano), DIM, color),
        severity(rec, color),
        paint(&sanitize(&rec.service), CYAN, color),
        sanitize(&rec.body),
    );
    let trace: String = sanitize(&rec.trace_id).chars().take(8).collect();
    if !trace.is_empty() {
        line.push(' ');
        line.push_str(&paint(&format!("trace={trace}"), DIM, color));
    }
    line
}

/// One span's place in the drawn tree.
struct Row {
    /// Index into the response's spans.
    idx: usize,
    /// 0 for roots.
    depth: usize,
    /// Last among its siblings (draws `└─` rather than `├─`).
    last: bool,
    /// For each ancestor level from 1 to depth-1: whether that ancestor was last, which means
    /// no `│` guide continues in its column.
    guides: Vec<bool>,
    /// Whether it has children drawn under it (its logs then carry a `│` down to them).
    has_children: bool,
}

/// Lays spans out as a tree ([`SpanTree`]: roots are spans whose parent is not in the set,
/// siblings by start time, parent cycles entered once). For the API's tree order this is the
/// given order; it also copes with a parent listed after its child.
fn layout(spans: &[Span]) -> Vec<Row> {
    let tree = SpanTree::build(spans);
    let last = |i: usize| tree.parent[i].is_none_or(|p| tree.children[p].last() == Some(&i));
    let mut rows: Vec<Row> = Vec::with_capacity(spans.len());
    // Where each span's row is, so a child can read its parent's guides.
    let mut row_of = vec![0usize; spans.len()];
    for &idx in &tree.order {
        // Parents come before their children, so the parent's row is already there.
        let guides = match tree.parent[idx] {
            Some(p) => {
                let up = &rows[row_of[p]];
                let mut g = up.guides.clone();
                if up.depth >= 1 {
                    g.push(up.last);
                }
                g
            }
            None => Vec::new(),
        };
        row_of[idx] = rows.len();
        rows.push(Row {
            idx,
            depth: tree.depth[idx],
            last: last(idx),
            guides,
            has_children: !tree.children[idx].is_empty(),
        });
    }
    rows
}

/// The guide columns of a row's ancestors: `│  ` where an ancestor has siblings below it.
fn ancestor_guides(row: &Row) -> String {
    row.guides
        .iter()
        .map(|&last| if last { "   " } else { "│  " })
        .collect()
}

/// The tree prefix of a span line.
fn span_prefix(row: &Row) -> String {
    if row.depth == 0 {
        return String::new();
    }
    let mut p = ancestor_guides(row);
    p.push_str(if row.last { "└─ " } else { "├─ " });
    p
}

/// The tree prefix of the lines under a span (its logs): the guides continue past it.
fn under_prefix(row: &Row) -> String {
    let mut p = ancestor_guides(row);
    if row.depth >= 1 {
        p.push_str(if row.last { "   " } else { "│  " });
    }
    p.push_str(if row.has_children { "│  " } else { "   " });
    p
}

/// The bar of a span on the trace's time axis: `width` cells, the span's share filled with `█`
/// (at least one cell), `·` elsewhere. The track is dim and the fill red for an error span.
fn bar(span: &Span, t0: u64, total: u64, width: usize, color: bool) -> String {
    if width == 0 {
        return String::new();
    }
    let (off, len) = if total == 0 {
        (0, 1)
    } else {
        let w = width as u128;
        let start = u128::from(span.start_unix_nano.saturating_sub(t0));
        let off = usize::try_from(start * w / u128::from(total)).unwrap_or(width);
        let off = off.min(width - 1);
        let dur = u128::from(span.duration_ns);
        let len =
            usize::try_from((dur * w + u128::from(total) / 2) / u128::from(total)).unwrap_or(width);
        (off, len.clamp(1, width - off))
    };
    let fill = "█".repeat(len);
    format!(
        "{}{}{}",
        paint(&"·".repeat(off), DIM, color),
        if span.is_error() {
            paint(&fill, RED, color)
        } else {
            fill
        },
        paint(&"·".repeat(width - off - len), DIM, color),
    )
}

/// What to say after a span's `✗`: its status message, else the message of its first
/// exception event.
fn error_message(span: &Span) -> String {
    let mut msg = span.status_message.trim().to_string();
    if msg.is_empty() {
        msg = span
            .events
            .iter()
            .filter(|e| e.name == "exception")
            .find_map(|e| e.attributes.get("exception.message"))
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default();
    }
    truncate(&sanitize(&msg), MESSAGE_MAX)
}

/// A count with its noun, plural when not one.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A log line inside the trace view: offset from the trace start, severity, body.
fn trace_log_line(rec: &LogRecord, t0: u64, with_service: bool, color: bool) -> String {
    let offset = format_offset(i128::from(rec.time_unix_nano) - i128::from(t0));
    let mut line = format!(
        "{} {}",
        paint(&format!("{offset:>8}"), DIM, color),
        severity(rec, color)
    );
    if with_service {
        line.push(' ');
        line.push_str(&paint(&sanitize(&rec.service), CYAN, color));
    }
    line.push(' ');
    line.push_str(&sanitize(&rec.body));
    line
}

/// `skein trace` as text: a header line, the span tree with durations, bars on a shared time
/// axis of `width` columns and error marks, each span's logs under it, then the logs tied to
/// no span. Ends with a newline. Without `color` there is no escape byte in the output.
pub fn trace_text(resp: &TraceResponse, color: bool, width: usize) -> String {
    let spans = &resp.spans;
    let span_start = spans.iter().map(|s| s.start_unix_nano).min();
    let span_end = spans
        .iter()
        .map(|s| s.end_unix_nano.max(s.start_unix_nano))
        .max();
    // Offsets count from the first span; with no span at all, from the first log.
    let t0 = span_start
        .or_else(|| resp.logs.iter().map(|l| l.time_unix_nano).min())
        .unwrap_or(0);
    let total = match (span_start, span_end) {
        (Some(s), Some(e)) => e.saturating_sub(s),
        _ => 0,
    };
    let errors = spans.iter().filter(|s| s.is_error()).count();

    let mut out = String::new();

    // Header.
    let mut header = format!("trace {}", paint(&sanitize(&resp.trace_id), BOLD, color));
    let services: Vec<String> = resp.services.iter().map(|s| sanitize(s)).collect();
    let _ = write!(header, " · {}", count(services.len(), "service"));
    if !services.is_empty() {
        let _ = write!(header, ": {}", services.join(", "));
    }
    let _ = write!(
        header,
        " · {} · {} · {}",
        format_duration(total),
        count(spans.len(), "span"),
        if errors > 0 {
            paint(&count(errors, "error"), RED, color)
        } else {
            count(errors, "error")
        }
    );
    let others: Vec<String> = resp
        .trace_ids
        .iter()
        .filter(|t| **t != resp.trace_id)
        .map(|t| sanitize(t))
        .collect();
    if !others.is_empty() {
        let _ = write!(header, " · also traces: {}", others.join(", "));
    }
    out.push_str(&header);
    out.push('\n');
    if resp.truncated {
        out.push_str(&paint(
            "(answer truncated: the query API's limits cut this trace short)",
            YELLOW,
            color,
        ));
        out.push('\n');
    }

    // Logs by span, by time (stable, so equal times keep the API's order).
    let mut by_span: HashMap<&str, Vec<&LogRecord>> = HashMap::new();
    let mut orphans: Vec<&LogRecord> = Vec::new();
    let span_ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    for rec in &resp.logs {
        if !rec.span_id.is_empty() && span_ids.contains(rec.span_id.as_str()) {
            by_span.entry(rec.span_id.as_str()).or_default().push(rec);
        } else {
            orphans.push(rec);
        }
    }
    for logs in by_span.values_mut() {
        logs.sort_by_key(|l| l.time_unix_nano);
    }
    orphans.sort_by_key(|l| l.time_unix_nano);

    // The span tree. Labels are padded to one width so that durations and bars line up.
    let rows = layout(spans);
    let labels: Vec<(String, String, String)> = rows
        .iter()
        .map(|row| {
            let s = &spans[row.idx];
            let prefix = span_prefix(row);
            let room = LABEL_MAX.saturating_sub(cols(&prefix)).max(12);
            let service = truncate(&sanitize(&s.service), room);
            let name = truncate(
                &sanitize(&s.name),
                room.saturating_sub(cols(&service) + 1).max(1),
            );
            (prefix, service, name)
        })
        .collect();
    let label_width = labels
        .iter()
        .map(|(p, s, n)| cols(p) + cols(s) + 1 + cols(n))
        .max()
        .unwrap_or(0);
    let durations: Vec<String> = rows
        .iter()
        .map(|row| format_duration(spans[row.idx].duration_ns))
        .collect();
    let dur_width = durations.iter().map(|d| cols(d)).max().unwrap_or(0);
    let mut shown_logs: HashSet<&str> = HashSet::new();

    for ((row, (prefix, service, name)), dur) in rows.iter().zip(&labels).zip(&durations) {
        let s = &spans[row.idx];
        let err = s.is_error();
        let pad = label_width - (cols(prefix) + cols(service) + 1 + cols(name));
        let mut line = paint(prefix, DIM, color);
        line.push_str(&paint(service, CYAN, color));
        line.push(' ');
        line.push_str(&if err {
            paint(name, RED, color)
        } else {
            name.clone()
        });
        line.push_str(&" ".repeat(pad));
        let _ = write!(line, "  {dur:>dur_width$}");
        if width > 0 {
            line.push_str("  ");
            line.push_str(&bar(s, t0, total, width, color));
        }
        if err {
            let msg = error_message(s);
            let mark = if msg.is_empty() {
                "✗".to_string()
            } else {
                format!("✗ {msg}")
            };
            line.push_str("  ");
            line.push_str(&paint(&mark, BOLD_RED, color));
        }
        out.push_str(line.trim_end());
        out.push('\n');

        // Logs go under the first span with that ID only, so a duplicated ID does not
        // print them twice.
        if shown_logs.insert(s.span_id.as_str())
            && let Some(logs) = by_span.get(s.span_id.as_str())
        {
            let under = under_prefix(row);
            for rec in logs {
                out.push_str(&paint(&under, DIM, color));
                out.push_str(&trace_log_line(rec, t0, false, color));
                out.push('\n');
            }
        }
    }

    if !orphans.is_empty() {
        out.push('\n');
        out.push_str(&paint("logs not tied to a span:", BOLD, color));
        out.push('\n');
        for rec in orphans {
            out.push_str("  ");
            out.push_str(&trace_log_line(rec, t0, true, color));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use skein_model::SpanEvent;

    const T0: u64 = 1_795_316_400_000_000_000;
    const MS: u64 = 1_000_000;

    fn span(id: &str, parent: &str, service: &str, name: &str, start_ms: u64, dur_ms: u64) -> Span {
        Span {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: id.into(),
            parent_span_id: parent.into(),
            service: service.into(),
            name: name.into(),
            kind: "server".into(),
            start_unix_nano: T0 + start_ms * MS,
            end_unix_nano: T0 + (start_ms + dur_ms) * MS,
            duration_ns: dur_ms * MS,
            status_code: "unset".into(),
            ..Default::default()
        }
    }

    fn log(at_ms: u64, service: &str, sev: &str, body: &str, span_id: &str) -> LogRecord {
        LogRecord {
            time_unix_nano: T0 + at_ms * MS,
            service: service.into(),
            severity_text: sev.into(),
            body: body.into(),
            trace_id: if span_id.is_empty() {
                String::new()
            } else {
                "4bf92f3577b34da6a3ce929d0e0e4736".into()
            },
            span_id: span_id.into(),
            ..Default::default()
        }
    }

    /// Three services, nested spans, an error span, logs under spans and a log tied to no span.
    ///
    /// ```text
    /// frontend GET /checkout            (a, 0..100ms)
    /// ├─ cart load cart                 (b, 5..25ms)
    /// └─ payments charge                (c, 30..90ms, error)
    ///    └─ payments db insert          (d, 40..50ms)
    /// ```
    pub(crate) fn sample_trace() -> TraceResponse {
        let mut charge = span("c", "a", "payments", "charge", 30, 60);
        charge.status_code = "error".into();
        charge.status_message = "card declined".into();
        TraceResponse {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            trace_ids: vec![
                "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                "0af7651916cd43dd8448eb211c80319c".into(),
            ],
            services: vec!["frontend".into(), "cart".into(), "payments".into()],
            spans: vec![
                span("a", "", "frontend", "GET /checkout", 0, 100),
                span("b", "a", "cart", "load cart", 5, 20),
                charge,
                span("d", "c", "payments", "db insert", 40, 10),
            ],
            logs: vec![
                log(1, "frontend", "INFO", "request received", "a"),
                log(2, "edge", "WARN", "slow client r-42", ""),
                log(45, "payments", "ERROR", "insert failed\nretrying", "d"),
                log(35, "payments", "INFO", "charging card", "c"),
            ],
            truncated: false,
        }
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(950), "950ns");
        assert_eq!(format_duration(812_000), "812µs");
        assert_eq!(format_duration(8_120), "8.12µs");
        assert_eq!(format_duration(1_240_000), "1.24ms");
        assert_eq!(format_duration(12_345_678), "12.3ms");
        assert_eq!(format_duration(999_990), "1ms");
        assert_eq!(format_duration(3_200_000_000), "3.2s");
        assert_eq!(format_duration(125_000_000_000), "2m05s");
        assert_eq!(format_duration(3_720_000_000_000), "1h02m");
        assert_eq!(format_offset(12_300_000), "+12.3ms");
        assert_eq!(format_offset(-1_500_000_000), "-1.5s");
        assert_eq!(format_time(T0 + 123 * MS), "2026-11-22T03:00:00.123Z");
    }

    #[test]
    fn log_line_has_time_severity_service_body_and_trace() {
        let rec = log(
            0,
            "checkout",
            "WARN",
            "payment \x1b[31mslow\x1b[0m\nagain",
            "b",
        );
        assert_eq!(
            log_line(&rec, false),
            "2026-11-22T03:00:00.000Z WARN  checkout payment slow⏎again trace=4bf92f35"
        );
        let mut bare = log(0, "svc", "", "hi", "");
        bare.severity_number = 17;
        assert_eq!(
            log_line(&bare, false),
            "2026-11-22T03:00:00.000Z ERROR svc hi"
        );
        let colored = log_line(&bare, true);
        assert!(colored.contains("\x1b[31mERROR\x1b[0m"), "{colored:?}");
    }

    #[test]
    fn trace_text_draws_the_tree_in_order() {
        let text = trace_text(&sample_trace(), false, BAR_WIDTH);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("trace 4bf92f3577b34da6a3ce929d0e0e4736"),
            "{text}"
        );
        assert!(
            lines[0].contains("3 services: frontend, cart, payments"),
            "{text}"
        );
        assert!(lines[0].contains("100ms"), "{text}");
        assert!(lines[0].contains("4 spans"), "{text}");
        assert!(lines[0].contains("1 error"), "{text}");
        assert!(
            lines[0].contains("also traces: 0af7651916cd43dd8448eb211c80319c"),
            "{text}"
        );

        let pos = |needle: &str| {
            lines
                .iter()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle:?} not in\n{text}"))
        };
        let root = pos("frontend GET /checkout");
        let cart = pos("cart load cart");
        let charge = pos("payments charge");
        let db = pos("payments db insert");
        assert!(root < cart && cart < charge && charge < db, "{text}");
        assert!(lines[root].starts_with("frontend GET /checkout"), "{text}");
        assert!(lines[cart].starts_with("├─ cart load cart"), "{text}");
        assert!(lines[charge].starts_with("└─ payments charge"), "{text}");
        assert!(lines[db].starts_with("   └─ payments db insert"), "{text}");

        // Durations and bars on a shared axis: the root fills it, the others start later.
        assert!(lines[root].contains("100ms"), "{text}");
        assert!(lines[db].contains("10ms"), "{text}");
        let bar_of =
            |l: &str| -> String { l.chars().filter(|c| *c == '█' || *c == '·').collect() };
        assert_eq!(bar_of(lines[root]), "█".repeat(BAR_WIDTH));
        let cart_bar = bar_of(lines[cart]);
        assert_eq!(cart_bar.chars().count(), BAR_WIDTH);
        assert_eq!(
            cart_bar,
            format!("{}{}{}", "··", "█".repeat(8), "·".repeat(30))
        );
        // 40..50ms of 100ms: cells 16..20.
        assert!(
            bar_of(lines[db]).starts_with(&format!("{}████·", "·".repeat(16))),
            "{text}"
        );
        // The bars start in one column.
        let col = |l: &str| l.chars().position(|c| c == '█' || c == '·').unwrap();
        assert_eq!(col(lines[root]), col(lines[db]), "{text}");

        // The error mark is on the error span only.
        assert!(lines[charge].contains("✗ card declined"), "{text}");
        assert_eq!(text.matches('✗').count(), 1, "{text}");
    }

    #[test]
    fn trace_text_puts_logs_under_their_span_and_orphans_last() {
        let text = trace_text(&sample_trace(), false, BAR_WIDTH);
        let lines: Vec<&str> = text.lines().collect();
        let pos = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap();

        let root = pos("frontend GET /checkout");
        let received = pos("request received");
        assert_eq!(received, root + 1, "{text}");
        // Under the root, with the guide continuing down to its children.
        assert!(lines[received].starts_with("│  "), "{text}");
        assert!(
            lines[received].contains("+1ms INFO  request received"),
            "{text}"
        );

        let charge = pos("payments charge");
        assert_eq!(pos("charging card"), charge + 1, "{text}");
        assert!(lines[charge + 1].starts_with("   │  "), "{text}");
        let db = pos("payments db insert");
        assert_eq!(pos("insert failed"), db + 1, "{text}");
        assert!(
            lines[db + 1].contains("+45ms ERROR insert failed⏎retrying"),
            "{text}"
        );

        // The log with no span comes last, in its own section, with its service.
        let section = pos("logs not tied to a span:");
        assert!(section > db + 1, "{text}");
        let orphan = pos("slow client r-42");
        assert!(orphan > section, "{text}");
        assert!(
            lines[orphan].contains("+2ms WARN  edge slow client r-42"),
            "{text}"
        );
        assert_eq!(text.matches("slow client").count(), 1, "{text}");
    }

    #[test]
    fn trace_text_has_no_escape_bytes_without_color() {
        let mut resp = sample_trace();
        resp.spans[1].name = "\x1b[2Jwipe\x1b]0;pwned\x07".into();
        resp.spans[2].status_message = "\u{9b}31mbad\x1b[0m\r\nline".into();
        resp.services[0] = "front\x1b[5mend".into();
        resp.logs[0].body = "\x1b[31mred\x1b[0m \x1bPq\x1b\\ \u{9b}2J".into();
        resp.logs[1].service = "ed\x1b[1mge".into();
        resp.logs[1].severity_text = "W\x1b[0mARN".into();
        resp.trace_ids.push("\x1b]52;c;ZXZpbA==\x07".into());
        resp.truncated = true;
        let text = trace_text(&resp, false, BAR_WIDTH);
        assert!(!text.contains('\x1b'), "{text:?}");
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(text.contains("cart wipe"), "{text}");
        assert!(text.contains("✗ bad⏎line"), "{text}");

        // With color the same input only carries our own SGR sequences.
        let colored = trace_text(&resp, true, BAR_WIDTH);
        assert!(
            colored.contains("\x1b[1;31m✗ bad⏎line\x1b[0m"),
            "{colored:?}"
        );
        assert!(!colored.contains("\x1b]"), "{colored:?}");
        assert!(!colored.contains("\x1b[2J"), "{colored:?}");
        assert!(!colored.contains('\u{9b}'), "{colored:?}");
    }

    #[test]
    fn trace_text_error_mark_falls_back_to_the_exception_event() {
        let mut resp = sample_trace();
        resp.spans[2].status_message.clear();
        let mut attrs = serde_json::Map::new();
        attrs.insert("exception.message".into(), "timeout\x1b[0m after 3s".into());
        resp.spans[2].events.push(SpanEvent {
            time_unix_nano: T0,
            name: "exception".into(),
            attributes: attrs,
        });
        let text = trace_text(&resp, false, BAR_WIDTH);
        assert!(text.contains("✗ timeout after 3s"), "{text}");
    }

    #[test]
    fn layout_copes_with_odd_parents() {
        // A child listed before its parent, a span whose parent is missing, and a cycle.
        let spans = vec![
            span("b", "a", "s", "child", 1, 1),
            span("a", "", "s", "root", 0, 5),
            span("x", "gone", "s", "orphan", 2, 1),
            span("p", "q", "s", "cyc1", 3, 1),
            span("q", "p", "s", "cyc2", 3, 1),
        ];
        let rows = layout(&spans);
        let order: Vec<(usize, usize)> = rows.iter().map(|r| (r.idx, r.depth)).collect();
        assert_eq!(order, [(1, 0), (0, 1), (2, 0), (3, 0), (4, 1)]);
        let text = trace_text(
            &TraceResponse {
                trace_id: "t".into(),
                spans,
                ..Default::default()
            },
            false,
            10,
        );
        assert_eq!(text.lines().count(), 6, "{text}");
    }

    #[test]
    fn trace_text_without_spans_lists_the_logs() {
        let resp = TraceResponse {
            trace_id: String::new(),
            logs: vec![log(3, "edge", "INFO", "only a request id", "")],
            ..Default::default()
        };
        let text = trace_text(&resp, false, BAR_WIDTH);
        assert!(text.contains("0 spans"), "{text}");
        assert!(text.contains("logs not tied to a span:"), "{text}");
        assert!(text.contains("+0s INFO  edge only a request id"), "{text}");
    }
}
