#!/usr/bin/env bash
# Regenerates the protobuf modules of the `eddy` package (src/eddy/_proto/*_pb2.py and their
# .pyi stubs) from protocol/proto/*.proto, the single source of truth.
#
# The generator is pinned: grpcio-tools 1.75.1 (bundles protoc 31.1) and mypy-protobuf 5.1.0,
# as installed in .venv-eddy by scripts/setup-python-sdk.sh.
#
# Usage: sdk-python/scripts/generate.sh [OUT_DIR]   (default: sdk-python/src/eddy/_proto)
# tests/test_generated.py runs it into a temp dir and fails if the committed files differ.
set -euo pipefail

sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$sdk/.." && pwd)"
proto_dir="$repo/protocol/proto"
out="${1:-$sdk/src/eddy/_proto}"
python="${PYTHON:-$repo/.venv-eddy/bin/python}"

if [[ ! -x "$python" ]]; then
    echo "generate: error: $python not found; run ./scripts/setup-python-sdk.sh first (or set PYTHON)" >&2
    exit 1
fi
if ! "$python" - <<'PY'
import importlib.metadata as md
import sys
want = {"grpcio-tools": "1.75.1", "mypy-protobuf": "5.1.0"}
bad = {name: md.version(name) if name else None for name in want}
wrong = [f"{n} {bad[n]} (want {v})" for n, v in want.items() if bad[n] != v]
if wrong:
    sys.exit("generate: error: wrong generator versions: " + ", ".join(wrong)
             + "; run ./scripts/setup-python-sdk.sh")
PY
then
    exit 1
fi
plugin="$(dirname "$python")/protoc-gen-mypy"
if [[ ! -x "$plugin" ]]; then
    echo "generate: error: $plugin (from mypy-protobuf) not found; run ./scripts/setup-python-sdk.sh" >&2
    exit 1
fi

mkdir -p "$out"
rm -f "$out"/*_pb2.py "$out"/*_pb2.pyi
cd "$proto_dir"
"$python" -m grpc_tools.protoc \
    --proto_path=. \
    --python_out="$out" \
    --plugin=protoc-gen-mypy="$plugin" \
    --mypy_out="$out" \
    request-reply.proto types.proto kafka-egress.proto kinesis-egress.proto
echo "generate: wrote $(ls "$out"/*_pb2.py "$out"/*_pb2.pyi | wc -l) files to $out"
