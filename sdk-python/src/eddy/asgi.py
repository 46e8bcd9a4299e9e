"""An ASGI application serving the functions over HTTP (uvicorn, hypercorn, any ASGI server).

``POST`` any path with ``Content-Type: application/octet-stream`` and a ``ToFunction`` body;
the reply is ``200`` with the ``FromFunction`` bytes. Errors are plain text:

- ``405`` for another method, ``415`` for another content type, ``413`` for a body larger
  than ``max_body_bytes``;
- ``400`` for a body that is not a valid request, ``404`` for an unregistered function;
- ``500`` when a function raises (the traceback is logged on the ``eddy`` logger); the
  runtime then retries the batch and finally dead-letters it.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, List, MutableMapping, Optional, Tuple, Union

from eddy.errors import InvalidRequestError, UnknownFunctionError
from eddy.functions import StatefulFunctions
from eddy.handler import RequestReplyHandler

logger = logging.getLogger("eddy")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

CONTENT_TYPE = "application/octet-stream"
#: Default largest request body (the runtime's batches are far smaller; Lambda caps at 6 MB).
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024


class AsgiHandler:
    """``AsgiHandler(functions)`` is an ASGI 3 application: ``uvicorn module:app``."""

    __slots__ = ("handler", "max_body_bytes")

    def __init__(
        self,
        functions: Union[StatefulFunctions, RequestReplyHandler],
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.handler = functions if isinstance(functions, RequestReplyHandler) else RequestReplyHandler(functions)
        if not isinstance(max_body_bytes, int) or max_body_bytes <= 0:
            raise ValueError(f"AsgiHandler: max_body_bytes must be a positive int, got {max_body_bytes!r}")
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            raise RuntimeError(f"eddy's ASGI app serves HTTP only, not {kind!r} connections")
        status, headers, body = await self._respond(scope, receive)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _respond(self, scope: Scope, receive: Receive) -> Tuple[int, List[Tuple[bytes, bytes]], bytes]:
        method = scope.get("method", "")
        if method != "POST":
            await _drain(receive)
            return _text(405, f"method {method} is not allowed: POST a StateFun ToFunction", [(b"allow", b"POST")])
        content_type = _header(scope, b"content-type")
        essence = (content_type or "").split(";", 1)[0].strip().lower()
        if essence != CONTENT_TYPE:
            await _drain(receive)
            shown = repr(content_type) if content_type is not None else "missing"
            return _text(415, f"content-type {shown} is not supported: send {CONTENT_TYPE}")
        body = await _read_body(receive, self.max_body_bytes)
        if body is None:
            return _text(413, f"the request body is larger than {self.max_body_bytes} bytes")
        try:
            reply = await self.handler.handle_async(body)
        except UnknownFunctionError as error:
            return _text(404, str(error))
        except InvalidRequestError as error:
            return _text(400, str(error))
        except Exception as error:  # a function failed: the runtime retries, then dead-letters
            logger.exception("eddy: function failed: %s", error)
            return _text(500, f"function failed: {type(error).__name__}: {error}")
        return 200, [(b"content-type", CONTENT_TYPE.encode()), (b"content-length", str(len(reply)).encode())], reply


def _text(status: int, message: str, extra: Optional[List[Tuple[bytes, bytes]]] = None) -> Tuple[int, List[Tuple[bytes, bytes]], bytes]:
    body = (message + "\n").encode("utf-8")
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    return status, headers + (extra or []), body


def _header(scope: Scope, name: bytes) -> Optional[str]:
    for key, value in scope.get("headers") or []:
        if bytes(key).lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _read_body(receive: Receive, limit: int) -> Optional[bytes]:
    """The whole body, or None when it exceeds ``limit`` (or the client went away)."""
    parts: List[bytes] = []
    size = 0
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            return None if size > limit else b"".join(parts)
        chunk = event.get("body", b"")
        size += len(chunk)
        if size <= limit:
            parts.append(chunk)
        if not event.get("more_body", False):
            return None if size > limit else b"".join(parts)


async def _drain(receive: Receive) -> None:
    while True:
        event = await receive()
        if event["type"] == "http.disconnect" or not event.get("more_body", False):
            return


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def asgi_app(functions: Union[StatefulFunctions, RequestReplyHandler], **options: Any) -> AsgiHandler:
    """The ASGI application of ``functions`` (see :class:`AsgiHandler`)."""
    return AsgiHandler(functions, **options)


__all__ = ["AsgiHandler", "asgi_app", "CONTENT_TYPE", "DEFAULT_MAX_BODY_BYTES"]
