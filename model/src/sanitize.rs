//! Text from outside (log bodies, attribute values, labels) made safe for a terminal. Shared by
//! the CLI and the TUI: a log body is written by whoever can make a service log something
//! (often an outside user), and raw escape sequences in it could recolor, retitle or rewrite
//! the operator's terminal.

/// Makes text from logs and spans safe to print on a terminal, as one line.
///
/// Removes ANSI/VT escape sequences (CSI `ESC [ … final`, OSC/DCS/SOS/PM/APC strings ended by
/// BEL or ST, other `ESC x` sequences, and their 8-bit C1 forms), C0 control characters, DEL
/// and C1 controls. A tab becomes a space and a newline the visible `⏎`, so one record stays
/// one line; a carriage return is dropped (it could hide the start of the line).
/// Bidirectional controls (embeddings, overrides, isolates and the direction marks) are
/// removed too: U+202E would show `txt.exe` as `exe.txt`, and an unclosed one reorders the
/// rest of the terminal line. Right-to-left letters themselves are kept.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\x1b' => match it.peek().copied() {
                Some('[') => {
                    it.next();
                    skip_csi(&mut it);
                }
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    it.next();
                    skip_string(&mut it);
                }
                Some(' '..='/') => {
                    // nF sequences such as `ESC ( B`: intermediates, then one final byte.
                    while it.next_if(|c| matches!(c, ' '..='/')).is_some() {}
                    it.next_if(|c| matches!(c, '0'..='~'));
                }
                Some('0'..='~') => {
                    it.next();
                }
                // A lone ESC (or one before a non-ASCII character): drop just the ESC.
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut it),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut it),
            '\t' => out.push(' '),
            '\n' => out.push('⏎'),
            // Cc: C0 (\r included), DEL and C1.
            c if c.is_control() => {}
            c if is_bidi_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// U+202A–U+202E (embeddings, overrides), U+2066–U+2069 (isolates), U+200E and U+200F
/// (left-to-right and right-to-left marks) and U+061C (Arabic letter mark).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// Skips the rest of a CSI sequence: parameter and intermediate bytes, then the final byte.
/// Stops early, without consuming it, at anything else: a terminal would abort the sequence
/// there too, and the main loop drops it if it is a control character.
fn skip_csi(it: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(&c) = it.peek() {
        match c {
            ' '..='?' => {
                it.next();
            }
            '@'..='~' => {
                it.next();
                return;
            }
            _ => return,
        }
    }
}

/// Skips the rest of a string sequence (OSC and the like) up to its terminator: BEL, ST
/// (`ESC \` or U+009C). Another ESC also ends it, as on a terminal, and is left for the main
/// loop. An unterminated string hides the rest of the text, as the terminal would.
fn skip_string(it: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(&c) = it.peek() {
        match c {
            '\x07' | '\u{9c}' => {
                it.next();
                return;
            }
            '\x1b' => {
                it.next();
                it.next_if_eq(&'\\');
                return;
            }
            _ => {
                it.next();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_escape_sequences_and_controls() {
        assert_eq!(sanitize("\x1b[31mred\x1b[0m"), "red");
        assert_eq!(sanitize("\x1b[1;38;5;196mx\x1b[m"), "x");
        assert_eq!(sanitize("a\x1b]0;title\x07b"), "ab");
        assert_eq!(
            sanitize("a\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\b"),
            "alinkb"
        );
        assert_eq!(sanitize("\u{9b}2J"), "");
        assert_eq!(sanitize("x\u{9d}0;t\u{9c}y"), "xy");
        assert_eq!(sanitize("a\x1bPqdata\x1b\\b"), "ab");
        assert_eq!(sanitize("a\x1b(Bb\x1bcc\x1b7d"), "abcd");
        assert_eq!(sanitize("a\rb"), "ab");
        assert_eq!(sanitize("a\nb"), "a⏎b");
        assert_eq!(sanitize("a\r\nb"), "a⏎b");
        assert_eq!(sanitize("a\tb"), "a b");
        assert_eq!(sanitize("a\x00b\x07c\x08d\x7fe\u{85}f"), "abcdef");
        assert_eq!(sanitize("lone \x1b"), "lone ");
        // An unterminated CSI stops at the first byte that cannot be part of it.
        assert_eq!(sanitize("\x1b[12é"), "é");
        // Printable text, Unicode included, is untouched.
        assert_eq!(sanitize("héllo 世界 ✓ [ok] ~"), "héllo 世界 ✓ [ok] ~");
    }

    #[test]
    fn sanitize_strips_bidirectional_controls() {
        // U+202E would draw "exe.txt" as "txt.exe"; isolates and marks reorder text too.
        assert_eq!(sanitize("invoice\u{202E}txt.exe"), "invoicetxt.exe");
        for c in ('\u{202A}'..='\u{202E}')
            .chain('\u{2066}'..='\u{2069}')
            .chain(['\u{200E}', '\u{200F}', '\u{061C}'])
        {
            assert_eq!(sanitize(&format!("a{c}b")), "ab", "U+{:04X}", c as u32);
        }
        // Right-to-left text itself is kept.
        assert_eq!(sanitize("שלום مرحبا"), "שלום مرحبا");
    }

    #[test]
    fn sanitize_never_leaves_control_characters() {
        let nasty = "\x1b\x1b[\x1b]\u{9b}\u{9d}\x1b[31;\x1b]0;\x1bP\x1b\\\u{90}\u{9c}a\x1b\x07\x1b[?1049h\u{1b}Z\u{8d}";
        let s = sanitize(nasty);
        assert!(!s.chars().any(char::is_control), "{s:?}");
        for i in 0..nasty.len() {
            if nasty.is_char_boundary(i) {
                let s = sanitize(&nasty[i..]);
                assert!(!s.chars().any(char::is_control), "{s:?}");
            }
        }
    }
}
