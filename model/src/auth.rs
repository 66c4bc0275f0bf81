//! The bearer-token rule shared by every listener that takes a token: the query API and the
//! OTLP transports (collector and agent); and the start-up warning for a listener open to
//! other hosts without one.

use std::net::SocketAddr;

/// True when an `Authorization` header value is `Bearer <token>`. Compares without an early
/// exit, so timing does not tell how much of a token matched.
pub fn bearer_matches(header: Option<&str>, token: &str) -> bool {
    header
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .is_some_and(|t| {
            let (a, b) = (t.trim().as_bytes(), token.as_bytes());
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        })
}

/// The warning to log at start when a listener takes requests from other hosts with no token:
/// `addr` is not a loopback address (`0.0.0.0` and `::` included) and `token` is unset or
/// empty. `what` names the listener and its key, `fix` says what to do. None otherwise.
pub fn open_listener_warning(
    what: &str,
    addr: SocketAddr,
    token: Option<&str>,
    fix: &str,
) -> Option<String> {
    if addr.ip().to_canonical().is_loopback() || token.is_some_and(|t| !t.is_empty()) {
        return None;
    }
    Some(format!(
        "{what} listens on {addr}, which other hosts can reach, and takes no token: anyone who \
         can connect may use it; {fix}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_must_match_exactly() {
        assert!(bearer_matches(Some("Bearer s3cret"), "s3cret"));
        assert!(bearer_matches(Some("bearer s3cret "), "s3cret"));
        assert!(!bearer_matches(Some("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(Some("Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(None, "s3cret"));
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn listeners_beyond_loopback_without_a_token_are_warned_of() {
        let w = |addr: &str, token: Option<&str>| {
            open_listener_warning(
                "query API (listen.api)",
                addr.parse().unwrap(),
                token,
                "set auth.query_token",
            )
        };
        for addr in [
            "0.0.0.0:7700",
            "[::]:7700",
            "10.1.2.3:7700",
            "[::ffff:10.0.0.1]:1",
        ] {
            let text = w(addr, None).unwrap_or_default();
            assert!(text.contains("query API (listen.api)"), "{addr}: {text}");
            assert!(text.contains("set auth.query_token"), "{addr}: {text}");
            assert!(w(addr, Some("")).is_some(), "{addr}");
            assert!(w(addr, Some("s3cret")).is_none(), "{addr}");
        }
        for addr in [
            "127.0.0.1:7700",
            "127.9.9.9:1",
            "[::1]:7700",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(w(addr, None).is_none(), "{addr}");
        }
    }
}
