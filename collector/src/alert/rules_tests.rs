#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

#[test]
fn probe() {
    let text = r#"
[[rule]]
name = "A"
for = "x"

[rule.metric]
name = "skein.span.calls"
when = "> 1"
bogus = 1

[[rule]]
name = "B"
[rule.logs]
window = "1m"

[[rule]]
for = "1s"
[rule.traces]

[[rule]]
name = "D"
[rule.traces]
[rule.absent]
heartbeat = true
"#;
    let errs = parse_rules(Path::new("r.toml"), text, &offline_known).unwrap_err();
    for e in errs {
        println!("{e}");
    }
    let errs = parse_rules(
        Path::new("r.toml"),
        "[[rule]]\nname = \"x\"\nx = = 1\n",
        &offline_known,
    )
    .unwrap_err();
    for e in errs {
        println!("{e}");
    }
    panic!();
}
