//! `eddy-bench-deployments`: one counter function written with `eddy-sdk`
//! (`bench-counter`), the same workload, three deployments (not a test).
//!
//! For each deployment it starts fresh processes, pushes N messages over K keys through eddy's
//! HTTP ingress (C connections posting chunks of M JSON lines) and waits until eddy's
//! `GET /v1/stats` says the function has handled all of them (`processed`):
//! - **embedded**: `bench-counter run module.yaml` — the `eddy` command line with the function
//!   linked in, an `io.eddy.endpoints.v1/embedded` endpoint;
//! - **http**: `eddy` + `bench-counter serve-http`, an `io.statefun.endpoints.v2/http` endpoint;
//! - **lambda**: `eddy` + `cargo lambda watch --only-lambda-apis` (the local Lambda Invoke and
//!   Runtime APIs) + `bench-counter serve-lambda` instances polling it, an
//!   `io.eddy.endpoints.v1/lambda` endpoint.
//!
//! Reports messages/s, the average batch (processed / function requests), eddy's peak RSS
//! and CPU time; `--runs R` repeats everything and reports medians. Needs release binaries
//! (`cargo build --release -p eddy-runtime -p eddy-integration-tests --bins`) and, for lambda,
//! `./scripts/setup-lambda.sh`.

use anyhow::{bail, Context as _};
use clap::{Parser, ValueEnum};
use eddy_integration_tests::bench::{
    cpu_seconds, file_len, free_addr, median_of, proc_status_kb, push, tail, terminate,
    AbortOnDrop, Client, IngressFormat,
};
use eddy_integration_tests::{scenarios, TestDir};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How often progress is polled.
const POLL: Duration = Duration::from_millis(5);
/// How long processes get to start.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// The function's name on the Lambda emulator.
const LAMBDA_FUNCTION: &str = "bench-counter";
/// Typename of the pushed messages (the counter ignores their value).
const TYPENAME: &str = "eddy.bench/ping";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Deployment {
    Embedded,
    Http,
    Lambda,
}

impl Deployment {
    fn name(self) -> &'static str {
        match self {
            Deployment::Embedded => "embedded",
            Deployment::Http => "http",
            Deployment::Lambda => "lambda",
        }
    }
}

/// The same counter function embedded, over HTTP and on a local Lambda emulator.
#[derive(Debug, Parser)]
#[command(name = "eddy-bench-deployments", version)]
struct Cli {
    /// Deployments to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "embedded,http,lambda")]
    deployments: Vec<Deployment>,
    /// Messages per run (embedded and http).
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Messages per run on lambda (far slower: every batch crosses the emulator).
    #[arg(long, default_value_t = 100_000)]
    lambda_messages: u64,
    /// Distinct keys (addresses) the messages are spread over, round robin.
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Ingress connections pushing at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// JSON lines per ingress request.
    #[arg(long, default_value_t = 1000)]
    chunk: u64,
    /// `maxNumBatchRequests` of the endpoint.
    #[arg(long, default_value_t = 1000)]
    max_batch: usize,
    /// `bench-counter serve-lambda` instances polling the emulator (Lambda's concurrency).
    #[arg(long, default_value_t = 4)]
    lambda_instances: usize,
    /// Repetitions of each deployment (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds before a run is abandoned.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Use target/debug binaries instead of target/release.
    #[arg(long)]
    debug: bool,
}

#[derive(Debug, Clone, Default)]
struct RunResult {
    messages: u64,
    msgs_per_s: f64,
    avg_batch: f64,
    peak_rss_kb: u64,
    eddy_cpu_s: f64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.messages == 0 || cli.lambda_messages == 0 || cli.keys == 0 {
        bail!("--messages, --lambda-messages and --keys must be at least 1");
    }
    if cli.concurrency == 0 || cli.chunk == 0 || cli.runs == 0 || cli.lambda_instances == 0 {
        bail!("--concurrency, --chunk, --runs and --lambda-instances must be at least 1");
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting tokio")?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let bins = Binaries::locate(&cli)?;
    let mut rows = Vec::new();
    for &deployment in &cli.deployments {
        let mut runs = Vec::new();
        for run in 0..cli.runs {
            let dir = TestDir::new(&format!("bench-{}-{run}", deployment.name()));
            let result = measure(&cli, &bins, deployment, &dir)
                .await
                .with_context(|| format!("{} run {}", deployment.name(), run + 1))?;
            eprintln!(
                "{} run {}: {:.0} msg/s, avg batch {:.1}, peak rss {} KiB, eddy cpu {:.1}s",
                deployment.name(),
                run + 1,
                result.msgs_per_s,
                result.avg_batch,
                result.peak_rss_kb,
                result.eddy_cpu_s
            );
            runs.push(result);
        }
        rows.push((deployment, runs));
    }
    println!(
        "\n{} keys, medians of {} runs (messages: {} embedded/http, {} lambda)\n",
        cli.keys, cli.runs, cli.messages, cli.lambda_messages
    );
    println!("| deployment | msg/s | avg batch | eddy peak RSS | eddy CPU s |");
    println!("|---|---:|---:|---:|---:|");
    let mut json_rows = Vec::new();
    for (deployment, runs) in &rows {
        let rate = median_of(runs, |r| r.msgs_per_s);
        let batch = median_of(runs, |r| r.avg_batch);
        let rss = median_of(runs, |r| r.peak_rss_kb as f64);
        let cpu = median_of(runs, |r| r.eddy_cpu_s);
        println!(
            "| {} | {:.0} | {:.1} | {:.0} MiB | {:.1} |",
            deployment.name(),
            rate,
            batch,
            rss / 1024.0,
            cpu
        );
        json_rows.push(json!({
            "deployment": deployment.name(),
            "messages": runs.first().map_or(0, |r| r.messages),
            "msgs_per_s": rate,
            "avg_batch": batch,
            "peak_rss_kb": rss,
            "eddy_cpu_s": cpu,
            "runs": runs.iter().map(|r| r.msgs_per_s).collect::<Vec<_>>(),
        }));
    }
    println!("\n{}", json!({ "keys": cli.keys, "results": json_rows }));
    Ok(())
}

struct Binaries {
    eddy: PathBuf,
    counter: PathBuf,
}

impl Binaries {
    fn locate(cli: &Cli) -> anyhow::Result<Binaries> {
        let profile = if cli.debug { "debug" } else { "release" };
        let dir = eddy_integration_tests::target_dir().join(profile);
        let flag = if cli.debug { "" } else { " --release" };
        let find = |name: &str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                bail!(
                    "{} not found: run `cargo build{flag} -p eddy-runtime -p eddy-integration-tests --bins` first",
                    path.display()
                )
            }
        };
        Ok(Binaries {
            eddy: find("eddy")?,
            counter: find("bench-counter")?,
        })
    }
}

/// A child process whose output goes to a log file; killed when dropped.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(
        program: &Path,
        args: &[&str],
        dir: &Path,
        log_name: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Proc> {
        let log = dir.join(log_name);
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone().context("cloning a log handle")?;
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .env("RUST_LOG", "warn");
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Proc { child, log })
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Waits until the log has a line starting with `prefix`; returns the rest of that line.
    async fn wait_for_line(&mut self, prefix: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(rest) = text.lines().find_map(|line| line.strip_prefix(prefix)) {
                return Ok(rest.trim().to_string());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "exited ({status}) before printing {prefix:?}: {}",
                    tail(&self.log, 2000)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "no {prefix:?} within {START_DEADLINE:?}: {}",
                    tail(&self.log, 2000)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

async fn measure(
    cli: &Cli,
    bins: &Binaries,
    deployment: Deployment,
    dir: &TestDir,
) -> anyhow::Result<RunResult> {
    // Function processes, and the emulator (a harness process, killed when dropped).
    let mut helpers: Vec<Proc> = Vec::new();
    let mut _emulator = None;
    let mut eddy_env: Vec<(&str, &str)> = Vec::new();
    let (eddy_bin, endpoint) = match deployment {
        Deployment::Embedded => (
            &bins.counter,
            format!(
                "kind: io.eddy.endpoints.v1/embedded\nspec:\n  functions: bench/*\n  \
                 maxNumBatchRequests: {}\n",
                cli.max_batch
            ),
        ),
        Deployment::Http => {
            let mut function = Proc::spawn(
                &bins.counter,
                &["serve-http", "127.0.0.1:0"],
                dir.path(),
                "function.log",
                &[],
            )?;
            let addr: SocketAddr = function
                .wait_for_line("listening on ")
                .await?
                .parse()
                .context("reading the function's address")?;
            helpers.push(function);
            (
                &bins.eddy,
                format!(
                    "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: bench/*\n  \
                     urlPathTemplate: http://{addr}/{{function.name}}\n  \
                     maxNumBatchRequests: {}\n  transport:\n    timeouts:\n      call: 60s\n",
                    cli.max_batch
                ),
            )
        }
        Deployment::Lambda => {
            let (emulator, addr) = scenarios::lambda_emulator(dir, LAMBDA_FUNCTION).await;
            _emulator = Some(emulator);
            let runtime_api = format!("http://{addr}/.rt/{LAMBDA_FUNCTION}");
            for instance in 0..cli.lambda_instances {
                let stream = format!("bench-{instance}");
                helpers.push(Proc::spawn(
                    &bins.counter,
                    &["serve-lambda"],
                    dir.path(),
                    &format!("lambda-{instance}.log"),
                    &[
                        ("AWS_LAMBDA_RUNTIME_API", runtime_api.as_str()),
                        ("AWS_LAMBDA_FUNCTION_NAME", LAMBDA_FUNCTION),
                        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
                        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
                        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench-counter"),
                        ("AWS_LAMBDA_LOG_STREAM_NAME", stream.as_str()),
                    ],
                )?);
            }
            eddy_env.extend(scenarios::TEST_AWS_ENVIRONMENT);
            (
                &bins.eddy,
                format!(
                    "kind: io.eddy.endpoints.v1/lambda\nspec:\n  functions: bench/*\n  \
                     functionName: {LAMBDA_FUNCTION}\n  region: us-east-1\n  \
                     endpointUrl: http://{addr}\n  maxNumBatchRequests: {}\n  \
                     maxConcurrency: {}\n  timeouts:\n    call: 60s\n",
                    cli.max_batch, cli.lambda_instances
                ),
            )
        }
    };
    let messages = match deployment {
        Deployment::Lambda => cli.lambda_messages,
        _ => cli.messages,
    };

    let ingress = free_addr()?;
    let module = format!(
        "{endpoint}---\nkind: io.eddy.http.v1/ingress\nspec:\n  id: bench/http\n  bind: {ingress}\n"
    );
    let module_path = dir.write("module.yaml", &module);
    let dead_letters = dir.join("dead-letters.jsonl");
    let module_arg = module_path.display().to_string();
    let dead_letters_arg = dead_letters.display().to_string();
    let mut eddy = Proc::spawn(
        eddy_bin,
        &["run", &module_arg, "--dead-letters", &dead_letters_arg],
        dir.path(),
        "eddy.log",
        &eddy_env,
    )?;
    let mut client = Client::new(ingress);
    let ready = Instant::now() + START_DEADLINE;
    while client
        .request(Method::GET, "/v1/health", bytes::Bytes::new())
        .await
        .is_err()
    {
        if let Some(status) = eddy.child.try_wait()? {
            bail!("eddy exited ({status}) at start: {}", tail(&eddy.log, 2000));
        }
        if Instant::now() > ready {
            bail!(
                "eddy's ingress did not answer within {START_DEADLINE:?}: {}",
                tail(&eddy.log, 2000)
            );
        }
        tokio::time::sleep(POLL).await;
    }

    let started = Instant::now();
    let mut pushed = false;
    let mut pushing = AbortOnDrop(tokio::spawn(push(
        ingress,
        (0, messages),
        cli.keys,
        cli.concurrency,
        cli.chunk,
        "bench/counter/k",
        TYPENAME,
        IngressFormat::Json,
    )));
    let deadline = started + Duration::from_secs(cli.timeout);
    let stats = loop {
        let stats = eddy_stats(&mut client).await?;
        if stats.processed >= messages {
            break stats;
        }
        if !pushed && pushing.0.is_finished() {
            finish_push(&mut pushing).await?;
            pushed = true;
        }
        if let Some(status) = eddy.child.try_wait()? {
            bail!(
                "eddy exited ({status}) after {} of {messages} messages: {}",
                stats.processed,
                tail(&eddy.log, 2000)
            );
        }
        if file_len(&dead_letters) > 0 {
            bail!(
                "eddy wrote dead letters after {} of {messages} messages: {}",
                stats.processed,
                tail(&dead_letters, 2000)
            );
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {messages} messages handled after {}s",
                stats.processed,
                cli.timeout
            );
        }
        tokio::time::sleep(POLL).await;
    };
    let elapsed = started.elapsed();
    if !pushed {
        finish_push(&mut pushing).await?;
    }
    let peak_rss_kb = proc_status_kb(eddy.pid(), "VmHWM").unwrap_or(0);
    let eddy_cpu_s = cpu_seconds(eddy.pid()).unwrap_or(0.0);
    terminate(&mut eddy.child).await?;
    for mut helper in helpers {
        let _ = terminate(&mut helper.child).await;
    }
    let requests = stats.invocations.saturating_sub(stats.negotiations).max(1);
    Ok(RunResult {
        messages,
        msgs_per_s: messages as f64 / elapsed.as_secs_f64(),
        avg_batch: stats.processed as f64 / requests as f64,
        peak_rss_kb,
        eddy_cpu_s,
    })
}

/// Awaits the push task and reports its failure.
async fn finish_push(pushing: &mut AbortOnDrop<anyhow::Result<Duration>>) -> anyhow::Result<()> {
    match (&mut pushing.0).await {
        Ok(result) => result.map(|_| ()).context("pushing to eddy's HTTP ingress"),
        Err(join) => bail!("the push task failed: {join}"),
    }
}

/// The counters of eddy's `GET /v1/stats` this benchmark reads.
struct EddyStats {
    processed: u64,
    invocations: u64,
    negotiations: u64,
}

async fn eddy_stats(client: &mut Client) -> anyhow::Result<EddyStats> {
    let (status, body) = client
        .request(Method::GET, "/v1/stats", bytes::Bytes::new())
        .await?;
    if status != StatusCode::OK {
        bail!("GET /v1/stats: {status}");
    }
    let value: Value = serde_json::from_slice(&body).context("parsing /v1/stats")?;
    let number = |field: &str| value.get(field).and_then(Value::as_u64).unwrap_or(0);
    Ok(EddyStats {
        processed: number("processed"),
        invocations: number("invocations"),
        negotiations: number("negotiations"),
    })
}
