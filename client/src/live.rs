//! The live tail (`GET /api/v1/logs/tail`): Server-Sent Events read as they come. A separate
//! HTTP client without the whole-request time limit (a tail never ends by itself), with a read
//! time limit instead: the server sends a keep-alive every 15 s, so 45 s of silence is a dead
//! connection.

use super::{Client, ClientError, api_error};
use skein_model::LogRecord;
use std::time::Duration;

/// Silence after which a tail connection counts as dead.
const READ_TIMEOUT: Duration = Duration::from_secs(45);
/// Largest event the client takes (a log record is at most a few MiB).
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// One line of a live tail: its position (pass it back as the cursor to go on after it) and
/// the record.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveLine {
    /// Ingest position.
    pub seq: u64,
    /// The log record.
    pub record: LogRecord,
}

/// Parses one SSE event block; None for comments, keep-alives and other events.
fn parse_event(block: &str) -> Option<Result<LiveLine, ClientError>> {
    let (mut id, mut event, mut data) = (None, None, String::new());
    for line in block.lines() {
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "id" => id = Some(value),
            "event" => event = Some(value),
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            _ => {}
        }
    }
    if event != Some("log") {
        return None;
    }
    let seq = match id.and_then(|i| i.parse::<u64>().ok()) {
        Some(s) => s,
        None => {
            return Some(Err(ClientError::Decode(
                "a tail event without a position".into(),
            )));
        }
    };
    Some(Ok(match serde_json::from_str(&data) {
        Ok(record) => LiveLine { seq, record },
        Err(e) => left_out(seq, &format!("not a log record: {e}")),
    }))
}

impl Client {
    /// Follows new log lines (`params`: `q`, `service`, `severity`, `back`), after `cursor`
    /// when given. Calls `on_line` for each until it returns false (then Ok) or the
    /// connection ends (an error: reconnect with the last line's `seq` as the cursor). A line
    /// over 16 MiB or not a log record comes as a placeholder at its position (its body says
    /// why), so going on after it never asks for it again.
    pub async fn tail(
        &self,
        params: &[(&str, &str)],
        cursor: Option<u64>,
        mut on_line: impl FnMut(LiveLine) -> bool,
    ) -> Result<(), ClientError> {
        let http = crate::with_tls(reqwest::Client::builder(), &self.tls)
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("skein/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Transport(format!("cannot set up the HTTP client: {e}")))?;
        let url = self.pairs_url(&["api", "v1", "logs", "tail"], params);
        let mut req = http.get(url).header("accept", "text/event-stream");
        if let Some(c) = cursor {
            req = req.header("last-event-id", c.to_string());
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let mut resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
            return Err(api_error(status, &body));
        }
        let mut reader = EventReader::default();
        loop {
            let Some(chunk) = resp.chunk().await.map_err(|e| self.transport_error(&e))? else {
                return Err(ClientError::Transport("the tail connection ended".into()));
            };
            for line in reader.push(&chunk) {
                if !on_line(line?) {
                    return Ok(());
                }
            }
        }
    }
}

/// Cuts the byte stream of a tail into events.
#[derive(Default)]
struct EventReader {
    buf: Vec<u8>,
    /// Bytes at the start of `buf` already searched for a blank line.
    scanned: usize,
    /// The position of an event over [`MAX_EVENT_BYTES`] whose rest is being passed over.
    skipping: Option<u64>,
}

impl EventReader {
    /// Takes the next bytes; returns the lines of the events they complete, in order. An
    /// event too big or unreadable becomes a placeholder line at its position
    /// ([`left_out`]), so the cursor moves past it. An error ends the connection.
    fn push(&mut self, chunk: &[u8]) -> Vec<Result<LiveLine, ClientError>> {
        let mut out = Vec::new();
        self.buf.extend_from_slice(chunk);
        loop {
            // A separator may have begun in the bytes already searched.
            let from = self.scanned.saturating_sub(3);
            let Some((end, sep_end)) = find_blank_line(&self.buf[from..]) else {
                self.scanned = self.buf.len();
                break;
            };
            // Events end with a blank line.
            let block: Vec<u8> = self.buf.drain(..from + sep_end).collect();
            self.scanned = 0;
            if let Some(seq) = self.skipping.take() {
                out.push(Ok(left_out(
                    seq,
                    &format!("over the {MAX_EVENT_BYTES} bytes a tail event may have"),
                )));
                continue;
            }
            let text = String::from_utf8_lossy(&block[..from + end]).replace("\r\n", "\n");
            match parse_event(&text) {
                Some(Ok(line)) => out.push(Ok(line)),
                Some(Err(e)) => {
                    out.push(Err(e));
                    return out;
                }
                None => {}
            }
        }
        if self.skipping.is_none() && self.buf.len() > MAX_EVENT_BYTES {
            match leading_id(&self.buf) {
                Some(seq) => self.skipping = Some(seq),
                None => {
                    out.push(Err(ClientError::Decode(format!(
                        "a tail event over {MAX_EVENT_BYTES} bytes without a position"
                    ))));
                    return out;
                }
            }
        }
        if self.skipping.is_some() {
            // Only the last bytes are kept: the start of a separator.
            let keep_from = self.buf.len().saturating_sub(3);
            self.buf.drain(..keep_from);
            self.scanned = self.buf.len();
        }
        out
    }
}

/// The `id` of an event from its first lines (the server writes it before the data).
fn leading_id(buf: &[u8]) -> Option<u64> {
    for line in buf.split(|&b| b == b'\n').take(8) {
        if line.starts_with(b"data") {
            return None;
        }
        if let Some(v) = line.strip_prefix(b"id:") {
            return std::str::from_utf8(v).ok()?.trim().parse().ok();
        }
    }
    None
}

/// The line shown in place of an event that cannot be read, at its position.
fn left_out(seq: u64, why: &str) -> LiveLine {
    LiveLine {
        seq,
        record: LogRecord {
            time_unix_nano: skein_model::time::now_unix_nano(),
            body: format!("[log line at position {seq} left out: {why}]"),
            ..Default::default()
        },
    }
}

/// Where the first blank line is: (end of the event, end of the separator).
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_and_others_are_skipped() {
        let rec = LogRecord {
            service: "pay".into(),
            body: "x".into(),
            ..Default::default()
        };
        let block = format!(
            "id: 42\nevent: log\ndata: {}",
            serde_json::to_string(&rec).unwrap()
        );
        let e = parse_event(&block).unwrap().unwrap();
        assert_eq!(e.seq, 42);
        assert_eq!(e.record.service, "pay");
        assert!(parse_event(": keep-alive").is_none());
        assert!(parse_event("event: other\ndata: 1").is_none());
        assert!(
            parse_event("event: log\ndata: {}").unwrap().is_err(),
            "no id"
        );
        assert_eq!(find_blank_line(b"a\n\nb"), Some((1, 3)));
        assert_eq!(find_blank_line(b"a\r\n\r\nb"), Some((1, 5)));
        assert_eq!(find_blank_line(b"a\n"), None);
    }

    fn event(seq: u64, body: &str) -> Vec<u8> {
        let rec = LogRecord {
            body: body.into(),
            ..Default::default()
        };
        format!(
            "id: {seq}\nevent: log\ndata: {}\n\n",
            serde_json::to_string(&rec).unwrap()
        )
        .into_bytes()
    }

    /// Every line read from `stream` fed in chunks of `chunk` bytes, up to the first error.
    fn read_all(stream: &[u8], chunk: usize) -> (Vec<(u64, String)>, Option<ClientError>) {
        let mut r = EventReader::default();
        let mut lines = Vec::new();
        for c in stream.chunks(chunk) {
            for l in r.push(c) {
                match l {
                    Ok(l) => lines.push((l.seq, l.record.body)),
                    Err(e) => return (lines, Some(e)),
                }
            }
        }
        (lines, None)
    }

    #[test]
    fn an_event_too_big_or_unreadable_is_passed_over_and_the_position_moves_on() {
        let mut stream = event(6, "before");
        stream.extend(event(7, &"x".repeat(2 * MAX_EVENT_BYTES)));
        stream.extend(b"id: 8\nevent: log\ndata: {not json\n\n");
        stream.extend(event(9, "after"));
        for chunk in [1 << 20, 64 * 1024] {
            let (lines, err) = read_all(&stream, chunk);
            assert!(err.is_none(), "{err:?}");
            let seqs: Vec<u64> = lines.iter().map(|l| l.0).collect();
            assert_eq!(seqs, [6, 7, 8, 9], "chunks of {chunk}");
            assert_eq!(lines[0].1, "before");
            assert!(lines[1].1.contains("left out"), "{}", &lines[1].1);
            assert!(lines[2].1.contains("left out"), "{}", &lines[2].1);
            assert_eq!(lines[3].1, "after");
        }
    }
}
