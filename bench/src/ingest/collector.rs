//! The collector part of `ingest`: the batches sent to the collector (in process or external)
//! until searchable, its CPU by thread, and its size on disk.

use super::send::{Target, send_all};
use super::{Dataset, IngestArgs};
use crate::util::{self, Running, mb, row, table};
use anyhow::{Result, bail};
use std::sync::Arc;

pub(super) fn collector_ingest(args: &IngestArgs, d: &Dataset) -> Result<serde_json::Value> {
    let rt = util::client_runtime()?;
    let bodies = Arc::new(d.bodies.clone());
    let data = util::temp_dir("skein-bench-ingest-")?;
    let (running, otlp, api) = match (&args.external_otlp, &args.external_api) {
        (Some(o), Some(a)) => (None, o.clone(), a.clone()),
        _ => {
            let r = Running::start(util::bench_config(data.path(), args.commit_interval_ms))?;
            let (o, a) = (r.otlp_url(), r.api_url());
            (Some(r), o, a)
        }
    };
    let already = rt.block_on(async {
        let c = reqwest::Client::new();
        util::metric(&c, &api, "skein_indexed_records_total", "logs").await
    })?;
    let cpu0 = util::process_cpu();
    let th0 = util::thread_cpu();
    let to = Target {
        otlp: &otlp,
        api: &api,
        path: "/v1/logs",
        signal: "logs",
        already,
    };
    let sent = send_all(&rt, to, bodies, args.concurrency, d.n)?;
    let cpu = util::process_cpu() - cpu0;
    let groups = util::cpu_by_group(&th0, &util::thread_cpu());
    let secs = (sent.searchable - sent.first_send).as_secs_f64();
    let ack_secs = (sent.all_acked - sent.first_send).as_secs_f64();
    let rps = d.n as f64 / secs;
    let mbps = mb(d.ndjson_bytes) / secs;

    // Sanity: the data is really searchable through the API.
    let hits = rt.block_on(async {
        let c = reqwest::Client::new();
        let v: serde_json::Value = c
            .get(format!("{api}/api/v1/logs?q=courier&limit=5"))
            .send()
            .await?
            .json()
            .await?;
        Ok::<usize, anyhow::Error>(v["logs"].as_array().map(|a| a.len()).unwrap_or(0))
    })?;
    if hits == 0 {
        bail!("a search for 'courier' found nothing after ingest");
    }

    let mut result = serde_json::json!({
        "collector_secs": secs,
        "collector_ack_secs": ack_secs,
        "collector_records_per_s": rps,
        "collector_mb_per_s": mbps,
        "collector_mb_per_s_per_core": mbps / 2.0,
        "collector_retries_503": sent.retries,
        "process_cpu_secs": cpu,
        "cpu_by_thread": groups,
    });
    let listed: f64 = groups.values().sum();
    let mut rows = vec![
        row("all acknowledged (2xx) after", format!("{ack_secs:.2} s")),
        row("all searchable after", format!("{secs:.2} s")),
        row("records/s", format!("{rps:.0}")),
        row("raw MB/s", format!("{mbps:.1}")),
        row("raw MB/s per core (/2)", format!("{:.1}", mbps / 2.0)),
        row("503 retries", sent.retries),
        row(
            if running.is_some() {
                "process CPU (collector + clients)"
            } else {
                "process CPU (clients only: external collector)"
            },
            format!(
                "{cpu:.1} s = {:.2} cores, {:.1} us/record",
                cpu / secs,
                cpu * 1e6 / d.n as f64
            ),
        ),
    ];
    for (k, v) in &groups {
        if *v >= 0.05 {
            rows.push(row(&format!("  CPU {k}"), format!("{v:.1} s")));
        }
    }
    rows.push(row(
        "  CPU threads that ended (tantivy indexing workers restart at each commit; merges)",
        format!("{:.1} s", cpu - listed),
    ));
    result["cpu_ended_threads"] = (cpu - listed).into();
    if let Some(r) = running {
        let logs_live = util::dir_bytes(&data.path().join("logs"));
        let total_live = util::dir_bytes(data.path());
        let stop = r.stop()?;
        let logs_after = util::dir_bytes(&data.path().join("logs"));
        let wal_after = util::dir_bytes(&data.path().join("wal"));
        let total_after = util::dir_bytes(data.path());
        rows.push(row(
            "logs index on disk (after last commit)",
            format!(
                "{:.1} MB (raw/index {:.2}x)",
                mb(logs_live),
                d.ndjson_bytes as f64 / logs_live.max(1) as f64
            ),
        ));
        rows.push(row(
            "data dir incl. WAL (after last commit)",
            format!(
                "{:.1} MB (raw/total {:.2}x)",
                mb(total_live),
                d.ndjson_bytes as f64 / total_live.max(1) as f64
            ),
        ));
        rows.push(row(
            "after clean stop (merges done)",
            format!(
                "logs {:.1} MB ({:.2}x), WAL {:.1} MB, total {:.1} MB ({:.2}x); stop took {:.1} s",
                mb(logs_after),
                d.ndjson_bytes as f64 / logs_after.max(1) as f64,
                mb(wal_after),
                mb(total_after),
                d.ndjson_bytes as f64 / total_after.max(1) as f64,
                stop.as_secs_f64()
            ),
        ));
        let by_ext = util::bytes_by_extension(&data.path().join("logs"));
        for (ext, b) in &by_ext {
            rows.push(row(
                &format!("  logs index *.{ext}"),
                format!("{:.1} MB ({:.0} B/record)", mb(*b), *b as f64 / d.n as f64),
            ));
        }
        result["logs_index_bytes_by_ext"] = serde_json::to_value(&by_ext)?;
        result["logs_index_bytes"] = logs_live.into();
        result["data_dir_bytes"] = total_live.into();
        result["logs_index_bytes_after_stop"] = logs_after.into();
        result["wal_bytes_after_stop"] = wal_after.into();
        result["data_dir_bytes_after_stop"] = total_after.into();
        result["raw_over_index"] = (d.ndjson_bytes as f64 / logs_live.max(1) as f64).into();
        result["raw_over_total"] = (d.ndjson_bytes as f64 / total_live.max(1) as f64).into();
    }
    table("collector: OTLP/HTTP protobuf -> searchable", &rows);
    Ok(result)
}
