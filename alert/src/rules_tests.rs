#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use skein_model::metric::Labels;
use skein_store::tsdb::MatchOp;

fn parse(text: &str) -> Result<Vec<Rule>, Vec<RuleError>> {
    parse_rules(Path::new("rules/app.toml"), text, &offline_known)
}

fn one(text: &str) -> Rule {
    let mut rules = parse(text).unwrap();
    assert_eq!(rules.len(), 1);
    rules.remove(0)
}

fn errors(text: &str) -> Vec<(usize, String)> {
    parse(text)
        .unwrap_err()
        .into_iter()
        .map(|e| (e.line, e.message))
        .collect()
}

/// The only error of `text`; its line and message.
fn one_error(text: &str) -> (usize, String) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    errs.into_iter().next().unwrap()
}

fn assert_error(text: &str, line: usize, needle: &str) {
    let (l, msg) = one_error(text);
    assert_eq!(l, line, "{msg}");
    assert!(msg.contains(needle), "{msg:?} does not contain {needle:?}");
}

fn metric(c: &Condition) -> &MetricCond {
    match c {
        Condition::Metric(m) => m,
        other => panic!("not a metric condition: {other:?}"),
    }
}

const FULL_METRIC: &str = r#"
# payments
[[rule]]
name = "HighErrorRate"
for = "30s"
keep_firing_for = "1m"
labels = { severity = "page", team = "payments" }
annotations.summary = "{{ $labels.service }} fails {{ $value | humanizePercentage }} of calls"
annotations.description = "over {{ $value }}"

  [rule.metric]
  name = "skein.span.errors"
  match = ["service=~pay.*"]
  agg = "rate"
  window = "2m"
  by = ["service"]
  divide_by = { name = "skein.span.calls", agg = "rate", match = [] }
  when = "> 0.05"
"#;

#[test]
fn metric_rule_with_every_field() {
    let r = one(FULL_METRIC);
    assert_eq!(r.name, "HighErrorRate");
    assert_eq!(r.file, PathBuf::from("rules/app.toml"));
    assert_eq!(r.line, 4);
    assert_eq!(r.kind(), "metric");
    assert_eq!(r.for_, Duration::from_secs(30));
    assert_eq!(r.keep_firing_for, Duration::from_secs(60));
    assert_eq!(r.labels.len(), 2);
    assert_eq!(r.labels["severity"], "page");
    assert_eq!(r.labels["team"], "payments");
    let labels = BTreeMap::from([("service".to_string(), "payment".to_string())]);
    assert_eq!(
        r.annotations["summary"].render(&labels, 0.0523),
        "payment fails 5.23% of calls"
    );
    assert_eq!(r.annotations["description"].source(), "over {{ $value }}");
    let m = metric(&r.condition);
    assert_eq!(m.metric.name, "skein.span.errors");
    assert_eq!(m.metric.agg, Agg::Rate);
    assert_eq!(m.metric.agg_name, "rate");
    assert_eq!(m.metric.matchers.len(), 1);
    assert_eq!(m.metric.matchers[0].label, "service");
    assert_eq!(m.metric.matchers[0].op, MatchOp::Re);
    assert!(m.metric.matchers[0].matches(&Labels::from_pairs([("service", "payment")])));
    assert_eq!(m.window, Duration::from_secs(120));
    assert_eq!(m.by, vec!["service".to_string()]);
    let d = m.divide_by.as_ref().unwrap();
    assert_eq!(d.name, "skein.span.calls");
    assert_eq!(d.agg, Agg::Rate);
    assert!(d.matchers.is_empty(), "an explicit empty match stays empty");
    assert_eq!(
        m.when,
        Compare {
            op: CmpOp::Gt,
            threshold: 0.05
        }
    );
    assert_eq!(
        r.describe(),
        r#"rate(skein.span.errors{service=~"pay.*"}[2m]) by (service) / rate(skein.span.calls[2m]) > 0.05"#
    );
}

#[test]
fn metric_defaults() {
    let r = one(r#"
[[rule]]
name = "Slow"
[rule.metric]
name = "skein.span.duration.p99"
when = ">= 500"
"#);
    assert_eq!(r.for_, Duration::ZERO);
    assert_eq!(r.keep_firing_for, Duration::ZERO);
    assert!(r.labels.is_empty());
    assert!(r.annotations.is_empty());
    let m = metric(&r.condition);
    assert_eq!(m.metric.agg, Agg::Avg);
    assert_eq!(m.metric.agg_name, "avg");
    assert!(m.metric.matchers.is_empty());
    assert_eq!(m.window, DEFAULT_WINDOW);
    assert!(m.by.is_empty());
    assert!(m.divide_by.is_none());
    assert_eq!(r.describe(), "avg(skein.span.duration.p99[1m]) >= 500");
}

#[test]
fn divide_by_defaults_to_the_numerator() {
    let r = one(r#"
[[rule]]
name = "Ratio"
[rule.metric]
name = "skein.edge.errors"
match = ["client=web", "server!~db.*"]
agg = "P99"
by = ["client", "k8s.ns"]
divide_by = { name = "skein.edge.calls" }
when = "!= 1"
"#);
    let m = metric(&r.condition);
    assert_eq!(m.metric.agg, Agg::Percentile(0.99));
    assert_eq!(m.metric.agg_name, "p99");
    let d = m.divide_by.as_ref().unwrap();
    assert_eq!(d.agg_name, "p99");
    assert_eq!(d.matchers.len(), 2);
    assert_eq!(d.matchers[1].op, MatchOp::NotRe);
    assert_eq!(
        r.describe(),
        r#"p99(skein.edge.errors{client="web", server!~"db.*"}[1m]) by (client, k8s.ns) / p99(skein.edge.calls{client="web", server!~"db.*"}[1m]) != 1"#
    );
}

#[test]
fn logs_rule() {
    let r = one(r#"
[[rule]]
name = "Timeouts"
[rule.logs]
service = "payment"
severity = "WARNING"
query = "timeout"
window = "5m"
by = ["service"]
when = "> 10"
"#);
    assert_eq!(r.kind(), "logs");
    let Condition::Logs(l) = &r.condition else {
        panic!("not logs")
    };
    assert_eq!(
        *l,
        LogCond {
            service: Some("payment".into()),
            min_severity: Some(13),
            query: Some("timeout".into()),
            window: Duration::from_secs(300),
            by_service: true,
            when: Compare {
                op: CmpOp::Gt,
                threshold: 10.0
            },
        }
    );
    assert_eq!(
        r.describe(),
        r#"count(logs{service="payment", severity>=warn, query="timeout"}[5m]) by (service) > 10"#
    );
}

#[test]
fn logs_defaults_and_severities() {
    let r = one("[[rule]]\nname = \"Any\"\n[rule.logs]\nquery = \" \"\nwhen = \"> 0\"\n");
    let Condition::Logs(l) = &r.condition else {
        panic!("not logs")
    };
    assert_eq!(l.service, None);
    assert_eq!(l.min_severity, None);
    assert_eq!(l.query, None, "a blank query is no query");
    assert_eq!(l.window, DEFAULT_WINDOW);
    assert!(!l.by_service);
    assert_eq!(r.describe(), "count(logs[1m]) > 0");
    for (name, n) in [
        ("trace", 1),
        ("Debug", 5),
        ("info", 9),
        ("warn", 13),
        ("warning", 13),
        ("ERROR", 17),
        ("fatal", 21),
    ] {
        assert_eq!(severity_number(name), Some(n), "{name}");
    }
    assert_eq!(severity_number("loud"), None);
}

#[test]
fn traces_rule_and_defaults() {
    let r = one(r#"
[[rule]]
name = "SlowOrders"
[rule.traces]
service = "order"
operation = "POST /orders"
min_duration = "2s"
errors = true
window = "30s"
by = ["service", "operation"]
when = ">= 3"
"#);
    assert_eq!(r.kind(), "traces");
    let Condition::Traces(t) = &r.condition else {
        panic!("not traces")
    };
    assert_eq!(t.service.as_deref(), Some("order"));
    assert_eq!(t.operation.as_deref(), Some("POST /orders"));
    assert_eq!(t.min_duration, Some(Duration::from_secs(2)));
    assert!(t.errors_only && t.by_service && t.by_operation);
    assert_eq!(t.window, Duration::from_secs(30));
    assert_eq!(t.when.to_string(), ">= 3");
    assert_eq!(
        r.describe(),
        r#"count(spans{service="order", operation="POST /orders", duration>=2s, error=true}[30s]) by (service, operation) >= 3"#
    );

    let r = one("[[rule]]\nname = \"AnySpan\"\n[rule.traces]\n");
    let Condition::Traces(t) = &r.condition else {
        panic!("not traces")
    };
    assert_eq!(
        *t,
        TraceCond {
            service: None,
            operation: None,
            min_duration: None,
            errors_only: false,
            window: DEFAULT_WINDOW,
            by_service: false,
            by_operation: false,
            when: Compare {
                op: CmpOp::Gt,
                threshold: 0.0
            },
        }
    );
    assert_eq!(r.describe(), "count(spans[1m]) > 0");
}

#[test]
fn absent_heartbeat() {
    let r = one(
        "[[rule]]\nname = \"AgentDown\"\n[rule.absent]\nheartbeat = true\nmatch = [\"host=~web-.*\"]\n",
    );
    assert_eq!(r.kind(), "absent");
    let Condition::Absent(AbsentCond::Heartbeat { matchers, after }) = &r.condition else {
        panic!("not a heartbeat")
    };
    assert_eq!(*after, DEFAULT_AFTER);
    assert_eq!(matchers.len(), 1);
    assert_eq!(r.describe(), r#"absent(heartbeat{host=~"web-.*"}) for 30s"#);
}

#[test]
fn absent_series() {
    let r = one(
        "[[rule]]\nname = \"NoCalls\"\n[rule.absent]\nheartbeat = false\nmetric = \"skein.span.calls\"\nmatch = [\"service=delivery\"]\nafter = \"2m\"\n",
    );
    let Condition::Absent(AbsentCond::Series {
        metric,
        matchers,
        after,
        lookback,
    }) = &r.condition
    else {
        panic!("not a series")
    };
    assert_eq!(metric, "skein.span.calls");
    assert_eq!(matchers[0].value, "delivery");
    assert_eq!(*after, Duration::from_secs(120));
    assert_eq!(*lookback, DEFAULT_LOOKBACK);
    assert_eq!(
        r.describe(),
        r#"absent(skein.span.calls{service="delivery"}) for 2m (seen within 1h)"#
    );
    let r = one(
        "[[rule]]\nname = \"X\"\n[rule.absent]\nmetric = \"http.requests\"\nafter = \"90s\"\nlookback = \"6h\"\n",
    );
    assert_eq!(
        r.describe(),
        "absent(http.requests) for 1m30s (seen within 6h)"
    );
}

#[test]
fn several_rules_keep_their_order_and_lines() {
    let text = "[[rule]]\nname = \"A\"\n[rule.traces]\n\n[[rule]]\nname = \"B\"\n[rule.traces]\n\n[[rule]]\nname = \"A\"\nlabels = { severity = \"page\" }\n[rule.traces]\n";
    let rules = parse(text).unwrap();
    let got: Vec<(&str, usize)> = rules.iter().map(|r| (r.name.as_str(), r.line)).collect();
    assert_eq!(got, vec![("A", 2), ("B", 6), ("A", 10)]);
    assert!(parse("").unwrap().is_empty());
    assert!(parse("# nothing yet\n").unwrap().is_empty());
}

#[test]
fn compare_parse_holds_and_display() {
    let c = |s: &str| Compare::parse(s).unwrap();
    assert_eq!(c("> 0.05").op, CmpOp::Gt);
    assert_eq!(c(">=1").op, CmpOp::Ge);
    assert_eq!(c("  <  -2.5 ").threshold, -2.5);
    assert_eq!(c("<= 1e3").threshold, 1000.0);
    assert_eq!(c("== 0").op, CmpOp::Eq);
    assert_eq!(c("!= 0").op, CmpOp::Ne);
    assert_eq!(c("> 0.05").to_string(), "> 0.05");
    assert_eq!(c("<=  7").to_string(), "<= 7");
    for bad in [
        "", "0.5", "=> 1", "> ", "> x", "> inf", "> NaN", "~ 1", ">> 1",
    ] {
        assert!(Compare::parse(bad).is_err(), "{bad:?}");
    }
    let cases = [
        ("> 1", [false, false, true]),
        (">= 1", [false, true, true]),
        ("< 1", [true, false, false]),
        ("<= 1", [true, true, false]),
        ("== 1", [false, true, false]),
        ("!= 1", [true, false, true]),
    ];
    for (text, want) in cases {
        let cmp = c(text);
        let got = [0.0, 1.0, 2.0].map(|v| cmp.holds(v));
        assert_eq!(got, want, "{text}");
        assert!(!cmp.holds(f64::NAN), "{text} with NaN");
    }
    assert!(c("> 1").holds(f64::INFINITY));
}

#[test]
fn syntax_and_shape_errors() {
    assert_error("[[rule]]\nname = \"A\"\nfor = = \"1s\"\n", 3, "");
    assert_error(
        "[[rule]]\nname = \"A\"\n[rule.traces]\nbogus = 1\n",
        4,
        "unknown field `bogus`",
    );
    assert_error(
        "[[rule]]\nname = \"A\"\nbogus = 1\n[rule.traces]\n",
        3,
        "unknown field `bogus`",
    );
    assert_error("\n\nrules = []\n", 3, "unknown key 'rules'");
    assert_error("rule = 5\n", 1, "array of tables");
    assert_error("rule = [5]\n", 1, "must be a table");
    assert_error(
        "[[rule]]\nfor = \"1s\"\n[rule.traces]\n",
        1,
        "missing field `name`",
    );
    assert_error(
        "[[rule]]\nname = \"A\"\nfor = 30\n[rule.traces]\n",
        3,
        "invalid type",
    );
    assert_error(
        "[[rule]]\nname = \"A\"\n\n[rule.metric]\nname = \"x\"\n",
        4,
        "missing field `when`",
    );
    assert_error(
        "[[rule]]\nname = \"A\"\n[rule.logs]\n",
        3,
        "missing field `when`",
    );
    // The toml message is one short line, without the snippet.
    let (_, msg) = one_error("[[rule]]\nname = \"A\"\n[rule.traces]\nbogus = 1\n");
    assert!(!msg.contains('\n') && !msg.contains('|'), "{msg}");
}

#[test]
fn rule_level_errors() {
    assert_error(
        "[[rule]]\nname = \"9lives\"\n[rule.traces]\n",
        2,
        "must match",
    );
    assert_error("[[rule]]\nname = \"a-b\"\n[rule.traces]\n", 2, "must match");
    assert_error("[[rule]]\nname = \"A\"\n", 2, "needs a condition");
    assert_error(
        "[[rule]]\nname = \"A\"\n[rule.traces]\n[rule.logs]\nwhen = \"> 1\"\n",
        2,
        "has [rule.logs] and [rule.traces]",
    );
    assert_error(
        "[[rule]]\nname = \"A\"\nfor = \"soon\"\n[rule.traces]\n",
        3,
        "for: cannot read duration 'soon'",
    );
    assert_error(
        "[[rule]]\nname = \"A\"\nkeep_firing_for = \"-1m\"\n[rule.traces]\n",
        3,
        "keep_firing_for: cannot read duration '-1m'",
    );
    assert_error(
        "[[rule]]\nname = \"A\"\nlabels = { alertname = \"B\" }\n[rule.traces]\n",
        3,
        "alertname",
    );
    assert_error(
        "[[rule]]\nname = \"A\"\nlabels = { \"bad-name\" = \"x\" }\n[rule.traces]\n",
        3,
        "label name \"bad-name\"",
    );
    assert_error(
        "[[rule]]\nname = \"A\"\n\nannotations.summary = \"{{ $labels }}\"\n[rule.traces]\n",
        4,
        "annotation 'summary': in action at byte 0: '$labels' needs a label name",
    );
    let big = format!(
        "[[rule]]\nname = \"A\"\nannotations.x = \"{}\"\n[rule.traces]\n",
        "y".repeat(MAX_TEMPLATE_BYTES + 1)
    );
    let (line, msg) = one_error(&big);
    assert_eq!(line, 3);
    assert!(
        msg.contains("annotation 'x'") && msg.contains("4096"),
        "{msg}"
    );
}

#[test]
fn condition_errors() {
    let m = |body: &str| format!("[[rule]]\nname = \"A\"\n[rule.metric]\n{body}");
    assert_error(
        &m("name = \"skein.span.calls\"\nwindow = \"0s\"\nwhen = \"> 1\"\n"),
        5,
        "window = \"0s\" must be above 0",
    );
    assert_error(
        &m("name = \"skein.span.calls\"\nwindow = \"1 fortnight\"\nwhen = \"> 1\"\n"),
        5,
        "window: cannot read duration",
    );
    assert_error(
        &m("name = \"skein.span.calls\"\nmatch = [\"service\"]\nwhen = \"> 1\"\n"),
        5,
        "match: cannot read matcher",
    );
    assert_error(
        &m("name = \"skein.span.calls\"\nmatch = [\"a=~(\"]\nwhen = \"> 1\"\n"),
        5,
        "bad regular expression",
    );
    assert_error(
        &m("name = \"skein.span.calls\"\nagg = \"median\"\nwhen = \"> 1\"\n"),
        5,
        "agg 'median' is not an aggregation",
    );
    assert_error(
        &m("name = \"skein.span.calls\"\nby = [\"a b\"]\nwhen = \"> 1\"\n"),
        5,
        "not a label name",
    );
    assert_error(
        &m("name = \"skein.span.calls\"\nby = [\"a\", \"a\"]\nwhen = \"> 1\"\n"),
        5,
        "listed twice",
    );
    assert_error(
        &m("name = \"skein.span.calls\"\nwhen = \"above 1\"\n"),
        5,
        "start with one of",
    );
    assert_error(
        &m("name = \"skein.span.calls\"\nwhen = \"> lots\"\n"),
        5,
        "not a finite number",
    );
    assert_error(&m("name = \"\"\nwhen = \"> 1\"\n"), 4, "not a metric name");
    assert_error(
        &m("name = \"skein.span.eror\"\nwhen = \"> 1\"\n"),
        4,
        "unknown metric 'skein.span.eror'; known: skein.span.errors,",
    );
    assert_error(
        &m(
            "name = \"skein.span.errors\"\ndivide_by = { name = \"skein.span.cals\" }\nwhen = \"> 1\"\n",
        ),
        5,
        "divide_by.name: unknown metric 'skein.span.cals'",
    );
    assert_error(
        &m(
            "name = \"skein.span.errors\"\ndivide_by = { name = \"skein.span.calls\", match = [\"x\"] }\nwhen = \"> 1\"\n",
        ),
        5,
        "divide_by.match: cannot read matcher",
    );

    let l = |body: &str| format!("[[rule]]\nname = \"A\"\n[rule.logs]\nwhen = \"> 1\"\n{body}");
    assert_error(&l("by = [\"host\"]\n"), 5, "only by service");
    assert_error(
        &l("severity = \"loud\"\n"),
        5,
        "severity \"loud\" is not one of",
    );
    assert_error(&l("service = \"\"\n"), 5, "service must not be empty");
    assert_error(&l("window = \"0ms\"\n"), 5, "must be above 0");

    let t = |body: &str| format!("[[rule]]\nname = \"A\"\n[rule.traces]\n{body}");
    assert_error(
        &t("by = [\"service\", \"host\"]\n"),
        4,
        "only by service and operation, not \"host\"",
    );
    assert_error(
        &t("min_duration = \"long\"\n"),
        4,
        "min_duration: cannot read duration",
    );
    assert_error(&t("operation = \" \"\n"), 4, "operation must not be empty");
    assert_error(&t("when = \"1\"\n"), 4, "start with one of");
    assert_error(&t("errors = \"yes\"\n"), 4, "invalid type");

    let a = |body: &str| format!("[[rule]]\nname = \"A\"\n[rule.absent]\n{body}");
    assert_error(&a("heartbeat = true\nmetric = \"x\"\n"), 5, "not both");
    assert_error(
        &a("after = \"1m\"\n"),
        2,
        "needs heartbeat = true or metric",
    );
    assert_error(
        &a("heartbeat = false\n"),
        2,
        "needs heartbeat = true or metric",
    );
    assert_error(
        &a("heartbeat = true\nafter = \"0s\"\n"),
        5,
        "after = \"0s\" must be above 0",
    );
    assert_error(
        &a("heartbeat = true\nlookback = \"2h\"\n"),
        5,
        "lookback applies only",
    );
    assert_error(
        &a("heartbeat = true\nmatch = [\"service=x\"]\n"),
        5,
        "only the labels agent and host, not 'service'",
    );
    assert_error(
        &a("metric = \"x\"\nafter = \"2h\"\n"),
        4,
        "lookback (1h) must be longer than after (2h)",
    );
    assert_error(
        &a("metric = \"x\"\nafter = \"1h\"\nlookback = \"1h\"\n"),
        6,
        "must be longer",
    );
    assert_error(
        &a("metric = \"skein.agent.upp\"\n"),
        4,
        "unknown metric 'skein.agent.upp'; known: skein.agent.up",
    );
}

#[test]
fn duplicates_need_the_same_name_and_labels() {
    let text = "[[rule]]\nname = \"A\"\n[rule.traces]\n[[rule]]\nname = \"A\"\nlabels = { severity = \"page\" }\n[rule.traces]\n[[rule]]\nname = \"A\"\n[rule.traces]\n";
    assert_error(
        text,
        9,
        "rule 'A' is already defined at line 2 with the same labels",
    );
}

#[test]
fn every_error_of_a_file_is_reported_in_line_order() {
    let text = r#"
[[rule]]
name = "A"
for = "x"
[rule.metric]
name = "skein.span.nope"
match = ["bad"]
window = "0s"
when = "~ 1"

[[rule]]
name = "B"
[rule.logs]
unknown = 1

[[rule]]
name = "C"
[rule.traces]
"#;
    let errs = parse(text).unwrap_err();
    let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![4, 6, 7, 8, 9, 14], "{errs:?}");
    assert!(errs.iter().all(|e| e.file == Path::new("rules/app.toml")));
}

#[test]
fn limits() {
    let many = "[[rule]]\nname = \"A\"\n[rule.traces]\n".repeat(MAX_RULES_PER_FILE + 1);
    let (line, msg) = one_error(&many);
    assert_eq!(line, 3 * MAX_RULES_PER_FILE + 1);
    assert!(msg.contains("more than 1000 rules"), "{msg}");
    let mut ok = String::new();
    for i in 0..MAX_RULES_PER_FILE {
        ok.push_str(&format!("[[rule]]\nname = \"R{i}\"\n[rule.traces]\n"));
    }
    assert_eq!(parse(&ok).unwrap().len(), MAX_RULES_PER_FILE);
    let huge = format!("# {}\n", "x".repeat(MAX_FILE_BYTES));
    let (line, msg) = one_error(&huge);
    assert_eq!(line, 0);
    assert!(msg.contains("over 1048576 bytes"), "{msg}");
}

#[test]
fn offline_check_catches_typos_in_skein_names_only() {
    for name in DERIVED_METRICS {
        assert!(offline_known(name), "{name}");
    }
    assert!(offline_known("http.server.duration"));
    assert!(offline_known("skein_ingest_spans_total"));
    assert!(!offline_known("skein.span.call"));
    assert!(!offline_known("skein.edge.duration.p99"));
    assert!(!offline_known("skein.agent.down"));
}

#[test]
fn unknown_metrics_suggest_the_closest_known_names() {
    let known: Vec<String> = (0..30).map(|i| format!("app.metric{i:02}")).collect();
    let is_known = |n: &str| known.iter().any(|k| k == n);
    let names = || known.clone();
    let text = "[[rule]]\nname = \"A\"\n[rule.metric]\nname = \"app.metric7\"\nwhen = \"> 1\"\n";
    let errs = parse_rules_with_names(Path::new("f.toml"), text, &is_known, &names).unwrap_err();
    assert_eq!(errs.len(), 1);
    let msg = &errs[0].message;
    assert!(
        msg.starts_with("name: unknown metric 'app.metric7'; known: app.metric07, "),
        "{msg}"
    );
    assert_eq!(msg.matches(", ").count(), 9, "at most 10 names: {msg}");
    // With nothing known, no list.
    let errs = parse_rules(Path::new("f.toml"), text, &|_| false).unwrap_err();
    assert!(
        errs[0].message.ends_with("unknown metric 'app.metric7'"),
        "{errs:?}"
    );
}

#[test]
fn rule_error_display() {
    let e = RuleError {
        file: PathBuf::from("rules/app.toml"),
        line: 7,
        message: "bad".into(),
    };
    assert_eq!(e.to_string(), "rules/app.toml:7: bad");
}

#[test]
fn load_file_and_rule_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let a = root.join("a.toml");
    let b = root.join("b.toml");
    std::fs::write(&b, "[[rule]]\nname = \"B\"\n[rule.traces]\n").unwrap();
    std::fs::write(
        &a,
        "[[rule]]\nname = \"A\"\n[rule.absent]\nheartbeat = true\n",
    )
    .unwrap();
    std::fs::write(root.join("notes.txt"), "x").unwrap();
    std::fs::write(root.join(".draft.toml"), "x").unwrap();
    std::fs::create_dir(root.join("sub.toml")).unwrap();
    std::fs::write(root.join("sub.toml").join("c.toml"), "x").unwrap();
    let single = root.join("sub.toml").join("c.toml");

    let files = rule_files(&[root.to_path_buf(), single.clone()]).unwrap();
    assert_eq!(files, vec![a.clone(), b.clone(), single]);

    let missing = root.join("missing");
    let err = rule_files(std::slice::from_ref(&missing)).unwrap_err();
    assert_eq!((err.file.as_path(), err.line), (missing.as_path(), 0));

    let rules = load_file(&a, &offline_known).unwrap();
    assert_eq!(rules[0].name, "A");
    assert_eq!(rules[0].file, a);

    let errs = load_file(&missing, &offline_known).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, 0);
    assert!(errs[0].message.contains("cannot read the rule file"));

    std::fs::write(
        &b,
        "[[rule]]\nname = \"B\"\n[rule.traces]\nwindow = \"0s\"\n",
    )
    .unwrap();
    let errs = load_file(&b, &offline_known).unwrap_err();
    assert_eq!((errs[0].file.as_path(), errs[0].line), (b.as_path(), 4));

    let big = root.join("big.toml");
    std::fs::write(&big, "#".repeat(MAX_FILE_BYTES + 10)).unwrap();
    let errs = load_file(&big, &offline_known).unwrap_err();
    assert_eq!(errs[0].line, 0);
    assert!(errs[0].message.contains("over"), "{errs:?}");
}

#[test]
fn durations_past_any_clock_are_rule_errors_not_panics() {
    // `for = "1e20s"` panicked when read, and evaluation then panicked every round.
    for (key, from) in [
        ("for", "for = \"30s\""),
        ("keep_firing_for", "keep_firing_for = \"1m\""),
        ("window", "window = \"2m\""),
    ] {
        let text = FULL_METRIC.replacen(from, &format!("{key} = \"1e20s\""), 1);
        let errs = errors(&text);
        assert!(
            errs.iter().any(|(_, m)| m.contains("too long")),
            "{key}: {errs:?}"
        );
    }
}
