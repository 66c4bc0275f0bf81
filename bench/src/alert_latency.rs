//! `alert-latency`: from the 2xx of the first breaching record to the webhook at a receiver,
//! with the collector's default settings (evaluation every 5 s and after each write of
//! span-derived series, commits every 500 ms, spans derived every 5 s), a rule with
//! `for = "0s"` and a route with `group_wait = "0s"`.
//!
//! Each sample breaches for a new service name, so it is a new alert and a new notification
//! group: nothing is held back by `group_interval`. A random pause between samples spreads the
//! breaches over the evaluation cycle. The receiver is a plain HTTP server in this process.

use crate::util::{self, Running, row, table};
use anyhow::{Context, Result, bail};
use prost::Message;
use skein_model::proto::collector::logs::v1::ExportLogsServiceRequest;
use skein_model::proto::collector::trace::v1::ExportTraceServiceRequest;
use skein_model::proto::common::v1::{AnyValue, KeyValue, any_value};
use skein_model::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use skein_model::proto::resource::v1::Resource;
use skein_model::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Options of `alert-latency`.
#[derive(Debug, Clone, clap::Args)]
pub struct AlertLatencyArgs {
    /// Breaches to measure.
    #[arg(long, default_value_t = 30)]
    pub samples: usize,
    /// What breaches: `logs` (an error log; a log-count rule) or `spans` (an error span; an
    /// error-rate rule over the RED series derived from spans).
    #[arg(long, default_value = "logs", value_parser = ["logs", "spans"])]
    pub signal: String,
    /// Longest random pause between samples, ms (one evaluation interval spreads the
    /// breaches evenly over the cycle).
    #[arg(long, default_value_t = 5000)]
    pub max_pause_ms: u64,
    /// PRNG seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

const LOG_RULE: &str = r#"
[[rule]]
name = "ErrorLogs"
annotations.summary = "{{ $labels.service }} logged {{ $value }} errors"
  [rule.logs]
  severity = "error"
  window = "30s"
  by = ["service"]
  when = "> 0"
"#;

const SPAN_RULE: &str = r#"
[[rule]]
name = "SpanErrors"
annotations.summary = "{{ $labels.service }} had {{ $value }} failed calls"
  [rule.metric]
  name = "skein.span.errors"
  agg = "increase"
  window = "1m"
  by = ["service"]
  when = "> 0"
"#;

/// Service name -> when its first webhook arrived.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

fn receiver(arrivals: Arrivals) -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind receiver")?;
    let port = l.local_addr()?.port();
    std::thread::Builder::new()
        .name("receiver".into())
        .spawn(move || {
            for mut s in l.incoming().flatten() {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 16384];
                let mut want = None;
                loop {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if want.is_none()
                        && let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n")
                    {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        want = Some(i + 4 + len);
                    }
                    if want.is_some_and(|w| buf.len() >= w) {
                        break;
                    }
                }
                let at = Instant::now();
                let start = buf
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(buf.len(), |i| i + 4);
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf[start..])
                    && let Some(alerts) = v["alerts"].as_array()
                    && let Ok(mut m) = arrivals.lock()
                {
                    for a in alerts {
                        if let Some(svc) = a["labels"]["service"].as_str() {
                            m.entry(svc.to_string()).or_insert(at);
                        }
                    }
                }
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        })?;
    Ok(port)
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn body(signal: &str, service: &str, seq: u64) -> Vec<u8> {
    let now = skein_model::time::now_unix_nano();
    let resource = Some(Resource {
        attributes: vec![kv("service.name", service), kv("host.name", "bench")],
        ..Default::default()
    });
    if signal == "logs" {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource,
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        time_unix_nano: now,
                        severity_number: 17,
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("charge failed".into())),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    } else {
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&(seq + 1).to_be_bytes());
        trace_id[8..].copy_from_slice(&now.to_be_bytes());
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource,
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: trace_id.to_vec(),
                        span_id: (seq + 1).to_be_bytes().to_vec(),
                        name: "charge".into(),
                        kind: 2,
                        start_time_unix_nano: now - 5_000_000,
                        end_time_unix_nano: now,
                        status: Some(Status {
                            code: 2,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }
}

/// Runs the benchmark.
pub fn run(a: AlertLatencyArgs) -> Result<serde_json::Value> {
    let tmp = util::temp_dir("skein-bench-alert")?;
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules)?;
    let rule = if a.signal == "logs" {
        LOG_RULE
    } else {
        SPAN_RULE
    };
    std::fs::write(rules.join("bench.toml"), rule)?;
    let arrivals: Arrivals = Arc::default();
    let port = receiver(arrivals.clone())?;
    let mut cfg = util::bench_config(&tmp.path().join("data"), 500);
    let alerts = format!(
        r#"
rules = ["{}"]
[[receiver]]
name = "bench"
url = "http://127.0.0.1:{port}/hook"
[route]
group_by = ["alertname", "service"]
group_wait = "0s"
"#,
        rules.display()
    );
    cfg.alerts = toml::from_str(&alerts).context("alerts config")?;
    let defaults = skein_collector::config::CollectorConfig::default();
    let c = Running::start(cfg)?;
    let http = reqwest::blocking::Client::new();
    let path = if a.signal == "logs" {
        "/v1/logs"
    } else {
        "/v1/traces"
    };
    let url = format!("{}{path}", c.otlp_url());
    let mut rng = a.seed.max(1);
    let mut h = util::histogram()?;
    let run_id = skein_model::time::now_unix_nano() % 1_000_000;
    for i in 0..a.samples {
        // xorshift: a pause spreads the breaches over the evaluation cycle.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(rng % a.max_pause_ms.max(1)));
        let service = format!("svc-{run_id}-{i}");
        let resp = http
            .post(&url)
            .header("content-type", "application/x-protobuf")
            .body(body(&a.signal, &service, i as u64))
            .send()
            .context("send the breaching record")?;
        if !resp.status().is_success() {
            bail!("collector answered {}", resp.status());
        }
        let acked = Instant::now();
        let deadline = acked + Duration::from_secs(120);
        let arrived = loop {
            if let Some(t) = arrivals.lock().ok().and_then(|m| m.get(&service).copied()) {
                break t;
            }
            if Instant::now() > deadline {
                bail!("no webhook for {service} within 120 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let us = arrived.saturating_duration_since(acked).as_micros() as u64;
        h.record(us.max(1))?;
        eprintln!("sample {i}: {} ms", us / 1000);
    }
    c.stop()?;
    let p = util::percentiles_ms(&h);
    table(
        &format!("alert latency, {} breaches ({})", a.samples, a.signal),
        &[
            row("eval_interval", &defaults.alerts.eval_interval),
            row("derive_interval", &defaults.metrics.derive_interval),
            row("p50 ms", h.value_at_quantile(0.5) / 1000),
            row("p90 ms", h.value_at_quantile(0.9) / 1000),
            row("p99 ms", h.value_at_quantile(0.99) / 1000),
            row("max ms", h.max() / 1000),
        ],
    );
    Ok(serde_json::json!({
        "bench": "alert-latency",
        "signal": a.signal,
        "samples": a.samples,
        "latency_ms": p,
    }))
}
