//! Annotation templates: literal text with `{{ expr }}` actions, a small subset of the
//! Prometheus (Go) template language.
//!
//! An action reads `$value` (or `.Value`), a label, `$labels.NAME` (or `.Labels.NAME`), or
//! an external label, `$externalLabels.NAME` (or `.ExternalLabels.NAME`, the `[alerts]`
//! section's `external_labels`), and may pass it through functions: `humanize`, `humanizePercentage`, `humanizeDuration`
//! and `printf "FORMAT"`. Both `{{ $value | humanize }}` and `{{ humanize $value }}` work.
//! `{{-` and `-}}` trim the white space next to the action, as in Go.

use std::collections::BTreeMap;

/// Longest template, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 4 * 1024;

const VARIABLES: &str = "$value, $labels.NAME, $externalLabels.NAME, .Value or .Labels.NAME";
const FUNCTIONS: &str = "humanize, humanizePercentage, humanizeDuration or printf";

/// A parsed annotation template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Action(Input, Vec<Func>),
}

#[derive(Debug, Clone, PartialEq)]
enum Input {
    Value,
    Label(String),
    External(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Func {
    Humanize,
    HumanizePercentage,
    HumanizeDuration,
    Printf(Format),
}

/// A `printf` format: text, one verb, text.
#[derive(Debug, Clone, PartialEq)]
struct Format {
    prefix: String,
    verb: Verb,
    suffix: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Verb {
    /// `%f` or `%.Nf`
    Fixed(usize),
    /// `%d`
    Int,
    /// `%s`
    Str,
    /// `%v`
    Value,
    /// `%g` or `%.Ng`
    General(Option<usize>),
}

/// A value flowing through an action's functions.
enum Val {
    Num(f64),
    Str(String),
}

impl Val {
    fn num(&self) -> Option<f64> {
        match self {
            Val::Num(v) => Some(*v),
            Val::Str(s) => s.trim().parse().ok(),
        }
    }

    fn into_string(self) -> String {
        match self {
            Val::Num(v) => go_float(v, None),
            Val::Str(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Pipe,
}

impl Template {
    /// Parses a template; the error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Template, String> {
        if text.len() > MAX_TEMPLATE_BYTES {
            return Err(format!(
                "template is {} bytes; the most is {MAX_TEMPLATE_BYTES}",
                text.len()
            ));
        }
        let mut parts = Vec::new();
        let mut pos = 0;
        let mut trim_next = false;
        while let Some(found) = text[pos..].find("{{") {
            let open = pos + found;
            let body_start = open + 2;
            let close = find_close(text, body_start).ok_or_else(|| {
                format!("unclosed '{{{{' at byte {open}: end the action with '}}}}'")
            })?;
            let mut body = &text[body_start..close];
            let trim_left = body.starts_with('-') && body[1..].starts_with(char::is_whitespace);
            let trim_right =
                body.ends_with('-') && body[..body.len() - 1].ends_with(char::is_whitespace);
            if trim_left {
                body = &body[1..];
            }
            if trim_right {
                body = &body[..body.len() - 1];
            }
            let mut lit = &text[pos..open];
            if trim_next {
                lit = lit.trim_start();
            }
            if trim_left {
                lit = lit.trim_end();
            }
            push_text(&mut parts, lit);
            let (input, funcs) =
                parse_action(body).map_err(|e| format!("in action at byte {open}: {e}"))?;
            parts.push(Part::Action(input, funcs));
            trim_next = trim_right;
            pos = close + 2;
        }
        let mut lit = &text[pos..];
        if trim_next {
            lit = lit.trim_start();
        }
        push_text(&mut parts, lit);
        Ok(Template {
            source: text.to_string(),
            parts,
        })
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders with the alert's labels and value. Never fails: a missing label renders "".
    pub fn render(&self, labels: &BTreeMap<String, String>, value: f64) -> String {
        self.render_with(labels, value, &BTreeMap::new())
    }

    /// As [`Self::render`], with the external labels `$externalLabels.NAME` reads.
    pub fn render_with(
        &self,
        labels: &BTreeMap<String, String>,
        value: f64,
        external: &BTreeMap<String, String>,
    ) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Action(input, funcs) => {
                    let mut val = match input {
                        Input::Value => Val::Num(value),
                        Input::Label(name) => {
                            Val::Str(labels.get(name).cloned().unwrap_or_default())
                        }
                        Input::External(name) => {
                            Val::Str(external.get(name).cloned().unwrap_or_default())
                        }
                    };
                    for f in funcs {
                        val = apply(f, val);
                    }
                    out.push_str(&val.into_string());
                }
            }
        }
        out
    }
}

fn push_text(parts: &mut Vec<Part>, lit: &str) {
    if !lit.is_empty() {
        parts.push(Part::Text(lit.to_string()));
    }
}

/// Byte index of the `}}` closing an action whose body starts at `start`, skipping quoted
/// strings.
fn find_close(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = start;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(b'"') if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'`' => quote = Some(b),
            None if b == b'}' && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

fn tokenize(body: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '|' {
            chars.next();
            toks.push(Tok::Pipe);
        } else if c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated string".to_string()),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some('\\') => s.push('\\'),
                        Some('"') => s.push('"'),
                        Some(other) => return Err(format!("unknown escape '\\{other}' in string")),
                        None => return Err("unterminated string".to_string()),
                    },
                    Some(ch) => s.push(ch),
                }
            }
            toks.push(Tok::Str(s));
        } else if c == '`' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated raw string".to_string()),
                    Some('`') => break,
                    Some(ch) => s.push(ch),
                }
            }
            toks.push(Tok::Str(s));
        } else if c == '(' || c == ')' {
            return Err(
                "parentheses are not supported; use a pipeline such as $value | humanize"
                    .to_string(),
            );
        } else {
            let mut w = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || matches!(ch, '|' | '"' | '`' | '(' | ')') {
                    break;
                }
                w.push(ch);
                chars.next();
            }
            toks.push(Tok::Word(w));
        }
    }
    Ok(toks)
}

fn parse_action(body: &str) -> Result<(Input, Vec<Func>), String> {
    let toks = tokenize(body)?;
    if toks.is_empty() {
        return Err(format!(
            "empty action '{{{{ }}}}': write one of {VARIABLES}"
        ));
    }
    let mut commands: Vec<&[Tok]> = toks.split(|t| *t == Tok::Pipe).collect();
    if commands.iter().any(|c| c.is_empty()) {
        return Err("empty command in pipeline: write 'X | function'".to_string());
    }
    let first = commands.remove(0);
    let mut funcs = Vec::new();
    let input = match first {
        [Tok::Word(w)] => parse_input(w)?,
        [Tok::Word(name), args @ .., Tok::Word(last)] if is_function(name) => {
            let input = parse_input(last)?;
            funcs.push(parse_func(name, args)?);
            input
        }
        [Tok::Word(w), ..] => {
            return Err(if is_function(w) {
                format!("function '{w}' needs a value, as in {{{{ $value | {w} }}}}")
            } else {
                format!("unexpected words after '{w}': pass a value to a function with '|'")
            });
        }
        _ => return Err(format!("an action starts with one of {VARIABLES}")),
    };
    for cmd in commands {
        match cmd {
            [Tok::Word(name), args @ ..] => funcs.push(parse_func(name, args)?),
            _ => return Err(format!("after '|' write a function: {FUNCTIONS}")),
        }
    }
    Ok((input, funcs))
}

fn is_function(name: &str) -> bool {
    matches!(
        name,
        "humanize" | "humanizePercentage" | "humanizeDuration" | "printf"
    )
}

fn parse_input(word: &str) -> Result<Input, String> {
    match word {
        "$value" | ".Value" => return Ok(Input::Value),
        "$labels" | ".Labels" | "$externalLabels" | ".ExternalLabels" => {
            return Err(format!("'{word}' needs a label name, as in {word}.service"));
        }
        _ => {}
    }
    if let Some(name) = word
        .strip_prefix("$externalLabels.")
        .or_else(|| word.strip_prefix(".ExternalLabels."))
    {
        if valid_label(name) {
            return Ok(Input::External(name.to_string()));
        }
        return Err(format!("'{name}' in '{word}' is not a label name"));
    }
    if let Some(name) = word
        .strip_prefix("$labels.")
        .or_else(|| word.strip_prefix(".Labels."))
    {
        if valid_label(name) {
            return Ok(Input::Label(name.to_string()));
        }
        return Err(format!("'{name}' in '{word}' is not a label name"));
    }
    if word.starts_with('$') || word.starts_with('.') {
        return Err(format!("unknown variable '{word}': use {VARIABLES}"));
    }
    if is_function(word) {
        return Err(format!(
            "function '{word}' needs a value, as in {{{{ $value | {word} }}}}"
        ));
    }
    Err(format!(
        "unknown variable or function '{word}': use {VARIABLES}, then functions {FUNCTIONS}"
    ))
}

fn valid_label(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn parse_func(name: &str, args: &[Tok]) -> Result<Func, String> {
    let f = match name {
        "humanize" => Func::Humanize,
        "humanizePercentage" => Func::HumanizePercentage,
        "humanizeDuration" => Func::HumanizeDuration,
        "printf" => {
            return match args {
                [Tok::Str(fmt)] => Ok(Func::Printf(parse_format(fmt)?)),
                _ => Err("printf takes one quoted format, as in printf \"%.2f\"".to_string()),
            };
        }
        _ => return Err(format!("unknown function '{name}': use {FUNCTIONS}")),
    };
    if !args.is_empty() {
        return Err(format!("{name} takes no arguments"));
    }
    Ok(f)
}

fn parse_format(fmt: &str) -> Result<Format, String> {
    let bad = || {
        format!(
            "printf format {fmt:?} must hold exactly one of %.Nf, %f, %d, %s, %v, %g (%% for '%')"
        )
    };
    let mut prefix = String::new();
    let mut suffix = String::new();
    let mut verb = None;
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        let out = if verb.is_some() {
            &mut suffix
        } else {
            &mut prefix
        };
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        if verb.is_some() {
            return Err(bad());
        }
        let mut precision = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut digits = String::new();
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                digits.push(d);
                chars.next();
            }
            let p: usize = digits.parse().map_err(|_| bad())?;
            if p > 20 {
                return Err(format!("printf precision {p} is too large; the most is 20"));
            }
            precision = Some(p);
        }
        verb = Some(match (chars.next(), precision) {
            (Some('f'), p) => Verb::Fixed(p.unwrap_or(6)),
            (Some('g'), p) => Verb::General(p),
            (Some('d'), None) => Verb::Int,
            (Some('s'), None) => Verb::Str,
            (Some('v'), None) => Verb::Value,
            _ => return Err(bad()),
        });
    }
    let verb = verb.ok_or_else(bad)?;
    Ok(Format {
        prefix,
        verb,
        suffix,
    })
}

fn apply(f: &Func, val: Val) -> Val {
    if let Func::Printf(fmt) = f {
        return Val::Str(printf(fmt, &val));
    }
    let Some(v) = val.num() else {
        // Not a number (such as a label's text): left as it is.
        return val;
    };
    Val::Str(match f {
        Func::HumanizePercentage => format!("{}%", go_float(v * 100.0, Some(4))),
        Func::HumanizeDuration => humanize_duration(v),
        _ => humanize(v),
    })
}

fn printf(fmt: &Format, val: &Val) -> String {
    let body = match (fmt.verb, val, val.num()) {
        (Verb::Str | Verb::Value, Val::Str(s), _) | (_, Val::Str(s), None) => s.clone(),
        (Verb::Str | Verb::Value | Verb::General(None), _, Some(v)) => go_float(v, None),
        (Verb::General(p), _, Some(v)) => go_float(v, p),
        (Verb::Fixed(p), _, Some(v)) => match special(v) {
            Some(s) => s.to_string(),
            None => format!("{v:.p$}"),
        },
        (Verb::Int, _, Some(v)) => match special(v) {
            Some(s) => s.to_string(),
            None => format!("{}", v.round() as i64),
        },
        (_, Val::Num(v), None) => go_float(*v, None),
    };
    format!("{}{body}{}", fmt.prefix, fmt.suffix)
}

/// SI prefixes, as Prometheus' `humanize`: 1234567 is "1.235M", 0.00123 is "1.23m".
fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return go_float(v, Some(4));
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", go_float(v, Some(4)))
}

/// Seconds as Prometheus' `humanizeDuration`: "1m 30s", "250ms", "2h 0m 5s".
fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return go_float(v, Some(4));
    }
    if v == 0.0 {
        return "0s".to_string();
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let total = v as i64;
        let (secs, mins, hours, days) = (
            total % 60,
            total / 60 % 60,
            total / 3600 % 24,
            total / 86_400,
        );
        return if days != 0 {
            format!("{sign}{days}d {hours}h {mins}m {secs}s")
        } else if hours != 0 {
            format!("{sign}{hours}h {mins}m {secs}s")
        } else if mins != 0 {
            format!("{sign}{mins}m {secs}s")
        } else {
            format!("{sign}{}s", go_float(v, Some(4)))
        };
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", go_float(v, Some(4)))
}

fn special(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("+Inf")
    } else if v == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// A float as Go's `%g`: `precision` significant digits, or with `None` the fewest digits
/// that read back the same (Go's `%v`). The exponent form is used below 1e-4 and from
/// 10^precision (10^6 for the shortest form) on, as Go does: 0.05 is "0.05", 12 is "12",
/// 1234567 is "1.234567e+06".
pub(crate) fn go_float(v: f64, precision: Option<usize>) -> String {
    if let Some(s) = special(v) {
        return s.to_string();
    }
    let sci = match precision {
        None => format!("{v:e}"),
        Some(p) => format!("{v:.*e}", p.max(1) - 1),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let nd = digits.len() as i64;
    let dp = exp + 1;
    let eprec = match precision {
        None => 6,
        Some(p) => {
            let p = p.max(1) as i64;
            if p > nd && nd >= dp { nd } else { p }
        }
    };
    if exp < -4 || exp >= eprec {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}e{esign}{:02}", exp.abs());
    }
    let body = if dp <= 0 {
        format!("0.{}{digits}", "0".repeat(dp.unsigned_abs() as usize))
    } else if dp >= nd {
        format!("{digits}{}", "0".repeat((dp - nd) as usize))
    } else {
        let (int, frac) = digits.split_at(dp as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "template_tests.rs"]
mod tests;
