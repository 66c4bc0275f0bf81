//! One open file: reads new bytes at its own offset (`pread`, so the file position never
//! matters) and splits them into lines. Memory is bounded: a line is kept up to
//! `max_line_bytes` (plus one byte for a `\r`), the rest of a longer line is skipped as it is
//! read, never buffered.

use super::fingerprint::find_newline;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// One line as read, before UTF-8 conversion.
#[derive(Debug)]
pub struct RawLine<'a> {
    /// The line without its `\n` or `\r\n`, cut at the limit.
    pub bytes: &'a [u8],
    /// The line was longer than the limit and was cut.
    pub truncated: bool,
    /// File offset just past the line's newline.
    pub end: u64,
}

impl RawLine<'_> {
    /// The line as text (invalid UTF-8 replaced), ready for multiline joining.
    pub fn to_line(&self) -> super::multiline::Line {
        super::multiline::Line {
            text: String::from_utf8_lossy(self.bytes).into_owned(),
            truncated: self.truncated,
            end: self.end,
        }
    }
}

/// Reads one file line by line.
pub struct Reader {
    file: File,
    pos: u64,
    line_start: u64,
    line: Vec<u8>,
    skipping: bool,
    max: usize,
    /// The last read found no more data (it returned less than asked).
    pub eof: bool,
}

impl Reader {
    /// A reader of `file` starting at `pos`, keeping lines up to `max` bytes.
    pub fn new(file: File, pos: u64, max: usize) -> Reader {
        Reader {
            file,
            pos,
            line_start: pos,
            line: Vec::new(),
            skipping: false,
            max: max.max(1),
            eof: false,
        }
    }

    /// The offset of the next byte to read.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// The offset where the line being read starts (just past the last complete line).
    pub fn line_start(&self) -> u64 {
        self.line_start
    }

    /// Memory held by the partial line.
    #[cfg(test)]
    pub fn buffered(&self) -> usize {
        self.line.capacity()
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Starts over at `pos`, forgetting any partial line (after a truncation).
    pub fn reset(&mut self, pos: u64) {
        self.pos = pos;
        self.line_start = pos;
        self.line = Vec::new();
        self.skipping = false;
        self.eof = false;
    }

    /// Reads at most `buf.len()` bytes and calls `f` for every line completed by them.
    /// Returns the number of bytes read (0 at end of file).
    pub fn read(&mut self, buf: &mut [u8], f: &mut dyn FnMut(RawLine<'_>)) -> io::Result<usize> {
        let n = loop {
            match self.file.read_at(buf, self.pos) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        self.eof = n < buf.len();
        if n == 0 {
            return Ok(0);
        }
        let base = self.pos;
        self.pos += n as u64;
        let data = &buf[..n];
        let mut start = 0;
        while let Some(i) = find_newline(&data[start..]) {
            let nl = start + i;
            let end = base + nl as u64 + 1;
            if self.line.is_empty() && !self.skipping {
                let (bytes, truncated) = finish(&data[start..nl], false, self.max);
                f(RawLine {
                    bytes,
                    truncated,
                    end,
                });
            } else {
                self.append(&data[start..nl]);
                let (bytes, truncated) = finish(&self.line, self.skipping, self.max);
                f(RawLine {
                    bytes,
                    truncated,
                    end,
                });
                self.line.clear();
                self.skipping = false;
            }
            start = nl + 1;
            self.line_start = end;
        }
        self.append(&data[start..]);
        if self.line.capacity() > 4 * 1024 && self.line.is_empty() {
            // A long line is done: give its memory back.
            self.line = Vec::new();
        }
        Ok(n)
    }

    /// The final line without a newline, if any (when the file is closed for good). It ends
    /// at the read position.
    pub fn take_partial(&mut self, f: &mut dyn FnMut(RawLine<'_>)) {
        if self.line.is_empty() && !self.skipping {
            return;
        }
        let (bytes, truncated) = finish(&self.line, self.skipping, self.max);
        f(RawLine {
            bytes,
            truncated,
            end: self.pos,
        });
        self.line_start = self.pos;
        self.line = Vec::new();
        self.skipping = false;
    }

    fn append(&mut self, part: &[u8]) {
        if self.skipping || part.is_empty() {
            return;
        }
        let room = (self.max + 1).saturating_sub(self.line.len());
        if part.len() > room {
            self.line.extend_from_slice(&part[..room]);
            self.skipping = true;
        } else {
            self.line.extend_from_slice(part);
        }
    }
}

/// Strips a trailing `\r` and cuts the line at `max` bytes (backing off to a UTF-8 character
/// boundary when the cut falls inside one).
fn finish(line: &[u8], skipped: bool, max: usize) -> (&[u8], bool) {
    let line = match line.last() {
        Some(b'\r') if !skipped => &line[..line.len() - 1],
        _ => line,
    };
    if !skipped && line.len() <= max {
        return (line, false);
    }
    let mut cut = max.min(line.len());
    let floor = cut.saturating_sub(3);
    while cut > floor && cut < line.len() && (line[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    (&line[..cut], true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect(r: &mut Reader, chunk: usize) -> Vec<(String, bool, u64)> {
        let mut buf = vec![0u8; chunk];
        let mut out = vec![];
        loop {
            let n = r
                .read(&mut buf, &mut |l| {
                    out.push((
                        String::from_utf8_lossy(l.bytes).into_owned(),
                        l.truncated,
                        l.end,
                    ))
                })
                .unwrap();
            if n == 0 {
                break;
            }
        }
        out
    }

    #[test]
    fn lines_across_chunks_and_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        let mut w = File::create(&p).unwrap();
        w.write_all(b"first\r\nsecond line\nthird par").unwrap();
        for chunk in [1, 3, 7, 64 * 1024] {
            let mut r = Reader::new(File::open(&p).unwrap(), 0, 1024);
            let got = collect(&mut r, chunk);
            assert_eq!(
                got,
                vec![
                    ("first".to_string(), false, 7),
                    ("second line".to_string(), false, 19)
                ],
                "chunk {chunk}"
            );
            assert_eq!(r.pos(), 28);
            assert!(r.eof);
        }
        let mut r = Reader::new(File::open(&p).unwrap(), 0, 1024);
        collect(&mut r, 16);
        w.write_all(b"t\n").unwrap();
        assert_eq!(
            collect(&mut r, 16),
            vec![("third part".to_string(), false, 30)]
        );
        let mut parts = vec![];
        r.take_partial(&mut |l| parts.push(l.end));
        assert!(parts.is_empty());
    }

    #[test]
    fn long_lines_are_cut_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        let mut w = File::create(&p).unwrap();
        w.write_all(&[b'a'; 100]).unwrap();
        w.write_all(b"\n0123456789\r\n").unwrap();
        w.write_all(&[b'b'; 11]).unwrap();
        w.write_all(b"\nok\n").unwrap();
        for chunk in [1, 5, 64 * 1024] {
            let mut r = Reader::new(File::open(&p).unwrap(), 0, 10);
            let got = collect(&mut r, chunk);
            assert_eq!(
                got,
                vec![
                    ("a".repeat(10), true, 101),
                    ("0123456789".to_string(), false, 113),
                    ("b".repeat(10), true, 125),
                    ("ok".to_string(), false, 128),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn cut_backs_off_to_a_char_boundary_and_partial_at_close() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        // "aé" is 3 bytes; a cut at 2 would split the é.
        std::fs::write(&p, "aéé\nxyz").unwrap();
        let mut r = Reader::new(File::open(&p).unwrap(), 0, 2);
        let got = collect(&mut r, 64);
        assert_eq!(got, vec![("a".to_string(), true, 6)]);
        let mut parts = vec![];
        r.take_partial(&mut |l| parts.push((l.bytes.to_vec(), l.truncated, l.end)));
        assert_eq!(parts, vec![(b"xy".to_vec(), true, 9)]);
    }
}
