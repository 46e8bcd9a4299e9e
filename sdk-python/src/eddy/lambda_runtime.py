"""A small AWS Lambda runtime loop (the Lambda Runtime API client), standard library only.

Use it where AWS's ``awslambdaric`` cannot run: ``awslambdaric`` 4.2.2 crashes (SIGSEGV in its
native client) when the ``/next`` reply carries no ``Content-Type``, which is what local
emulators such as ``cargo lambda watch --only-lambda-apis`` send. It also works on AWS as a
custom runtime (``provided.al2023`` with a ``bootstrap`` that runs it).

    python -m eddy.lambda_runtime my_module:handler

or ``eddy.lambda_runtime.run(handler)``. The Runtime API endpoint comes from
``AWS_LAMBDA_RUNTIME_API`` (``host:port``, optionally followed by a path prefix, e.g.
``127.0.0.1:9000/.rt/my-function`` for cargo-lambda). Each event is read as JSON whatever its
content type; the handler's return value is sent back as JSON; an exception is reported with
the Runtime API's error format (``errorMessage``, ``errorType``, ``stackTrace``).
"""

from __future__ import annotations

import argparse
import http.client
import importlib
import json
import logging
import os
import sys
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple

logger = logging.getLogger("eddy.lambda_runtime")

API_VERSION = "2018-06-01"
#: How long the loop keeps retrying an unreachable Runtime API before it gives up.
UNREACHABLE_GIVE_UP_SECONDS = 30.0


class LambdaContext:
    """The ``context`` argument of a Lambda handler (the commonly used attributes)."""

    def __init__(self, request_id: str, headers: Dict[str, str]) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = headers.get("lambda-runtime-invoked-function-arn", "")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.trace_id = headers.get("lambda-runtime-trace-id")
        deadline = headers.get("lambda-runtime-deadline-ms", "")
        self._deadline_ms = int(deadline) if deadline.isdigit() else 0

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the deadline (0 when the deadline is unknown or past)."""
        return max(0, self._deadline_ms - int(time.time() * 1000))


class RuntimeApi:
    """The Runtime API at ``endpoint`` (``host:port[/prefix]``)."""

    def __init__(self, endpoint: str) -> None:
        if not endpoint:
            raise ValueError(
                "AWS_LAMBDA_RUNTIME_API is not set: run this inside Lambda, or point it at an emulator's "
                "Runtime API (e.g. 127.0.0.1:9000/.rt/<function name> for cargo lambda watch --only-lambda-apis)"
            )
        endpoint = endpoint.split("://", 1)[-1]
        hostport, slash, prefix = endpoint.partition("/")
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"AWS_LAMBDA_RUNTIME_API {endpoint!r} is not host:port[/prefix]")
        self.host = host
        self.port = int(port)
        self.prefix = ("/" + prefix.strip("/")) if slash and prefix.strip("/") else ""
        self._connection: Optional[http.client.HTTPConnection] = None

    def _request(self, method: str, path: str, body: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], bytes]:
        for attempt in range(2):  # one retry on a stale keep-alive connection
            if self._connection is None:
                self._connection = http.client.HTTPConnection(self.host, self.port, timeout=None)
            try:
                self._connection.request(method, f"{self.prefix}/{API_VERSION}{path}", body=body, headers=headers or {})
                response = self._connection.getresponse()
                data = response.read()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, data
            except (ConnectionError, http.client.HTTPException, OSError):
                self._connection.close()
                self._connection = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def next(self) -> Tuple[str, Dict[str, str], bytes]:
        """Waits for the next invocation: (request id, headers, event bytes)."""
        started = time.monotonic()
        delay = 0.05
        while True:
            try:
                status, headers, body = self._request("GET", "/runtime/invocation/next")
            except OSError as error:
                if time.monotonic() - started > UNREACHABLE_GIVE_UP_SECONDS:
                    raise RuntimeError(f"the Lambda Runtime API at {self.host}:{self.port}{self.prefix} is unreachable: {error}") from None
                time.sleep(delay)  # backoff between reconnection attempts, not synchronisation
                delay = min(delay * 2, 1.0)
                continue
            request_id = headers.get("lambda-runtime-aws-request-id")
            if status == 200 and request_id:
                return request_id, headers, body
            if status == 204 or (status == 200 and not request_id):  # nothing yet: poll again
                continue
            raise RuntimeError(f"the Lambda Runtime API answered /next with {status}: {body[:200]!r}")

    def respond(self, request_id: str, payload: bytes) -> None:
        status, _, body = self._request(
            "POST", f"/runtime/invocation/{request_id}/response", payload, {"content-type": "application/json"}
        )
        if status >= 300:
            logger.error("eddy: the Runtime API refused the response of %s: %s %r", request_id, status, body[:200])

    def error(self, request_id: Optional[str], error: BaseException) -> None:
        payload = json.dumps(
            {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "stackTrace": traceback.format_exception(type(error), error, error.__traceback__),
            }
        ).encode()
        path = f"/runtime/invocation/{request_id}/error" if request_id else "/runtime/init/error"
        headers = {"content-type": "application/json", "lambda-runtime-function-error-type": f"Runtime.{type(error).__name__}"}
        self._request("POST", path, payload, headers)


def run(handler: Callable[[Any, Any], Any], endpoint: Optional[str] = None, max_invocations: Optional[int] = None) -> None:
    """Serves ``handler(event, context)`` for the invocations of the Runtime API (forever, or
    for ``max_invocations``)."""
    api = RuntimeApi(endpoint if endpoint is not None else os.environ.get("AWS_LAMBDA_RUNTIME_API", ""))
    served = 0
    while max_invocations is None or served < max_invocations:
        request_id, headers, body = api.next()
        served += 1
        try:
            event = json.loads(body.decode("utf-8")) if body else None
            result = handler(event, LambdaContext(request_id, headers))
            payload = json.dumps(result).encode("utf-8")
        except Exception as error:
            logger.exception("eddy: invocation %s failed", request_id)
            api.error(request_id, error)
            continue
        api.respond(request_id, payload)


def load_handler(spec: str) -> Callable[[Any, Any], Any]:
    """``module:attribute`` or ``module.attribute`` -> the handler object."""
    module_name, sep, attribute = spec.partition(":")
    if not sep:
        module_name, _, attribute = spec.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"handler {spec!r} must be module:attribute (e.g. app:handler)")
    module = importlib.import_module(module_name)
    handler: Any = getattr(module, attribute, None)
    if not callable(handler):
        raise ValueError(f"handler {spec!r}: {module_name} has no callable {attribute!r}")
    return handler  # type: ignore[no-any-return]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eddy.lambda_runtime", description="Serves a Lambda handler through the Lambda Runtime API.")
    parser.add_argument("handler", help="module:attribute of the handler, e.g. app:handler")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", os.getcwd()))
    endpoint = os.environ.get("AWS_LAMBDA_RUNTIME_API", "")
    try:
        api = RuntimeApi(endpoint)
    except ValueError as error:
        print(f"eddy.lambda_runtime: error: {error}", file=sys.stderr)
        return 2
    try:
        handler = load_handler(args.handler)
    except Exception as error:
        print(f"eddy.lambda_runtime: error: cannot load {args.handler}: {error}", file=sys.stderr)
        try:
            api.error(None, error)
        except OSError:
            pass
        return 1
    print(f"eddy.lambda_runtime: serving {args.handler} via {endpoint}", file=sys.stderr, flush=True)
    run(handler, endpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
