"""The README's example runs as written: the greeter module (both deployments) and the test
kit snippet."""

from __future__ import annotations

import base64
import importlib.util
import pathlib
import re
import sys
from typing import Any, Dict, List

from eddy import LambdaHandler
from eddy._proto.request_reply_pb2 import FromFunction, ToFunction
from eddy.messages import typed_value
from eddy.types import StringType

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> List[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def load_greeter(tmp_path: pathlib.Path) -> Any:
    source = python_blocks()[0]
    assert "functions = StatefulFunctions()" in source
    path = tmp_path / "greeter.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("greeter", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["greeter"] = module
    spec.loader.exec_module(module)
    return module


def test_the_testing_snippet_runs(tmp_path: pathlib.Path) -> None:
    greeter = load_greeter(tmp_path)
    snippet = next(block for block in python_blocks() if "FunctionTester" in block)
    namespace: Dict[str, Any] = {"functions": greeter.functions}
    exec(compile(snippet, "README.md", "exec"), namespace)
    tester = namespace["tester"]
    assert tester.state_of("alice") == {"last": "bye"}


def test_the_lambda_handler_of_the_example(tmp_path: pathlib.Path) -> None:
    greeter = load_greeter(tmp_path)
    assert isinstance(greeter.handler, LambdaHandler)
    request = ToFunction()
    batch = request.invocation
    batch.target.namespace, batch.target.type, batch.target.id = "example", "greeter", "bob"
    for name in ("seen", "last"):
        batch.state.add().state_name = name
    batch.invocations.add().argument.CopyFrom(typed_value(StringType, "Bob"))
    event = {
        "httpMethod": "POST",
        "path": "/example/greeter",
        "headers": {"content-type": "application/octet-stream"},
        "body": base64.b64encode(request.SerializeToString()).decode(),
        "isBase64Encoded": True,
    }
    reply = greeter.handler(event, None)
    assert reply["statusCode"] == 200
    result = FromFunction.FromString(base64.b64decode(reply["body"])).invocation_result
    assert [m.state_name for m in result.state_mutations] == ["seen", "last"]
    assert [d.cancellation_token for d in result.delayed_invocations] == ["remind-bob"]
    assert [e.egress_type for e in result.outgoing_egresses] == ["out", "kafka"]
