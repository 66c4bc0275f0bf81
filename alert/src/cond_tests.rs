//! Conditions over a real metrics store that holds NaN, ±Inf and staleness markers: they are
//! skipped as if absent, as in every metric view of Skein's own.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::rules::parse_rules;
use skein_model::metric::{Labels, MetricBatch, MetricKind, SeriesSpec};
use skein_query::engine::QueryLimits;
use skein_query::reads::{Read, ReadResult, Reads};
use skein_store::tsdb::{Tsdb, TsdbConfig};
use std::path::Path;
use std::time::Duration;

/// No logs or spans: these rules read metrics only.
struct NoRecords;

impl Reads for NoRecords {
    fn read(&self, _: &Read) -> Result<ReadResult, QueryError> {
        Err(QueryError::Internal("no logs or spans in this test".into()))
    }
}

fn rule(text: &str) -> crate::rules::Rule {
    let mut rules = parse_rules(Path::new("rules/t.toml"), text, &|_| true).unwrap();
    rules.remove(0)
}

#[test]
fn metric_and_absent_conditions_skip_non_finite_samples() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(TsdbConfig {
        dir: dir.path().to_path_buf(),
        ..TsdbConfig::default()
    })
    .unwrap();
    let now = skein_model::time::now_ms();
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let mut b = MetricBatch::default();
    let spec = |host: &str| SeriesSpec {
        name: "temp".into(),
        labels: Labels::from_pairs([("host", host)]),
        kind: MetricKind::Gauge,
        unit: String::new(),
        delta: false,
    };
    let live = b.add_series(spec("live"));
    let gone = b.add_series(spec("gone"));
    // live: 2 every 10 s, with NaN, +Inf and -Inf between.
    let odd = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
    for i in 0..6 {
        b.push(live, now - 55_000 + i * 10_000, 2.0);
        b.push(live, now - 50_000 + i * 10_000, odd[i as usize % 3]);
    }
    // gone: a value 4 minutes ago, then a staleness marker, and a NaN just now.
    b.push(gone, now - 240_000, 1.0);
    b.push(gone, now - 230_000, stale);
    b.push(gone, now - 5_000, f64::NAN);
    assert_eq!(db.append(&b).unwrap().rejected, 0);
    let src = Sources {
        tsdb: Arc::new(db),
        engine: Arc::new(Engine::over(Arc::new(NoRecords), QueryLimits::default())),
        agents: AgentRegistry::in_memory(Duration::from_secs(15)),
    };
    let host = |l: &LabelSet| l.get("host").cloned().unwrap_or_default();

    // The max over the last minute is 2 (not +Inf); gone has no finite sample in it.
    let hot = rule(
        "[[rule]]\nname = \"Hot\"\n[rule.metric]\nname = \"temp\"\nagg = \"max\"\nby = [\"host\"]\nwhen = \"< 100\"\n",
    );
    let got = evaluate_rule(&hot, &src, now, now - 3_600_000).unwrap();
    let got: Vec<(String, f64)> = got.iter().map(|(l, v)| (host(l), *v)).collect();
    assert_eq!(got, vec![("live".to_string(), 2.0)]);
    let low = rule(
        "[[rule]]\nname = \"Low\"\n[rule.metric]\nname = \"temp\"\nagg = \"min\"\nwhen = \"< 0\"\n",
    );
    assert!(evaluate_rule(&low, &src, now, 0).unwrap().is_empty());

    // gone has been silent since its last finite sample, 240 s ago: the marker and the NaN
    // after it are not samples here.
    let absent =
        rule("[[rule]]\nname = \"Gone\"\n[rule.absent]\nmetric = \"temp\"\nafter = \"2m\"\n");
    let got = evaluate_rule(&absent, &src, now, now - 3_600_000).unwrap();
    let got: Vec<(String, f64)> = got.iter().map(|(l, v)| (host(l), *v)).collect();
    assert_eq!(got, vec![("gone".to_string(), 240.0)]);
}
