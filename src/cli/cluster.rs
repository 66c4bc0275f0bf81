//! `skein cluster status`: nodes, partitions with their owners and lag, the stream.

use super::monitor::emit;
use super::render::sanitize;
use super::{EXIT_FOUND, EXIT_NOT_FOUND};
use anyhow::Context;
use skein_client::Client;
use skein_model::cluster_api::ClusterStatus;
use std::fmt::Write as _;
use std::io::Write;

/// The status as text.
pub fn status_text(s: &ClusterStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "answered by {}; {} partitions, {} index replicas each; alert engine on {}",
        sanitize(&s.node),
        s.partitions,
        s.index_replicas,
        s.alert_leader
            .as_deref()
            .map(sanitize)
            .unwrap_or_else(|| "no node".into())
    );
    if let Some(st) = &s.stream {
        let _ = writeln!(
            out,
            "stream {}: {} messages, {:.1} MiB, sequences {}..{}, {} replicas on {}",
            sanitize(&st.name),
            st.messages,
            st.bytes as f64 / (1024.0 * 1024.0),
            st.first_seq,
            st.last_seq,
            st.replicas,
            st.servers
                .iter()
                .map(|x| sanitize(x))
                .collect::<Vec<_>>()
                .join(", ")
        );
    } else {
        let _ = writeln!(out, "stream: could not be read");
    }
    let _ = writeln!(out, "\nNODE                 PARTITIONS  READY  URL");
    for n in &s.nodes {
        let _ = writeln!(
            out,
            "{:<20} {:>10}  {:>5}  {}",
            sanitize(&n.name),
            n.lag.len(),
            n.ready.len(),
            sanitize(&n.url)
        );
    }
    let _ = writeln!(out, "\nPARTITION  OWNERS (lag, committed sequence)");
    for p in &s.partition_owners {
        let owners: Vec<String> = p
            .owners
            .iter()
            .map(|o| {
                format!(
                    "{}{} (lag {}, seq {})",
                    sanitize(&o.node),
                    if o.ready { "" } else { " catching up" },
                    o.lag,
                    o.committed
                )
            })
            .collect();
        let shown = if owners.is_empty() {
            "NONE: its records cannot be read now".to_string()
        } else {
            owners.join(", ")
        };
        let _ = writeln!(out, "{:>9}  {shown}", p.partition);
    }
    out
}

/// `skein cluster status`.
pub async fn status(client: &Client, json: bool, out: &mut dyn Write) -> anyhow::Result<u8> {
    let s = client
        .cluster()
        .await
        .context("reading the cluster's status (is this collector in cluster mode?)")?;
    emit(out, json, &s, status_text)?;
    Ok(if s.nodes.is_empty() {
        EXIT_NOT_FOUND
    } else {
        EXIT_FOUND
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use skein_model::cluster_api::{NodeInfo, OwnerStatus, PartitionStatus};

    #[test]
    fn shows_owners_lag_and_unowned_partitions_without_escapes() {
        let s = ClusterStatus {
            node: "n\x1b[31m1".into(),
            partitions: 2,
            index_replicas: 2,
            alert_leader: Some("n1".into()),
            nodes: vec![NodeInfo {
                name: "n1".into(),
                url: "http://127.0.0.1:7700".into(),
                ready: vec![0],
                ..Default::default()
            }],
            partition_owners: vec![
                PartitionStatus {
                    partition: 0,
                    owners: vec![OwnerStatus {
                        node: "n1".into(),
                        ready: false,
                        lag: 42,
                        committed: 7,
                    }],
                },
                PartitionStatus {
                    partition: 1,
                    owners: vec![],
                },
            ],
            stream: None,
        };
        let t = status_text(&s);
        assert!(!t.contains('\x1b'), "{t}");
        assert!(t.contains("n1 catching up (lag 42, seq 7)"), "{t}");
        assert!(t.contains("NONE"), "{t}");
    }
}
