//! Every request of a run, encoded before the clock starts.

use super::MetricsIngestArgs;
use super::otlp::{gauge, point, resource_metrics};
use super::series::{METRICS, series_defs};
use crate::datagen::Rng;
use anyhow::Result;
use bytes::Bytes;
use prost::Message;
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use skein_model::proto::metrics::v1::NumberDataPoint;
use std::collections::BTreeMap;

/// The requests, already encoded: `bodies[round * slots + slot]`.
pub(super) struct Dataset {
    pub(super) bodies: Vec<Bytes>,
    pub(super) slots: usize,
    pub(super) points: Vec<u64>,
    pub(super) samples: u64,
    pub(super) bytes: u64,
    pub(super) first_ts_ns: u64,
}

/// Encodes every request. Values walk randomly from a per-series start, at the scale of their
/// metric (ratios in 0..1 with 3 decimals, the others rounded to whole units when large).
pub(super) fn make_dataset(a: &MetricsIngestArgs) -> Result<Dataset> {
    let defs = series_defs(a.series, a.hosts);
    let per_req = a.points_per_request.max(1);
    let slots = defs.len().div_ceil(per_req);
    let mut rng = Rng::new(a.seed);
    let mut values: Vec<f64> = defs
        .iter()
        .map(|d| METRICS[d.metric].scale * (0.1 + 0.6 * rng.unit()))
        .collect();
    let step_ns = 10_000_000_000u64;
    let now_s = skein_model::time::now_unix_nano() / 1_000_000_000;
    let first_s = (now_s - 10 * a.rounds as u64 - 10) / 10 * 10;
    let first_ts_ns = first_s * 1_000_000_000;
    let hosts: Vec<String> = (0..a.hosts.max(1)).map(|h| format!("host-{h}")).collect();
    let mut bodies = Vec::with_capacity(slots * a.rounds);
    let mut points = Vec::with_capacity(slots * a.rounds);
    let (mut samples, mut bytes) = (0u64, 0u64);
    for r in 0..a.rounds {
        let ts = first_ts_ns + r as u64 * step_ns;
        for (i, v) in values.iter_mut().enumerate() {
            let scale = METRICS[defs[i].metric].scale;
            let next = (*v + scale * 0.02 * (rng.unit() - 0.5)).clamp(0.0, scale);
            *v = if scale <= 1.0 {
                (next * 1000.0).round() / 1000.0
            } else if scale >= 1000.0 {
                next.round()
            } else {
                (next * 100.0).round() / 100.0
            };
        }
        for slot in 0..slots {
            let lo = slot * per_req;
            let hi = (lo + per_req).min(defs.len());
            // host -> metric -> points
            let mut by_host: BTreeMap<usize, BTreeMap<usize, Vec<NumberDataPoint>>> =
                BTreeMap::new();
            for i in lo..hi {
                let d = &defs[i];
                let attrs = [
                    (d.attrs[0].0, d.attrs[0].1.as_str()),
                    (d.attrs[1].0, d.attrs[1].1.as_str()),
                ];
                by_host
                    .entry(d.host)
                    .or_default()
                    .entry(d.metric)
                    .or_default()
                    .push(point(&attrs, ts, values[i]));
            }
            let req = ExportMetricsServiceRequest {
                resource_metrics: by_host
                    .into_iter()
                    .map(|(h, ms)| {
                        let metrics = ms
                            .into_iter()
                            .map(|(m, pts)| gauge(METRICS[m].name, METRICS[m].unit, pts))
                            .collect();
                        let host = hosts.get(h).map_or("host-x", String::as_str);
                        resource_metrics(Some("hostmetrics"), host, metrics)
                    })
                    .collect(),
            };
            let body = req.encode_to_vec();
            bytes += body.len() as u64;
            samples += (hi - lo) as u64;
            points.push((hi - lo) as u64);
            bodies.push(Bytes::from(body));
        }
    }
    Ok(Dataset {
        bodies,
        slots,
        points,
        samples,
        bytes,
        first_ts_ns,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::path::PathBuf;

    #[test]
    fn requests_convert_without_rejections() {
        let a = MetricsIngestArgs {
            skein: PathBuf::new(),
            series: 450,
            hosts: 10,
            points_per_request: 200,
            rounds: 3,
            concurrency: 1,
            runs: 1,
            seed: 1,
            max_load: 0.0,
            load_wait_secs: 0,
        };
        let d = make_dataset(&a).unwrap();
        assert_eq!(d.slots, 3);
        assert_eq!(d.samples, 1350);
        let limits = skein_model::otlp_metrics::MetricLimits::default();
        let mut series = HashSet::new();
        for b in &d.bodies {
            let req = ExportMetricsServiceRequest::decode(b.clone()).unwrap();
            let (batch, rej) = skein_model::otlp_metrics::metrics_from_otlp(&req, &limits, 0);
            assert_eq!(rej.count, 0);
            for s in &batch.series {
                series.insert(format!("{}{}", s.name, s.labels));
            }
        }
        assert_eq!(series.len(), 450);
    }
}
