//! The memory limit (`limits.memory_limit_mb`) over the real binary: a flood of large log
//! batches takes the collector over a small limit; it then refuses with 503, `Retry-After`
//! and a message naming the key, counts the refusals, keeps answering queries, and takes
//! requests again once the flood is over: ingest never stops for good.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Collector, client, wait_for};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One OTLP/JSON logs body of `n` records of about 400 bytes each.
fn big_body(tag: usize, n: usize) -> Vec<u8> {
    let records: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "timeUnixNano": (common::now_nanos() + i as u64).to_string(),
                "body": {"stringValue": format!("{} flood {tag} {i}", "x".repeat(400))},
                "attributes": [{"key": "request_id", "value": {"stringValue": format!("flood-{tag}-{i}")}}],
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "flood"}}]},
            "scopeLogs": [{"logRecords": records}],
        }]
    }))
    .unwrap()
}

fn post(http: &reqwest::blocking::Client, url: &str, body: Vec<u8>) -> Option<(u16, bool, String)> {
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .ok()?;
    let status = resp.status().as_u16();
    let retry_after = resp.headers().contains_key("retry-after");
    Some((status, retry_after, resp.text().unwrap_or_default()))
}

#[test]
fn over_its_memory_limit_the_collector_refuses_with_retry_after_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("collector.toml");
    // The smallest limit the configuration check allows for these parts: 32 + 32 + 16 + 16.
    std::fs::write(
        &config,
        "[index]\nwriter_memory_mb = 32\n[limits]\nmemory_budget_mb = 16\nmemory_limit_mb = 96\n[metrics]\ncache_mb = 16\n",
    )
    .unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let c = Collector::start_in(&data, &["--config", config.to_str().unwrap()]);
    let url = format!("{}/v1/logs", c.http_base());
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new((0..4).map(|t| big_body(t, 2000)).collect());

    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(Mutex::new(None::<(bool, String)>));
    let taken = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..12)
        .map(|t| {
            let (stop, refused, taken, bodies, url) = (
                stop.clone(),
                refused.clone(),
                taken.clone(),
                bodies.clone(),
                url.clone(),
            );
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    match post(&http, &url, bodies[i % bodies.len()].clone()) {
                        Some((200, _, _)) => {
                            taken.fetch_add(1, Ordering::Relaxed);
                        }
                        Some((503, retry_after, text)) if text.contains("memory limit") => {
                            *refused.lock().unwrap() = Some((retry_after, text));
                            stop.store(true, Ordering::Relaxed);
                        }
                        _ => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    let (retry_after, text) = refused.lock().unwrap().clone().unwrap_or_else(|| {
        panic!(
            "no memory-limit refusal in 90 s ({} batches taken)\n{}",
            taken.load(Ordering::Relaxed),
            c.output()
        )
    });
    assert!(
        retry_after,
        "a memory-limit 503 without Retry-After: {text}"
    );
    assert!(text.contains("limits.memory_limit_mb = 96"), "{text}");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"], "unavailable");

    let http = client();
    // Queries are answered meanwhile.
    let q = http
        .get(format!(
            "{}/api/v1/logs?q=flood&limit=1&since=1h",
            c.api_base()
        ))
        .send()
        .unwrap();
    assert_eq!(q.status().as_u16(), 200);
    // The refusals are counted under their own reason.
    assert!(
        c.metrics()
            .lines()
            .any(|l| l.starts_with("skein_ingest_errors_total{")
                && l.contains("reason=\"memory_limit\"")),
        "no memory_limit refusals counted"
    );
    // The flood is over: one sender gets its batch in, over the limit or not.
    let small = big_body(99, 10);
    assert!(
        wait_for(
            || matches!(post(&http, &url, small.clone()), Some((200, _, _))),
            Duration::from_secs(60)
        ),
        "ingest did not take a request again after the flood\n{}",
        c.output()
    );
}

#[test]
fn a_memory_limit_below_what_the_other_limits_hold_is_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("collector.toml");
    // 256 + 128 (index writers) + 256 (decoding budget) + 256 (metrics cache) = 896 MiB.
    std::fs::write(&config, "[limits]\nmemory_limit_mb = 512\n").unwrap();
    common::assert_collector_config_refused(&config, "limits.memory_limit_mb", "512");
}
