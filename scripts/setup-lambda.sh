#!/usr/bin/env bash
# Creates <repo>/.venv-lambda with cargo-lambda (PyPI `cargo-lambda`, which ships the prebuilt
# `cargo-lambda` binary; building it with cargo takes ~12 minutes). Its `cargo lambda watch`
# serves the real Lambda Invoke API locally (/2015-03-31/functions/{name}/invocations) for a
# Cargo project with a lambda_runtime binary: the end-to-end tests run the reminder sample's
# `reminder-lambda` behind it and point an io.eddy.endpoints.v1/lambda endpoint at it.
# Idempotent: does nothing when the venv already has the pinned version.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv-lambda"
python="${PYTHON:-python3}"

version="1.9.2"

check() {
    [[ -x "$venv/bin/cargo-lambda" ]] &&
        "$venv/bin/cargo-lambda" lambda --version 2>/dev/null | grep -q "$version"
}

if check; then
    echo "setup-lambda: $venv is ready (cargo-lambda $version: $venv/bin/cargo-lambda)"
    exit 0
fi

if ! command -v "$python" >/dev/null 2>&1; then
    echo "setup-lambda: error: $python not found; install Python 3.8+ (with the venv module)" >&2
    exit 1
fi

echo "setup-lambda: creating $venv"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if [[ ! -x "$venv/bin/python" ]] && ! "$python" -m venv "$venv" >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-lambda: error: '$python -m venv $venv' failed (on Debian: apt-get install python3-venv)" >&2
    exit 1
fi
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "cargo-lambda==$version" >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-lambda: error: pip install cargo-lambda==$version failed (is PyPI reachable?)" >&2
    exit 1
fi
if ! check; then
    "$venv/bin/cargo-lambda" lambda --version >&2 || true
    echo "setup-lambda: error: $venv was installed but '$venv/bin/cargo-lambda lambda --version' does not report $version" >&2
    exit 1
fi
echo "setup-lambda: $venv is ready (cargo-lambda $version: $venv/bin/cargo-lambda)"
