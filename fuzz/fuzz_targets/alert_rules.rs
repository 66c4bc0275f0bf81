//! Alert rule files and their annotation templates. The first byte picks: a rule file's
//! TOML text through the rule parser (every metric known, or none, so the "did you mean"
//! path runs too), with each annotation of the rules it accepts rendered; or one template
//! parsed and rendered with labels and a value taken from the input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use skein_alert::rules::parse_rules_with_names;
use skein_alert::template::Template;
use std::collections::BTreeMap;
use std::path::Path;

fn value_of(b: &[u8]) -> f64 {
    let mut n = [0u8; 8];
    for (d, s) in n.iter_mut().zip(b) {
        *d = *s;
    }
    f64::from_le_bytes(n)
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 256 * 1024 {
        return;
    }
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let value = value_of(rest);
    match mode % 3 {
        m @ 0..=1 => {
            let text = String::from_utf8_lossy(rest);
            let known = m == 0;
            let names = || {
                vec![
                    "http_requests_total".to_string(),
                    "skein.agent.up".to_string(),
                ]
            };
            if let Ok(rules) =
                parse_rules_with_names(Path::new("fuzz.toml"), &text, &|_| known, &names)
            {
                for r in &rules {
                    let _ = r.describe();
                    for t in r.annotations.values() {
                        let _ = t.render(&r.labels, value);
                        let _ = t.render(&r.labels, f64::NAN);
                    }
                }
            }
        }
        _ => {
            let body = rest.get(8..).unwrap_or_default();
            let text = String::from_utf8_lossy(body);
            // `template` then label lines `name=value`, after a NUL.
            let (tpl, labels) = text.split_once('\0').unwrap_or((&text, ""));
            let labels: BTreeMap<String, String> = labels
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            if let Ok(t) = Template::parse(tpl) {
                assert_eq!(t.source(), tpl);
                for v in [
                    value,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::NAN,
                    f64::MAX,
                    -0.0,
                ] {
                    let _ = t.render(&labels, v);
                }
            }
        }
    }
});
