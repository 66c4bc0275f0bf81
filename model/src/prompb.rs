//! The messages of Prometheus remote write 1.0 (`prometheus.WriteRequest` of the `prompb`
//! package), written out with `prost` derives: only what a receiver reads.
//!
//! Field numbers follow Prometheus's `prompb/remote.proto` and `prompb/types.proto`. Exemplars
//! (`TimeSeries` field 3) are not declared, so the decoder skips them without building
//! anything. Native histograms (field 4) are declared as an empty message: each one decodes to
//! a zero-sized value, so the receiver can count and refuse them without paying for their
//! buckets. [`crate::remote_write`] turns a decoded request into a metric batch.

/// `prometheus.WriteRequest`: one remote-write request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series and their samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Type, help and unit of metric families (Prometheus sends these in requests of their
    /// own, every `metadata_config.send_interval`).
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries`: one series (its labels, `__name__` among them) and its samples.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// The labels, the metric name as `__name__`.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// The float samples.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Native histogram samples, contents skipped (see [`NativeHistogram`]).
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<NativeHistogram>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Label {
    /// Label name, such as `__name__`, `job`, `instance`, `le`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`: one float value at one time.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    /// The value, any float (Prometheus's staleness marker is a NaN:
    /// [`crate::remote_write::STALE_NAN_BITS`]).
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// A native histogram sample (`prometheus.Histogram`). No field is declared: its contents are
/// skipped while decoding, only its presence is seen.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct NativeHistogram {}

/// `prometheus.MetricMetadata`: what one metric family is.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct MetricMetadata {
    /// The family's type ([`MetricType`] as a number).
    #[prost(enumeration = "MetricType", tag = "1")]
    pub r#type: i32,
    /// The family name: `x` for the series `x_bucket`, `x_sum` and `x_count` of a histogram;
    /// for a counter either `x` or `x_total`, as the target exposed it.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// Help text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// Unit, may be empty.
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// `prometheus.MetricMetadata.MetricType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    /// Not known (untyped).
    Unknown = 0,
    /// A monotonic counter.
    Counter = 1,
    /// A gauge.
    Gauge = 2,
    /// A classic histogram (`_bucket`, `_sum`, `_count`).
    Histogram = 3,
    /// A gauge histogram.
    Gaugehistogram = 4,
    /// A summary (quantiles, `_sum`, `_count`).
    Summary = 5,
    /// An info metric.
    Info = 6,
    /// A state set.
    Stateset = 7,
}
