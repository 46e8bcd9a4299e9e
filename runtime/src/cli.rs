//! The `eddy` command line as a library function, [`main_with`], so that a program can link its
//! own `eddy-sdk` functions into the runtime (embedded endpoints) and still be the whole CLI.
//!
//! - `eddy run <module.yaml>` runs the runtime until SIGINT/SIGTERM, then drains and exits.
//! - `eddy validate <module.yaml>` checks a module file and summarises it.
//! - `eddy send <ns/name/id> --string hi` sends one message through an HTTP ingress.
//!
//! Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 invalid module, 4 send failed.

use crate::client::{self, ClientValue};
use crate::invoker::embedded::check_selectors;
use crate::runtime::Options;
use crate::spec::{self, EgressSpec, EndpointTarget, IngressSpec, ModuleSpec};
use crate::Error;
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const EXIT_RUNTIME: u8 = 1;
const EXIT_INVALID_MODULE: u8 = 3;
const EXIT_SEND_FAILED: u8 = 4;

/// Eddy: an event-driven database for serverless functions (StateFun-compatible).
#[derive(Parser)]
#[command(name = "eddy", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the state tier for a module file until SIGINT/SIGTERM.
    Run(RunArgs),
    /// Check a module file; exit 0 if valid, 3 with a precise error if not.
    Validate {
        /// The module file (StateFun 3.x module.yaml).
        module: PathBuf,
    },
    /// Send one message through an HTTP ingress; exit 0 when accepted, 4 otherwise.
    Send(SendArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The module file (StateFun 3.x module.yaml).
    module: PathBuf,
    /// Dead-letter file (JSON lines); overrides the module's io.eddy.runtime.v1/config.
    #[arg(long, value_name = "PATH")]
    dead_letters: Option<PathBuf>,
    /// Number of partition workers (default: number of CPU cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: Option<u16>,
    /// Longest wait at shutdown for queued and in-flight work, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    drain_timeout: u64,
}

#[derive(Args)]
struct SendArgs {
    /// Target address: namespace/name/id, e.g. com.example/greeter/alice.
    target: String,
    /// Base URL of the HTTP ingress.
    #[arg(long, default_value = "http://127.0.0.1:8090", env = "EDDY_INGRESS")]
    ingress: String,
    /// Typename of the value (defaults to the built-in type of the value flag, or the
    /// ingress's valueType for --json/--base64).
    #[arg(long)]
    typename: Option<String>,
    #[command(flatten)]
    value: ValueArgs,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct ValueArgs {
    /// A io.statefun.types/string value.
    #[arg(long)]
    string: Option<String>,
    /// A io.statefun.types/long value.
    #[arg(long, allow_hyphen_values = true)]
    long: Option<i64>,
    /// A io.statefun.types/int value.
    #[arg(long, allow_hyphen_values = true)]
    int: Option<i32>,
    /// A io.statefun.types/bool value.
    #[arg(long)]
    bool: Option<bool>,
    /// A io.statefun.types/double value.
    #[arg(long, allow_hyphen_values = true)]
    double: Option<f64>,
    /// A io.statefun.types/float value.
    #[arg(long, allow_hyphen_values = true)]
    float: Option<f32>,
    /// A JSON value (sent as compact JSON text; give --typename).
    #[arg(long)]
    json: Option<String>,
    /// Raw bytes, base64-encoded (give --typename).
    #[arg(long)]
    base64: Option<String>,
}

/// The whole `eddy` command line (`run`, `validate`, `send`), with `embedded` functions linked
/// in: what `eddy`'s `main` calls with `None`, and a user's own binary with its functions.
///
/// ```no_run
/// use std::process::ExitCode;
///
/// fn main() -> ExitCode {
///     let functions = eddy_sdk::Functions::new(); // register your functions here
///     eddy_runtime::cli::main_with(Some(functions))
/// }
/// ```
pub fn main_with(embedded: Option<eddy_sdk::Functions>) -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("eddy: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run(args, embedded).await,
            Command::Validate { module } => validate(&module, embedded.as_ref()),
            Command::Send(args) => send(args).await,
        }
    })
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(args: RunArgs, embedded: Option<eddy_sdk::Functions>) -> ExitCode {
    let module = match spec::load(&args.module) {
        Ok(module) => module,
        Err(error) => return invalid(&error),
    };
    let mut options = Options::new(module);
    options.dead_letters = args.dead_letters;
    options.workers = args.workers.map(usize::from);
    options.drain_timeout = Duration::from_secs(args.drain_timeout);
    options.embedded = embedded;
    let runtime = match options.build().await {
        Ok(runtime) => runtime,
        Err(error @ (Error::Config { .. } | Error::Unsupported { .. })) => return invalid(&error),
        Err(error) => {
            eprintln!("eddy: cannot start: {error}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    for (id, address) in runtime.handle().http_ingress_addresses() {
        eprintln!("eddy: listening ingress {id} on {address}");
    }
    match runtime.run(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("eddy: {error}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn invalid(error: &Error) -> ExitCode {
    eprintln!("eddy: invalid module: {error}");
    ExitCode::from(EXIT_INVALID_MODULE)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops eddy");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutdown signal received");
}

/// Checks the module file; with functions linked in, also its embedded endpoints against them.
fn validate(path: &Path, embedded: Option<&eddy_sdk::Functions>) -> ExitCode {
    let module = match spec::load(path) {
        Ok(module) => module,
        Err(error) => return invalid(&error),
    };
    if embedded.is_some() {
        if let Err(error) = check_selectors(&module, embedded) {
            return invalid(&error);
        }
    }
    println!("{}", summary(&module, embedded.is_some()));
    ExitCode::SUCCESS
}

fn summary(module: &ModuleSpec, linked: bool) -> String {
    let mut lines = vec![format!("{}: valid", module.path.display())];
    for endpoint in &module.endpoints {
        lines.push(match &endpoint.target {
            EndpointTarget::Http(target) => format!(
                "  endpoint  {} -> {} (maxNumBatchRequests {}, call timeout {:?})",
                endpoint.functions,
                target.url_path_template,
                endpoint.max_num_batch_requests,
                target.transport.call
            ),
            EndpointTarget::Lambda(target) => format!(
                "  endpoint  {} -> {} (maxNumBatchRequests {}, maxConcurrency {}, call timeout \
                 {:?})",
                endpoint.functions,
                endpoint.target.describe(),
                endpoint.max_num_batch_requests,
                target.max_concurrency,
                target.call
            ),
            EndpointTarget::Embedded => format!(
                "  endpoint  {} -> embedded (maxNumBatchRequests {}){}",
                endpoint.functions,
                endpoint.max_num_batch_requests,
                if linked {
                    ""
                } else {
                    "; runs only in a binary with the functions linked in \
                     (eddy_runtime::cli::main_with)"
                }
            ),
        });
    }
    for ingress in &module.ingresses {
        lines.push(match ingress {
            IngressSpec::Http(spec) => format!("  ingress   {} http on {}", spec.id, spec.bind),
            IngressSpec::File(spec) => {
                format!("  ingress   {} file {}", spec.id, spec.path.display())
            }
            IngressSpec::Kafka(spec) => format!(
                "  ingress   {} kafka {} (not runnable yet)",
                spec.id, spec.address
            ),
            IngressSpec::Kinesis(spec) => {
                format!("  ingress   {} kinesis (not runnable yet)", spec.id)
            }
        });
    }
    for egress in &module.egresses {
        lines.push(match egress {
            EgressSpec::Stdout { id, .. } => format!("  egress    {id} stdout"),
            EgressSpec::File { id, path, .. } => {
                format!("  egress    {id} file {}", path.display())
            }
            EgressSpec::Kafka(spec) => format!(
                "  egress    {} kafka {} (not runnable yet)",
                spec.id, spec.address
            ),
            EgressSpec::Kinesis(spec) => {
                format!("  egress    {} kinesis (not runnable yet)", spec.id)
            }
        });
    }
    lines.join("\n")
}

async fn send(args: SendArgs) -> ExitCode {
    match send_inner(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("eddy: send failed: {error}");
            ExitCode::from(EXIT_SEND_FAILED)
        }
    }
}

async fn send_inner(args: SendArgs) -> Result<(), String> {
    let ValueArgs {
        string,
        long,
        int,
        bool,
        double,
        float,
        json,
        base64,
    } = args.value;
    let value = if let Some(value) = string {
        ClientValue::String(value)
    } else if let Some(value) = long {
        ClientValue::Long(value)
    } else if let Some(value) = int {
        ClientValue::Int(value)
    } else if let Some(value) = bool {
        ClientValue::Bool(value)
    } else if let Some(value) = double {
        ClientValue::Double(value)
    } else if let Some(value) = float {
        ClientValue::Float(value)
    } else if let Some(text) = json {
        ClientValue::Json(
            serde_json::from_str(&text)
                .map_err(|error| format!("--json is not valid JSON: {error}"))?,
        )
    } else if let Some(text) = base64 {
        use base64::Engine as _;
        ClientValue::Bytes(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|error| format!("--base64 is not valid base64: {error}"))?,
        )
    } else {
        return Err("give one value flag, e.g. --string hello".to_string());
    };
    // The client's errors already name their cause; no chain to append.
    client::send(&args.ingress, &args.target, args.typename.as_deref(), value)
        .await
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_describes_every_endpoint_kind() {
        let text = "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n  \
                    urlPathTemplate: http://h/{function.name}\n---\n\
                    kind: io.eddy.endpoints.v1/lambda\nspec:\n  functions: b/*\n  \
                    functionName: \"{function.name}\"\n  qualifier: live\n  \
                    endpointUrl: http://127.0.0.1:9000\n---\n\
                    kind: io.eddy.endpoints.v1/embedded\nspec:\n  functions: c/*\n";
        let module = spec::parse_str(Path::new("/m/module.yaml"), text).expect("valid");
        let lines: Vec<String> = summary(&module, false)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "/m/module.yaml: valid",
                "  endpoint  a/* -> http://h/{function.name} (maxNumBatchRequests 1000, call \
                 timeout 60s)",
                "  endpoint  b/* -> lambda {function.name}:live at http://127.0.0.1:9000 \
                 (maxNumBatchRequests 1000, maxConcurrency 100, call timeout 60s)",
                "  endpoint  c/* -> embedded (maxNumBatchRequests 1000); runs only in a binary \
                 with the functions linked in (eddy_runtime::cli::main_with)",
            ]
        );
        let linked = summary(&module, true);
        assert!(
            linked.ends_with("  endpoint  c/* -> embedded (maxNumBatchRequests 1000)"),
            "{linked}"
        );
    }
}
