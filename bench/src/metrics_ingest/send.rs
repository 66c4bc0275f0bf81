//! The ordered sender: a slot's requests one after another, slots in parallel, so that no
//! sample arrives out of order.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use prost::Message;
use skein_model::proto::collector::metrics::v1::ExportMetricsServiceResponse;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What [`send_ordered`] did.
#[derive(Debug, Clone, Copy)]
pub struct SendReport {
    /// Points sent and accepted.
    pub accepted: u64,
    /// Requests answered 200.
    pub requests: u64,
    /// Requests repeated after a 503 or 429.
    pub retries: u64,
    /// Body bytes sent (retries not counted).
    pub body_bytes: u64,
    /// Seconds from the first send to the last answer.
    pub secs: f64,
}

/// Sends `slots × rounds` OTLP metrics requests to `{otlp}/v1/metrics`. `body(slot, round)`
/// gives a request's body and its number of points. Each slot's rounds go one after the
/// other (the next is sent after the previous one's answer), so a series kept in one slot is
/// never sent out of order; at most `concurrency` requests are in flight. Every answer must
/// be 200 without rejected points (503 and 429 are retried).
pub fn send_ordered<F>(
    rt: &tokio::runtime::Runtime,
    otlp: &str,
    slots: usize,
    rounds: usize,
    concurrency: usize,
    body: F,
) -> Result<SendReport>
where
    F: Fn(usize, usize) -> Result<(Bytes, u64)> + Send + Sync + 'static,
{
    let url = format!("{otlp}/v1/metrics");
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency + 2)
            .timeout(Duration::from_secs(120))
            .build()
            .context("HTTP client")?;
        let sem = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        let body = Arc::new(body);
        let (accepted, requests, retries, bytes) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(slots);
        for slot in 0..slots {
            let (client, url, sem, body) = (client.clone(), url.clone(), sem.clone(), body.clone());
            let (accepted, requests, retries, bytes) = (
                accepted.clone(),
                requests.clone(),
                retries.clone(),
                bytes.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for round in 0..rounds {
                    let (b, n) = body(slot, round)?;
                    bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                    let _permit = sem.acquire().await.context("semaphore")?;
                    let tries = post_metrics(&client, &url, b, n).await?;
                    retries.fetch_add(tries, Ordering::Relaxed);
                    requests.fetch_add(1, Ordering::Relaxed);
                    accepted.fetch_add(n, Ordering::Relaxed);
                }
                Ok::<(), anyhow::Error>(())
            }));
        }
        for t in tasks {
            t.await.context("sender task")??;
        }
        Ok(SendReport {
            accepted: accepted.load(Ordering::Relaxed),
            requests: requests.load(Ordering::Relaxed),
            retries: retries.load(Ordering::Relaxed),
            body_bytes: bytes.load(Ordering::Relaxed),
            secs: started.elapsed().as_secs_f64(),
        })
    })
}

/// POSTs one body until it is answered 200 (503 and 429 are retried after 10 ms); the answer
/// must reject no point. Returns the number of retries.
async fn post_metrics(
    client: &reqwest::Client,
    url: &str,
    body: Bytes,
    points: u64,
) -> Result<u64> {
    let mut retries = 0u64;
    loop {
        let resp = client
            .post(url)
            .header("content-type", "application/x-protobuf")
            .body(body.clone())
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let st = resp.status();
        let answer = resp
            .bytes()
            .await
            .with_context(|| format!("read the answer of {url}"))?;
        if st.as_u16() == 503 || st.as_u16() == 429 {
            retries += 1;
            if retries > 10_000 {
                bail!("POST {url}: still {st} after 10,000 retries");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        if st.as_u16() != 200 {
            bail!(
                "POST {url}: status {st}: {}",
                String::from_utf8_lossy(&answer[..answer.len().min(500)])
            );
        }
        let r = ExportMetricsServiceResponse::decode(answer)
            .with_context(|| format!("decode the answer of {url}"))?;
        if let Some(p) = r.partial_success
            && p.rejected_data_points > 0
        {
            bail!(
                "POST {url}: {} of {points} points rejected: {}",
                p.rejected_data_points,
                p.error_message
            );
        }
        return Ok(retries);
    }
}
