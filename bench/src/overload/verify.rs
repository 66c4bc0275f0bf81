//! The check of `overload`: every acknowledged batch is looked up by its key and must hold
//! each of its records exactly once. Batches whose outcome is unknown (timeouts) are looked
//! up too and reported, but neither answer is wrong for them.

use super::records;
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the lookups of a set of batches found.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub(super) struct Found {
    /// Batches looked up.
    pub batches: u64,
    /// Records they should hold.
    pub records: u64,
    /// Records found exactly once.
    pub once: u64,
    /// Records not found.
    pub missing: u64,
    /// Records found more than once (each extra copy counts).
    pub extra_copies: u64,
    /// Batches found whole, in part, or not at all.
    pub whole: u64,
    pub partial: u64,
    pub absent: u64,
    /// Lookups that answered with `truncated: true` (the check is then not complete).
    pub truncated: u64,
    /// The first few batches with a problem.
    pub examples: Vec<String>,
}

/// What one lookup found of batch `id`: how often each of its `n` records appears.
fn tally_batch(id: u64, n: usize, v: &serde_json::Value, f: &mut Found) {
    let mut seen: HashMap<&str, u64> = HashMap::new();
    if let Some(logs) = v["logs"].as_array() {
        for l in logs {
            if let Some(rid) = l["attributes"][records::RID].as_str() {
                *seen.entry(rid).or_insert(0) += 1;
            }
        }
    }
    if v["truncated"].as_bool() == Some(true) {
        f.truncated += 1;
    }
    let mut found = 0;
    let mut problem = Vec::new();
    for i in 0..n {
        let rid = records::record_id(id, i);
        match seen.get(rid.as_str()).copied().unwrap_or(0) {
            0 => {
                f.missing += 1;
                problem.push(format!("{rid} missing"));
            }
            1 => {
                f.once += 1;
                found += 1;
            }
            c => {
                f.extra_copies += c - 1;
                found += 1;
                problem.push(format!("{rid} x{c}"));
            }
        }
    }
    f.batches += 1;
    f.records += n as u64;
    match found {
        0 => f.absent += 1,
        x if x == n => f.whole += 1,
        _ => f.partial += 1,
    }
    if !problem.is_empty() && f.examples.len() < 5 {
        problem.truncate(3);
        f.examples.push(format!(
            "{}: {}",
            records::batch_key(id),
            problem.join(", ")
        ));
    }
}

/// Looks up every batch of `ids` (`n` records each) with `concurrency` clients.
pub(super) async fn check(api: &str, ids: &[u64], n: usize, concurrency: usize) -> Result<Found> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .context("http client")?;
    let ids = Arc::new(ids.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, ids, next, api) = (client.clone(), ids.clone(), next.clone(), api.to_string());
        tasks.push(tokio::spawn(async move {
            let mut f = Found::default();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&id) = ids.get(i) else {
                    return Ok::<Found, anyhow::Error>(f);
                };
                let url = format!("{api}/api/v1/traces/{}", records::batch_key(id));
                let v = lookup(&client, &url).await?;
                tally_batch(id, n, &v, &mut f);
            }
        }));
    }
    let mut all = Found::default();
    for t in tasks {
        let f = t.await.context("check task")??;
        all.batches += f.batches;
        all.records += f.records;
        all.once += f.once;
        all.missing += f.missing;
        all.extra_copies += f.extra_copies;
        all.whole += f.whole;
        all.partial += f.partial;
        all.absent += f.absent;
        all.truncated += f.truncated;
        all.examples.extend(f.examples);
    }
    all.examples.truncate(5);
    Ok(all)
}

/// One lookup: the answer's JSON, `{}` for 404; a 503 (busy) is retried for up to 60 s.
async fn lookup(client: &reqwest::Client, url: &str) -> Result<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let resp = client
            .get(url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let st = resp.status().as_u16();
        match st {
            200 => {
                return resp
                    .json()
                    .await
                    .with_context(|| format!("GET {url}: json"));
            }
            404 => return Ok(serde_json::json!({})),
            429 | 503 if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => bail!("GET {url}: status {st}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn answer(rids: &[&str], truncated: bool) -> serde_json::Value {
        let logs: Vec<_> = rids
            .iter()
            .map(|r| serde_json::json!({"attributes": {records::RID: r}}))
            .collect();
        serde_json::json!({"logs": logs, "truncated": truncated})
    }

    #[test]
    fn whole_lost_and_doubled_batches_are_told_apart() {
        let mut f = Found::default();
        tally_batch(7, 3, &answer(&["7.0", "7.1", "7.2"], false), &mut f);
        assert_eq!((f.once, f.missing, f.extra_copies, f.whole), (3, 0, 0, 1));
        tally_batch(8, 3, &answer(&["8.0", "8.0", "8.2", "7.1"], false), &mut f);
        assert_eq!((f.once, f.missing, f.extra_copies), (4, 1, 1));
        assert_eq!(f.partial, 1);
        tally_batch(9, 2, &serde_json::json!({}), &mut f);
        assert_eq!((f.missing, f.absent, f.batches, f.records), (3, 1, 3, 8));
        tally_batch(10, 1, &answer(&["10.0"], true), &mut f);
        assert_eq!(f.truncated, 1);
        assert_eq!(f.examples.len(), 2, "{:?}", f.examples);
    }
}
