//! Faults: slow, failing and garbage-answering functions (`functions/faulty_app.py`) in the
//! same module as healthy functions written with Apache's SDK (`functions/statefun_app.py`).
//!
//! What must hold (design §2, "lessons from StateFun's users"):
//! - a slow or failing address stalls neither other addresses nor other function types: the
//!   healthy messages all complete while the slow address is still stuck in its first call;
//! - a failed batch goes to the dead letters exactly once, with exactly its messages, and
//!   nothing is lost: every healthy message produces its egress record;
//! - transient failures are retried within the call budget and never reach the dead letters;
//! - a reply that is not protobuf never crashes the runtime.

use eddy_integration_tests::{
    msg, wait_until_async, Eddy, ModuleYaml, PythonApp, TestDir, DEADLINE,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

const EGRESS: &str = "e2e/out";

/// Fast retries inside a 2 s call budget, so the failures resolve quickly.
const RETRIES: &str =
    "  retries:\n    maxAttempts: 3\n    initialBackoff: 10ms\n    maxBackoff: 100ms\n";

/// `count` messages "<id>#<n>" to `target`.
fn messages(target: &str, count: usize) -> Vec<Value> {
    let id = target.rsplit('/').next().expect("an id");
    (0..count)
        .map(|n| msg(target, format!("{id}#{n}")))
        .collect()
}

/// The dead-lettered messages per address, in order, checking the line format on the way.
fn dead_lettered(lines: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut by_address: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines {
        let address = line["address"]
            .as_str()
            .unwrap_or_else(|| panic!("dead letter without an address: {line}"));
        assert!(
            line["time"].as_str().is_some_and(|t| !t.is_empty()),
            "dead letter without a time: {line}"
        );
        assert!(
            line["error"].as_str().is_some_and(|e| !e.is_empty()),
            "dead letter without an error: {line}"
        );
        let batch = line["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("dead letter without messages: {line}"));
        assert!(!batch.is_empty(), "dead letter with an empty batch: {line}");
        for message in batch {
            assert_eq!(message["target"], address, "dead letter {line}");
            assert!(
                message["caller"].is_null(),
                "messages from the ingress have no caller: {line}"
            );
            assert_eq!(
                message["typename"], "io.statefun.types/string",
                "dead letter {line}"
            );
            let value = message["value"]
                .as_str()
                .unwrap_or_else(|| panic!("dead-lettered message without a value: {line}"));
            by_address
                .entry(address.to_string())
                .or_default()
                .push(value.to_string());
        }
    }
    by_address
}

/// The string values of `messages`.
fn values(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["value"].as_str().expect("a string value").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_addresses_neither_stall_nor_lose_healthy_messages() {
    let dir = TestDir::new("faults");
    let healthy_app = PythonApp::start(&dir, "statefun_app", &[]).await;
    let faulty_app = PythonApp::start(&dir, "faulty_app", &["--slow-seconds", "60"]).await;
    let module = ModuleYaml::new()
        .http_endpoint("e2e/*", &healthy_app.url_template(), "10s", "")
        .http_endpoint("faulty/*", &faulty_app.url_template(), "2s", RETRIES)
        .http_ingress("e2e/http")
        .file_egress(EGRESS, "out.jsonl")
        .render();
    let mut eddy = Eddy::start(&dir, &module, "e2e/http", "out.jsonl").await;

    // The faulty addresses first, so they are stuck before the healthy messages arrive.
    let failing: Vec<(&str, usize)> = vec![
        ("faulty/slow/slow-1", 3),
        ("faulty/fail/bad-1", 3),
        ("faulty/fail/bad-2", 2),
        ("faulty/garbage/g-1", 2),
    ];
    let mut faulty_batch = Vec::new();
    for (target, count) in &failing {
        faulty_batch.extend(messages(target, *count));
    }
    let sent = Instant::now();
    eddy.ingress.send_batch(&faulty_batch).await;

    // Healthy: other addresses of the faulty types (same endpoint), a transiently failing one,
    // and e2e/counter addresses, interleaved.
    let healthy_faulty: Vec<(&str, usize)> = vec![
        ("faulty/slow/quick-1", 2),
        ("faulty/fail/ok-1", 2),
        ("faulty/fail/flaky-1", 3),
    ];
    let counters = ["h1", "h2", "h3", "h4"];
    let rounds = 5;
    let mut healthy_batch = Vec::new();
    for (target, count) in &healthy_faulty {
        healthy_batch.extend(messages(target, *count));
    }
    for round in 0..rounds {
        for id in counters {
            healthy_batch.push(msg(&format!("e2e/counter/{id}"), format!("{id}#{round}")));
        }
    }
    eddy.ingress.send_batch(&healthy_batch).await;

    let mut expected_healthy: BTreeSet<String> = BTreeSet::new();
    for (target, count) in &healthy_faulty {
        let mut parts = target.split('/').skip(1);
        let (name, id) = (parts.next().expect("name"), parts.next().expect("id"));
        expected_healthy.extend((1..=*count).map(|n| format!("{name}:{id}:{n}")));
    }
    for id in counters {
        expected_healthy.extend((1..=rounds).map(|n| format!("{id}:{n}")));
    }
    let expected_len = expected_healthy.len();
    let healthy_done_after = eddy
        .wait_egress(EGRESS, "every healthy egress record", DEADLINE, |values| {
            (values.len() >= expected_len).then(|| sent.elapsed())
        })
        .await;
    // The slow address is still inside its first 2 s call: nothing of it is dead yet.
    let dead_so_far = dead_lettered(&eddy.dead_letters());
    assert!(
        !dead_so_far.contains_key("faulty/slow/slow-1"),
        "healthy messages completed only after {healthy_done_after:?}, once the slow address \
         had failed: they were stalled behind it; dead letters: {dead_so_far:?}"
    );
    let got: Vec<String> = eddy.egress_strings(EGRESS);
    let got_set: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(got_set, expected_healthy, "healthy egress records");
    assert_eq!(
        got.len(),
        expected_len,
        "an egress record was duplicated: {got:?}"
    );

    // Every failed message is dead-lettered exactly once, in order, in its own batch lines.
    let expected_dead: BTreeMap<String, Vec<String>> = failing
        .iter()
        .map(|(target, count)| (target.to_string(), values(&messages(target, *count))))
        .collect();
    let total_dead: usize = failing.iter().map(|(_, count)| count).sum();
    eddy.wait_dead_letters("every failed message", DEADLINE, |lines| {
        let count: usize = dead_lettered(lines).values().map(Vec::len).sum();
        (count >= total_dead).then_some(())
    })
    .await;
    assert_eq!(dead_lettered(&eddy.dead_letters()), expected_dead);

    // The runtime is alive and serving: health, and new messages to a healthy address of the
    // slow type (its state survived) and to a new counter.
    eddy.process.assert_running();
    let health = eddy.ingress.health().await.expect("GET /v1/health");
    assert_eq!(health.status, 200, "{health:?}");
    eddy.ingress
        .send_batch(&[
            msg("faulty/slow/quick-1", "again"),
            msg("e2e/counter/after", "x"),
        ])
        .await;
    eddy.wait_egress(EGRESS, "the records after the faults", DEADLINE, |values| {
        (values.iter().any(|v| v == "slow:quick-1:3") && values.iter().any(|v| v == "after:1"))
            .then_some(())
    })
    .await;

    // A graceful stop; afterwards nothing was added twice.
    let status = eddy.stop().await;
    assert!(status.success(), "eddy exited with {status}");
    assert_eq!(dead_lettered(&eddy.dead_letters()), expected_dead);
    assert_eq!(eddy.egress_strings(EGRESS).len(), expected_len + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_replies_never_crash_the_runtime() {
    let dir = TestDir::new("garbage");
    let faulty_app = PythonApp::start(&dir, "faulty_app", &[]).await;
    let module = ModuleYaml::new()
        .http_endpoint("faulty/*", &faulty_app.url_template(), "2s", RETRIES)
        .http_ingress("e2e/http")
        .file_egress(EGRESS, "out.jsonl")
        .render();
    let mut eddy = Eddy::start(&dir, &module, "e2e/http", "out.jsonl").await;

    // Many garbage replies on several addresses, then a healthy address of another type.
    let mut batch = Vec::new();
    for n in 0..5 {
        batch.extend(messages(&format!("faulty/garbage/g-{n}"), 2));
    }
    eddy.ingress.send_batch(&batch).await;
    eddy.wait_dead_letters("the garbage batches", DEADLINE, |lines| {
        let count: usize = dead_lettered(lines).values().map(Vec::len).sum();
        (count >= batch.len()).then_some(())
    })
    .await;
    let dead = dead_lettered(&eddy.dead_letters());
    assert_eq!(dead.len(), 5, "one address per garbage target: {dead:?}");
    assert_eq!(dead.values().map(Vec::len).sum::<usize>(), batch.len());

    // The failures are counted: GET /v1/stats agrees with the dead-letter file.
    let lines = eddy.dead_letters().len() as u64;
    let ingress = &eddy.ingress;
    let stats = wait_until_async(
        "GET /v1/stats to count the dead letters",
        DEADLINE,
        || async {
            let reply = ingress
                .request("GET", "/v1/stats", &[], Vec::new())
                .await
                .ok()?;
            let stats: Value = serde_json::from_str(&reply.body).ok()?;
            (stats["dead_letters"] == lines && stats["failed_batches"] == lines).then_some(stats)
        },
    )
    .await;
    assert!(
        stats["invocations"].as_u64() >= Some(lines) && stats["messages"].as_u64() >= Some(lines),
        "{stats}"
    );

    eddy.process.assert_running();
    let health = eddy.ingress.health().await.expect("GET /v1/health");
    assert_eq!(health.status, 200, "{health:?}");
    eddy.ingress
        .send_batch(&[msg("faulty/fail/ok-1", "x")])
        .await;
    eddy.wait_egress(
        EGRESS,
        "a healthy record after the garbage",
        DEADLINE,
        |values| values.iter().any(|v| v == "fail:ok-1:1").then_some(()),
    )
    .await;
}
