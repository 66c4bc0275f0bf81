//! Annotation templates: literal text with `{{ expr }}` actions, a small subset of the
//! Prometheus (Go) template language.
//!
//! An action reads `$value` (or `.Value`) or a label, `$labels.NAME` (or `.Labels.NAME`),
//! and may pass it through functions: `humanize`, `humanizePercentage`, `humanizeDuration`
//! and `printf "FORMAT"`. Both `{{ $value | humanize }}` and `{{ humanize $value }}` work.
//! `{{-` and `-}}` trim the white space next to the action, as in Go.

use std::collections::BTreeMap;

/// Longest template, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 4 * 1024;

const VARIABLES: &str = "$value, $labels.NAME, .Value or .Labels.NAME";
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
        "$labels" | ".Labels" => {
            return Err(format!("'{word}' needs a label name, as in {word}.service"));
        }
        _ => {}
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
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn render(src: &str, value: f64) -> String {
        let l = labels(&[("service", "payment"), ("k8s.pod", "pay-1"), ("n", "1500")]);
        Template::parse(src).unwrap().render(&l, value)
    }

    fn err(src: &str) -> String {
        Template::parse(src).unwrap_err()
    }

    #[test]
    fn literal_text_only() {
        assert_eq!(render("plain text }} here", 1.0), "plain text }} here");
        assert_eq!(render("", 1.0), "");
        let t = Template::parse("a {{ $value }}").unwrap();
        assert_eq!(t.source(), "a {{ $value }}");
    }

    #[test]
    fn value_renders_like_go_v() {
        assert_eq!(render("{{ $value }}", 0.05), "0.05");
        assert_eq!(render("{{ $value }}", 12.0), "12");
        assert_eq!(render("{{$value}}", -3.5), "-3.5");
        assert_eq!(render("{{ .Value }}", 0.0), "0");
        assert_eq!(render("{{ $value }}", 123456.0), "123456");
        assert_eq!(render("{{ $value }}", 1234567.0), "1.234567e+06");
        assert_eq!(render("{{ $value }}", 1e21), "1e+21");
        assert_eq!(render("{{ $value }}", 0.0001), "0.0001");
        assert_eq!(render("{{ $value }}", 0.00001), "1e-05");
        assert_eq!(render("{{ $value }}", f64::NAN), "NaN");
        assert_eq!(render("{{ $value }}", f64::INFINITY), "+Inf");
        assert_eq!(render("{{ $value }}", f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn labels_render_and_missing_is_empty() {
        assert_eq!(
            render("{{ $labels.service }} is down", 1.0),
            "payment is down"
        );
        assert_eq!(render("[{{ .Labels.service }}]", 1.0), "[payment]");
        assert_eq!(render("{{ $labels.k8s.pod }}", 1.0), "pay-1");
        assert_eq!(render("[{{ $labels.nope }}]", 1.0), "[]");
        assert_eq!(render("[{{ $labels.nope | humanize }}]", 1.0), "[]");
    }

    #[test]
    fn humanize_uses_si_prefixes() {
        assert_eq!(render("{{ $value | humanize }}", 1234567.0), "1.235M");
        assert_eq!(render("{{ $value | humanize }}", 0.00123), "1.23m");
        assert_eq!(render("{{ $value | humanize }}", 1500.0), "1.5k");
        assert_eq!(render("{{ $value | humanize }}", 999.0), "999");
        assert_eq!(render("{{ $value | humanize }}", 0.0), "0");
        assert_eq!(render("{{ $value | humanize }}", -2_000_000.0), "-2M");
        assert_eq!(render("{{ $value | humanize }}", 2.5e-7), "250n");
        assert_eq!(render("{{ humanize $value }}", 1234567.0), "1.235M");
        // A label holding a number is humanized too; other text is left alone.
        assert_eq!(render("{{ $labels.n | humanize }}", 0.0), "1.5k");
        assert_eq!(render("{{ $labels.service | humanize }}", 0.0), "payment");
    }

    #[test]
    fn humanize_percentage() {
        assert_eq!(render("{{ $value | humanizePercentage }}", 0.0523), "5.23%");
        assert_eq!(render("{{ $value | humanizePercentage }}", 1.0), "100%");
        assert_eq!(
            render("{{ $value | humanizePercentage }}", 0.123456),
            "12.35%"
        );
        assert_eq!(render("{{ .Value | humanizePercentage }}", 0.0), "0%");
    }

    #[test]
    fn humanize_duration() {
        let d = |v| render("{{ $value | humanizeDuration }}", v);
        assert_eq!(d(90.0), "1m 30s");
        assert_eq!(d(0.25), "250ms");
        assert_eq!(d(7205.0), "2h 0m 5s");
        assert_eq!(d(90061.0), "1d 1h 1m 1s");
        assert_eq!(d(1.5), "1.5s");
        assert_eq!(d(0.0), "0s");
        assert_eq!(d(-90.0), "-1m 30s");
        assert_eq!(d(0.000_002), "2us");
        assert_eq!(d(f64::NAN), "NaN");
    }

    #[test]
    fn printf_verbs() {
        assert_eq!(render("{{ $value | printf \"%.2f\" }}", 0.05234), "0.05");
        assert_eq!(render("{{ $value | printf \"%.0f\" }}", 2.6), "3");
        assert_eq!(render("{{ $value | printf \"%f\" }}", 1.5), "1.500000");
        assert_eq!(render("{{ $value | printf \"%d\" }}", 41.6), "42");
        assert_eq!(render("{{ $value | printf \"%s\" }}", 0.5), "0.5");
        assert_eq!(render("{{ $value | printf \"%v\" }}", 12.0), "12");
        assert_eq!(render("{{ $value | printf \"%g\" }}", 0.25), "0.25");
        assert_eq!(render("{{ $value | printf \"%.3g\" }}", 1234.5), "1.23e+03");
        assert_eq!(render("{{ $value | printf \"%.1f%%\" }}", 5.25), "5.2%");
        assert_eq!(
            render("{{ $value | printf \"took %.1f s\" }}", 2.0),
            "took 2.0 s"
        );
        assert_eq!(render("{{ printf \"%.1f\" $value }}", 2.25), "2.2");
        assert_eq!(render("{{ $value | printf `%d` }}", 7.0), "7");
        assert_eq!(
            render("{{ $value | printf \"%.2f\" }}", f64::INFINITY),
            "+Inf"
        );
        assert_eq!(
            render("{{ $labels.service | printf \"<%s>\" }}", 0.0),
            "<payment>"
        );
        assert_eq!(render("{{ $labels.n | printf \"%.1f\" }}", 0.0), "1500.0");
        // A pipeline can chain functions.
        assert_eq!(
            render("{{ $value | humanize | printf \"~%s\" }}", 1500.0),
            "~1.5k"
        );
        // A quoted "}}" does not close the action.
        assert_eq!(render("{{ $value | printf \"%d}}\" }}", 3.0), "3}}");
    }

    #[test]
    fn trim_markers() {
        assert_eq!(render("a  {{- $value -}}  b", 1.0), "a1b");
        assert_eq!(render("a  {{- $value }}  b", 1.0), "a1  b");
        // "{{-3}}" is not a trim marker.
        assert!(err("{{-3}}").contains("unknown"));
    }

    #[test]
    fn go_float_forms() {
        assert_eq!(go_float(1234567.0, Some(4)), "1.235e+06");
        assert_eq!(go_float(100000.0, Some(4)), "1e+05");
        assert_eq!(go_float(999.96, Some(4)), "1000");
        assert_eq!(go_float(1.5, Some(4)), "1.5");
        assert_eq!(go_float(0.000123, Some(4)), "0.000123");
        assert_eq!(go_float(-0.5, None), "-0.5");
    }

    #[test]
    fn errors_are_clear() {
        assert!(err("a {{ $value").contains("unclosed '{{' at byte 2"));
        assert!(err("{{ }}").contains("empty action"));
        assert!(err("{{}}").contains("empty action"));
        assert!(err("{{ $labels }}").contains("needs a label name"));
        assert!(err("{{ .Labels }}").contains("needs a label name"));
        assert!(err("{{ $labels.9x }}").contains("not a label name"));
        assert!(err("{{ $foo }}").contains("unknown variable '$foo'"));
        assert!(err("{{ .Foo }}").contains("unknown variable '.Foo'"));
        assert!(err("{{ foo }}").contains("unknown variable or function 'foo'"));
        assert!(err("{{ $value | upper }}").contains("unknown function 'upper'"));
        assert!(err("{{ humanize }}").contains("needs a value"));
        assert!(err("{{ $value | }}").contains("empty command"));
        assert!(err("{{ | humanize }}").contains("empty command"));
        assert!(err("{{ $value $value }}").contains("unexpected words"));
        assert!(err("{{ $value | humanize 3 }}").contains("takes no arguments"));
        assert!(err("{{ $value | printf }}").contains("one quoted format"));
        assert!(err("{{ $value | printf \"%x\" }}").contains("exactly one of"));
        assert!(err("{{ $value | printf \"%d %d\" }}").contains("exactly one of"));
        assert!(err("{{ $value | printf \"none\" }}").contains("exactly one of"));
        assert!(err("{{ $value | printf \"%.2d\" }}").contains("exactly one of"));
        assert!(err("{{ $value | printf \"%.99f\" }}").contains("too large"));
        assert!(err("{{ $value | printf \"%.2f }}").contains("unclosed"));
        assert!(err("{{ $value | printf \"\\q\" }}").contains("unknown escape"));
        assert!(err("{{ $value | \"x\" }}").contains("write a function"));
        assert!(err("{{ \"x\" }}").contains("starts with one of"));
        assert!(err("{{ len($labels) }}").contains("parentheses"));
        assert!(err("x {{ $value }} {{ $nope }}").contains("at byte 15"));
        let big = "x".repeat(MAX_TEMPLATE_BYTES + 1);
        assert!(err(&big).contains("the most is 4096"));
    }
}
