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
    Some(
        serde_json::from_str(&data)
            .map(|record| LiveLine { seq, record })
            .map_err(|e| ClientError::Decode(format!("a tail event: {e}"))),
    )
}

impl Client {
    /// Follows new log lines (`params`: `q`, `service`, `severity`, `back`), after `cursor`
    /// when given. Calls `on_line` for each until it returns false (then Ok) or the
    /// connection ends (an error: reconnect with the last line's `seq` as the cursor).
    pub async fn tail(
        &self,
        params: &[(&str, &str)],
        cursor: Option<u64>,
        mut on_line: impl FnMut(LiveLine) -> bool,
    ) -> Result<(), ClientError> {
        let http = reqwest::Client::builder()
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
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let Some(chunk) = resp.chunk().await.map_err(|e| self.transport_error(&e))? else {
                return Err(ClientError::Transport("the tail connection ended".into()));
            };
            buf.extend_from_slice(&chunk);
            // Events end with a blank line.
            while let Some(end) = find_blank_line(&buf) {
                let block: Vec<u8> = buf.drain(..end.1).collect();
                let text = String::from_utf8_lossy(&block[..end.0]).replace("\r\n", "\n");
                match parse_event(&text) {
                    Some(Ok(line)) => {
                        let go_on = on_line(line);
                        if !go_on {
                            return Ok(());
                        }
                    }
                    Some(Err(e)) => return Err(e),
                    None => {}
                }
            }
            if buf.len() > MAX_EVENT_BYTES {
                return Err(ClientError::Decode(format!(
                    "a tail event over {MAX_EVENT_BYTES} bytes"
                )));
            }
        }
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
}
