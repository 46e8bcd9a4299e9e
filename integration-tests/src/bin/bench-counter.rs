//! `bench-counter`: the benchmark's counter function, written once with `eddy-sdk` and
//! deployed three ways (what `eddy-bench-deployments` compares).
//!
//! `bench/counter` adds one to the `count` (a long) of its address for every message, whatever
//! the message holds, and has no other effect: the cost measured is the runtime's and the
//! transport's, plus the state update itself.
//!
//! - `bench-counter serve-http ADDR`: the function over HTTP (prints `listening on ADDR`);
//! - `bench-counter serve-lambda`: the function as a Lambda handler (needs the Lambda Runtime
//!   API environment, e.g. from `cargo lambda watch --only-lambda-apis`);
//! - `bench-counter <eddy arguments>`: the whole `eddy` command line with the function linked
//!   in, so `io.eddy.endpoints.v1/embedded` endpoints serve it in-process
//!   (`bench-counter run module.yaml`).

use anyhow::Context as _;
use eddy_sdk::{BoxError, Context, Functions, LongType, Message, ValueSpec};
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

/// The same allocator as `eddy` (see runtime/src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The function type.
const COUNTER: &str = "bench/counter";
/// Messages seen by the address.
const COUNT: ValueSpec<LongType> = ValueSpec::new("count", LongType);

async fn counter(context: Context, _message: Message) -> Result<(), BoxError> {
    let storage = context.storage();
    let count = storage.get(&COUNT)?.unwrap_or(0) + 1;
    storage.set(&COUNT, &count)?;
    Ok(())
}

fn functions() -> anyhow::Result<Functions> {
    Functions::new()
        .register(COUNTER, &[&COUNT], counter)
        .context("registering bench/counter")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let outcome = match args.get(1).map(String::as_str) {
        Some("serve-http") => serve_http(args.get(2).map(String::as_str)),
        Some("serve-lambda") => serve_lambda(),
        _ => {
            return match functions() {
                Ok(functions) => eddy_runtime::cli::main_with(Some(functions)),
                Err(error) => {
                    eprintln!("bench-counter: {error:#}");
                    ExitCode::from(1)
                }
            }
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-counter: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

fn serve_http(listen: Option<&str>) -> anyhow::Result<()> {
    let listen: SocketAddr = listen
        .unwrap_or("127.0.0.1:0")
        .parse()
        .context("serve-http takes a socket address, e.g. 127.0.0.1:9000")?;
    let functions = functions()?;
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let local = listener.local_addr().context("reading the bound address")?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "listening on {local}").context("writing to stdout")?;
        stdout.flush().context("writing to stdout")?;
        tokio::select! {
            served = eddy_sdk::http::serve(listener, functions) => served.context("serving HTTP"),
            signal = tokio::signal::ctrl_c() => signal.context("waiting for ctrl-c"),
        }
    })
}

fn serve_lambda() -> anyhow::Result<()> {
    let functions = functions()?;
    runtime()?.block_on(async move {
        eddy_sdk::lambda::run(functions)
            .await
            .map_err(|error| anyhow::anyhow!("lambda runtime: {error}"))
    })
}
