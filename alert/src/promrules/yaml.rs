//! A small YAML tree with a line on every node, built from `saphyr-parser`'s events.
//!
//! Prometheus rule files need only mappings, lists and text, but every error must name its
//! line, so the tree keeps the line each node starts on. Like Prometheus's YAML decoder it
//! reads the first document of a file only, refuses a mapping key given twice, and expands
//! anchors and aliases. Bounded: at most [`MAX_DEPTH`] levels and [`MAX_NODES`] nodes (alias
//! expansion included), so no file can exhaust the stack or memory.

use saphyr_parser::{Event, Parser, ScalarStyle};
use std::collections::HashMap;

/// Deepest nesting accepted (a rule file needs 6).
pub(super) const MAX_DEPTH: usize = 64;
/// Most nodes one file may make, aliases expanded.
pub(super) const MAX_NODES: usize = 500_000;

/// One node and the 1-based line it starts on.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) line: usize,
    pub(super) value: Value,
}

/// What a node holds.
#[derive(Debug, Clone)]
pub(super) enum Value {
    /// A scalar; `plain` when written without quotes or block marks.
    Scalar { text: String, plain: bool },
    /// A list.
    Seq(Vec<Node>),
    /// A mapping, keys in file order (each key a scalar, none twice).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// `null`, `~` or nothing, written plain.
    pub(super) fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The node's kind in words, for messages.
    pub(super) fn kind(&self) -> &'static str {
        match self.value {
            Value::Scalar { .. } => "text",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The scalar's text (a null is ""); None for a list or a mapping.
    pub(super) fn text(&self) -> Option<&str> {
        match &self.value {
            _ if self.is_null() => Some(""),
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Number of nodes and depth of the tree under this node (itself included).
    fn measure(&self) -> (usize, usize) {
        match &self.value {
            Value::Scalar { .. } => (1, 1),
            Value::Seq(items) => items.iter().fold((1, 1), |(n, d), i| {
                let (a, b) = i.measure();
                (n + a, d.max(b + 1))
            }),
            Value::Map(entries) => entries.iter().fold((1, 1), |(n, d), (k, v)| {
                let (a, b) = k.measure();
                let (c, e) = v.measure();
                (n + a + c, d.max(b.max(e) + 1))
            }),
        }
    }
}

/// A YAML syntax error, or a file over the bounds.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct YamlError {
    pub(super) line: usize,
    pub(super) message: String,
}

enum Frame {
    Seq {
        line: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        line: usize,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        seen: HashMap<String, usize>,
    },
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, usize, usize)>,
    nodes: usize,
    root: Option<Node>,
}

fn err(line: usize, message: impl Into<String>) -> YamlError {
    YamlError {
        line,
        message: message.into(),
    }
}

impl Builder {
    fn open(&mut self, line: usize) -> Result<(), YamlError> {
        self.count(line, 1)?;
        if self.stack.len() >= MAX_DEPTH {
            return Err(err(line, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn count(&mut self, line: usize, n: usize) -> Result<(), YamlError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(err(
                line,
                format!("more than {MAX_NODES} YAML nodes (aliases expanded)"),
            ));
        }
        Ok(())
    }

    /// Keeps an anchored node for its aliases.
    fn anchor(&mut self, id: usize, node: &Node) {
        if id > 0 {
            let (n, d) = node.measure();
            self.anchors.insert(id, (node.clone(), n, d));
        }
    }

    /// Adds a finished node to the collection being read, or makes it the root.
    fn push(&mut self, node: Node) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries, key, seen, ..
            }) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => {
                    let Value::Scalar { text, .. } = &node.value else {
                        let kind = node.kind();
                        return Err(err(
                            node.line,
                            format!("a mapping key must be text, not {kind}"),
                        ));
                    };
                    if let Some(first) = seen.get(text) {
                        return Err(err(
                            node.line,
                            format!("mapping key {text:?} already defined at line {first}"),
                        ));
                    }
                    seen.insert(text.clone(), node.line);
                    *key = Some(node);
                }
            },
        }
        Ok(())
    }

    fn event(&mut self, ev: Event<'_>, line: usize) -> Result<(), YamlError> {
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                self.count(line, 1)?;
                let node = Node {
                    line,
                    value: Value::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                };
                self.anchor(anchor, &node);
                self.push(node)?;
            }
            Event::Alias(id) => {
                let Some((node, n, d)) = self.anchors.get(&id) else {
                    return Err(err(line, "alias to an unknown anchor"));
                };
                let (node, n, d) = (node.clone(), *n, *d);
                if self.stack.len() + d > MAX_DEPTH {
                    return Err(err(line, format!("nested deeper than {MAX_DEPTH} levels")));
                }
                self.count(line, n)?;
                self.push(node)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.open(line)?;
                self.stack.push(Frame::Seq {
                    line,
                    anchor,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(anchor, _) => {
                self.open(line)?;
                self.stack.push(Frame::Map {
                    line,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                    seen: HashMap::new(),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq {
                        line,
                        anchor,
                        items,
                    }) => (
                        Node {
                            line,
                            value: Value::Seq(items),
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        line,
                        anchor,
                        entries,
                        ..
                    }) => (
                        Node {
                            line,
                            value: Value::Map(entries),
                        },
                        anchor,
                    ),
                    None => return Err(err(line, "a collection ends that never started")),
                };
                self.anchor(anchor, &node);
                self.push(node)?;
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => {}
        }
        Ok(())
    }
}

/// The first document of `text` as a tree; None when the file holds no document or only a
/// null.
pub(super) fn parse(text: &str) -> Result<Option<Node>, YamlError> {
    let mut b = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
    };
    for item in Parser::new_from_str(text) {
        let (ev, span) = match item {
            Ok(x) => x,
            Err(e) => {
                let line = e.marker().line().max(1);
                return Err(err(line, format!("YAML syntax: {}", e.info())));
            }
        };
        if matches!(ev, Event::DocumentEnd) {
            // Only the first document counts, as in Prometheus.
            break;
        }
        b.event(ev, span.start.line().max(1))?;
    }
    Ok(b.root.filter(|r| !r.is_null()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn map(n: &Node) -> &Vec<(Node, Node)> {
        match &n.value {
            Value::Map(m) => m,
            _ => panic!("not a map: {n:?}"),
        }
    }

    #[test]
    fn lines_of_nodes_and_text() {
        let t = "groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: 'up == 0'\n";
        let root = parse(t).unwrap().unwrap();
        let (k, groups) = &map(&root)[0];
        assert_eq!((k.text(), k.line), (Some("groups"), 1));
        let Value::Seq(gs) = &groups.value else {
            panic!()
        };
        assert_eq!(gs[0].line, 2);
        let rules = &map(&gs[0])[1].1;
        let Value::Seq(rs) = &rules.value else {
            panic!()
        };
        let expr = &map(&rs[0])[1].1;
        assert_eq!((expr.text(), expr.line), (Some("up == 0"), 5));
        assert!(matches!(expr.value, Value::Scalar { plain: false, .. }));
    }

    #[test]
    fn empty_null_and_first_document_only() {
        assert!(parse("").unwrap().is_none());
        assert!(parse("# only a comment\n").unwrap().is_none());
        assert!(parse("---\n~\n").unwrap().is_none());
        let two = "a: 1\n---\nb: [\n";
        let root = parse(two).unwrap().unwrap();
        assert_eq!(map(&root).len(), 1);
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_name_the_line() {
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.message.contains("\"a\" already defined at line 1"),
            "{e:?}"
        );
        let e = parse("a:\n  - x\n b: [\n").unwrap_err();
        assert!(e.line >= 2 && e.message.starts_with("YAML syntax"), "{e:?}");
        let e = parse("? [a]\n: 1\n").unwrap_err();
        assert!(e.message.contains("key must be text"), "{e:?}");
    }

    #[test]
    fn aliases_expand_within_bounds() {
        let root = parse("a: &x {k: v}\nb: *x\n").unwrap().unwrap();
        assert!(matches!(map(&root)[1].1.value, Value::Map(_)));
        // A billion laughs stops at the node bound.
        let mut t = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            t.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse(&t).unwrap_err().message.contains("YAML nodes"));
        // Nesting is bounded, through aliases too.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse(&deep).unwrap_err().message.contains("deeper"));
        let mut t =
            String::from("a0: &a0 [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n");
        for i in 1..5 {
            let p = i - 1;
            t.push_str(&format!(
                "a{i}: &a{i} [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*a{p}]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n"
            ));
        }
        assert!(parse(&t).unwrap_err().message.contains("deeper"));
    }
}
