//! Metric reads across the cluster ([`skein_query::metric_reads::MetricReads`]).
//!
//! Each node keeps the samples that came in through it, and the span-derived series of the
//! spans that came in through it, in its own metrics store. A metric read asks every live
//! node (this one directly, the others with `POST /internal/v1/metrics`) and merges: series
//! from each node carry the label `skein_node` (as Prometheus's `instance`), so a sum over
//! services adds every node's share and a rate is taken per node before it is summed. A
//! matcher on `skein_node` picks the nodes asked. A node that does not answer within the
//! query's time is named in the answer (`"missing_nodes"`), never silently left out.

use crate::lease::Membership;
use serde::{Deserialize, Serialize};
use skein_model::metric::{Labels, MetricKind};
use skein_query::metric_reads::{MetricReads, NODE_LABEL, merge_metrics, merge_names};
use skein_store::tsdb::{ChunkRef, MatchOp, Matcher, MetricInfo, SelectedSeries, Tsdb};
use skein_store::{Result, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

fn series_from_wire(w: WireSeries, node: &str) -> SelectedSeries {
    SelectedSeries {
        name: w.name,
        labels: w.labels.with(NODE_LABEL, node),
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

    /// Answers the read from this node's own store.
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

/// The cluster's metric reads.
pub struct MetricFanOut {
    /// Who is live.
    pub membership: Arc<Membership>,
    /// This node's store.
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

/// Why another node gave no answer.
enum Failed {
    /// The read itself is refused (such as too many series): the whole read fails.
    Bad(String),
    /// The node is down, slow or failing: it is named as missing.
    Unavailable(String),
}

/// One node's answer: its name and what it said.
type Answers = Vec<(String, MetricAnswer)>;

impl MetricFanOut {
    async fn remote(
        client: reqwest::Client,
        token: Option<String>,
        url: String,
        read: MetricRead,
        timeout: Duration,
    ) -> std::result::Result<MetricAnswer, Failed> {
        let mut req = client
            .post(format!("{}/internal/v1/metrics", url.trim_end_matches('/')))
            .timeout(timeout)
            .json(&read);
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
        resp.json::<MetricAnswer>()
            .await
            .map_err(|e| Failed::Unavailable(e.to_string()))
    }

    /// Asks every live node that `keep` accepts (this one directly); nodes that did not
    /// answer are noted as missing.
    fn ask(
        &self,
        read: &MetricRead,
        keep: &dyn Fn(&str) -> bool,
    ) -> std::result::Result<Answers, String> {
        let me = &self.membership.node;
        let view = self.membership.view();
        let timeout = skein_model::deadline::current()
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(self.timeout)
            .min(self.timeout);
        let tasks: Vec<_> = view
            .nodes
            .iter()
            .filter(|(name, _)| *name != me && keep(name))
            .map(|(name, info)| {
                let h = self.rt.spawn(Self::remote(
                    self.client.clone(),
                    self.token.clone(),
                    info.url.clone(),
                    read.clone(),
                    timeout,
                ));
                (name.clone(), h)
            })
            .collect();
        let mut out = Vec::new();
        if keep(me) {
            out.push((me.clone(), read.answer(&self.local)?));
        }
        let mut missing = Vec::new();
        for (name, h) in tasks {
            match self.rt.block_on(h) {
                Ok(Ok(a)) => out.push((name, a)),
                Ok(Err(Failed::Bad(m))) => return Err(m),
                Ok(Err(Failed::Unavailable(e))) => {
                    tracing::debug!(node = %name, error = %e, "a node did not answer a metric read");
                    missing.push(name);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        skein_query::partial::note_missing_nodes(missing);
        Ok(out)
    }

    fn infos(&self, read: &MetricRead) -> Vec<MetricInfo> {
        match self.ask(read, &|_| true) {
            Ok(answers) => merge_metrics(answers.into_iter().map(|(_, a)| match a {
                MetricAnswer::Infos { infos } => infos.into_iter().map(info_from_wire).collect(),
                _ => Vec::new(),
            })),
            Err(e) => {
                tracing::warn!(error = %e, "metric read failed");
                Vec::new()
            }
        }
    }

    fn names(&self, read: &MetricRead) -> Vec<String> {
        match self.ask(read, &|_| true) {
            Ok(answers) => merge_names(answers.into_iter().map(|(_, a)| match a {
                MetricAnswer::Names { names } => names,
                _ => Vec::new(),
            })),
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
        let mut names = self.names(&MetricRead::LabelNames {
            family: family.map(str::to_string),
        });
        names.push(NODE_LABEL.to_string());
        merge_names([names])
    }

    fn label_values(&self, label: &str, family: Option<&str>) -> Vec<String> {
        if label == NODE_LABEL {
            return self.membership.view().nodes.into_keys().collect();
        }
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
        // Matchers on the node label pick nodes; the others go to every node picked.
        let (on_node, rest): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| m.label == NODE_LABEL);
        let keep = |node: &str| {
            let l = Labels::from_pairs([(NODE_LABEL, node)]);
            on_node.iter().all(|m| m.matches(&l))
        };
        let read = MetricRead::Select {
            name: name.to_string(),
            matchers: rest.iter().map(|m| to_wire(m)).collect(),
            start,
            end,
            max_series,
        };
        let answers = self.ask(&read, &keep).map_err(StoreError::BadQuery)?;
        let mut out = Vec::new();
        for (node, a) in answers {
            if let MetricAnswer::Series { series } = a {
                out.extend(series.into_iter().map(|s| series_from_wire(s, &node)));
            }
        }
        if out.len() > max_series {
            return Err(StoreError::BadQuery(format!(
                "more than {max_series} series match {name} across the cluster's nodes: add matchers to pick fewer"
            )));
        }
        Ok(out)
    }
}
