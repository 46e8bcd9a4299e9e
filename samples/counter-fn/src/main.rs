//! `eddy-sample-counter`: a minimal, fast StateFun-protocol HTTP function server.
//!
//! It serves two functions, chosen by the last segment of the request path: `counter` (keeps a
//! per-address count, optionally greets each visitor on an egress) and `echo` (no side
//! effects: the benchmark's bare-transport baseline). It also measures the latency of
//! benchmark pings and reports counters at `GET /stats`. Used by `scripts/demo.sh`
//! (`samples/counter/`) and by the `eddy-bench` harness.

mod logic;
mod server;
mod stats;

use anyhow::Context as _;
use clap::Parser;
use logic::EgressId;
use std::net::SocketAddr;
use std::sync::Arc;

/// A StateFun-protocol HTTP function server with a `counter` and an `echo` function.
#[derive(Debug, Parser)]
#[command(name = "eddy-sample-counter", version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Egress (`namespace/name`) that receives a greeting for each message to `counter`.
    #[arg(long)]
    egress: Option<EgressId>,
    /// Worker threads of the server.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.threads == 0 {
        anyhow::bail!("--threads must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cli.listen)
            .await
            .with_context(|| format!("binding {}", cli.listen))?;
        let local = listener.local_addr().context("reading the bound address")?;
        eprintln!(
            "eddy-sample-counter: listening on {local} (egress: {})",
            cli.egress
                .as_ref()
                .map(|id| format!("{}/{}", id.namespace, id.name))
                .unwrap_or_else(|| "none".into())
        );
        let app = Arc::new(server::App {
            egress: cli.egress,
            stats: stats::Stats::default(),
        });
        tokio::select! {
            served = server::serve(listener, app) => served.context("serving")?,
            _ = shutdown_signal() => eprintln!("eddy-sample-counter: shutting down"),
        }
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
