"""An AWS Lambda handler serving the functions, with the API Gateway proxy envelope.

The runtime's Lambda endpoint (``io.eddy.endpoints.v1/lambda``) invokes the function with

    {"httpMethod": "POST", "path": "/<ns>/<name>",
     "headers": {"content-type": "application/octet-stream"},
     "body": "<base64 ToFunction>", "isBase64Encoded": true}

and the handler answers

    {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
     "body": "<base64 FromFunction>", "isBase64Encoded": true}

API Gateway (REST, v1 payload), API Gateway HTTP APIs (v2 payload) and Function URLs send
events of the same shape (v2: ``requestContext.http.method``), so the same deployment works
behind each of them. Errors use the HTTP statuses of :mod:`eddy.asgi` with a plain-text body.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from typing import Any, Dict, Mapping, Optional, Union

from eddy.errors import InvalidRequestError, UnknownFunctionError
from eddy.functions import StatefulFunctions
from eddy.handler import RequestReplyHandler

logger = logging.getLogger("eddy")

CONTENT_TYPE = "application/octet-stream"


class LambdaHandler:
    """``handler = LambdaHandler(functions)``; point Lambda at ``module.handler``.

    Async functions run on one event loop kept across invocations of the same Lambda
    execution environment.
    """

    __slots__ = ("handler", "_loop")

    def __init__(self, functions: Union[StatefulFunctions, RequestReplyHandler]) -> None:
        self.handler = functions if isinstance(functions, RequestReplyHandler) else RequestReplyHandler(functions)
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def __call__(self, event: Any, context: Any = None) -> Dict[str, Any]:
        try:
            body = _request_body(event)
        except _Reject as reject:
            return _text(reject.status, str(reject))
        try:
            reply = self._run(body)
        except UnknownFunctionError as error:
            return _text(404, str(error))
        except InvalidRequestError as error:
            return _text(400, str(error))
        except Exception as error:  # a function failed: the runtime retries, then dead-letters
            logger.exception("eddy: function failed: %s", error)
            return _text(500, f"function failed: {type(error).__name__}: {error}")
        return {
            "statusCode": 200,
            "headers": {"content-type": CONTENT_TYPE},
            "body": base64.b64encode(reply).decode("ascii"),
            "isBase64Encoded": True,
        }

    def _run(self, body: bytes) -> bytes:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:  # called from async code: no nested loop, sync functions only
            return self.handler.handle(body)
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(self.handler.handle_async(body))


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _request_body(event: Any) -> bytes:
    if isinstance(event, (bytes, bytearray, str)):
        # a runtime client that did not decode the event (no JSON content type on /next)
        try:
            event = json.loads(event)
        except ValueError as error:
            raise _Reject(400, f"the Lambda event is not JSON: {error}") from None
    if not isinstance(event, Mapping):
        raise _Reject(
            400,
            f"the Lambda event must be a JSON object in the API Gateway proxy format "
            f"(httpMethod, headers, body, isBase64Encoded), got {type(event).__name__}",
        )
    method = event.get("httpMethod")
    if method is None:
        http = (event.get("requestContext") or {}).get("http") if isinstance(event.get("requestContext"), Mapping) else None
        method = http.get("method") if isinstance(http, Mapping) else None
    if method is None:
        raise _Reject(
            400,
            "the Lambda event has no HTTP method (httpMethod, or requestContext.http.method): "
            "invoke it with the API Gateway proxy envelope, as Eddy's Lambda endpoint does",
        )
    if str(method).upper() != "POST":
        raise _Reject(405, f"method {method} is not allowed: POST a StateFun ToFunction")
    headers = event.get("headers") or {}
    content_type = None
    if isinstance(headers, Mapping):
        for key, value in headers.items():
            if isinstance(key, str) and key.lower() == "content-type":
                content_type = str(value)
    if content_type is not None:  # direct invocations may leave headers out
        essence = content_type.split(";", 1)[0].strip().lower()
        if essence != CONTENT_TYPE:
            raise _Reject(415, f"content-type {content_type!r} is not supported: send {CONTENT_TYPE}")
    body = event.get("body")
    if body is None:
        raise _Reject(400, "the Lambda event has no body: it must hold the base64 of a StateFun ToFunction")
    if not isinstance(body, str):
        raise _Reject(400, f"the Lambda event's body must be a base64 string, got {type(body).__name__}")
    if not event.get("isBase64Encoded", False):
        raise _Reject(
            400,
            "the Lambda event's body is not base64-encoded (isBase64Encoded is false): protobuf is "
            "binary, send it base64-encoded (API Gateway: add application/octet-stream to the binary media types)",
        )
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as error:
        raise _Reject(400, f"the Lambda event's body is not valid base64: {error}") from None


def _text(status: int, message: str) -> Dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "text/plain; charset=utf-8"},
        "body": message + "\n",
        "isBase64Encoded": False,
    }


def lambda_handler(functions: Union[StatefulFunctions, RequestReplyHandler]) -> LambdaHandler:
    """The Lambda handler of ``functions`` (see :class:`LambdaHandler`)."""
    return LambdaHandler(functions)


__all__ = ["LambdaHandler", "lambda_handler"]
