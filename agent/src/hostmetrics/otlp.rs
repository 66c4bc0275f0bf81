//! Small builders for the OTLP metric messages the sampler emits: metric definitions (name,
//! unit, instrument kind), attribute helpers and a collector that groups data points under
//! one [`Metric`] per name.

use skein_model::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use skein_model::proto::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric::Data, number_data_point::Value,
};
use skein_model::proto::resource::v1::Resource;
use std::time::{SystemTime, UNIX_EPOCH};

/// The instrumentation scope name put on every metric the sampler emits.
pub const SCOPE_NAME: &str = "skein-agent/hostmetrics";

/// How a metric is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A gauge: a value at `time_unix_nano`, no start time.
    Gauge,
    /// A monotonic cumulative sum (a counter).
    Counter,
    /// A non-monotonic cumulative sum (an up-down counter).
    UpDown,
}

/// A metric's name, unit, kind and description.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Def {
    pub name: &'static str,
    pub unit: &'static str,
    pub kind: Kind,
    pub desc: &'static str,
}

/// Shorthand for a [`Def`].
pub(crate) const fn def(
    name: &'static str,
    unit: &'static str,
    kind: Kind,
    desc: &'static str,
) -> Def {
    Def {
        name,
        unit,
        kind,
        desc,
    }
}

/// Nanoseconds since the Unix epoch, now.
pub(crate) fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Seconds since the Unix epoch to nanoseconds (saturating).
pub(crate) fn secs_to_nanos(secs: u64) -> u64 {
    secs.saturating_mul(1_000_000_000)
}

/// A string attribute.
pub(crate) fn str_kv(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
    }
}

/// An integer attribute.
pub(crate) fn int_kv(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
    }
}

/// An integer point value from an unsigned count (saturating at `i64::MAX`).
pub(crate) fn int(v: u64) -> Value {
    Value::AsInt(i64::try_from(v).unwrap_or(i64::MAX))
}

/// A floating point value.
pub(crate) fn dbl(v: f64) -> Value {
    Value::AsDouble(v)
}

/// `part / whole`, clamped to 0..=1; `None` when `whole` is 0.
pub(crate) fn ratio(part: u64, whole: u64) -> Option<f64> {
    if whole == 0 {
        return None;
    }
    Some((part as f64 / whole as f64).clamp(0.0, 1.0))
}

/// Collects data points and groups them into one [`Metric`] per name, in first-seen order.
#[derive(Debug)]
pub(crate) struct Metrics {
    now: u64,
    list: Vec<Metric>,
}

impl Metrics {
    /// An empty set whose points are stamped with `now` (ns since the epoch).
    pub fn new(now: u64) -> Self {
        Metrics {
            now,
            list: Vec::new(),
        }
    }

    /// Adds one point. `start` (ns since the epoch) is used by sums only.
    pub fn push(&mut self, def: &Def, attributes: Vec<KeyValue>, value: Value, start: u64) {
        let point = NumberDataPoint {
            attributes,
            start_time_unix_nano: if def.kind == Kind::Gauge { 0 } else { start },
            time_unix_nano: self.now,
            exemplars: Vec::new(),
            flags: 0,
            value: Some(value),
        };
        let points = match self.list.iter().position(|m| m.name == def.name) {
            Some(i) => &mut self.list[i],
            None => {
                self.list.push(new_metric(def));
                let last = self.list.len() - 1;
                &mut self.list[last]
            }
        };
        match &mut points.data {
            Some(Data::Gauge(g)) => g.data_points.push(point),
            Some(Data::Sum(s)) => s.data_points.push(point),
            _ => {}
        }
    }

    /// Whether no point was added.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Wraps the metrics into one [`ResourceMetrics`] with the given resource attributes.
    pub fn into_resource_metrics(self, resource: Vec<KeyValue>) -> ResourceMetrics {
        ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
                dropped_attributes_count: 0,
                entity_refs: Vec::new(),
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    attributes: Vec::new(),
                    dropped_attributes_count: 0,
                }),
                metrics: self.list,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }
    }
}

fn new_metric(def: &Def) -> Metric {
    let data = match def.kind {
        Kind::Gauge => Data::Gauge(Gauge {
            data_points: Vec::new(),
        }),
        Kind::Counter | Kind::UpDown => Data::Sum(Sum {
            data_points: Vec::new(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: def.kind == Kind::Counter,
        }),
    };
    Metric {
        name: def.name.to_owned(),
        description: def.desc.to_owned(),
        unit: def.unit.to_owned(),
        metadata: Vec::new(),
        data: Some(data),
    }
}
