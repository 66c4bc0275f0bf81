//! `skein`: one binary for every part of Skein. A thin `main` over the libraries: it reads
//! flags, sets up logging and calls the command asked for (see [`cmd`]).

mod cli;
mod cmd;
mod demo;
mod shutdown;

use clap::{Parser, Subcommand};
use std::io::IsTerminal;
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
    Collector(cmd::collector::CollectorArgs),
    /// Run the per-host agent: tail log files, receive local OTLP (:4328, :4327), sample host
    /// metrics, ship to the collector through a disk buffer.
    Agent(cmd::agent::AgentArgs),
    /// Search logs: full text plus field:value terms, newest first.
    Search(cmd::search::SearchCmd),
    /// Show one request's whole story: every span and log for a trace ID or request ID.
    Trace(cmd::trace::TraceCmd),
    /// Services with their rate, error rate and latency (RED, from spans); with a service
    /// name, its operations.
    Services(cmd::services::ServicesCmd),
    /// The service dependency graph: who calls whom, how often, how slow, how many fail.
    Deps(cmd::deps::DepsCmd),
    /// Query a metric (`skein metrics system.cpu.utilization --match host=web-1 --agg avg`);
    /// without a name, list the metrics.
    Metrics(cmd::metrics::MetricsCmd),
    /// Hosts with their agents' state and latest resource figures.
    Hosts(cmd::hosts::HostsCmd),
    /// A cluster of collectors: `skein cluster status`.
    Cluster(cmd::cluster::ClusterCmd),
    /// Pending and firing alerts; `--history` for state changes, `--notifications` for the
    /// receivers' delivery state.
    Alerts(cmd::alerts::AlertsCmd),
    /// Check rule files (`skein rules check alerts/`) or list a collector's rules.
    #[command(subcommand)]
    Rules(cmd::rules::RulesCmd),
    /// Add, list and expire silences.
    #[command(subcommand)]
    Silence(cmd::silence::SilenceCmd),
    /// The live terminal dashboard: overview, logs, traces, trace waterfall, metrics, alerts.
    Tui(cmd::tui::TuiCmd),
    /// Follow new log lines as they arrive (reconnects without gaps or repeats).
    Tail(cmd::tail::TailCmd),
    /// Run the whole stack with a food-delivery system (gateway, order, coupon, payment,
    /// delivery), load, faults, alerts and the dashboard; `skein demo fault` injects a fault.
    Demo(demo::DemoCmd),
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
            runtime.block_on(cmd::collector::run(args, shutdown::shutdown_signal()))
        }
        Command::Agent(args) => {
            init_tracing();
            runtime.block_on(cmd::agent::run(args, shutdown::shutdown_signal()))
        }
        Command::Search(args) => runtime.block_on(cmd::search::run(args)),
        Command::Trace(args) => runtime.block_on(cmd::trace::run(args)),
        Command::Services(args) => runtime.block_on(cmd::services::run(args)),
        Command::Deps(args) => runtime.block_on(cmd::deps::run(args)),
        Command::Metrics(args) => runtime.block_on(cmd::metrics::run(args)),
        Command::Hosts(args) => runtime.block_on(cmd::hosts::run(args)),
        Command::Cluster(args) => runtime.block_on(cmd::cluster::run(args)),
        Command::Alerts(args) => runtime.block_on(cmd::alerts::run(args)),
        Command::Rules(args) => runtime.block_on(cmd::rules::run(args)),
        Command::Tui(args) => cmd::tui::run(args),
        Command::Tail(args) => runtime.block_on(cmd::tail::run(args)),
        Command::Silence(args) => runtime.block_on(cmd::silence::run(args)),
        Command::Demo(args) => demo::main(args, &runtime),
    }
}

/// Logs to stderr, filtered by `SKEIN_LOG`; colored only on a terminal without `NO_COLOR`.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKEIN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tantivy=warn"));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}
