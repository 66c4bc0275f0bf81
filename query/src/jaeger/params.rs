//! The parameters of the Jaeger routes as Jaeger reads them: tags (a JSON object, or the
//! older repeated `tag=key:value`), Go durations (`1.2ms`, `100us`, `2s`, `1h30m`), times in
//! microseconds since 1970, `lookback`, `endTs` in milliseconds, `limit`.

use crate::metrics::params::Params;
use skein_model::time::{MAX_DURATION, parse_duration};
use std::time::Duration;

/// Most tag conditions in one search (also bounded by [`skein_store::search::MAX_SPAN_TAGS`]
/// when the filter crosses the cluster).
pub const MAX_TAGS: usize = 16;
/// Longest tag name or value, in bytes: the index keeps string values up to this length
/// only, so a longer value could never match.
pub const MAX_TAG_BYTES: usize = 256;
/// Longest `tags` parameter, in bytes.
pub const MAX_TAGS_PARAM_BYTES: usize = 8 * 1024;
/// Traces a search returns when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 20;
/// The window a search covers when neither `start` nor `lookback` is given: 2 days before
/// `end`, as Jaeger's query service.
pub const DEFAULT_SEARCH_LOOKBACK: Duration = Duration::from_secs(2 * 24 * 3600);
/// The window of `/api/dependencies` when `lookback` is not given: 1 day, as Jaeger.
pub const DEFAULT_DEPENDENCY_LOOKBACK_MS: i64 = 24 * 3_600_000;

/// Reads the tag conditions of a search: the JSON object of `tags` (Grafana sends
/// `{"http.status_code":"500","error":"true"}`) and each `tag=key:value`. Values that are
/// JSON numbers or bools are read as their text.
pub fn parse_tags<'a>(
    json: Option<&str>,
    legacy: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<(String, String)>, String> {
    let mut tags = Vec::new();
    if let Some(text) = json {
        if text.len() > MAX_TAGS_PARAM_BYTES {
            return Err(format!(
                "tags is {} bytes, more than the most of {MAX_TAGS_PARAM_BYTES}; search with fewer tags",
                text.len()
            ));
        }
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|e| {
                format!(
                    "tags '{text}' is not a JSON object of names and values ({e}); write it as {{\"http.status_code\":\"500\",\"error\":\"true\"}}"
                )
            })?;
        for (k, v) in map {
            let value = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "tag '{k}' has the value {other}; a tag's value is a string, a number or a bool"
                    ));
                }
            };
            tags.push((k, value));
        }
    }
    for t in legacy {
        let Some((k, v)) = t.split_once(':') else {
            return Err(format!(
                "tag '{t}' has no ':'; write it as tag=name:value (tag=http.status_code:500)"
            ));
        };
        tags.push((k.trim().to_string(), v.trim().to_string()));
    }
    if tags.len() > MAX_TAGS {
        return Err(format!(
            "{} tags, more than the most of {MAX_TAGS}; search with fewer tags",
            tags.len()
        ));
    }
    for (k, v) in &tags {
        check_tag(k, v)?;
    }
    Ok(tags)
}

fn check_tag(k: &str, v: &str) -> Result<(), String> {
    if k.is_empty() {
        return Err("a tag has an empty name; write name=value pairs such as error=true".into());
    }
    if k.len() > MAX_TAG_BYTES || v.len() > MAX_TAG_BYTES {
        return Err(format!(
            "tag '{}' is longer than {MAX_TAG_BYTES} bytes (name or value); values that long are not indexed",
            k.chars().take(40).collect::<String>()
        ));
    }
    if let Some(c) = k.chars().chain(v.chars()).find(|c| c.is_control()) {
        return Err(format!(
            "tag '{k}' holds the control character U+{:04X}; remove it",
            c as u32
        ));
    }
    if k == "error" && v != "true" && v != "false" {
        return Err(format!(
            "tag error={v}: error is true (spans with status error) or false"
        ));
    }
    Ok(())
}

/// Parses a Go duration (`time.ParseDuration`): a sequence of decimal numbers, each with a
/// unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), such as `1.2ms`, `100us`, `2s` or `1h30m`;
/// `0` alone is zero. Negative durations and durations past 100 years are refused.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let hint = "use Go durations such as 1.2ms, 100us, 2s or 1h30m";
    let bad = |why: &str| format!("cannot read duration '{t}': {why}; {hint}");
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = t.strip_prefix('+').unwrap_or(t);
    if rest.starts_with('-') {
        return Err(bad("it is negative"));
    }
    if rest.is_empty() {
        return Err(bad("it is empty"));
    }
    let max = MAX_DURATION.as_nanos();
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                a.split_at(n)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(bad("a number is missing"));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(bad("a number has no unit")),
            u => return Err(bad(&format!("'{u}' is not a unit (ns, us, ms, s, m, h)"))),
        };
        // Whole part, then at most 18 fraction digits (below a nanosecond past that).
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse::<u128>()
                .ok()
                .and_then(|n| n.checked_mul(per))
                .filter(|n| *n <= max)
                .ok_or_else(|| bad("it is longer than 100 years"))?
        };
        let digits = &frac[..frac.len().min(18)];
        let part = if digits.is_empty() {
            0
        } else {
            let n: u128 = digits
                .parse()
                .map_err(|_| bad("a fraction is not a number"))?;
            n * per / 10u128.pow(digits.len() as u32)
        };
        total = total.saturating_add(whole).saturating_add(part);
        if total > max {
            return Err(bad("it is longer than 100 years"));
        }
        rest = after;
    }
    let nanos = u64::try_from(total).map_err(|_| bad("it is longer than 100 years"))?;
    Ok(Duration::from_nanos(nanos))
}

/// A duration parameter in nanoseconds (`minDuration`, `maxDuration`).
pub fn duration_ns(p: &Params, name: &str) -> Result<Option<u64>, String> {
    p.get(name)
        .map(|v| {
            parse_go_duration(v)
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                .map_err(|e| format!("{name}: {e}"))
        })
        .transpose()
}

/// A whole number parameter (`start`, `end` in µs; `endTs`, `lookback` in ms).
pub fn whole(p: &Params, name: &str, unit: &str) -> Result<Option<u64>, String> {
    p.get(name)
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                format!("{name} '{v}' is not a whole number of {unit} since 1970 (Jaeger's unit)")
            })
        })
        .transpose()
}

/// The window of a search, Unix nanoseconds: `start` and `end` in µs; without `start`,
/// `end` minus `lookback` (`1h`, `2d`; Jaeger UI's `custom` means start and end are given),
/// else minus [`DEFAULT_SEARCH_LOOKBACK`]. `end` defaults to `now_ns`.
pub fn search_window(p: &Params, now_ns: u64) -> Result<(u64, u64), String> {
    let micros = "microseconds";
    let end = whole(p, "end", micros)?
        .map(|us| us.saturating_mul(1000))
        .unwrap_or(now_ns);
    let start = match whole(p, "start", micros)? {
        Some(us) => us.saturating_mul(1000),
        None => {
            let back = match p.get("lookback").filter(|l| *l != "custom") {
                Some(l) => parse_duration(l).map_err(|e| format!("lookback: {e}"))?,
                None => DEFAULT_SEARCH_LOOKBACK,
            };
            end.saturating_sub(u64::try_from(back.as_nanos()).unwrap_or(u64::MAX))
        }
    };
    if start > end {
        return Err(format!(
            "start ({}) is after end ({}); both are microseconds since 1970",
            start / 1000,
            end / 1000
        ));
    }
    Ok((start, end))
}

/// The `limit` of a search: [`DEFAULT_LIMIT`] when absent, at most `max` (the engine's
/// `query.max_limit`); 0 and larger numbers are refused.
pub fn limit(p: &Params, max: usize) -> Result<usize, String> {
    limit_of("limit", p.get("limit"), max)
}

/// A trace count named `name` (`limit`, v3's `query.search_depth`) read as [`limit`] reads it.
pub fn limit_of(name: &str, value: Option<&str>, max: usize) -> Result<usize, String> {
    match value {
        None => Ok(DEFAULT_LIMIT.min(max)),
        Some(t) => match t.parse::<usize>() {
            Ok(0) => Err(format!("{name} must be at least 1")),
            Ok(n) if n > max => Err(format!(
                "{name} {n} is over the most of {max} traces (query.max_limit); narrow the search with a service, tags or a shorter time range"
            )),
            Ok(n) => Ok(n),
            Err(_) => Err(format!("{name} '{t}' is not a whole number")),
        },
    }
}

/// Parses an RFC 3339 time as Go's `time.RFC3339Nano` writes it (`2026-01-01T10:00:00Z`,
/// `2026-01-01T10:00:00.123456789+02:00`) into Unix nanoseconds; times before 1970 read as 0.
/// A space where the offset's `+` belongs is read as `+`: Grafana puts these times in the
/// query string unencoded, and form decoding turns `+` into a space.
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let t = text.trim_start();
    let bad = |why: &str| {
        format!(
            "cannot read time '{text}': {why}; write RFC 3339 such as 2026-01-01T10:00:00Z or 2026-01-01T10:00:00.5+02:00"
        )
    };
    let b = t.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let d = b.get(from..from + len)?;
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| d.iter().fold(0i64, |n, c| n * 10 + i64::from(c - b'0')))
    };
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt") && at(13, b":") && at(16, b":")) {
        return Err(bad("it is not YYYY-MM-DDTHH:MM:SS"));
    }
    let (Some(year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = (
        num(0, 4),
        num(5, 2),
        num(8, 2),
        num(11, 2),
        num(14, 2),
        num(17, 2),
    ) else {
        return Err(bad("a date or time field is not a number"));
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad("the month is not 01 to 12")),
    };
    if day < 1 || day > days_in_month || hour > 23 || min > 59 || sec > 59 {
        return Err(bad("a field is out of range"));
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if at(i, b".,") {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad("the fraction of a second has no digits"));
        }
        for k in 0..9 {
            let d = if k < digits {
                i64::from(b[i + k] - b'0')
            } else {
                0
            };
            nanos = nanos * 10 + d;
        }
        i += digits;
    }
    let offset_s: i64 = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(c @ (b'+' | b'-' | b' ')) if i + 6 == b.len() && at(i + 3, b":") => {
            let (Some(h), Some(m)) = (num(i + 1, 2), num(i + 4, 2)) else {
                return Err(bad("the offset is not +HH:MM"));
            };
            if h > 23 || m > 59 {
                return Err(bad("the offset is out of range"));
            }
            let sign = if *c == b'-' { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return Err(bad("it needs a zone: Z or an offset such as +02:00")),
    };
    // Days from 1970-01-01 to the date (the proleptic Gregorian calendar).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_s;
    let ns = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    Ok(u64::try_from(ns.max(0)).unwrap_or(u64::MAX))
}

/// The window of `/api/dependencies`, Unix milliseconds: `endTs` (default `now_ms`) and
/// `lookback` before it (default [`DEFAULT_DEPENDENCY_LOOKBACK_MS`]), both in ms.
pub fn dependency_window(p: &Params, now_ms: i64) -> Result<(i64, i64), String> {
    let ms = "milliseconds";
    let end = match whole(p, "endTs", ms)? {
        Some(e) => i64::try_from(e).map_err(|_| format!("endTs {e} is too large"))?,
        None => now_ms,
    };
    let max_ms = i64::try_from(MAX_DURATION.as_millis()).unwrap_or(i64::MAX);
    let lookback = match p.get("lookback") {
        None => DEFAULT_DEPENDENCY_LOOKBACK_MS,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n > 0 && n <= max_ms => n,
            _ => {
                return Err(format!(
                    "lookback '{v}' must be a whole number of milliseconds above 0 (86400000 is one day)"
                ));
            }
        },
    };
    Ok((end.saturating_sub(lookback), end))
}
