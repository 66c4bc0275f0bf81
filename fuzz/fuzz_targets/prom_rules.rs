//! Prometheus rule files (YAML) through the checker `skein rules check` and the collector run
//! (`promrules::parse_prom_rules`: the YAML tree, the rule checks, `promql-parser` on every
//! `expr`, the templates), then `duplicate_rules` and every accepted annotation and label
//! template rendered. On a thread with a 2 MiB stack, so that deep nesting that overflows
//! shows here. Alias bombs and deep nesting must stop at the tree's bounds, within
//! libFuzzer's `-timeout`. Panics count even though the checker catches them (a caught panic
//! refuses a file that may be good).
#![no_main]
use libfuzzer_sys::fuzz_target;
use skein_alert::promrules::{PromKind, duplicate_rules, parse_prom_rules};
use skein_alert::rule_types::MAX_FILE_BYTES;
use std::collections::BTreeMap;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    // A file over the limit is refused before parsing; a little past it is enough.
    if data.len() > MAX_FILE_BYTES + 16 {
        return;
    }
    let text = String::from_utf8_lossy(data).into_owned();
    skein_fuzz::on_small_stack(move || {
        match parse_prom_rules(Path::new("fuzz.rules.yml"), &text) {
            Ok(groups) => {
                let _ = duplicate_rules(&groups);
                let labels: BTreeMap<String, String> =
                    [("instance".to_string(), "a:9100".to_string())].into();
                for g in &groups {
                    assert!(!g.name.is_empty(), "a group has a name");
                    for r in &g.rules {
                        assert!(!r.expr.trim().is_empty(), "a rule has an expression");
                        if r.kind == PromKind::Recording {
                            assert!(r.annotations.is_empty(), "no annotations on records");
                        }
                        for t in r.annotations.values().chain(r.label_templates.values()) {
                            let _ = t.render(&labels, 0.25);
                            let _ = t.render(&labels, f64::NAN);
                        }
                    }
                }
            }
            Err(errors) => assert!(!errors.is_empty(), "a refusal says why"),
        }
    });
});
