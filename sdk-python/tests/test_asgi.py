"""The ASGI app, driven by real ASGI calls (no framework), and once over a real socket with
uvicorn: status codes, error messages, and bad input that never hangs."""

from __future__ import annotations

import asyncio
import http.client
import logging
import random
import threading
import time
from typing import Any, Dict, List, MutableMapping, Optional, Tuple

import pytest

from conftest import golden
from eddy import AsgiHandler, Context, Message, StatefulFunctions, ValueSpec, IntType

DEADLINE = 10.0  # seconds: any call that takes longer counts as a hang


def functions() -> StatefulFunctions:
    registry = StatefulFunctions()

    @registry.bind("com.example/counter")
    def counter(context: Context, message: Message) -> None:
        if message.as_string() == "fail":
            raise RuntimeError("the function failed on purpose")

    @registry.bind("com.example/stateful", specs=[ValueSpec("n", IntType)])
    async def stateful(context: Context, message: Message) -> None:
        context.storage.n = (context.storage.n or 0) + 1

    return registry


APP = AsgiHandler(functions())


async def call(
    app: Any,
    method: str = "POST",
    body: bytes = b"",
    content_type: Optional[str] = "application/octet-stream",
    chunks: Optional[List[bytes]] = None,
    disconnect: bool = False,
) -> Tuple[int, Dict[str, str], bytes]:
    headers = [(b"content-type", content_type.encode())] if content_type is not None else []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "method": method, "path": "/counter", "headers": headers}
    pending: List[MutableMapping[str, Any]] = []
    parts = chunks if chunks is not None else [body]
    for index, part in enumerate(parts):
        pending.append({"type": "http.request", "body": part, "more_body": index < len(parts) - 1})
    if disconnect:
        pending = pending[:1]
        pending[0]["more_body"] = True
        pending.append({"type": "http.disconnect"})
    sent: List[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        if pending:
            return pending.pop(0)
        await asyncio.sleep(DEADLINE * 2)  # a server reading past the end would hang here
        return {"type": "http.disconnect"}

    async def send(event: MutableMapping[str, Any]) -> None:
        sent.append(event)

    await asyncio.wait_for(app(scope, receive, send), DEADLINE)
    if not sent:
        return 0, {}, b""
    start, body_event = sent[0], sent[1]
    reply_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], reply_headers, body_event["body"]


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_a_golden_request_gets_the_golden_reply() -> None:
    status, headers, body = run(call(APP, body=golden("to_function_single_invocation")))
    assert status == 200
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-length"] == str(len(body))
    assert body == golden("from_function_empty_invocation_response")


def test_body_in_chunks_and_content_type_parameters() -> None:
    data = golden("to_function_single_invocation")
    status, _, body = run(call(APP, chunks=[data[:3], data[3:7], data[7:]], content_type="Application/Octet-Stream; x=y"))
    assert (status, body) == (200, golden("from_function_empty_invocation_response"))


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
def test_other_methods_are_405(method: str) -> None:
    status, headers, body = run(call(APP, method=method))
    assert status == 405
    assert headers["allow"] == "POST"
    assert body == f"method {method} is not allowed: POST a StateFun ToFunction\n".encode()


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_other_content_types_are_415(content_type: Optional[str]) -> None:
    status, _, body = run(call(APP, body=golden("to_function_single_invocation"), content_type=content_type))
    assert status == 415
    assert b"send application/octet-stream" in body


def test_malformed_bodies_are_400_with_a_clear_message() -> None:
    status, headers, body = run(call(APP, body=b"\xff\xfe garbage"))
    assert status == 400
    assert headers["content-type"].startswith("text/plain")
    assert body.startswith(b"the request body is not a StateFun ToFunction message")
    status, _, body = run(call(APP, body=b""))
    assert (status, body) == (
        400,
        b"the request holds no invocation batch (ToFunction.invocation is unset): "
        b"send a StateFun ToFunction with an InvocationBatchRequest\n",
    )


def test_unknown_function_is_404() -> None:
    other = StatefulFunctions()
    other.register("other/fn", lambda c, m: None)
    status, _, body = run(call(AsgiHandler(other), body=golden("to_function_single_invocation")))
    assert status == 404
    assert body == b"no function is registered as 'com.example/counter' (registered: other/fn)\n"


def test_a_failing_function_is_500_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    from eddy._proto.request_reply_pb2 import ToFunction
    from eddy.messages import typed_value
    from eddy import StringType

    request = ToFunction.FromString(golden("to_function_single_invocation"))
    request.invocation.invocations[0].argument.CopyFrom(typed_value(StringType, "fail"))
    with caplog.at_level(logging.ERROR, logger="eddy"):
        status, _, body = run(call(APP, body=request.SerializeToString()))
    assert status == 500
    assert body == b"function failed: RuntimeError: the function failed on purpose\n"
    assert any("the function failed on purpose" in r.getMessage() and r.exc_info for r in caplog.records)


def test_too_large_bodies_are_413() -> None:
    small = AsgiHandler(functions(), max_body_bytes=8)
    status, _, body = run(call(small, chunks=[b"x" * 6, b"y" * 6]))
    assert status == 413
    assert body == b"the request body is larger than 8 bytes\n"


def test_a_client_that_goes_away_does_not_hang() -> None:
    status, _, _ = run(call(APP, body=golden("to_function_single_invocation")[:4], disconnect=True))
    assert status == 400  # what arrived is incomplete: answered, not awaited forever


def test_lifespan_is_acknowledged() -> None:
    events = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: List[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return events.pop(0)

    async def send(event: MutableMapping[str, Any]) -> None:
        sent.append(event)

    run(asyncio.wait_for(APP({"type": "lifespan"}, receive, send), DEADLINE))
    assert [e["type"] for e in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_random_bad_input_never_hangs_or_crashes() -> None:
    rng = random.Random(20261121)
    seed = golden("to_function_batch")
    statuses = set()
    for _ in range(300):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        status, _, _ = run(call(APP, body=bytes(data)))
        statuses.add(status)
    # mutated batches of com.example/counter either run, are rejected, or miss their function
    assert statuses <= {200, 400, 404, 500}
    assert 400 in statuses


def test_over_a_real_socket_with_uvicorn() -> None:
    uvicorn = pytest.importorskip("uvicorn")
    config = uvicorn.Config(APP, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + DEADLINE
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped before it started"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]

        def post(body: bytes, content_type: str = "application/octet-stream", method: str = "POST") -> Tuple[int, bytes]:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
            connection.request(method, "/com.example/counter", body=body, headers={"content-type": content_type})
            response = connection.getresponse()
            result = response.status, response.read()
            connection.close()
            return result

        assert post(golden("to_function_single_invocation")) == (200, golden("from_function_empty_invocation_response"))
        assert post(b"junk\xff")[0] == 400
        assert post(b"", method="GET")[0] == 405
        assert post(golden("to_function_single_invocation"), content_type="text/plain")[0] == 415
    finally:
        server.should_exit = True
        thread.join(DEADLINE)
    assert not thread.is_alive()
