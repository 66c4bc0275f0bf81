//! OTLP metrics messages: gauges, points and a host's `ResourceMetrics`.

use skein_model::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use skein_model::proto::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use skein_model::proto::resource::v1::Resource;

fn kv(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "skein-bench".into(),
        version: "1".into(),
        ..Default::default()
    }
}

/// A gauge metric with its points.
pub(crate) fn gauge(name: &str, unit: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }
}

/// A gauge point with string attributes.
pub(crate) fn point(attrs: &[(&str, &str)], ts_ns: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
        time_unix_nano: ts_ns,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

/// One `ResourceMetrics` of a host (`host.name`, and `service.name` when given).
pub(crate) fn resource_metrics(
    service: Option<&str>,
    host: &str,
    metrics: Vec<Metric>,
) -> ResourceMetrics {
    let mut attributes = Vec::new();
    if let Some(s) = service {
        attributes.push(kv("service.name", s));
    }
    attributes.push(kv("host.name", host));
    ResourceMetrics {
        resource: Some(Resource {
            attributes,
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(scope()),
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }
}
