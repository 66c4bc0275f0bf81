//! Lifting known fields out of a record's attributes, the same for every format.
//!
//! A format parser turns a line into attributes in line order; [`finish`] then finds the
//! message, timestamp, level and trace context among them by name (any case), moves them into
//! the OTLP record's own fields and leaves the rest as attributes. Among several fields of one
//! kind the one listed first below wins (`message` before `msg`); the others stay attributes.
//! A field whose value does not fit (a timestamp that does not parse, a trace ID that is not
//! 32 hex digits) is left where it is, so it can still be searched.

use super::{level, time};
use skein_model::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use skein_model::proto::logs::v1::LogRecord;

/// What a known field name holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Message,
    Time,
    Level,
    TraceId,
    SpanId,
    TraceParent,
}

/// Most known fields looked at per record; a record with more keeps the rest as attributes.
const MAX_CANDIDATES: usize = 16;

/// The role of a field name and its rank among names of that role (lower wins).
fn role_of(key: &str) -> Option<(Role, u8)> {
    let b = key.as_bytes();
    if b.is_empty() || b.len() > 13 {
        return None;
    }
    let mut buf = [0u8; 13];
    for (d, s) in buf.iter_mut().zip(b) {
        *d = s.to_ascii_lowercase();
    }
    Some(match &buf[..b.len()] {
        b"message" => (Role::Message, 0),
        b"msg" => (Role::Message, 1),
        b"log" => (Role::Message, 2),
        b"body" => (Role::Message, 3),
        b"text" => (Role::Message, 4),
        b"@m" => (Role::Message, 5),
        b"timestamp" => (Role::Time, 0),
        b"time" => (Role::Time, 1),
        b"ts" => (Role::Time, 2),
        b"@timestamp" => (Role::Time, 3),
        b"t" => (Role::Time, 4),
        b"datetime" => (Role::Time, 5),
        b"date" => (Role::Time, 6),
        b"@t" => (Role::Time, 7),
        b"level" => (Role::Level, 0),
        b"severity" => (Role::Level, 1),
        b"lvl" => (Role::Level, 2),
        b"loglevel" => (Role::Level, 3),
        b"log.level" => (Role::Level, 4),
        b"severity_text" => (Role::Level, 5),
        b"levelname" => (Role::Level, 6),
        b"log_level" => (Role::Level, 7),
        b"@l" => (Role::Level, 8),
        b"trace_id" => (Role::TraceId, 0),
        b"traceid" => (Role::TraceId, 1),
        b"trace.id" => (Role::TraceId, 2),
        b"trace-id" => (Role::TraceId, 3),
        b"span_id" => (Role::SpanId, 0),
        b"spanid" => (Role::SpanId, 1),
        b"span.id" => (Role::SpanId, 2),
        b"span-id" => (Role::SpanId, 3),
        b"traceparent" => (Role::TraceParent, 0),
        _ => return None,
    })
}

/// A string attribute value.
pub fn string_value(s: String) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(s)),
    }
}

/// An attribute.
pub fn key_value(key: String, value: AnyValue) -> KeyValue {
    KeyValue {
        key,
        value: Some(value),
        ..Default::default()
    }
}

/// The value of an attribute, if it has one.
fn value_of(kv: &KeyValue) -> Option<&Value> {
    kv.value.as_ref().and_then(|v| v.value.as_ref())
}

/// A scalar value as text, taking a string out of the attribute instead of copying it.
fn take_text(kv: &mut KeyValue) -> Option<String> {
    let v = kv.value.as_mut()?.value.as_mut()?;
    Some(match v {
        Value::StringValue(s) => std::mem::take(s),
        Value::IntValue(i) => i.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        Value::BoolValue(b) => b.to_string(),
        _ => return None,
    })
}

/// `len` bytes from `2 * len` hex digits, not all zero.
fn decode_hex(s: &str, len: usize) -> Option<Vec<u8>> {
    let b = s.trim().as_bytes();
    if b.len() != 2 * len {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::with_capacity(len);
    for pair in b.chunks_exact(2) {
        out.push(nibble(pair[0])? << 4 | nibble(pair[1])?);
    }
    out.iter().any(|x| *x != 0).then_some(out)
}

/// Trace ID, span ID and flags of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`).
fn traceparent(s: &str) -> Option<(Vec<u8>, Vec<u8>, u32)> {
    let mut parts = s.trim().split('-');
    let version = parts.next()?;
    let trace = decode_hex(parts.next()?, 16)?;
    let span = decode_hex(parts.next()?, 8)?;
    let flags = parts.next()?;
    if version.len() != 2 || flags.len() != 2 {
        return None;
    }
    let flags = u32::from_str_radix(flags, 16).ok()?;
    Some((trace, span, flags))
}

/// The Unix nanoseconds of a timestamp value.
fn time_of(v: &Value) -> Option<u64> {
    match v {
        Value::StringValue(s) => time::parse_timestamp(s),
        Value::IntValue(i) => time::from_unix_int(*i),
        Value::DoubleValue(d) => time::from_unix_float(*d),
        _ => None,
    }
}

/// Severity number and text of a level value; `None` leaves the field an attribute.
fn level_of(v: &Value) -> Option<(i32, String)> {
    let number =
        |n: i64| level::severity_of_number(n).map(|s| (s, level::canonical_name(s).into()));
    match v {
        Value::StringValue(s) if !s.trim().is_empty() => {
            if let Some(n) = level::severity_of_name(s, true) {
                Some((n, s.clone()))
            } else if let Ok(i) = s.trim().parse::<i64>() {
                number(i)
            } else {
                Some((0, s.clone()))
            }
        }
        Value::IntValue(i) => number(*i),
        Value::DoubleValue(d) if d.fract() == 0.0 && d.abs() < 1e15 => number(*d as i64),
        _ => None,
    }
}

/// Builds the OTLP record: lifts known fields out of `attrs` (in line order) and uses `line`
/// as the body when no message field was found.
pub fn finish(mut attrs: Vec<KeyValue>, line: &str, observed_unix_nano: u64) -> LogRecord {
    let mut cands = [(Role::Message, 0u8, 0usize); MAX_CANDIDATES];
    let mut n = 0;
    for (i, kv) in attrs.iter().enumerate() {
        if n == MAX_CANDIDATES {
            break;
        }
        if let Some((role, rank)) = role_of(&kv.key) {
            cands[n] = (role, rank, i);
            n += 1;
        }
    }
    let cands = &mut cands[..n];
    cands.sort_unstable();

    let mut rec = LogRecord {
        observed_time_unix_nano: observed_unix_nano,
        ..Default::default()
    };
    let mut body = None;
    let mut removed = [usize::MAX; MAX_CANDIDATES];
    let mut done = [false; 6];
    for (k, &(role, _, i)) in cands.iter().enumerate() {
        if done[role as usize] {
            continue;
        }
        let lifted = match role {
            Role::Message => take_text(&mut attrs[i]).map(|t| body = Some(t)).is_some(),
            Role::Time => value_of(&attrs[i])
                .and_then(time_of)
                .map(|t| rec.time_unix_nano = t)
                .is_some(),
            Role::Level => value_of(&attrs[i])
                .and_then(level_of)
                .map(|(num, text)| {
                    rec.severity_number = num;
                    rec.severity_text = text;
                })
                .is_some(),
            Role::TraceId => match value_of(&attrs[i]) {
                Some(Value::StringValue(s)) => {
                    decode_hex(s, 16).map(|t| rec.trace_id = t).is_some()
                }
                _ => false,
            },
            Role::SpanId => match value_of(&attrs[i]) {
                Some(Value::StringValue(s)) => decode_hex(s, 8).map(|t| rec.span_id = t).is_some(),
                _ => false,
            },
            // Sorted last: fills only what explicit ID fields left empty, else stays.
            Role::TraceParent => match value_of(&attrs[i]) {
                Some(Value::StringValue(s)) if rec.trace_id.is_empty() => traceparent(s)
                    .map(|(trace, span, flags)| {
                        rec.trace_id = trace;
                        if rec.span_id.is_empty() {
                            rec.span_id = span;
                        }
                        rec.flags = flags & 0xff;
                    })
                    .is_some(),
                _ => false,
            },
        };
        if lifted {
            done[role as usize] = true;
            removed[k] = i;
        }
    }
    if removed.iter().any(|r| *r != usize::MAX) {
        let mut i = 0;
        attrs.retain(|_| {
            let keep = !removed.contains(&i);
            i += 1;
            keep
        });
    }
    rec.attributes = attrs;
    rec.body = Some(string_value(body.unwrap_or_else(|| line.to_string())));
    rec
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn s(k: &str, v: &str) -> KeyValue {
        key_value(k.into(), string_value(v.into()))
    }

    #[test]
    fn names_and_ranks() {
        assert_eq!(role_of("MSG"), Some((Role::Message, 1)));
        assert_eq!(role_of("@timestamp"), Some((Role::Time, 3)));
        assert_eq!(role_of("log.level"), Some((Role::Level, 4)));
        assert_eq!(role_of("traceId"), Some((Role::TraceId, 1)));
        assert_eq!(role_of("request_id"), None);
        assert_eq!(role_of(""), None);
    }

    #[test]
    fn first_ranked_wins_and_others_stay() {
        let attrs = vec![s("msg", "short"), s("message", "long"), s("user", "bob")];
        let r = finish(attrs, "line", 7);
        assert_eq!(r.body, Some(string_value("long".into())));
        let keys: Vec<_> = r.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["msg", "user"]);
        assert_eq!(r.observed_time_unix_nano, 7);
    }

    #[test]
    fn unparsable_time_falls_to_next_and_stays() {
        let attrs = vec![s("time", "soon"), s("ts", "2026-11-22T10:00:00Z")];
        let r = finish(attrs, "line", 0);
        assert_eq!(r.time_unix_nano, 1_795_341_600_000_000_000);
        assert_eq!(r.attributes.len(), 1);
        assert_eq!(r.attributes[0].key, "time");
        assert_eq!(r.body, Some(string_value("line".into())));
    }

    #[test]
    fn trace_context() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let r = finish(vec![s("traceparent", tp)], "x", 0);
        assert_eq!(
            r.trace_id,
            decode_hex("4bf92f3577b34da6a3ce929d0e0e4736", 16).unwrap()
        );
        assert_eq!(r.span_id, decode_hex("00f067aa0ba902b7", 8).unwrap());
        assert_eq!(r.flags, 1);
        assert!(r.attributes.is_empty());

        let attrs = vec![
            s("trace_id", "ABCDEF0123456789abcdef0123456789"),
            s("traceparent", tp),
        ];
        let r = finish(attrs, "x", 0);
        assert_eq!(r.trace_id[0], 0xab);
        assert!(r.span_id.is_empty());
        assert_eq!(r.attributes.len(), 1, "an unused traceparent stays");

        let r = finish(
            vec![s("trace_id", "not-hex"), s("span_id", "0000000000000000")],
            "x",
            0,
        );
        assert!(r.trace_id.is_empty() && r.span_id.is_empty());
        assert_eq!(r.attributes.len(), 2);
        assert_eq!(traceparent("00-zz-00f067aa0ba902b7-01"), None);
        assert_eq!(traceparent(&tp.replace("-01", "-zz")), None);
    }
}
