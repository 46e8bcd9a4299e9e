"""RequestReplyHandler: malformed input, unknown functions, sync and async functions."""

from __future__ import annotations

import asyncio
from typing import Any, List

import pytest

from conftest import golden
from eddy import (
    Context,
    InvalidRequestError,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    UnknownFunctionError,
)
from eddy._proto.request_reply_pb2 import FromFunction, ToFunction


def registry(handler: Any, typename: str = "com.example/counter") -> RequestReplyHandler:
    functions = StatefulFunctions()
    functions.register(typename, handler)
    return RequestReplyHandler(functions)


@pytest.mark.parametrize(
    "body, text",
    [
        (b"\xff\xff\xff", "not a StateFun ToFunction message"),
        (b"", "holds no invocation batch"),
        (ToFunction(invocation=ToFunction.InvocationBatchRequest()).SerializeToString(), "target address is incomplete"),
        (b"\xa2\x06\x03\x0a\x01", "not a StateFun ToFunction message"),
    ],
)
def test_malformed_requests_are_invalid_request_errors(body: bytes, text: str) -> None:
    handler = registry(lambda context, message: None)
    with pytest.raises(InvalidRequestError, match=text):
        handler.handle(body)
    with pytest.raises(InvalidRequestError, match=text):
        asyncio.run(handler.handle_async(body))


def test_requests_must_be_bytes() -> None:
    with pytest.raises(InvalidRequestError, match="must be bytes"):
        registry(lambda c, m: None).handle("text")  # type: ignore[arg-type]


def test_unknown_function_names_the_registered_ones() -> None:
    handler = registry(lambda context, message: None, typename="other/fn")
    with pytest.raises(UnknownFunctionError, match=r"no function is registered as 'com.example/counter' \(registered: other/fn\)"):
        handler.handle(golden("to_function_single_invocation"))


def test_async_functions_run_with_handle_and_handle_async() -> None:
    seen: List[str] = []

    async def greet(context: Context, message: Message) -> None:
        await asyncio.sleep(0)
        seen.append(message.as_string() or "")

    handler = registry(greet)
    assert handler.handle(golden("to_function_single_invocation")) == golden("from_function_empty_invocation_response")
    assert asyncio.run(handler.handle_async(golden("to_function_single_invocation"))) == golden(
        "from_function_empty_invocation_response"
    )
    assert seen == ["hi", "hi"]

    async def inside_a_loop() -> None:
        with pytest.raises(RuntimeError, match="await handler.handle_async"):
            handler.handle(golden("to_function_single_invocation"))

    asyncio.run(inside_a_loop())


def test_exceptions_of_functions_propagate_and_return_no_effects() -> None:
    def fail(context: Context, message: Message) -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        registry(fail).handle(golden("to_function_single_invocation"))


def test_a_plain_def_returning_a_coroutine_is_reported() -> None:
    async def inner() -> None:
        return None

    def sneaky(context: Context, message: Message) -> Any:
        return inner()

    with pytest.raises(TypeError, match="declare it `async def`"):
        registry(sneaky).handle(golden("to_function_single_invocation"))


def test_sync_function_via_handle_async() -> None:
    handler = registry(lambda context, message: context.send_egress.__self__ is context)
    reply = FromFunction.FromString(asyncio.run(handler.handle_async(golden("to_function_single_invocation"))))
    assert reply.WhichOneof("response") == "invocation_result"
