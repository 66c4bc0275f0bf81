//! The API state the route tests run over: a metrics store and empty log and span indexes.

#![allow(clippy::unwrap_used)]

use crate::api::ApiState;
use crate::engine::{Engine, QueryLimits};
use skein_store::agents::AgentRegistry;
use skein_store::{Logs, Spans, SplitConfig, SplitStore};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// A ready state over `tsdb`, with empty log and span indexes in `dir`, no token, a 10 s
/// time limit and 4 query places.
pub(crate) fn state_over(tsdb: skein_store::tsdb::Tsdb, dir: &std::path::Path) -> ApiState {
    state_with_logs(tsdb, dir, &[])
}

/// As [`state_over`], with `records` in the log index.
pub(crate) fn state_with_logs(
    tsdb: skein_store::tsdb::Tsdb,
    dir: &std::path::Path,
    records: &[skein_model::LogRecord],
) -> ApiState {
    let cfg = SplitConfig::small();
    let mut logs = SplitStore::<Logs>::open(dir, cfg.clone()).unwrap();
    if !records.is_empty() {
        logs.add(records).unwrap();
        logs.commit(1).unwrap();
    }
    let spans = SplitStore::<Spans>::open(dir, cfg).unwrap();
    let engine = Engine::new(
        logs.split_list(),
        logs.fields().clone(),
        spans.split_list(),
        spans.fields().clone(),
        QueryLimits::default(),
    );
    ApiState {
        engine: Arc::new(engine),
        token: None,
        ready: Arc::new(AtomicBool::new(true)),
        metrics: Arc::new(String::new),
        observe: Arc::new(|_, _| {}),
        timeout: Duration::from_secs(10),
        slots: Arc::new(tokio::sync::Semaphore::new(4)),
        agents: AgentRegistry::in_memory(Duration::from_secs(15)),
        metric_reads: Arc::new(tsdb),
        keys: Arc::new(skein_model::keys::KeyExtractor::new(&Default::default())),
    }
}
