//! Metric reads across the cluster ([`skein_query::metric_reads::MetricReads`]).
//!
//! Metric samples are partitioned by series (`publish_metrics`), and each partition's span
//! metrics are derived by the nodes that index it, into the partition's own metrics store.
//! A metric read goes to every partition once, like a log or span read: this node's
//! caught-up partitions directly, the others on one live owner each
//! (`POST /internal/v1/metrics`), then merged. Series from different partitions are listed
//! side by side; a span-derived series (same labels in every partition that saw the service)
//! appears once per partition, and every metric view sums over them. This node's own store
//! is read too: in a cluster it holds only what each node keeps for itself (`skein.agent.up`
//! from the shared agent registry). A partition no live owner answered for is named
//! (`"missing_partitions"`).

use crate::fanout::{Failed, each_partition};
use crate::lease::Membership;
use serde::{Deserialize, Serialize};
use skein_model::metric::{Labels, MetricKind};
use skein_query::metric_reads::{MetricReads, merge_metrics, merge_names};
use skein_store::tsdb::{ChunkRef, MatchOp, Matcher, MetricInfo, SelectedSeries, Tsdb};
use skein_store::{Result, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// Most matchers one internal metric read takes.
pub const MAX_MATCHERS: usize = 64;
/// Most series one internal metric read selects.
pub const MAX_SERIES: usize = 1_000_000;

/// A matcher on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireMatcher {
    label: String,
    op: String,
    value: String,
}

/// A metric read sent to another node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "read", rename_all = "snake_case")]
pub enum MetricRead {
    /// Every family.
    Metrics,
    /// One family.
    Metric {
        /// Its name.
        family: String,
    },
    /// Label names.
    LabelNames {
        /// Of one family, or of all.
        family: Option<String>,
    },
    /// Values of a label.
    LabelValues {
        /// The label.
        label: String,
        /// Of one family, or of all.
        family: Option<String>,
    },
    /// Series and their chunks.
    Select {
        /// Stored series name.
        name: String,
        /// Conditions on labels.
        matchers: Vec<WireMatcher>,
        /// Range start (ms).
        start: i64,
        /// Range end (ms).
        end: i64,
        /// Most series.
        max_series: usize,
    },
}

/// A metric read of some partitions, sent to one of their owners.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteMetricRead {
    /// Partitions to read.
    pub partitions: Vec<u32>,
    /// The read.
    pub read: MetricRead,
}

/// Its answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteMetricAnswer {
    /// The merged answer of the partitions it read.
    pub answer: Option<MetricAnswer>,
    /// Partitions it does not hold caught up (read them elsewhere).
    pub missing: Vec<u32>,
}

/// A family on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireInfo {
    name: String,
    kind: MetricKind,
    unit: String,
    series: usize,
}

/// A chunk on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireChunk {
    min_ts: i64,
    max_ts: i64,
    data: Vec<u8>,
}

/// A series on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireSeries {
    name: String,
    labels: Labels,
    kind: MetricKind,
    chunks: Vec<WireChunk>,
}

/// The answer to a [`MetricRead`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum MetricAnswer {
    /// Families.
    Infos {
        /// Found.
        infos: Vec<WireInfo>,
    },
    /// Names or values.
    Names {
        /// Found.
        names: Vec<String>,
    },
    /// Series.
    Series {
        /// Found.
        series: Vec<WireSeries>,
    },
}

fn op_name(op: MatchOp) -> &'static str {
    match op {
        MatchOp::Eq => "=",
        MatchOp::Ne => "!=",
        MatchOp::Re => "=~",
        MatchOp::NotRe => "!~",
    }
}

fn to_wire(m: &Matcher) -> WireMatcher {
    WireMatcher {
        label: m.label.clone(),
        op: op_name(m.op).to_string(),
        value: m.value.clone(),
    }
}

fn from_wire(w: &WireMatcher) -> std::result::Result<Matcher, String> {
    let op = match w.op.as_str() {
        "=" => MatchOp::Eq,
        "!=" => MatchOp::Ne,
        "=~" => MatchOp::Re,
        "!~" => MatchOp::NotRe,
        other => return Err(format!("unknown matcher operator {other:?}")),
    };
    Matcher::new(&w.label, op, &w.value)
}

fn info_to_wire(i: MetricInfo) -> WireInfo {
    WireInfo {
        name: i.name,
        kind: i.kind,
        unit: i.unit,
        series: i.series,
    }
}

fn info_from_wire(w: WireInfo) -> MetricInfo {
    MetricInfo {
        name: w.name,
        kind: w.kind,
        unit: w.unit,
        series: w.series,
    }
}

fn series_to_wire(s: SelectedSeries) -> WireSeries {
    WireSeries {
        name: s.name,
        labels: s.labels,
        kind: s.kind,
        chunks: s
            .chunks
            .into_iter()
            .map(|c| WireChunk {
                min_ts: c.min_ts,
                max_ts: c.max_ts,
                data: c.data.to_vec(),
            })
            .collect(),
    }
}

fn series_from_wire(w: WireSeries) -> SelectedSeries {
    SelectedSeries {
        name: w.name,
        labels: w.labels,
        kind: w.kind,
        chunks: w
            .chunks
            .into_iter()
            .map(|c| ChunkRef {
                min_ts: c.min_ts,
                max_ts: c.max_ts,
                data: c.data.into(),
            })
            .collect(),
    }
}

impl MetricRead {
    /// Checks the bounds of a read that came over the network.
    pub fn check(&self) -> std::result::Result<(), String> {
        let long = |s: &str| s.len() > 1024;
        match self {
            MetricRead::Metrics => Ok(()),
            MetricRead::Metric { family } if long(family) => Err("family name too long".into()),
            MetricRead::LabelValues { label, .. } if long(label) => {
                Err("label name too long".into())
            }
            MetricRead::Select {
                name,
                matchers,
                max_series,
                ..
            } => {
                if long(name) {
                    return Err("series name too long".into());
                }
                if matchers.len() > MAX_MATCHERS {
                    return Err(format!("at most {MAX_MATCHERS} matchers"));
                }
                if *max_series > MAX_SERIES {
                    return Err(format!("max_series is at most {MAX_SERIES}"));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Answers the read from several stores (a node's partitions), merged.
    pub fn answer_all(&self, stores: &[Tsdb]) -> std::result::Result<MetricAnswer, String> {
        let mut parts = Vec::with_capacity(stores.len());
        for t in stores {
            parts.push(self.answer(t)?);
        }
        Ok(merge_answers(parts))
    }

    /// Answers the read from one store.
    pub fn answer(&self, tsdb: &Tsdb) -> std::result::Result<MetricAnswer, String> {
        Ok(match self {
            MetricRead::Metrics => MetricAnswer::Infos {
                infos: tsdb.metrics().into_iter().map(info_to_wire).collect(),
            },
            MetricRead::Metric { family } => MetricAnswer::Infos {
                infos: tsdb.metric(family).into_iter().map(info_to_wire).collect(),
            },
            MetricRead::LabelNames { family } => MetricAnswer::Names {
                names: tsdb.label_names(family.as_deref()),
            },
            MetricRead::LabelValues { label, family } => MetricAnswer::Names {
                names: tsdb.label_values(label, family.as_deref()),
            },
            MetricRead::Select {
                name,
                matchers,
                start,
                end,
                max_series,
            } => {
                let ms = matchers
                    .iter()
                    .map(from_wire)
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let series = tsdb
                    .select(name, &ms, *start, *end, *max_series)
                    .map_err(|e| e.to_string())?;
                MetricAnswer::Series {
                    series: series.into_iter().map(series_to_wire).collect(),
                }
            }
        })
    }
}

/// Merges answers of disjoint stores: families by name, names sorted once, series side by
/// side.
pub fn merge_answers(parts: Vec<MetricAnswer>) -> MetricAnswer {
    let mut infos = Vec::new();
    let mut names = Vec::new();
    let mut series = Vec::new();
    let mut kind = 0u8;
    for p in parts {
        match p {
            MetricAnswer::Infos { infos: i } => {
                kind = 1;
                infos.push(i.into_iter().map(info_from_wire).collect());
            }
            MetricAnswer::Names { names: n } => {
                kind = 2;
                names.push(n);
            }
            MetricAnswer::Series { series: s } => {
                kind = 3;
                series.extend(s);
            }
        }
    }
    match kind {
        1 => MetricAnswer::Infos {
            infos: merge_metrics(infos).into_iter().map(info_to_wire).collect(),
        },
        2 => MetricAnswer::Names {
            names: merge_names(names),
        },
        _ => MetricAnswer::Series { series },
    }
}

impl From<Failed> for String {
    fn from(f: Failed) -> Self {
        match f {
            Failed::Bad(m) | Failed::Unavailable(m) => m,
        }
    }
}

/// The metrics stores of the given partitions held here caught up, and those not.
pub fn local_stores(m: &Membership, parts: &[u32]) -> (Vec<Tsdb>, Vec<u32>) {
    let local = m.local();
    let mut stores = Vec::new();
    let mut missing = Vec::new();
    for p in parts {
        match local.get(p) {
            Some(lp) if lp.caught_up.load(std::sync::atomic::Ordering::Acquire) => {
                stores.push(lp.tsdb.clone());
            }
            _ => missing.push(*p),
        }
    }
    (stores, missing)
}

/// The cluster's metric reads.
pub struct MetricFanOut {
    /// Who holds what.
    pub membership: Arc<Membership>,
    /// This node's own store (what each node keeps for itself).
    pub local: Tsdb,
    /// HTTP client for the other nodes.
    pub client: reqwest::Client,
    /// The query token.
    pub token: Option<String>,
    /// Longest wait for another node.
    pub timeout: Duration,
    /// The runtime the requests run on.
    pub rt: tokio::runtime::Handle,
}

impl MetricFanOut {
    async fn remote(
        client: reqwest::Client,
        token: Option<String>,
        url: String,
        body: RemoteMetricRead,
        timeout: Duration,
    ) -> std::result::Result<(Option<MetricAnswer>, Vec<u32>), Failed> {
        let mut req = client
            .post(format!("{}/internal/v1/metrics", url.trim_end_matches('/')))
            .timeout(timeout)
            .json(&body);
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Failed::Unavailable(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let v: serde_json::Value = resp.json().await.unwrap_or_default();
            let msg = v["message"].as_str().unwrap_or("").to_string();
            return Err(if status.as_u16() == 400 {
                Failed::Bad(msg)
            } else {
                Failed::Unavailable(format!("{url} answered {status}: {msg}"))
            });
        }
        let a = resp
            .json::<RemoteMetricAnswer>()
            .await
            .map_err(|e| Failed::Unavailable(e.to_string()))?;
        Ok((a.answer, a.missing))
    }

    /// Every partition's answer (and this node's own store's), merged.
    fn ask(&self, read: &MetricRead) -> std::result::Result<MetricAnswer, String> {
        let m = &self.membership;
        let (client, token) = (self.client.clone(), self.token.clone());
        let mut parts = each_partition(
            m,
            &self.rt,
            self.timeout,
            |here| {
                let (stores, _) = local_stores(m, here);
                read.answer_all(&stores).map(Some)
            },
            |url, partitions, timeout| {
                let body = RemoteMetricRead {
                    partitions,
                    read: read.clone(),
                };
                Self::remote(client.clone(), token.clone(), url, body, timeout)
            },
        )?;
        parts.push(read.answer(&self.local)?);
        Ok(merge_answers(parts))
    }

    fn infos(&self, read: &MetricRead) -> Vec<MetricInfo> {
        match self.ask(read) {
            Ok(MetricAnswer::Infos { infos }) => infos.into_iter().map(info_from_wire).collect(),
            Ok(_) => Vec::new(),
            Err(e) => {
                tracing::warn!(error = %e, "metric read failed");
                Vec::new()
            }
        }
    }

    fn names(&self, read: &MetricRead) -> Vec<String> {
        match self.ask(read) {
            Ok(MetricAnswer::Names { names }) => names,
            Ok(_) => Vec::new(),
            Err(e) => {
                tracing::warn!(error = %e, "metric read failed");
                Vec::new()
            }
        }
    }
}

impl MetricReads for MetricFanOut {
    fn metrics(&self) -> Vec<MetricInfo> {
        self.infos(&MetricRead::Metrics)
    }

    fn metric(&self, family: &str) -> Option<MetricInfo> {
        self.infos(&MetricRead::Metric {
            family: family.to_string(),
        })
        .into_iter()
        .next()
    }

    fn label_names(&self, family: Option<&str>) -> Vec<String> {
        self.names(&MetricRead::LabelNames {
            family: family.map(str::to_string),
        })
    }

    fn label_values(&self, label: &str, family: Option<&str>) -> Vec<String> {
        self.names(&MetricRead::LabelValues {
            label: label.to_string(),
            family: family.map(str::to_string),
        })
    }

    fn select(
        &self,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        max_series: usize,
    ) -> Result<Vec<SelectedSeries>> {
        let read = MetricRead::Select {
            name: name.to_string(),
            matchers: matchers.iter().map(to_wire).collect(),
            start,
            end,
            max_series,
        };
        let series = match self.ask(&read).map_err(StoreError::BadQuery)? {
            MetricAnswer::Series { series } => series,
            _ => Vec::new(),
        };
        if series.len() > max_series {
            return Err(StoreError::BadQuery(format!(
                "more than {max_series} series match {name} across the cluster's partitions: add matchers to pick fewer"
            )));
        }
        Ok(series.into_iter().map(series_from_wire).collect())
    }
}
