//! The span tree of a trace: each span's parent and children, the order to show them in, and
//! their depth. Pure, no I/O. One builder for the query engine (its answers list spans in tree
//! order), the CLI waterfall and the TUI waterfall, so all three show the same tree.
//!
//! Spans come from many services and pass through networks and buffers, so the tree copes with
//! what a broken or hostile sender can produce:
//!
//! - A span whose parent is absent (not sent, lost, cut by a bound) or names itself is a root.
//! - A parent is looked up by trace ID and span ID together: a joined answer can hold several
//!   traces, and a span ID is only unique within its trace.
//! - When several spans share a trace ID and span ID, the first listed is the parent of the
//!   spans that name that ID; the others stay leaves. Every span is still placed, once.
//! - Roots, and the children of each span, are ordered by start time; equal starts keep the
//!   order the spans were given in.
//! - A cycle of parents reaches no root. After the real roots, the earliest span not yet placed
//!   is taken as a root and its subtree follows, until every span is placed.
//! - The walk uses its own stack, not recursion: a broken trace may nest thousands deep.

use crate::Span;
use std::collections::HashMap;

/// Spans laid out as a tree. Every index refers to the slice the tree was built from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpanTree {
    /// Every span once, in tree order: each root followed by its subtree, depth first.
    pub order: Vec<usize>,
    /// Each span's parent in the tree; None for a root (cycles broken, see the module doc).
    pub parent: Vec<Option<usize>>,
    /// Each span's children in the tree, by start time.
    pub children: Vec<Vec<usize>>,
    /// Each span's depth (roots 0).
    pub depth: Vec<usize>,
}

impl SpanTree {
    /// Lays out `spans` as a tree.
    pub fn build(spans: &[Span]) -> SpanTree {
        let n = spans.len();
        let mut by_key: HashMap<(&str, &str), usize> = HashMap::with_capacity(n);
        for (i, s) in spans.iter().enumerate() {
            by_key
                .entry((s.trace_id.as_str(), s.span_id.as_str()))
                .or_insert(i);
        }
        // The parent each span names, when it is among the spans.
        let named: Vec<Option<usize>> = spans
            .iter()
            .map(|s| {
                if s.parent_span_id.is_empty() || s.parent_span_id == s.span_id {
                    return None;
                }
                by_key
                    .get(&(s.trace_id.as_str(), s.parent_span_id.as_str()))
                    .copied()
            })
            .collect();
        let mut named_children: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, p) in named.iter().enumerate() {
            if let Some(p) = p {
                named_children[*p].push(i);
            }
        }
        // Stable sorts: equal starts keep the given order.
        let start = |i: &usize| spans[*i].start_unix_nano;
        for c in named_children.iter_mut() {
            c.sort_by_key(start);
        }
        let mut by_start: Vec<usize> = (0..n).collect();
        by_start.sort_by_key(start);

        let mut tree = SpanTree {
            order: Vec::with_capacity(n),
            parent: vec![None; n],
            children: vec![Vec::new(); n],
            depth: vec![0; n],
        };
        let mut placed = vec![false; n];
        // Real roots first, then whatever a cycle kept out of reach.
        let roots = by_start.iter().filter(|&&i| named[i].is_none());
        for &root in roots.chain(by_start.iter()) {
            if placed[root] {
                continue;
            }
            placed[root] = true;
            let mut stack = vec![root];
            while let Some(i) = stack.pop() {
                tree.order.push(i);
                // A child already placed is the entry of a cycle: that edge is dropped.
                let kids: Vec<usize> = named_children[i]
                    .iter()
                    .copied()
                    .filter(|&c| !placed[c])
                    .collect();
                for &c in &kids {
                    placed[c] = true;
                    tree.parent[c] = Some(i);
                    tree.depth[c] = tree.depth[i] + 1;
                }
                stack.extend(kids.iter().rev());
                tree.children[i] = kids;
            }
        }
        tree
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: &str, start: u64) -> Span {
        Span {
            trace_id: "t".into(),
            span_id: id.into(),
            parent_span_id: parent.into(),
            start_unix_nano: start,
            end_unix_nano: start + 10,
            ..Default::default()
        }
    }

    /// The order as (span ID, depth) pairs.
    fn layout(spans: &[Span]) -> Vec<(String, usize)> {
        let t = SpanTree::build(spans);
        t.order
            .iter()
            .map(|&i| (spans[i].span_id.clone(), t.depth[i]))
            .collect()
    }

    fn pairs(v: &[(&str, usize)]) -> Vec<(String, usize)> {
        v.iter().map(|(s, d)| (s.to_string(), *d)).collect()
    }

    #[test]
    fn parents_come_first_and_children_by_start() {
        let spans = vec![
            span("c2", "a", 30),
            span("a", "", 10),
            span("gc", "c1", 25),
            span("c1", "a", 20),
        ];
        assert_eq!(
            layout(&spans),
            pairs(&[("a", 0), ("c1", 1), ("gc", 2), ("c2", 1)])
        );
        let t = SpanTree::build(&spans);
        assert_eq!(t.children[1], [3, 0]);
        assert_eq!(t.parent[2], Some(3));
        assert_eq!(t.parent[1], None);
    }

    #[test]
    fn a_missing_or_own_parent_makes_a_root_and_roots_go_by_start() {
        let spans = vec![
            span("a", "", 10),
            span("orphan", "missing", 5),
            span("self", "self", 7),
            span("b", "a", 12),
        ];
        assert_eq!(
            layout(&spans),
            pairs(&[("orphan", 0), ("self", 0), ("a", 0), ("b", 1)])
        );
    }

    #[test]
    fn equal_starts_keep_the_given_order() {
        let spans = vec![
            span("r", "", 0),
            span("y", "r", 5),
            span("x", "r", 5),
            span("r2", "", 0),
        ];
        assert_eq!(
            layout(&spans),
            pairs(&[("r", 0), ("y", 1), ("x", 1), ("r2", 0)])
        );
    }

    #[test]
    fn the_parent_is_looked_up_within_the_same_trace() {
        let mut other = span("child", "a", 5);
        other.trace_id = "u".into();
        let spans = vec![span("a", "", 0), other];
        assert_eq!(layout(&spans), pairs(&[("a", 0), ("child", 0)]));
    }

    #[test]
    fn an_empty_parent_never_matches_a_span_without_an_id() {
        let spans = vec![span("", "", 0), span("b", "", 1)];
        assert_eq!(layout(&spans), pairs(&[("", 0), ("b", 0)]));
    }

    #[test]
    fn duplicate_ids_are_each_placed_once_and_the_first_takes_the_children() {
        let spans = vec![
            span("a", "", 0),
            span("d", "a", 10),
            span("d", "a", 20),
            span("k", "d", 30),
        ];
        let t = SpanTree::build(&spans);
        assert_eq!(t.order, [0, 1, 3, 2]);
        assert_eq!(t.children[1], [3]);
        assert!(t.children[2].is_empty());
        assert_eq!(t.depth, [0, 1, 1, 2]);
    }

    #[test]
    fn cycles_are_entered_once_at_their_earliest_span() {
        // x and y name each other, z hangs under y; p, q and r form a longer loop.
        let spans = vec![
            span("root", "", 0),
            span("y", "x", 4),
            span("x", "y", 3),
            span("z", "y", 6),
            span("p", "q", 8),
            span("q", "r", 9),
            span("r", "p", 10),
        ];
        assert_eq!(
            layout(&spans),
            pairs(&[
                ("root", 0),
                ("x", 0),
                ("y", 1),
                ("z", 2),
                ("p", 0),
                ("r", 1),
                ("q", 2),
            ])
        );
        let t = SpanTree::build(&spans);
        assert_eq!(t.parent[2], None, "the cycle's entry is a root");
        assert_eq!(t.children[1], [3], "the edge back to the entry is dropped");
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let mut spans = vec![span("s0", "", 0)];
        for i in 1..100_000u64 {
            spans.push(span(&format!("s{i}"), &format!("s{}", i - 1), i));
        }
        let t = SpanTree::build(&spans);
        assert_eq!(t.order.len(), 100_000);
        assert_eq!(t.depth[99_999], 99_999);
    }

    #[test]
    fn no_spans_no_tree() {
        assert_eq!(SpanTree::build(&[]), SpanTree::default());
    }
}
