//! The senders of `overload`: one export over OTLP/HTTP (protobuf) or OTLP/gRPC, its answer
//! counted by status and by whether a refusal said when to retry; a closed loop that finds the
//! rate the collector acknowledges, and an open loop that offers a fixed rate whatever the
//! answers.

use super::records;
use anyhow::{Context, Result};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// Longest a sender waits for one answer; past it the outcome is unknown (neither
/// acknowledged nor refused) and the batch is checked separately.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `google.rpc.Status`, to read the details of a gRPC error.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<RpcAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// Whether gRPC error details carry a `google.rpc.RetryInfo`.
pub(super) fn has_retry_info(details: &[u8]) -> bool {
    RpcStatus::decode(details)
        .map(|s| {
            s.details
                .iter()
                .any(|a| a.type_url.ends_with("google.rpc.RetryInfo"))
        })
        .unwrap_or(false)
}

/// Answers of one phase, by transport and status.
#[derive(Default)]
pub(super) struct Tally {
    /// "http 200", "http 429", "grpc ResourceExhausted", "http timeout", ...
    pub by_status: Mutex<BTreeMap<String, u64>>,
    /// Refusals meant to be retried (429, 503, RESOURCE_EXHAUSTED, UNAVAILABLE) that said when.
    pub hinted: AtomicU64,
    /// Such refusals that did not (no Retry-After, no RetryInfo).
    pub unhinted: AtomicU64,
    /// Records acknowledged in this phase.
    pub acked_records: AtomicU64,
    /// Requests not sent because the client's cap on requests in flight was reached.
    pub skipped: AtomicU64,
    /// Requests sent.
    pub sent: AtomicU64,
}

impl Tally {
    fn count(&self, what: String) {
        if let Ok(mut m) = self.by_status.lock() {
            *m.entry(what).or_insert(0) += 1;
        }
    }

    /// The counts by status.
    pub fn statuses(&self) -> BTreeMap<String, u64> {
        self.by_status.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// What every phase shares: batch numbers, the batches acknowledged and those whose outcome
/// is unknown.
pub(super) struct Shared {
    /// Records per batch.
    pub batch: usize,
    /// Made-up log messages.
    pub bodies: Arc<Vec<String>>,
    next: AtomicU64,
    /// Batches acknowledged, with when.
    pub acked: Mutex<Vec<(u64, Instant)>>,
    /// Batches that timed out or failed on the wire.
    pub unknown: Mutex<Vec<u64>>,
}

impl Shared {
    pub fn new(batch: usize, bodies: Arc<Vec<String>>) -> Shared {
        Shared {
            batch,
            bodies,
            next: AtomicU64::new(1),
            acked: Mutex::new(Vec::new()),
            unknown: Mutex::new(Vec::new()),
        }
    }

    /// Batch ids acknowledged so far.
    pub fn acked_ids(&self) -> Vec<u64> {
        self.acked
            .lock()
            .map(|v| v.iter().map(|(id, _)| *id).collect())
            .unwrap_or_default()
    }

    /// Batch ids whose outcome is unknown.
    pub fn unknown_ids(&self) -> Vec<u64> {
        self.unknown.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// One OTLP client: HTTP (its own connection pool) or gRPC (its own HTTP/2 connection).
#[derive(Clone)]
pub(super) enum Client {
    Http(reqwest::Client, String),
    Grpc(LogsServiceClient<Channel>),
}

impl Client {
    /// `n` HTTP clients of `{otlp}/v1/logs`, each with its own pool.
    pub fn http(otlp: &str, n: usize) -> Result<Vec<Client>> {
        (0..n)
            .map(|_| {
                let c = reqwest::Client::builder()
                    .timeout(REQUEST_TIMEOUT)
                    .build()
                    .context("http client")?;
                Ok(Client::Http(c, format!("{otlp}/v1/logs")))
            })
            .collect()
    }

    /// `n` gRPC clients of `grpc` (`host:port`), each on its own connection.
    pub async fn grpc(grpc: &str, n: usize) -> Result<Vec<Client>> {
        let mut out = Vec::new();
        for _ in 0..n {
            let ch = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
                .context("grpc endpoint")?
                .connect_timeout(Duration::from_secs(10))
                .timeout(REQUEST_TIMEOUT)
                .connect()
                .await
                .with_context(|| format!("connect to OTLP/gRPC at {grpc}"))?;
            out.push(Client::Grpc(LogsServiceClient::new(ch)));
        }
        Ok(out)
    }

    fn name(&self) -> &'static str {
        match self {
            Client::Http(..) => "http",
            Client::Grpc(_) => "grpc",
        }
    }
}

/// How one export ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Acked,
    Refused,
    Unknown,
}

/// Sends a new batch with `client`, counts its answer in `tally` and records the batch.
pub(super) async fn send_batch(client: &Client, shared: &Shared, tally: &Tally) -> Outcome {
    let id = shared.next.fetch_add(1, Ordering::Relaxed);
    let req = records::batch(&shared.bodies, id, shared.batch);
    tally.sent.fetch_add(1, Ordering::Relaxed);
    let outcome = match client {
        Client::Http(c, url) => http_export(c, url, req, tally).await,
        Client::Grpc(g) => grpc_export(g.clone(), req, tally).await,
    };
    match outcome {
        Outcome::Acked => {
            tally
                .acked_records
                .fetch_add(shared.batch as u64, Ordering::Relaxed);
            if let Ok(mut v) = shared.acked.lock() {
                v.push((id, Instant::now()));
            }
        }
        Outcome::Unknown => {
            if let Ok(mut v) = shared.unknown.lock() {
                v.push(id);
            }
        }
        Outcome::Refused => {}
    }
    outcome
}

async fn http_export(
    c: &reqwest::Client,
    url: &str,
    req: ExportLogsServiceRequest,
    tally: &Tally,
) -> Outcome {
    let resp = c
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(req.encode_to_vec())
        .send()
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            tally.count(if e.is_timeout() {
                "http timeout".into()
            } else if e.is_connect() {
                "http connect error".into()
            } else {
                "http transport error".into()
            });
            return Outcome::Unknown;
        }
    };
    let st = resp.status().as_u16();
    let retry_after = resp.headers().contains_key("retry-after");
    let body = resp.bytes().await;
    tally.count(format!("http {st}"));
    match st {
        200..=299 => {
            // A partial success would mean records were refused inside an acknowledged batch.
            let rejected = body
                .ok()
                .and_then(|b| ExportLogsServiceResponse::decode(&b[..]).ok())
                .and_then(|r| r.partial_success)
                .map(|p| p.rejected_log_records)
                .unwrap_or(0);
            if rejected > 0 {
                tally.count("http 2xx with rejected records".into());
                return Outcome::Refused;
            }
            Outcome::Acked
        }
        429 | 503 => {
            let n = if retry_after {
                &tally.hinted
            } else {
                &tally.unhinted
            };
            n.fetch_add(1, Ordering::Relaxed);
            Outcome::Refused
        }
        _ => Outcome::Refused,
    }
}

async fn grpc_export(
    mut g: LogsServiceClient<Channel>,
    req: ExportLogsServiceRequest,
    tally: &Tally,
) -> Outcome {
    match g.export(req).await {
        Ok(r) => {
            tally.count("grpc Ok".into());
            let rejected = r
                .into_inner()
                .partial_success
                .map(|p| p.rejected_log_records)
                .unwrap_or(0);
            if rejected > 0 {
                tally.count("grpc Ok with rejected records".into());
                return Outcome::Refused;
            }
            Outcome::Acked
        }
        Err(st) => {
            let code = st.code();
            tally.count(format!("grpc {code:?}"));
            match code {
                tonic::Code::ResourceExhausted | tonic::Code::Unavailable => {
                    let n = if has_retry_info(st.details()) {
                        &tally.hinted
                    } else {
                        &tally.unhinted
                    };
                    n.fetch_add(1, Ordering::Relaxed);
                    // Unavailable may also be a broken connection (tonic then keeps the
                    // transport error as the source): then the outcome is unknown.
                    if std::error::Error::source(&st).is_some() {
                        tally.count("grpc Unavailable (transport)".into());
                        Outcome::Unknown
                    } else {
                        Outcome::Refused
                    }
                }
                tonic::Code::DeadlineExceeded | tonic::Code::Cancelled | tonic::Code::Unknown => {
                    Outcome::Unknown
                }
                _ => Outcome::Refused,
            }
        }
    }
}

/// Closed loop: every client sends a batch as soon as its last one was answered (a refused
/// one after 20 ms) for `secs`. Returns records/s acknowledged after the first `warmup`.
pub(super) async fn closed_loop(
    clients: &[Client],
    shared: &Arc<Shared>,
    tally: &Arc<Tally>,
    warmup: Duration,
    secs: Duration,
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in clients {
        let (c, shared, tally, stop) = (c.clone(), shared.clone(), tally.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if send_batch(&c, &shared, &tally).await != Outcome::Acked {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    tokio::time::sleep(warmup).await;
    let (a0, t0) = (tally.acked_records.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(secs.saturating_sub(warmup)).await;
    let (a1, t1) = (tally.acked_records.load(Ordering::Relaxed), Instant::now());
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    (a1 - a0) as f64 / (t1 - t0).as_secs_f64()
}

/// Open loop: `rate` requests a second on a fixed schedule for `secs`, spread over `clients`
/// in turn, whatever the answers. A request whose turn comes while `max_inflight` are
/// unanswered is not sent and counted as skipped. Returns when the schedule ends; the
/// requests still in flight are returned to be awaited.
pub(super) async fn open_loop(
    clients: &[Client],
    shared: &Arc<Shared>,
    tally: &Arc<Tally>,
    rate: f64,
    secs: Duration,
    max_inflight: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    let slots = Arc::new(tokio::sync::Semaphore::new(max_inflight));
    let every = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    let mut k: u64 = 0;
    loop {
        let at = start + every.mul_f64(k as f64);
        if at - start >= secs {
            break;
        }
        tokio::time::sleep_until(at).await;
        let c = clients[(k as usize) % clients.len()].clone();
        k += 1;
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tally.skipped.fetch_add(1, Ordering::Relaxed);
            tally.count(format!("{} not sent (client cap)", c.name()));
            continue;
        };
        let (shared, tally) = (shared.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            send_batch(&c, &shared, &tally).await;
            drop(slot);
        }));
        if tasks.len() > 4096 {
            tasks.retain(|t| !t.is_finished());
        }
    }
    tasks
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_is_found_in_status_details() {
        let with = RpcStatus {
            code: 8,
            message: "busy".into(),
            details: vec![RpcAny {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                value: vec![0x0a, 0x02, 0x08, 0x01],
            }],
        }
        .encode_to_vec();
        assert!(has_retry_info(&with));
        let without = RpcStatus {
            code: 8,
            message: "busy".into(),
            details: vec![],
        }
        .encode_to_vec();
        assert!(!has_retry_info(&without));
        assert!(!has_retry_info(&[]));
        assert!(!has_retry_info(&[0xff, 0xff]));
    }
}
