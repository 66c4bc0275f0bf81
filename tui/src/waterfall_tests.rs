#![allow(clippy::unwrap_used)]

use super::*;

fn span(id: &str, parent: &str, service: &str, start: u64, end: u64) -> Span {
    Span {
        trace_id: "t".into(),
        span_id: id.into(),
        parent_span_id: parent.into(),
        service: service.into(),
        name: format!("op-{id}"),
        start_unix_nano: start,
        end_unix_nano: end,
        duration_ns: end - start,
        ..Default::default()
    }
}

fn log(span: &str, body: &str) -> LogRecord {
    LogRecord {
        span_id: span.into(),
        body: body.into(),
        ..Default::default()
    }
}

fn trace() -> TraceResponse {
    TraceResponse {
        trace_id: "t".into(),
        trace_ids: vec![],
        services: vec![],
        // Out of order on purpose: the layout builds the tree itself.
        spans: vec![
            span("c", "a", "payment", 150, 400),
            span("a", "", "gateway", 100, 1_000),
            span("b", "a", "order", 120, 300),
            // Its host clock is 1,000 ns behind: it starts before its parent.
            span("d", "c", "bank", 100, 200),
        ],
        logs: vec![log("c", "charging"), log("", "loose")],
        truncated: false,
    }
}

fn ids(w: &Waterfall) -> Vec<String> {
    w.rows
        .iter()
        .map(|r| match r {
            Row::Span(i) => w.spans[*i].span_id.clone(),
            Row::Log(l, d) => format!("log:{}@{d}", w.logs[*l].body),
        })
        .collect()
}

#[test]
fn tree_order_depth_logs_under_their_span() {
    let w = Waterfall::new(trace());
    assert_eq!(
        ids(&w),
        ["a", "b", "c", "log:charging@2", "d", "log:loose@0"]
    );
    let depth = |id: &str| w.depth[w.spans.iter().position(|s| s.span_id == id).unwrap()];
    assert_eq!(
        (depth("a"), depth("b"), depth("c"), depth("d")),
        (0, 1, 1, 2)
    );
    assert_eq!((w.t0, w.t1), (100, 1_000));
    assert_eq!(w.services, ["gateway", "order", "payment", "bank"]);
}

#[test]
fn skewed_children_are_shifted_inside_their_parent_and_marked() {
    let w = Waterfall::new(trace());
    let d = w.spans.iter().position(|s| s.span_id == "d").unwrap();
    assert!(w.adjusted[d]);
    assert_eq!(
        (w.start[d], w.end[d]),
        (150, 250),
        "moved to its parent's start"
    );
    assert_eq!(w.spans[d].start_unix_nano, 100, "the raw time is kept");
    let b = w.spans.iter().position(|s| s.span_id == "b").unwrap();
    assert!(!w.adjusted[b]);
}

#[test]
fn critical_path_follows_the_last_ending_child() {
    let w = Waterfall::new(trace());
    let crit: Vec<&str> = w
        .order
        .iter()
        .filter(|&&i| w.critical[i])
        .map(|&i| w.spans[i].span_id.as_str())
        .collect();
    assert_eq!(crit, ["a", "c", "d"]);
}

#[test]
fn collapsing_hides_a_subtree_and_its_logs() {
    let mut w = Waterfall::new(trace());
    w.selected = 2; // c
    w.toggle();
    assert_eq!(ids(&w), ["a", "b", "c", "log:loose@0"]);
    w.toggle();
    assert_eq!(ids(&w).len(), 6);
    w.selected = 0;
    w.toggle();
    assert_eq!(ids(&w), ["a", "log:loose@0"]);
}

#[test]
fn ten_thousand_spans_lay_out_and_the_window_follows_the_selection() {
    let mut spans = vec![span("root", "", "gateway", 0, 1_000_000)];
    for i in 0..10_000u64 {
        spans.push(span(&format!("s{i}"), "root", "svc", i * 10, i * 10 + 5));
    }
    let mut w = Waterfall::new(TraceResponse {
        trace_id: "t".into(),
        trace_ids: vec![],
        services: vec![],
        spans,
        logs: vec![],
        truncated: false,
    });
    assert_eq!(w.rows.len(), 10_001);
    w.selected = 9_000;
    let s = w.window_start(40);
    assert!(s <= 9_000 && 9_000 < s + 40);
    assert_eq!(w.window_start(40).min(w.rows.len()), s);
}

#[test]
fn fold_and_unfold_are_idempotent() {
    let mut w = Waterfall::new(trace());
    w.selected = 2; // c
    w.fold(true);
    w.fold(true);
    assert_eq!(ids(&w), ["a", "b", "c", "log:loose@0"]);
    w.fold(false);
    w.fold(false);
    assert_eq!(ids(&w).len(), 6);
}

#[test]
fn a_parent_cycle_is_shown_from_its_earliest_span_and_skew_correction_ends() {
    // x and y name each other; y's clock puts it after its parent ends.
    let w = Waterfall::new(TraceResponse {
        trace_id: "t".into(),
        spans: vec![span("y", "x", "b", 100, 200), span("x", "y", "a", 0, 10)],
        ..Default::default()
    });
    assert_eq!(ids(&w), ["x", "y"]);
    assert_eq!(w.depth, [1, 0]);
    assert!(w.adjusted[0]);
    assert_eq!((w.start[0], w.end[0]), (0, 100));
}

/// A span as a lying clock sends it: any start and end, the end possibly before the start.
fn raw(id: &str, parent: &str, start: u64, end: u64) -> Span {
    Span {
        trace_id: "t".into(),
        span_id: id.into(),
        parent_span_id: parent.into(),
        service: "s".into(),
        start_unix_nano: start,
        end_unix_nano: end,
        ..Default::default()
    }
}

#[test]
fn lying_clocks_lay_out_without_overflow() {
    let max = u64::MAX;
    let cases = vec![
        vec![raw("a", "", max, max)],
        vec![raw("a", "", max, 0)],
        vec![raw("a", "", 5, 1), raw("b", "a", max - 1, max)],
        // c starts before its parent and is moved right; its child ends near the top.
        vec![
            raw("a", "", 100, max),
            raw("c", "a", 50, max - 10),
            raw("d", "c", 60, max - 5),
        ],
        // c ends after its parent and is moved left, below zero for its child.
        vec![
            raw("a", "", 0, 10),
            raw("c", "a", 5, 30),
            raw("d", "c", 0, 1),
        ],
    ];
    for spans in cases {
        let what = format!("{spans:?}");
        let w = Waterfall::new(TraceResponse {
            trace_id: "t".into(),
            spans,
            ..Default::default()
        });
        assert!(w.t0 <= w.t1, "{what}");
        for i in 0..w.spans.len() {
            assert!(
                w.t0 <= w.start[i] && w.start[i] <= w.end[i] && w.end[i] <= w.t1,
                "span {i}: {} {} in {} {} of {what}",
                w.start[i],
                w.end[i],
                w.t0,
                w.t1
            );
        }
    }
}
