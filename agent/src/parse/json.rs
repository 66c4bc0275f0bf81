//! JSON lines: one object a line.
//!
//! The object is read straight into OTLP attributes with a serde visitor, with no
//! `serde_json::Value` in between: strings are moved, not copied, nested objects become
//! key-value lists, arrays become array values, integers that fit `i64` become ints and other
//! numbers doubles. serde_json's nesting limit (128) turns absurdly deep input into an error,
//! which the caller treats as a line that did not parse.

use super::lift::{key_value, string_value};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use skein_model::proto::common::v1::{
    AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value,
};
use std::fmt;

/// The top-level object's fields in line order, or `None` when the text is not exactly one
/// JSON object (surrounding whitespace allowed).
pub fn parse_object(text: &str) -> Option<Vec<KeyValue>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let attrs = de.deserialize_map(ObjectVisitor).ok()?;
    de.end().ok()?;
    Some(attrs)
}

/// Reads a map into key-values.
struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Vec<KeyValue>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key::<String>()? {
            let Any(value) = map.next_value::<Any>()?;
            out.push(key_value(key, value));
        }
        Ok(out)
    }
}

/// Any JSON value as an OTLP `AnyValue`.
struct Any(AnyValue);

impl<'de> de::Deserialize<'de> for Any {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyVisitor).map(Any)
    }
}

struct AnyVisitor;

fn any(v: Value) -> AnyValue {
    AnyValue { value: Some(v) }
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
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(Any(v)) = seq.next_element::<Any>()? {
            values.push(v);
        }
        Ok(any(Value::ArrayValue(ArrayValue { values })))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<AnyValue, A::Error> {
        let values = ObjectVisitor.visit_map(map)?;
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

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_object(&deep).is_none());
        let deep = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
        assert!(parse_object(&deep).is_none());
    }
}
