#!/usr/bin/env bash
# The test command: lint, build, then every unit and end-to-end test of the workspace.
#   ./scripts/test.sh
# Installs what the tests need first: .venv-statefun (Apache's StateFun Python SDK), .venv-eddy
# (our Python SDK, sdk-python/, with its test tools) and .venv-lambda (cargo-lambda, the local
# Lambda emulator); the end-to-end tests run functions from all three against the real `eddy`.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

started=$SECONDS
current_step=""
steps_done=()

step() {
    current_step="$1"
    echo
    echo "==> $1"
}

done_step() {
    steps_done+=("ok    $current_step")
}

summary() {
    local status=$?
    echo
    echo "==> summary ($((SECONDS - started)) s)"
    local line
    for line in "${steps_done[@]+"${steps_done[@]}"}"; do
        echo "  $line"
    done
    if [[ $status -ne 0 ]]; then
        echo "  FAILED $current_step (exit $status)"
    else
        echo "  all checks passed"
    fi
    if [[ -n "${passed:-}" ]]; then
        echo "tests: $passed passed, $failed failed"
    fi
}
trap summary EXIT

step "python venv for Apache's StateFun SDK (scripts/setup-python.sh)"
./scripts/setup-python.sh
done_step

step "python venv for Eddy's Python SDK (scripts/setup-python-sdk.sh)"
./scripts/setup-python-sdk.sh
done_step

step "cargo-lambda for the Lambda emulator (scripts/setup-lambda.sh)"
./scripts/setup-lambda.sh
done_step

step "python sdk: mypy --strict (sdk-python)"
(cd sdk-python && ../.venv-eddy/bin/mypy)
done_step

step "python sdk: pytest (sdk-python)"
py_log="$(mktemp)"
.venv-eddy/bin/pytest -q sdk-python 2>&1 | tee "$py_log"
py_passed=$({ grep -Eo '[0-9]+ passed' "$py_log" || true; } | tail -1 | awk '{print $1 + 0}')
py_failed=$({ grep -Eo '[0-9]+ failed' "$py_log" || true; } | tail -1 | awk '{print $1 + 0}')
rm -f "$py_log"
done_step

step "cargo fmt --all -- --check"
cargo fmt --all -- --check
done_step

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
done_step

step "cargo clippy -p eddy-sdk --no-default-features (the core the runtime embeds)"
cargo clippy -p eddy-sdk --no-default-features --all-targets --quiet -- -D warnings
done_step

step "cargo build --workspace --bins"
cargo build --workspace --bins --quiet
done_step

step "cargo test --workspace (unit + end-to-end)"
test_log="$(mktemp)"
cargo test --workspace 2>&1 | tee "$test_log"
# One closing line for the whole run (cargo prints one "test result" per test binary, the
# last of which is often an empty doc-test run).
passed=$(grep '^test result:' "$test_log" | grep -Eo '[0-9]+ passed' | awk -v py="${py_passed:-0}" '{sum += $1} END {print sum + py}')
failed=$(grep '^test result:' "$test_log" | grep -Eo '[0-9]+ failed' | awk -v py="${py_failed:-0}" '{sum += $1} END {print sum + py}')
rm -f "$test_log"
done_step
