//! End to end with Apache's own StateFun Python SDK (apache-flink-statefun 3.3.0): the real
//! `eddy` binary invokes the functions of `functions/statefun_app.py` over HTTP, messages come
//! in through the HTTP ingress (and a file ingress, and `eddy send`), results come out of the
//! file egress. The scenarios are in `src/scenarios.rs`, shared with the other function apps.
//!
//! Apache's SDK answers the first contact of every address with IncompleteInvocationContext,
//! so every test also exercises state negotiation: exact counts prove the runtime re-sent the
//! batch once, with the state, and never applied a batch twice.

use eddy_integration_tests::scenarios::{self, ApachePython};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_are_exact_per_address_with_interleaved_messages() {
    scenarios::counts_are_exact_per_address(&ApachePython).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_of_every_type_survives_round_trips() {
    scenarios::state_of_every_type_survives_round_trips(&ApachePython).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_state_restarts_from_scratch() {
    scenarios::expired_state_restarts_from_scratch(&ApachePython).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_messages_fire_unless_cancelled() {
    scenarios::delayed_messages_fire_unless_cancelled(&ApachePython).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_pong_cycle_between_two_function_types() {
    scenarios::ping_pong_cycle_between_two_function_types(&ApachePython).await;
}

/// SIGTERM while functions message each other in a cycle that never ends: eddy stops taking
/// new input, gives the work in hand the drain timeout, then exits 0 and says what it left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_during_an_endless_cycle() {
    scenarios::shutdown_is_bounded_during_an_endless_cycle(&ApachePython).await;
}
