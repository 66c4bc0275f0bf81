//! Label functions (`label_replace`, `label_join`) and date functions (`year`, `month`,
//! `day_of_month`, `day_of_week`, `day_of_year`, `days_in_month`, `hour`, `minute`). Dates are
//! computed the way Go's `time` package does (UTC, proleptic Gregorian calendar, seconds
//! counted from Go's absolute zero), so out-of-range inputs give what Prometheus gives.

use super::functions::Func;
use super::series::valid_label_name;
use crate::promql::PromError;
use skein_model::metric::Labels;

/// The relabelling of `label_replace(v, dst, replacement, src, regex)`: when `regex` matches
/// the whole value of `src`, `dst` is set to the expanded replacement (removed when empty).
pub(crate) fn label_replace(
    dst: &str,
    repl: &str,
    src: &str,
    re: &str,
) -> Result<impl Fn(&Labels) -> Labels + use<>, PromError> {
    let regex = regex::Regex::new(&format!("^(?:{re})$")).map_err(|_| {
        PromError::execution(format!(
            "invalid regular expression in label_replace(): {re}"
        ))
    })?;
    if !valid_label_name(dst) {
        return Err(PromError::execution(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let (dst, repl, src) = (dst.to_string(), repl.to_string(), src.to_string());
    Ok(move |l: &Labels| {
        let value = l.get(&src).unwrap_or("");
        match regex.captures(value) {
            None => l.clone(),
            Some(caps) => {
                let mut res = String::new();
                caps.expand(&repl, &mut res);
                // `with` drops the label when the value is empty.
                l.with(&dst, &res)
            }
        }
    })
}

/// The relabelling of `label_join(v, dst, separator, src...)`.
pub(crate) fn label_join(
    dst: &str,
    sep: &str,
    srcs: Vec<String>,
) -> Result<impl Fn(&Labels) -> Labels + use<>, PromError> {
    for s in &srcs {
        if !valid_label_name(s) {
            return Err(PromError::execution(format!(
                "invalid source label name in label_join(): {s}"
            )));
        }
    }
    if !valid_label_name(dst) {
        return Err(PromError::execution(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let (dst, sep) = (dst.to_string(), sep.to_string());
    Ok(move |l: &Labels| {
        let joined = srcs
            .iter()
            .map(|s| l.get(s).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&sep);
        l.with(&dst, &joined)
    })
}

/// Go's `int64(f)` on amd64: truncation, and the minimum int64 for NaN, infinities and
/// values out of range.
pub(crate) fn go_float_to_i64(v: f64) -> i64 {
    // Both bounds are ±2^63 as floats.
    if v.is_nan() || !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&v) {
        i64::MIN
    } else {
        v.trunc() as i64
    }
}

const SECONDS_PER_DAY: u64 = 86_400;
const DAYS_PER_400_YEARS: u64 = 365 * 400 + 97;
const DAYS_PER_100_YEARS: u64 = 365 * 100 + 24;
const DAYS_PER_4_YEARS: u64 = 365 * 4 + 1;
/// Go's year of its absolute zero time.
const ABSOLUTE_ZERO_YEAR: i64 = -292_277_022_399;
/// Seconds from the Unix epoch to Go's absolute zero time, negated.
const UNIX_TO_ABSOLUTE: i64 = 9_223_372_028_715_321_600;

/// Seconds since Go's absolute zero (wrapping as Go's int64 arithmetic does).
fn absolute(unix: i64) -> u64 {
    unix.wrapping_add(UNIX_TO_ABSOLUTE) as u64
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// (year, 0-based day of the year) of an absolute time.
fn year_day(abs: u64) -> (i64, u64) {
    let mut d = abs / SECONDS_PER_DAY;
    let mut n = d / DAYS_PER_400_YEARS;
    let mut y = 400 * n;
    d -= DAYS_PER_400_YEARS * n;
    // The last day of a 400-year cycle would count as a fifth century: cap at three.
    n = d / DAYS_PER_100_YEARS;
    n -= n >> 2;
    y += 100 * n;
    d -= DAYS_PER_100_YEARS * n;
    n = d / DAYS_PER_4_YEARS;
    y += 4 * n;
    d -= DAYS_PER_4_YEARS * n;
    n = d / 365;
    n -= n >> 2;
    y += n;
    d -= 365 * n;
    ((y as i64).wrapping_add(ABSOLUTE_ZERO_YEAR), d)
}

/// Days before each month in a common year (index 0 = January; 12 = whole year).
const DAYS_BEFORE: [u64; 13] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];

/// (year, month 1..=12, day 1..=31, day of year 1..=366).
fn date(unix: i64) -> (i64, u64, u64, u64) {
    let (year, yday) = year_day(absolute(unix));
    let mut day = yday;
    if is_leap(year) {
        if day == 31 + 29 - 1 {
            return (year, 2, 29, yday + 1);
        }
        if day > 31 + 29 - 1 {
            day -= 1;
        }
    }
    let month = DAYS_BEFORE
        .iter()
        .skip(1)
        .position(|&end| day < end)
        .unwrap_or(11) as u64;
    let begin = DAYS_BEFORE.get(month as usize).copied().unwrap_or(0);
    (year, month + 1, day - begin + 1, yday + 1)
}

fn days_in_month(year: i64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The part of a date (Unix seconds) a date function returns.
pub(crate) fn date_part(func: Func) -> fn(i64) -> f64 {
    match func {
        Func::Year => |s| date(s).0 as f64,
        Func::Month => |s| date(s).1 as f64,
        Func::DayOfMonth => |s| date(s).2 as f64,
        Func::DayOfYear => |s| date(s).3 as f64,
        Func::DaysInMonth => |s| {
            let (y, m, _, _) = date(s);
            days_in_month(y, m) as f64
        },
        // Go counts weekdays from its absolute zero, a Monday.
        Func::DayOfWeek => |s| {
            ((absolute(s).wrapping_add(SECONDS_PER_DAY) % (7 * SECONDS_PER_DAY)) / SECONDS_PER_DAY)
                as f64
        },
        Func::Hour => |s| ((absolute(s) % SECONDS_PER_DAY) / 3600) as f64,
        Func::Minute => |s| ((absolute(s) % 3600) / 60) as f64,
        _ => |_| f64::NAN,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn promql_dates_of_known_times() {
        // 2024-02-29T13:45:00Z is a Thursday, the 60th day of a leap year.
        let t = 1_709_214_300;
        assert_eq!(date(t), (2024, 2, 29, 60));
        assert_eq!(date_part(Func::DayOfWeek)(t), 4.0);
        assert_eq!(date_part(Func::Hour)(t), 13.0);
        assert_eq!(date_part(Func::Minute)(t), 45.0);
        assert_eq!(date_part(Func::DaysInMonth)(t), 29.0);
        // The epoch: 1970-01-01, a Thursday.
        assert_eq!(date(0), (1970, 1, 1, 1));
        assert_eq!(date_part(Func::DayOfWeek)(0), 4.0);
        // Before the epoch: 1969-12-31T23:59:59Z.
        assert_eq!(date(-1), (1969, 12, 31, 365));
        assert_eq!(date_part(Func::Hour)(-1), 23.0);
        // 2023-12-31 (non-leap, day 365) and 2023-03-01 (day 60).
        assert_eq!(date(1_703_980_800), (2023, 12, 31, 365));
        assert_eq!(date(1_677_628_800), (2023, 3, 1, 60));
        assert_eq!(date_part(Func::DaysInMonth)(1_677_628_800), 31.0);
    }

    #[test]
    fn promql_go_float_conversion() {
        assert_eq!(go_float_to_i64(1.9), 1);
        assert_eq!(go_float_to_i64(-1.9), -1);
        assert_eq!(go_float_to_i64(f64::NAN), i64::MIN);
        assert_eq!(go_float_to_i64(f64::INFINITY), i64::MIN);
    }
}
