//! The agent's line parsers: one log line (as the tailer hands it over, lossy UTF-8) through
//! the source's parser, then the way it travels: in an OTLP export the agent encodes, which
//! the collector must decode and convert (a line the agent accepts must never be refused by
//! the collector). The first byte picks the format: JSON, logfmt, plain, auto, a fixed
//! regex, a regex taken from the input (`pattern\nline`), or the time and level readers
//! alone.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message;
use skein_agent::config::Format;
use skein_agent::parse::{Parser, level, time};
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use skein_model::proto::logs::v1::{ResourceLogs, ScopeLogs};
use std::sync::OnceLock;

/// A regex like the ones in the agent's documentation.
const ACCESS_LOG: &str = r#"^(?P<client>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+)[^"]*" (?P<status>\d{3}) (?P<bytes>\S+)(?: "(?P<referer>[^"]*)" "(?P<agent>[^"]*)")?(?P<msg>.*)$"#;

fn parsers() -> &'static [Parser; 5] {
    static P: OnceLock<[Parser; 5]> = OnceLock::new();
    P.get_or_init(|| {
        let p = |f, re| Parser::new(f, re).expect("parser");
        [
            p(Format::Json, None),
            p(Format::Logfmt, None),
            p(Format::Plain, None),
            p(Format::Auto, None),
            p(Format::Regex, Some(ACCESS_LOG)),
        ]
    })
}

fn ship(parser: &Parser, text: &str) {
    let parsed = parser.parse(text, skein_fuzz::NOW_NANO);
    if !parsed.parsed {
        assert!(
            parsed.record.body.is_some(),
            "a line that does not parse keeps its text"
        );
    }
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![parsed.record],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let body = req.encode_to_vec();
    let back = ExportLogsServiceRequest::decode(&body[..])
        .expect("the collector decodes what the agent sends");
    skein_fuzz::check_logs(&back);
}

fn times_and_levels(text: &str, raw: &[u8]) {
    let _ = time::parse_timestamp(text);
    if let Some((_, used)) = time::scan_prefix(raw) {
        assert!(used <= raw.len());
    }
    let mut n = [0u8; 8];
    for (d, s) in n.iter_mut().zip(raw) {
        *d = *s;
    }
    let _ = time::from_unix_int(i64::from_le_bytes(n));
    let _ = time::from_unix_float(f64::from_le_bytes(n));
    let _ = level::severity_of_number(i64::from_le_bytes(n));
    let _ = level::canonical_name(i32::from_le_bytes([n[0], n[1], n[2], n[3]]));
    let _ = level::severity_of_name(text, true);
    let _ = level::severity_of_name(text, false);
    let _ = skein_model::severity::severity_number_of(text);
    let _ = skein_model::time::parse_time(text, skein_fuzz::NOW_NANO);
    let _ = skein_model::time::parse_duration(text);
}

fuzz_target!(|data: &[u8]| {
    if data.len() > skein_fuzz::MAX_INPUT {
        return;
    }
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match mode % 7 {
        m @ 0..=4 => ship(&parsers()[m as usize], &text),
        5 => {
            let (pattern, line) = text.split_once('\n').unwrap_or((&text, ""));
            if pattern.len() > 512 {
                return;
            }
            if let Ok(p) = Parser::new(Format::Regex, Some(pattern)) {
                ship(&p, line);
            }
        }
        _ => times_and_levels(&text, rest),
    }
});
