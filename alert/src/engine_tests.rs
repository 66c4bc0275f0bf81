#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::dispatch::CUT_MARK;
use skein_model::alert_api::{WebhookAlert, WebhookMessage};

fn alert(i: usize, summary: &str) -> WebhookAlert {
    WebhookAlert {
        status: "firing".into(),
        labels: [("alertname".to_string(), format!("a{i}"))].into(),
        annotations: [("summary".to_string(), summary.to_string())].into(),
        starts_at: "2024-01-01T00:00:00Z".into(),
        ends_at: "0001-01-01T00:00:00Z".into(),
        generator_url: String::new(),
        fingerprint: format!("{i:016x}"),
    }
}

fn message(alerts: Vec<WebhookAlert>) -> Outgoing {
    Outgoing {
        receiver: "ops".into(),
        message: WebhookMessage {
            receiver: "ops".into(),
            status: "firing".into(),
            alerts,
            group_labels: LabelSet::new(),
            common_labels: LabelSet::new(),
            common_annotations: LabelSet::new(),
            external_url: "http://x".into(),
            version: "4".into(),
            group_key: "{}:{}".into(),
            truncated_alerts: 0,
        },
    }
}

/// The one queued body, and its size as JSON.
fn queued(ob: &Outbox) -> (serde_json::Value, usize) {
    let n = ob.peek("ops").unwrap().expect("a notification is queued");
    let len = serde_json::to_vec(&n.body).unwrap().len();
    (n.body, len)
}

#[test]
fn a_body_over_the_limit_is_cut_to_fit_with_a_count_of_alerts_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(dir.path(), OutboxLimits::default()).unwrap();
    let limit = OutboxLimits::default().max_body_bytes;
    // 100 alerts of 100 KiB each: about 10 MiB.
    let big = "x".repeat(100 * 1024);
    let alerts = (0..100).map(|i| alert(i, &big)).collect();
    assert!(queue(&ob, &message(alerts)));
    let (body, len) = queued(&ob);
    assert!(len <= limit, "{len}");
    let kept = body["alerts"].as_array().unwrap().len();
    assert!(kept > 0 && kept < 100, "{kept}");
    assert_eq!(body["truncatedAlerts"], (100 - kept) as u64);
    assert_eq!(body["alerts"][0]["annotations"]["summary"], big.as_str());
}

#[test]
fn one_alert_over_the_limit_is_sent_with_its_long_values_cut() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(dir.path(), OutboxLimits::default()).unwrap();
    let limit = OutboxLimits::default().max_body_bytes;
    let huge = "é".repeat(3 * 1024 * 1024);
    assert!(queue(&ob, &message(vec![alert(0, &huge)])));
    let (body, len) = queued(&ob);
    assert!(len <= limit, "{len}");
    assert_eq!(body["truncatedAlerts"], 0);
    let summary = body["alerts"][0]["annotations"]["summary"]
        .as_str()
        .unwrap();
    assert!(
        summary.starts_with("éé") && summary.ends_with(CUT_MARK),
        "{}",
        summary.len()
    );
}
