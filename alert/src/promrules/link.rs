//! The real PromQL engine and metrics store behind [`PromQuery`] and [`RecordSink`], so the
//! collector connects them with one call (`AlertEngine::connect_promql`).

use super::{PromQuery, RecordSink};
use skein_model::metric::{Labels, MetricBatch};
use skein_query::promql::{Engine, QueryValue};

impl PromQuery for Engine {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        match Engine::instant(self, expr, t_ms) {
            Ok(QueryValue::Vector(v)) => Ok(v.into_iter().map(|s| (s.labels, s.v)).collect()),
            Ok(QueryValue::Scalar(_, v)) => Ok(vec![(Labels::default(), v)]),
            Ok(QueryValue::String(..)) => {
                Err("the expression gives a string; a rule needs a vector or a scalar".into())
            }
            Ok(QueryValue::Matrix(_)) => Err(
                "the expression gives a range vector; a rule needs an instant vector (wrap it in a function such as rate)".into(),
            ),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl RecordSink for skein_store::tsdb::Tsdb {
    fn append(&self, batch: MetricBatch) -> Result<(), String> {
        let report = skein_store::tsdb::Tsdb::append(self, &batch).map_err(|e| e.to_string())?;
        match report.first_reason {
            Some(why) if report.accepted == 0 && report.duplicates == 0 => Err(why),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use skein_model::metric::{MetricKind, SeriesSpec};
    use skein_query::promql::engine::Limits;
    use skein_query::promql::source::StoreSource;
    use skein_store::tsdb::{Tsdb, TsdbConfig};
    use std::sync::Arc;

    #[test]
    fn recording_through_the_store_and_reading_back_through_promql() {
        let dir = tempfile::tempdir().unwrap();
        let db = Tsdb::open(TsdbConfig {
            dir: dir.path().to_path_buf(),
            ..TsdbConfig::default()
        })
        .unwrap();
        let now = skein_model::time::now_ms();
        let mut b = MetricBatch::default();
        let s = b.add_series(SeriesSpec {
            name: "job:errors:rate5m".into(),
            labels: Labels::from_pairs([("job", "api")]),
            kind: MetricKind::Gauge,
            unit: String::new(),
            delta: false,
        });
        b.push(s, now, 0.25);
        RecordSink::append(&db, b).unwrap();
        let engine = Engine::new(Arc::new(StoreSource::new(Arc::new(db))), Limits::default());
        let got = PromQuery::instant(&engine, "job:errors:rate5m > 0.1", now).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.get("job"), Some("api"));
        assert_eq!(got[0].1, 0.25);
        assert_eq!(PromQuery::instant(&engine, "1 + 1", now).unwrap()[0].1, 2.0);
        assert!(PromQuery::instant(&engine, "job:errors:rate5m[5m]", now).is_err());
        assert!(PromQuery::instant(&engine, "sum(", now).is_err());
    }
}
