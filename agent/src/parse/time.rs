//! Timestamps as log lines write them, to Unix nanoseconds.
//!
//! Understood: RFC 3339 / ISO 8601 with `T` or a space between date and time, `-` or `/`
//! between date parts, optional seconds, fractional seconds after `.` or `,`, a zone of `Z`,
//! `±HH:MM`, `±HHMM` or `±HH` (no zone reads as UTC), optionally followed by a zone name
//! (`+0000 UTC`, as Go prints times); the Apache access-log form `22/Nov/2026:10:00:00 +0000`;
//! and Unix seconds, milliseconds, microseconds or nanoseconds as numbers, told apart by
//! magnitude. Times before 1973 are not accepted as numbers (a small number is more likely a
//! duration or a counter than a timestamp). No allocation anywhere. A time that Unix
//! nanoseconds in a `u64` cannot hold (before 1970, after 2554) is not a time: every
//! step is checked, so no input overflows.

/// Nanoseconds in one second.
const NANOS: u64 = 1_000_000_000;

/// Smallest number read as Unix seconds (1973-03-03): below this a number is not a time.
const MIN_UNIX_SECS: f64 = 1e8;

/// A whole text (surrounding spaces allowed) as a timestamp.
pub fn parse_timestamp(text: &str) -> Option<u64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    let b = t.as_bytes();
    if b[0].is_ascii_digit() && b.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
        return parse_unix_text(t);
    }
    if let Some((nanos, used)) = scan_iso(b) {
        return (used == b.len()).then_some(nanos);
    }
    match scan_clf(b) {
        Some((nanos, used)) if used == b.len() => Some(nanos),
        _ => None,
    }
}

/// A timestamp at the start of `b`: its Unix nanoseconds and how many bytes it took. Only the
/// ISO forms are looked for (numbers at the start of free text are too often something else).
pub fn scan_prefix(b: &[u8]) -> Option<(u64, usize)> {
    scan_iso(b).or_else(|| scan_clf(b))
}

/// An integer as a Unix time in seconds, milliseconds, microseconds or nanoseconds.
pub fn from_unix_int(n: i64) -> Option<u64> {
    let n = u64::try_from(n).ok()?;
    if (n as f64) < MIN_UNIX_SECS {
        return None;
    }
    Some(if n < 100_000_000_000 {
        n.checked_mul(NANOS)?
    } else if n < 100_000_000_000_000 {
        n.checked_mul(1_000_000)?
    } else if n < 100_000_000_000_000_000 {
        n.checked_mul(1_000)?
    } else {
        n
    })
}

/// A float as a Unix time (`1700000000.123` seconds, as Python's `time.time()` writes).
pub fn from_unix_float(f: f64) -> Option<u64> {
    if !f.is_finite() || f < MIN_UNIX_SECS {
        return None;
    }
    // Nanoseconds per unit, and the finest step the fraction is rounded to: an f64 near
    // 1.8e9 seconds holds about seven fraction digits, so `.25` must not come out `.249999872`.
    let (unit, step) = if f < 1e11 {
        (NANOS, 1_000)
    } else if f < 1e14 {
        (1_000_000, 1_000)
    } else if f < 1e17 {
        (1_000, 1)
    } else {
        return (f < u64::MAX as f64).then_some(f as u64);
    };
    let whole = f.trunc();
    let frac = ((f - whole) * (unit / step) as f64).round() as u64 * step;
    (whole as u64).checked_mul(unit)?.checked_add(frac)
}

/// Digits with at most one `.`.
fn parse_unix_text(t: &str) -> Option<u64> {
    match t.split_once('.') {
        None => from_unix_int(t.parse::<i64>().ok()?),
        Some((whole, frac)) => {
            if frac.contains('.') || whole.is_empty() {
                return None;
            }
            let secs: i64 = whole.parse().ok()?;
            let base = from_unix_int(secs)?;
            // Only seconds carry fractions in practice; keep the digits exactly.
            if secs >= 100_000_000_000 {
                return Some(base);
            }
            base.checked_add(frac_nanos(frac.as_bytes()))
        }
    }
}

/// Up to nine fraction digits as nanoseconds; further digits are ignored.
fn frac_nanos(digits: &[u8]) -> u64 {
    let mut n = 0u64;
    let mut scale = NANOS;
    for d in digits.iter().take(9) {
        scale /= 10;
        n += u64::from(d - b'0') * scale;
    }
    n
}

/// `n` ASCII digits at `b[at..]`.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    let mut v = 0u32;
    for c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian), H. Hinnant's algorithm.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Unix nanoseconds of a civil UTC time shifted by `offset_secs` east of UTC.
fn to_unix(
    date: (i64, u32, u32),
    hms: (u32, u32, u32),
    nanos: u64,
    offset_secs: i64,
) -> Option<u64> {
    let (y, mo, d) = date;
    let (h, mi, s) = hms;
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60
    {
        return None;
    }
    // Years have four digits here, but the sums are checked all the same.
    let secs = days_from_civil(y, mo, d)
        .checked_mul(86_400)?
        .checked_add(i64::from(h * 3600 + mi * 60 + s.min(59)))?
        .checked_sub(offset_secs)?;
    let secs = u64::try_from(secs).ok()?;
    secs.checked_mul(NANOS)?.checked_add(nanos)
}

/// A zone at `b[i..]`: `Z`, `±HH:MM`, `±HHMM`, `±HH`, optionally after one space, and
/// optionally followed by a space and a zone name. Returns seconds east of UTC and the end.
fn scan_zone(b: &[u8], mut i: usize) -> (i64, usize) {
    let start = i;
    if b.get(i) == Some(&b' ') && matches!(b.get(i + 1), Some(b'+' | b'-')) {
        i += 1;
    }
    let (offset, mut end) = match b.get(i) {
        Some(b'Z' | b'z') => (0, i + 1),
        Some(c @ (b'+' | b'-')) => {
            let sign = if *c == b'-' { -1 } else { 1 };
            let Some(hh) = digits(b, i + 1, 2) else {
                return (0, start);
            };
            let (mm, end) = if b.get(i + 3) == Some(&b':') {
                match digits(b, i + 4, 2) {
                    Some(mm) => (mm, i + 6),
                    None => return (0, start),
                }
            } else if let Some(mm) = digits(b, i + 3, 2) {
                (mm, i + 5)
            } else {
                (0, i + 3)
            };
            if hh > 23 || mm > 59 {
                return (0, start);
            }
            (sign * i64::from(hh * 3600 + mm * 60), end)
        }
        _ => (0, start),
    };
    // A zone name: `UTC`/`GMT` anywhere, or an abbreviation such as `MST` after a numeric
    // offset (Go's `+0000 UTC`). Level words after a time (`INFO`, `CRIT`) are not names.
    if b.get(end) == Some(&b' ') {
        let rest = &b[end + 1..];
        let name = rest.iter().take_while(|c| c.is_ascii_uppercase()).count();
        let bounded = rest.get(name).is_none_or(|c| !c.is_ascii_alphanumeric());
        let word = &rest[..name];
        let numeric = end > start && b[end - 1].is_ascii_digit();
        let is_name = matches!(word, b"UTC" | b"GMT")
            || (numeric && (3..=4).contains(&name) && word.ends_with(b"T") && word != b"CRIT");
        if bounded && is_name {
            end += 1 + name;
        }
    }
    (offset, end)
}

/// ISO 8601-like at the start of `b`: `YYYY-MM-DD`, then optionally `T`/space and
/// `HH:MM[:SS[.frac]]` and a zone.
fn scan_iso(b: &[u8]) -> Option<(u64, usize)> {
    let y = digits(b, 0, 4)?;
    let sep = *b.get(4)?;
    if !(sep == b'-' || sep == b'/') || b.get(7) != Some(&sep) {
        return None;
    }
    let mo = digits(b, 5, 2)?;
    let d = digits(b, 8, 2)?;
    let date = (i64::from(y), mo, d);
    let has_time = matches!(b.get(10), Some(b'T' | b't' | b' '))
        && digits(b, 11, 2).is_some()
        && b.get(13) == Some(&b':');
    if !has_time {
        // A bare date, unless more of a word follows.
        if b.get(10).is_some_and(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        return Some((to_unix(date, (0, 0, 0), 0, 0)?, 10));
    }
    let h = digits(b, 11, 2)?;
    let mi = digits(b, 14, 2)?;
    let mut i = 16;
    let mut s = 0;
    let mut nanos = 0;
    if b.get(i) == Some(&b':') {
        s = digits(b, i + 1, 2)?;
        i += 3;
        if matches!(b.get(i), Some(b'.' | b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            nanos = frac_nanos(&b[i + 1..i + 1 + n]);
            i += 1 + n;
        }
    }
    let (offset, end) = scan_zone(b, i);
    Some((to_unix(date, (h, mi, s), nanos, offset)?, end))
}

/// The Apache/nginx access-log form `22/Nov/2026:10:00:00 +0000` at the start of `b`.
fn scan_clf(b: &[u8]) -> Option<(u64, usize)> {
    let d = digits(b, 0, 2)?;
    if b.get(2) != Some(&b'/') || b.get(6) != Some(&b'/') || b.get(11) != Some(&b':') {
        return None;
    }
    let mon = b.get(3..6)?;
    const MONTHS: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let mo = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(mon))? as u32 + 1;
    let y = digits(b, 7, 4)?;
    let h = digits(b, 12, 2)?;
    let mi = (b.get(14) == Some(&b':'))
        .then(|| digits(b, 15, 2))
        .flatten()?;
    let s = (b.get(17) == Some(&b':'))
        .then(|| digits(b, 18, 2))
        .flatten()?;
    let (offset, end) = scan_zone(b, 20);
    Some((to_unix((i64::from(y), mo, d), (h, mi, s), 0, offset)?, end))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// 2026-11-22T10:00:00Z.
    const T: u64 = 1_795_341_600_000_000_000;

    #[test]
    fn rfc3339_forms() {
        for s in [
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:00z",
            "2026-11-22t10:00:00Z",
            "2026-11-22T10:00:00+00:00",
            "2026-11-22T11:00:00+01:00",
            "2026-11-22T11:00:00+0100",
            "2026-11-22T11:00:00+01",
            "2026-11-22T05:30:00-04:30",
            "2026-11-22T10:00:00",
            "2026-11-22 10:00:00",
            "2026/11/22 10:00:00",
            "2026-11-22T10:00Z",
            " 2026-11-22T10:00:00Z ",
            "2026-11-22 10:00:00 +0000 UTC",
            "2026-11-22 10:00:00 UTC",
            "2026-11-22 10:00:00Z",
        ] {
            assert_eq!(parse_timestamp(s), Some(T), "{s}");
        }
        assert_eq!(parse_timestamp("2026-11-22"), Some(T - 10 * 3600 * NANOS));
    }

    #[test]
    fn fractions() {
        assert_eq!(
            parse_timestamp("2026-11-22T10:00:00.5Z"),
            Some(T + 500_000_000)
        );
        assert_eq!(
            parse_timestamp("2026-11-22 10:00:00,123"),
            Some(T + 123_000_000)
        );
        assert_eq!(
            parse_timestamp("2026-11-22T10:00:00.123456789123+00:00"),
            Some(T + 123_456_789)
        );
        assert_eq!(
            parse_timestamp("2026-11-22T10:00:00.000001Z"),
            Some(T + 1_000)
        );
    }

    #[test]
    fn unix_numbers_by_magnitude() {
        let s = T / NANOS;
        assert_eq!(parse_timestamp(&s.to_string()), Some(T));
        assert_eq!(
            parse_timestamp(&(s * 1000 + 5).to_string()),
            Some(T + 5_000_000)
        );
        assert_eq!(
            parse_timestamp(&(s * 1_000_000 + 5).to_string()),
            Some(T + 5_000)
        );
        assert_eq!(parse_timestamp(&(T + 5).to_string()), Some(T + 5));
        assert_eq!(parse_timestamp(&format!("{s}.25")), Some(T + 250_000_000));
        assert_eq!(from_unix_float(s as f64 + 0.5), Some(T + 500_000_000));
        assert_eq!(from_unix_float((s * 1000) as f64), Some(T));
        assert_eq!(from_unix_float(s as f64 + 0.123), Some(T + 123_000_000));
        assert_eq!(from_unix_float(1e300), None);
        assert_eq!(from_unix_int(i64::try_from(s).unwrap()), Some(T));
        assert_eq!(parse_timestamp("12"), None);
        assert_eq!(from_unix_int(-5), None);
        assert_eq!(from_unix_float(f64::NAN), None);
        assert_eq!(parse_timestamp("1.2.3"), None);
        assert_eq!(parse_timestamp("99999999999999999999999"), None);
    }

    #[test]
    fn numbers_at_the_top_of_the_range_do_not_overflow() {
        // Whole seconds that just fit in u64 nanoseconds, plus a fraction that does not.
        assert_eq!(parse_timestamp("18446744073.999999999"), None);
        assert_eq!(parse_timestamp("18446744073.709551615"), Some(u64::MAX));
        assert_eq!(parse_timestamp("99999999999.9"), None);
        assert_eq!(from_unix_int(i64::MAX), Some(i64::MAX as u64));
        assert_eq!(from_unix_float(1.8446744073e10 + 0.9999), None);
        assert_eq!(from_unix_float(f64::MAX), None);
        assert_eq!(from_unix_float(f64::INFINITY), None);
        for s in [
            "9999-12-31T23:59:59.999999999-23:59",
            "9999-12-31T23:59:59Z",
            "0000-01-01T00:00:00+23:59",
            "31/Dec/9999:23:59:59 -2359",
        ] {
            // Past what u64 nanoseconds hold, or before 1970: no time, no panic.
            let _ = parse_timestamp(s);
        }
    }

    #[test]
    fn access_log_form() {
        assert_eq!(parse_timestamp("22/Nov/2026:10:00:00 +0000"), Some(T));
        assert_eq!(parse_timestamp("22/nov/2026:12:00:00 +0200"), Some(T));
        assert_eq!(parse_timestamp("22/Foo/2026:12:00:00 +0200"), None);
    }

    #[test]
    fn rejects_non_times() {
        for s in [
            "",
            "   ",
            "hello",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-22T25:00:00Z",
            "2026-11-22T10:00:00Zjunk",
            "2026-11-22X",
            "1969-12-31T23:59:59Z",
            "2026-11-22T10:",
            "２０２６",
        ] {
            assert_eq!(parse_timestamp(s), None, "{s}");
        }
    }

    #[test]
    fn prefix_scan_reports_length() {
        let line = b"2026-11-22T10:00:00.250Z ERROR boom";
        assert_eq!(scan_prefix(line), Some((T + 250_000_000, 24)));
        let line = b"2026-11-22 10:00:00,123 INFO x";
        assert_eq!(scan_prefix(line), Some((T + 123_000_000, 23)));
        assert_eq!(scan_prefix(b"ERROR boom"), None);
        assert_eq!(
            scan_prefix(b"2026-11-22 "),
            Some((T - 10 * 3600 * NANOS, 10))
        );
    }
}
