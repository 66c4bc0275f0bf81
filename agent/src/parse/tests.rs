//! Tests of [`Parser`] across formats, odd input and (ignored unless asked) speed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use skein_model::proto::common::v1::{AnyValue, KeyValue, any_value::Value};

/// 2026-11-22T10:00:00Z.
const T: u64 = 1_795_341_600_000_000_000;
const OBS: u64 = 42;
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn p(format: Format, text: &str) -> Parsed {
    Parser::new(format, None).unwrap().parse(text, OBS)
}

fn body(r: &LogRecord) -> &str {
    match r.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(Value::StringValue(s)) => s,
        other => panic!("body is not a string: {other:?}"),
    }
}

fn attr<'a>(r: &'a LogRecord, key: &str) -> Option<&'a Value> {
    r.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn attr_str<'a>(r: &'a LogRecord, key: &str) -> Option<&'a str> {
    match attr(r, key) {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn json_lifts_known_fields() {
    let line = format!(
        r#"{{"time":"2026-11-22T10:00:00.5Z","level":"warn","msg":"slow","request_id":"r-42","trace_id":"{}","span_id":"00F067AA0BA902B7","n":3,"x":{{"y":[1,2.5,true]}}}}"#,
        TRACE.to_uppercase()
    );
    let out = p(Format::Json, &line);
    assert!(out.parsed);
    let r = &out.record;
    assert_eq!(body(r), "slow");
    assert_eq!(r.time_unix_nano, T + 500_000_000);
    assert_eq!(r.observed_time_unix_nano, OBS);
    assert_eq!(r.severity_number, 13);
    assert_eq!(r.severity_text, "warn");
    assert_eq!(hex(&r.trace_id), TRACE);
    assert_eq!(hex(&r.span_id), "00f067aa0ba902b7");
    let keys: Vec<_> = r.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["request_id", "n", "x"]);
    assert_eq!(attr_str(r, "request_id"), Some("r-42"));
    assert_eq!(attr(r, "n"), Some(&Value::IntValue(3)));
    assert!(matches!(attr(r, "x"), Some(Value::KvlistValue(_))));
}

#[test]
fn json_without_message_keeps_the_line() {
    let line = r#"{"ts":1795341600123,"severity":"E","user":"bob"}"#;
    let out = p(Format::Json, line);
    assert!(out.parsed);
    assert_eq!(body(&out.record), line);
    assert_eq!(out.record.time_unix_nano, T + 123_000_000);
    assert_eq!(out.record.severity_number, 17);
    assert_eq!(out.record.severity_text, "E");
}

#[test]
fn json_common_shapes() {
    // pino / bunyan: numeric level, epoch millis.
    let out = p(
        Format::Json,
        r#"{"level":30,"time":1795341600000,"msg":"hi","pid":7}"#,
    );
    assert_eq!(
        (
            out.record.severity_number,
            out.record.severity_text.as_str()
        ),
        (9, "INFO")
    );
    assert_eq!(out.record.time_unix_nano, T);
    // ECS.
    let line = format!(
        r#"{{"@timestamp":"2026-11-22T10:00:00.000Z","log.level":"ERROR","message":"boom","trace.id":"{TRACE}"}}"#
    );
    let out = p(Format::Json, &line);
    assert_eq!(out.record.severity_number, 17);
    assert_eq!(hex(&out.record.trace_id), TRACE);
    assert!(out.record.attributes.is_empty());
    // Python logging / structlog.
    let out = p(
        Format::Json,
        r#"{"asctime":"x","levelname":"CRITICAL","message":"m","timestamp":"2026-11-22 10:00:00,250"}"#,
    );
    assert_eq!(out.record.severity_number, 21);
    assert_eq!(out.record.time_unix_nano, T + 250_000_000);
    // Docker json-file.
    let out = p(
        Format::Json,
        r#"{"log":"hello\n","stream":"stdout","time":"2026-11-22T10:00:00.000000001Z"}"#,
    );
    assert_eq!(body(&out.record), "hello\n");
    assert_eq!(out.record.time_unix_nano, T + 1);
    // Unix seconds as a float, traceparent.
    let line = format!(
        r#"{{"t":1795341600.25,"body":"b","traceparent":"00-{TRACE}-00f067aa0ba902b7-01"}}"#
    );
    let out = p(Format::Json, &line);
    assert_eq!(out.record.time_unix_nano, T + 250_000_000);
    assert_eq!(hex(&out.record.trace_id), TRACE);
    assert_eq!(hex(&out.record.span_id), "00f067aa0ba902b7");
    assert_eq!(out.record.flags, 1);
}

#[test]
fn json_bad_values_stay_attributes() {
    let out = p(
        Format::Json,
        r#"{"time":"yesterday","trace_id":"r-1","traceId":"00000000000000000000000000000000","msg":{"a":1},"level":3}"#,
    );
    assert!(out.parsed, "a bad timestamp still parses");
    let r = &out.record;
    assert_eq!(r.time_unix_nano, 0);
    assert!(r.trace_id.is_empty());
    assert_eq!(r.severity_number, 0);
    assert_eq!(attr_str(r, "time"), Some("yesterday"));
    assert_eq!(attr_str(r, "trace_id"), Some("r-1"));
    assert!(attr(r, "traceId").is_some());
    assert!(attr(r, "msg").is_some());
    assert_eq!(attr(r, "level"), Some(&Value::IntValue(3)));
    assert!(body(r).starts_with("{\"time\""));
}

#[test]
fn json_failures_fall_back() {
    for line in [
        "{",
        r#"{"a":"#,
        "{not json}",
        "[1,2]",
        r#"{"a":1} trailing"#,
    ] {
        let out = p(Format::Json, line);
        assert!(!out.parsed, "{line}");
        assert_eq!(body(&out.record), line);
        assert!(out.record.attributes.is_empty());
        assert_eq!(out.record.observed_time_unix_nano, OBS);
    }
}

#[test]
fn logfmt_lifts_known_fields() {
    let line = format!(
        r#"ts=2026-11-22T10:00:00Z level=error msg="payment \"failed\"" request_id=r-9 trace_id={TRACE} retry"#
    );
    let out = p(Format::Logfmt, &line);
    assert!(out.parsed);
    let r = &out.record;
    assert_eq!(body(r), "payment \"failed\"");
    assert_eq!(r.time_unix_nano, T);
    assert_eq!(r.severity_number, 17);
    assert_eq!(hex(&r.trace_id), TRACE);
    assert_eq!(attr_str(r, "request_id"), Some("r-9"));
    assert_eq!(attr(r, "retry"), Some(&Value::BoolValue(true)));
    assert_eq!(r.attributes.len(), 2);

    let out = p(Format::Logfmt, "no pairs here");
    assert!(!out.parsed);
    assert_eq!(body(&out.record), "no pairs here");
}

#[test]
fn regex_groups_and_fallback() {
    let re =
        r"^(?P<time>\S+) \[(?P<level>\w+)\] (?P<component>\w+)(?: (?P<opt>\d+))?: (?P<msg>.*)$";
    let parser = Parser::new(Format::Regex, Some(re)).unwrap();
    let out = parser.parse("2026-11-22T10:00:00Z [WARN] db: slow query", OBS);
    assert!(out.parsed);
    let r = &out.record;
    assert_eq!(body(r), "slow query");
    assert_eq!(r.time_unix_nano, T);
    assert_eq!((r.severity_number, r.severity_text.as_str()), (13, "WARN"));
    assert_eq!(r.attributes.len(), 1);
    assert_eq!(attr_str(r, "component"), Some("db"));

    let out = parser.parse("something else", OBS);
    assert!(!out.parsed);
    assert_eq!(body(&out.record), "something else");

    assert!(Parser::new(Format::Regex, None).is_err());
    assert!(Parser::new(Format::Regex, Some("(")).is_err());
    assert!(Parser::new(Format::Regex, Some("(a)")).is_err());
    assert!(
        Parser::new(Format::Json, Some("(")).is_ok(),
        "ignored for other formats"
    );
}

#[test]
fn plain_lifts_leading_time_and_level() {
    let cases = [
        ("2026-11-22T10:00:00Z ERROR something", T, 17, "ERROR"),
        (
            "2026-11-22 10:00:00,500 INFO [main] started",
            T + 500_000_000,
            9,
            "INFO",
        ),
        ("[2026-11-22 10:00:00] [warn] disk", T, 13, "warn"),
        ("WARNING: low memory", 0, 13, "WARNING"),
        ("2026-11-22T10:00:00+00:00 plain words", T, 0, ""),
        ("I think so", 0, 0, ""),
        ("2026-11-22T10:00:00Zfoo bar", 0, 0, ""),
        ("", 0, 0, ""),
    ];
    for (line, time, sev, text) in cases {
        let out = p(Format::Plain, line);
        assert!(out.parsed, "{line}");
        assert_eq!(body(&out.record), line);
        assert_eq!(out.record.time_unix_nano, time, "{line}");
        assert_eq!(out.record.severity_number, sev, "{line}");
        assert_eq!(out.record.severity_text, text, "{line}");
        assert!(out.record.attributes.is_empty());
    }
}

#[test]
fn auto_picks_the_format() {
    let out = p(Format::Auto, r#"  {"msg":"j","level":"debug"}"#);
    assert!(out.parsed);
    assert_eq!(body(&out.record), "j");
    assert_eq!(out.record.severity_number, 5);

    let out = p(Format::Auto, "level=info msg=k user=bob");
    assert!(out.parsed);
    assert_eq!(body(&out.record), "k");
    assert_eq!(attr_str(&out.record, "user"), Some("bob"));

    let out = p(Format::Auto, "2026-11-22T10:00:00Z ERROR user=bob failed");
    assert!(out.parsed);
    assert_eq!(out.record.severity_number, 17);
    assert_eq!(out.record.time_unix_nano, T);
    assert!(
        out.record.attributes.is_empty(),
        "not logfmt: first word is not a pair"
    );

    let out = p(Format::Auto, "{ broken ERROR");
    assert!(!out.parsed);
    assert_eq!(body(&out.record), "{ broken ERROR");
}

#[test]
fn deeply_nested_json_still_decodes_at_the_collector() {
    use prost::Message;
    use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
    use skein_model::proto::logs::v1::{ResourceLogs, ScopeLogs};
    // Objects and arrays as deep as serde_json takes (128 levels, the line itself is one).
    for line in [
        format!(
            r#"{{"msg":"deep","a":{}1{}}}"#,
            r#"{"k":"#.repeat(120),
            "}".repeat(120)
        ),
        format!(
            r#"{{"msg":"deep","a":{}1{}}}"#,
            "[".repeat(126),
            "]".repeat(126)
        ),
        format!(
            r#"{{"message":{}1{}}}"#,
            r#"{"k":[{"j":"#.repeat(40),
            "}]}".repeat(40)
        ),
    ] {
        let parsed = p(Format::Json, &line);
        assert!(parsed.parsed, "{}", &line[..40]);
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![parsed.record],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let wire = req.encode_to_vec();
        // The collector decodes with prost's default recursion limit.
        let back = ExportLogsServiceRequest::decode(&wire[..]);
        assert!(back.is_ok(), "{back:?}");
    }
}

#[test]
fn odd_input_never_panics() {
    let deep_arr = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let mut inputs: Vec<String> = [
        "",
        " ",
        "   \t ",
        "{",
        "}",
        "{\"a\":",
        "\"",
        "=",
        "==",
        "a=\"",
        "a=\"\\",
        "[",
        "[]",
        "[2026-11-22",
        "2026-11-22T",
        "2026-11-22T10:00:00.",
        "9999-99-99T99:99:99Z",
        "\u{0}",
        "é=ü \"ö",
        "{\"level\":1e400}",
        "{\"ts\":-1e300,\"level\":-9223372036854775808}",
        "{\"t\":18446744073709551615}",
        "a=1 \\",
        "\\\"=\"",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    inputs.push(deep_arr);
    inputs.push(deep_obj);
    // Pseudo-random bytes, decoded lossily, biased towards the bytes parsers care about.
    let alphabet = b"{}[]\":=,. \\-T0123456789Zaelmsgtv\xc3\xa9\xff\n";
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3000 {
        let len = (x % 96) as usize;
        let mut bytes = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = if x.is_multiple_of(3) {
                (x >> 24) as u8
            } else {
                alphabet[(x >> 8) as usize % alphabet.len()]
            };
            bytes.push(b);
        }
        x = x.wrapping_add(0x9e37_79b9);
        inputs.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    let re = Parser::new(Format::Regex, Some(r"(?P<level>\w+)?(?P<msg>.*)")).unwrap();
    for text in &inputs {
        for f in [Format::Json, Format::Logfmt, Format::Plain, Format::Auto] {
            let out = p(f, text);
            assert_eq!(out.record.observed_time_unix_nano, OBS);
            assert!(out.record.body.is_some());
        }
        assert!(re.parse(text, OBS).parsed);
    }
}

fn sample_line(i: usize) -> String {
    format!(
        r#"{{"ts":"2026-11-22T10:00:{:02}.{:03}Z","level":"info","msg":"handled request {i}","service":"checkout","request_id":"r-{i}","trace_id":"{TRACE}","method":"POST","path":"/api/v1/orders","status":200,"duration_ms":{}.5}}"#,
        i % 60,
        i % 1000,
        i % 997
    )
}

#[test]
fn sample_line_parses() {
    let out = p(Format::Auto, &sample_line(7));
    assert!(out.parsed);
    assert_eq!(out.record.attributes.len(), 6);
    assert_eq!(body(&out.record), "handled request 7");
    let _: &[KeyValue] = &out.record.attributes;
    let _ = AnyValue::default();
}

/// Prints parse throughput. Run with
/// `cargo test -p skein-agent --release parse::tests::speed -- --ignored --nocapture`.
#[test]
#[ignore = "timing printout; run by hand in release"]
fn speed() {
    let lines: Vec<String> = (0..100_000).map(sample_line).collect();
    let logfmt: Vec<String> = (0..100_000)
        .map(|i| {
            format!(
                r#"ts=2026-11-22T10:00:00.{:03}Z level=info msg="handled request {i}" service=checkout request_id=r-{i} trace_id={TRACE} method=POST path=/api/v1/orders status=200 duration_ms=12.5"#,
                i % 1000
            )
        })
        .collect();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let parser = Parser::new(Format::Auto, None).unwrap();
    for (name, set) in [("json", &lines), ("logfmt", &logfmt)] {
        let bytes_set: usize = set.iter().map(|l| l.len() + 1).sum();
        let start = std::time::Instant::now();
        let mut n = 0usize;
        for _ in 0..3 {
            for l in set.iter() {
                n += parser.parse(l, OBS).record.attributes.len();
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name}: {} lines of ~{} bytes: {:.1} MiB/s, {:.0} lines/s ({n})",
            set.len(),
            bytes_set / set.len(),
            3.0 * bytes_set as f64 / secs / (1024.0 * 1024.0),
            3.0 * set.len() as f64 / secs
        );
    }
    assert!(bytes > 0);
}
