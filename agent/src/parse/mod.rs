//! Line parsing: one record's text to an OTLP `LogRecord`.
//!
//! A [`Parser`] is built once per source from its [`Format`] (and regex) and then turns each
//! record's text into a [`Parsed`] record. Parsing never fails: a line that does not parse in
//! its format keeps its text as the body and is marked `parsed == false` (the caller counts
//! those). Whatever the format, the fields are then lifted the same way ([`lift`]): message,
//! timestamp, level and trace context move into the record's own fields, everything else
//! stays an attribute under its original name (so the collector can find request IDs in it).
//!
//! - [`json`]: one JSON object a line, read straight into attributes.
//! - [`logfmt`]: `key=value` pairs.
//! - regex: named groups of the source's regex.
//! - plain: the line is the body; a leading timestamp and level word are lifted.
//! - auto: JSON when the line starts with `{`, logfmt when its first word is `key=value`, else
//!   plain.

pub mod json;
pub mod level;
pub mod lift;
pub mod logfmt;
pub mod time;

use crate::config::Format;
use lift::{finish, key_value, string_value};
use skein_model::proto::logs::v1::LogRecord;

/// A parsed record.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The OTLP record: body, time, severity, trace context and attributes.
    pub record: LogRecord,
    /// False when the text did not parse in the source's format; the body is then the text.
    pub parsed: bool,
}

/// A source's parser, compiled once.
#[derive(Debug, Clone)]
pub struct Parser {
    format: Format,
    regex: Option<Regex>,
}

/// A compiled regex and its group names (index, name), the unnamed groups left out.
#[derive(Debug, Clone)]
struct Regex {
    re: regex::Regex,
    names: Vec<(usize, String)>,
}

impl Parser {
    /// A parser for `format`. `regex` (named groups) is required for [`Format::Regex`] and
    /// ignored otherwise; an invalid regex, or one without named groups, is an error.
    pub fn new(format: Format, regex: Option<&str>) -> Result<Parser, String> {
        let regex = match (format, regex) {
            (Format::Regex, None) => {
                return Err("format \"regex\" needs a regex with named groups".into());
            }
            (Format::Regex, Some(pattern)) => {
                let re = regex::Regex::new(pattern)
                    .map_err(|e| format!("regex \"{pattern}\" is not a regular expression: {e}"))?;
                let names: Vec<(usize, String)> = re
                    .capture_names()
                    .enumerate()
                    .filter_map(|(i, n)| n.map(|n| (i, n.to_string())))
                    .collect();
                if names.is_empty() {
                    return Err(format!(
                        "regex \"{pattern}\" has no named groups such as (?P<msg>.*)"
                    ));
                }
                Some(Regex { re, names })
            }
            _ => None,
        };
        Ok(Parser { format, regex })
    }

    /// Parses one record's text. Never fails: a line that does not parse in the format is
    /// returned with its text as the body and `parsed == false`.
    pub fn parse(&self, text: &str, observed_unix_nano: u64) -> Parsed {
        match self.format {
            Format::Json => match json::parse_object(text) {
                Some(attrs) => parsed(finish(attrs, text, observed_unix_nano)),
                None => unparsed(text, observed_unix_nano),
            },
            Format::Logfmt => match logfmt::parse_pairs(text) {
                Some(attrs) => parsed(finish(attrs, text, observed_unix_nano)),
                None => unparsed(text, observed_unix_nano),
            },
            Format::Regex => match self.regex.as_ref().and_then(|r| regex_groups(r, text)) {
                Some(attrs) => parsed(finish(attrs, text, observed_unix_nano)),
                None => unparsed(text, observed_unix_nano),
            },
            Format::Plain => parsed(plain(text, observed_unix_nano)),
            Format::Auto => {
                if text.trim_start().starts_with('{') {
                    match json::parse_object(text) {
                        Some(attrs) => parsed(finish(attrs, text, observed_unix_nano)),
                        None => Parsed {
                            record: plain(text, observed_unix_nano),
                            parsed: false,
                        },
                    }
                } else if logfmt::starts_with_pair(text)
                    && let Some(attrs) = logfmt::parse_pairs(text)
                {
                    parsed(finish(attrs, text, observed_unix_nano))
                } else {
                    parsed(plain(text, observed_unix_nano))
                }
            }
        }
    }
}

fn parsed(record: LogRecord) -> Parsed {
    Parsed {
        record,
        parsed: true,
    }
}

/// The text as the body, nothing lifted.
fn unparsed(text: &str, observed_unix_nano: u64) -> Parsed {
    Parsed {
        record: LogRecord {
            observed_time_unix_nano: observed_unix_nano,
            body: Some(string_value(text.to_string())),
            ..Default::default()
        },
        parsed: false,
    }
}

/// The named groups that took part in the match, as string attributes.
fn regex_groups(r: &Regex, text: &str) -> Option<Vec<skein_model::proto::common::v1::KeyValue>> {
    let caps = r.re.captures(text)?;
    Some(
        r.names
            .iter()
            .filter_map(|(i, name)| {
                caps.get(*i)
                    .map(|m| key_value(name.clone(), string_value(m.as_str().to_string())))
            })
            .collect(),
    )
}

/// A plain line: the whole line is the body. A leading timestamp (optionally in `[]`) and a
/// level word after it or at the start (optionally in `[]`, or followed by `:`) are lifted.
fn plain(text: &str, observed_unix_nano: u64) -> LogRecord {
    let mut rec = LogRecord {
        observed_time_unix_nano: observed_unix_nano,
        ..Default::default()
    };
    let b = text.as_bytes();
    let mut i = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    let bracket = b.get(i) == Some(&b'[');
    if let Some((t, used)) = time::scan_prefix(&b[i + usize::from(bracket)..]) {
        let end = i + usize::from(bracket) + used;
        let end = if bracket && b.get(end) == Some(&b']') {
            end + 1
        } else {
            end
        };
        // The time must end its word: `2026-11-22T10:00:00Zfoo` is not a timestamp.
        if b.get(end).is_none_or(|c| c.is_ascii_whitespace()) {
            rec.time_unix_nano = t;
            i = end;
        }
    }
    i += b[i..]
        .iter()
        .take_while(|c| c.is_ascii_whitespace())
        .count();
    let word_len = b[i..]
        .iter()
        .take_while(|c| !c.is_ascii_whitespace())
        .count();
    // `i` and `i + word_len` sit next to ASCII whitespace or the ends, so on char boundaries.
    if let Some(word) = text.get(i..i + word_len) {
        let word = word
            .strip_prefix('[')
            .and_then(|w| w.strip_suffix(']'))
            .or_else(|| word.strip_suffix(':'))
            .unwrap_or(word);
        if let Some(n) = level::severity_of_name(word, false) {
            rec.severity_number = n;
            rec.severity_text = word.to_string();
        }
    }
    rec.body = Some(string_value(text.to_string()));
    rec
}

#[cfg(test)]
mod tests;
