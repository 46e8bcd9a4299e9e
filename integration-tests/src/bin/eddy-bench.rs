//! `eddy-bench`: the benchmark harness (not a test).
//!
//! It starts the real `eddy` binary and `eddy-sample-counter` from one target directory and
//! measures, for each key count K:
//! - **throughput**: N `eddy.bench/ping` messages over K keys pushed through the HTTP ingress
//!   (`POST /v1/messages`, C connections posting chunks of M JSON lines) until the function
//!   has seen all of them; messages/s = N / elapsed;
//! - **latency**: send-to-function p50/p90/p99/max from the function's histogram (each ping
//!   carries its send time);
//! - **batching**: average batch size the function saw (messages / batches);
//! - **memory**: eddy's peak RSS (`VmHWM`);
//! - **baseline**: the same N messages posted straight to the function's `echo` path as
//!   `ToFunction` batches of the same average size, over as many keep-alive connections as
//!   eddy used, and the ratio eddy / baseline.
//!
//! With `--idle-addresses A` it also sends one message to each of A distinct keys and reports
//! eddy's RSS afterwards and per million addresses. `--runs R` repeats every measurement
//! with fresh processes and reports medians. Output: a readable table, then one JSON line.

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use clap::Parser;
use eddy_integration_tests::bench::{
    cpu_seconds, file_len, free_addr, median_of, median_opt, now_micros, proc_status_kb, push,
    tail, terminate, AbortOnDrop, Client, IngressFormat, PROCESS_DEADLINE,
};
use eddy_protocol::reqreply::to_function::{self, Invocation, InvocationBatchRequest};
use eddy_protocol::{Address, BuiltIn, Message, ToFunction, TypedValue};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Typename of a ping: 8 bytes little-endian, send time in µs since the UNIX epoch.
const PING_TYPENAME: &str = "eddy.bench/ping";
/// How often progress is polled.
const POLL: Duration = Duration::from_millis(5);

/// Benchmark of eddy against the bare HTTP transport.
#[derive(Debug, Parser)]
#[command(name = "eddy-bench", version)]
struct Cli {
    /// Cargo profile whose binaries are run (`release` or `debug`).
    #[arg(long, default_value = "release")]
    profile: String,
    /// Cargo target directory (default: $CARGO_TARGET_DIR, else `<workspace>/target`).
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Messages per run (N).
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Key counts to measure (K), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10000")]
    keys: Vec<u64>,
    /// Concurrent ingress connections (C).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Messages per ingress request (M).
    #[arg(long, default_value_t = 1000)]
    chunk: u64,
    /// Body format of the ingress requests.
    #[arg(long, value_enum, default_value = "json")]
    ingress_format: IngressFormat,
    /// The endpoint's `maxNumBatchRequests`.
    #[arg(long, default_value_t = 1000)]
    max_batch: usize,
    /// Repetitions of each measurement (medians are reported).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Also measure idle memory with this many distinct addresses (e.g. 1000000).
    #[arg(long)]
    idle_addresses: Option<u64>,
    /// Idle memory: addresses loaded per wave (each wave processed before the next).
    #[arg(long, default_value_t = 20_000)]
    idle_wave: u64,
    /// Only the idle-memory measurement (needs --idle-addresses).
    #[arg(long, requires = "idle_addresses")]
    idle_only: bool,
    /// `eddy run --workers`.
    #[arg(long)]
    workers: Option<usize>,
    /// Server threads of eddy-sample-counter.
    #[arg(long, default_value_t = 2)]
    fn_threads: usize,
    /// Connections of the baseline (default: as many as eddy used towards the function).
    #[arg(long)]
    baseline_concurrency: Option<usize>,
    /// Skip the baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Run only the baseline (no eddy), with batches of this many messages.
    #[arg(long)]
    baseline_only: Option<u64>,
    /// Longest wait for one run's messages to be processed, in seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// RUST_LOG for eddy.
    #[arg(long, default_value = "warn")]
    eddy_log: String,
    /// Keep the temporary folder (module files, logs) even on success.
    #[arg(long)]
    keep: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.messages == 0 || cli.chunk == 0 || cli.concurrency == 0 || cli.runs == 0 {
        bail!("--messages, --chunk, --concurrency and --runs must be at least 1");
    }
    if cli.keys.contains(&0) {
        bail!("--keys must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let bins = Binaries::locate(&cli)?;
    let work = std::env::temp_dir().join(format!("eddy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    eprintln!(
        "eddy-bench: eddy = {}, function = {}, work dir = {}",
        bins.eddy.display(),
        bins.function.display(),
        work.display()
    );
    let mut report = Report::default();
    let mut sequence = 0usize;
    if let Some(batch) = cli.baseline_only {
        for &keys in &cli.keys {
            for run in 1..=cli.runs {
                sequence += 1;
                let dir = work.join(format!("run-{sequence}"));
                let result = baseline_only_run(&cli, &bins, &dir, keys, batch.max(1)).await?;
                eprintln!(
                    "eddy-bench: baseline only, K={keys} run {run}/{}: {}",
                    cli.runs,
                    result.one_line()
                );
            }
        }
        if !cli.keep {
            let _ = std::fs::remove_dir_all(&work);
        }
        return Ok(());
    }
    let throughput_keys: &[u64] = if cli.idle_only { &[] } else { &cli.keys };
    for &keys in throughput_keys {
        let mut runs = Vec::new();
        for run in 1..=cli.runs {
            sequence += 1;
            eprintln!(
                "eddy-bench: K={keys} run {run}/{}: {} messages, {} connections x {} lines",
                cli.runs, cli.messages, cli.concurrency, cli.chunk
            );
            let dir = work.join(format!("run-{sequence}"));
            let result = throughput_run(&cli, &bins, &dir, keys).await?;
            eprintln!("eddy-bench:   {}", result.one_line());
            runs.push(result);
        }
        report.throughput.push((keys, runs));
    }
    if let Some(addresses) = cli.idle_addresses {
        for run in 1..=cli.runs {
            sequence += 1;
            eprintln!(
                "eddy-bench: idle memory run {run}/{}: {addresses} addresses",
                cli.runs
            );
            let dir = work.join(format!("run-{sequence}"));
            let result = idle_run(&cli, &bins, &dir, addresses).await?;
            eprintln!(
                "eddy-bench:   rss {} KiB ({} KiB at start), {:.0} MiB per 1M addresses",
                result.rss_kb, result.start_rss_kb, result.mib_per_million
            );
            report.idle.push(result);
        }
    }
    print!("{}", report.table(&cli));
    println!("{}", report.json(&cli));
    if !cli.keep {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(())
}

/// The two binaries under test.
struct Binaries {
    eddy: PathBuf,
    function: PathBuf,
}

impl Binaries {
    fn locate(cli: &Cli) -> anyhow::Result<Binaries> {
        let target = match (&cli.target_dir, std::env::var_os("CARGO_TARGET_DIR")) {
            (Some(dir), _) => dir.clone(),
            (None, Some(dir)) => PathBuf::from(dir),
            (None, None) => Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .map(|root| root.join("target"))
                .ok_or_else(|| anyhow!("cannot find the workspace root"))?,
        };
        let dir = target.join(&cli.profile);
        let flag = if cli.profile == "release" {
            " --release"
        } else {
            ""
        };
        let find = |name: &str| -> anyhow::Result<PathBuf> {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                bail!(
                    "{} not found: run `cargo build{flag} --bins` first",
                    path.display()
                )
            }
        };
        Ok(Binaries {
            eddy: if cli.baseline_only.is_some() {
                dir.join("eddy")
            } else {
                find("eddy")?
            },
            function: find("eddy-sample-counter")?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// One throughput run.

/// What one run measured.
#[derive(Debug, Clone, Default)]
struct RunResult {
    messages: u64,
    elapsed_s: f64,
    /// Time until the last chunk was admitted by the ingress.
    admitted_s: f64,
    msgs_per_s: f64,
    latency: Latency,
    avg_batch: f64,
    batches: u64,
    /// Distinct connections eddy used towards the function.
    connections: u64,
    /// Connections the function accepted during the run.
    connections_accepted: u64,
    /// CPU seconds (user + system) eddy used, start-up included.
    eddy_cpu_s: f64,
    /// CPU seconds the function used during the eddy run (start-up included).
    fn_cpu_s: f64,
    peak_rss_kb: u64,
    baseline_msgs_per_s: Option<f64>,
    baseline_concurrency: usize,
    baseline_batch: u64,
    ratio: Option<f64>,
    eddy_exit: String,
}

impl RunResult {
    fn one_line(&self) -> String {
        let mut line = format!(
            "{:.0} msg/s in {:.2}s (admitted in {:.2}s), p50 {} us, p99 {} us, avg batch {:.1}, \
             {} fn connections ({} accepted), peak rss {} KiB, cpu eddy {:.1}s fn {:.1}s",
            self.msgs_per_s,
            self.elapsed_s,
            self.admitted_s,
            self.latency.p50,
            self.latency.p99,
            self.avg_batch,
            self.connections,
            self.connections_accepted,
            self.peak_rss_kb,
            self.eddy_cpu_s,
            self.fn_cpu_s,
        );
        if let (Some(baseline), Some(ratio)) = (self.baseline_msgs_per_s, self.ratio) {
            let _ = write!(
                line,
                "; baseline {baseline:.0} msg/s ({} conns, batch {}), ratio {ratio:.3}",
                self.baseline_concurrency, self.baseline_batch
            );
        }
        line
    }
}

/// The function's latency histogram summary, in µs.
#[derive(Debug, Clone, Copy, Default)]
struct Latency {
    count: u64,
    p50: u64,
    p90: u64,
    p99: u64,
    max: u64,
}

/// `GET /stats` of the function.
#[derive(Debug, Clone, Copy, Default)]
struct FnStats {
    messages: u64,
    batches: u64,
    connections_used: u64,
    connections_accepted: u64,
    latency: Latency,
}

async fn throughput_run(
    cli: &Cli,
    bins: &Binaries,
    dir: &Path,
    keys: u64,
) -> anyhow::Result<RunResult> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let function = Function::start(bins, cli, dir).await?;
    let mut eddy = Eddy::start(bins, cli, dir, function.addr).await?;

    function.client().post("/stats/reset", Bytes::new()).await?;
    let started = Instant::now();
    let target_prefix = "bench/counter/k";
    let pushing = tokio::spawn(push(
        eddy.ingress,
        (0, cli.messages),
        keys,
        cli.concurrency,
        cli.chunk,
        target_prefix,
        PING_TYPENAME,
        cli.ingress_format,
    ));
    let waited = wait_processed(
        &function,
        &mut eddy,
        pushing,
        cli.messages,
        cli.timeout,
        started,
    )
    .await;
    let elapsed = started.elapsed();
    let (stats, admitted) = waited?;
    let peak_rss_kb = proc_status_kb(eddy.pid, "VmHWM").unwrap_or(0);
    let eddy_cpu_s = cpu_seconds(eddy.pid).unwrap_or(0.0);
    let fn_cpu_s = function.pid().and_then(cpu_seconds).unwrap_or(0.0);
    let eddy_exit = eddy.stop().await;

    let avg_batch = stats.messages as f64 / stats.batches.max(1) as f64;
    let mut result = RunResult {
        messages: stats.messages,
        elapsed_s: elapsed.as_secs_f64(),
        admitted_s: admitted.as_secs_f64(),
        msgs_per_s: cli.messages as f64 / elapsed.as_secs_f64(),
        latency: stats.latency,
        avg_batch,
        batches: stats.batches,
        connections: stats.connections_used,
        connections_accepted: stats.connections_accepted,
        eddy_cpu_s,
        fn_cpu_s,
        peak_rss_kb,
        eddy_exit,
        ..RunResult::default()
    };

    if !cli.no_baseline {
        let batch = (avg_batch.round() as u64).max(1);
        let concurrency = cli
            .baseline_concurrency
            .unwrap_or((stats.connections_used as usize).clamp(1, 1024));
        function.client().post("/stats/reset", Bytes::new()).await?;
        let elapsed = baseline(function.addr, cli.messages, keys, batch, concurrency).await?;
        let seen = function.stats().await?;
        if seen.messages != cli.messages {
            bail!(
                "baseline: the function saw {} messages, expected {}",
                seen.messages,
                cli.messages
            );
        }
        let rate = cli.messages as f64 / elapsed.as_secs_f64();
        result.baseline_msgs_per_s = Some(rate);
        result.baseline_concurrency = concurrency;
        result.baseline_batch = batch;
        result.ratio = Some(result.msgs_per_s / rate);
    }
    function.stop().await;
    Ok(result)
}

/// Only the baseline: the function alone, batches of `batch`, `--baseline-concurrency`
/// (default `--concurrency`) connections.
async fn baseline_only_run(
    cli: &Cli,
    bins: &Binaries,
    dir: &Path,
    keys: u64,
    batch: u64,
) -> anyhow::Result<RunResult> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let function = Function::start(bins, cli, dir).await?;
    let concurrency = cli.baseline_concurrency.unwrap_or(cli.concurrency);
    function.client().post("/stats/reset", Bytes::new()).await?;
    let elapsed = baseline(function.addr, cli.messages, keys, batch, concurrency).await?;
    let stats = function.stats().await?;
    function.stop().await;
    let rate = cli.messages as f64 / elapsed.as_secs_f64();
    Ok(RunResult {
        messages: stats.messages,
        elapsed_s: elapsed.as_secs_f64(),
        msgs_per_s: rate,
        latency: stats.latency,
        avg_batch: stats.messages as f64 / stats.batches.max(1) as f64,
        batches: stats.batches,
        connections: stats.connections_used,
        baseline_msgs_per_s: Some(rate),
        baseline_concurrency: concurrency,
        baseline_batch: batch,
        ratio: Some(1.0),
        ..RunResult::default()
    })
}

/// Waits until the function has processed `messages` and the push task has finished;
/// returns the function's stats and the push time. Fails (aborting the push) if pushing
/// fails, if eddy dies or writes dead letters, if nothing progresses for a minute, or after
/// `timeout` seconds.
async fn wait_processed(
    function: &Function,
    eddy: &mut Eddy,
    pushing: tokio::task::JoinHandle<anyhow::Result<Duration>>,
    messages: u64,
    timeout: u64,
    started: Instant,
) -> anyhow::Result<(FnStats, Duration)> {
    let mut pushing = AbortOnDrop(pushing);
    let deadline = started + Duration::from_secs(timeout);
    let mut client = function.client();
    let mut last = (0u64, Instant::now());
    let mut admitted = None;
    loop {
        if admitted.is_none() && pushing.0.is_finished() {
            admitted = Some(match (&mut pushing.0).await {
                Ok(result) => result.context("pushing messages to eddy's HTTP ingress")?,
                Err(join) => bail!("the push task failed: {join}"),
            });
        }
        let stats = fn_stats(&mut client).await?;
        if stats.messages >= messages {
            let admitted = match admitted {
                Some(admitted) => admitted,
                None => match (&mut pushing.0).await {
                    Ok(result) => result.context("pushing messages to eddy's HTTP ingress")?,
                    Err(join) => bail!("the push task failed: {join}"),
                },
            };
            return Ok((stats, admitted));
        }
        if stats.messages != last.0 {
            last = (stats.messages, Instant::now());
        }
        if let Some(status) = eddy.exited()? {
            bail!(
                "eddy exited ({status}) after {} of {messages} messages; log: {}",
                stats.messages,
                eddy.log.display()
            );
        }
        let dead_letters = file_len(&eddy.dead_letters);
        if dead_letters > 0 {
            bail!(
                "eddy wrote dead letters ({} bytes) after {} of {messages} messages: {}",
                dead_letters,
                stats.messages,
                eddy.dead_letters.display()
            );
        }
        let now = Instant::now();
        if now >= deadline || now.duration_since(last.1) > Duration::from_secs(60) {
            bail!(
                "the function saw {} of {messages} messages after {:.1}s (no progress for {:.1}s); \
                 eddy log: {}",
                stats.messages,
                started.elapsed().as_secs_f64(),
                now.duration_since(last.1).as_secs_f64(),
                eddy.log.display()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Posts `messages` pings straight to the function's `echo` path as `ToFunction` batches of
/// `batch` invocations (keys round robin), over `concurrency` keep-alive connections.
async fn baseline(
    function: SocketAddr,
    messages: u64,
    keys: u64,
    batch: u64,
    concurrency: usize,
) -> anyhow::Result<Duration> {
    let requests = messages.div_ceil(batch);
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let next = next.clone();
        tasks.spawn(async move {
            let mut client = Client::new(function);
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= requests {
                    return Ok::<_, anyhow::Error>(());
                }
                let size = batch.min(messages - index * batch);
                let body = baseline_request(index % keys, index, size);
                let (status, reply) = client.request(Method::POST, "/bench/echo", body).await?;
                if status != StatusCode::OK {
                    bail!(
                        "POST /bench/echo: {status}: {}",
                        String::from_utf8_lossy(&reply)
                    );
                }
            }
        });
    }
    while let Some(task) = tasks.join_next().await {
        match task {
            Ok(result) => result?,
            Err(join) => bail!("a baseline connection failed: {join}"),
        }
    }
    Ok(started.elapsed())
}

/// One baseline batch: what eddy would send (target, the `count` state, `size` pings).
fn baseline_request(key: u64, count: u64, size: u64) -> Bytes {
    let ping = TypedValue::new(PING_TYPENAME, now_micros().to_le_bytes().to_vec());
    let request = ToFunction {
        request: Some(to_function::Request::Invocation(InvocationBatchRequest {
            target: Some(Address {
                namespace: "bench".into(),
                r#type: "echo".into(),
                id: format!("k{key}"),
            }),
            state: vec![to_function::PersistedValue {
                state_name: "count".into(),
                state_value: Some(BuiltIn::Long(count as i64).to_typed_value()),
            }],
            invocations: (0..size)
                .map(|_| Invocation {
                    caller: None,
                    argument: Some(ping.clone()),
                })
                .collect(),
        })),
    };
    Bytes::from(request.encode_to_vec())
}

// ---------------------------------------------------------------------------------------------
// Idle memory.

/// What one idle-memory run measured.
#[derive(Debug, Clone, Default)]
struct IdleResult {
    addresses: u64,
    start_rss_kb: u64,
    rss_kb: u64,
    peak_rss_kb: u64,
    mib_per_million: f64,
    elapsed_s: f64,
}

async fn idle_run(
    cli: &Cli,
    bins: &Binaries,
    dir: &Path,
    addresses: u64,
) -> anyhow::Result<IdleResult> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let function = Function::start(bins, cli, dir).await?;
    let mut eddy = Eddy::start(bins, cli, dir, function.addr).await?;
    let start_rss_kb = proc_status_kb(eddy.pid, "VmRSS").unwrap_or(0);
    function.client().post("/stats/reset", Bytes::new()).await?;
    let started = Instant::now();
    // In waves, each processed before the next, so that transient messages stay few and
    // the RSS reflects the addresses, not the peak of a queue.
    let wave = cli.idle_wave.max(1);
    let mut done = 0;
    while done < addresses {
        let end = (done + wave).min(addresses);
        let pushing = tokio::spawn(push(
            eddy.ingress,
            (done, end),
            addresses,
            cli.concurrency,
            cli.chunk,
            "bench/counter/idle-",
            PING_TYPENAME,
            cli.ingress_format,
        ));
        wait_processed(&function, &mut eddy, pushing, end, cli.timeout, started).await?;
        done = end;
    }
    let elapsed = started.elapsed();
    let rss_kb = proc_status_kb(eddy.pid, "VmRSS").unwrap_or(0);
    let peak_rss_kb = proc_status_kb(eddy.pid, "VmHWM").unwrap_or(0);
    eddy.stop().await;
    function.stop().await;
    let per_address_kb = rss_kb.saturating_sub(start_rss_kb) as f64 / addresses as f64;
    Ok(IdleResult {
        addresses,
        start_rss_kb,
        rss_kb,
        peak_rss_kb,
        mib_per_million: per_address_kb * 1_000_000.0 / 1024.0,
        elapsed_s: elapsed.as_secs_f64(),
    })
}

// ---------------------------------------------------------------------------------------------
// Processes.

/// A running `eddy-sample-counter`.
struct Function {
    child: Child,
    addr: SocketAddr,
}

impl Function {
    async fn start(bins: &Binaries, cli: &Cli, dir: &Path) -> anyhow::Result<Function> {
        let addr = free_addr()?;
        let log =
            std::fs::File::create(dir.join("function.log")).context("creating function.log")?;
        let child = Command::new(&bins.function)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--threads")
            .arg(cli.fn_threads.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bins.function.display()))?;
        let mut function = Function { child, addr };
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            if fn_stats(&mut function.client()).await.is_ok() {
                return Ok(function);
            }
            if let Some(status) = function.child.try_wait()? {
                bail!("eddy-sample-counter exited at start-up ({status})");
            }
            if Instant::now() >= deadline {
                bail!("eddy-sample-counter did not answer on {addr}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn client(&self) -> Client {
        Client::new(self.addr)
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    async fn stats(&self) -> anyhow::Result<FnStats> {
        fn_stats(&mut self.client()).await
    }

    async fn stop(mut self) {
        let _ = terminate(&mut self.child).await;
    }
}

/// A running `eddy run`.
struct Eddy {
    child: Child,
    pid: u32,
    ingress: SocketAddr,
    log: PathBuf,
    dead_letters: PathBuf,
}

impl Eddy {
    async fn start(
        bins: &Binaries,
        cli: &Cli,
        dir: &Path,
        function: SocketAddr,
    ) -> anyhow::Result<Eddy> {
        let ingress = free_addr()?;
        let module = dir.join("module.yaml");
        std::fs::write(&module, module_yaml(function, ingress, cli.max_batch))
            .with_context(|| format!("writing {}", module.display()))?;
        let log = dir.join("eddy.log");
        let dead_letters = dir.join("dead-letters.jsonl");
        let mut command = Command::new(&bins.eddy);
        command
            .arg("run")
            .arg(&module)
            .arg("--dead-letters")
            .arg(&dead_letters);
        if let Some(workers) = cli.workers {
            command.arg("--workers").arg(workers.to_string());
        }
        let child = command
            .current_dir(dir)
            .env("RUST_LOG", &cli.eddy_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).context("creating eddy.log")?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bins.eddy.display()))?;
        let pid = child.id().ok_or_else(|| anyhow!("eddy exited at once"))?;
        let mut eddy = Eddy {
            child,
            pid,
            ingress,
            log,
            dead_letters,
        };
        let deadline = Instant::now() + PROCESS_DEADLINE;
        let mut client = Client::new(ingress);
        loop {
            if let Ok((StatusCode::OK, _)) = client
                .request(Method::GET, "/v1/health", Bytes::new())
                .await
            {
                return Ok(eddy);
            }
            if let Some(status) = eddy.exited()? {
                bail!(
                    "eddy exited at start-up ({status}): {}",
                    tail(&eddy.log, 2000)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "eddy's HTTP ingress did not answer on {ingress}: {}",
                    tail(&eddy.log, 2000)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn exited(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// SIGTERM, then a description of how it ended ("exit 0 in 0.12s", ...).
    async fn stop(mut self) -> String {
        let started = Instant::now();
        match terminate(&mut self.child).await {
            Ok(status) => format!("{status} after {:.2}s", started.elapsed().as_secs_f64()),
            Err(error) => format!("{error:#}"),
        }
    }
}

/// Sends SIGTERM and waits (SIGKILL after the deadline).
fn module_yaml(function: SocketAddr, ingress: SocketAddr, max_batch: usize) -> String {
    format!(
        "kind: io.statefun.endpoints.v2/http\n\
         spec:\n  \
           functions: bench/*\n  \
           urlPathTemplate: http://{function}/{{function.name}}\n  \
           maxNumBatchRequests: {max_batch}\n  \
           transport:\n    \
             timeouts:\n      \
               call: 60s\n\
         ---\n\
         kind: io.eddy.http.v1/ingress\n\
         spec:\n  \
           id: bench/http\n  \
           bind: {ingress}\n"
    )
}

// ---------------------------------------------------------------------------------------------
// The function's counters.

/// The function's `GET /stats` counters.
async fn fn_stats(client: &mut Client) -> anyhow::Result<FnStats> {
    let (status, body) = client.request(Method::GET, "/stats", Bytes::new()).await?;
    if status != StatusCode::OK {
        bail!("GET /stats: {status}");
    }
    let value: Value = serde_json::from_slice(&body).context("parsing /stats")?;
    let number = |value: &Value, field: &str| value.get(field).and_then(Value::as_u64).unwrap_or(0);
    let latency = value.get("latency_us").cloned().unwrap_or(Value::Null);
    Ok(FnStats {
        messages: number(&value, "messages"),
        batches: number(&value, "batches"),
        connections_used: number(&value, "connections_used"),
        connections_accepted: number(&value, "connections_accepted"),
        latency: Latency {
            count: number(&latency, "count"),
            p50: number(&latency, "p50"),
            p90: number(&latency, "p90"),
            p99: number(&latency, "p99"),
            max: number(&latency, "max"),
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Reporting.

#[derive(Default)]
struct Report {
    throughput: Vec<(u64, Vec<RunResult>)>,
    idle: Vec<IdleResult>,
}

impl Report {
    fn table(&self, cli: &Cli) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\neddy-bench: N={} messages, C={} ingress connections x M={} messages ({:?}), \
             maxNumBatchRequests={}, {} run(s) each, {} profile (medians)",
            cli.messages,
            cli.concurrency,
            cli.chunk,
            cli.ingress_format,
            cli.max_batch,
            cli.runs,
            cli.profile
        );
        if !self.throughput.is_empty() {
            let _ = writeln!(
                out,
                "{:>8} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>6} {:>12} {:>12} {:>7}",
                "keys",
                "msg/s",
                "p50 us",
                "p90 us",
                "p99 us",
                "max us",
                "avg batch",
                "conns",
                "peak rss MiB",
                "baseline/s",
                "ratio"
            );
            for (keys, runs) in &self.throughput {
                let baseline = median_opt(runs, |run| run.baseline_msgs_per_s);
                let ratio = median_opt(runs, |run| run.ratio);
                let _ = writeln!(
                    out,
                    "{:>8} {:>12.0} {:>10.0} {:>10.0} {:>10.0} {:>10.0} {:>10.1} {:>6.0} {:>12.1} {:>12} {:>7}",
                    keys,
                    median_of(runs, |run| run.msgs_per_s),
                    median_of(runs, |run| run.latency.p50 as f64),
                    median_of(runs, |run| run.latency.p90 as f64),
                    median_of(runs, |run| run.latency.p99 as f64),
                    median_of(runs, |run| run.latency.max as f64),
                    median_of(runs, |run| run.avg_batch),
                    median_of(runs, |run| run.connections as f64),
                    median_of(runs, |run| run.peak_rss_kb as f64) / 1024.0,
                    baseline.map_or("-".into(), |rate| format!("{rate:.0}")),
                    ratio.map_or("-".into(), |ratio| format!("{ratio:.3}")),
                );
            }
            for (keys, runs) in &self.throughput {
                for (index, run) in runs.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "  K={keys} run {}: {}; eddy stop: {}",
                        index + 1,
                        run.one_line(),
                        run.eddy_exit
                    );
                }
            }
        }
        if !self.idle.is_empty() {
            let _ = writeln!(
                out,
                "idle memory: {} addresses: rss {:.1} MiB (start {:.1} MiB, peak {:.1} MiB), \
                 {:.1} MiB per 1M addresses, loaded in {:.1}s",
                self.idle[0].addresses,
                median_of(&self.idle, |run| run.rss_kb as f64) / 1024.0,
                median_of(&self.idle, |run| run.start_rss_kb as f64) / 1024.0,
                median_of(&self.idle, |run| run.peak_rss_kb as f64) / 1024.0,
                median_of(&self.idle, |run| run.mib_per_million),
                median_of(&self.idle, |run| run.elapsed_s),
            );
        }
        out
    }

    fn json(&self, cli: &Cli) -> Value {
        let throughput: Vec<Value> = self
            .throughput
            .iter()
            .map(|(keys, runs)| {
                json!({
                    "keys": keys,
                    "median": {
                        "msgs_per_s": median_of(runs, |run| run.msgs_per_s),
                        "latency_us": {
                            "p50": median_of(runs, |run| run.latency.p50 as f64),
                            "p90": median_of(runs, |run| run.latency.p90 as f64),
                            "p99": median_of(runs, |run| run.latency.p99 as f64),
                            "max": median_of(runs, |run| run.latency.max as f64),
                        },
                        "avg_batch": median_of(runs, |run| run.avg_batch),
                        "peak_rss_kb": median_of(runs, |run| run.peak_rss_kb as f64),
                        "baseline_msgs_per_s": median_opt(runs, |run| run.baseline_msgs_per_s),
                        "ratio": median_opt(runs, |run| run.ratio),
                    },
                    "runs": runs.iter().map(|run| json!({
                        "messages": run.messages,
                        "elapsed_s": run.elapsed_s,
                        "admitted_s": run.admitted_s,
                        "msgs_per_s": run.msgs_per_s,
                        "latency_us": {
                            "count": run.latency.count,
                            "p50": run.latency.p50,
                            "p90": run.latency.p90,
                            "p99": run.latency.p99,
                            "max": run.latency.max,
                        },
                        "avg_batch": run.avg_batch,
                        "batches": run.batches,
                        "fn_connections": run.connections,
                        "fn_connections_accepted": run.connections_accepted,
                        "eddy_cpu_s": run.eddy_cpu_s,
                        "fn_cpu_s": run.fn_cpu_s,
                        "peak_rss_kb": run.peak_rss_kb,
                        "baseline_msgs_per_s": run.baseline_msgs_per_s,
                        "baseline_concurrency": run.baseline_concurrency,
                        "baseline_batch": run.baseline_batch,
                        "ratio": run.ratio,
                        "eddy_stop": run.eddy_exit,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let idle = (!self.idle.is_empty()).then(|| {
            json!({
                "addresses": self.idle[0].addresses,
                "rss_kb": median_of(&self.idle, |run| run.rss_kb as f64),
                "start_rss_kb": median_of(&self.idle, |run| run.start_rss_kb as f64),
                "peak_rss_kb": median_of(&self.idle, |run| run.peak_rss_kb as f64),
                "mib_per_million_addresses": median_of(&self.idle, |run| run.mib_per_million),
            })
        });
        json!({
            "bench": "eddy",
            "profile": cli.profile,
            "messages": cli.messages,
            "concurrency": cli.concurrency,
            "chunk": cli.chunk,
            "ingress_format": format!("{:?}", cli.ingress_format).to_lowercase(),
            "max_batch": cli.max_batch,
            "runs": cli.runs,
            "workers": cli.workers,
            "fn_threads": cli.fn_threads,
            "throughput": throughput,
            "idle": idle,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_every_setting() {
        let yaml = module_yaml(
            "127.0.0.1:9001".parse().expect("addr"),
            "127.0.0.1:8091".parse().expect("addr"),
            77,
        );
        assert!(yaml.contains("  urlPathTemplate: http://127.0.0.1:9001/{function.name}\n"));
        assert!(yaml.contains("  maxNumBatchRequests: 77\n"));
        assert!(yaml.contains("      call: 60s\n"));
        assert!(yaml.contains("  bind: 127.0.0.1:8091\n"));
    }
}
