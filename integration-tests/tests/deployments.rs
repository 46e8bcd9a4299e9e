//! One function, three deployments: the reminder sample (`samples/reminder`, written once with
//! `eddy-sdk`) run
//! - embedded: `reminder-eddy` (the eddy CLI with the functions linked in) on an
//!   `io.eddy.endpoints.v1/embedded` endpoint;
//! - over HTTP: `eddy` + `reminder-http`;
//! - on Lambda: `eddy` invoking `reminder-lambda` through the real Lambda Invoke API served
//!   locally by `cargo lambda watch` (an `io.eddy.endpoints.v1/lambda` endpoint with
//!   `endpointUrl`);
//!
//! gives the same observable results: the same egress lines per id (counts and the delayed
//! reminder) and the same dead letters for bad input. A last test makes a Lambda function fail
//! for real (its runtime posts a function error to the emulator's Runtime API, which answers
//! the Invoke with that error) for some addresses and checks that their batches end in dead
//! letters while the other addresses keep flowing.
//!
//! `cargo lambda watch --only-lambda-apis` ([`lambda_emulator`]) serves the Invoke
//! API and the Runtime API; the test starts the function itself (the prebuilt
//! `reminder-lambda`, or a runtime loop inside the test) against
//! `http://<emulator>/.rt/<function name>`, so nothing is compiled while the tests run.
//! Prerequisites: `cargo build --workspace --bins` and `./scripts/setup-lambda.sh` (the
//! `cargo-lambda` binary in `<repo>/.venv-lambda`).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use eddy_integration_tests::scenarios::{lambda_emulator, TEST_AWS_ENVIRONMENT};
use eddy_integration_tests::{
    msg, repo_root, target_dir, typed_msg, wait_until_async, Eddy, Ingress, ModuleYaml, Process,
    TestDir, DEADLINE,
};
use eddy_protocol::reqreply::from_function::{EgressMessage, InvocationResponse, Response};
use eddy_protocol::reqreply::to_function::Request;
use eddy_protocol::{BuiltIn, FromFunction, Message as _, ToFunction};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

const INGRESS: &str = "example/http";
const EGRESS: &str = "example/out";
const EGRESS_FILE: &str = "out.jsonl";
/// The Lambda function name of the reminder sample (its binary's name).
const REMINDER_LAMBDA: &str = "reminder-lambda";
/// The function name under which the test's own failing function is served: the name of the
/// emulator's stub Cargo project ([`lambda_emulator`]), the only one it accepts invocations
/// of; with `--only-lambda-apis` it starts no binary, the test's [`runtime_loop`] answers.
const FLAKY: &str = REMINDER_LAMBDA;

/// A binary of the workspace's debug build. Panics with instructions when it is missing.
fn workspace_bin(name: &str) -> PathBuf {
    let path = target_dir()
        .join("debug")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{name} is missing at {}: build it with cargo build --workspace --bins \
         (./scripts/test.sh does it for you)",
        path.display()
    );
    path
}

/// Environment of an eddy that calls the local Lambda emulator: static test credentials and
/// region ([`TEST_AWS_ENVIRONMENT`]), no instance metadata service, no profile files of the
/// machine.
fn aws_env(dir: &TestDir) -> Vec<(String, String)> {
    let none = dir.join("no-aws-config");
    let none = none.to_str().expect("utf-8 path").to_string();
    let mut env: Vec<(String, String)> = TEST_AWS_ENVIRONMENT
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    env.extend([
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_CONFIG_FILE".into(), none.clone()),
        ("AWS_SHARED_CREDENTIALS_FILE".into(), none),
    ]);
    env
}

/// Starts `binary run <module>` (eddy, or a binary built with `eddy_runtime::cli::main_with`)
/// in `dir` with `env`, and waits for its HTTP ingress to answer.
async fn start_eddy(
    dir: &TestDir,
    binary: &Path,
    module_yaml: &str,
    env: &[(String, String)],
) -> Eddy {
    let module = dir.write("module.yaml", module_yaml);
    let dead_letters_file = dir.join("dead-letters.jsonl");
    let args = [
        "run",
        module.to_str().expect("utf-8 path"),
        "--dead-letters",
        dead_letters_file.to_str().expect("utf-8 path"),
        "--workers",
        "2",
    ];
    let mut vars: Vec<(&str, &str)> = vec![("RUST_LOG", "info"), ("RUST_BACKTRACE", "1")];
    vars.extend(
        env.iter()
            .map(|(key, value)| (key.as_str(), value.as_str())),
    );
    let mut process = Process::spawn("eddy", binary, &args, dir, &vars);
    let addr = process
        .wait_for_address(
            &format!("eddy: listening ingress {INGRESS} on "),
            &format!("eddy's HTTP ingress {INGRESS} to listen"),
        )
        .await;
    let ingress = Ingress::new(addr);
    wait_until_async("eddy's HTTP ingress to answer", DEADLINE, || async {
        ingress
            .health()
            .await
            .ok()
            .filter(|reply| reply.status == 200)
    })
    .await;
    Eddy {
        process,
        ingress,
        module,
        egress_file: dir.join(EGRESS_FILE),
        dead_letters_file,
    }
}

/// The module: `endpoint` (one document) + the HTTP ingress + the file egress.
fn module_yaml(endpoint: &str) -> String {
    ModuleYaml::new()
        .document(endpoint)
        .http_ingress(INGRESS)
        .file_egress(EGRESS, EGRESS_FILE)
        .render()
}

/// Fast retries, so that bad input reaches the dead letters quickly.
const RETRIES: &str = "  retries: { maxAttempts: 3, initialBackoff: 10ms, maxBackoff: 50ms }\n";

/// The Runtime API base (`AWS_LAMBDA_RUNTIME_API`) of `function` on the emulator at `addr`.
fn runtime_api(addr: SocketAddr, function: &str) -> String {
    format!("http://{addr}/.rt/{function}")
}

/// One deployment of the reminder sample, running.
struct Deployment {
    eddy: Eddy,
    /// The function process and the emulator, when there are any (killed on drop).
    _processes: Vec<Process>,
}

async fn embedded(dir: &TestDir) -> Deployment {
    let endpoint = "kind: io.eddy.endpoints.v1/embedded\nspec:\n  functions: example/*\n";
    let eddy = start_eddy(
        dir,
        &workspace_bin("reminder-eddy"),
        &module_yaml(endpoint),
        &[],
    )
    .await;
    Deployment {
        eddy,
        _processes: Vec::new(),
    }
}

async fn over_http(dir: &TestDir) -> Deployment {
    let mut function = Process::spawn(
        "reminder-http",
        &workspace_bin("reminder-http"),
        &["--listen", "127.0.0.1:0"],
        dir,
        &[("RUST_LOG", "info")],
    );
    let addr = function
        .wait_for_address("listening on ", "reminder-http to listen")
        .await;
    let endpoint = format!(
        "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: example/*\n  \
         urlPathTemplate: http://{addr}/{{function.name}}\n  transport:\n    timeouts:\n      \
         call: 20s\n{RETRIES}"
    );
    let eddy = start_eddy(dir, &workspace_bin("eddy"), &module_yaml(&endpoint), &[]).await;
    Deployment {
        eddy,
        _processes: vec![function],
    }
}

async fn on_lambda(dir: &TestDir) -> Deployment {
    let (emulator, addr) = lambda_emulator(dir, REMINDER_LAMBDA).await;
    let api = runtime_api(addr, REMINDER_LAMBDA);
    let function = Process::spawn(
        REMINDER_LAMBDA,
        &workspace_bin(REMINDER_LAMBDA),
        &[],
        dir,
        &[
            ("AWS_LAMBDA_RUNTIME_API", api.as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", REMINDER_LAMBDA),
            ("AWS_LAMBDA_FUNCTION_VERSION", "1"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("RUST_LOG", "info"),
        ],
    );
    let endpoint = format!(
        "kind: io.eddy.endpoints.v1/lambda\nspec:\n  functions: example/*\n  \
         functionName: {REMINDER_LAMBDA}\n  region: us-east-1\n  \
         endpointUrl: http://{addr}\n  timeouts:\n    call: 20s\n{RETRIES}"
    );
    let eddy = start_eddy(
        dir,
        &workspace_bin("eddy"),
        &module_yaml(&endpoint),
        &aws_env(dir),
    )
    .await;
    Deployment {
        eddy,
        _processes: vec![emulator, function],
    }
}

/// What a deployment did with the scenario: egress lines grouped by id (in order), and the
/// dead letters as (address, messages).
#[derive(Debug, PartialEq)]
struct Observed {
    egress: BTreeMap<String, Vec<String>>,
    dead_letters: BTreeMap<String, Vec<Value>>,
}

fn by_id(lines: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut grouped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines {
        let (id, _) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("egress line without `id: `: {line}"));
        grouped
            .entry(id.to_string())
            .or_default()
            .push(line.clone());
    }
    grouped
}

const REMINDER: &str = "example/reminder";

/// The scenario: first hits and bad input, the reminders, then more hits.
async fn run_scenario(eddy: &mut Eddy) -> Observed {
    let target = |id: &str| format!("{REMINDER}/{id}");
    // Phase 1: one hit per id (each schedules its reminder), and two kinds of bad input.
    eddy.ingress
        .send_batch(&[
            msg(&target("alice"), "hit"),
            msg(&target("bob"), "hit"),
            msg(&target("dave"), "oops"),
            msg(&target("carol"), "hit"),
            typed_msg(&target("erin"), "io.statefun.types/long", 7),
        ])
        .await;
    eddy.wait_egress(EGRESS, "the three reminders", DEADLINE, |lines| {
        let reminded = lines
            .iter()
            .filter(|line| line.contains(": reminder count="))
            .count();
        (reminded == 3).then_some(())
    })
    .await;
    eddy.wait_dead_letters("two dead letters", DEADLINE, |lines| {
        (lines.len() == 2).then_some(())
    })
    .await;
    // Phase 2: more hits (no second reminder: it comes on the first hit only).
    eddy.ingress
        .send_batch(&[
            msg(&target("alice"), "hit"),
            msg(&target("bob"), "hit"),
            msg(&target("alice"), "hit"),
        ])
        .await;
    eddy.wait_egress(EGRESS, "the second hits", DEADLINE, |lines| {
        let done = lines.iter().any(|line| line == "alice: count=3")
            && lines.iter().any(|line| line == "bob: count=2");
        done.then_some(())
    })
    .await;

    let mut dead_letters = BTreeMap::new();
    for letter in eddy.dead_letters() {
        let address = letter["address"].as_str().expect("address").to_string();
        let error = letter["error"].as_str().expect("error");
        if address.ends_with("/dave") {
            assert!(
                error.contains("takes the strings \"hit\" or \"remind\", got \"oops\""),
                "the dead letter names the function's error: {error}"
            );
        }
        let messages: Vec<Value> = letter["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|message| json!({"typename": message["typename"], "value": message["value"]}))
            .collect();
        assert!(
            dead_letters.insert(address.clone(), messages).is_none(),
            "one dead letter per bad address, two for {address}"
        );
    }
    Observed {
        egress: by_id(&eddy.egress_strings(EGRESS)),
        dead_letters,
    }
}

/// What the reminder sample does with the scenario, by its rules (samples/reminder/src/lib.rs).
fn expected() -> Observed {
    let lines = |id: &str, counts: &[&str]| -> (String, Vec<String>) {
        (
            id.to_string(),
            counts.iter().map(|rest| format!("{id}: {rest}")).collect(),
        )
    };
    Observed {
        egress: BTreeMap::from([
            lines(
                "alice",
                &["count=1", "reminder count=1", "count=2", "count=3"],
            ),
            lines("bob", &["count=1", "reminder count=1", "count=2"]),
            lines("carol", &["count=1", "reminder count=1"]),
        ]),
        dead_letters: BTreeMap::from([
            (
                format!("{REMINDER}/dave"),
                vec![json!({"typename": "io.statefun.types/string", "value": "oops"})],
            ),
            (
                format!("{REMINDER}/erin"),
                vec![json!({"typename": "io.statefun.types/long", "value": 7})],
            ),
        ]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminder_embedded() {
    let dir = TestDir::new("deploy-embedded");
    let mut deployment = embedded(&dir).await;
    assert_eq!(run_scenario(&mut deployment.eddy).await, expected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminder_over_http() {
    let dir = TestDir::new("deploy-http");
    let mut deployment = over_http(&dir).await;
    assert_eq!(run_scenario(&mut deployment.eddy).await, expected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminder_on_lambda() {
    let dir = TestDir::new("deploy-lambda");
    let mut deployment = on_lambda(&dir).await;
    assert_eq!(run_scenario(&mut deployment.eddy).await, expected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_endpoint_needs_linked_functions() {
    // The plain eddy binary has no functions: start-up fails naming the document and field.
    let dir = TestDir::new("deploy-embedded-plain");
    let module = dir.write(
        "module.yaml",
        &module_yaml("kind: io.eddy.endpoints.v1/embedded\nspec:\n  functions: example/*\n"),
    );
    let mut eddy = Process::spawn(
        "eddy",
        &workspace_bin("eddy"),
        &["run", module.to_str().expect("utf-8 path")],
        &dir,
        &[],
    );
    let status = eddy.wait_exit(DEADLINE).await;
    assert_eq!(status.code(), Some(3), "{}", eddy.log_text());
    let log = eddy.log_text();
    assert!(
        log.contains("module.yaml: document 0: spec.functions: `example/*` is declared embedded"),
        "{log}"
    );
    assert!(log.contains("eddy_runtime::cli::main_with"), "{log}");

    // reminder-eddy has example/reminder, not example/other.
    let dir = TestDir::new("deploy-embedded-unknown");
    let module = dir.write(
        "module.yaml",
        &module_yaml("kind: io.eddy.endpoints.v1/embedded\nspec:\n  functions: example/other\n"),
    );
    let mut eddy = Process::spawn(
        "reminder-eddy",
        &workspace_bin("reminder-eddy"),
        &["validate", module.to_str().expect("utf-8 path")],
        &dir,
        &[],
    );
    let status = eddy.wait_exit(DEADLINE).await;
    assert_eq!(status.code(), Some(3), "{}", eddy.log_text());
    let log = eddy.log_text();
    assert!(
        log.contains("`example/other` is not one of the functions linked into this binary (example/reminder)"),
        "{log}"
    );
}

// ---- a Lambda function that fails for real ----

/// A Lambda function run inside the test through the emulator's Runtime API: it fails (a
/// Lambda function error, `errorType` Boom) for ids starting with `bad`, and otherwise writes
/// one egress line `"{id}: {n} message(s)"` per batch.
async fn runtime_loop(api: String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    loop {
        let next = hyper::Request::get(format!("{api}/2018-06-01/runtime/invocation/next"))
            .body(Full::new(Bytes::new()))
            .expect("request");
        let Ok(response) = client.request(next).await else {
            return;
        };
        let request_id = response
            .headers()
            .get("lambda-runtime-aws-request-id")
            .and_then(|value| value.to_str().ok())
            .expect("a request id")
            .to_string();
        let event = response
            .into_body()
            .collect()
            .await
            .expect("the event")
            .to_bytes();
        let (outcome, body) = answer(&event);
        let post = hyper::Request::post(format!(
            "{api}/2018-06-01/runtime/invocation/{request_id}/{outcome}"
        ))
        .header("content-type", "application/json")
        .header("lambda-runtime-function-error-type", "Boom")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
        if client.request(post).await.is_err() {
            return;
        }
    }
}

/// `("response", envelope)` or `("error", error)` for one event.
fn answer(event: &[u8]) -> (&'static str, Value) {
    let envelope: Value = serde_json::from_slice(event).expect("the event is JSON");
    let body = BASE64
        .decode(envelope["body"].as_str().expect("a body"))
        .expect("the body is base64");
    let request = ToFunction::decode(body.as_slice()).expect("a ToFunction");
    let Some(Request::Invocation(batch)) = request.request else {
        panic!("no batch in {envelope}");
    };
    let id = batch.target.expect("a target").id;
    if id.starts_with("bad") {
        return (
            "error",
            json!({"errorType": "Boom", "errorMessage": format!("cannot serve {id}")}),
        );
    }
    let line = format!("{id}: {} message(s)", batch.invocations.len());
    let reply = FromFunction {
        response: Some(Response::InvocationResult(InvocationResponse {
            outgoing_egresses: vec![EgressMessage {
                egress_namespace: "example".into(),
                egress_type: "out".into(),
                argument: Some(BuiltIn::String(line).to_typed_value()),
            }],
            ..InvocationResponse::default()
        })),
    };
    (
        "response",
        json!({
            "statusCode": 200,
            "headers": {"content-type": "application/octet-stream"},
            "isBase64Encoded": true,
            "body": BASE64.encode(reply.encode_to_vec()),
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_function_errors_go_to_dead_letters_while_others_flow() {
    let dir = TestDir::new("deploy-lambda-errors");
    let (_emulator, addr) = lambda_emulator(&dir, FLAKY).await;
    let function = tokio::spawn(runtime_loop(runtime_api(addr, FLAKY)));
    let endpoint = format!(
        "kind: io.eddy.endpoints.v1/lambda\nspec:\n  functions: test/*\n  functionName: {FLAKY}\n  \
         qualifier: $LATEST\n  region: us-east-1\n  endpointUrl: http://{addr}\n  \
         timeouts:\n    call: 20s\n{RETRIES}"
    );
    let mut eddy = start_eddy(
        &dir,
        &workspace_bin("eddy"),
        &module_yaml(&endpoint),
        &aws_env(&dir),
    )
    .await;
    eddy.ingress
        .send_batch(&[
            msg("test/f/bad-1", "x"),
            msg("test/f/good-1", "a"),
            msg("test/f/bad-2", "y"),
            msg("test/f/good-2", "b"),
        ])
        .await;
    let letters = eddy
        .wait_dead_letters("the bad addresses' dead letters", DEADLINE, |lines| {
            (lines.len() == 2).then(|| lines.to_vec())
        })
        .await;
    let mut addresses: Vec<&str> = letters
        .iter()
        .map(|letter| letter["address"].as_str().expect("address"))
        .collect();
    addresses.sort_unstable();
    assert_eq!(addresses, ["test/f/bad-1", "test/f/bad-2"]);
    for letter in &letters {
        let error = letter["error"].as_str().expect("error");
        assert!(
            error.contains("at lambda function reminder-lambda:$LATEST via http://127.0.0.1:"),
            "{error}"
        );
        assert!(error.contains("failed after 3 attempt(s)"), "{error}");
        assert!(
            error.contains("function error (lambda api 500): Boom: cannot serve bad-"),
            "{error}"
        );
        assert_eq!(letter["messages"].as_array().map(Vec::len), Some(1));
    }
    // The good addresses flowed meanwhile, and keep flowing.
    eddy.ingress.send_batch(&[msg("test/f/good-1", "c")]).await;
    let lines = eddy
        .wait_egress(EGRESS, "the good addresses' lines", DEADLINE, |lines| {
            (lines.len() == 3).then(|| lines.to_vec())
        })
        .await;
    let grouped = by_id(&lines);
    assert_eq!(
        grouped,
        BTreeMap::from([
            (
                "good-1".to_string(),
                vec!["good-1: 1 message(s)".to_string(); 2]
            ),
            (
                "good-2".to_string(),
                vec!["good-2: 1 message(s)".to_string()]
            ),
        ])
    );
    function.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_module_files_validate() {
    let dir = TestDir::new("deploy-validate");
    let samples = repo_root().join("samples/reminder");
    let cases = [
        (
            "eddy",
            "http.yaml",
            "-> http://127.0.0.1:9000/{function.name}",
        ),
        (
            "eddy",
            "lambda.yaml",
            "-> lambda reminder-lambda at http://127.0.0.1:9000",
        ),
        (
            "eddy",
            "embedded.yaml",
            "-> embedded (maxNumBatchRequests 1000); runs only in a binary with the functions \
             linked in",
        ),
        (
            "reminder-eddy",
            "embedded.yaml",
            "-> embedded (maxNumBatchRequests 1000)\n",
        ),
    ];
    for (binary, file, needle) in cases {
        let path = samples.join(file);
        let mut process = Process::spawn(
            binary,
            &workspace_bin(binary),
            &["validate", path.to_str().expect("utf-8 path")],
            &dir,
            &[],
        );
        let status = process.wait_exit(DEADLINE).await;
        let log = process.log_text();
        assert!(status.success(), "{binary} validate {file}: {log}");
        assert!(log.contains(needle), "{binary} validate {file}: {log}");
    }
}
