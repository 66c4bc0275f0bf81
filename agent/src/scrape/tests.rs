//! Tests of scraping without a network: the parser on both formats and on hostile answers,
//! the conversion read back through the collector's own OTLP mapping (so the series names,
//! labels and kinds checked are those the collector stores), `honor_labels` renaming,
//! `keep`/`drop`, `sample_limit` and the report series.

use super::*;
use skein_model::metric::MetricKind;
use skein_model::otlp_metrics::{MetricLimits, metrics_from_otlp};

const NOW: u64 = 1_700_000_000_000_000_000;

fn all(_: &str) -> bool {
    true
}

fn text(body: &str) -> Parsed {
    parse(body.as_bytes(), Format::Text, &all, 1000).unwrap()
}

fn job(keep: &[&str], drop: &[&str], sample_limit: usize) -> Arc<Job> {
    let toml = format!(
        "[[scrape]]\njob = \"node\"\ntargets = [\"127.0.0.1:9100\"]\nkeep = {keep:?}\ndrop = \
         {drop:?}\nsample_limit = {sample_limit}\nlabels = {{ env = \"prod\" }}\n"
    );
    let cfg = AgentConfig::from_toml(&toml).unwrap();
    Arc::new(Job::new(&cfg.scrapes[0], 0).unwrap())
}

fn target(job: Arc<Job>) -> Target {
    let url = reqwest::Url::parse("http://127.0.0.1:9100/metrics").unwrap();
    Target::new(job, url, "127.0.0.1:9100")
}

/// What the collector stores from the requests: `name{labels}`, kind, value, time (ms).
fn stored(reqs: &[ExportMetricsServiceRequest]) -> Vec<(String, MetricKind, f64, i64)> {
    let mut out = Vec::new();
    for req in reqs {
        let (b, rej) = metrics_from_otlp(req, &MetricLimits::default(), 42);
        assert_eq!(rej.count, 0, "{:?}", rej.first_reason);
        for s in &b.samples {
            let spec = &b.series[s.series as usize];
            out.push((
                format!("{}{}", spec.name, spec.labels),
                spec.kind,
                s.value,
                s.ts_ms,
            ));
        }
    }
    out
}

fn find<'a>(
    got: &'a [(String, MetricKind, f64, i64)],
    series: &str,
) -> &'a (String, MetricKind, f64, i64) {
    got.iter()
        .find(|g| g.0 == series)
        .unwrap_or_else(|| panic!("{series} not in {got:#?}"))
}

fn ok(body: &str) -> Result<Fetched, String> {
    Ok(Fetched {
        body: bytes::Bytes::from(body.to_string()),
        gzip: false,
        content_type: Some("text/plain; version=0.0.4".into()),
    })
}

const TEXT: &str = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf -3982045
# TYPE rpc_duration_seconds histogram
rpc_duration_seconds_bucket{le="0.05"} 24054
rpc_duration_seconds_bucket{le="0.1"} 33444
rpc_duration_seconds_bucket{le="1"} 100392
rpc_duration_seconds_bucket{le="1e+06"} 129389
rpc_duration_seconds_bucket{le="+Inf"} 144320
rpc_duration_seconds_sum 53423
rpc_duration_seconds_count 144320
# TYPE gc_seconds summary
gc_seconds{quantile="0"} 0.001
gc_seconds{quantile="0.5"} NaN
gc_seconds{quantile="1"} 0.25
gc_seconds_sum 1.5
gc_seconds_count 12
# TYPE temperature gauge
temperature{room="a b, c=d"} -3.5
"#;

#[test]
fn text_format_samples_keep_names_labels_values_and_times() {
    let p = text(TEXT);
    assert_eq!(p.scraped, 18);
    assert_eq!(p.samples.len(), 18);
    let s = &p.samples[0];
    assert_eq!(s.name, "http_requests_total");
    assert_eq!(
        s.labels,
        vec![
            ("method".into(), "post".into()),
            ("code".into(), "200".into())
        ]
    );
    assert_eq!((s.value, s.timestamp_ms), (1027.0, Some(1_395_066_363_000)));
    assert_eq!(s.ty, MetricType::Counter);
    let esc = &p.samples[2];
    assert_eq!(esc.label("path"), Some(r"C:\DIR\FILE.TXT"));
    assert_eq!(esc.label("error"), Some("Cannot find file:\n\"FILE.TXT\""));
    assert_eq!(esc.ty, MetricType::Unknown);
    assert_eq!(p.samples[3].value, 12.47);
    assert_eq!(p.samples[4].value, f64::INFINITY);
    assert_eq!(p.samples[4].timestamp_ms, Some(-3_982_045));
    let bucket = &p.samples[5];
    assert_eq!(
        (bucket.family(), bucket.suffix()),
        ("rpc_duration_seconds", "_bucket")
    );
    assert_eq!(bucket.ty, MetricType::Histogram);
    assert!(p.samples[13].value.is_nan());
    assert_eq!(p.samples[13].ty, MetricType::Summary);
    assert_eq!(p.samples[17].label("room"), Some("a b, c=d"));
    assert_eq!(p.samples[17].ty, MetricType::Gauge);
}

#[test]
fn openmetrics_samples_and_the_final_eof() {
    let body = "# TYPE acme_http_router_request_seconds summary\n\
        # UNIT acme_http_router_request_seconds seconds\n\
        # HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.\n\
        acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32\n\
        acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0\n\
        acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} 1605281325.0\n\
        # TYPE go_goroutines gauge\ngo_goroutines 69\n\
        # TYPE process_cpu_seconds counter\n# UNIT process_cpu_seconds seconds\n\
        process_cpu_seconds_total 4.20072246e+06 1520879607.789 # {trace_id=\"a\"} 1 1520879607.789\n\
        # TYPE build info\nbuild_info{version=\"1.0\"} 1\n\
        # TYPE q gaugehistogram\nq_bucket{le=\"+Inf\"} 3\nq_gcount 3\nq_gsum 7\n# EOF\n";
    let p = parse(body.as_bytes(), Format::OpenMetrics, &all, 100).unwrap();
    assert_eq!(p.scraped, 9);
    let cpu = p
        .samples
        .iter()
        .find(|s| s.name == "process_cpu_seconds_total")
        .unwrap();
    assert_eq!(cpu.ty, MetricType::Counter);
    assert_eq!(cpu.family(), "process_cpu_seconds");
    assert_eq!(cpu.timestamp_ms, Some(1_520_879_607_789));
    assert_eq!(cpu.value, 4.20072246e6);
    let created = &p.samples[2];
    assert_eq!(
        (created.ty, created.suffix()),
        (MetricType::Summary, "_created")
    );
    assert_eq!(p.samples[5].ty, MetricType::Info);
    assert_eq!(p.samples[6].ty, MetricType::GaugeHistogram);
    // Cut short, or with more after the end: refused.
    let cut = body.replace("# EOF\n", "");
    assert!(matches!(
        parse(cut.as_bytes(), Format::OpenMetrics, &all, 100),
        Err(ParseError::Eof(_))
    ));
    let more = format!("{body}x 1\n");
    assert!(matches!(
        parse(more.as_bytes(), Format::OpenMetrics, &all, 100),
        Err(ParseError::Eof(_))
    ));
    assert_eq!(
        Format::from_content_type(Some("application/openmetrics-text; version=1.0.0")),
        Format::OpenMetrics
    );
    assert_eq!(Format::from_content_type(Some("text/plain")), Format::Text);
    assert_eq!(Format::from_content_type(None), Format::Text);
}

#[test]
fn garbage_fails_the_scrape_naming_the_line() {
    let cases: [(&[u8], &str); 12] = [
        (b"ok 1\nthis is not a sample\n", "line 2"),
        (b"a{b=\"c\"} 1\nx{y=\"unterminated} 1\n", "line 2"),
        (b"x{y=\"a\\qb\"} 1\n", "invalid escape"),
        (b"x{y=\"1\",y=\"2\"} 1\n", "given twice"),
        (b"x abc\n", "not a number"),
        (b"x 1 1.5\n", "timestamp"),
        (b"x 1 2 3\n", "unexpected"),
        (b"x{1y=\"a\"} 1\n", "label name"),
        (b"x{y=\"a\" z=\"b\"} 1\n", "expected , or }"),
        (b"x{y=\"a\"}1\n", "space before the value"),
        (b"# TYPE x sparkles\nx 1\n", "unknown metric type"),
        (b"ok 1\n\xff\xfe 2\n", "not UTF-8"),
    ];
    for (body, want) in cases {
        let e = parse(body, Format::Text, &all, 100)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{:?}: {e}", String::from_utf8_lossy(body));
    }
    // Many labels on one line: read whole, a repeated name found wherever it is.
    let many: String = (0..100_000).map(|i| format!("l{i}=\"v\",")).collect();
    let line = format!("x{{{many}}} 1\n");
    let p = parse(line.as_bytes(), Format::Text, &all, 10).unwrap();
    assert_eq!(p.samples[0].labels.len(), 100_000);
    let twice = format!("x{{{many}l7=\"again\"}} 1\n");
    let e = parse(twice.as_bytes(), Format::Text, &all, 10).unwrap_err();
    assert!(e.to_string().contains("label l7 is given twice"), "{e}");
    // An answer of nothing but # TYPE lines cannot grow without end.
    let types: String = (0..20_000)
        .map(|i| format!("# TYPE t{i} gauge\n"))
        .collect();
    let e = parse(types.as_bytes(), Format::Text, &all, 10).unwrap_err();
    assert!(e.to_string().contains("# TYPE lines"), "{e}");
    // A long garbage line is named by its start only.
    let long = format!("{}\n", "!".repeat(1 << 20));
    let e = parse(long.as_bytes(), Format::Text, &all, 100)
        .unwrap_err()
        .to_string();
    assert!(e.len() < 300, "{}", e.len());
}

#[test]
fn sample_limit_counts_kept_samples_after_keep_and_drop() {
    let body: String = (0..100)
        .map(|i| format!("m{} {i}\nother{i} 1\n", i % 3))
        .collect();
    // 200 samples, 100 of them named m*: over a limit of 99 when all are kept ...
    let e = parse(body.as_bytes(), Format::Text, &all, 99).unwrap_err();
    assert_eq!(
        e,
        ParseError::SampleLimit {
            scraped: 200,
            kept: 200,
            limit: 99
        }
    );
    // ... and within a limit of 100 when `keep` lets only the m* samples through.
    let j = job(&["m[0-9]"], &[], 100);
    let p = parse(body.as_bytes(), Format::Text, &|n| j.keeps(n), 100).unwrap();
    assert_eq!((p.scraped, p.samples.len()), (200, 100));
}

#[test]
fn keep_and_drop_are_anchored_name_regexes() {
    let j = job(&["node_.*", "up"], &["node_cpu_.*"], 10);
    assert!(j.keeps("node_load1"));
    assert!(j.keeps("up"));
    assert!(!j.keeps("node_cpu_seconds_total"));
    assert!(!j.keeps("go_goroutines"));
    assert!(!j.keeps("xnode_load1"), "keep is anchored at the start");
    assert!(!j.keeps("upx"), "and at the end");
    let none = job(&[], &["go_.*"], 10);
    assert!(none.keeps("anything") && !none.keeps("go_goroutines"));
}

#[test]
fn honor_labels_false_keeps_the_exporters_job_and_instance_as_exported() {
    let target = [
        ("job".to_string(), "node".to_string()),
        ("instance".to_string(), "h:1".to_string()),
        ("env".to_string(), "prod".to_string()),
    ];
    let exposed = vec![
        ("job".to_string(), "theirs".to_string()),
        ("instance".to_string(), "them:2".to_string()),
        ("exported_instance".to_string(), "older".to_string()),
        ("env".to_string(), String::new()),
        ("mode".to_string(), "idle".to_string()),
    ];
    let mut got = convert::with_target_labels(exposed, &target);
    got.sort();
    let want: Vec<(String, String)> = [
        ("env", "prod"),
        ("exported_exported_instance", "them:2"),
        ("exported_instance", "older"),
        ("exported_job", "theirs"),
        ("instance", "h:1"),
        ("job", "node"),
        ("mode", "idle"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn stored_series_are_the_exposed_ones_with_their_kinds() {
    let t = target(job(&[], &[], 1000));
    let o = process(&t, ok(TEXT), Instant::now(), NOW, 1 << 20);
    assert_eq!(o.error, None);
    let got = stored(&o.requests);
    // The collector's text of a series: its labels plus job, instance and env, sorted.
    let series = |name: &str, extra: &[(&str, &str)]| {
        let mut pairs = vec![
            ("job", "node"),
            ("instance", "127.0.0.1:9100"),
            ("env", "prod"),
        ];
        pairs.extend_from_slice(extra);
        format!("{name}{}", skein_model::metric::Labels::from_pairs(pairs))
    };
    let c = find(
        &got,
        &series(
            "http_requests_total",
            &[("code", "200"), ("method", "post")],
        ),
    );
    assert_eq!(
        (c.1, c.2, c.3),
        (MetricKind::Counter, 1027.0, 1_395_066_363_000)
    );
    let g = find(&got, &series("temperature", &[("room", "a b, c=d")]));
    assert_eq!(
        (g.1, g.2, g.3),
        (MetricKind::Gauge, -3.5, 1_700_000_000_000)
    );
    let u = find(&got, &series("metric_without_timestamp_and_labels", &[]));
    assert_eq!(u.1, MetricKind::Gauge);
    // The histogram comes back as the exposed series (le as a number), kind histogram.
    for (le, v) in [
        ("0.05", 24054.0),
        ("1", 100392.0),
        ("1000000", 129389.0),
        ("+Inf", 144320.0),
    ] {
        let b = find(&got, &series("rpc_duration_seconds_bucket", &[("le", le)]));
        assert_eq!((b.1, b.2), (MetricKind::Histogram, v), "{le}");
    }
    assert_eq!(
        find(&got, &series("rpc_duration_seconds_count", &[])).2,
        144320.0
    );
    assert_eq!(
        find(&got, &series("rpc_duration_seconds_sum", &[])).2,
        53423.0
    );
    // The summary likewise, its NaN quantile included: a value like any other.
    let q = find(&got, &series("gc_seconds", &[("quantile", "1")]));
    assert_eq!((q.1, q.2), (MetricKind::Summary, 0.25));
    let nan = find(&got, &series("gc_seconds", &[("quantile", "0.5")]));
    assert!(nan.1 == MetricKind::Summary && nan.2.is_nan(), "{nan:?}");
    assert_eq!(find(&got, &series("gc_seconds_count", &[])).2, 12.0);
    let inf = find(
        &got,
        &series("something_weird", &[("problem", "division by zero")]),
    );
    assert_eq!((inf.1, inf.2), (MetricKind::Gauge, f64::INFINITY));
    // No label beyond the exposed ones, job, instance and env: nothing from the resource.
    for g in &got {
        assert!(!g.0.contains("host=") && !g.0.contains("agent="), "{}", g.0);
    }
    // The report, with the target's labels.
    assert_eq!(find(&got, &series("up", &[])).2, 1.0);
    assert_eq!(find(&got, &series("scrape_samples_scraped", &[])).2, 18.0);
    assert_eq!(
        find(&got, &series("scrape_samples_post_metric_relabeling", &[])).2,
        18.0
    );
    let d = find(&got, &series("scrape_duration_seconds", &[]));
    assert!(d.2 >= 0.0 && d.1 == MetricKind::Gauge);
    assert_eq!(o.report.kept, 18);
}

#[test]
fn nan_and_infinite_values_are_sent_as_exposed() {
    let body = "# TYPE g gauge\ng{a=\"1\"} NaN\ng{a=\"2\"} -Inf\n\
        # TYPE c counter\nc_total +Inf\n\
        # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum +Inf\nh_count 2\n\
        # TYPE s summary\ns{quantile=\"0.5\"} NaN\ns_sum NaN\ns_count 0\n\
        # TYPE odd histogram\nodd_bucket{le=\"+Inf\"} NaN\nodd_count 1\n";
    let t = target(job(&[], &[], 1000));
    let o = process(&t, ok(body), Instant::now(), NOW, 1 << 20);
    assert_eq!(o.error, None);
    assert_eq!((o.report.scraped, o.report.kept), (12, 12));
    let got = stored(&o.requests);
    let value = |name: &str, label: Option<(&str, &str)>| {
        let mut pairs = vec![
            ("job", "node"),
            ("instance", "127.0.0.1:9100"),
            ("env", "prod"),
        ];
        pairs.extend(label);
        let g = find(
            &got,
            &format!("{name}{}", skein_model::metric::Labels::from_pairs(pairs)),
        );
        (g.1, g.2)
    };
    let nan = |(kind, v): (MetricKind, f64)| (kind, v.is_nan());
    assert_eq!(nan(value("g", Some(("a", "1")))), (MetricKind::Gauge, true));
    assert_eq!(
        value("g", Some(("a", "2"))),
        (MetricKind::Gauge, f64::NEG_INFINITY)
    );
    assert_eq!(value("c_total", None), (MetricKind::Counter, f64::INFINITY));
    // One histogram point with an infinite sum.
    assert_eq!(value("h_sum", None), (MetricKind::Histogram, f64::INFINITY));
    assert_eq!(
        value("h_bucket", Some(("le", "+Inf"))),
        (MetricKind::Histogram, 2.0)
    );
    // One summary point with a NaN quantile and sum.
    assert_eq!(
        nan(value("s", Some(("quantile", "0.5")))),
        (MetricKind::Summary, true)
    );
    assert_eq!(nan(value("s_sum", None)), (MetricKind::Summary, true));
    // A bucket that is not a count: sample by sample, the NaN sent too.
    assert_eq!(
        nan(value("odd_bucket", Some(("le", "+Inf")))),
        (MetricKind::Counter, true)
    );
    assert_eq!(value("odd_count", None), (MetricKind::Counter, 1.0));
}

#[test]
fn irregular_histograms_and_summaries_go_sample_by_sample() {
    let body = "# TYPE h histogram\nh_bucket{le=\"1.0\"} 1\nh_bucket{le=\"2.0\"} 3\nh_sum 4\n\
        # TYPE down histogram\ndown_bucket{le=\"1\"} 5\ndown_bucket{le=\"+Inf\"} 2\ndown_count 2\n\
        # TYPE s summary\ns{quantile=\"0.9\"} 2\n";
    let t = target(job(&[], &[], 1000));
    let got = stored(&process(&t, ok(body), Instant::now(), NOW, 1 << 20).requests);
    let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    let has = |s: &str| names.iter().any(|n| n.starts_with(s));
    // No +Inf bucket and no _count: the exposed samples, le written as numbers, counters.
    assert!(has(
        r#"h_bucket{env="prod",instance="127.0.0.1:9100",job="node",le="1"}"#
    ));
    assert!(has(
        r#"h_bucket{env="prod",instance="127.0.0.1:9100",job="node",le="2"}"#
    ));
    assert!(has("h_sum{"));
    assert!(!has("h_count"), "{names:#?}");
    // Buckets that go down: as exposed, not made up.
    assert!(has(
        r#"down_bucket{env="prod",instance="127.0.0.1:9100",job="node",le="+Inf"}"#
    ));
    assert_eq!(
        got.iter()
            .find(|g| g.0.starts_with("down_bucket") && g.0.contains("+Inf"))
            .unwrap()
            .2,
        2.0
    );
    assert!(
        got.iter()
            .filter(|g| g.0.starts_with("h_"))
            .all(|g| g.1 == MetricKind::Counter)
    );
    // A summary without _sum and _count: its quantile as a gauge.
    let q = got.iter().find(|g| g.0.starts_with("s{")).unwrap();
    assert_eq!((q.1, q.2), (MetricKind::Gauge, 2.0));
}

#[test]
fn a_failed_scrape_stores_only_up_0_and_the_counts() {
    let t = target(job(&[], &[], 1000));
    let o = process(
        &t,
        Err("connection refused".into()),
        Instant::now(),
        NOW,
        1 << 20,
    );
    assert_eq!(o.error.as_deref(), Some("connection refused"));
    assert!(!o.report.up);
    let got = stored(&o.requests);
    assert_eq!(got.len(), 4, "{got:#?}");
    assert!(got.iter().any(|g| g.0.starts_with("up{") && g.2 == 0.0));
    assert!(
        got.iter()
            .all(|g| g.0.contains(r#"instance="127.0.0.1:9100""#))
    );
    // Over sample_limit: up = 0, nothing of the answer stored, both counts reported.
    let t = target(job(&["a.*"], &[], 2));
    let o = process(&t, ok("a 1\na 2\na 3\nb 1\n"), Instant::now(), NOW, 1 << 20);
    assert!(o.error.as_deref().unwrap().contains("sample_limit"));
    let got = stored(&o.requests);
    assert_eq!(got.len(), 4);
    assert_eq!(find_prefix(&got, "scrape_samples_scraped{").2, 4.0);
    assert_eq!(
        find_prefix(&got, "scrape_samples_post_metric_relabeling{").2,
        3.0
    );
    // A garbage answer: up = 0, the reason names the line.
    let o = process(&t, ok("a 1\n}{\n"), Instant::now(), NOW, 1 << 20);
    assert!(o.error.unwrap().contains("line 2"));
}

fn find_prefix<'a>(
    got: &'a [(String, MetricKind, f64, i64)],
    prefix: &str,
) -> &'a (String, MetricKind, f64, i64) {
    got.iter().find(|g| g.0.starts_with(prefix)).unwrap()
}

#[test]
fn gzip_answers_are_unpacked_within_body_limit() {
    use std::io::Write;
    let gz = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        bytes::Bytes::from(e.finish().unwrap())
    };
    let t = target(job(&[], &[], 1000));
    let fetched = Fetched {
        body: gz(b"a 1\nb 2\n"),
        gzip: true,
        content_type: None,
    };
    let o = process(&t, Ok(fetched), Instant::now(), NOW, 1 << 20);
    assert_eq!((o.error, o.report.kept), (None, 2));
    // A small gzip that unpacks past body_limit (16 MiB): refused, not unpacked whole.
    let bomb = Fetched {
        body: gz(&vec![b'#'; (16 << 20) + 10]),
        gzip: true,
        content_type: None,
    };
    assert!(bomb.body.len() < 100_000);
    let o = process(&t, Ok(bomb), Instant::now(), NOW, 1 << 20);
    assert!(o.error.unwrap().contains("body_limit"));
}

#[test]
fn requests_are_cut_at_max_bytes_and_lose_nothing() {
    let body: String = (0..3000).map(|i| format!("m{{i=\"{i}\"}} {i}\n")).collect();
    let t = target(job(&[], &[], 10_000));
    let o = process(&t, ok(&body), Instant::now(), NOW, 16 * 1024);
    assert!(o.requests.len() > 5, "{}", o.requests.len());
    for r in &o.requests {
        assert!(prost::Message::encoded_len(r) < 20 * 1024);
    }
    let got = stored(&o.requests);
    assert_eq!(got.len(), 3000 + 4);
    let total: f64 = got
        .iter()
        .filter(|g| g.0.starts_with("m{"))
        .map(|g| g.2)
        .sum();
    assert_eq!(total, (0..3000).sum::<i32>() as f64);
}

#[test]
fn targets_are_labelled_and_spread_over_the_interval() {
    let j = job(&[], &[], 10);
    let t = target(j.clone());
    assert_eq!(
        t.labels,
        vec![
            ("job".to_string(), "node".to_string()),
            ("instance".to_string(), "127.0.0.1:9100".to_string()),
            ("env".to_string(), "prod".to_string()),
        ]
    );
    assert_eq!(offset(&t), offset(&target(j.clone())));
    assert!(offset(&t) < j.interval);
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any bytes: an answer or an error, never a panic, never more than the limit.
        #[test]
        fn any_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            for format in [Format::Text, Format::OpenMetrics] {
                if let Ok(p) = parse(&body, format, &all, 5) {
                    prop_assert!(p.samples.len() <= 5);
                }
            }
        }

        /// Lines made of the characters that matter to the grammar.
        #[test]
        fn near_misses(body in "([a-z_{}=\",# \\\\n0-9.+-]|\n|NaN|Inf|TYPE|EOF){0,200}") {
            for format in [Format::Text, Format::OpenMetrics] {
                let parsed = parse(body.as_bytes(), format, &all, 1000);
                if let Ok(p) = parsed {
                    let t = target(job(&[], &[], 1000));
                    let c = convert(p.samples, &t.labels, NOW);
                    let _ = pack(c.points, 1024);
                }
            }
        }
    }
}
