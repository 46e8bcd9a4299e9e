#!/usr/bin/env bash
# Creates <repo>/.venv-statefun with Apache's StateFun Python SDK (apache-flink-statefun 3.3.0)
# and aiohttp, used by the end-to-end tests to serve functions written with Apache's SDK.
# Idempotent: does nothing when the venv already imports both packages.
# StateFun 3.3.0 pins protobuf<4, so it gets a venv of its own.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv-statefun"
python="${PYTHON:-python3}"

statefun_version="3.3.0"
# aiohttp 3.9.5 has wheels for Python 3.8-3.12 and serves StateFun's handler as is.
aiohttp_version="3.9.5"

check() {
    "$venv/bin/python" - <<PY >/dev/null 2>&1
import importlib.metadata as md
import statefun, aiohttp
assert md.version("apache-flink-statefun") == "$statefun_version"
assert aiohttp.__version__ == "$aiohttp_version"
PY
}

if [[ -x "$venv/bin/python" ]] && check; then
    echo "setup-python: $venv is ready (apache-flink-statefun $statefun_version, aiohttp $aiohttp_version)"
    exit 0
fi

if ! command -v "$python" >/dev/null 2>&1; then
    echo "setup-python: error: $python not found; install Python 3.8+ (with the venv module)" >&2
    exit 1
fi

echo "setup-python: creating $venv"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! "$python" -m venv "$venv" >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-python: error: '$python -m venv $venv' failed (on Debian: apt-get install python3-venv)" >&2
    exit 1
fi
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "apache-flink-statefun==$statefun_version" "aiohttp==$aiohttp_version" >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-python: error: pip install of apache-flink-statefun==$statefun_version aiohttp==$aiohttp_version failed" >&2
    exit 1
fi
if ! check; then
    "$venv/bin/python" -c "import statefun, aiohttp" >&2 || true
    echo "setup-python: error: $venv was installed but 'import statefun, aiohttp' fails" >&2
    exit 1
fi
echo "setup-python: $venv is ready (apache-flink-statefun $statefun_version, aiohttp $aiohttp_version)"
