//! Metric samples in a cluster: published to `<prefix>.metrics.<partition>`, the partition a
//! stable hash of the series (its family name and labels without `le`, so a histogram's
//! buckets, sum and count stay together). A partition's share of a batch is cut into
//! messages of at most `cluster.max_message_bytes` (JSON of a [`MetricBatch`]), with
//! `Nats-Msg-Id` = `<batch id>:metrics:<partition>:<part>` when the sender gave a batch id.
//! The answer waits for every acknowledgement, as for logs and spans: the stream is the WAL.

use crate::publish::{Outgoing, PublishError, Published, Publisher, partition_of};
use skein_model::metric::{BatchSample, MetricBatch, SeriesSpec, family_name};
use std::collections::{BTreeMap, HashMap};

/// Rough JSON bytes of one sample in a message, for cutting messages.
const SAMPLE_BYTES: usize = 96;

/// The key a series is partitioned by.
pub fn series_key(s: &SeriesSpec) -> String {
    let family = family_name(&s.name, s.kind);
    let mut key = String::with_capacity(family.len() + 64);
    key.push_str(family);
    for (k, v) in s.labels.iter().filter(|(k, _)| *k != "le") {
        key.push('\u{1}');
        key.push_str(k);
        key.push('\u{2}');
        key.push_str(v);
    }
    key
}

/// Cuts a batch into messages by partition.
pub(crate) fn plan_metrics(
    prefix: &str,
    partitions: u32,
    max_message: usize,
    batch: &MetricBatch,
    batch_id: Option<&str>,
) -> Result<Vec<Outgoing>, PublishError> {
    let part: Vec<u32> = batch
        .series
        .iter()
        .map(|s| partition_of(&series_key(s), partitions))
        .collect();
    let mut per: BTreeMap<u32, Vec<&BatchSample>> = BTreeMap::new();
    for s in &batch.samples {
        let Some(p) = part.get(s.series as usize) else {
            continue;
        };
        per.entry(*p).or_default().push(s);
    }
    let mut out = Vec::new();
    for (p, samples) in per {
        let subject = format!("{prefix}.metrics.{p}");
        let mut n = 0usize;
        let mut cur = MetricBatch::default();
        let mut index: HashMap<u32, u32> = HashMap::new();
        let mut est = 0usize;
        let mut flush = |cur: &mut MetricBatch,
                         index: &mut HashMap<u32, u32>,
                         est: &mut usize,
                         n: &mut usize|
         -> Result<(), PublishError> {
            if cur.samples.is_empty() {
                return Ok(());
            }
            let payload = serde_json::to_vec(&*cur)
                .map_err(|e| PublishError::Unavailable(format!("cannot encode samples: {e}")))?;
            if payload.len() > max_message && cur.samples.len() == 1 {
                return Err(PublishError::TooLarge(format!(
                    "one sample's series is {} bytes, more than a message may be (cluster.max_message_bytes = {max_message}); send fewer or shorter labels",
                    payload.len()
                )));
            }
            out.push(Outgoing {
                subject: subject.clone(),
                payload,
                id: batch_id.map(|id| format!("{id}:metrics:{p}:{n}")),
            });
            *n += 1;
            *cur = MetricBatch::default();
            index.clear();
            *est = 0;
            Ok(())
        };
        for s in samples {
            let Some(spec) = batch.series.get(s.series as usize) else {
                continue;
            };
            let spec_bytes = if index.contains_key(&s.series) {
                0
            } else {
                spec.name.len()
                    + spec.unit.len()
                    + spec
                        .labels
                        .iter()
                        .map(|(k, v)| k.len() + v.len() + 8)
                        .sum::<usize>()
                    + 64
            };
            // Half the limit leaves room for what the estimate misses (escapes).
            if est + spec_bytes + SAMPLE_BYTES > max_message / 2 {
                flush(&mut cur, &mut index, &mut est, &mut n)?;
            }
            let idx = match index.get(&s.series) {
                Some(i) => *i,
                None => {
                    let i = cur.add_series(spec.clone());
                    index.insert(s.series, i);
                    est += spec_bytes;
                    i
                }
            };
            cur.samples.push(BatchSample { series: idx, ..*s });
            est += SAMPLE_BYTES;
        }
        flush(&mut cur, &mut index, &mut est, &mut n)?;
    }
    Ok(out)
}

impl Publisher {
    /// Publishes a metric batch and waits until the stream acknowledged every message.
    pub async fn publish_metrics(
        &self,
        batch: &MetricBatch,
        batch_id: Option<&str>,
    ) -> Result<Published, PublishError> {
        let messages = plan_metrics(
            &self.prefix,
            self.partitions,
            self.max_message,
            batch,
            batch_id,
        )?;
        self.send(messages).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use skein_model::metric::{Labels, MetricKind};

    fn spec(name: &str, kind: MetricKind, labels: &[(&str, &str)]) -> SeriesSpec {
        SeriesSpec {
            name: name.into(),
            labels: Labels::from_pairs(labels.iter().copied()),
            kind,
            unit: String::new(),
            delta: false,
        }
    }

    #[test]
    fn a_histograms_parts_stay_together_and_every_sample_is_sent_once() {
        let mut b = MetricBatch::default();
        let h = MetricKind::Histogram;
        for le in ["1", "5", "+Inf"] {
            let s = b.add_series(spec("lat_bucket", h, &[("svc", "a"), ("le", le)]));
            b.push(s, 1000, 1.0);
        }
        let s = b.add_series(spec("lat_sum", h, &[("svc", "a")]));
        b.push(s, 1000, 2.0);
        let s = b.add_series(spec("lat_count", h, &[("svc", "a")]));
        b.push(s, 1000, 3.0);
        for i in 0..200 {
            let s = b.add_series(spec("up", MetricKind::Gauge, &[("host", &format!("h{i}"))]));
            b.push(s, 1000, 1.0);
        }
        let out = plan_metrics("skein", 8, 4096, &b, Some("b1")).unwrap();
        let mut total = 0;
        let mut lat_parts = std::collections::BTreeSet::new();
        for m in &out {
            assert!(m.payload.len() <= 4096, "{}", m.payload.len());
            assert!(m.id.as_deref().unwrap().starts_with("b1:metrics:"));
            let got: MetricBatch = serde_json::from_slice(&m.payload).unwrap();
            total += got.samples.len();
            for s in &got.samples {
                let sp = &got.series[s.series as usize];
                if sp.name.starts_with("lat") {
                    lat_parts.insert(m.subject.clone());
                }
            }
        }
        assert_eq!(total, b.samples.len());
        assert_eq!(lat_parts.len(), 1, "{lat_parts:?}");
        assert!(out.len() > 8, "cut into several messages: {}", out.len());
    }

    #[test]
    fn a_series_too_large_for_a_message_is_refused() {
        let mut b = MetricBatch::default();
        let big = "x".repeat(10_000);
        let s = b.add_series(spec("m", MetricKind::Gauge, &[("k", &big)]));
        b.push(s, 1, 1.0);
        assert!(matches!(
            plan_metrics("skein", 4, 4096, &b, None),
            Err(PublishError::TooLarge(_))
        ));
    }
}
