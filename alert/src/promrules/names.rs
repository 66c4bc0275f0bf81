//! Prometheus's words for names and durations, as its rule files take them: metric names
//! `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names `[a-zA-Z_][a-zA-Z0-9_]*`, and durations such as
//! `5m`, `1h30m` or `0` (units y, w, d, h, m, s, ms, each at most once, largest first).

use std::time::Duration;

/// A valid Prometheus metric name (the classic character set).
pub fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A valid Prometheus label name (the classic character set).
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The units of a duration, largest first, with their length in milliseconds.
const UNITS: [(&str, u128); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a Prometheus duration: `0`, or numbers each followed by a unit (y, w, d, h, m, s,
/// ms), units largest first and each at most once, as in `1h30m`. The error reads as
/// Prometheus's.
pub fn parse_prom_duration(text: &str) -> Result<Duration, String> {
    match text {
        "0" => return Ok(Duration::ZERO),
        "" => return Err("empty duration string".to_string()),
        _ => {}
    }
    let bad = || format!("not a valid duration string: {text:?}");
    let mut rest = text;
    let mut next_unit = 0;
    let mut total_ms: u128 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let (num, after) = rest.split_at(digits);
        // "ms" before "m", so that "5ms" is not read as 5m and a stray "s".
        let unit = ["ms", "y", "w", "d", "h", "m", "s"]
            .into_iter()
            .find(|u| after.starts_with(u))
            .ok_or_else(bad)?;
        let i = UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(bad)?;
        if i < next_unit {
            return Err(bad());
        }
        next_unit = i + 1;
        let n: u128 = num
            .parse()
            .map_err(|_| "duration out of range".to_string())?;
        total_ms = n
            .checked_mul(UNITS[i].1)
            .and_then(|v| v.checked_add(total_ms))
            .ok_or_else(|| "duration out of range".to_string())?;
        // Prometheus keeps durations in nanoseconds of an i64.
        if total_ms.saturating_mul(1_000_000) > i64::MAX as u128 {
            return Err("duration out of range".to_string());
        }
        rest = &after[unit.len()..];
    }
    Ok(Duration::from_millis(
        u64::try_from(total_ms).map_err(|_| bad())?,
    ))
}

/// A duration as Prometheus writes it: `1h30m`, `5m`, `0s`.
pub fn fmt_prom_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, len) in UNITS {
        if ms >= len {
            out.push_str(&format!("{}{unit}", ms / len));
            ms %= len;
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_prometheus_reads_them() {
        let ok = |t: &str| parse_prom_duration(t).unwrap().as_millis();
        assert_eq!(ok("0"), 0);
        assert_eq!(ok("0s"), 0);
        assert_eq!(ok("5m"), 300_000);
        assert_eq!(ok("1h30m"), 5_400_000);
        assert_eq!(ok("1ms"), 1);
        assert_eq!(ok("1m5s10ms"), 65_010);
        assert_eq!(ok("2w1d"), 15 * 86_400_000);
        assert_eq!(ok("100y"), 100 * 365 * 86_400_000);
        for bad in ["5", "1.5m", "1m1h", "5m5m", "m", "5 m", "-5m", "1x", "5mss"] {
            let e = parse_prom_duration(bad).unwrap_err();
            assert!(e.contains("not a valid duration string"), "{bad}: {e}");
        }
        assert_eq!(
            parse_prom_duration("").unwrap_err(),
            "empty duration string"
        );
        for big in ["300y", "99999999999999999999999999999999999999999y"] {
            let e = parse_prom_duration(big).unwrap_err();
            assert_eq!(e, "duration out of range", "{big}");
        }
    }

    #[test]
    fn durations_written_back() {
        for t in ["0s", "5m", "1h30m", "1d", "1m5s10ms"] {
            assert_eq!(fmt_prom_duration(parse_prom_duration(t).unwrap()), t);
        }
    }

    #[test]
    fn names() {
        for n in ["up", "job:up:sum", "_x", ":a"] {
            assert!(valid_metric_name(n), "{n}");
        }
        for n in ["", "1a", "a{b}", "a.b", "a-b"] {
            assert!(!valid_metric_name(n), "{n}");
        }
        for n in ["a", "_a1", "__name__"] {
            assert!(valid_label_name(n), "{n}");
        }
        for n in ["", "1a", "a:b", "a.b", "b-c"] {
            assert!(!valid_label_name(n), "{n}");
        }
    }
}
