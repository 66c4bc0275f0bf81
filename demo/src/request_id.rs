//! The `X-Request-ID` header: checking one that came in, making a new one.

use http::HeaderMap;

/// The header's name.
pub(crate) const HEADER: &str = "x-request-id";

/// Longest request ID taken from a request, in bytes.
pub(crate) const MAX_LEN: usize = 128;

/// A usable request ID: 1 to [`MAX_LEN`] bytes of printable ASCII, not only spaces.
pub(crate) fn is_valid(id: &str) -> bool {
    !id.trim().is_empty() && id.len() <= MAX_LEN && id.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// The request ID in `headers`, if there is a usable one.
pub(crate) fn from_headers(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(HEADER)?.to_str().ok()?;
    is_valid(value).then(|| value.to_owned())
}

/// A new request ID: `req-` and 16 lowercase hex digits.
pub(crate) fn generate() -> String {
    format!("req-{:016x}", fastrand::u64(..))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn validity() {
        assert!(is_valid("req-0123456789abcdef"));
        assert!(is_valid("a"));
        assert!(is_valid(&"x".repeat(MAX_LEN)));
        assert!(!is_valid(""));
        assert!(!is_valid("   "));
        assert!(!is_valid(&"x".repeat(MAX_LEN + 1)));
        assert!(!is_valid("bad\tid"));
        assert!(!is_valid("bad\u{7f}id"));
        assert!(!is_valid("héllo"));
    }

    #[test]
    fn generated_ids_have_the_documented_shape() {
        let id = generate();
        let hex = id.strip_prefix("req-").unwrap();
        assert_eq!(hex.len(), 16);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert!(is_valid(&id));
    }

    #[test]
    fn headers_give_only_valid_ids() {
        let mut h = HeaderMap::new();
        assert_eq!(from_headers(&h), None);
        h.insert(HEADER, HeaderValue::from_static("load-1"));
        assert_eq!(from_headers(&h).as_deref(), Some("load-1"));
        h.insert(HEADER, HeaderValue::from_static(""));
        assert_eq!(from_headers(&h), None);
        h.insert(HEADER, HeaderValue::from_bytes(b"caf\xe9").unwrap());
        assert_eq!(from_headers(&h), None);
    }
}
