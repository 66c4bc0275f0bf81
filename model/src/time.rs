//! Time arguments as people type them: RFC 3339 (`2026-11-22T03:00:00Z`), relative to now
//! (`15m`, `2h`, `1d` meaning that long ago), `now`, or Unix nanoseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, now.
pub fn now_unix_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch, now: the wall clock, for timestamps that are stored or
/// shown. A clock set before 1970 reads 0, as [`now_unix_nano`] does.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Parses a point in time. `now_nano` is what relative forms count back from.
///
/// Accepts `now`, a duration (`90s`, `15m`, `2h`, `1d`, `1h30m`) meaning that long before now,
/// an RFC 3339 timestamp, or a bare integer of Unix nanoseconds.
pub fn parse_time(text: &str, now_nano: u64) -> Result<u64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty time".into());
    }
    if t == "now" {
        return Ok(now_nano);
    }
    if let Ok(n) = t.parse::<u64>() {
        return Ok(n);
    }
    if let Ok(d) = parse_duration(t) {
        let back = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        return Ok(now_nano.saturating_sub(back));
    }
    match humantime::parse_rfc3339_weak(t) {
        Ok(st) => Ok(st
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)),
        Err(_) => Err(format!(
            "cannot read time '{t}': use RFC 3339 (2026-11-22T03:00:00Z), a relative time such as 15m, 2h or 1d, or 'now'"
        )),
    }
}

/// The longest duration [`parse_duration`] accepts: 100 years. Every duration a person
/// types (a time range, a retention, a rule's `for`, a silence) is far shorter; the bound keeps
/// arithmetic on instants, Unix nanoseconds (`i64` and `u64`) and timers from overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parses a duration such as `250ms`, `1.5s`, `15m`, `2h`, `1d`, at most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let d = parse_duration_unbounded(t)?;
    if d > MAX_DURATION {
        return Err(format!(
            "duration '{t}' is too long: the most is 100 years (36500d)"
        ));
    }
    Ok(d)
}

fn parse_duration_unbounded(t: &str) -> Result<Duration, String> {
    // humantime does not take fractions; "1.5s" is common enough to support here.
    if let Some(num) = t.strip_suffix('s')
        && !num.ends_with('m')
        && !num.ends_with('n')
        && !num.ends_with('u')
        && !num.ends_with('µ')
        && let Ok(secs) = num.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        // try_: a finite number can still be past what a Duration holds (1e20s).
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("duration '{t}' is too long: the most is 100 years (36500d)"));
    }
    humantime::parse_duration(t).map_err(|e| {
        format!("cannot read duration '{t}': {e}; use forms such as 250ms, 2s, 15m, 2h, 1d")
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000_000_000;

    #[test]
    fn now_ms_is_the_nanosecond_clock_in_milliseconds() {
        let before = now_unix_nano() / 1_000_000;
        let ms = now_ms();
        let after = now_unix_nano() / 1_000_000;
        assert!(
            before as i64 <= ms && ms <= after as i64,
            "{before} {ms} {after}"
        );
    }

    #[test]
    fn relative_times_count_back_from_now() {
        assert_eq!(
            parse_time("15m", NOW).unwrap(),
            NOW - 15 * 60 * 1_000_000_000
        );
        assert_eq!(
            parse_time("2h", NOW).unwrap(),
            NOW - 2 * 3600 * 1_000_000_000
        );
        assert_eq!(parse_time("now", NOW).unwrap(), NOW);
    }

    #[test]
    fn rfc3339_and_nanos() {
        assert_eq!(
            parse_time("2026-11-22T03:00:00Z", NOW).unwrap(),
            1_795_316_400_000_000_000
        );
        assert_eq!(parse_time("42", NOW).unwrap(), 42);
        assert!(
            parse_time("yesterday-ish", NOW)
                .unwrap_err()
                .contains("RFC 3339")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn huge_durations_are_an_error_not_a_panic() {
        for t in [
            "1e20s",
            "1e300s",
            "18446744073709551615s",
            "99999999999999d",
            "36501d",
        ] {
            let e = parse_duration(t).unwrap_err();
            assert!(
                e.contains("too long") || e.contains("cannot read"),
                "{t}: {e}"
            );
            // The same text as a point in time is refused too, never a panic.
            assert!(parse_time(t, NOW).is_err(), "{t}");
        }
        assert_eq!(parse_duration("36500d").unwrap(), MAX_DURATION);
        assert!(parse_duration("1e9s").is_ok());
    }
}
