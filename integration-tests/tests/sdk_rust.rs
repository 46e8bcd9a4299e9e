//! End to end with Eddy's Rust SDK: the same scenarios as `statefun_python.rs` (in
//! `src/scenarios.rs`), with the `e2e` functions written with `eddy-sdk`
//! (`src/bin/sdk-app.rs`), invoked by the real `eddy` binary:
//! - served by the SDK's HTTP service (the tests at the top level);
//! - as a Lambda handler (`eddy_sdk::lambda::run`) behind the Lambda emulator of `cargo lambda
//!   watch` (`./scripts/setup-lambda.sh`), through the runtime's `io.eddy.endpoints.v1/lambda`
//!   endpoint (module [`lambda`]).
//!
//! The mixed tests put Apache's Python SDK and the Rust SDK in one module: the functions of one
//! SDK message those of the other.

use eddy_integration_tests::scenarios::{
    self, ApachePython, Launch, Mixed, RustSdk, Stack, EGRESS,
};
use eddy_integration_tests::{msg, Eddy, ModuleYaml, TestDir, DEADLINE};
use std::path::PathBuf;

/// How many balls each type caught in the Rust SDK app, from its log
/// (`function=e2e/ping ... caught the ball`).
fn balls_caught_by_rust(stack: &Stack) -> (usize, usize) {
    let log = std::fs::read_to_string(stack.dir.join("sdk-app.log")).expect("the sdk-app log");
    let caught = |function: &str| {
        log.lines()
            .filter(|line| line.contains("caught the ball"))
            .filter(|line| line.contains(&format!("function={function} ")))
            .count()
    };
    (caught("e2e/ping"), caught("e2e/pong"))
}

fn rust_sdk() -> RustSdk {
    RustSdk {
        bin: PathBuf::from(env!("CARGO_BIN_EXE_sdk-app")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_are_exact_per_address_with_interleaved_messages() {
    scenarios::counts_are_exact_per_address(&rust_sdk()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_of_every_type_survives_round_trips() {
    scenarios::state_of_every_type_survives_round_trips(&rust_sdk()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_state_restarts_from_scratch() {
    scenarios::expired_state_restarts_from_scratch(&rust_sdk()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_messages_fire_unless_cancelled() {
    scenarios::delayed_messages_fire_unless_cancelled(&rust_sdk()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_pong_cycle_between_two_function_types() {
    let stack = scenarios::ping_pong_cycle_between_two_function_types(&rust_sdk()).await;
    // Both games: ping caught 11 + 17 balls, pong 10 + 16.
    assert_eq!(balls_caught_by_rust(&stack), (28, 26));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_during_an_endless_cycle() {
    scenarios::shutdown_is_bounded_during_an_endless_cycle(&rust_sdk()).await;
}

/// Mixed deployment: e2e/ping served by the Rust SDK app, e2e/pong by Apache's Python SDK
/// app, in one module. Each side checks that its caller is the other side, so the exact
/// results prove that the two SDKs' functions called each other through eddy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_rust_ping_and_apache_python_pong_play_together() {
    let mixed = Mixed {
        rest: rust_sdk(),
        pong: ApachePython,
    };
    let stack = scenarios::ping_pong_cycle_between_two_function_types(&mixed).await;
    assert_eq!(
        balls_caught_by_rust(&stack),
        (28, 0),
        "the Rust app serves every ping and no pong"
    );
}

/// The other way round: Apache's Python SDK serves e2e/ping, the Rust SDK e2e/pong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_apache_python_ping_and_rust_pong_play_together() {
    let mixed = Mixed {
        rest: ApachePython,
        pong: rust_sdk(),
    };
    let stack = scenarios::ping_pong_cycle_between_two_function_types(&mixed).await;
    assert_eq!(
        balls_caught_by_rust(&stack),
        (0, 26),
        "the Rust app serves every pong and no ping"
    );
}

/// A handler error is an HTTP 500 naming the function, the id and the error; after its retries
/// the batch is one dead letter carrying that text, and the address goes on with the next
/// message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_ends_in_one_dead_letter_and_the_address_goes_on() {
    let dir = TestDir::new("rust-dead-letter");
    let app = rust_sdk().launch(&dir).await;
    let (_, url) = &app.endpoints[0];
    let module = ModuleYaml::new()
        .http_endpoint(
            "e2e/*",
            url,
            "10s",
            "  retries:\n    maxAttempts: 2\n    initialBackoff: 10ms\n    maxBackoff: 20ms\n",
        )
        .http_ingress("e2e/http")
        .file_egress(EGRESS, "out.jsonl")
        .render();
    let mut eddy = Eddy::start(&dir, &module, "e2e/http", "out.jsonl").await;
    let target = "e2e/delayed/x";
    eddy.ingress.send_batch(&[msg(target, "bogus")]).await;
    let dead = eddy
        .wait_dead_letters("the failed batch", DEADLINE, |lines| lines.first().cloned())
        .await;
    assert_eq!(dead["address"], target, "{dead}");
    let error = dead["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("500")
            && error.contains("function e2e/delayed failed for id")
            && error.contains("unknown command")
            && error.contains("bogus"),
        "the dead letter names the status, function, id and error: {dead}"
    );
    assert_eq!(dead["messages"][0]["value"], "bogus", "{dead}");
    // The address is not stuck.
    eddy.ingress.send_batch(&[msg(target, "fire:after")]).await;
    eddy.wait_egress(EGRESS, "fired:after", DEADLINE, |values| {
        values.iter().any(|v| v == "fired:after").then_some(())
    })
    .await;
    assert_eq!(eddy.egress_strings(EGRESS), ["fired:after"]);
    assert_eq!(eddy.dead_letters().len(), 1);
}

/// The same scenarios with the Rust SDK deployed as a Lambda handler.
mod lambda {
    use super::balls_caught_by_rust;
    use eddy_integration_tests::scenarios::{self, ApachePython, Mixed, RustSdkLambda};
    use std::path::PathBuf;

    fn rust_lambda() -> RustSdkLambda {
        RustSdkLambda {
            bin: PathBuf::from(env!("CARGO_BIN_EXE_sdk-app")),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counts_are_exact_per_address_with_interleaved_messages() {
        scenarios::counts_are_exact_per_address(&rust_lambda()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn state_of_every_type_survives_round_trips() {
        scenarios::state_of_every_type_survives_round_trips(&rust_lambda()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expired_state_restarts_from_scratch() {
        scenarios::expired_state_restarts_from_scratch(&rust_lambda()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delayed_messages_fire_unless_cancelled() {
        scenarios::delayed_messages_fire_unless_cancelled(&rust_lambda()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ping_pong_cycle_between_two_function_types() {
        let stack = scenarios::ping_pong_cycle_between_two_function_types(&rust_lambda()).await;
        assert_eq!(balls_caught_by_rust(&stack), (28, 26));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_is_bounded_during_an_endless_cycle() {
        scenarios::shutdown_is_bounded_during_an_endless_cycle(&rust_lambda()).await;
    }

    /// Mixed deployment across transports: e2e/ping is the Rust SDK on Lambda, e2e/pong
    /// Apache's Python SDK over HTTP.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mixed_rust_lambda_ping_and_apache_python_http_pong_play_together() {
        let mixed = Mixed {
            rest: rust_lambda(),
            pong: ApachePython,
        };
        let stack = scenarios::ping_pong_cycle_between_two_function_types(&mixed).await;
        assert_eq!(
            balls_caught_by_rust(&stack),
            (28, 0),
            "the Rust Lambda handler serves every ping and no pong"
        );
    }
}
