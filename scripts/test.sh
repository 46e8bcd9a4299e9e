#!/usr/bin/env bash
# The test command: lint, build, then every unit and end-to-end test of the workspace.
#   ./scripts/test.sh
# Installs what the tests need first (the Python venv with Apache's StateFun SDK, used by the
# end-to-end tests against the real `eddy` binary).
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

step "cargo fmt --all -- --check"
cargo fmt --all -- --check
done_step

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
done_step

step "cargo build --workspace --bins"
cargo build --workspace --bins --quiet
done_step

step "cargo test --workspace (unit + end-to-end)"
test_log="$(mktemp)"
cargo test --workspace 2>&1 | tee "$test_log"
# One closing line for the whole run (cargo prints one "test result" per test binary, the
# last of which is often an empty doc-test run).
passed=$(grep '^test result:' "$test_log" | grep -Eo '[0-9]+ passed' | awk '{sum += $1} END {print sum + 0}')
failed=$(grep '^test result:' "$test_log" | grep -Eo '[0-9]+ failed' | awk '{sum += $1} END {print sum + 0}')
rm -f "$test_log"
done_step
