//! LogQL: any query text through the parser (`loki::logql::parse`), then, for a log query,
//! what the index would be asked (`loki::scan::prefilter`) and the pipeline over a few fixed
//! lines (JSON, logfmt, plain text with ANSI colours, a line that is not UTF-8-clean after
//! lossy decoding). On a thread with a 2 MiB stack. Beside "no crash" and "within `-timeout`
//! and `-rss_limit_mb`": a query that parses once parses again the same way (the parser keeps
//! no state), and a pipeline never returns a line for an entry its selector rejects.
#![no_main]
use libfuzzer_sys::fuzz_target;
use skein_model::LogRecord;
use skein_model::keys::KeyExtractor;
use skein_query::loki::logql::ast::Expr;
use skein_query::loki::{logql, pipeline, scan};

fn records() -> Vec<LogRecord> {
    let mut attrs = skein_model::Attributes::new();
    attrs.insert("request_id".into(), "r-1".into());
    attrs.insert("http.status_code".into(), 503.into());
    let base = LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000,
        service: "payment".into(),
        host: "h1".into(),
        severity_number: 17,
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        attributes: attrs,
        ..Default::default()
    };
    [
        r#"{"status":503,"req":{"path":"/pay","ms":"1.5s"},"tags":[1,2],"deep":{"a":{"b":{"c":1}}}}"#,
        r#"level=warn msg="a \"quoted\" word" n=3 flag"#,
        "\x1b[31mcard declined\x1b[0m by bank",
        "",
    ]
    .iter()
    .map(|b| LogRecord {
        body: (*b).into(),
        ..base.clone()
    })
    .collect()
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let query = String::from_utf8_lossy(data).into_owned();
    skein_fuzz::on_small_stack(move || {
        let Ok(e) = logql::parse(&query) else {
            return;
        };
        assert!(logql::parse(&query).is_ok(), "parsing is repeatable");
        let Expr::Log(log) = e else {
            return;
        };
        let _ = scan::prefilter(&log, &KeyExtractor::new(&Default::default()));
        for r in records() {
            let entry = pipeline::entry(&r);
            let selected = pipeline::selected(&entry, &log.matchers);
            let out = pipeline::run(entry, &log.stages);
            if !selected {
                // The scan checks the selector before the stages; the stages alone may pass.
                continue;
            }
            if let Some(out) = out {
                assert_eq!(out.time, r.time_unix_nano, "a stage never moves a line in time");
            }
        }
    });
});
