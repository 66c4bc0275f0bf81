//! `skein cluster status`: the cluster as any node sees it.

use super::{ApiArgs, client, finish};
use crate::cli;
use clap::{Args, Subcommand};
use std::process::ExitCode;

#[derive(Args)]
pub struct ClusterCmd {
    #[command(subcommand)]
    what: ClusterWhat,
}

#[derive(Subcommand)]
enum ClusterWhat {
    /// Nodes, partitions with their owners and lag, the stream's state.
    Status {
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Runs `skein cluster ...`.
pub async fn run(cmd: ClusterCmd) -> ExitCode {
    match cmd.what {
        ClusterWhat::Status { api } => {
            let c = match client(&api) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let mut out = std::io::stdout().lock();
            finish(cli::cluster::status(&c, api.json, &mut out).await)
        }
    }
}
