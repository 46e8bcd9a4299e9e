"""The request-reply protocol, transport-free: ``ToFunction`` bytes in, ``FromFunction`` out.

The batch algorithm: find the target function; if a declared state value is missing from the
request, answer ``IncompleteInvocationContext`` with the missing specs (the runtime registers
them and sends the same batch again); otherwise run every invocation of the batch in order
against one storage view and answer one ``InvocationResponse`` with all the effects: outgoing
messages, delayed messages and cancellations, egress records, and one mutation per changed
state value.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Dict, Optional, Tuple, Union

from google.protobuf.message import DecodeError

from eddy._proto.request_reply_pb2 import FromFunction, ToFunction, TypedValue
from eddy.context import Context
from eddy.errors import InvalidRequestError, UnknownFunctionError
from eddy.functions import StatefulFunction, StatefulFunctions
from eddy.messages import Address, Message
from eddy.storage import Cell, Storage, collect_mutations

Bytes = Union[bytes, bytearray, memoryview]


class _Batch:
    """A parsed batch, ready to run."""

    __slots__ = ("function", "address", "context", "cells", "invocations", "reply")

    def __init__(self, function: StatefulFunction, address: Address, request: ToFunction.InvocationBatchRequest) -> None:
        self.function = function
        self.address = address
        received: Dict[str, Optional[TypedValue]] = {}
        for value in request.state:
            received[value.state_name] = value.state_value if value.HasField("state_value") else None
        self.cells = {spec.name: Cell(spec, received[spec.name]) for spec in function.specs}
        self.reply = FromFunction()
        result = self.reply.invocation_result
        result.SetInParent()
        self.context = Context(address, Storage(self.cells, function.typename), result)
        self.invocations = request.invocations

    def message(self, invocation: ToFunction.Invocation) -> Message:
        caller = invocation.caller
        self.context._caller = (
            Address(caller.namespace, caller.type, caller.id)
            if invocation.HasField("caller") and (caller.namespace or caller.type or caller.id)
            else None
        )
        return Message(self.function.typename, self.address.id, invocation.argument)

    def finish(self) -> bytes:
        collect_mutations(self.cells, self.reply.invocation_result)
        return self.reply.SerializeToString()


class RequestReplyHandler:
    """Answers StateFun request-reply requests for ``functions``.

    - :meth:`handle` (sync) and :meth:`handle_async` (async) take the bytes of a
      ``ToFunction`` and return the bytes of the ``FromFunction`` reply;
    - a malformed request raises :class:`eddy.errors.InvalidRequestError` (an unregistered
      function: :class:`eddy.errors.UnknownFunctionError`); an exception raised by a function
      propagates unchanged (the batch fails as a whole and no effect is returned).
    """

    __slots__ = ("functions",)

    def __init__(self, functions: StatefulFunctions) -> None:
        if not isinstance(functions, StatefulFunctions):
            raise TypeError(f"RequestReplyHandler takes a StatefulFunctions registry, got {type(functions).__name__}")
        self.functions = functions

    def _prepare(self, request: Bytes) -> Tuple[Optional[bytes], Optional[_Batch]]:
        if not isinstance(request, (bytes, bytearray, memoryview)):
            raise InvalidRequestError(f"the request must be bytes (a serialized ToFunction), got {type(request).__name__}")
        try:
            to_function = ToFunction.FromString(bytes(request))
        except DecodeError as error:
            raise InvalidRequestError(f"the request body is not a StateFun ToFunction message: {error}") from None
        if to_function.WhichOneof("request") != "invocation":
            raise InvalidRequestError(
                "the request holds no invocation batch (ToFunction.invocation is unset): "
                "send a StateFun ToFunction with an InvocationBatchRequest"
            )
        batch_request = to_function.invocation
        target = batch_request.target
        if not target.namespace or not target.type or not target.id:
            raise InvalidRequestError(
                f"the request's target address is incomplete (namespace={target.namespace!r}, "
                f"type={target.type!r}, id={target.id!r})"
            )
        typename = f"{target.namespace}/{target.type}"
        function = self.functions.for_typename(typename)
        if function is None:
            registered = ", ".join(self.functions.typenames()) or "none"
            raise UnknownFunctionError(f"no function is registered as {typename!r} (registered: {registered})")
        present = {value.state_name for value in batch_request.state}
        missing = [spec for spec in function.specs if spec.name not in present]
        if missing:
            reply = FromFunction()
            context = reply.incomplete_invocation_context
            context.SetInParent()
            for spec in missing:
                context.missing_values.append(spec.to_protocol())
            return reply.SerializeToString(), None
        address = Address(target.namespace, target.type, target.id)
        return None, _Batch(function, address, batch_request)

    def handle(self, request: Bytes) -> bytes:
        """Handles one request synchronously. An ``async def`` function is run to completion
        on a fresh event loop; inside a running loop, use :meth:`handle_async`."""
        reply, batch = self._prepare(request)
        if batch is None:
            assert reply is not None
            return reply
        if batch.function.is_async:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return asyncio.run(self._run_async(batch))
            raise RuntimeError(
                f"function {batch.function.typename!r} is async and an event loop is running: "
                f"await handler.handle_async(request) instead of handler.handle(request)"
            )
        fun: Any = batch.function.fun
        context = batch.context
        for invocation in batch.invocations:
            result = fun(context, batch.message(invocation))
            if inspect.isawaitable(result):
                close = getattr(result, "close", None)
                if close is not None:
                    close()
                raise TypeError(
                    f"function {batch.function.typename!r} returned an awaitable from a plain def; "
                    f"declare it `async def`"
                )
        return batch.finish()

    #: Apache StateFun's name of :meth:`handle`.
    handle_sync = handle

    async def handle_async(self, request: Bytes) -> bytes:
        """Handles one request; async functions are awaited, plain ones are called."""
        reply, batch = self._prepare(request)
        if batch is None:
            assert reply is not None
            return reply
        return await self._run_async(batch)

    async def _run_async(self, batch: _Batch) -> bytes:
        fun: Any = batch.function.fun
        context = batch.context
        for invocation in batch.invocations:
            result = fun(context, batch.message(invocation))
            if inspect.isawaitable(result):
                await result
        return batch.finish()


__all__ = ["RequestReplyHandler"]
