//! `POST /skein/v1/heartbeat` on the OTLP/HTTP listener: agents report that they are alive,
//! with their id, host, version, sources and buffer fill. The registry behind it
//! ([`AgentRegistry`]) is served by the query API at `GET /api/v1/agents`.
//!
//! When the collector requires client certificates (`[tls] client_ca_file`), the agent is
//! known by its certificate's identity: the heartbeat's id is replaced by it and kept in
//! `certificate`.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::BodyExt;
use skein_cluster::agents::AgentShare;
use skein_model::api::Heartbeat;
use skein_model::time::now_unix_nano;
use skein_otlp::auth::authorized;
use skein_otlp::http::error;
use skein_otlp::tls::server::Peer;
use skein_store::agents::{AgentRegistry, HeartbeatError};
use std::sync::Arc;

/// Largest heartbeat body, bytes.
pub const MAX_HEARTBEAT_BYTES: usize = 256 * 1024;

#[derive(Clone)]
struct HbState {
    registry: AgentRegistry,
    token: Option<Arc<str>>,
    share: Option<AgentShare>,
}

/// The heartbeat route, to merge into the OTLP/HTTP router. In a cluster, `share` passes
/// each heartbeat on to the other nodes.
pub fn router(
    registry: AgentRegistry,
    token: Option<Arc<str>>,
    share: Option<AgentShare>,
) -> Router {
    Router::new()
        .route("/skein/v1/heartbeat", post(heartbeat))
        .with_state(HbState {
            registry,
            token,
            share,
        })
}

async fn heartbeat(
    State(s): State<HbState>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !authorized(&headers, s.token.as_deref()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token: send Authorization: Bearer <ingest token>",
        );
    }
    let bytes = match http_body_util::Limited::new(body, MAX_HEARTBEAT_BYTES)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                &format!("a heartbeat is at most {MAX_HEARTBEAT_BYTES} bytes"),
            );
        }
    };
    let mut hb: Heartbeat = match serde_json::from_slice(&bytes) {
        Ok(h) => h,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("the heartbeat is not valid JSON of the expected shape: {e}"),
            );
        }
    };
    // Under mTLS the certificate says who the agent is; without one, nobody does.
    hb.certificate = peer.and_then(|p| p.0.identity.as_deref().map(str::to_string));
    if let Some(id) = &hb.certificate {
        hb.id = id.clone();
    }
    let seen = now_unix_nano();
    let shared = s.share.as_ref().map(|sh| (sh.clone(), hb.clone()));
    match s.registry.heartbeat_at(hb, seen) {
        Ok(()) => {
            if let Some((sh, hb)) = shared {
                // The agent does not wait for the other nodes; it sends again soon anyway.
                tokio::spawn(async move { sh.publish(hb, seen).await });
            }
            axum::Json(serde_json::json!({"status": "ok"})).into_response()
        }
        Err(HeartbeatError::Invalid(m)) => error(StatusCode::BAD_REQUEST, "bad_request", &m),
        Err(e @ HeartbeatError::Full) => error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_agents",
            &e.to_string(),
        ),
    }
}
