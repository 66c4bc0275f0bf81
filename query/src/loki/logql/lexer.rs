//! The LogQL lexer: text to tokens, with the byte offset of each for error messages.

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `|`
    Pipe,
    /// `|=`
    PipeEq,
    /// `|~`
    PipeTilde,
    /// `!=`
    NotEq,
    /// `!~`
    NotTilde,
    /// `=`
    Eq,
    /// `==`
    EqEq,
    /// `=~`
    EqTilde,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Star,
    /// `/`
    Slash,
    /// `%`
    Percent,
    /// `^`
    Caret,
    /// A name or keyword.
    Ident(String),
    /// A string literal, unescaped.
    Str(String),
    /// A number.
    Number(f64),
    /// A duration, in nanoseconds.
    Duration(u64),
}

/// A token and where it starts.
#[derive(Debug, Clone)]
pub struct Spanned {
    /// The token.
    pub tok: Tok,
    /// Byte offset in the query.
    pub at: usize,
}

/// Splits a query into tokens.
pub fn lex(text: &str) -> Result<Vec<Spanned>, String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            // A comment runs to the end of the line.
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let at = i;
        let two = |n: u8| b.get(i + 1) == Some(&n);
        let (tok, len) = match c {
            b'{' => (Tok::LBrace, 1),
            b'}' => (Tok::RBrace, 1),
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b'[' => (Tok::LBracket, 1),
            b']' => (Tok::RBracket, 1),
            b',' => (Tok::Comma, 1),
            b'|' if two(b'=') => (Tok::PipeEq, 2),
            b'|' if two(b'~') => (Tok::PipeTilde, 2),
            b'|' => (Tok::Pipe, 1),
            b'!' if two(b'=') => (Tok::NotEq, 2),
            b'!' if two(b'~') => (Tok::NotTilde, 2),
            b'=' if two(b'=') => (Tok::EqEq, 2),
            b'=' if two(b'~') => (Tok::EqTilde, 2),
            b'=' => (Tok::Eq, 1),
            b'>' if two(b'=') => (Tok::Ge, 2),
            b'>' => (Tok::Gt, 1),
            b'<' if two(b'=') => (Tok::Le, 2),
            b'<' => (Tok::Lt, 1),
            b'+' => (Tok::Plus, 1),
            b'-' => (Tok::Minus, 1),
            b'*' => (Tok::Star, 1),
            b'/' => (Tok::Slash, 1),
            b'%' => (Tok::Percent, 1),
            b'^' => (Tok::Caret, 1),
            b'"' => {
                let (s, len) = quoted(&text[i..]).map_err(|e| format!("{e} at offset {at}"))?;
                (Tok::Str(s), len)
            }
            b'`' => match text[i + 1..].find('`') {
                Some(end) => (Tok::Str(text[i + 1..i + 1 + end].to_string()), end + 2),
                None => return Err(format!("a `raw string` opened at offset {at} never ends")),
            },
            c if c.is_ascii_digit()
                || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                number_or_duration(&text[i..]).map_err(|e| format!("{e} at offset {at}"))?
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b':')
                {
                    j += 1;
                }
                (Tok::Ident(text[i..j].to_string()), j - i)
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(format!("unexpected character '{ch}' at offset {at}"));
            }
        };
        out.push(Spanned { tok, at });
        i += len;
    }
    Ok(out)
}

/// Reads a double-quoted string with Go's escapes; answers the text and the bytes used.
fn quoted(s: &str) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => {
                let (_, e) = chars.next().ok_or("a string ends in a lone backslash")?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut code = 0u32;
                        for _ in 0..n {
                            let (_, h) = chars.next().ok_or("a string ends inside an escape")?;
                            let d = h.to_digit(16).ok_or_else(|| {
                                format!("'\\{e}' must be followed by {n} hex digits")
                            })?;
                            code = code * 16 + d;
                        }
                        out.push(
                            char::from_u32(code)
                                .ok_or_else(|| format!("\\{e}{code:x} is not a character"))?,
                        );
                    }
                    other => return Err(format!("unknown escape '\\{other}' in a string")),
                }
            }
            c => out.push(c),
        }
    }
    Err("a \"string\" never ends".into())
}

/// Nanoseconds per unit of a duration.
fn unit_ns(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "d" => 86_400e9,
        "w" => 7.0 * 86_400e9,
        "y" => 365.0 * 86_400e9,
        _ => return None,
    })
}

/// Longest duration taken: 100 years.
const MAX_DURATION_NS: f64 = 100.0 * 365.0 * 86_400e9;

/// Parses a duration such as `5m`, `1h30m`, `250ms` or `1.5s` into nanoseconds.
pub fn parse_duration_ns(s: &str) -> Result<u64, String> {
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return Err(format!("'{s}' is not a duration (write 5m, 1h30m, 250ms)"));
        }
        let n: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("'{s}' is not a duration"))?;
        let after = &rest[num_end..];
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let unit = &after[..unit_end];
        let per = unit_ns(unit).ok_or_else(|| {
            format!("'{s}' has an unknown unit '{unit}' (use ns, us, ms, s, m, h, d, w, y)")
        })?;
        total += n * per;
        rest = &after[unit_end..];
    }
    if !(0.0..=MAX_DURATION_NS).contains(&total) {
        return Err(format!("duration '{s}' is too long: the most is 100 years"));
    }
    Ok(total as u64)
}

fn number_or_duration(s: &str) -> Result<(Tok, usize), String> {
    let b = s.as_bytes();
    let mut j = 0;
    while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
        j += 1;
    }
    // A unit letter right after the digits makes a duration (5m, 1h30m); `e` followed by a
    // digit or sign is an exponent.
    let exp = matches!(b.get(j), Some(b'e' | b'E'))
        && b.get(j + 1)
            .is_some_and(|c| c.is_ascii_digit() || *c == b'+' || *c == b'-');
    if !exp
        && b.get(j)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == 0xC2)
    {
        let mut k = j;
        while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'.' || b[k] >= 0x80) {
            k += 1;
        }
        let text = &s[..k];
        return Ok((Tok::Duration(parse_duration_ns(text)?), k));
    }
    if exp {
        j += 2;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
    }
    let text = &s[..j];
    let n: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number"))?;
    Ok((Tok::Number(n), j))
}
