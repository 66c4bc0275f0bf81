//! Tests of the agent's `[tls]` section (the section itself is
//! [`skein_otlp::tls::section::TlsSection`], shared with the collector).

pub use skein_otlp::tls::section::TlsSection;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::AgentConfig;

    #[test]
    fn plain_is_the_default_and_bad_tls_keys_name_key_and_value() {
        assert_eq!(TlsSection::default().server().unwrap(), None);
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let junk = junk.display().to_string();
        let cases = [
            (
                "[tls]\ncert_file = \"/no/such/cert.pem\"".to_string(),
                "key tls.cert_file: value \"/no/such/cert.pem\" needs tls.key_file".to_string(),
            ),
            (
                "[tls]\nkey_file = \"/no/such/key.pem\"".into(),
                "key tls.key_file: value \"/no/such/key.pem\" needs tls.cert_file".into(),
            ),
            (
                "[tls]\nclient_ca_file = \"/ca.pem\"".into(),
                "key tls.client_ca_file: value \"/ca.pem\"".into(),
            ),
            (
                "[tls]\ncert_file = \"/no/such/cert.pem\"\nkey_file = \"/no/such/key.pem\"".into(),
                "key tls.cert_file: value \"/no/such/cert.pem\"".into(),
            ),
            (
                format!("[tls]\ncert_file = \"{junk}\"\nkey_file = \"{junk}\""),
                format!("key tls.cert_file: value \"{junk}\""),
            ),
            ("[tls]\ncolour = \"blue\"".into(), "colour".into()),
        ];
        for (text, want) in cases {
            let e = AgentConfig::from_toml(&text).unwrap_err();
            assert!(e.contains(&want), "{text:?} gave {e:?}, want {want:?}");
        }
    }
}
