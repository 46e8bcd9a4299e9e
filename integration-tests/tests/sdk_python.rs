//! End to end with Eddy's own Python SDK (package `eddy`, ./sdk-python): the real `eddy`
//! binary invokes the functions of `functions/eddy_app.py` (the same function types and
//! behaviour as Apache's `functions/statefun_app.py`), through the scenarios of
//! `src/scenarios.rs`, in two deployments:
//!
//! - [`EddyPython`]: an ASGI app served by uvicorn from `<repo>/.venv-eddy`, behind an
//!   `io.statefun.endpoints.v2/http` endpoint;
//! - [`EddyPythonLambda`]: the same functions as a Lambda handler
//!   (`functions/eddy_lambda_app.py`) behind the runtime's `io.eddy.endpoints.v1/lambda`
//!   endpoint, against the Lambda emulator of `cargo lambda watch --only-lambda-apis`, served
//!   by the SDK's own Runtime API loop `python -m eddy.lambda_runtime` (AWS's awslambdaric
//!   4.2.2 crashes with SIGSEGV on the emulator's `/next` replies, which carry no Content-Type).
//!
//! Same observable results as with Apache's SDK and Eddy's Rust SDK. Mixed modules put Apache's
//! SDK and Eddy's in one module (their functions message each other), and HTTP and Lambda
//! deployments side by side. In both deployments a function that raises ends, after the
//! retries, as exactly one dead letter carrying the SDK's error message. The SDK answers the
//! first contact of every address with IncompleteInvocationContext, so every test also
//! exercises state negotiation.
//!
//! Prerequisites: the `eddy` binary, `./scripts/setup-python-sdk.sh` (`.venv-eddy`),
//! `./scripts/setup-python.sh` (`.venv-statefun`, for the mixed tests) and
//! `./scripts/setup-lambda.sh` (`.venv-lambda`, or set `EDDY_CARGO_LAMBDA`).

use eddy_integration_tests::scenarios::{
    self, lambda_emulator, set_test_aws_environment, ApachePython, FunctionApp, Launch,
    LaunchFuture, Mixed, Stack, EGRESS,
};
use eddy_integration_tests::{
    functions_dir, msg, repo_root, Eddy, ModuleYaml, Process, TestDir, DEADLINE,
};
use std::path::PathBuf;

/// The Python of the venv holding Eddy's Python SDK. Panics with instructions when missing.
fn eddy_venv_python() -> PathBuf {
    let path = repo_root().join(".venv-eddy").join("bin").join("python");
    assert!(
        path.is_file(),
        "the Python venv for Eddy's Python SDK is missing at {}: run ./scripts/setup-python-sdk.sh",
        path.display()
    );
    path
}

/// Eddy's Python SDK as an ASGI app: `functions/eddy_app.py` under uvicorn on 127.0.0.1 (log:
/// `eddy_app.log`).
struct EddyPython;

impl Launch for EddyPython {
    fn launch<'a>(&'a self, dir: &'a TestDir) -> LaunchFuture<'a> {
        Box::pin(async move {
            let script = functions_dir().join("eddy_app.py");
            let script = script.to_str().expect("utf-8 path").to_string();
            let mut process = Process::spawn(
                "eddy_app",
                &eddy_venv_python(),
                &["-u", &script, "--port", "0"],
                dir,
                &[],
            );
            let addr = process
                .wait_for_address("eddy_app: serving on ", "eddy_app to listen")
                .await;
            FunctionApp::single(format!("http://{addr}/{{function.name}}"), process)
        })
    }
}

/// The name of the Lambda function in the emulator.
const LAMBDA_FUNCTION: &str = "eddy-python-e2e";

/// Eddy's Python SDK as a Lambda handler: `eddy_lambda_app.handler` served by
/// `python -m eddy.lambda_runtime` (log: `eddy_lambda_app.log`) through the Runtime API of
/// `cargo lambda watch --only-lambda-apis`, behind a Lambda endpoint for `functions` whose
/// `endpointUrl` is the emulator's Invoke API; `extra_spec` holds more `spec` lines.
struct EddyPythonLambda {
    functions: &'static str,
    extra_spec: &'static str,
}

/// Every `e2e/*` type through one Lambda function.
const EDDY_PYTHON_LAMBDA: EddyPythonLambda = EddyPythonLambda {
    functions: "e2e/*",
    extra_spec: "",
};

impl Launch for EddyPythonLambda {
    fn launch<'a>(&'a self, dir: &'a TestDir) -> LaunchFuture<'a> {
        Box::pin(async move {
            set_test_aws_environment();
            let (emulator, addr) = lambda_emulator(dir, LAMBDA_FUNCTION).await;
            let runtime_api = format!("{addr}/.rt/{LAMBDA_FUNCTION}");
            let functions = functions_dir();
            let runtime = Process::spawn(
                "eddy_lambda_app",
                &eddy_venv_python(),
                &["-u", "-m", "eddy.lambda_runtime", "eddy_lambda_app:handler"],
                dir,
                &[
                    ("AWS_LAMBDA_RUNTIME_API", runtime_api.as_str()),
                    ("AWS_LAMBDA_FUNCTION_NAME", LAMBDA_FUNCTION),
                    ("LAMBDA_TASK_ROOT", functions.to_str().expect("utf-8 path")),
                ],
            );
            // One Lambda function serves every type (the runtime warns that functionName has no
            // {function.name}: intended here).
            let document = format!(
                "kind: io.eddy.endpoints.v1/lambda\nspec:\n  functions: {}\n  \
                 functionName: {LAMBDA_FUNCTION}\n  region: us-east-1\n  \
                 endpointUrl: http://{addr}\n  timeouts:\n    call: 10s\n{}",
                self.functions, self.extra_spec
            );
            FunctionApp::document(document, (runtime, emulator))
        })
    }
}

/// How many balls each of e2e/ping and e2e/pong caught in the Eddy Python app whose log is
/// `<log>.log` (`eddy_app: e2e/ping caught the ball ...`).
fn balls_caught_by_eddy(stack: &Stack, log: &str) -> (usize, usize) {
    let text = std::fs::read_to_string(stack.dir.join(&format!("{log}.log")))
        .unwrap_or_else(|e| panic!("the {log} log: {e}"));
    let caught = |typename: &str| {
        let needle = format!("eddy_app: {typename} caught the ball");
        text.lines().filter(|line| line.contains(&needle)).count()
    };
    (caught("e2e/ping"), caught("e2e/pong"))
}

/// Fast retries, so a failing batch reaches the dead letters quickly.
const RETRIES: &str =
    "  retries:\n    maxAttempts: 2\n    initialBackoff: 10ms\n    maxBackoff: 50ms\n";

/// A function that raises (e2e/expiring given an unknown command): the SDK answers a 500 with
/// the error (never hangs), the runtime retries, then dead-letters exactly that batch, with the
/// SDK's error; another address of the same type is unaffected.
async fn a_failing_function_is_dead_lettered(launch: &dyn Launch) {
    let dir = TestDir::new("failing");
    let app = launch.launch(&dir).await;
    // HTTP endpoints get the retries here; a Lambda launch has them in its document already.
    let module = app
        .endpoints
        .iter()
        .fold(ModuleYaml::new(), |module, (functions, url)| {
            module.http_endpoint(functions, url, "10s", RETRIES)
        });
    let module = app
        .documents
        .iter()
        .fold(module, |module, document| module.document(document))
        .http_ingress("e2e/http")
        .file_egress(EGRESS, "out.jsonl")
        .render();
    let mut eddy = Eddy::start(&dir, &module, "e2e/http", "out.jsonl").await;
    eddy.ingress
        .send_batch(&[
            msg("e2e/expiring/bad", "bogus"),
            msg("e2e/expiring/good", "write"),
        ])
        .await;
    let lines = eddy
        .wait_dead_letters("the failed batch", DEADLINE, |lines| {
            (!lines.is_empty()).then(|| lines.to_vec())
        })
        .await;
    eddy.wait_egress(EGRESS, "the healthy address", DEADLINE, |values| {
        values.iter().any(|v| v == "w=1,c=1").then_some(())
    })
    .await;
    assert_eq!(lines.len(), 1, "one dead letter: {lines:#?}");
    let line = &lines[0];
    assert_eq!(line["address"], "e2e/expiring/bad", "{line}");
    assert_eq!(line["messages"][0]["value"], "bogus", "{line}");
    let error = line["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("function failed: ValueError: unknown command 'bogus'"),
        "the dead letter does not carry the SDK's error: {line}"
    );
    assert_eq!(eddy.egress_strings(EGRESS), vec!["w=1,c=1"]);
    drop(eddy);
    drop(app);
}

// ---------------------------------------------------------------------------------------------
// ASGI
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_are_exact_per_address_with_interleaved_messages() {
    scenarios::counts_are_exact_per_address(&EddyPython).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_of_every_type_survives_round_trips() {
    scenarios::state_of_every_type_survives_round_trips(&EddyPython).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_state_restarts_from_scratch() {
    scenarios::expired_state_restarts_from_scratch(&EddyPython).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_messages_fire_unless_cancelled() {
    scenarios::delayed_messages_fire_unless_cancelled(&EddyPython).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_pong_cycle_between_two_function_types() {
    let stack = scenarios::ping_pong_cycle_between_two_function_types(&EddyPython).await;
    assert_eq!(balls_caught_by_eddy(&stack, "eddy_app"), (28, 26));
}

/// SIGTERM while functions message each other in a cycle that never ends: eddy stops taking
/// new input, gives the work in hand the drain timeout, then exits 0 and says what it left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_during_an_endless_cycle() {
    scenarios::shutdown_is_bounded_during_an_endless_cycle(&EddyPython).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_function_is_dead_lettered_with_its_error() {
    a_failing_function_is_dead_lettered(&EddyPython).await;
}

/// Mixed: e2e/ping (and the rest) served by Apache's SDK, e2e/pong by Eddy's, in one module.
/// Each side checks that its caller is the other side; the Eddy app's log proves the split.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_apache_ping_and_eddy_pong_play_together() {
    let mixed = Mixed {
        rest: ApachePython,
        pong: EddyPython,
    };
    let stack = scenarios::ping_pong_cycle_between_two_function_types(&mixed).await;
    assert_eq!(
        balls_caught_by_eddy(&stack, "eddy_app"),
        (0, 26),
        "the Eddy app serves every pong and no ping"
    );
}

/// The other way round: Eddy's SDK serves e2e/ping, Apache's SDK e2e/pong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_eddy_ping_and_apache_pong_play_together() {
    let mixed = Mixed {
        rest: EddyPython,
        pong: ApachePython,
    };
    let stack = scenarios::ping_pong_cycle_between_two_function_types(&mixed).await;
    assert_eq!(
        balls_caught_by_eddy(&stack, "eddy_app"),
        (28, 0),
        "the Eddy app serves every ping and no pong"
    );
}

// ---------------------------------------------------------------------------------------------
// Lambda
// ---------------------------------------------------------------------------------------------

/// The same scenarios with the Python SDK deployed as a Lambda handler.
mod lambda {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counts_are_exact_per_address_with_interleaved_messages() {
        scenarios::counts_are_exact_per_address(&EDDY_PYTHON_LAMBDA).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn state_of_every_type_survives_round_trips() {
        scenarios::state_of_every_type_survives_round_trips(&EDDY_PYTHON_LAMBDA).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expired_state_restarts_from_scratch() {
        scenarios::expired_state_restarts_from_scratch(&EDDY_PYTHON_LAMBDA).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delayed_messages_fire_unless_cancelled() {
        scenarios::delayed_messages_fire_unless_cancelled(&EDDY_PYTHON_LAMBDA).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ping_pong_cycle_between_two_function_types() {
        let stack =
            scenarios::ping_pong_cycle_between_two_function_types(&EDDY_PYTHON_LAMBDA).await;
        assert_eq!(balls_caught_by_eddy(&stack, "eddy_lambda_app"), (28, 26));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_is_bounded_during_an_endless_cycle() {
        scenarios::shutdown_is_bounded_during_an_endless_cycle(&EDDY_PYTHON_LAMBDA).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_function_is_dead_lettered_with_its_error() {
        let launch = EddyPythonLambda {
            functions: "e2e/*",
            extra_spec: RETRIES,
        };
        a_failing_function_is_dead_lettered(&launch).await;
    }

    /// HTTP and Lambda in one module: Apache's SDK over HTTP serves e2e/ping (and the rest),
    /// Eddy's SDK as a Lambda handler serves e2e/pong.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mixed_apache_ping_over_http_and_eddy_pong_on_lambda() {
        let mixed = Mixed {
            rest: ApachePython,
            pong: EddyPythonLambda {
                functions: "e2e/pong",
                extra_spec: "",
            },
        };
        let stack = scenarios::ping_pong_cycle_between_two_function_types(&mixed).await;
        assert_eq!(
            balls_caught_by_eddy(&stack, "eddy_lambda_app"),
            (0, 26),
            "the Lambda handler serves every pong and no ping"
        );
    }
}
