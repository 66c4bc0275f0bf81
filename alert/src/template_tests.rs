//! Tests of the annotation templates.

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn render(src: &str, value: f64) -> String {
    let l = labels(&[("service", "payment"), ("k8s.pod", "pay-1"), ("n", "1500")]);
    Template::parse(src).unwrap().render(&l, value)
}

fn err(src: &str) -> String {
    Template::parse(src).unwrap_err()
}

#[test]
fn literal_text_only() {
    assert_eq!(render("plain text }} here", 1.0), "plain text }} here");
    assert_eq!(render("", 1.0), "");
    let t = Template::parse("a {{ $value }}").unwrap();
    assert_eq!(t.source(), "a {{ $value }}");
}

#[test]
fn value_renders_like_go_v() {
    assert_eq!(render("{{ $value }}", 0.05), "0.05");
    assert_eq!(render("{{ $value }}", 12.0), "12");
    assert_eq!(render("{{$value}}", -3.5), "-3.5");
    assert_eq!(render("{{ .Value }}", 0.0), "0");
    assert_eq!(render("{{ $value }}", 123456.0), "123456");
    assert_eq!(render("{{ $value }}", 1234567.0), "1.234567e+06");
    assert_eq!(render("{{ $value }}", 1e21), "1e+21");
    assert_eq!(render("{{ $value }}", 0.0001), "0.0001");
    assert_eq!(render("{{ $value }}", 0.00001), "1e-05");
    assert_eq!(render("{{ $value }}", f64::NAN), "NaN");
    assert_eq!(render("{{ $value }}", f64::INFINITY), "+Inf");
    assert_eq!(render("{{ $value }}", f64::NEG_INFINITY), "-Inf");
}

#[test]
fn labels_render_and_missing_is_empty() {
    assert_eq!(
        render("{{ $labels.service }} is down", 1.0),
        "payment is down"
    );
    assert_eq!(render("[{{ .Labels.service }}]", 1.0), "[payment]");
    assert_eq!(render("{{ $labels.k8s.pod }}", 1.0), "pay-1");
    assert_eq!(render("[{{ $labels.nope }}]", 1.0), "[]");
    assert_eq!(render("[{{ $labels.nope | humanize }}]", 1.0), "[]");
}

#[test]
fn external_labels_render_and_missing_is_empty() {
    let t = Template::parse(
        "{{ $externalLabels.cluster }}/{{ .ExternalLabels.region }}/{{ $externalLabels.nope }}",
    )
    .unwrap();
    let ext = labels(&[("cluster", "eu-1"), ("region", "west")]);
    assert_eq!(t.render_with(&labels(&[]), 0.0, &ext), "eu-1/west/");
    assert_eq!(t.render(&labels(&[]), 0.0), "//");
    assert!(err("{{ $externalLabels }}").contains("needs a label name"));
    assert!(err("{{ $externalLabels.9 }}").contains("not a label name"));
}

#[test]
fn humanize_uses_si_prefixes() {
    assert_eq!(render("{{ $value | humanize }}", 1234567.0), "1.235M");
    assert_eq!(render("{{ $value | humanize }}", 0.00123), "1.23m");
    assert_eq!(render("{{ $value | humanize }}", 1500.0), "1.5k");
    assert_eq!(render("{{ $value | humanize }}", 999.0), "999");
    assert_eq!(render("{{ $value | humanize }}", 0.0), "0");
    assert_eq!(render("{{ $value | humanize }}", -2_000_000.0), "-2M");
    assert_eq!(render("{{ $value | humanize }}", 2.5e-7), "250n");
    assert_eq!(render("{{ humanize $value }}", 1234567.0), "1.235M");
    // A label holding a number is humanized too; other text is left alone.
    assert_eq!(render("{{ $labels.n | humanize }}", 0.0), "1.5k");
    assert_eq!(render("{{ $labels.service | humanize }}", 0.0), "payment");
}

#[test]
fn humanize_percentage() {
    assert_eq!(render("{{ $value | humanizePercentage }}", 0.0523), "5.23%");
    assert_eq!(render("{{ $value | humanizePercentage }}", 1.0), "100%");
    assert_eq!(
        render("{{ $value | humanizePercentage }}", 0.123456),
        "12.35%"
    );
    assert_eq!(render("{{ .Value | humanizePercentage }}", 0.0), "0%");
}

#[test]
fn humanize_duration() {
    let d = |v| render("{{ $value | humanizeDuration }}", v);
    assert_eq!(d(90.0), "1m 30s");
    assert_eq!(d(0.25), "250ms");
    assert_eq!(d(7205.0), "2h 0m 5s");
    assert_eq!(d(90061.0), "1d 1h 1m 1s");
    assert_eq!(d(1.5), "1.5s");
    assert_eq!(d(0.0), "0s");
    assert_eq!(d(-90.0), "-1m 30s");
    assert_eq!(d(0.000_002), "2us");
    assert_eq!(d(f64::NAN), "NaN");
}

#[test]
fn printf_verbs() {
    assert_eq!(render("{{ $value | printf \"%.2f\" }}", 0.05234), "0.05");
    assert_eq!(render("{{ $value | printf \"%.0f\" }}", 2.6), "3");
    assert_eq!(render("{{ $value | printf \"%f\" }}", 1.5), "1.500000");
    assert_eq!(render("{{ $value | printf \"%d\" }}", 41.6), "42");
    assert_eq!(render("{{ $value | printf \"%s\" }}", 0.5), "0.5");
    assert_eq!(render("{{ $value | printf \"%v\" }}", 12.0), "12");
    assert_eq!(render("{{ $value | printf \"%g\" }}", 0.25), "0.25");
    assert_eq!(render("{{ $value | printf \"%.3g\" }}", 1234.5), "1.23e+03");
    assert_eq!(render("{{ $value | printf \"%.1f%%\" }}", 5.25), "5.2%");
    assert_eq!(
        render("{{ $value | printf \"took %.1f s\" }}", 2.0),
        "took 2.0 s"
    );
    assert_eq!(render("{{ printf \"%.1f\" $value }}", 2.25), "2.2");
    assert_eq!(render("{{ $value | printf `%d` }}", 7.0), "7");
    assert_eq!(
        render("{{ $value | printf \"%.2f\" }}", f64::INFINITY),
        "+Inf"
    );
    assert_eq!(
        render("{{ $labels.service | printf \"<%s>\" }}", 0.0),
        "<payment>"
    );
    assert_eq!(render("{{ $labels.n | printf \"%.1f\" }}", 0.0), "1500.0");
    // A pipeline can chain functions.
    assert_eq!(
        render("{{ $value | humanize | printf \"~%s\" }}", 1500.0),
        "~1.5k"
    );
    // A quoted "}}" does not close the action.
    assert_eq!(render("{{ $value | printf \"%d}}\" }}", 3.0), "3}}");
}

#[test]
fn trim_markers() {
    assert_eq!(render("a  {{- $value -}}  b", 1.0), "a1b");
    assert_eq!(render("a  {{- $value }}  b", 1.0), "a1  b");
    // "{{-3}}" is not a trim marker.
    assert!(err("{{-3}}").contains("unknown"));
}

#[test]
fn go_float_forms() {
    assert_eq!(go_float(1234567.0, Some(4)), "1.235e+06");
    assert_eq!(go_float(100000.0, Some(4)), "1e+05");
    assert_eq!(go_float(999.96, Some(4)), "1000");
    assert_eq!(go_float(1.5, Some(4)), "1.5");
    assert_eq!(go_float(0.000123, Some(4)), "0.000123");
    assert_eq!(go_float(-0.5, None), "-0.5");
}

#[test]
fn errors_are_clear() {
    assert!(err("a {{ $value").contains("unclosed '{{' at byte 2"));
    assert!(err("{{ }}").contains("empty action"));
    assert!(err("{{}}").contains("empty action"));
    assert!(err("{{ $labels }}").contains("needs a label name"));
    assert!(err("{{ .Labels }}").contains("needs a label name"));
    assert!(err("{{ $labels.9x }}").contains("not a label name"));
    assert!(err("{{ $foo }}").contains("unknown variable '$foo'"));
    assert!(err("{{ .Foo }}").contains("unknown variable '.Foo'"));
    assert!(err("{{ foo }}").contains("unknown variable or function 'foo'"));
    assert!(err("{{ $value | upper }}").contains("unknown function 'upper'"));
    assert!(err("{{ humanize }}").contains("needs a value"));
    assert!(err("{{ $value | }}").contains("empty command"));
    assert!(err("{{ | humanize }}").contains("empty command"));
    assert!(err("{{ $value $value }}").contains("unexpected words"));
    assert!(err("{{ $value | humanize 3 }}").contains("takes no arguments"));
    assert!(err("{{ $value | printf }}").contains("one quoted format"));
    assert!(err("{{ $value | printf \"%x\" }}").contains("exactly one of"));
    assert!(err("{{ $value | printf \"%d %d\" }}").contains("exactly one of"));
    assert!(err("{{ $value | printf \"none\" }}").contains("exactly one of"));
    assert!(err("{{ $value | printf \"%.2d\" }}").contains("exactly one of"));
    assert!(err("{{ $value | printf \"%.99f\" }}").contains("too large"));
    assert!(err("{{ $value | printf \"%.2f }}").contains("unclosed"));
    assert!(err("{{ $value | printf \"\\q\" }}").contains("unknown escape"));
    assert!(err("{{ $value | \"x\" }}").contains("write a function"));
    assert!(err("{{ \"x\" }}").contains("starts with one of"));
    assert!(err("{{ len($labels) }}").contains("parentheses"));
    assert!(err("x {{ $value }} {{ $nope }}").contains("at byte 15"));
    let big = "x".repeat(MAX_TEMPLATE_BYTES + 1);
    assert!(err(&big).contains("the most is 4096"));
}
