//! Skein's alerts: rules evaluated over the stores (through the query crate's metric
//! evaluation, the store's counts and the agent registry), states per rule and label set,
//! silences, and notifications through a durable outbox to webhook receivers. The collector
//! runs the engine and serves its routes; nothing here depends on the collector.
//!
//! - [`rules`]: rule files (TOML), checked at load with file and line; [`template`]:
//!   annotation templates (`{{ $labels.service }}`, `{{ $value }}`).
//! - [`promrules`]: Prometheus rule files (YAML, `alerts.rule_files`), checked as promtool
//!   checks them; alerting rules through the same states, recording rules written back, both
//!   evaluated by a PromQL engine the collector connects ([`AlertEngine::connect_promql`]).
//! - [`cond`]: a rule's condition against the metrics store, the log and span indexes and
//!   the agent registry.
//! - [`state`]: inactive → pending → firing → resolved per label set, saved across restarts,
//!   and the history of changes.
//! - [`silence`]: silences; [`dispatch`]: routing, grouping, inhibition and timing, as
//!   Alertmanager does them, into webhook bodies of Alertmanager's version 4.
//! - [`outbox`]: notifications on disk until a receiver takes them; [`deliver`]: one task per
//!   receiver sends them in order with capped exponential backoff.
//! - [`shared`]: in a cluster, the outbox and the state live where every node reads them
//!   (the traits; the cluster crate implements them over NATS JetStream).
//! - [`http`]: the API routes; [`config`]: the `[alerts]` section; [`telemetry`]: its own
//!   counters, registered into the running process's `/metrics`.
//!
//! The loop ([`AlertEngine::run`]) evaluates every rule each `eval_interval` (5 s) on a
//! blocking thread, then looks at the notification groups every second. A notification is
//! written to the outbox (fsync) before the groups' state is saved, so a crash between the
//! two sends it twice rather than never.

pub mod cond;
pub mod config;
pub mod deliver;
pub mod dispatch;
pub mod http;
pub mod outbox;
pub mod promrules;
pub mod rule_types;
pub mod rules;
pub mod shared;
pub mod silence;
pub mod state;
pub mod telemetry;
pub mod template;

mod engine;

pub use engine::AlertEngine;
pub use telemetry::AlertTelemetry;
