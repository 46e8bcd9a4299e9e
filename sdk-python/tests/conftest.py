"""Shared fixtures: the golden vectors of protocol/testdata."""

from __future__ import annotations

import json
import pathlib
from typing import Any, Dict

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TESTDATA = REPO / "protocol" / "testdata"


def load_vectors() -> Dict[str, Dict[str, Any]]:
    manifest = json.loads((TESTDATA / "vectors.json").read_text(encoding="utf-8"))
    return {vector["name"]: vector for vector in manifest["vectors"]}


VECTORS = load_vectors()


def golden(name: str) -> bytes:
    """The bytes of vector ``name``."""
    file: str = VECTORS[name]["file"]
    return (TESTDATA / file).read_bytes()


@pytest.fixture(scope="session")
def vectors() -> Dict[str, Dict[str, Any]]:
    return VECTORS
