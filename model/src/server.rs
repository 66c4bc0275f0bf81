//! The `[server]` config section shared by the collector and the agent: limits on the
//! connections of every HTTP and gRPC listener of the process. The listeners apply them
//! through `skein_tls::conn::ConnLimits`.

use serde::{Deserialize, Serialize};

/// Limits on connections, for every listener of the process together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Connections open at once over all listeners (TLS handshakes included). At the cap new
    /// clients wait in the kernel's backlog; past three quarters of it idle connections are
    /// closed after 5 s. Default 16384; keep it under the process's open-file limit.
    pub max_connections: usize,
    /// A connection with no request in progress and no byte either way for this long is
    /// closed; so is a response the client stops reading. Milliseconds, default 60000.
    pub idle_timeout_ms: u64,
    /// An HTTP/1 request head must arrive within this, and a kept-alive HTTP/1 connection
    /// waits this long for its next request. Milliseconds, default 30000.
    pub header_timeout_ms: u64,
    /// A request body must arrive whole within this (else 408). Milliseconds, default 60000.
    pub body_timeout_ms: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            max_connections: 16_384,
            idle_timeout_ms: 60_000,
            header_timeout_ms: 30_000,
            body_timeout_ms: 60_000,
        }
    }
}

impl ServerSection {
    /// Checks every value; the error names the key (under `section`) and the value.
    pub fn validate(&self, section: &str) -> Result<(), String> {
        for (key, v, least) in [
            ("max_connections", self.max_connections as u64, 16),
            ("idle_timeout_ms", self.idle_timeout_ms, 100),
            ("header_timeout_ms", self.header_timeout_ms, 100),
            ("body_timeout_ms", self.body_timeout_ms, 100),
        ] {
            if v < least {
                return Err(format!(
                    "key {section}.{key}: value {v} is too small, the least is {least}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_a_tiny_value_is_named() {
        assert!(ServerSection::default().validate("server").is_ok());
        let bad = ServerSection {
            header_timeout_ms: 5,
            ..ServerSection::default()
        };
        let e = bad.validate("server").unwrap_err();
        assert!(
            e.contains("server.header_timeout_ms") && e.contains("value 5"),
            "{e}"
        );
    }
}
