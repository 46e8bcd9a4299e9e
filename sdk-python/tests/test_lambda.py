"""The Lambda handler: the API Gateway proxy envelope of design.md §3 (v1, v2 and Function URL
events), and clear errors for every malformed event."""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any, Dict

import pytest

from conftest import golden
from eddy import Context, LambdaHandler, Message, StatefulFunctions, StringType, lambda_handler
from eddy._proto.request_reply_pb2 import ToFunction
from eddy.messages import typed_value


def functions() -> StatefulFunctions:
    registry = StatefulFunctions()

    @registry.bind("com.example/counter")
    async def counter(context: Context, message: Message) -> None:
        await asyncio.sleep(0)
        if message.as_string() == "fail":
            raise RuntimeError("failed on purpose")

    return registry


HANDLER = LambdaHandler(functions())


def v1_event(data: bytes, **overrides: Any) -> Dict[str, Any]:
    event: Dict[str, Any] = {
        "httpMethod": "POST",
        "path": "/com.example/counter",
        "headers": {"content-type": "application/octet-stream"},
        "body": base64.b64encode(data).decode(),
        "isBase64Encoded": True,
    }
    event.update(overrides)
    return event


def v2_event(body: bytes) -> Dict[str, Any]:
    """A Function URL / API Gateway HTTP API (payload 2.0) event."""
    return {
        "version": "2.0",
        "rawPath": "/com.example/counter",
        "headers": {"Content-Type": "application/octet-stream", "host": "abc.lambda-url.us-east-1.on.aws"},
        "requestContext": {"http": {"method": "POST", "path": "/com.example/counter"}},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def test_the_contract_envelope() -> None:
    reply = HANDLER(v1_event(golden("to_function_single_invocation")), None)
    assert reply == {
        "statusCode": 200,
        "headers": {"content-type": "application/octet-stream"},
        "body": base64.b64encode(golden("from_function_empty_invocation_response")).decode(),
        "isBase64Encoded": True,
    }


def test_function_url_and_http_api_events() -> None:
    reply = lambda_handler(functions())(v2_event(golden("to_function_single_invocation")), object())
    assert reply["statusCode"] == 200
    assert base64.b64decode(reply["body"]) == golden("from_function_empty_invocation_response")


def text_reply(reply: Dict[str, Any]) -> "tuple[int, str]":
    assert reply["isBase64Encoded"] is False
    assert reply["headers"]["content-type"].startswith("text/plain")
    return reply["statusCode"], reply["body"]


@pytest.mark.parametrize(
    "event, status, text",
    [
        ("not an object", 400, "the Lambda event is not JSON"),
        ([1, 2], 400, "must be a JSON object in the API Gateway proxy format"),
        ({"body": "AA=="}, 400, "has no HTTP method"),
        (v1_event(b"", httpMethod="GET"), 405, "method GET is not allowed"),
        (v1_event(b"", headers={"Content-Type": "application/json"}), 415, "send application/octet-stream"),
        (v1_event(b"", body=None), 400, "has no body"),
        (v1_event(b"", body=12), 400, "must be a base64 string"),
        (v1_event(b"", body="hello", isBase64Encoded=False), 400, "binary media types"),
        (v1_event(b"", body="***"), 400, "not valid base64"),
        (v1_event(b"\xff\xff"), 400, "not a StateFun ToFunction message"),
        (v1_event(b""), 400, "holds no invocation batch"),
    ],
)
def test_malformed_events_get_clear_errors(event: Any, status: int, text: str) -> None:
    got_status, body = text_reply(HANDLER(event, None))
    assert got_status == status and text in body, body


def test_missing_headers_are_accepted_for_direct_invocations() -> None:
    reply = HANDLER(v1_event(golden("to_function_single_invocation"), headers=None), None)
    assert reply["statusCode"] == 200


def test_unknown_function_is_404_and_a_failing_function_500(caplog: pytest.LogCaptureFixture) -> None:
    other = StatefulFunctions()
    other.register("other/fn", lambda c, m: None)
    status, body = text_reply(LambdaHandler(other)(v1_event(golden("to_function_single_invocation")), None))
    assert status == 404 and "'com.example/counter'" in body
    request = ToFunction.FromString(golden("to_function_single_invocation"))
    request.invocation.invocations[0].argument.CopyFrom(typed_value(StringType, "fail"))
    with caplog.at_level(logging.ERROR, logger="eddy"):
        status, body = text_reply(HANDLER(v1_event(request.SerializeToString()), None))
    assert (status, body) == (500, "function failed: RuntimeError: failed on purpose\n")
    assert any(r.exc_info for r in caplog.records)


def test_the_event_loop_is_kept_across_invocations() -> None:
    handler = LambdaHandler(functions())
    for _ in range(3):
        assert handler(v1_event(golden("to_function_single_invocation")), None)["statusCode"] == 200
    loop = handler._loop
    assert loop is not None and not loop.is_closed()
    handler(v1_event(golden("to_function_single_invocation")), None)
    assert handler._loop is loop
