//! The records of `overload`: every batch has its own correlation key (`request_id`) and every
//! record its own id (`ovl.rid`), so a lookup of the key finds exactly the batch's records and
//! the check can tell a lost record from a duplicate.

use crate::datagen::Gen;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::sync::Arc;

/// The attribute holding a record's own id.
pub(super) const RID: &str = "ovl.rid";

/// The correlation key of batch `batch`.
pub(super) fn batch_key(batch: u64) -> String {
    format!("ovl-{batch:09}")
}

/// The id of record `i` of batch `batch`.
pub(super) fn record_id(batch: u64, i: usize) -> String {
    format!("{batch}.{i}")
}

fn kv(key: &str, v: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v)),
        }),
        ..Default::default()
    }
}

const SERVICES: [&str; 5] = ["orders", "payments", "coupons", "delivery", "gateway"];

/// Log messages made once (making a message per record would cost the senders, which share
/// the two cores with the collector, more CPU than copying one).
pub(super) fn bodies(n: usize) -> Arc<Vec<String>> {
    let mut g = Gen::new(16, 0);
    Arc::new(
        (0..n)
            .map(|i| g.body(if i.is_multiple_of(17) { 17 } else { 9 }))
            .collect(),
    )
}

/// Batch `batch` of `n` records: one resource (a service instance), realistic 100–300 byte
/// bodies from `bodies`, the batch's key as `request_id`, the record's id as `ovl.rid`.
pub(super) fn batch(bodies: &[String], batch: u64, n: usize) -> ExportLogsServiceRequest {
    let key = batch_key(batch);
    let now = skein_model::time::now_unix_nano();
    let service = SERVICES[(batch % SERVICES.len() as u64) as usize];
    let records = (0..n)
        .map(|i| {
            let b = (batch as usize).wrapping_mul(n).wrapping_add(i) % bodies.len().max(1);
            let severity = if b.is_multiple_of(17) { 17 } else { 9 };
            LogRecord {
                time_unix_nano: now,
                observed_time_unix_nano: now,
                severity_number: severity,
                severity_text: if severity == 17 { "ERROR" } else { "INFO" }.into(),
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(
                        bodies.get(b).cloned().unwrap_or_default(),
                    )),
                }),
                attributes: vec![
                    kv("request_id", key.clone()),
                    kv(RID, record_id(batch, i)),
                    kv("http.route", "/orders/{id}".into()),
                ],
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", service.into()),
                    kv("host.name", format!("host-{}", batch % 3)),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use skein_model::keys::KeyExtractor;
    use skein_model::{KeyConfig, Limits};

    #[test]
    fn every_record_carries_the_batch_key_and_its_own_id() {
        let req = batch(&bodies(100), 42, 5);
        let keys = KeyExtractor::new(&KeyConfig::default());
        let (records, rejected) = skein_model::otlp::logs_from_otlp(
            &req,
            &keys,
            &Limits::default(),
            skein_model::time::now_unix_nano(),
        );
        assert_eq!(rejected.count, 0);
        assert_eq!(records.len(), 5);
        let mut ids: Vec<String> = records
            .iter()
            .map(|r| r.attributes[RID].as_str().unwrap().to_string())
            .collect();
        ids.dedup();
        assert_eq!(ids.len(), 5);
        for r in &records {
            assert!(r.keys.contains(&batch_key(42)), "{:?}", r.keys);
            assert!(r.trace_id.is_empty());
        }
    }
}
