//! The cluster's HTTP routes on the query API's port (behind the query token):
//! - `POST /internal/v1/reads`: a store read over some of this node's partitions (another
//!   node's fan-out calls it; it never fans out again);
//! - `POST /internal/v1/metrics`: a metric read over some of this node's partitions;
//! - `GET /api/v1/cluster`: nodes, partitions with their owners and lag, the stream's state
//!   (`skein cluster status`).

use crate::Cluster;
use crate::fanout::{RemoteAnswer, RemoteRead, local_reads};
use crate::metrics::{RemoteMetricAnswer, RemoteMetricRead, local_stores};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use skein_model::cluster_api::{
    ClusterStatus as Status, OwnerStatus, PartitionStatus, StreamStatus,
};
use skein_query::QueryError;
use skein_query::reads::Reads;
use std::time::Instant;

/// Largest body of an internal read request.
const MAX_READ_BODY: usize = 1024 * 1024;

fn error(status: StatusCode, kind: &str, message: String) -> Response {
    (
        status,
        Json(serde_json::json!({"error": kind, "message": message})),
    )
        .into_response()
}

/// The routes.
pub fn routes(cluster: Cluster) -> Router {
    Router::new()
        .route("/internal/v1/reads", post(reads))
        .route("/internal/v1/metrics", post(metric_read))
        .route("/api/v1/cluster", get(status))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_READ_BODY))
        .with_state(cluster)
}

async fn reads(State(c): State<Cluster>, body: axum::body::Bytes) -> Response {
    let req: RemoteRead = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("not a store read: {e}"),
            );
        }
    };
    if let Err(m) = req.read.check() {
        return error(StatusCode::BAD_REQUEST, "bad_request", m);
    }
    if req.partitions.len() > 4096
        || req
            .partitions
            .iter()
            .any(|p| *p >= c.inner.membership.partitions)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!(
                "partitions must be below {} (cluster.partitions)",
                c.inner.membership.partitions
            ),
        );
    }
    let deadline = Instant::now() + c.inner.read_timeout;
    let m = c.inner.membership.clone();
    let task = tokio::task::spawn_blocking(move || {
        skein_model::deadline::with_deadline(deadline, || {
            let (reads, missing) = local_reads(&m, &req.partitions);
            let result = if missing.len() == req.partitions.len() {
                Ok(None)
            } else {
                reads.read(&req.read).map(Some)
            };
            result.map(|result| RemoteAnswer { result, missing })
        })
    });
    match task.await {
        Ok(Ok(a)) => Json(a).into_response(),
        Ok(Err(QueryError::BadRequest(m))) => error(StatusCode::BAD_REQUEST, "bad_request", m),
        Ok(Err(e)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

async fn metric_read(State(c): State<Cluster>, body: axum::body::Bytes) -> Response {
    let req: RemoteMetricRead = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("not a metric read: {e}"),
            );
        }
    };
    if let Err(m) = req.read.check() {
        return error(StatusCode::BAD_REQUEST, "bad_request", m);
    }
    let partitions = c.inner.membership.partitions;
    if req.partitions.len() > 4096 || req.partitions.iter().any(|p| *p >= partitions) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("partitions must be below {partitions} (cluster.partitions)"),
        );
    }
    let deadline = Instant::now() + c.inner.read_timeout;
    let m = c.inner.membership.clone();
    let task = tokio::task::spawn_blocking(move || {
        skein_model::deadline::with_deadline(deadline, || {
            let (stores, missing) = local_stores(&m, &req.partitions);
            let answer = if stores.is_empty() {
                None
            } else {
                Some(req.read.answer_all(&stores)?)
            };
            Ok::<_, String>(RemoteMetricAnswer { answer, missing })
        })
    });
    match task.await {
        Ok(Ok(a)) => Json(a).into_response(),
        Ok(Err(m)) => error(StatusCode::BAD_REQUEST, "bad_request", m),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

async fn status(State(c): State<Cluster>) -> Response {
    let view = c.inner.membership.view();
    let partition_owners = (0..c.inner.membership.partitions)
        .map(|p| PartitionStatus {
            partition: p,
            owners: view
                .owners
                .get(p as usize)
                .map(|o| {
                    o.iter()
                        .map(|n| {
                            let info = view.nodes.get(n);
                            OwnerStatus {
                                node: n.clone(),
                                ready: info.is_some_and(|i| i.ready.contains(&p)),
                                lag: info.and_then(|i| i.lag.get(&p).copied()).unwrap_or(0),
                                committed: info
                                    .and_then(|i| i.committed.get(&p).copied())
                                    .unwrap_or(0),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    let stream = match c.inner.stream.get_info().await {
        Ok(i) => {
            let mut servers = Vec::new();
            if let Some(cl) = &i.cluster {
                if let Some(l) = &cl.leader {
                    servers.push(l.clone());
                }
                servers.extend(cl.replicas.iter().map(|r| r.name.clone()));
            }
            Some(StreamStatus {
                name: i.config.name.clone(),
                messages: i.state.messages,
                bytes: i.state.bytes,
                first_seq: i.state.first_sequence,
                last_seq: i.state.last_sequence,
                replicas: i.config.num_replicas,
                servers,
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the stream's state");
            None
        }
    };
    let alert_leader = match c.inner.kv.get("leader.alerts").await {
        Ok(Some(v)) => Some(String::from_utf8_lossy(&v).to_string()),
        _ => None,
    };
    Json(Status {
        alert_leader,
        node: c.inner.membership.node.clone(),
        partitions: c.inner.membership.partitions,
        index_replicas: c.inner.membership.replicas,
        nodes: view.nodes.into_values().collect(),
        partition_owners,
        stream,
    })
    .into_response()
}
