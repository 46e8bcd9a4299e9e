//! Shared helpers for the end-to-end tests: the real `eddy` binary, real functions written with
//! Apache's StateFun Python SDK and Eddy's own SDKs (Rust and Python), real sockets on
//! 127.0.0.1, and the Lambda emulator of `cargo lambda watch`.
//!
//! - [`TestDir`]: a unique scratch folder per test (kept, and its path printed, if the test fails).
//! - [`Process`]: a child process killed on drop, stdout+stderr captured to a log file in the
//!   test folder; the log is printed when the test fails.
//! - [`Eddy`]: `eddy run` on a module file, with its HTTP [`Ingress`], file egress and dead
//!   letters; [`PythonApp`]: one of the Python apps in `integration-tests/functions/`.
//! - [`wait_until`] / [`wait_until_async`]: wait on a condition with a deadline (never sleep
//!   as synchronisation).
//! - [`scenarios`]: the end-to-end scenarios, run against every function app (Apache's Python
//!   SDK, Eddy's Rust SDK, Eddy's Python SDK; over HTTP or on the Lambda emulator) and mixes of
//!   them; also the Lambda emulator ([`scenarios::lambda_emulator`], [`scenarios::cargo_lambda`])
//!   and the AWS test environment ([`scenarios::TEST_AWS_ENVIRONMENT`]).
//! - [`bench`](mod@bench): pieces shared by the benchmark binaries (`eddy-bench`,
//!   `eddy-bench-deployments`): keep-alive HTTP client, ingress pusher, `/proc` probes, medians.
//!
//! Binaries of this crate (`src/bin/`): `sdk-app` (the `e2e` test functions written with
//! `eddy-sdk`, over HTTP or as a Lambda handler), `bench-counter` (the deployments benchmark's
//! counter: embedded, HTTP or Lambda), `eddy-bench` and `eddy-bench-deployments` (benchmarks,
//! not tests).
//!
//! Prerequisites (the test command `./scripts/test.sh` provides them all):
//! - the debug binaries of the workspace: `cargo build --workspace --bins` (`eddy` and the
//!   reminder sample's `reminder-eddy`, `reminder-http`, `reminder-lambda`; `cargo test` builds
//!   this crate's own `sdk-app`);
//! - `<repo>/.venv-statefun`, Apache's StateFun Python SDK: `./scripts/setup-python.sh`;
//! - `<repo>/.venv-eddy`, Eddy's Python SDK (`sdk-python/`, editable) with uvicorn:
//!   `./scripts/setup-python-sdk.sh`;
//! - `<repo>/.venv-lambda`, the `cargo-lambda` binary (Lambda emulator):
//!   `./scripts/setup-lambda.sh` (or set `EDDY_CARGO_LAMBDA` to a `cargo-lambda` binary).
//!
//! Set `EDDY_E2E_KEEP=1` to keep every test folder (module, logs, egress, dead letters).

pub mod bench;
pub mod scenarios;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Default deadline for anything a test waits for.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// How often a waited-for condition is checked again.
const POLL: Duration = Duration::from_millis(20);

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests has a parent folder")
        .to_path_buf()
}

/// The cargo target folder: `CARGO_TARGET_DIR` or `<repo>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        }
        None => repo_root().join("target"),
    }
}

/// The debug `eddy` binary. Panics with instructions when it is missing.
pub fn eddy_bin() -> PathBuf {
    let path = target_dir()
        .join("debug")
        .join(format!("eddy{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "the eddy binary is missing at {}: build it with cargo build --bin eddy \
         (./scripts/test.sh does it for you)",
        path.display()
    );
    path
}

/// The Python of the venv holding Apache's StateFun SDK. Panics with instructions when missing.
pub fn venv_python() -> PathBuf {
    let path = repo_root()
        .join(".venv-statefun")
        .join("bin")
        .join("python");
    assert!(
        path.is_file(),
        "the Python venv for Apache's StateFun SDK is missing at {}: run ./scripts/setup-python.sh",
        path.display()
    );
    path
}

/// The folder of the Python function apps.
pub fn functions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("functions")
}

/// The folder of the test fixtures (module files).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A TCP port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Waits until `check` returns `Some`, polling every 20 ms; panics naming `what` after `timeout`.
pub async fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// [`wait_until`] with an asynchronous check.
pub async fn wait_until_async<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub async fn wait_for_port(port: u16, timeout: Duration) {
    wait_until_async(
        &format!("127.0.0.1:{port} to accept connections"),
        timeout,
        || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        },
    )
    .await
}

/// A unique scratch folder under the system temp dir. Removed on drop when the test passed,
/// kept (and its path printed) when it failed or when `EDDY_E2E_KEEP` is set.
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    /// A new empty folder named after the test.
    pub fn new(test: &str) -> TestDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!(
            "eddy-e2e-{test}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create the test folder");
        TestDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `contents` to `name` inside the folder and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, contents).expect("write a test file");
        path
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("EDDY_E2E_KEEP").is_some() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A child process, killed when dropped; stdout and stderr go to `<dir>/<name>.log`, which is
/// printed if the test fails.
pub struct Process {
    name: String,
    child: tokio::process::Child,
    log: PathBuf,
}

impl Process {
    /// Starts `program args...` in `dir`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[&str],
        dir: &TestDir,
        env: &[(&str, &str)],
    ) -> Process {
        let log = dir.join(&format!("{name}.log"));
        let stdout = std::fs::File::create(&log).expect("create a process log");
        let stderr = stdout.try_clone().expect("clone the log file handle");
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", program.display()));
        Process {
            name: name.to_string(),
            child,
            log,
        }
    }

    /// What the process wrote so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status if the process has ended.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("poll the child process")
    }

    /// Panics (with the log) if the process has ended.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.exit_status() {
            panic!(
                "{} exited unexpectedly with {status}; its log:\n{}",
                self.name,
                self.log_text()
            );
        }
    }

    /// Waits for the process to exit on its own (panics after `timeout`).
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.expect("wait for the child process"),
            Err(_) => panic!(
                "{} did not exit within {timeout:?}; its log:\n{}",
                self.name,
                self.log_text()
            ),
        }
    }

    /// Waits until the log has a line `<prefix><ip:port>` and returns that address (fails
    /// fast, with the log, if the process exits first).
    pub async fn wait_for_address(&mut self, prefix: &str, what: &str) -> SocketAddr {
        let start = Instant::now();
        loop {
            self.assert_running();
            let log = self.log_text();
            let found = log.lines().find_map(|line| {
                let rest = &line[line.find(prefix)? + prefix.len()..];
                rest.split_whitespace().next()?.parse::<SocketAddr>().ok()
            });
            if let Some(addr) = found {
                return addr;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "timed out after {DEADLINE:?} waiting for {what} (a log line {prefix:?}<address>)"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Sends SIGTERM (graceful stop) to the process.
    pub fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            let status = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -TERM {pid} failed");
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- log of {} ({}) -----\n{}----- end of {} log -----",
                self.name,
                self.log.display(),
                self.log_text(),
                self.name
            );
        }
    }
}

/// One of the Python apps of `integration-tests/functions/`, listening on 127.0.0.1.
pub struct PythonApp {
    pub process: Process,
    pub port: u16,
}

impl PythonApp {
    /// Starts `functions/<app>.py --port 0 <extra args>` (the app binds a free port itself, so
    /// no other process can take it in between) and waits for its
    /// `<app>: serving on 127.0.0.1:<port>` line.
    pub async fn start(dir: &TestDir, app: &str, extra_args: &[&str]) -> PythonApp {
        let script = functions_dir().join(format!("{app}.py"));
        let script = script.to_str().expect("utf-8 path").to_string();
        let mut args = vec!["-u", script.as_str(), "--port", "0"];
        args.extend_from_slice(extra_args);
        let mut process = Process::spawn(app, &venv_python(), &args, dir, &[]);
        let prefix = format!("{app}: serving on ");
        let addr = process
            .wait_for_address(&prefix, &format!("{app} to listen"))
            .await;
        PythonApp {
            process,
            port: addr.port(),
        }
    }

    /// `http://127.0.0.1:<port>/{function.name}`, for a module's `urlPathTemplate`.
    pub fn url_template(&self) -> String {
        format!("http://127.0.0.1:{}/{{function.name}}", self.port)
    }
}

/// Builds a multi-document `module.yaml` for a test.
#[derive(Debug, Clone, Default)]
pub struct ModuleYaml {
    documents: Vec<String>,
}

impl ModuleYaml {
    pub fn new() -> ModuleYaml {
        ModuleYaml::default()
    }

    /// An `io.statefun.endpoints.v2/http` endpoint for `functions` (e.g. `e2e/*`) with call
    /// budget `call` (e.g. `10s`); `extra_spec` holds more `spec` lines, indented by 2 spaces.
    pub fn http_endpoint(
        self,
        functions: &str,
        url_template: &str,
        call: &str,
        extra_spec: &str,
    ) -> ModuleYaml {
        self.document(&format!(
            "kind: io.statefun.endpoints.v2/http\n\
             spec:\n  functions: {functions}\n  urlPathTemplate: {url_template}\n\
             \x20 transport:\n    timeouts:\n      call: {call}\n{extra_spec}"
        ))
    }

    /// An `io.eddy.http.v1/ingress` on 127.0.0.1, port 0: eddy binds a free port and prints
    /// it (see [`Eddy::start`]).
    pub fn http_ingress(self, id: &str) -> ModuleYaml {
        self.document(&format!(
            "kind: io.eddy.http.v1/ingress\nspec:\n  id: {id}\n  bind: 127.0.0.1:0\n"
        ))
    }

    /// An `io.eddy.file.v1/ingress` reading `path` (relative to the module file's folder).
    pub fn file_ingress(self, id: &str, path: &str) -> ModuleYaml {
        self.document(&format!(
            "kind: io.eddy.file.v1/ingress\nspec:\n  id: {id}\n  path: {path}\n"
        ))
    }

    /// An `io.eddy.file.v1/egress` writing `path` (relative to the module file's folder).
    pub fn file_egress(self, id: &str, path: &str) -> ModuleYaml {
        self.document(&format!(
            "kind: io.eddy.file.v1/egress\nspec:\n  id: {id}\n  path: {path}\n"
        ))
    }

    /// Any other document.
    pub fn document(mut self, text: &str) -> ModuleYaml {
        let mut text = text.to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        self.documents.push(text);
        self
    }

    /// The file's text.
    pub fn render(&self) -> String {
        self.documents.join("---\n")
    }
}

/// A reply from the HTTP ingress.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// The body as text (lossy UTF-8).
    pub body: String,
    /// The body as sent.
    pub bytes: Bytes,
}

impl Reply {
    /// The body as JSON (Null if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A client of Eddy's HTTP ingress (`io.eddy.http.v1/ingress`).
pub struct Ingress {
    pub addr: SocketAddr,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Ingress {
    pub fn new(addr: SocketAddr) -> Ingress {
        Ingress {
            addr,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// `http://<addr>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// One HTTP request; `Err` when the ingress is unreachable.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<Reply> {
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base_url()));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(Full::new(Bytes::from(body)))?;
        let response = tokio::time::timeout(DEADLINE, self.client.request(request)).await??;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Reply {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            bytes: body,
        })
    }

    /// `GET /v1/health`.
    pub async fn health(&self) -> anyhow::Result<Reply> {
        self.request("GET", "/v1/health", &[], Vec::new()).await
    }

    /// `POST /v1/messages` with one JSON line per message.
    pub async fn post_batch(&self, messages: &[Value]) -> Reply {
        let mut body = String::new();
        for message in messages {
            body.push_str(&message.to_string());
            body.push('\n');
        }
        self.request(
            "POST",
            "/v1/messages",
            &[("content-type", "application/x-ndjson")],
            body.into_bytes(),
        )
        .await
        .expect("POST /v1/messages")
    }

    /// `POST /v1/messages` and assert that every message was accepted (202, `accepted` = n).
    pub async fn send_batch(&self, messages: &[Value]) {
        let reply = self.post_batch(messages).await;
        assert_eq!(
            reply.status, 202,
            "POST /v1/messages was not accepted: {reply:?}"
        );
        assert_eq!(
            reply.json()["accepted"],
            json!(messages.len()),
            "POST /v1/messages accepted count: {reply:?}"
        );
    }

    /// `POST /v1/messages/{target}` with raw value bytes and an optional `eddy-typename`.
    pub async fn post_one(&self, target: &str, typename: Option<&str>, value: Vec<u8>) -> Reply {
        let mut headers = vec![("content-type", "application/octet-stream")];
        if let Some(typename) = typename {
            headers.push(("eddy-typename", typename));
        }
        self.request("POST", &format!("/v1/messages/{target}"), &headers, value)
            .await
            .expect("POST /v1/messages/{target}")
    }
}

/// A JSON-lines message `{"target": ..., "value": ...}` (typename inferred from the value).
pub fn msg(target: &str, value: impl Into<Value>) -> Value {
    json!({ "target": target, "value": value.into() })
}

/// A JSON-lines message with an explicit typename.
pub fn typed_msg(target: &str, typename: &str, value: impl Into<Value>) -> Value {
    json!({ "target": target, "typename": typename, "value": value.into() })
}

/// Reads the complete lines of a JSON-lines file (a missing file is empty; a trailing line
/// without its newline is still being written and is left out). Panics on invalid JSON.
pub fn read_json_lines(path: &Path) -> Vec<Value> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    };
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(index, line)| {
            serde_json::from_str(line).unwrap_or_else(|e| {
                panic!(
                    "{} line {}: not JSON ({e}): {line}",
                    path.display(),
                    index + 1
                )
            })
        })
        .collect()
}

/// A running `eddy run` with an HTTP ingress, a file egress and a dead-letter file.
pub struct Eddy {
    pub process: Process,
    pub ingress: Ingress,
    pub module: PathBuf,
    pub egress_file: PathBuf,
    pub dead_letters_file: PathBuf,
}

impl Eddy {
    /// Writes `module_yaml` to `<dir>/module.yaml` and starts `eddy run` on it in `dir`, with
    /// dead letters in `<dir>/dead-letters.jsonl`. The module must declare the HTTP ingress
    /// `ingress_id` (bound to port 0: the address comes from eddy's
    /// `eddy: listening ingress <id> on <addr>` line) and may declare a file egress writing
    /// `<dir>/<egress_file>`. Waits until `GET /v1/health` answers 200.
    pub async fn start(
        dir: &TestDir,
        module_yaml: &str,
        ingress_id: &str,
        egress_file: &str,
    ) -> Eddy {
        Eddy::start_with_args(dir, module_yaml, ingress_id, egress_file, &[]).await
    }

    /// [`Eddy::start`] with more `eddy run` flags (e.g. `--drain-timeout 1`).
    pub async fn start_with_args(
        dir: &TestDir,
        module_yaml: &str,
        ingress_id: &str,
        egress_file: &str,
        extra_args: &[&str],
    ) -> Eddy {
        Eddy::start_with_env(dir, module_yaml, ingress_id, egress_file, extra_args, &[]).await
    }

    /// [`Eddy::start_with_args`] with more environment variables for the eddy process (e.g.
    /// AWS credentials for a Lambda endpoint), without touching the test process's own
    /// environment.
    pub async fn start_with_env(
        dir: &TestDir,
        module_yaml: &str,
        ingress_id: &str,
        egress_file: &str,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Eddy {
        let module = dir.write("module.yaml", module_yaml);
        let dead_letters_file = dir.join("dead-letters.jsonl");
        let mut args = vec![
            "run",
            module.to_str().expect("utf-8 path"),
            "--dead-letters",
            dead_letters_file.to_str().expect("utf-8 path"),
            "--workers",
            "2",
        ];
        args.extend_from_slice(extra_args);
        let mut process_env = vec![("RUST_LOG", "info"), ("RUST_BACKTRACE", "1")];
        process_env.extend_from_slice(env);
        let mut process = Process::spawn("eddy", &eddy_bin(), &args, dir, &process_env);
        let addr = process
            .wait_for_address(
                &format!("eddy: listening ingress {ingress_id} on "),
                &format!("eddy's HTTP ingress {ingress_id} to listen"),
            )
            .await;
        let mut eddy = Eddy {
            process,
            ingress: Ingress::new(addr),
            module,
            egress_file: dir.join(egress_file),
            dead_letters_file,
        };
        let start = Instant::now();
        loop {
            eddy.process.assert_running();
            if let Ok(reply) = eddy.ingress.health().await {
                assert_eq!(reply.status, 200, "GET /v1/health: {reply:?}");
                break;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "eddy's HTTP ingress did not answer on {} within {DEADLINE:?}",
                eddy.ingress.addr
            );
            tokio::time::sleep(POLL).await;
        }
        eddy
    }

    /// Every egress record written so far.
    pub fn egress_records(&self) -> Vec<Value> {
        read_json_lines(&self.egress_file)
    }

    /// The string values written so far to egress `egress_id` (asserting the record format).
    pub fn egress_strings(&self, egress_id: &str) -> Vec<String> {
        self.egress_records()
            .into_iter()
            .filter(|record| record["egress"] == egress_id)
            .map(|record| {
                assert_eq!(
                    record["typename"], "io.statefun.types/string",
                    "egress record {record}"
                );
                record["value"]
                    .as_str()
                    .unwrap_or_else(|| panic!("egress record without a string value: {record}"))
                    .to_string()
            })
            .collect()
    }

    /// Every dead-letter line written so far.
    pub fn dead_letters(&self) -> Vec<Value> {
        read_json_lines(&self.dead_letters_file)
    }

    /// Waits until `check` holds for the string values of egress `egress_id`, failing fast if
    /// eddy exits. Returns what `check` returned.
    pub async fn wait_egress<T>(
        &mut self,
        egress_id: &str,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&[String]) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            self.process.assert_running();
            let values = self.egress_strings(egress_id);
            if let Some(result) = check(&values) {
                return result;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}; egress {egress_id} holds {values:#?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `check` holds for the dead-letter lines, failing fast if eddy exits.
    pub async fn wait_dead_letters<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&[Value]) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            self.process.assert_running();
            let lines = self.dead_letters();
            if let Some(result) = check(&lines) {
                return result;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}; dead letters: {lines:#?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops eddy with SIGTERM and waits for it to drain and exit; returns its exit status.
    pub async fn stop(&mut self) -> ExitStatus {
        self.process.terminate();
        self.process.wait_exit(DEADLINE).await
    }
}

/// Runs the `eddy` CLI with `args` in `dir` to completion (at most [`DEADLINE`]).
pub async fn eddy_cli(dir: &Path, args: &[&str]) -> Output {
    let child = tokio::process::Command::new(eddy_bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the eddy binary");
    match tokio::time::timeout(DEADLINE, child.wait_with_output()).await {
        Ok(output) => output.expect("wait for eddy"),
        Err(_) => panic!("eddy {args:?} did not finish within {DEADLINE:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_skip_the_unfinished_last_line() {
        let dir = TestDir::new("harness-jsonl");
        let path = dir.write("lines.jsonl", "{\"a\":1}\n\n{\"a\":2}\n{\"a\":");
        assert_eq!(
            read_json_lines(&path),
            vec![json!({"a": 1}), json!({"a": 2})]
        );
        assert!(read_json_lines(&dir.join("missing.jsonl")).is_empty());
    }

    #[test]
    fn test_dirs_are_unique_and_removed_on_success() {
        let first = TestDir::new("harness-dir");
        let second = TestDir::new("harness-dir");
        assert_ne!(first.path(), second.path());
        let kept = first.path().to_path_buf();
        drop(first);
        assert!(!kept.exists());
    }

    #[test]
    fn free_ports_are_bindable_on_loopback() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }

    #[test]
    fn messages_render_as_contract_json_lines() {
        assert_eq!(
            msg("e2e/counter/a", "x"),
            json!({"target": "e2e/counter/a", "value": "x"})
        );
        assert_eq!(
            typed_msg("e2e/ping/p", "e2e/ball", json!({"n": 0})),
            json!({"target": "e2e/ping/p", "typename": "e2e/ball", "value": {"n": 0}})
        );
    }

    #[test]
    fn module_yaml_renders_documents() {
        let text = ModuleYaml::new()
            .http_endpoint(
                "e2e/*",
                "http://127.0.0.1:1/{function.name}",
                "2s",
                "  retries:\n    maxAttempts: 3\n",
            )
            .http_ingress("e2e/http")
            .file_egress("e2e/out", "out.jsonl")
            .render();
        assert_eq!(
            text,
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: e2e/*\n  \
             urlPathTemplate: http://127.0.0.1:1/{function.name}\n  transport:\n    timeouts:\n      \
             call: 2s\n  retries:\n    maxAttempts: 3\n---\nkind: io.eddy.http.v1/ingress\nspec:\n  \
             id: e2e/http\n  bind: 127.0.0.1:0\n---\nkind: io.eddy.file.v1/egress\nspec:\n  \
             id: e2e/out\n  path: out.jsonl\n"
        );
    }

    #[tokio::test]
    async fn wait_until_returns_the_value_once_the_condition_holds() {
        let mut calls = 0;
        let value = wait_until("the third call", DEADLINE, || {
            calls += 1;
            (calls == 3).then_some(calls)
        })
        .await;
        assert_eq!(value, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "timed out")]
    async fn wait_until_panics_at_the_deadline() {
        wait_until::<()>("nothing", Duration::from_millis(50), || None).await;
    }

    #[tokio::test]
    async fn python_functions_answer_first_contact_with_missing_state() {
        // The venv is a prerequisite of the whole suite: this checks that the app starts and
        // that Apache's SDK answers a request without state with IncompleteInvocationContext.
        use eddy_protocol::reqreply::to_function::{Invocation, InvocationBatchRequest};
        use eddy_protocol::{from_function, to_function, BuiltIn, FromFunction, Message as _};
        let dir = TestDir::new("harness-python");
        let app = PythonApp::start(&dir, "statefun_app", &[]).await;
        let request = eddy_protocol::ToFunction {
            request: Some(to_function::Request::Invocation(InvocationBatchRequest {
                target: Some(eddy_protocol::Address {
                    namespace: "e2e".into(),
                    r#type: "counter".into(),
                    id: "a".into(),
                }),
                state: Vec::new(),
                invocations: vec![Invocation {
                    caller: None,
                    argument: Some(BuiltIn::String("x".into()).to_typed_value()),
                }],
            })),
        };
        let client = Ingress::new(SocketAddr::from(([127, 0, 0, 1], app.port)));
        let reply = client
            .request(
                "POST",
                "/counter",
                &[("content-type", "application/octet-stream")],
                request.encode_to_vec(),
            )
            .await
            .expect("POST to the python app");
        assert_eq!(reply.status, 200, "{reply:?}");
        let reply = FromFunction::decode(reply.bytes).expect("a FromFunction");
        match reply.response {
            Some(from_function::Response::IncompleteInvocationContext(context)) => {
                let names: Vec<_> = context
                    .missing_values
                    .iter()
                    .map(|spec| (spec.state_name.as_str(), spec.type_typename.as_str()))
                    .collect();
                assert_eq!(names, vec![("count", "io.statefun.types/int")]);
            }
            other => panic!("expected IncompleteInvocationContext, got {other:?}"),
        }
    }
}
