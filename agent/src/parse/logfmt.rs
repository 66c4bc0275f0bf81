//! logfmt: `key=value key2="quoted \"value\"" flag`.
//!
//! Pairs are separated by spaces. A value is either bare (up to the next space) or quoted
//! with `"` (escapes `\"`, `\\`, `\n`, `\t`, `\r`; an unclosed quote runs to the end of the
//! line). A word without `=` is a flag, kept as `true`. Every value is a string. A line with
//! no `key=value` pair at all is not logfmt.

use super::lift::{key_value, string_value};
use skein_model::proto::common::v1::{AnyValue, KeyValue, any_value::Value};

/// True for a byte that may be part of a key: anything but space, `=` and `"`.
fn key_byte(c: u8) -> bool {
    !(c.is_ascii_whitespace() || c == b'=' || c == b'"')
}

/// True when the line's first word is a `key=value` pair, the test of the auto format.
pub fn starts_with_pair(text: &str) -> bool {
    let b = text.trim_start().as_bytes();
    let key = b.iter().take_while(|c| key_byte(**c)).count();
    key > 0 && b.get(key) == Some(&b'=')
}

/// The pairs of a logfmt line in order, or `None` when it has no `key=value` pair.
pub fn parse_pairs(text: &str) -> Option<Vec<KeyValue>> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(8);
    let mut pairs = 0usize;
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && key_byte(b[i]) {
            i += 1;
        }
        if i == start {
            // A stray `=` or `"` where a key should be: skip the word.
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            continue;
        }
        // Key bounds fall on ASCII bytes, so the slices are on char boundaries.
        let key = &text[start..i];
        if b.get(i) != Some(&b'=') {
            out.push(key_value(
                key.to_string(),
                AnyValue {
                    value: Some(Value::BoolValue(true)),
                },
            ));
            continue;
        }
        i += 1;
        let value = if b.get(i) == Some(&b'"') {
            let (v, end) = quoted(text, i + 1);
            i = end;
            v
        } else {
            let vstart = i;
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            text[vstart..i].to_string()
        };
        pairs += 1;
        out.push(key_value(key.to_string(), string_value(value)));
    }
    (pairs > 0).then_some(out)
}

/// A quoted value starting after its opening quote at `from`: the unescaped text and the index
/// after the closing quote.
fn quoted(text: &str, from: usize) -> (String, usize) {
    let b = text.as_bytes();
    let mut i = from;
    // Fast path: no escapes before the closing quote.
    while i < b.len() && b[i] != b'"' && b[i] != b'\\' {
        i += 1;
    }
    if i >= b.len() || b[i] == b'"' {
        return (text[from..i].to_string(), (i + 1).min(b.len()));
    }
    let mut out = String::with_capacity(i - from + 16);
    out.push_str(&text[from..i]);
    let mut run = i;
    while i < b.len() {
        match b[i] {
            b'"' => {
                out.push_str(&text[run..i]);
                return (out, i + 1);
            }
            b'\\' if i + 1 < b.len() => {
                out.push_str(&text[run..i]);
                match b[i + 1] {
                    b'n' => out.push('\n'),
                    b't' => out.push('\t'),
                    b'r' => out.push('\r'),
                    b'"' => out.push('"'),
                    b'\\' => out.push('\\'),
                    _ => {
                        // Unknown escape: keep it as written. The next byte may start a
                        // multi-byte character, so copy from the run instead of pushing it.
                        run = i;
                        i += 1;
                        continue;
                    }
                }
                i += 2;
                run = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[run..]);
    (out, b.len())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse_pairs(text)
            .unwrap()
            .into_iter()
            .map(|kv| {
                let v = match kv.value.and_then(|v| v.value) {
                    Some(Value::StringValue(s)) => s,
                    Some(Value::BoolValue(b)) => format!("<{b}>"),
                    other => format!("{other:?}"),
                };
                (kv.key, v)
            })
            .collect()
    }

    fn p(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn pairs_quotes_and_flags() {
        assert_eq!(
            pairs(r#"level=info msg="quoted \"value\" here" retry url=http://x/?a=b empty= "#),
            vec![
                p("level", "info"),
                p("msg", "quoted \"value\" here"),
                p("retry", "<true>"),
                p("url", "http://x/?a=b"),
                p("empty", ""),
            ]
        );
        assert_eq!(
            pairs(r#"a="x\\y\n\q" b="é\é""#),
            vec![p("a", "x\\y\n\\q"), p("b", "é\\é")]
        );
        assert_eq!(
            pairs(r#"a="unclosed value"#),
            vec![p("a", "unclosed value")]
        );
        assert_eq!(pairs(r#"a="ends in \"#), vec![p("a", "ends in \\")]);
        assert_eq!(pairs("=x \"junk a=1"), vec![p("a", "1")]);
    }

    #[test]
    fn no_pair_is_not_logfmt() {
        assert!(parse_pairs("just some words").is_none());
        assert!(parse_pairs("").is_none());
        assert!(parse_pairs("=").is_none());
        assert!(parse_pairs("\"a=b\"").is_none());
    }

    #[test]
    fn auto_detection() {
        assert!(starts_with_pair("level=info msg=x"));
        assert!(starts_with_pair("  a=1"));
        assert!(!starts_with_pair("hello a=1"));
        assert!(!starts_with_pair("=1"));
        assert!(!starts_with_pair(""));
    }
}
