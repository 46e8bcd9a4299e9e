#!/usr/bin/env bash
# Creates <repo>/.venv-eddy with Eddy's Python SDK (./sdk-python, package `eddy`, installed in
# editable mode) and the pinned tools its tests and end-to-end runs need: pytest, mypy, uvicorn,
# and the protobuf code generator (grpcio-tools, which bundles protoc, and mypy-protobuf for the
# .pyi stubs). No awslambdaric: it crashes against local Lambda emulators (see the SDK README);
# the SDK ships its own Runtime API loop, eddy.lambda_runtime.
# Idempotent: does nothing when the venv already holds exactly these versions.
# Usage: ./scripts/setup-python-sdk.sh        (PYTHON=python3.X to choose the interpreter)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv-eddy"
python="${PYTHON:-python3}"

# Keep these pins in sync with sdk-python/pyproject.toml ([project.optional-dependencies] dev).
pins=(
    "protobuf==6.33.6"
    "grpcio-tools==1.75.1"
    "mypy-protobuf==5.1.0"
    "types-protobuf==6.32.1.20260221"
    "pytest==9.2.0"
    "mypy==2.4.1"
    "uvicorn==0.54.0"
)

check() {
    "$venv/bin/python" - "${pins[@]}" <<'PY' >/dev/null 2>&1
import importlib.metadata as md
import pathlib
import sys

for pin in sys.argv[1:]:
    name, version = pin.split("==")
    assert md.version(name) == version, pin
import eddy
# the editable install must point at this checkout
assert pathlib.Path(eddy.__file__).resolve().is_relative_to(pathlib.Path.cwd().resolve()), eddy.__file__
PY
}

cd "$repo"
if [[ -x "$venv/bin/python" ]] && check; then
    echo "setup-python-sdk: $venv is ready (eddy-sdk from ./sdk-python, ${pins[*]})"
    exit 0
fi

if ! command -v "$python" >/dev/null 2>&1; then
    echo "setup-python-sdk: error: $python not found; install Python 3.9+ (with the venv module) or set PYTHON" >&2
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 9))'; then
    echo "setup-python-sdk: error: $python is $("$python" --version 2>&1); eddy-sdk needs Python 3.9 or newer (set PYTHON)" >&2
    exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if [[ ! -x "$venv/bin/python" ]]; then
    echo "setup-python-sdk: creating $venv"
    if ! "$python" -m venv "$venv" >"$log" 2>&1; then
        cat "$log" >&2
        echo "setup-python-sdk: error: '$python -m venv $venv' failed (on Debian: apt-get install python3-venv)" >&2
        exit 1
    fi
fi
echo "setup-python-sdk: installing ${pins[*]} and ./sdk-python into $venv"
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-python-sdk: error: pip install of ${pins[*]} failed (see above; PyPI must be reachable)" >&2
    exit 1
fi
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --editable "$repo/sdk-python" >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-python-sdk: error: pip install --editable ./sdk-python failed (see above)" >&2
    exit 1
fi
if ! check; then
    "$venv/bin/python" -c "import eddy" >&2 || true
    echo "setup-python-sdk: error: $venv was installed but does not hold the pinned versions and an importable eddy; remove $venv and run this script again" >&2
    exit 1
fi
echo "setup-python-sdk: $venv is ready (eddy-sdk from ./sdk-python, ${pins[*]})"
