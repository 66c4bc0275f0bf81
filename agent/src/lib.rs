//! skein-agent: the per-host shipper. It tails log files ([`tail`]), parses their lines
//! ([`parse`]), receives OTLP from local apps ([`receiver`]), samples host and process
//! resources ([`hostmetrics`]), writes everything to a bounded disk buffer ([`buffer`]) and
//! ships it to the collector over OTLP/HTTP ([`ship`]), with heartbeats ([`heartbeat`]) and
//! its own counters ([`telemetry`]).

pub mod config;
pub mod hostmetrics;
pub mod parse;
pub mod tail;
pub mod telemetry;
