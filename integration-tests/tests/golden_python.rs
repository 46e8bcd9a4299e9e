//! The golden protocol vectors (`protocol/testdata/`) checked against Apache's own StateFun
//! implementation: `functions/golden_check.py` runs in the venv of apache-flink-statefun 3.3.0
//! (`./scripts/setup-python.sh`), parses every `.bin` with Apache's generated protobuf classes,
//! re-serialises it byte for byte, reads the built-in values with Apache's SDK types and
//! rebuilds typed values, egress records and replies with Apache's SDK code.

use eddy_integration_tests::{functions_dir, repo_root, venv_python, DEADLINE};
use std::process::Stdio;

/// The number of vectors listed in `protocol/testdata/vectors.json`.
fn manifest_vector_count() -> usize {
    let path = repo_root()
        .join("protocol")
        .join("testdata")
        .join("vectors.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let manifest: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    manifest["vectors"]
        .as_array()
        .unwrap_or_else(|| panic!("{} has no `vectors` array", path.display()))
        .len()
}

#[tokio::test]
async fn apache_statefun_reads_and_writes_every_golden_vector_identically() {
    let script = functions_dir().join("golden_check.py");
    let testdata = repo_root().join("protocol").join("testdata");
    let child = tokio::process::Command::new(venv_python())
        .arg(&script)
        .arg("--testdata")
        .arg(&testdata)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
    let output = match tokio::time::timeout(DEADLINE, child.wait_with_output()).await {
        Ok(output) => output.expect("wait for golden_check.py"),
        Err(_) => panic!("golden_check.py did not finish within {DEADLINE:?}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "golden_check.py failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // The script must have seen every vector, not a subset.
    let expected = format!(
        "golden_check: {} vectors identical with Apache's implementation ({} vectors,",
        manifest_vector_count(),
        manifest_vector_count()
    );
    assert!(
        stdout.contains(&expected),
        "golden_check.py did not check every vector (expected `{expected}`):\n{stdout}\n{stderr}"
    );
}
