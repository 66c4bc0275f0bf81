//! What a PromQL query returns. Times are milliseconds since the Unix epoch. Every label set
//! carries the metric name as the label `__name__` where the series has one (functions and
//! most operators drop it, as in Prometheus).

use skein_model::metric::Labels;

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Labels, `__name__` included when kept.
    pub labels: Labels,
    /// Evaluation time (ms).
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// One series of a matrix: points in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// Labels, `__name__` included when kept.
    pub labels: Labels,
    /// `(time ms, value)`, times increasing.
    pub points: Vec<(i64, f64)>,
}

/// The result of a query, as Prometheus's `resultType` names it.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    /// `scalar`: time and value.
    Scalar(i64, f64),
    /// `string`: time and text.
    String(i64, String),
    /// `vector`: an instant vector, sorted by labels unless the query sorts (`sort`, `topk`).
    Vector(Vec<Sample>),
    /// `matrix`: a range query's answer, or a range-vector expression, sorted by labels.
    Matrix(Vec<RangeSeries>),
}
