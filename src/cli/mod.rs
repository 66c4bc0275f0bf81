//! The query commands of the `skein` binary: `skein trace`, `skein search`, and the
//! monitoring views `skein services`, `skein deps`, `skein metrics`, `skein hosts`, and the alert commands
//! `skein alerts`, `skein rules`, `skein silence`.
//!
//! Each command talks to a running collector's query API through
//! [`skein_client::Client`], writes to the given output and returns its exit code.
//! Rendering lives in [`render`], as pure functions. The commands' flags, and their stdout
//! and exit codes, are in [`crate::cmd`].

pub mod alerts;
pub mod cluster;
pub mod monitor;
pub mod render;
pub mod rulecheck;
pub mod search;
pub mod tail;
pub mod trace;

/// Exit codes, as ripgrep: 0 found, 1 nothing found, 2 error.
pub const EXIT_FOUND: u8 = 0;
/// Nothing matched: no trace for the key, no log for the search.
pub const EXIT_NOT_FOUND: u8 = 1;
/// The command failed (bad arguments, API or transport error).
pub const EXIT_ERROR: u8 = 2;

/// A one-shot HTTP server for the commands' tests: answers every request with one canned
/// response and reports the request lines it saw.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_server {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    /// Starts the server; returns its base URL and a receiver of the request heads.
    pub(crate) async fn serve(
        status: u16,
        body: String,
    ) -> (String, mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = sock.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(resp.as_bytes()).await.unwrap();
                let _ = sock.shutdown().await;
            }
        });
        (format!("http://{addr}"), rx)
    }
}
