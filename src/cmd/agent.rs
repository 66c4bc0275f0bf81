//! `skein agent`: reads the agent's TOML config, applies flags, and runs the agent until
//! SIGINT or SIGTERM. `--check-config` only validates.

use clap::Args;
use skein_agent::config::AgentConfig;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags override the config file; the config file overrides the embedded defaults.
#[derive(Args)]
pub struct AgentArgs {
    /// TOML config file (see agent.example.toml).
    #[arg(long, short = 'c', env = "SKEIN_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Validate the config and exit: 0 when good, 2 (with file, key and value) when not.
    #[arg(long)]
    pub check_config: bool,
    /// Data directory (checkpoints, disk buffer). Default ./skein-agent-data.
    #[arg(long, env = "SKEIN_AGENT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Collector OTLP/HTTP base URL. Default http://127.0.0.1:4318.
    #[arg(long, env = "SKEIN_COLLECTOR")]
    pub collector: Option<String>,
    /// Bearer token for the collector.
    #[arg(long, env = "SKEIN_INGEST_TOKEN")]
    pub token: Option<String>,
}

fn config(args: &AgentArgs) -> Result<AgentConfig, String> {
    let mut cfg = match &args.config {
        Some(path) => AgentConfig::from_file(path).map_err(|e| e.to_string())?,
        None => AgentConfig::default(),
    };
    if let Some(v) = &args.data_dir {
        cfg.agent.data_dir = v.clone();
    }
    if let Some(v) = &args.collector {
        cfg.collector.endpoint = v.clone();
    }
    if let Some(v) = &args.token {
        cfg.collector.token = Some(v.clone());
    }
    cfg.validate().map_err(|e| format!("flags: {e}"))?;
    Ok(cfg)
}

/// Runs `skein agent`.
pub async fn run(args: AgentArgs, shutdown: impl Future<Output = ()> + Send + 'static) -> ExitCode {
    let cfg = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skein agent: bad configuration: {e}");
            return ExitCode::from(crate::cli::EXIT_ERROR);
        }
    };
    if args.check_config {
        let name = args
            .config
            .as_ref()
            .map_or("defaults".to_string(), |p| p.display().to_string());
        println!(
            "{name}: ok ({} sources, {} watched process groups, collector {})",
            cfg.sources.len(),
            cfg.host_metrics.processes.len(),
            cfg.collector.endpoint
        );
        return ExitCode::SUCCESS;
    }
    let result = skein_agent::run(cfg, shutdown, |b| {
        let show = |a: Option<std::net::SocketAddr>| a.map_or("off".to_string(), |a| a.to_string());
        let mut out = std::io::stdout();
        let _ = writeln!(
            out,
            "skein agent ready otlp_http={} otlp_grpc={} metrics={}",
            show(b.otlp_http),
            show(b.otlp_grpc),
            show(b.telemetry)
        );
        let _ = out.flush();
    })
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ skein_agent::AgentError::Config(_)) => {
            eprintln!("skein agent: bad configuration: {e}");
            ExitCode::from(crate::cli::EXIT_ERROR)
        }
        Err(e) => {
            eprintln!("skein agent: {e}");
            ExitCode::FAILURE
        }
    }
}
