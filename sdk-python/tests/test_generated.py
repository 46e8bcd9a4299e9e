"""The committed protobuf modules are exactly what the pinned generator makes of
protocol/proto/*.proto (scripts/generate.sh into a temp dir, compared file by file)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

SDK = pathlib.Path(__file__).resolve().parents[1]
COMMITTED = SDK / "src" / "eddy" / "_proto"


def test_generated_code_is_current(tmp_path: pathlib.Path) -> None:
    env = dict(os.environ, PYTHON=sys.executable)
    run = subprocess.run(
        ["bash", str(SDK / "scripts" / "generate.sh"), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"generate.sh failed:\n{run.stdout}\n{run.stderr}"
    fresh = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.endswith(("_pb2.py", "_pb2.pyi"))}
    committed = {p.name: p.read_bytes() for p in COMMITTED.iterdir() if p.name.endswith(("_pb2.py", "_pb2.pyi"))}
    assert sorted(fresh) == sorted(committed), "the set of generated files changed: run sdk-python/scripts/generate.sh"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated files {stale}: run sdk-python/scripts/generate.sh and commit the result"
    assert len(fresh) == 8
