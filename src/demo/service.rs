//! `skein demo service <name>`: runs one service of [`skein_demo`] in this process (the demo
//! starts five of these). Prints `skein demo service <name> ready listen=ADDR` when it listens.

use clap::Args;
use skein_demo::{Addresses, ServiceConfig, ServiceName};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `skein demo service`.
#[derive(Args)]
pub(crate) struct ServiceArgs {
    /// gateway, order, coupon, payment or delivery.
    name: String,
    /// Where each service listens (this one included).
    #[arg(long)]
    gateway: SocketAddr,
    #[arg(long)]
    order: SocketAddr,
    #[arg(long)]
    coupon: SocketAddr,
    #[arg(long)]
    payment: SocketAddr,
    #[arg(long)]
    delivery: SocketAddr,
    /// OTLP/gRPC endpoint for spans (the agent's receiver).
    #[arg(long)]
    otlp: String,
    /// The JSON log file.
    #[arg(long)]
    log: PathBuf,
    /// host.name on the spans.
    #[arg(long, default_value = "demo-host")]
    host: String,
}

impl ServiceArgs {
    /// The command line that starts `name` (for the demo's spawner).
    pub(crate) fn command_line(
        name: ServiceName,
        a: &Addresses,
        otlp: &str,
        log: &std::path::Path,
        host: &str,
    ) -> Vec<String> {
        let mut v = vec![
            "demo".to_string(),
            "service".to_string(),
            name.as_str().into(),
        ];
        for (flag, addr) in [
            ("--gateway", a.gateway),
            ("--order", a.order),
            ("--coupon", a.coupon),
            ("--payment", a.payment),
            ("--delivery", a.delivery),
        ] {
            v.push(flag.into());
            v.push(addr.to_string());
        }
        v.extend([
            "--otlp".into(),
            otlp.into(),
            "--host".into(),
            host.into(),
            "--log".into(),
            log.display().to_string(),
        ]);
        v
    }
}

/// Runs `skein demo service`.
pub(crate) fn main(args: ServiceArgs, rt: &tokio::runtime::Runtime) -> ExitCode {
    let name: ServiceName = match args.name.parse() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("skein demo service: {e}");
            return ExitCode::from(crate::cli::EXIT_ERROR);
        }
    };
    let cfg = ServiceConfig {
        name,
        addresses: Addresses {
            gateway: args.gateway,
            order: args.order,
            coupon: args.coupon,
            payment: args.payment,
            delivery: args.delivery,
        },
        otlp_endpoint: args.otlp,
        log_file: args.log,
        host_name: args.host,
    };
    let result = rt.block_on(skein_demo::run_service(
        cfg,
        crate::shutdown::shutdown_signal(),
        move |addr| {
            let mut out = std::io::stdout();
            let _ = writeln!(
                out,
                "skein demo service {} ready listen={addr}",
                name.as_str()
            );
            let _ = out.flush();
        },
    ));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skein demo service {}: {e}", name.as_str());
            ExitCode::FAILURE
        }
    }
}
