//! `skein`: one binary for every part of Skein. A thin `main` over the libraries: it reads
//! flags, sets up logging and calls the part asked for.

mod agent_cmd;
mod cli;
mod demo;

use clap::{Args, Parser, Subcommand};
use skein_collector::config::{CollectorConfig, WalSync};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "skein",
    version,
    about = "One request's whole story across microservices"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collector: OTLP in (HTTP :4318, gRPC :4317), query API out (:7700).
    Collector(CollectorArgs),
    /// Run the per-host agent: tail log files, receive local OTLP (:4328, :4327), sample host
    /// metrics, ship to the collector through a disk buffer.
    Agent(agent_cmd::AgentArgs),
    /// Search logs: full text plus field:value terms, newest first.
    Search(SearchCmd),
    /// Show one request's whole story: every span and log for a trace ID or request ID.
    Trace(TraceCmd),
    /// Services with their rate, error rate and latency (RED, from spans); with a service
    /// name, its operations.
    Services(ServicesCmd),
    /// The service dependency graph: who calls whom, how often, how slow, how many fail.
    Deps(DepsCmd),
    /// Query a metric (`skein metrics system.cpu.utilization --match host=web-1 --agg avg`);
    /// without a name, list the metrics.
    Metrics(MetricsCmd),
    /// Hosts with their agents' state and latest resource figures.
    Hosts(HostsCmd),
    /// Pending and firing alerts; `--history` for state changes, `--notifications` for the
    /// receivers' delivery state.
    Alerts(AlertsCmd),
    /// Check rule files (`skein rules check alerts/`) or list a collector's rules.
    #[command(subcommand)]
    Rules(cli::alerts::RulesCmd),
    /// Add, list and expire silences.
    #[command(subcommand)]
    Silence(cli::alerts::SilenceCmd),
    /// The live terminal dashboard: overview, logs, traces, trace waterfall, metrics, alerts.
    Tui(TuiCmd),
    /// Follow new log lines as they arrive (reconnects without gaps or repeats).
    Tail(TailCmd),
    /// Run the whole stack with a food-delivery system (gateway, order, coupon, payment,
    /// delivery), load, faults, alerts and the dashboard; `skein demo fault` injects a fault.
    Demo(demo::DemoCmd),
}

#[derive(Args)]
struct TailCmd {
    /// Words and field:value terms, e.g. 'timeout service:payment'.
    #[arg(default_value = "")]
    query: String,
    /// Only this service.
    #[arg(long)]
    service: Option<String>,
    /// This level and above: trace, debug, info, warn, error, fatal.
    #[arg(long)]
    severity: Option<String>,
    /// Lines of history to start with (0 to 1000).
    #[arg(long, default_value_t = 10)]
    back: usize,
    /// Stop after this many lines (0: follow until Ctrl-C).
    #[arg(long, short = 'n', default_value_t = 0)]
    lines: usize,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Args)]
struct TuiCmd {
    /// Query API address.
    #[arg(long, env = "SKEIN_API", default_value = "http://127.0.0.1:7700")]
    api: String,
    /// Bearer token for the query API.
    #[arg(long, env = "SKEIN_QUERY_TOKEN")]
    token: Option<String>,
    /// Time between refreshes (1s to 1m).
    #[arg(long, default_value = "1500ms")]
    refresh: String,
    /// Dashboard file for the metrics view (see dashboards/default.toml, the built-in one).
    #[arg(long)]
    dashboard: Option<PathBuf>,
}

#[derive(Args)]
struct AlertsCmd {
    #[command(flatten)]
    args: cli::alerts::AlertsArgs,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Args)]
struct ServicesCmd {
    /// Show this service's operations.
    service: Option<String>,
    /// Window the figures cover, ending now (30s, 1m, 5m).
    #[arg(long, default_value = "1m")]
    window: String,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Args)]
struct DepsCmd {
    /// From (15m, 2h, RFC 3339).
    #[arg(long, default_value = "15m")]
    since: String,
    /// Until (RFC 3339, relative, now).
    #[arg(long)]
    until: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Args)]
struct MetricsCmd {
    /// Metric name (a histogram by its base name).
    name: Option<String>,
    /// Label matcher: label=value, label!=value, label=~regex, label!~regex. Repeatable.
    #[arg(long = "match", short = 'm')]
    matchers: Vec<String>,
    /// From (15m, 2h, RFC 3339).
    #[arg(long, default_value = "1h")]
    since: String,
    /// Until (RFC 3339, relative, now).
    #[arg(long)]
    until: Option<String>,
    /// Width of each point (30s, 5m); default: the range over about 240 points.
    #[arg(long)]
    step: Option<String>,
    /// avg, min, max, sum, count, rate, increase, p50, p90, p95, p99.
    #[arg(long, default_value = "avg")]
    agg: String,
    /// Group by these labels (comma-separated).
    #[arg(long)]
    by: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Args)]
struct HostsCmd {
    #[command(flatten)]
    api: ApiArgs,
}

/// Flags override the config file; the config file overrides the embedded defaults.
#[derive(Args)]
struct CollectorArgs {
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

#[derive(Args)]
pub(crate) struct ApiArgs {
    /// Query API address.
    #[arg(long, env = "SKEIN_API", default_value = "http://127.0.0.1:7700")]
    pub(crate) api: String,
    /// Bearer token for the query API.
    #[arg(long, env = "SKEIN_QUERY_TOKEN")]
    pub(crate) token: Option<String>,
    /// Print the API's JSON answer.
    #[arg(long)]
    pub(crate) json: bool,
    /// Colors: auto (when stdout is a terminal), always, never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    color: String,
}

impl ApiArgs {
    fn color(&self) -> bool {
        match self.color.as_str() {
            "always" => true,
            "never" => false,
            _ => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

#[derive(Args)]
struct SearchCmd {
    /// Words and field:value terms, e.g. 'timeout service:payment'.
    #[arg(default_value = "")]
    query: String,
    /// Only this service.
    #[arg(long)]
    service: Option<String>,
    /// This level and above: trace, debug, info, warn, error, fatal.
    #[arg(long)]
    severity: Option<String>,
    /// From (15m, 2h, RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Until (RFC 3339, relative, now).
    #[arg(long)]
    until: Option<String>,
    /// Most lines.
    #[arg(long, short = 'n', default_value_t = 100)]
    limit: usize,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Args)]
struct TraceCmd {
    /// A trace ID, request ID or other correlation key.
    key: String,
    #[command(flatten)]
    api: ApiArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("skein: cannot start the async runtime: {e}");
            return ExitCode::from(cli::EXIT_ERROR);
        }
    };
    match cli.command {
        Command::Collector(args) => {
            init_tracing();
            runtime.block_on(collector(args))
        }
        Command::Agent(args) => {
            init_tracing();
            runtime.block_on(agent_cmd::run(args, shutdown_signal()))
        }
        Command::Search(cmd) => runtime.block_on(search(cmd)),
        Command::Trace(cmd) => runtime.block_on(trace(cmd)),
        Command::Services(cmd) => runtime.block_on(services(cmd)),
        Command::Deps(cmd) => runtime.block_on(deps(cmd)),
        Command::Metrics(cmd) => runtime.block_on(metrics(cmd)),
        Command::Hosts(cmd) => runtime.block_on(hosts(cmd)),
        Command::Alerts(cmd) => runtime.block_on(async {
            let c = match client(&cmd.api) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let mut out = std::io::stdout().lock();
            finish(cli::alerts::alerts(&c, &cmd.args, cmd.api.json, &mut out).await)
        }),
        Command::Rules(cmd) => runtime.block_on(async {
            let mut out = std::io::stdout().lock();
            let mut err = std::io::stderr().lock();
            finish(cli::alerts::rules(cmd, &mut out, &mut err).await)
        }),
        Command::Tui(cmd) => tui(cmd),
        Command::Tail(cmd) => runtime.block_on(async {
            let c = match client(&cmd.api) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let args = cli::tail::TailArgs {
                query: cmd.query,
                service: cmd.service,
                severity: cmd.severity,
                back: cmd.back,
                max_lines: cmd.lines,
                json: cmd.api.json,
                color: cmd.api.color(),
            };
            let mut out = std::io::stdout().lock();
            finish(cli::tail::run(&c, &args, &mut out).await)
        }),
        Command::Silence(cmd) => runtime.block_on(async {
            let mut out = std::io::stdout().lock();
            finish(cli::alerts::silence(cmd, &mut out).await)
        }),
        Command::Demo(cmd) => demo::main(cmd, &runtime),
    }
}

/// Completes on Ctrl-C or SIGTERM, and, when [`demo::STOP_ON_STDIN_EOF`] is set in the
/// environment, when standard input closes (the demo's way to stop its processes, which also
/// works when the demo itself was killed).
pub(crate) async fn shutdown_signal() {
    if std::env::var_os(demo::STOP_ON_STDIN_EOF).is_some() {
        let eof = demo::stdin_closed();
        tokio::select! {
            _ = signals() => {},
            _ = eof => {},
        }
    } else {
        signals().await;
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub(crate) async fn signals() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKEIN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tantivy=warn"));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}

fn collector_config(args: CollectorArgs) -> Result<CollectorConfig, String> {
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

async fn collector(args: CollectorArgs) -> ExitCode {
    let cfg = match collector_config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skein collector: bad configuration: {e}");
            return ExitCode::from(cli::EXIT_ERROR);
        }
    };
    let shutdown = shutdown_signal();
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
            ExitCode::from(cli::EXIT_ERROR)
        }
        Err(e) => {
            eprintln!("skein collector: {e}");
            ExitCode::FAILURE
        }
    }
}

fn client(api: &ApiArgs) -> Result<skein_client::Client, ExitCode> {
    skein_client::Client::new(&api.api, api.token.clone()).map_err(|e| {
        eprintln!("skein: {e}");
        ExitCode::from(cli::EXIT_ERROR)
    })
}

fn finish(result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("skein: {e:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}

async fn search(cmd: SearchCmd) -> ExitCode {
    let c = match client(&cmd.api) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let args = cli::search::SearchArgs {
        query: cmd.query,
        service: cmd.service,
        severity: cmd.severity,
        since: cmd.since,
        until: cmd.until,
        limit: cmd.limit,
        json: cmd.api.json,
        color: cmd.api.color(),
    };
    let mut out = std::io::stdout().lock();
    finish(cli::search::run(&c, &args, &mut out).await)
}

async fn trace(cmd: TraceCmd) -> ExitCode {
    let c = match client(&cmd.api) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut out = std::io::stdout().lock();
    finish(cli::trace::run(&c, &cmd.key, cmd.api.json, cmd.api.color(), &mut out).await)
}

/// A `--since`/`--until` value resolved against this machine's clock, as Unix nanoseconds.
fn resolve_time(flag: &str, value: &str) -> Result<String, ExitCode> {
    skein_model::time::parse_time(value, skein_model::time::now_unix_nano())
        .map(|n| n.to_string())
        .map_err(|e| {
            eprintln!("skein: --{flag}: {e}");
            ExitCode::from(cli::EXIT_ERROR)
        })
}

/// `--since` and `--until` resolved (see [`resolve_time`]).
fn resolve_range(since: &str, until: Option<&str>) -> Result<(String, Option<String>), ExitCode> {
    let since = resolve_time("since", since)?;
    let until = until.map(|u| resolve_time("until", u)).transpose()?;
    Ok((since, until))
}

async fn services(cmd: ServicesCmd) -> ExitCode {
    let c = match client(&cmd.api) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut out = std::io::stdout().lock();
    finish(
        cli::monitor::services(
            &c,
            cmd.service.as_deref(),
            &cmd.window,
            cmd.api.json,
            &mut out,
        )
        .await,
    )
}

async fn deps(cmd: DepsCmd) -> ExitCode {
    let c = match client(&cmd.api) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (since, until) = match resolve_range(&cmd.since, cmd.until.as_deref()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut out = std::io::stdout().lock();
    finish(cli::monitor::deps(&c, Some(&since), until.as_deref(), cmd.api.json, &mut out).await)
}

async fn metrics(cmd: MetricsCmd) -> ExitCode {
    let c = match client(&cmd.api) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (since, until) = match resolve_range(&cmd.since, cmd.until.as_deref()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut params: Vec<(&str, &str)> = vec![("start", &since), ("agg", &cmd.agg)];
    if let Some(u) = &until {
        params.push(("end", u));
    }
    if let Some(s) = &cmd.step {
        params.push(("step", s));
    }
    if let Some(b) = &cmd.by {
        params.push(("by", b));
    }
    for m in &cmd.matchers {
        params.push(("match", m));
    }
    let mut out = std::io::stdout().lock();
    finish(cli::monitor::metrics(&c, cmd.name.as_deref(), &params, cmd.api.json, &mut out).await)
}

fn tui(cmd: TuiCmd) -> ExitCode {
    let refresh = match skein_model::time::parse_duration(&cmd.refresh) {
        Ok(d)
            if d >= std::time::Duration::from_secs(1)
                && d <= std::time::Duration::from_secs(60) =>
        {
            d
        }
        Ok(_) => {
            eprintln!("skein tui: --refresh {}: use 1s to 1m", cmd.refresh);
            return ExitCode::from(cli::EXIT_ERROR);
        }
        Err(e) => {
            eprintln!("skein tui: --refresh: {e}");
            return ExitCode::from(cli::EXIT_ERROR);
        }
    };
    let opts = skein_tui::Options {
        api: cmd.api,
        token: cmd.token,
        refresh,
        dashboard: cmd.dashboard,
    };
    match skein_tui::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skein tui: {e}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}

async fn hosts(cmd: HostsCmd) -> ExitCode {
    let c = match client(&cmd.api) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut out = std::io::stdout().lock();
    finish(cli::monitor::hosts(&c, cmd.api.json, &mut out).await)
}
