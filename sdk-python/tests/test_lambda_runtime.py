"""eddy.lambda_runtime against a Runtime API of our own on a real socket: events without a
Content-Type (as cargo-lambda sends them), a path prefix, responses and errors."""

from __future__ import annotations

import base64
import http.server
import json
import queue
import threading
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from conftest import golden
from eddy import LambdaHandler, StatefulFunctions
from eddy.lambda_runtime import LambdaContext, RuntimeApi, load_handler, run

TIMEOUT = 10.0


class FakeRuntimeApi:
    """Serves queued events on /<prefix>/2018-06-01/runtime/invocation/next, records posts."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.events: "queue.Queue[bytes]" = queue.Queue()
        self.posts: "queue.Queue[Tuple[str, Dict[str, str], bytes]]" = queue.Queue()
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                assert self.path == f"{api.prefix}/2018-06-01/runtime/invocation/next", self.path
                body = api.events.get(timeout=TIMEOUT)
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", f"req-{api.events.qsize()}")
                self.send_header("Lambda-Runtime-Deadline-Ms", "600000")  # as cargo-lambda sends it
                self.send_header("Content-Length", str(len(body)))  # and no Content-Type
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("content-length", "0")))
                api.posts.put((self.path, {k.lower(): v for k, v in self.headers.items()}, data))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}{self.prefix}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[FakeRuntimeApi]:
    fake = FakeRuntimeApi("/.rt/my-fn")
    yield fake
    fake.close()


def envelope(data: bytes) -> bytes:
    return json.dumps(
        {
            "httpMethod": "POST",
            "path": "/com.example/counter",
            "headers": {"content-type": "application/octet-stream"},
            "body": base64.b64encode(data).decode(),
            "isBase64Encoded": True,
        }
    ).encode()


def test_the_loop_serves_an_eddy_lambda_handler(api: FakeRuntimeApi) -> None:
    functions = StatefulFunctions()
    functions.register("com.example/counter", lambda context, message: None)
    api.events.put(envelope(golden("to_function_single_invocation")))
    runner = threading.Thread(target=run, args=(LambdaHandler(functions), api.endpoint, 1), daemon=True)
    runner.start()
    path, headers, data = api.posts.get(timeout=TIMEOUT)
    runner.join(TIMEOUT)
    assert not runner.is_alive()
    assert path == "/.rt/my-fn/2018-06-01/runtime/invocation/req-0/response"
    assert headers["content-type"] == "application/json"
    reply = json.loads(data)
    assert reply["statusCode"] == 200
    assert base64.b64decode(reply["body"]) == golden("from_function_empty_invocation_response")


def test_exceptions_are_reported_with_the_error_format(api: FakeRuntimeApi) -> None:
    seen: List[Any] = []

    def handler(event: Any, context: LambdaContext) -> Any:
        seen.append((event, context.aws_request_id, context.get_remaining_time_in_millis()))
        raise KeyError("nope")

    api.events.put(b'{"a": 1}')
    runner = threading.Thread(target=run, args=(handler, api.endpoint, 1), daemon=True)
    runner.start()
    path, headers, data = api.posts.get(timeout=TIMEOUT)
    runner.join(TIMEOUT)
    assert seen == [({"a": 1}, "req-0", 0)]
    assert path.endswith("/runtime/invocation/req-0/error")
    assert headers["lambda-runtime-function-error-type"] == "Runtime.KeyError"
    error = json.loads(data)
    assert error["errorType"] == "KeyError" and error["errorMessage"] == "'nope'"


def test_endpoints_and_handler_specs_are_validated() -> None:
    with pytest.raises(ValueError, match="AWS_LAMBDA_RUNTIME_API is not set"):
        RuntimeApi("")
    with pytest.raises(ValueError, match="not host:port"):
        RuntimeApi("localhost")
    api = RuntimeApi("http://127.0.0.1:9000/.rt/fn/")
    assert (api.host, api.port, api.prefix) == ("127.0.0.1", 9000, "/.rt/fn")
    assert load_handler("json:dumps") == json.dumps  # type: ignore[comparison-overlap]
    with pytest.raises(ValueError, match="must be module:attribute"):
        load_handler("nothing")
    with pytest.raises(ValueError, match="has no callable 'nope'"):
        load_handler("json:nope")


def test_the_handler_accepts_undecoded_json_events() -> None:
    functions = StatefulFunctions()
    functions.register("com.example/counter", lambda context, message: None)
    reply = LambdaHandler(functions)(envelope(golden("to_function_single_invocation")), None)
    assert reply["statusCode"] == 200
    assert LambdaHandler(functions)(b"{not json", None)["statusCode"] == 400


def test_the_command_line_says_what_is_missing() -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_RUNTIME_API"}
    run_cli = subprocess.run(
        [sys.executable, "-m", "eddy.lambda_runtime", "app:handler"], env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert run_cli.returncode == 2
    assert "AWS_LAMBDA_RUNTIME_API is not set" in run_cli.stderr
    env["AWS_LAMBDA_RUNTIME_API"] = "127.0.0.1:9/.rt/fn"  # nothing listens: the init error post fails too
    run_cli = subprocess.run(
        [sys.executable, "-m", "eddy.lambda_runtime", "no_such_module_xyz:handler"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert run_cli.returncode == 1
    assert "cannot load no_such_module_xyz:handler: No module named 'no_such_module_xyz'" in run_cli.stderr
