//! JSON lines: one object a line.
//!
//! The object is read straight into OTLP attributes with a serde visitor, with no
//! `serde_json::Value` in between: strings are moved, not copied, nested objects become
//! key-value lists, arrays become array values, integers that fit `i64` become ints and other
//! numbers doubles. Objects and arrays nested deeper than [`MAX_DEPTH`] are kept as their
//! JSON text, so what the agent ships always decodes at the collector. serde_json's nesting
//! limit (128) turns absurdly deep input into an error, which the caller treats as a line
//! that did not parse.

use super::lift::{key_value, string_value};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use skein_model::proto::common::v1::{
    AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value,
};
use std::fmt;

/// Levels of objects and arrays kept as structure under a top-level field. A value nested
/// deeper is kept whole as its JSON text (a string attribute), so a record never nests deeper
/// than the collector's protobuf decoder takes: each object level costs three nested
/// messages (`KeyValueList`, `KeyValue`, `AnyValue`) against prost's limit of 100, and a
/// record's attributes already sit six messages deep in an export request.
pub const MAX_DEPTH: usize = 16;

/// The top-level object's fields in line order, or `None` when the text is not exactly one
/// JSON object (surrounding whitespace allowed).
pub fn parse_object(text: &str) -> Option<Vec<KeyValue>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let attrs = de.deserialize_map(ObjectVisitor { depth: 0 }).ok()?;
    de.end().ok()?;
    Some(attrs)
}

/// Reads a map into key-values; the map itself is at `depth` (0 for the line).
struct ObjectVisitor {
    depth: usize,
}

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Vec<KeyValue>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8).min(64));
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(AnySeed {
                depth: self.depth + 1,
            })?;
            out.push(key_value(key, value));
        }
        Ok(out)
    }
}

/// Any JSON value as an OTLP `AnyValue`; an object or array read here is at level `depth`.
struct AnySeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for AnySeed {
    type Value = AnyValue;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<AnyValue, D::Error> {
        d.deserialize_any(AnyVisitor { depth: self.depth })
    }
}

struct AnyVisitor {
    depth: usize,
}

fn any(v: Value) -> AnyValue {
    AnyValue { value: Some(v) }
}

/// A JSON value as compact text.
fn json_text<E: de::Error>(v: &serde_json::Value) -> Result<String, E> {
    serde_json::to_string(v).map_err(E::custom)
}

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = AnyValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<AnyValue, E> {
        Ok(any(Value::BoolValue(b)))
    }

    fn visit_i64<E>(self, i: i64) -> Result<AnyValue, E> {
        Ok(any(Value::IntValue(i)))
    }

    fn visit_u64<E>(self, u: u64) -> Result<AnyValue, E> {
        Ok(any(match i64::try_from(u) {
            Ok(i) => Value::IntValue(i),
            Err(_) => Value::DoubleValue(u as f64),
        }))
    }

    fn visit_f64<E>(self, d: f64) -> Result<AnyValue, E> {
        Ok(any(Value::DoubleValue(d)))
    }

    fn visit_str<E>(self, s: &str) -> Result<AnyValue, E> {
        Ok(string_value(s.to_string()))
    }

    fn visit_string<E>(self, s: String) -> Result<AnyValue, E> {
        Ok(string_value(s))
    }

    fn visit_unit<E>(self) -> Result<AnyValue, E> {
        Ok(AnyValue { value: None })
    }

    fn visit_none<E>(self) -> Result<AnyValue, E> {
        Ok(AnyValue { value: None })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AnyValue, A::Error> {
        let hint = seq.size_hint().unwrap_or(4).min(64);
        if self.depth > MAX_DEPTH {
            let mut items = Vec::with_capacity(hint);
            while let Some(v) = seq.next_element::<serde_json::Value>()? {
                items.push(v);
            }
            let text = json_text(&serde_json::Value::Array(items))?;
            return Ok(string_value(text));
        }
        let mut values = Vec::with_capacity(hint);
        while let Some(v) = seq.next_element_seed(AnySeed {
            depth: self.depth + 1,
        })? {
            values.push(v);
        }
        Ok(any(Value::ArrayValue(ArrayValue { values })))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyValue, A::Error> {
        if self.depth > MAX_DEPTH {
            // Written by hand at this level so the keys keep their line order.
            let mut text = String::from("{");
            while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                if text.len() > 1 {
                    text.push(',');
                }
                text.push_str(&json_text(&serde_json::Value::String(k))?);
                text.push(':');
                text.push_str(&json_text(&v)?);
            }
            text.push('}');
            return Ok(string_value(text));
        }
        let values = ObjectVisitor { depth: self.depth }.visit_map(map)?;
        Ok(any(Value::KvlistValue(KeyValueList { values })))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
        attrs
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    #[test]
    fn value_types() {
        let a = parse_object(
            r#" {"s":"x\"y","i":-3,"u":18446744073709551615,"d":1.5,"b":true,"n":null,
                "arr":[1,"two",[3]],"obj":{"k":{"deep":1}}} "#,
        )
        .unwrap();
        assert_eq!(get(&a, "s"), Some(&Value::StringValue("x\"y".into())));
        assert_eq!(get(&a, "i"), Some(&Value::IntValue(-3)));
        assert_eq!(get(&a, "u"), Some(&Value::DoubleValue(u64::MAX as f64)));
        assert_eq!(get(&a, "d"), Some(&Value::DoubleValue(1.5)));
        assert_eq!(get(&a, "b"), Some(&Value::BoolValue(true)));
        assert_eq!(get(&a, "n"), None);
        let Some(Value::ArrayValue(arr)) = get(&a, "arr") else {
            panic!("array")
        };
        assert_eq!(arr.values.len(), 3);
        let Some(Value::KvlistValue(obj)) = get(&a, "obj") else {
            panic!("object")
        };
        assert_eq!(obj.values[0].key, "k");
        let keys: Vec<_> = a.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["s", "i", "u", "d", "b", "n", "arr", "obj"]);
    }

    #[test]
    fn not_one_object() {
        for s in [
            "",
            " ",
            "{",
            r#"{"a":"#,
            "[1]",
            "3",
            r#""x""#,
            "{} {}",
            r#"{"a":1}x"#,
            "{,}",
        ] {
            assert!(parse_object(s).is_none(), "{s}");
        }
        assert_eq!(parse_object("{}\r\n").unwrap().len(), 0);
    }

    /// Levels of key-value lists and arrays under a value.
    fn depth(v: &AnyValue) -> usize {
        match &v.value {
            Some(Value::KvlistValue(l)) => {
                1 + l
                    .values
                    .iter()
                    .filter_map(|kv| kv.value.as_ref())
                    .map(depth)
                    .max()
                    .unwrap_or(0)
            }
            Some(Value::ArrayValue(a)) => 1 + a.values.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    #[test]
    fn values_nested_past_the_limit_are_kept_as_json_text() {
        let deep = format!(
            r#"{{"top":{}1{},"flat":2}}"#,
            r#"{"k":"#.repeat(40),
            "}".repeat(40)
        );
        let a = parse_object(&deep).unwrap();
        assert_eq!(a.len(), 2);
        let top = a[0].value.as_ref().unwrap();
        assert_eq!(depth(top), 16, "sixteen levels are kept as structure");
        let mut v = top;
        for _ in 0..16 {
            let Some(Value::KvlistValue(l)) = &v.value else {
                panic!("a list at this level: {v:?}")
            };
            v = l.values[0].value.as_ref().unwrap();
        }
        assert_eq!(
            v.value,
            Some(Value::StringValue(format!(
                r#"{}1{}"#,
                r#"{"k":"#.repeat(24),
                "}".repeat(24)
            ))),
            "the rest is kept whole, as JSON text"
        );
        assert_eq!(get(&a, "flat"), Some(&Value::IntValue(2)));

        let arrays = format!(r#"{{"a":{}"x"{}}}"#, "[".repeat(100), "]".repeat(100));
        let a = parse_object(&arrays).unwrap();
        assert_eq!(depth(a[0].value.as_ref().unwrap()), 16);

        // Scalars and shallow values at the limit stay as they are.
        let at_limit = format!(r#"{{"a":{}5{}}}"#, "[".repeat(16), "]".repeat(16));
        let a = parse_object(&at_limit).unwrap();
        assert_eq!(depth(a[0].value.as_ref().unwrap()), 16);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_object(&deep).is_none());
        let deep = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
        assert!(parse_object(&deep).is_none());
    }
}
