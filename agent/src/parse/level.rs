//! Log levels to OTLP severity numbers.
//!
//! Names of any case map to the lowest number of their OTLP range (TRACE 1, DEBUG 5, INFO 9,
//! WARN 13, ERROR 17, FATAL 21); syslog's NOTICE is INFO2 (10). Numbers follow bunyan and
//! pino (10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal).

/// OTLP severity number of TRACE.
pub const TRACE: i32 = 1;
/// OTLP severity number of DEBUG.
pub const DEBUG: i32 = 5;
/// OTLP severity number of INFO.
pub const INFO: i32 = 9;
/// OTLP severity number of INFO2, used for NOTICE.
pub const INFO2: i32 = 10;
/// OTLP severity number of WARN.
pub const WARN: i32 = 13;
/// OTLP severity number of ERROR.
pub const ERROR: i32 = 17;
/// OTLP severity number of FATAL.
pub const FATAL: i32 = 21;

/// The severity number of a level name, or `None` for a word that is not one. Single letters
/// (`I`, `W`, `E`, `D`, `T`, `F`) count only when `letters` is set: in free text they are
/// words, in a `level` field they are levels.
pub fn severity_of_name(name: &str, letters: bool) -> Option<i32> {
    let name = name.trim();
    let b = name.as_bytes();
    if b.is_empty() || b.len() > 13 {
        return None;
    }
    let mut buf = [0u8; 13];
    for (d, s) in buf.iter_mut().zip(b) {
        *d = s.to_ascii_lowercase();
    }
    Some(match &buf[..b.len()] {
        b"trace" | b"trc" | b"verbose" | b"finest" | b"finer" => TRACE,
        b"debug" | b"dbg" | b"fine" => DEBUG,
        b"info" | b"inf" | b"information" | b"informational" => INFO,
        b"notice" => INFO2,
        b"warn" | b"warning" | b"wrn" => WARN,
        b"error" | b"err" | b"eror" | b"severe" => ERROR,
        b"fatal" | b"critical" | b"crit" | b"panic" | b"emerg" | b"emergency" | b"alert" => FATAL,
        b"t" if letters => TRACE,
        b"d" if letters => DEBUG,
        b"i" if letters => INFO,
        b"w" if letters => WARN,
        b"e" if letters => ERROR,
        b"f" if letters => FATAL,
        _ => return None,
    })
}

/// The severity number of a numeric level (bunyan / pino scale), or `None` below 10.
pub fn severity_of_number(n: i64) -> Option<i32> {
    Some(match n {
        ..10 => return None,
        10..20 => TRACE,
        20..30 => DEBUG,
        30..40 => INFO,
        40..50 => WARN,
        50..60 => ERROR,
        _ => FATAL,
    })
}

/// The canonical name of a severity number (`17` → `ERROR`).
pub fn canonical_name(n: i32) -> &'static str {
    match n {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_any_case() {
        for (s, n) in [
            ("TRACE", 1),
            ("debug", 5),
            ("Info", 9),
            ("NOTICE", 10),
            ("WARN", 13),
            ("warning", 13),
            ("ERROR", 17),
            ("err", 17),
            ("CRITICAL", 21),
            ("fatal", 21),
            ("PANIC", 21),
            ("emerg", 21),
            ("ALERT", 21),
            (" info ", 9),
        ] {
            assert_eq!(severity_of_name(s, false), Some(n), "{s}");
        }
        assert_eq!(severity_of_name("E", true), Some(17));
        assert_eq!(severity_of_name("w", true), Some(13));
        assert_eq!(severity_of_name("E", false), None);
        assert_eq!(severity_of_name("", true), None);
        assert_eq!(severity_of_name("loud", true), None);
        assert_eq!(severity_of_name("averyveryverylongword", true), None);
        assert_eq!(severity_of_name("ÉRROR", true), None);
    }

    #[test]
    fn bunyan_numbers() {
        assert_eq!(severity_of_number(10), Some(TRACE));
        assert_eq!(severity_of_number(20), Some(DEBUG));
        assert_eq!(severity_of_number(30), Some(INFO));
        assert_eq!(severity_of_number(40), Some(WARN));
        assert_eq!(severity_of_number(50), Some(ERROR));
        assert_eq!(severity_of_number(60), Some(FATAL));
        assert_eq!(severity_of_number(3), None);
        assert_eq!(severity_of_number(-1), None);
        assert_eq!(canonical_name(severity_of_number(35).unwrap_or(0)), "INFO");
    }
}
