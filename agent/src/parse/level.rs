//! Log levels to OTLP severity numbers.
//!
//! Level names come from the model's one table ([`skein_model::severity`]): names of any case
//! map to the lowest number of their OTLP range (TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17,
//! FATAL 21); syslog's NOTICE is INFO2 (10). Numbers follow bunyan and pino (10 trace,
//! 20 debug, 30 info, 40 warn, 50 error, 60 fatal).

pub use skein_model::severity::{DEBUG, ERROR, FATAL, INFO, INFO2, TRACE, WARN};

/// The severity number of a level name, or `None` for a word that is not one. Single letters
/// (`I`, `W`, `E`, `D`, `T`, `F`) count only when `letters` is set: in free text they are
/// words, in a `level` field they are levels.
pub fn severity_of_name(name: &str, letters: bool) -> Option<i32> {
    skein_model::severity::log_level_number(name, letters)
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
    skein_model::severity::severity_name(n)
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
