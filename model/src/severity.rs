//! OTLP severity numbers and the level names that stand for them.
//!
//! One table serves both readers of level names: severity filters (`--severity`, the query
//! API), which take only the six standard names plus `warning` and `critical`, and the
//! agent's log parser, which also knows the other spellings seen in logs. Names of any ASCII
//! case map to the lowest number of their OTLP range (TRACE 1, DEBUG 5, INFO 9, WARN 13,
//! ERROR 17, FATAL 21); syslog's NOTICE is INFO2 (10).

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

/// Who accepts a level name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Severity filters and log lines.
    Standard,
    /// Log lines only: other spellings that programs write.
    Alias,
    /// Log lines only, and only in a level field: in free text a single letter is a word.
    Letter,
}

/// Every level name, in lower case, with its severity number.
const NAMES: &[(&str, i32, Kind)] = &[
    ("trace", TRACE, Kind::Standard),
    ("trc", TRACE, Kind::Alias),
    ("verbose", TRACE, Kind::Alias),
    ("finest", TRACE, Kind::Alias),
    ("finer", TRACE, Kind::Alias),
    ("t", TRACE, Kind::Letter),
    ("debug", DEBUG, Kind::Standard),
    ("dbg", DEBUG, Kind::Alias),
    ("fine", DEBUG, Kind::Alias),
    ("d", DEBUG, Kind::Letter),
    ("info", INFO, Kind::Standard),
    ("inf", INFO, Kind::Alias),
    ("information", INFO, Kind::Alias),
    ("informational", INFO, Kind::Alias),
    ("i", INFO, Kind::Letter),
    ("notice", INFO2, Kind::Alias),
    ("warn", WARN, Kind::Standard),
    ("warning", WARN, Kind::Standard),
    ("wrn", WARN, Kind::Alias),
    ("w", WARN, Kind::Letter),
    ("error", ERROR, Kind::Standard),
    ("err", ERROR, Kind::Alias),
    ("eror", ERROR, Kind::Alias),
    ("severe", ERROR, Kind::Alias),
    ("e", ERROR, Kind::Letter),
    ("fatal", FATAL, Kind::Standard),
    ("critical", FATAL, Kind::Standard),
    ("crit", FATAL, Kind::Alias),
    ("panic", FATAL, Kind::Alias),
    ("emerg", FATAL, Kind::Alias),
    ("emergency", FATAL, Kind::Alias),
    ("alert", FATAL, Kind::Alias),
    ("f", FATAL, Kind::Letter),
];

/// The number of `name` among the table's names of the given kinds.
fn lookup(name: &str, accept: impl Fn(Kind) -> bool) -> Option<i32> {
    NAMES
        .iter()
        .find(|(n, _, kind)| accept(*kind) && n.eq_ignore_ascii_case(name))
        .map(|(_, number, _)| *number)
}

/// The conventional name of an OTLP severity number (`ERROR` for 17 to 20, and so on), or
/// `""` outside 1 to 24.
pub fn severity_name(n: i32) -> &'static str {
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

/// The lowest severity number of a level name (`error` → 17), for severity filters. Only
/// the standard names count, untrimmed.
pub fn severity_number_of(name: &str) -> Option<i32> {
    lookup(name, |k| k == Kind::Standard)
}

/// The severity number of a level name found in a log line (`WRN` → 13), trimmed, or `None`
/// for a word that is not one. Single letters (`I`, `W`, `E`, `D`, `T`, `F`) count only when
/// `letters` is set: in free text they are words, in a `level` field they are levels.
pub fn log_level_number(name: &str, letters: bool) -> Option<i32> {
    lookup(name.trim(), |k| k != Kind::Letter || letters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_take_only_the_standard_names() {
        for (s, n) in [
            ("trace", 1),
            ("DEBUG", 5),
            ("Info", 9),
            ("warn", 13),
            ("WARNING", 13),
            ("error", 17),
            ("fatal", 21),
            ("critical", 21),
        ] {
            assert_eq!(severity_number_of(s), Some(n), "{s}");
        }
        for s in ["err", "notice", "e", " info", "", "loud"] {
            assert_eq!(severity_number_of(s), None, "{s}");
        }
    }

    #[test]
    fn logs_take_every_spelling() {
        assert_eq!(log_level_number(" WRN ", false), Some(WARN));
        assert_eq!(log_level_number("Notice", false), Some(INFO2));
        assert_eq!(log_level_number("informational", false), Some(INFO));
        assert_eq!(log_level_number("f", true), Some(FATAL));
        assert_eq!(log_level_number("f", false), None);
        assert_eq!(log_level_number("ÉRROR", true), None);
    }

    #[test]
    fn names_of_numbers() {
        assert_eq!(severity_name(17), "ERROR");
        assert_eq!(severity_name(24), "FATAL");
        assert_eq!(severity_name(0), "");
        assert_eq!(severity_name(25), "");
    }
}
