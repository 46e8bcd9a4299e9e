//! `reminder-http`: serves the reminder sample's functions over HTTP.
//!
//! `reminder-http --listen 127.0.0.1:9000` answers the StateFun request-reply protocol on any
//! path (`http.yaml` uses `/{function.name}`) and prints `listening on ADDR` on stdout once it
//! accepts connections (`--listen 127.0.0.1:0` picks a free port). Logs go to stderr
//! (`RUST_LOG`, default `info`).

use anyhow::Context as _;
use clap::Parser;
use std::io::Write as _;
use std::net::SocketAddr;

/// Serve the reminder sample's functions over HTTP.
#[derive(Debug, Parser)]
#[command(name = "reminder-http", version)]
struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}: pick another --listen address",
                cli.listen
            )
        })?;
    let local = listener.local_addr().context("reading the bound address")?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {local}").context("writing to stdout")?;
    stdout.flush().context("writing to stdout")?;
    let functions = eddy_sample_reminder::functions();
    tokio::select! {
        served = eddy_sdk::http::serve(listener, functions) => served.context("serving HTTP")?,
        signal = tokio::signal::ctrl_c() => signal.context("waiting for ctrl-c")?,
    }
    Ok(())
}
