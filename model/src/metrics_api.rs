//! JSON shapes of the metrics, services, dependencies and hosts API.
//!
//! Shared by the server (skein-query) and its clients. Values that cannot be known (a ratio
//! or a percentile over no calls) are `null`, never NaN.

use crate::metric::Labels;
use serde::{Deserialize, Serialize};

/// `GET /api/v1/metrics/query`: a range query's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricQueryResponse {
    /// Metric family asked for.
    pub name: String,
    /// Aggregation applied (`avg`, `rate`, `p99`, ...).
    pub agg: String,
    /// Time of the first point (ms since the Unix epoch), a multiple of the step.
    pub start_ms: i64,
    /// Time of the last point (ms): the end of the range.
    pub end_ms: i64,
    /// Distance between points (ms). A point at `t` covers the window `(t - step, t]`.
    /// Points are at multiples of the step, and the last at the end of the range when that
    /// is not a multiple: it covers only the rest, `(last multiple, end]`.
    pub step_ms: i64,
    /// One series per group, sorted by labels.
    pub series: Vec<ResultSeries>,
}

/// One group's points.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultSeries {
    /// The group's labels: the `by` labels, and those pinned by `label=value` matchers.
    pub labels: Labels,
    /// `[ts_ms, value]` pairs in time order. Windows without data are left out.
    pub points: Vec<(i64, f64)>,
}

/// `GET /api/v1/metrics/names`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricNamesResponse {
    /// Every metric family, by name.
    pub metrics: Vec<MetricNameInfo>,
}

/// One metric family.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricNameInfo {
    /// Family name (`x` for a histogram stored as `x_bucket`, `x_sum`, `x_count`).
    pub name: String,
    /// `gauge`, `counter`, `updown_counter`, `histogram` or `summary`.
    pub kind: String,
    /// Unit as sent (`ms`, `By`, `1`), may be empty.
    #[serde(default)]
    pub unit: String,
    /// Number of stored series in the family.
    pub series: usize,
}

/// `GET /api/v1/metrics/labels`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LabelsResponse {
    /// Label names, sorted.
    pub labels: Vec<String>,
}

/// `GET /api/v1/metrics/labels/{label}/values`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LabelValuesResponse {
    /// The label asked for.
    pub label: String,
    /// Its values, sorted.
    pub values: Vec<String>,
}

/// `GET /api/v1/services`: health of every service seen in the last hour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServicesResponse {
    /// Length of the window the figures cover (ms), ending now.
    pub window_ms: i64,
    /// Services, sorted by name.
    pub services: Vec<ServiceHealth>,
}

/// One service's figures over the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceHealth {
    /// Service name.
    pub name: String,
    /// Calls per second.
    pub rate: f64,
    /// Errors / calls (0..1); null without calls.
    pub error_rate: Option<f64>,
    /// Median duration (ms); null without calls.
    pub p50_ms: Option<f64>,
    /// 99th percentile duration (ms); null without calls.
    pub p99_ms: Option<f64>,
    /// Calls in the window.
    pub calls: u64,
    /// Errors in the window.
    pub errors: u64,
    /// The last 5 minutes in 10 s points, oldest first.
    #[serde(default)]
    pub recent: Vec<RecentPoint>,
}

/// One 10 s point of a service's recent history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecentPoint {
    /// End of the 10 s window (ms).
    pub ts_ms: i64,
    /// Calls per second.
    pub rate: f64,
    /// Errors / calls; null without calls.
    pub error_rate: Option<f64>,
    /// 99th percentile duration (ms) as the span-derived gauge says; null when not reported.
    pub p99_ms: Option<f64>,
}

/// `GET /api/v1/services/{name}/operations`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationsResponse {
    /// The service.
    pub service: String,
    /// Length of the window the figures cover (ms), ending now.
    pub window_ms: i64,
    /// Its operations, sorted by name.
    pub operations: Vec<OperationHealth>,
}

/// One operation's figures over the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationHealth {
    /// Operation name.
    pub name: String,
    /// Calls per second.
    pub rate: f64,
    /// Errors / calls (0..1); null without calls.
    pub error_rate: Option<f64>,
    /// Median duration (ms).
    pub p50_ms: Option<f64>,
    /// 90th percentile duration (ms).
    pub p90_ms: Option<f64>,
    /// 95th percentile duration (ms).
    pub p95_ms: Option<f64>,
    /// 99th percentile duration (ms).
    pub p99_ms: Option<f64>,
    /// Calls in the window.
    pub calls: u64,
    /// Errors in the window.
    pub errors: u64,
}

/// `GET /api/v1/dependencies`: the service graph over a time range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DependenciesResponse {
    /// Start of the range (ms).
    pub start_ms: i64,
    /// End of the range (ms).
    pub end_ms: i64,
    /// Every service and outside dependency, sorted by name.
    pub nodes: Vec<DepNode>,
    /// Caller → callee edges with calls in the range, sorted.
    pub edges: Vec<DepEdge>,
}

/// A node of the service graph.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DepNode {
    /// Service or dependency name.
    pub name: String,
    /// `service`, `database`, `messaging` or `external`.
    pub node_type: String,
    /// True when the node sends its own spans (a caller, or a service with span metrics).
    pub instrumented: bool,
    /// Calls it received over its incoming edges.
    pub calls: u64,
}

/// A caller → callee edge.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DepEdge {
    /// The calling service.
    pub caller: String,
    /// What it called.
    pub callee: String,
    /// `sync`, `async` or `link`.
    pub kind: String,
    /// `service`, `database`, `messaging` or `external`.
    pub callee_type: String,
    /// Calls in the range.
    pub calls: u64,
    /// Failed calls in the range.
    pub errors: u64,
    /// errors / calls.
    pub error_rate: f64,
    /// Median duration as the caller saw it (ms).
    pub p50_ms: Option<f64>,
    /// 90th percentile duration (ms).
    pub p90_ms: Option<f64>,
    /// 95th percentile duration (ms).
    pub p95_ms: Option<f64>,
    /// 99th percentile duration (ms).
    pub p99_ms: Option<f64>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn points_are_pairs_and_unknowns_are_null() {
        let r = MetricQueryResponse {
            name: "cpu".into(),
            agg: "avg".into(),
            start_ms: 0,
            end_ms: 10,
            step_ms: 10,
            series: vec![ResultSeries {
                labels: Labels::from_pairs([("host", "a")]),
                points: vec![(10, 1.5)],
            }],
        };
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["series"][0]["points"], serde_json::json!([[10, 1.5]]));
        assert_eq!(j["series"][0]["labels"]["host"], "a");
        let back: MetricQueryResponse = serde_json::from_value(j).unwrap();
        assert_eq!(back, r);
        let p = RecentPoint::default();
        let j = serde_json::to_value(&p).unwrap();
        assert!(j["error_rate"].is_null());
    }
}
