//! The end-to-end scenarios, written once and run against every function app that implements
//! the `e2e/*` test functions: Apache's Python SDK (`functions/statefun_app.py`), Eddy's Rust
//! SDK (`src/bin/sdk-app.rs`), Eddy's Python SDK, and mixes of them in one module.
//!
//! A scenario takes a [`Launch`]: something that starts the function app(s) in a test folder
//! and returns a [`FunctionApp`] — the endpoints to put in `module.yaml` (HTTP endpoints, or
//! whole documents such as a Lambda endpoint) plus the guards (processes) to keep alive while
//! the test runs. The scenario starts the real `eddy` binary
//! on a module routing `e2e/*` to those endpoints, drives it through its HTTP ingress (and a
//! file ingress, and `eddy send`) and checks what comes out of the file egress.
//!
//! The function apps answer the first contact of every address with missing state, so every
//! scenario also exercises state negotiation: exact counts prove the runtime re-sent the batch
//! once, with the state, and never applied a batch twice.

use crate::{
    eddy_cli, free_port, msg, repo_root, typed_msg, wait_until, wait_until_async, Eddy, ModuleYaml,
    Process, PythonApp, TestDir, DEADLINE,
};
use serde_json::{json, Value};
use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// The egress every test function writes to.
pub const EGRESS: &str = "e2e/out";

/// Running function app(s): the endpoints serving the `e2e` function types, and whatever
/// must stay alive for them to answer (dropped with the app).
pub struct FunctionApp {
    /// (`functions` selector, `urlPathTemplate`) per HTTP endpoint, e.g.
    /// `("e2e/*", "http://127.0.0.1:4000/{function.name}")`.
    pub endpoints: Vec<(String, String)>,
    /// Other endpoint documents, whole (e.g. an `io.eddy.endpoints.v1/lambda` document with its
    /// own `functions` selector), added to the module after the HTTP endpoints.
    pub documents: Vec<String>,
    /// Environment variables eddy needs to reach the app (e.g. AWS credentials and region for
    /// a Lambda endpoint).
    pub eddy_env: Vec<(String, String)>,
    guards: Vec<Box<dyn Any>>,
}

impl FunctionApp {
    /// One app serving every `e2e/*` type over HTTP at `url_template`, kept alive by `guard`.
    pub fn single(url_template: String, guard: impl Any) -> FunctionApp {
        FunctionApp {
            endpoints: vec![("e2e/*".to_string(), url_template)],
            documents: Vec::new(),
            eddy_env: Vec::new(),
            guards: vec![Box::new(guard)],
        }
    }

    /// One app behind a non-HTTP endpoint `document` (a whole `module.yaml` document, e.g.
    /// `kind: io.eddy.endpoints.v1/lambda ...`), kept alive by `guard`.
    pub fn document(document: String, guard: impl Any) -> FunctionApp {
        FunctionApp {
            endpoints: Vec::new(),
            documents: vec![document],
            eddy_env: Vec::new(),
            guards: vec![Box::new(guard)],
        }
    }

    /// The same app, with `env` set in eddy's environment.
    pub fn with_eddy_env(mut self, env: &[(&str, &str)]) -> FunctionApp {
        self.eddy_env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// Serves the types of `selector` (e.g. `e2e/pong`) by `app` instead, keeping `app` alive
    /// too (exact selectors beat `e2e/*` in the runtime's catalog): `app`'s first HTTP endpoint
    /// is routed to `selector`; an app without HTTP endpoints brings its documents as they are
    /// (their own `functions` selector decides).
    pub fn route(mut self, selector: &str, app: FunctionApp) -> FunctionApp {
        if let Some((_, url)) = app.endpoints.first() {
            self.endpoints.push((selector.to_string(), url.clone()));
        } else {
            self.documents.extend(app.documents);
        }
        self.eddy_env.extend(app.eddy_env);
        self.guards.extend(app.guards);
        self
    }

    /// The module's endpoint documents, with call budget `call` for the HTTP endpoints.
    pub fn module(&self, call: &str) -> ModuleYaml {
        let module = self
            .endpoints
            .iter()
            .fold(ModuleYaml::new(), |module, (functions, url)| {
                module.http_endpoint(functions, url, call, "")
            });
        self.documents
            .iter()
            .fold(module, |module, document| module.document(document))
    }
}

/// A boxed future borrowing the test folder.
pub type LaunchFuture<'a> = Pin<Box<dyn Future<Output = FunctionApp> + 'a>>;

/// Starts function app(s) in a test folder.
pub trait Launch {
    /// Starts the app(s); their logs go to `dir`.
    fn launch<'a>(&'a self, dir: &'a TestDir) -> LaunchFuture<'a>;
}

/// Apache's StateFun Python SDK: `functions/statefun_app.py` in `.venv-statefun`.
pub struct ApachePython;

impl Launch for ApachePython {
    fn launch<'a>(&'a self, dir: &'a TestDir) -> LaunchFuture<'a> {
        Box::pin(async move {
            let app = PythonApp::start(dir, "statefun_app", &[]).await;
            FunctionApp::single(app.url_template(), app)
        })
    }
}

/// Eddy's Rust SDK: the `sdk-app` binary of this crate (give its path, e.g.
/// `env!("CARGO_BIN_EXE_sdk-app")` in a test).
pub struct RustSdk {
    pub bin: PathBuf,
}

impl Launch for RustSdk {
    fn launch<'a>(&'a self, dir: &'a TestDir) -> LaunchFuture<'a> {
        Box::pin(async move {
            let mut process = Process::spawn(
                "sdk-app",
                &self.bin,
                &["--port", "0"],
                dir,
                &[("RUST_LOG", "info")],
            );
            let addr = process
                .wait_for_address("sdk-app: serving on ", "sdk-app to listen")
                .await;
            FunctionApp::single(format!("http://{addr}/{{function.name}}"), process)
        })
    }
}

/// The `cargo-lambda` binary: `EDDY_CARGO_LAMBDA`, or `<repo>/.venv-lambda/bin/cargo-lambda`
/// (`./scripts/setup-lambda.sh`). Panics with instructions when missing.
pub fn cargo_lambda() -> PathBuf {
    let path = std::env::var_os("EDDY_CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            repo_root()
                .join(".venv-lambda")
                .join("bin")
                .join("cargo-lambda")
        });
    assert!(
        path.is_file(),
        "cargo-lambda is missing at {}: run ./scripts/setup-lambda.sh (or set EDDY_CARGO_LAMBDA)",
        path.display()
    );
    path
}

/// The Lambda emulator of `cargo lambda watch --only-lambda-apis`, started in `dir` (which it
/// needs to be a Cargo project: a stub one named `function` is written there). Returns the
/// process and its address; the Runtime API of `function` is `<addr>/.rt/<function>`, the
/// Invoke API `http://<addr>/2015-03-31/functions/<function>/invocations`.
pub async fn lambda_emulator(dir: &TestDir, function: &str) -> (Process, SocketAddr) {
    dir.write(
        "Cargo.toml",
        &format!(
            "[package]\nname = \"{function}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
             [workspace]\n\n[dependencies]\n"
        ),
    );
    std::fs::create_dir_all(dir.join("src")).expect("create src/");
    dir.write("src/main.rs", "fn main() {}\n");
    let port = free_port().to_string();
    let mut emulator = Process::spawn(
        "cargo-lambda",
        &cargo_lambda(),
        &[
            "lambda",
            "watch",
            "--only-lambda-apis",
            "-A",
            "127.0.0.1",
            "-P",
            &port,
        ],
        dir,
        // The address is read from an info line: a RUST_LOG inherited from the test's shell
        // (say `warn`) must not hide it.
        &[("RUST_LOG", "info")],
    );
    let addr = emulator
        .wait_for_address(
            "starting Runtime server runtime_addr=",
            "cargo lambda watch to listen",
        )
        .await;
    (emulator, addr)
}

/// The credentials and region eddy's AWS SDK needs for a Lambda endpoint in front of the
/// local emulator (which ignores them): give them to eddy with
/// [`FunctionApp::with_eddy_env`].
pub const TEST_AWS_ENVIRONMENT: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_REGION", "us-east-1"),
];

/// Sets [`TEST_AWS_ENVIRONMENT`] in the test process itself (inherited by every child).
/// Prefer [`FunctionApp::with_eddy_env`]: changing the environment of a multi-threaded test
/// process races with the other tests' process spawns.
pub fn set_test_aws_environment() {
    for (key, value) in TEST_AWS_ENVIRONMENT {
        std::env::set_var(key, value);
    }
}

/// Eddy's Rust SDK as an AWS Lambda handler: `sdk-app --lambda` (`eddy_sdk::lambda::run`)
/// behind the Lambda emulator of `cargo lambda watch`, invoked by the runtime's
/// `io.eddy.endpoints.v1/lambda` endpoint with the API Gateway proxy envelope.
pub struct RustSdkLambda {
    pub bin: PathBuf,
}

impl Launch for RustSdkLambda {
    fn launch<'a>(&'a self, dir: &'a TestDir) -> LaunchFuture<'a> {
        Box::pin(async move {
            const FUNCTION: &str = "eddy-rust-e2e";
            let (emulator, addr) = lambda_emulator(dir, FUNCTION).await;
            // A base path needs a scheme for the Rust runtime client (the Python one takes none).
            let runtime_api = format!("http://{addr}/.rt/{FUNCTION}");
            let app = Process::spawn(
                "sdk-app",
                &self.bin,
                &["--lambda"],
                dir,
                &[
                    ("AWS_LAMBDA_RUNTIME_API", runtime_api.as_str()),
                    ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION),
                    ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
                    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
                    ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/eddy-rust-e2e"),
                    ("AWS_LAMBDA_LOG_STREAM_NAME", "e2e"),
                    ("RUST_LOG", "info"),
                ],
            );
            let document = format!(
                "kind: io.eddy.endpoints.v1/lambda\nspec:\n  functions: e2e/*\n  \
                 functionName: {FUNCTION}\n  region: us-east-1\n  \
                 endpointUrl: http://{addr}\n  timeouts:\n    call: 10s\n"
            );
            FunctionApp::document(document, (app, emulator)).with_eddy_env(&TEST_AWS_ENVIRONMENT)
        })
    }
}

/// `e2e/pong` served by `pong`, every other `e2e` type by `rest`: two apps, one module.
pub struct Mixed<A, B> {
    pub rest: A,
    pub pong: B,
}

impl<A: Launch, B: Launch> Launch for Mixed<A, B> {
    fn launch<'a>(&'a self, dir: &'a TestDir) -> LaunchFuture<'a> {
        Box::pin(async move {
            let rest = self.rest.launch(dir).await;
            let pong = self.pong.launch(dir).await;
            rest.route("e2e/pong", pong)
        })
    }
}

/// Function app(s) + eddy, dropped in this order (eddy first, the folder last).
pub struct Stack {
    pub eddy: Eddy,
    pub app: FunctionApp,
    pub dir: TestDir,
}

impl Stack {
    /// Starts the app(s) and eddy with their endpoints, an HTTP ingress `e2e/http`, a file
    /// egress `e2e/out` -> out.jsonl, and `extra` documents; `files` (name, text) are written
    /// to the test folder first; `args` are more `eddy run` flags.
    pub async fn start(
        test: &str,
        launch: &dyn Launch,
        files: &[(&str, &str)],
        extra: impl FnOnce(ModuleYaml) -> ModuleYaml,
        args: &[&str],
    ) -> Stack {
        let dir = TestDir::new(test);
        for (name, text) in files {
            dir.write(name, text);
        }
        let app = launch.launch(&dir).await;
        let module = app
            .module("10s")
            .http_ingress("e2e/http")
            .file_egress(EGRESS, "out.jsonl");
        let module = extra(module).render();
        let env: Vec<(&str, &str)> = app
            .eddy_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let eddy = Eddy::start_with_env(&dir, &module, "e2e/http", "out.jsonl", args, &env).await;
        Stack { eddy, app, dir }
    }
}

/// Groups `<id>:<count>` egress values by id, in order.
pub fn counts_by_id(values: &[String]) -> BTreeMap<String, Vec<u64>> {
    let mut by_id: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for value in values {
        let (id, count) = value
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("not <id>:<count>: {value}"));
        let count = count
            .parse()
            .unwrap_or_else(|_| panic!("not <id>:<count>: {value}"));
        by_id.entry(id.to_string()).or_default().push(count);
    }
    by_id
}

/// e2e/counter: counts are exact per address with messages interleaved over three concurrent
/// POSTs, a raw-body POST, `eddy send` and a file ingress; a graceful stop applies nothing
/// twice.
pub async fn counts_are_exact_per_address(launch: &dyn Launch) {
    // Three messages come from a file ingress, read at start-up.
    let input: String = (0..3)
        .map(|n| format!("{}\n", msg("e2e/counter/file", format!("line {n}"))))
        .collect();
    let mut stack = Stack::start(
        "counter",
        launch,
        &[("input.jsonl", &input)],
        |module| module.file_ingress("e2e/file", "input.jsonl"),
        &[],
    )
    .await;
    let ids = ["alice", "bob", "carol", "dave", "erin"];
    let rounds = 8;
    // Three concurrent POSTs, each interleaving every address.
    let batches: Vec<Vec<Value>> = (0..3)
        .map(|batch| {
            (0..rounds)
                .flat_map(|round| {
                    ids.iter().map(move |id| {
                        msg(&format!("e2e/counter/{id}"), format!("b{batch}r{round}"))
                    })
                })
                .collect()
        })
        .collect();
    let ingress = &stack.eddy.ingress;
    tokio::join!(
        ingress.send_batch(&batches[0]),
        ingress.send_batch(&batches[1]),
        ingress.send_batch(&batches[2]),
    );
    // One message per path endpoint (raw body, explicit typename) and one through `eddy send`.
    let reply = ingress
        .post_one("e2e/counter/raw", Some("e2e/raw"), b"hello".to_vec())
        .await;
    assert_eq!(
        reply.status, 202,
        "POST /v1/messages/e2e/counter/raw: {reply:?}"
    );
    assert_eq!(reply.json()["accepted"], json!(1), "{reply:?}");
    for _ in 0..2 {
        let output = eddy_cli(
            stack.dir.path(),
            &[
                "send",
                "e2e/counter/cli",
                "--ingress",
                &ingress.base_url(),
                "--string",
                "hi",
            ],
        )
        .await;
        assert!(
            output.status.success(),
            "eddy send failed: {:?}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let per_address = 3 * rounds as u64;
    let mut expected: BTreeMap<String, Vec<u64>> = ids
        .iter()
        .map(|id| (id.to_string(), (1..=per_address).collect()))
        .collect();
    expected.insert("raw".into(), vec![1]);
    expected.insert("cli".into(), vec![1, 2]);
    expected.insert("file".into(), vec![1, 2, 3]);
    let total: usize = expected.values().map(Vec::len).sum();
    stack
        .eddy
        .wait_egress(EGRESS, "every counter record", DEADLINE, |values| {
            (values.len() >= total).then_some(())
        })
        .await;
    assert_eq!(counts_by_id(&stack.eddy.egress_strings(EGRESS)), expected);

    // Every egress line has exactly the contract's fields.
    for record in stack.eddy.egress_records() {
        let keys: Vec<&String> = record.as_object().expect("an object").keys().collect();
        assert_eq!(
            keys,
            ["egress", "typename", "value"],
            "egress line {record}"
        );
    }

    // A graceful stop drains and exits 0; nothing was applied twice meanwhile.
    let status = stack.eddy.stop().await;
    assert!(status.success(), "eddy exited with {status}");
    assert_eq!(counts_by_id(&stack.eddy.egress_strings(EGRESS)), expected);
    assert!(
        stack.eddy.dead_letters().is_empty(),
        "unexpected dead letters: {:?}",
        stack.eddy.dead_letters()
    );
}

/// What e2e/types reports after each message, computed independently.
pub fn expected_type_summaries(id: &str, inputs: &[i64]) -> Vec<Value> {
    #[derive(Default)]
    struct State {
        i: i32,
        l: i64,
        f: f32,
        d: f64,
        b: bool,
        s: String,
        history: Vec<i64>,
    }
    let mut state = State::default();
    let mut summaries = Vec::new();
    for &n in inputs {
        if n == 0 {
            state = State::default();
            summaries.push(json!({"id": id, "reset": true}));
            continue;
        }
        state.i += i32::try_from(n).expect("small n");
        state.l += n * 10_000_000_000;
        state.f += 0.5;
        state.d += 0.1;
        state.b = !state.b;
        state.s.push_str(&format!("{n}\u{e9};"));
        state.history.push(n);
        summaries.push(json!({
            "id": id,
            "i": state.i,
            "l": state.l,
            "b": state.b,
            "s": state.s,
            "j": {"count": state.history.len(), "history": state.history},
            "f_bits": state.f.to_bits(),
            "d_bits": state.d.to_bits(),
        }));
    }
    summaries
}

/// e2e/types summaries of `id` without the human-readable float fields.
pub fn type_summaries(values: &[String], id: &str) -> Vec<Value> {
    values
        .iter()
        .map(|value| {
            let mut summary: Value = serde_json::from_str(value)
                .unwrap_or_else(|e| panic!("e2e/types egress is not JSON ({e}): {value}"));
            let object = summary.as_object_mut().expect("a JSON object");
            object.remove("f");
            object.remove("d");
            summary
        })
        .filter(|summary| summary["id"] == id)
        .collect()
}

/// e2e/types: state of every built-in type and a JSON type survives round trips through the
/// runtime, bit for bit, and deletes reset it.
pub async fn state_of_every_type_survives_round_trips(launch: &dyn Launch) {
    let mut stack = Stack::start("types", launch, &[], |module| module, &[]).await;
    let first = [1_i64, 2, 3];
    let second = [4_i64, 0, 5, 6];
    let other = [7_i64, 8];
    // Interleave two addresses; the first batch of each negotiates the state.
    let mut batch: Vec<Value> = first.iter().map(|n| msg("e2e/types/t1", *n)).collect();
    batch.extend(other.iter().map(|n| msg("e2e/types/t2", *n)));
    stack.eddy.ingress.send_batch(&batch).await;
    stack
        .eddy
        .wait_egress(
            EGRESS,
            "the first three summaries of t1",
            DEADLINE,
            |values| (type_summaries(values, "t1").len() >= first.len()).then_some(()),
        )
        .await;
    // The second batch reads back what the first one wrote, then deletes it (n = 0).
    let batch: Vec<Value> = second.iter().map(|n| msg("e2e/types/t1", *n)).collect();
    stack.eddy.ingress.send_batch(&batch).await;

    let all: Vec<i64> = first.iter().chain(second.iter()).copied().collect();
    stack
        .eddy
        .wait_egress(EGRESS, "every e2e/types summary", DEADLINE, |values| {
            (type_summaries(values, "t1").len() >= all.len()
                && type_summaries(values, "t2").len() >= other.len())
            .then_some(())
        })
        .await;
    let values = stack.eddy.egress_strings(EGRESS);
    assert_eq!(
        type_summaries(&values, "t1"),
        expected_type_summaries("t1", &all)
    );
    assert_eq!(
        type_summaries(&values, "t2"),
        expected_type_summaries("t2", &other)
    );
}

/// Waits until `duration` has passed since `since`: the wall-clock time that state expiration
/// is about (the thing under test), not a stand-in for a condition.
pub async fn let_time_pass(since: Instant, duration: Duration) {
    wait_until(
        &format!("{duration:?} of wall-clock time to pass"),
        duration + DEADLINE,
        || (since.elapsed() >= duration).then_some(()),
    )
    .await;
}

/// Sends one command and returns its egress record.
async fn command(stack: &mut Stack, target: &str, command: &str) -> String {
    let before = stack.eddy.egress_strings(EGRESS).len();
    stack.eddy.ingress.send_batch(&[msg(target, command)]).await;
    stack
        .eddy
        .wait_egress(
            EGRESS,
            &format!("the reply to {command}"),
            DEADLINE,
            |values| values.get(before).cloned(),
        )
        .await
}

/// e2e/expiring: values expire after write / after call, and expired state restarts from
/// scratch.
pub async fn expired_state_restarts_from_scratch(launch: &dyn Launch) {
    let mut stack = Stack::start("expiring", launch, &[], |module| module, &[]).await;
    let target = "e2e/expiring/x";

    assert_eq!(command(&mut stack, target, "write").await, "w=1,c=1");
    assert_eq!(command(&mut stack, target, "write").await, "w=2,c=2");
    // Both values expire 1 s after the last write / call.
    let last_call = Instant::now();
    let_time_pass(last_call, Duration::from_millis(1500)).await;
    assert_eq!(command(&mut stack, target, "write").await, "w=1,c=1");

    // Calls that only read keep `called` (expire after call) alive but not `written`
    // (expire after write): read every 300 ms for 1.5 s.
    let last_write = Instant::now();
    let mut last_read = Instant::now();
    let mut reads = Vec::new();
    loop {
        let_time_pass(last_read, Duration::from_millis(300)).await;
        last_read = Instant::now();
        let sent_after_write = last_write.elapsed();
        reads.push(command(&mut stack, target, "read").await);
        if sent_after_write >= Duration::from_millis(1500) {
            break;
        }
    }
    let last = reads.last().cloned().unwrap_or_default();
    assert_eq!(
        last, "w=0,c=1",
        "after 1.5 s of reads only, `written` expired and `called` did not; reads: {reads:?}"
    );
    for read in &reads {
        assert!(
            read == "w=1,c=1" || read == "w=0,c=1",
            "unexpected read {read}; reads: {reads:?}"
        );
    }
}

/// e2e/delayed: delayed messages fire after their delay unless cancelled (also within the
/// batch that scheduled them); cancelling an unknown token is a no-op.
pub async fn delayed_messages_fire_unless_cancelled(launch: &dyn Launch) {
    let mut stack = Stack::start("delayed", launch, &[], |module| module, &[]).await;
    let target = "e2e/delayed/d1";

    // Cancelling an unknown token is a no-op; A fires after 200 ms; B (1 s) is cancelled by a
    // later invocation.
    let sent = Instant::now();
    stack
        .eddy
        .ingress
        .send_batch(&[
            msg(target, "cancel:unknown"),
            msg(target, "schedule:A:200"),
            msg(target, "schedule:B:1000"),
        ])
        .await;
    stack
        .eddy
        .wait_egress(EGRESS, "scheduled:B", DEADLINE, |values| {
            values.iter().any(|v| v == "scheduled:B").then_some(())
        })
        .await;
    stack
        .eddy
        .ingress
        .send_batch(&[msg(target, "cancel:B")])
        .await;
    stack
        .eddy
        .wait_egress(EGRESS, "cancelled:B", DEADLINE, |values| {
            values.iter().any(|v| v == "cancelled:B").then_some(())
        })
        .await;
    // C is due after B would have been: once C fired, B would have fired before it.
    let c_sent = Instant::now();
    stack
        .eddy
        .ingress
        .send_batch(&[msg(target, "schedule:C:1200")])
        .await;

    // In one batch: X is scheduled and cancelled at once, Y fires.
    let other = "e2e/delayed/d2";
    stack
        .eddy
        .ingress
        .send_batch(&[
            msg(other, "schedule:X:300"),
            msg(other, "cancel:X"),
            msg(other, "schedule:Y:600"),
        ])
        .await;

    let a_elapsed = stack
        .eddy
        .wait_egress(EGRESS, "fired:A", DEADLINE, |values| {
            values
                .iter()
                .any(|v| v == "fired:A")
                .then(|| sent.elapsed())
        })
        .await;
    assert!(
        a_elapsed >= Duration::from_millis(200),
        "A fired after {a_elapsed:?}, before its 200 ms delay"
    );
    let c_elapsed = stack
        .eddy
        .wait_egress(EGRESS, "fired:C and fired:Y", DEADLINE, |values| {
            (values.iter().any(|v| v == "fired:C") && values.iter().any(|v| v == "fired:Y"))
                .then(|| c_sent.elapsed())
        })
        .await;
    assert!(
        c_elapsed >= Duration::from_millis(1200),
        "C fired after {c_elapsed:?}, before its 1200 ms delay"
    );

    let values = stack.eddy.egress_strings(EGRESS);
    let fired: Vec<&str> = values
        .iter()
        .filter(|v| v.starts_with("fired:"))
        .map(String::as_str)
        .collect();
    assert!(
        !fired.contains(&"fired:B") && !fired.contains(&"fired:X"),
        "a cancelled delayed message fired: {values:?}"
    );
    let position = |token: &str| fired.iter().position(|v| *v == token);
    assert!(
        position("fired:A") < position("fired:C"),
        "A fired after C: {fired:?}"
    );
    assert_eq!(fired.len(), 3, "each delayed message fires once: {fired:?}");
}

/// e2e/ping <-> e2e/pong: a message cycle between two function types ends with exact hop and
/// invocation counts, each side checking its caller. Returns the stack, still running, for
/// more checks.
pub async fn ping_pong_cycle_between_two_function_types(launch: &dyn Launch) -> Stack {
    let mut stack = Stack::start("pingpong", launch, &[], |module| module, &[]).await;
    // limit 20: ping sees n = 0, 2, ..., 20 (11 hits); limit 31: ping sees 0, 2, ..., 32.
    let games = [("p1", 20, "done:p1:20:11"), ("p2", 31, "done:p2:32:17")];
    let batch: Vec<Value> = games
        .iter()
        .map(|(id, limit, _)| {
            typed_msg(
                &format!("e2e/ping/{id}"),
                "e2e/ball",
                json!({"n": 0, "limit": limit}),
            )
        })
        .collect();
    stack.eddy.ingress.send_batch(&batch).await;
    stack
        .eddy
        .wait_egress(EGRESS, "both games to finish", DEADLINE, |values| {
            (values.len() >= games.len()).then_some(())
        })
        .await;
    let mut values = stack.eddy.egress_strings(EGRESS);
    values.sort();
    let expected: Vec<String> = games.iter().map(|(_, _, done)| done.to_string()).collect();
    assert_eq!(values, expected);
    assert!(
        stack.eddy.dead_letters().is_empty(),
        "unexpected dead letters: {:?}",
        stack.eddy.dead_letters()
    );
    stack
}

/// SIGTERM while functions message each other in a cycle that never ends: eddy stops taking
/// new input, gives the work in hand the drain timeout, then exits 0 and says what it left.
pub async fn shutdown_is_bounded_during_an_endless_cycle(launch: &dyn Launch) {
    let mut stack = Stack::start(
        "endless",
        launch,
        &[],
        |module| module,
        &["--drain-timeout", "1"],
    )
    .await;
    let endless: Vec<Value> = (0..4)
        .map(|n| {
            typed_msg(
                &format!("e2e/ping/e{n}"),
                "e2e/ball",
                json!({"n": 0, "limit": 1_000_000_000_000u64}),
            )
        })
        .collect();
    stack.eddy.ingress.send_batch(&endless).await;
    let ingress = &stack.eddy.ingress;
    wait_until_async("the endless games to be under way", DEADLINE, || async {
        let reply = ingress
            .request("GET", "/v1/stats", &[], Vec::new())
            .await
            .ok()?;
        let stats: Value = serde_json::from_str(&reply.body).ok()?;
        (stats["invocations"].as_u64()? >= 40).then_some(())
    })
    .await;
    let stopping = Instant::now();
    let status = stack.eddy.stop().await;
    let took = stopping.elapsed();
    assert!(status.success(), "eddy exited with {status}");
    assert!(
        took < Duration::from_secs(10),
        "stopping took {took:?} with a 1 s drain timeout"
    );
    assert!(
        stack
            .eddy
            .process
            .log_text()
            .contains("drain timeout reached"),
        "no word of the work left behind: {}",
        stack.eddy.process.log_text()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_render_their_endpoints_and_documents() {
        let lambda = "kind: io.eddy.endpoints.v1/lambda\nspec:\n  functions: e2e/pong\n";
        let app = FunctionApp::single("http://127.0.0.1:1/{function.name}".into(), ())
            .route(
                "e2e/ping",
                FunctionApp::single("http://127.0.0.1:2/{function.name}".into(), ()),
            )
            .route(
                "ignored",
                FunctionApp::document(lambda.into(), ()).with_eddy_env(&[("AWS_REGION", "x")]),
            );
        assert_eq!(
            app.module("5s").render(),
            ModuleYaml::new()
                .http_endpoint("e2e/*", "http://127.0.0.1:1/{function.name}", "5s", "")
                .http_endpoint("e2e/ping", "http://127.0.0.1:2/{function.name}", "5s", "")
                .document(lambda)
                .render()
        );
        assert_eq!(app.guards.len(), 3);
        assert_eq!(app.eddy_env, [("AWS_REGION".to_string(), "x".to_string())]);
    }

    #[test]
    fn counts_group_by_id_in_order() {
        let values = ["a:1", "b:1", "a:2"].map(String::from);
        let grouped = counts_by_id(&values);
        assert_eq!(grouped["a"], [1, 2]);
        assert_eq!(grouped["b"], [1]);
    }
}
