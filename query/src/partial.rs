//! Answers that could not read every partition say so.
//!
//! In a cluster a store read fans out to the owners of each partition. When no live owner of
//! a partition answers, the read goes on without it and names it here
//! ([`note_missing`], a thread-local of the blocking thread the query runs on). The API layer
//! collects the names after the query ([`take_missing`]) and the [`mark`] middleware adds
//! `"partial": true` and `"missing_partitions": [...]` to the JSON answer (and the
//! `Skein-Partial` header to any answer), so a short answer is never silently short. Every
//! route gets this without code of its own.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

thread_local! {
    static MISSING: RefCell<BTreeSet<u32>> = const { RefCell::new(BTreeSet::new()) };
}

tokio::task_local! {
    static REQUEST: Arc<Mutex<BTreeSet<u32>>>;
}

/// Largest answer body the middleware rewrites (bigger ones get the header only).
const MAX_REWRITE_BYTES: usize = 64 * 1024 * 1024;

/// Records that these partitions could not be read by the query running on this thread.
pub fn note_missing(partitions: impl IntoIterator<Item = u32>) {
    MISSING.with(|m| m.borrow_mut().extend(partitions));
}

/// Takes (and clears) the partitions recorded on this thread.
pub fn take_missing() -> BTreeSet<u32> {
    MISSING.with(|m| std::mem::take(&mut *m.borrow_mut()))
}

/// Hands the partitions a query missed to the request it ran for (a no-op outside [`mark`]).
pub fn report(missing: BTreeSet<u32>) {
    if missing.is_empty() {
        return;
    }
    let _ = REQUEST.try_with(|r| match r.lock() {
        Ok(mut g) => g.extend(missing),
        Err(p) => p.into_inner().extend(missing),
    });
}

/// Middleware: marks answers built without some partitions.
pub async fn mark(req: Request, next: Next) -> Response {
    let cell = Arc::new(Mutex::new(BTreeSet::new()));
    let resp = REQUEST.scope(cell.clone(), next.run(req)).await;
    let missing: Vec<u32> = match cell.lock() {
        Ok(g) => g.iter().copied().collect(),
        Err(p) => p.into_inner().iter().copied().collect(),
    };
    if missing.is_empty() {
        return resp;
    }
    let list = missing
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let (mut parts, body) = resp.into_parts();
    if let Ok(v) = HeaderValue::from_str(&list) {
        parts.headers.insert("skein-partial", v);
    }
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REWRITE_BYTES).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let out = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut o)) => {
            o.insert("partial".into(), serde_json::Value::Bool(true));
            o.insert("missing_partitions".into(), serde_json::json!(missing));
            serde_json::to_vec(&o).unwrap_or_else(|_| bytes.to_vec())
        }
        _ => bytes.to_vec(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}
