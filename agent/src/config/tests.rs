//! Tests of the agent's configuration file: defaults, the example file, and errors that name
//! the key and the value.
#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn defaults_are_valid() {
    AgentConfig::default().validate().unwrap();
}

#[test]
fn example_file_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent.example.toml");
    let cfg = AgentConfig::from_file(&path).unwrap();
    assert!(!cfg.sources.is_empty());
    assert!(!cfg.host_metrics.processes.is_empty());
    assert!(!cfg.scrapes.is_empty());
}

#[test]
fn bad_values_name_key_and_value() {
    let cases = [
        ("[collector]\nendpoint = \"ftp://x\"", "collector.endpoint"),
        ("[batch]\nmax_wait = \"5 parsecs\"", "5 parsecs"),
        ("[buffer]\nwhen_full = \"explode\"", "explode"),
        ("[buffer]\nmax_mb = 0", "buffer.max_mb"),
        ("[receiver]\nhttp = \"nowhere\"", "receiver.http"),
        (
            "[[source]]\nname = \"a\"\npaths = [\"/x/*.log\"]\nformat = \"regex\"",
            "source[0].regex",
        ),
        (
            "[[source]]\nname = \"a\"\npaths = [\"/x/*.log\"]\nregex = \"(unclosed\"",
            "(unclosed",
        ),
        (
            "[[source]]\nname = \"a\"\npaths = [\"/x/[\"]",
            "source[0].paths",
        ),
        ("[[source]]\nname = \"a\"\npaths = []", "has no paths"),
        (
            "[[source]]\nname = \"a\"\npaths = [\"/a\"]\n[[source]]\nname = \"a\"\npaths = [\"/b\"]",
            "source[1].name",
        ),
        ("[agent]\nfavourite_colour = \"blue\"", "favourite_colour"),
        (
            "[collector]\nendpoint = \"https://c:4318\"\nca_file = \"/no/such/ca.pem\"",
            "collector.ca_file: value \"/no/such/ca.pem\"",
        ),
        (
            "[collector]\nendpoint = \"http://c:4318\"\ninsecure_skip_verify = true",
            "is not https://",
        ),
        (
            "[collector]\nendpoint = \"https://c:4318\"\nclient_key_file = \"/k.pem\"",
            "collector.client_key_file",
        ),
        (
            "[[host_metrics.process]]\nservice = \"x\"",
            "host_metrics.process[0]",
        ),
    ];
    for (text, want) in cases {
        let e = AgentConfig::from_toml(text).unwrap_err();
        assert!(e.contains(want), "{text:?} gave {e:?}, want {want:?}");
    }
}

#[test]
fn durations_read_and_write() {
    let cfg = AgentConfig::from_toml("[batch]\nmax_wait = \"250ms\"").unwrap();
    assert_eq!(cfg.batch.max_wait.0, Duration::from_millis(250));
    assert_eq!(String::from(cfg.batch.max_wait), "250ms");
}
