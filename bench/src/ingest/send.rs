//! The parallel sender: every batch POSTed by a few clients, timed until `/metrics` says the
//! records are searchable.

use crate::util;
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What sending all batches took.
pub(super) struct Sent {
    pub(super) first_send: Instant,
    pub(super) all_acked: Instant,
    pub(super) searchable: Instant,
    pub(super) retries: u64,
}

/// Where [`send_all`] sends and what it waits for.
pub(super) struct Target<'a> {
    /// OTLP/HTTP base URL.
    pub(super) otlp: &'a str,
    /// Query API base URL.
    pub(super) api: &'a str,
    /// `/v1/logs` or `/v1/traces`.
    pub(super) path: &'a str,
    /// `logs` or `spans`.
    pub(super) signal: &'static str,
    /// Records of the signal indexed before the run.
    pub(super) already: u64,
}

/// Sends every body to `{otlp}{path}` with `concurrency` clients and waits until `signal` has
/// `target` records indexed.
pub(super) fn send_all(
    rt: &tokio::runtime::Runtime,
    to: Target<'_>,
    bodies: Arc<Vec<Bytes>>,
    concurrency: usize,
    target: u64,
) -> Result<Sent> {
    let url = format!("{}{}", to.otlp, to.path);
    let api = to.api.to_string();
    let (signal, already) = (to.signal, to.already);
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency + 2)
            .build()
            .context("http client")?;
        let next = Arc::new(AtomicUsize::new(0));
        let retries = Arc::new(AtomicU64::new(0));
        let first_send = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, url, bodies, next, retries) = (
                client.clone(),
                url.clone(),
                bodies.clone(),
                next.clone(),
                retries.clone(),
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else {
                        return Ok::<(), anyhow::Error>(());
                    };
                    let mut attempt = 0u32;
                    loop {
                        let resp = client
                            .post(&url)
                            .header("content-type", "application/x-protobuf")
                            .body(body.clone())
                            .send()
                            .await
                            .with_context(|| format!("POST {url}"))?;
                        let st = resp.status();
                        let _ = resp.bytes().await;
                        if st.is_success() {
                            break;
                        }
                        if (st.as_u16() == 503 || st.as_u16() == 429) && attempt < 10_000 {
                            attempt += 1;
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                        bail!("POST {url}: status {st}");
                    }
                }
            }));
        }
        let poll_client = client.clone();
        let poll_api = api.clone();
        let poller = tokio::spawn(async move {
            util::wait_indexed(
                &poll_client,
                &poll_api,
                signal,
                already + target,
                Duration::from_millis(20),
                Duration::from_secs(3600),
            )
            .await
        });
        for t in tasks {
            t.await.context("sender task")??;
        }
        let all_acked = Instant::now();
        let searchable = poller.await.context("poller task")??;
        Ok(Sent {
            first_send,
            all_acked,
            searchable,
            retries: retries.load(Ordering::Relaxed),
        })
    })
}
