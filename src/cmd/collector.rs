//! `skein collector`: reads the collector's TOML config, applies flags, and runs the
//! collector until SIGINT or SIGTERM.

use crate::cli::EXIT_ERROR;
use clap::Args;
use skein_collector::config::{CollectorConfig, WalSync};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags override the config file; the config file overrides the embedded defaults.
#[derive(Args)]
pub struct CollectorArgs {
    /// TOML config file (see collector.example.toml).
    #[arg(long, short = 'c', env = "SKEIN_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (WAL, indexes, metrics). Default ./skein-data.
    #[arg(long, env = "SKEIN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// OTLP/HTTP address. Default 127.0.0.1:4318.
    #[arg(long)]
    otlp_http: Option<String>,
    /// OTLP/gRPC address. Default 127.0.0.1:4317.
    #[arg(long)]
    otlp_grpc: Option<String>,
    /// Query API address. Default 127.0.0.1:7700.
    #[arg(long)]
    api: Option<String>,
    /// Bearer token required on OTLP requests.
    #[arg(long, env = "SKEIN_INGEST_TOKEN")]
    ingest_token: Option<String>,
    /// Bearer token required on query API requests.
    #[arg(long, env = "SKEIN_QUERY_TOKEN")]
    query_token: Option<String>,
    /// WAL fsync policy: batch (before every acknowledgement) or interval.
    #[arg(long, value_parser = ["batch", "interval"])]
    wal_sync: Option<String>,
    /// Largest OTLP request body in bytes, after decompression. Default 16 MiB.
    #[arg(long)]
    max_request_bytes: Option<usize>,
    /// Milliseconds between index commits (how soon a record is searchable). Default 500.
    #[arg(long)]
    commit_interval_ms: Option<u64>,
    /// Delete data older than this (7d, 12h; 0 keeps all). Default 7d.
    #[arg(long)]
    retention_max_age: Option<String>,
    /// Most MiB each of logs and spans may take (0: no limit). Default 0.
    #[arg(long)]
    retention_max_mb: Option<u64>,
    /// Alert rule file or directory of *.toml rule files; repeatable; added to
    /// `alerts.rules` of the config.
    #[arg(long)]
    rules: Vec<PathBuf>,
}

fn config(args: CollectorArgs) -> Result<CollectorConfig, String> {
    let mut cfg = match &args.config {
        Some(path) => CollectorConfig::from_file(path).map_err(|e| e.to_string())?,
        None => CollectorConfig::default(),
    };
    if let Some(v) = args.data_dir {
        cfg.data_dir = v;
    }
    if let Some(v) = args.otlp_http {
        cfg.listen.otlp_http = v;
    }
    if let Some(v) = args.otlp_grpc {
        cfg.listen.otlp_grpc = v;
    }
    if let Some(v) = args.api {
        cfg.listen.api = v;
    }
    if args.ingest_token.is_some() {
        cfg.auth.ingest_token = args.ingest_token;
    }
    if args.query_token.is_some() {
        cfg.auth.query_token = args.query_token;
    }
    if let Some(v) = args.wal_sync {
        cfg.wal.sync = if v == "interval" {
            WalSync::Interval
        } else {
            WalSync::Batch
        };
    }
    if let Some(v) = args.max_request_bytes {
        cfg.limits.max_request_bytes = v;
    }
    if let Some(v) = args.commit_interval_ms {
        cfg.index.commit_interval_ms = v;
    }
    if let Some(v) = args.retention_max_age {
        cfg.retention.max_age = v;
    }
    if let Some(v) = args.retention_max_mb {
        cfg.retention.max_mb = v;
    }
    cfg.alerts.rules.extend(args.rules);
    cfg.validate().map_err(|e| format!("flags: {e}"))?;
    Ok(cfg)
}

/// Runs `skein collector` until `shutdown` completes.
pub async fn run(
    args: CollectorArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> ExitCode {
    let cfg = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skein collector: bad configuration: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let result = skein_collector::run(cfg, shutdown, |b| {
        // One line on stdout that scripts (and the end-to-end tests) read for the real ports.
        let mut out = std::io::stdout();
        let _ = writeln!(
            out,
            "skein collector ready otlp_http={} otlp_grpc={} api={}",
            b.otlp_http, b.otlp_grpc, b.api
        );
        let _ = out.flush();
    })
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ skein_collector::CollectorError::Config(_)) => {
            eprintln!("skein collector: bad configuration: {e}");
            ExitCode::from(EXIT_ERROR)
        }
        Err(e) => {
            eprintln!("skein collector: {e}");
            ExitCode::FAILURE
        }
    }
}
