//! When the long-running commands (`skein collector`, `skein agent`, the demo and its
//! services) stop.

use crate::demo;

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
