//! `freshness`: how long after its 2xx a log line is visible in `GET /api/v1/logs?q=`, under a
//! steady background load.
//!
//! A probe log with a unique token is sent every `interval_ms`; one poller asks every 5 ms for
//! all tokens not yet seen (`q=tokA OR tokB ...`), so the query load stays one request per
//! poll whatever the number of probes in flight. A probe's latency is from its 2xx to the end
//! of the first answer that holds it.

use crate::datagen::{Gen, LogCtx, logs_export};
use crate::util::{self, Running, row, table};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use prost::Message;
use skein_model::proto::common::v1::{AnyValue, any_value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Options of `freshness`.
#[derive(Debug, Clone, clap::Args)]
pub struct FreshnessArgs {
    /// Probes to measure.
    #[arg(long, default_value_t = 300)]
    pub samples: usize,
    /// Milliseconds between probes.
    #[arg(long, default_value_t = 50)]
    pub interval_ms: u64,
    /// Background load, log records per second (sent in batches of 100).
    #[arg(long, default_value_t = 2000)]
    pub background: u64,
    /// Milliseconds between polls.
    #[arg(long, default_value_t = 5)]
    pub poll_ms: u64,
    /// The collector's index.commit_interval_ms.
    #[arg(long, default_value_t = 500)]
    pub commit_interval_ms: u64,
    /// PRNG seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

struct Shared {
    /// token -> time of its 2xx
    pending: Mutex<HashMap<String, Instant>>,
    done: Mutex<Vec<u64>>,
}

fn pending_tokens(shared: &Shared) -> Vec<String> {
    match shared.pending.lock() {
        Ok(p) => p.keys().take(40).cloned().collect(),
        Err(_) => Vec::new(),
    }
}

fn mark_seen(shared: &Shared, tokens: &[String], text: &str, seen_at: Instant) {
    let Ok(mut p) = shared.pending.lock() else {
        return;
    };
    for t in tokens {
        if text.contains(t.as_str())
            && let Some(acked) = p.remove(t)
        {
            let us = (seen_at - acked).as_micros() as u64;
            if let Ok(mut d) = shared.done.lock() {
                d.push(us);
            }
        }
    }
}

/// Runs `freshness`.
pub fn run(args: FreshnessArgs) -> Result<serde_json::Value> {
    let load_before = util::load();
    let data = util::temp_dir("skein-bench-fresh-")?;
    let r = Running::start(util::bench_config(data.path(), args.commit_interval_ms))?;
    let otlp = r.otlp_url();
    let api = r.api_url();
    let rt = util::client_runtime()?;
    let now = skein_model::time::now_unix_nano();
    let mut g = Gen::new(args.seed, now);
    // Background batches, pre-encoded: enough for the whole run plus slack.
    let secs_needed = (args.samples as u64 * args.interval_ms) / 1000 + 30;
    let batches_needed = (args.background * secs_needed / 100).max(1) as usize;
    let bg: Vec<Bytes> = (0..batches_needed.min(5000))
        .map(|_| Bytes::from(g.logs_request(100).encode_to_vec()))
        .collect();
    // Probe bodies, pre-encoded.
    let run_tag = format!("{:x}", now % 0xffff_ffff);
    let mut probes: Vec<(String, Bytes)> = Vec::with_capacity(args.samples);
    for i in 0..args.samples {
        let token = format!("fp{run_tag}n{i:05}");
        let mut rec = g.log(1, &LogCtx::default());
        rec.body = Some(AnyValue {
            value: Some(any_value::Value::StringValue(format!(
                "freshness probe {token} order accepted"
            ))),
        });
        rec.time_unix_nano = 0; // the collector stamps it on arrival
        rec.observed_time_unix_nano = 0;
        let inst = crate::datagen::Instance {
            service: 1,
            host: 0,
        };
        probes.push((
            token,
            Bytes::from(logs_export(vec![(inst, vec![rec])]).encode_to_vec()),
        ));
    }
    let shared = Arc::new(Shared {
        pending: Mutex::new(HashMap::new()),
        done: Mutex::new(Vec::new()),
    });
    let polls = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let bg_sent = Arc::new(AtomicU64::new(0));

    let out = rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(8)
            .build()
            .context("client")?;
        // Background load.
        let bg_task = {
            let (client, url, stop, sent) = (
                client.clone(),
                format!("{otlp}/v1/logs"),
                stop.clone(),
                bg_sent.clone(),
            );
            let every = Duration::from_secs_f64(100.0 / args.background.max(1) as f64);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let body = bg[i % bg.len()].clone();
                    i += 1;
                    let c = client.clone();
                    let url = url.clone();
                    let sent = sent.clone();
                    tokio::spawn(async move {
                        if let Ok(r) = c
                            .post(&url)
                            .header("content-type", "application/x-protobuf")
                            .body(body)
                            .send()
                            .await
                            && r.status().is_success()
                        {
                            sent.fetch_add(100, Ordering::Relaxed);
                        }
                    });
                }
            })
        };
        // Warm up: the background load for 2 s before the first probe.
        tokio::time::sleep(Duration::from_secs(2)).await;

        // Poller.
        let poller = {
            let (client, api, shared, stop, polls) = (
                client.clone(),
                api.clone(),
                shared.clone(),
                stop.clone(),
                polls.clone(),
            );
            let every = Duration::from_millis(args.poll_ms);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let tokens = pending_tokens(&shared);
                    if tokens.is_empty() {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                    let q = tokens.join("%20OR%20");
                    let resp = client
                        .get(format!("{api}/api/v1/logs?limit=100&q={q}"))
                        .send()
                        .await
                        .context("poll")?;
                    let st = resp.status();
                    let text = resp.text().await.context("poll body")?;
                    let seen_at = Instant::now();
                    polls.fetch_add(1, Ordering::Relaxed);
                    if !st.is_success() {
                        bail!("poll answered {st}: {text}");
                    }
                    mark_seen(&shared, &tokens, &text, seen_at);
                    tokio::time::sleep(every).await;
                }
                Ok::<(), anyhow::Error>(())
            })
        };

        // Probes.
        let url = format!("{otlp}/v1/logs");
        let mut tick = tokio::time::interval(Duration::from_millis(args.interval_ms));
        let mut failed = 0u64;
        for (token, body) in probes {
            tick.tick().await;
            let resp = client
                .post(&url)
                .header("content-type", "application/x-protobuf")
                .body(body)
                .send()
                .await
                .context("probe")?;
            let acked = Instant::now();
            if resp.status().is_success() {
                if let Ok(mut p) = shared.pending.lock() {
                    p.insert(token, acked);
                }
            } else {
                failed += 1;
            }
        }
        // Wait for the last probes (at most 30 s).
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let left = shared.pending.lock().map(|p| p.len()).unwrap_or(0);
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let _ = bg_task.await;
        poller.await.context("poller")??;
        Ok::<u64, anyhow::Error>(failed)
    });
    let failed = out?;
    let stop_took = r.stop()?;
    let _ = stop_took;
    let mut h = util::histogram()?;
    let done = shared.done.lock().map(|d| d.clone()).unwrap_or_default();
    for us in &done {
        h.record((*us).max(1)).context("record")?;
    }
    let missing = shared.pending.lock().map(|p| p.len()).unwrap_or(0);
    let pct = util::percentiles_ms(&h);
    table(
        "freshness: 2xx -> visible in /api/v1/logs?q=",
        &[
            row("probes measured", done.len()),
            row("probes not seen within 30 s", missing),
            row("probes refused", failed),
            row("p50", format!("{} ms", pct["p50_ms"])),
            row("p90", format!("{} ms", pct["p90_ms"])),
            row("p99", format!("{} ms", pct["p99_ms"])),
            row("max", format!("{} ms", pct["max_ms"])),
            row("commit interval", format!("{} ms", args.commit_interval_ms)),
            row(
                "background records acknowledged",
                bg_sent.load(Ordering::Relaxed),
            ),
            row("polls", polls.load(Ordering::Relaxed)),
        ],
    );
    Ok(serde_json::json!({
        "bench": "freshness",
        "samples": done.len(),
        "missing": missing,
        "refused": failed,
        "latency": pct,
        "commit_interval_ms": args.commit_interval_ms,
        "background_per_s": args.background,
        "background_acked": bg_sent.load(Ordering::Relaxed),
        "polls": polls.load(Ordering::Relaxed),
        "load_before": load_before,
        "load_after": util::load(),
    }))
}
