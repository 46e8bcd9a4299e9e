//! Bad input at the CLI: invalid module files (`eddy validate`, exit 3, the error names the
//! file, the document and the field), kinds that cannot run yet (`eddy run` refuses them),
//! usage errors (exit 2) and `eddy send` to nothing (exit 4). Module files are in
//! `fixtures/`.

use eddy_integration_tests::{
    eddy_bin, eddy_cli, fixtures_dir, free_port, Process, TestDir, DEADLINE,
};
use std::process::Output;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `eddy validate <fixture>`.
async fn validate(dir: &TestDir, fixture: &str) -> Output {
    let path = fixtures_dir().join(fixture);
    eddy_cli(
        dir.path(),
        &["validate", path.to_str().expect("utf-8 path")],
    )
    .await
}

#[tokio::test]
async fn a_valid_module_validates() {
    let dir = TestDir::new("validate-ok");
    for fixture in ["valid.yaml", "kafka.yaml"] {
        let output = validate(&dir, fixture).await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "eddy validate {fixture}: {:?}\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            stderr(&output)
        );
    }
}

#[tokio::test]
async fn invalid_modules_name_file_document_and_field() {
    let dir = TestDir::new("validate-bad");
    // (fixture, what the error must mention besides the file name)
    let cases: &[(&str, &[&str])] = &[
        ("invalid/yaml-syntax.yaml", &["document 1", "line 8"]),
        (
            "invalid/unknown-kind.yaml",
            &["document 1", "kind", "io.statefun.endpoints.v9/http"],
        ),
        ("invalid/missing-spec.yaml", &["document 1", "spec"]),
        (
            "invalid/bad-function-selector.yaml",
            &["document 0", "spec.functions", "counter"],
        ),
        (
            "invalid/bad-duration.yaml",
            &["document 0", "spec.transport.timeouts.call"],
        ),
        ("invalid/unknown-field.yaml", &["document 2", "bnid"]),
        (
            "invalid/duplicate-endpoint.yaml",
            &["document 1", "spec.functions", "e2e/*"],
        ),
        ("invalid/bad-bind.yaml", &["document 1", "spec.bind"]),
    ];
    let mut failures = Vec::new();
    for (fixture, mentions) in cases {
        let output = validate(&dir, fixture).await;
        let text = stderr(&output);
        let file_name = fixture.rsplit('/').next().expect("a file name");
        let mut problems = Vec::new();
        if output.status.code() != Some(3) {
            problems.push(format!(
                "exit status {:?}, expected 3",
                output.status.code()
            ));
        }
        for needle in std::iter::once(&file_name).chain(mentions.iter()) {
            if !text.contains(needle) {
                problems.push(format!("stderr does not mention {needle:?}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{fixture}: {}\n  stderr: {}",
                problems.join("; "),
                text.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn run_refuses_a_kafka_ingress_with_a_clear_message() {
    let dir = TestDir::new("run-kafka");
    let path = fixtures_dir().join("kafka.yaml");
    let dead_letters = dir.join("dead-letters.jsonl");
    let mut process = Process::spawn(
        "eddy",
        &eddy_bin(),
        &[
            "run",
            path.to_str().expect("utf-8 path"),
            "--dead-letters",
            dead_letters.to_str().expect("utf-8 path"),
        ],
        &dir,
        &[],
    );
    let status = process.wait_exit(DEADLINE).await;
    let log = process.log_text().to_lowercase();
    assert!(
        !status.success(),
        "eddy run with a Kafka ingress exited with {status}"
    );
    assert!(
        log.contains("kafka")
            && (log.contains("not supported")
                || log.contains("unsupported")
                || log.contains("not yet")),
        "the error should say that the Kafka ingress is not supported yet: {log}"
    );
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let dir = TestDir::new("usage");
    for args in [
        &["validate"][..],
        &["frobnicate"][..],
        &["send", "e2e/counter/a"][..],
    ] {
        let output = eddy_cli(dir.path(), args).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "eddy {args:?}: {:?}\nstderr: {}",
            output.status,
            stderr(&output)
        );
    }
}

#[tokio::test]
async fn send_to_a_closed_port_exits_4() {
    let dir = TestDir::new("send-closed");
    // Nothing listens on a port that was free a moment ago.
    let ingress = format!("http://127.0.0.1:{}", free_port());
    let output = eddy_cli(
        dir.path(),
        &[
            "send",
            "e2e/counter/a",
            "--ingress",
            &ingress,
            "--string",
            "x",
        ],
    )
    .await;
    assert_eq!(
        output.status.code(),
        Some(4),
        "eddy send to {ingress}: {:?}\nstderr: {}",
        output.status,
        stderr(&output)
    );
    assert!(
        !stderr(&output).trim().is_empty(),
        "eddy send printed no error"
    );
}
