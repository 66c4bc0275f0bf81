//! The ingest token check, the same on every transport: `Authorization: Bearer <token>` on
//! HTTP, the `authorization` metadata (the same header) on gRPC. No token configured means no check.

use axum::http::{HeaderMap, header};
use skein_model::auth::bearer_matches;

/// True when no token is required or the request's `Authorization` header carries it.
pub fn authorized(headers: &HeaderMap, token: Option<&str>) -> bool {
    let Some(token) = token else {
        return true;
    };
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    bearer_matches(header, token)
}
