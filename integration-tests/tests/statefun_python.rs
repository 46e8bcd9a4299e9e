//! End to end with Apache's own StateFun Python SDK (apache-flink-statefun 3.3.0): the real
//! `eddy` binary invokes the functions of `functions/statefun_app.py` over HTTP, messages come
//! in through the HTTP ingress (and a file ingress, and `eddy send`), results come out of the
//! file egress.
//!
//! Apache's SDK answers the first contact of every address with IncompleteInvocationContext,
//! so every test also exercises state negotiation: exact counts prove the runtime re-sent the
//! batch once, with the state, and never applied a batch twice.

use eddy_integration_tests::{
    eddy_cli, msg, typed_msg, wait_until, wait_until_async, Eddy, ModuleYaml, PythonApp, TestDir,
    DEADLINE,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const EGRESS: &str = "e2e/out";

/// Python app + eddy, dropped in this order (eddy first, the folder last).
struct Stack {
    eddy: Eddy,
    _app: PythonApp,
    dir: TestDir,
}

/// Starts the Python app and eddy with one endpoint for `e2e/*`, an HTTP ingress, a file
/// egress `e2e/out` -> out.jsonl, and `extra` documents; `files` (name, text) are written to
/// the test folder first.
async fn start(
    test: &str,
    files: &[(&str, &str)],
    extra: impl FnOnce(ModuleYaml) -> ModuleYaml,
) -> Stack {
    let dir = TestDir::new(test);
    for (name, text) in files {
        dir.write(name, text);
    }
    let app = PythonApp::start(&dir, "statefun_app", &[]).await;
    let module = ModuleYaml::new()
        .http_endpoint("e2e/*", &app.url_template(), "10s", "")
        .http_ingress("e2e/http")
        .file_egress(EGRESS, "out.jsonl");
    let module = extra(module).render();
    let eddy = Eddy::start(&dir, &module, "e2e/http", "out.jsonl").await;
    Stack {
        eddy,
        _app: app,
        dir,
    }
}

/// Groups "<id>:<count>" egress values by id, in order.
fn counts_by_id(values: &[String]) -> BTreeMap<String, Vec<u64>> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_are_exact_per_address_with_interleaved_messages() {
    // Three messages come from a file ingress, read at start-up.
    let input: String = (0..3)
        .map(|n| format!("{}\n", msg("e2e/counter/file", format!("line {n}"))))
        .collect();
    let mut stack = start("counter", &[("input.jsonl", &input)], |module| {
        module.file_ingress("e2e/file", "input.jsonl")
    })
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
fn expected_type_summaries(id: &str, inputs: &[i64]) -> Vec<Value> {
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
fn type_summaries(values: &[String], id: &str) -> Vec<Value> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_of_every_type_survives_round_trips() {
    let mut stack = start("types", &[], |module| module).await;
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
async fn let_time_pass(since: Instant, duration: Duration) {
    wait_until(
        &format!("{duration:?} of wall-clock time to pass"),
        duration + DEADLINE,
        || (since.elapsed() >= duration).then_some(()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_state_restarts_from_scratch() {
    let mut stack = start("expiring", &[], |module| module).await;
    let target = "e2e/expiring/x";

    // Sends one command and returns its egress record.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_messages_fire_unless_cancelled() {
    let mut stack = start("delayed", &[], |module| module).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_pong_cycle_between_two_function_types() {
    let mut stack = start("pingpong", &[], |module| module).await;
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
}

/// SIGTERM while functions message each other in a cycle that never ends: eddy stops taking
/// new input, gives the work in hand the drain timeout, then exits 0 and says what it left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_during_an_endless_cycle() {
    let dir = TestDir::new("endless");
    let app = PythonApp::start(&dir, "statefun_app", &[]).await;
    let module = ModuleYaml::new()
        .http_endpoint("e2e/*", &app.url_template(), "10s", "")
        .http_ingress("e2e/http")
        .file_egress(EGRESS, "out.jsonl")
        .render();
    let mut eddy = Eddy::start_with_args(
        &dir,
        &module,
        "e2e/http",
        "out.jsonl",
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
    eddy.ingress.send_batch(&endless).await;
    let ingress = &eddy.ingress;
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
    let status = eddy.stop().await;
    let took = stopping.elapsed();
    assert!(status.success(), "eddy exited with {status}");
    assert!(
        took < Duration::from_secs(10),
        "stopping took {took:?} with a 1 s drain timeout"
    );
    assert!(
        eddy.process.log_text().contains("drain timeout reached"),
        "no word of the work left behind: {}",
        eddy.process.log_text()
    );
}
