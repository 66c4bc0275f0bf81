//! Correlation keys: the values that tie one request's records together.
//!
//! A record's keys are its trace ID (kept in the record's `trace_id`, not repeated in its
//! `keys`) plus the values of configured attribute names (matched
//! without regard to case, `-` and `_` treated alike) and of the same names as top-level fields
//! of a JSON log body, plus the trace ID inside any W3C `traceparent` value. A log line that
//! carries only `x-request-id: r-42` gets the key `r-42`; a span whose attributes carry
//! `request_id: r-42` gets both its trace ID and `r-42`; a lookup of either finds both.

use serde::{Deserialize, Serialize};

/// Longest value kept as a key, in bytes. Longer values are not IDs; skipping them keeps the
/// key field small.
pub const MAX_KEY_LEN: usize = 256;
/// Most keys kept per record. Bounds the index cost of one record.
pub const MAX_KEYS_PER_RECORD: usize = 16;

/// Which attribute names and JSON body fields carry correlation keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Attribute names (and JSON body field names) whose values are correlation keys.
    /// `traceparent` is always understood as a W3C trace context.
    #[serde(default = "default_attribute_names")]
    pub attributes: Vec<String>,
}

impl Default for KeyConfig {
    fn default() -> Self {
        KeyConfig {
            attributes: default_attribute_names(),
        }
    }
}

fn default_attribute_names() -> Vec<String> {
    [
        "trace_id",
        "traceId",
        "correlation_id",
        "request_id",
        "x-request-id",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Normalizes an attribute name for matching: lowercase, `-` and `.` read as `_`.
fn norm(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// A [`KeyConfig`] made ready for fast matching.
#[derive(Debug, Clone)]
pub struct KeyExtractor {
    names: Vec<String>,
}

impl KeyExtractor {
    /// Prepares the configured names. Non-ASCII names never match (attribute names of IDs are
    /// ASCII in practice).
    pub fn new(cfg: &KeyConfig) -> Self {
        let mut names: Vec<String> = cfg.attributes.iter().map(|n| norm(n)).collect();
        // Many HTTP libraries write the header with its prefix; accept both forms.
        let extra: Vec<String> = names
            .iter()
            .filter_map(|n| n.strip_prefix("x_").map(str::to_string))
            .collect();
        names.extend(extra);
        names.sort();
        names.dedup();
        KeyExtractor { names }
    }

    /// True when `name` is a configured key attribute. Called for every attribute of every
    /// record, so it compares in place instead of allocating a normalized copy.
    pub fn is_key_name(&self, name: &str) -> bool {
        let fold = |c: u8| match c {
            b'-' | b'.' => b'_',
            c => c.to_ascii_lowercase(),
        };
        self.names.iter().any(|n| {
            n.len() == name.len() && n.bytes().zip(name.bytes()).all(|(a, b)| a == fold(b))
        })
    }

    /// Adds the key carried by attribute `name` with value `value`, if it is one.
    pub fn add_from_attribute(&self, name: &str, value: &serde_json::Value, out: &mut Vec<String>) {
        let is_traceparent = name.eq_ignore_ascii_case("traceparent");
        if !is_traceparent && !self.is_key_name(name) {
            return;
        }
        let Some(text) = value_text(value) else {
            return;
        };
        if is_traceparent {
            if let Some(t) = traceparent_trace_id(&text) {
                push_key(out, t);
            }
            return;
        }
        let t = text.trim();
        // Trace IDs compare in lowercase hex everywhere in Skein.
        if is_hex_trace_id(t) {
            push_key(out, t.to_ascii_lowercase());
        } else {
            push_key(out, t.to_string());
        }
    }

    /// Adds keys from every attribute of a map.
    pub fn add_from_attributes(&self, attrs: &crate::Attributes, out: &mut Vec<String>) {
        for (k, v) in attrs {
            self.add_from_attribute(k, v, out);
        }
    }

    /// Adds keys from the top-level fields of a JSON object body. Bodies that are not JSON
    /// objects are left alone; parsing stops at 64 KiB to bound the cost.
    pub fn add_from_body(&self, body: &str, out: &mut Vec<String>) {
        let b = body.trim_start();
        if !b.starts_with('{') || b.len() > 64 * 1024 {
            return;
        }
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(b) {
            self.add_from_attributes(&map, out);
        }
    }
}

/// Adds a key unless it is empty, too long, already there, or the record has too many.
pub fn push_key(out: &mut Vec<String>, key: String) {
    if key.is_empty() || key.len() > MAX_KEY_LEN || out.len() >= MAX_KEYS_PER_RECORD {
        return;
    }
    if !out.contains(&key) {
        out.push(key);
    }
}

fn value_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// True for 32 hex digits, not all zero.
pub fn is_hex_trace_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.bytes().any(|b| b != b'0')
}

/// The trace ID of a W3C `traceparent` value (`00-<32 hex>-<16 hex>-<2 hex>`), lowercased.
pub fn traceparent_trace_id(value: &str) -> Option<String> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let _flags = parts.next()?;
    if version.len() != 2 || span.len() != 16 || !is_hex_trace_id(trace) {
        return None;
    }
    Some(trace.to_ascii_lowercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_names_match_common_spellings() {
        let x = KeyExtractor::new(&KeyConfig::default());
        for name in [
            "request_id",
            "X-Request-ID",
            "x_request_id",
            "Request-Id",
            "traceId",
            "correlation.id",
        ] {
            assert!(x.is_key_name(name), "{name}");
        }
        assert!(!x.is_key_name("user_id"));
    }

    #[test]
    fn traceparent_gives_its_trace_id() {
        let x = KeyExtractor::new(&KeyConfig::default());
        let mut out = vec![];
        x.add_from_attribute(
            "traceparent",
            &json!("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            &mut out,
        );
        assert_eq!(out, vec!["4bf92f3577b34da6a3ce929d0e0e4736"]);
        assert_eq!(
            traceparent_trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(traceparent_trace_id("garbage"), None);
    }

    #[test]
    fn json_body_fields_are_keys() {
        let x = KeyExtractor::new(&KeyConfig::default());
        let mut out = vec![];
        x.add_from_body(r#"{"msg":"paid","request_id":"r-42","amount":3}"#, &mut out);
        assert_eq!(out, vec!["r-42"]);
        x.add_from_body("not json {", &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn keys_are_bounded_and_unique() {
        let mut out = vec![];
        push_key(&mut out, "a".into());
        push_key(&mut out, "a".into());
        push_key(&mut out, "x".repeat(MAX_KEY_LEN + 1));
        push_key(&mut out, String::new());
        assert_eq!(out, vec!["a"]);
        for i in 0..100 {
            push_key(&mut out, format!("k{i}"));
        }
        assert_eq!(out.len(), MAX_KEYS_PER_RECORD);
    }
}
