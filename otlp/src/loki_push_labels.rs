//! The label text of a Loki stream (`StreamAdapter.labels` in a protobuf push): Prometheus's
//! text form, `{job="api", env="prod"}`.
//!
//! The grammar read here, whitespace allowed between any two tokens:
//!
//! ```text
//! labels := "{" [ pair { "," pair } [ "," ] ] "}"
//! pair   := name "=" value
//! name   := [a-zA-Z_][a-zA-Z0-9_]*
//! value  := '"' Go-escaped text '"'  |  '`' raw text '`'
//! ```
//!
//! Values in double quotes take Go's escapes (`\a \b \f \n \r \t \v \\ \" \'`, `\xHH`, three
//! octal digits, `\uHHHH`, `\UHHHHHHHH`) and must be UTF-8 once unescaped; backquoted values are
//! taken as they are. Anything else is refused with what was expected and where: operators other
//! than `=` (a push names a stream, it does not select one), nested braces, text after the `}`,
//! a name twice. The text is at most [`MAX_LABELS_TEXT`] bytes and holds at most [`MAX_LABELS`]
//! pairs, so one stream's labels cannot cost more than that to read.

/// Longest label text of one stream, in bytes (the text form, or the names and values of a
/// JSON stream together).
pub const MAX_LABELS_TEXT: usize = 16 * 1024;

/// Most labels of one stream, and most structured-metadata pairs of one entry.
pub const MAX_LABELS: usize = 64;

/// True when `name` is a Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_name(name: &str) -> bool {
    let mut b = name.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Parses a stream's label text into its pairs, in the order written.
pub fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    if text.len() > MAX_LABELS_TEXT {
        return Err(format!(
            "the label text is {} bytes, more than the limit of {MAX_LABELS_TEXT}",
            text.len()
        ));
    }
    let mut p = Parser {
        s: text.as_bytes(),
        at: 0,
    };
    p.space();
    if p.at == p.s.len() {
        return Err(
            "the label text is empty: a stream is named by labels such as {job=\"api\"}".into(),
        );
    }
    p.expect(b'{', "the label text must start with '{'")?;
    let mut out: Vec<(String, String)> = Vec::new();
    loop {
        p.space();
        if p.eat(b'}') {
            break;
        }
        let name = p.name()?;
        p.space();
        match p.peek() {
            Some(b'=') => {
                p.at += 1;
                if matches!(p.peek(), Some(b'~')) {
                    return Err(p.fail(&format!(
                        "label '{name}' uses '=~': a pushed stream's labels are name=\"value\" pairs, not selectors"
                    )));
                }
            }
            Some(b'!') => {
                return Err(p.fail(&format!(
                    "label '{name}' uses '!': a pushed stream's labels are name=\"value\" pairs, not selectors"
                )));
            }
            _ => return Err(p.fail(&format!("expected '=' after label name '{name}'"))),
        }
        p.space();
        let value = p.value(&name)?;
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("label '{name}' is given twice"));
        }
        if out.len() == MAX_LABELS {
            return Err(format!(
                "more than {MAX_LABELS} labels in one stream; keep per-line values in structured metadata"
            ));
        }
        out.push((name, value));
        p.space();
        if p.eat(b',') {
            continue;
        }
        p.space();
        if p.eat(b'}') {
            break;
        }
        return Err(p.fail("expected ',' or '}' after a label's value"));
    }
    p.space();
    if p.at < p.s.len() {
        return Err(p.fail("unexpected text after the closing '}'"));
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// An error naming the byte offset and what stands there.
    fn fail(&self, what: &str) -> String {
        match self.peek() {
            None => format!("{what}, but the label text ends at byte {}", self.at),
            Some(c) if c.is_ascii_graphic() => {
                format!("{what}, found '{}' at byte {}", c as char, self.at)
            }
            Some(c) => format!("{what}, found byte 0x{c:02x} at byte {}", self.at),
        }
    }

    fn expect(&mut self, c: u8, what: &str) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.fail(what))
        }
    }

    fn name(&mut self) -> Result<String, String> {
        let start = self.at;
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => self.at += 1,
            Some(b'{') => return Err(self.fail("nested braces are not label names")),
            _ => return Err(self.fail("expected a label name ([a-zA-Z_][a-zA-Z0-9_]*)")),
        }
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
            self.at += 1;
        }
        // ASCII only, so always a char boundary.
        Ok(String::from_utf8_lossy(&self.s[start..self.at]).into_owned())
    }

    fn value(&mut self, name: &str) -> Result<String, String> {
        let quote = match self.peek() {
            Some(q @ (b'"' | b'`')) => q,
            _ => {
                return Err(self.fail(&format!(
                    "the value of label '{name}' must be in double quotes"
                )));
            }
        };
        let open = self.at;
        self.at += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(format!(
                    "the value of label '{name}' opened at byte {open} is never closed"
                ));
            };
            self.at += 1;
            if c == quote {
                break;
            }
            if c == b'\\' && quote == b'"' {
                self.escape(name, &mut out)?;
            } else if c == b'\n' && quote == b'"' {
                return Err(format!(
                    "the value of label '{name}' holds a raw line break: write it as \\n"
                ));
            } else {
                out.push(c);
            }
        }
        String::from_utf8(out)
            .map_err(|_| format!("the value of label '{name}' is not UTF-8 once unescaped"))
    }

    /// Reads one escape after its backslash into `out`.
    fn escape(&mut self, name: &str, out: &mut Vec<u8>) -> Result<(), String> {
        let bad = |p: &Self, what: &str| p.fail(&format!("in the value of label '{name}': {what}"));
        let Some(c) = self.peek() else {
            return Err(bad(self, "a backslash ends the text"));
        };
        self.at += 1;
        let simple = match c {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' | b'"' | b'\'' => Some(c),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            return Ok(());
        }
        match c {
            b'x' => {
                let v = self
                    .digits(2, 16)
                    .ok_or_else(|| bad(self, "\\x needs 2 hex digits"))?;
                out.push(v as u8);
            }
            b'0'..=b'7' => {
                self.at -= 1;
                let v = self
                    .digits(3, 8)
                    .filter(|v| *v <= 255)
                    .ok_or_else(|| bad(self, "an octal escape is 3 digits up to \\377"))?;
                out.push(v as u8);
            }
            b'u' | b'U' => {
                let n = if c == b'u' { 4 } else { 8 };
                let ch = self.digits(n, 16).and_then(char::from_u32).ok_or_else(|| {
                    bad(self, "\\u and \\U need 4 or 8 hex digits of a character")
                })?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => return Err(bad(self, "unknown escape (Go's escapes are taken)")),
        }
        Ok(())
    }

    /// `n` digits in `radix`, or None when fewer follow.
    fn digits(&mut self, n: usize, radix: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let d = (self.peek()? as char).to_digit(radix)?;
            v = v * radix + d;
            self.at += 1;
        }
        Some(v)
    }
}
