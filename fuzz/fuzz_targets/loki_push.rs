//! Loki push bodies through what `POST /loki/api/v1/push` runs: decompression
//! (`otlp::loki_push::unpack_blocking`: snappy's declared size, gzip read with a cap, against a
//! 4 MiB limit), the admission cost before decoding (`loki_push::wire_cost`), the decode
//! (`loki_push::map::decode`), the exact cost, the mapping to one OTLP logs export
//! (`Push::into_otlp`) and then the collector's conversion and WAL payload
//! (`skein_fuzz::check_logs`); and the stream label parser (`loki_push::labels`).
//! The first byte picks what the rest is: bits 0-1: 0 a JSON body as sent, 1 a protobuf body
//! already decompressed, 2 a protobuf body compressed here with snappy, 3 a JSON body gzipped
//! here (so mutations reach the decoders); bit 2: the rest is one stream's label text instead.
#![no_main]
use libfuzzer_sys::fuzz_target;
use skein_otlp::loki_push::labels::{MAX_LABELS_TEXT, parse_labels};
use skein_otlp::loki_push::map::{Format, decode};
use skein_otlp::loki_push::{Compression, unpack_blocking, wire_cost};
use std::io::Write;

/// The body limit (`limits.max_request_bytes` is 16 MiB; 4 MiB keeps runs fast).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Label pairs as text the parser must read back to the same pairs: every character outside
/// printable ASCII, and `"` and `\`, written as an escape.
fn render(pairs: &[(String, String)]) -> String {
    let mut out = String::from("{");
    for (i, (n, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(n);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                ' '..='~' => out.push(c),
                c => out.push_str(&format!("\\U{:08x}", c as u32)),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

fn labels(text: &[u8]) {
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(pairs) = parse_labels(text) else {
        return;
    };
    let text = render(&pairs);
    if text.len() > MAX_LABELS_TEXT {
        // Escapes made it longer than the parser takes.
        return;
    }
    let again = parse_labels(&text).expect("rendered labels parse");
    assert_eq!(again, pairs, "labels read back as they were");
}

fuzz_target!(|data: &[u8]| {
    if data.len() > skein_fuzz::MAX_INPUT {
        return;
    }
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 4 == 4 {
        labels(rest);
        return;
    }
    let (format, compression, wire) = match mode & 3 {
        0 => (Format::Json, Compression::None, rest.to_vec()),
        1 => (Format::Protobuf, Compression::None, rest.to_vec()),
        2 => (
            Format::Protobuf,
            Compression::Snappy,
            snap::raw::Encoder::new()
                .compress_vec(rest)
                .expect("snap compresses any input"),
        ),
        _ => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(rest).expect("gzip into memory");
            (
                Format::Json,
                Compression::Gzip,
                e.finish().expect("gzip into memory"),
            )
        }
    };
    let Ok(body) = unpack_blocking(&wire, compression, MAX_BODY) else {
        return;
    };
    assert!(body.len() <= MAX_BODY, "never more than the limit");
    assert_eq!(body, rest, "decompression reads back what was written");
    let Ok(pre) = wire_cost(format, &body) else {
        return;
    };
    let Ok(push) = decode(format, &body) else {
        return;
    };
    let cost = push.cost();
    if format == Format::Protobuf {
        assert_eq!(
            pre.records, cost.records,
            "the wire count is the decoded count"
        );
    }
    let entries = match &push {
        skein_otlp::loki_push::map::Push::Json(p) => {
            p.streams.iter().map(|s| s.values.len()).sum::<usize>()
        }
        skein_otlp::loki_push::map::Push::Protobuf(p) => {
            p.streams.iter().map(|s| s.entries.len()).sum::<usize>()
        }
    };
    assert!(cost.records >= entries as u64, "every entry is counted");
    let Ok(req) = push.into_otlp() else {
        return;
    };
    let records: usize = req
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    assert_eq!(records, entries, "one record per entry");
    skein_fuzz::check_logs(&req);
});
