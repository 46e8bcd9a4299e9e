"""A test kit: run a function in-process on given state and messages, and inspect its effects.

Everything goes through the real protocol path (a ``ToFunction`` is built, handled as bytes,
and the ``FromFunction`` reply is read back), including state negotiation.

    tester = FunctionTester(functions, "com.example/counter")
    result = tester.invoke("alice", "hello", state={"count": 3})
    assert result.state["count"] == 4
    assert [e.as_string() for e in result.egress] == ["alice: 4"]
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from eddy._proto.request_reply_pb2 import FromFunction, ToFunction, TypedValue
from eddy.functions import StatefulFunctions, ValueSpec
from eddy.handler import RequestReplyHandler
from eddy.messages import Address, EgressMessage, Message, typed_value
from eddy.types import BoolType, DoubleType, LongType, StringType, Type, parse_typename

#: A message given to :meth:`FunctionTester.invoke`: a :class:`Message` (its target is
#: ignored), a ``(value, Type)`` pair, or a plain value: str (StringType), bool (BoolType),
#: int (LongType), float (DoubleType).
MessageInput = Union[Message, Tuple[Any, Type[Any]], str, bool, int, float]


class DelayedMessage:
    """A delayed message (``message`` set) or a cancellation (``message`` None)."""

    __slots__ = ("delay", "message", "cancellation_token")

    def __init__(self, delay: timedelta, message: Optional[Message], cancellation_token: Optional[str]) -> None:
        self.delay = delay
        self.message = message
        self.cancellation_token = cancellation_token

    @property
    def is_cancellation(self) -> bool:
        return self.message is None

    def __repr__(self) -> str:
        if self.message is None:
            return f"DelayedMessage(cancel {self.cancellation_token!r})"
        return f"DelayedMessage({self.delay!r}, {self.message!r}, token={self.cancellation_token!r})"


class InvocationResult:
    """The effects of one batch, in the order the function produced them."""

    __slots__ = ("state", "mutations", "messages", "delayed", "egress", "missing_specs", "reply")

    def __init__(self) -> None:
        #: The state after the batch (absent values left out), as Python values.
        self.state: Dict[str, Any] = {}
        #: ``(name, value)`` per mutation; value None for a DELETE.
        self.mutations: List[Tuple[str, Any]] = []
        self.messages: List[Message] = []
        self.delayed: List[DelayedMessage] = []
        self.egress: List[EgressMessage] = []
        #: The names of the state values the function asked for on first contact.
        self.missing_specs: List[str] = []
        #: The last raw ``FromFunction``.
        self.reply = FromFunction()

    @property
    def cancellations(self) -> List[str]:
        """The tokens of the cancelled delayed messages."""
        return [d.cancellation_token or "" for d in self.delayed if d.is_cancellation]


class FunctionTester:
    """Runs the function ``typename`` of ``functions`` like the runtime would, keeping the
    state of every address between calls (``tester.state_of(id)``)."""

    def __init__(self, functions: StatefulFunctions, typename: str) -> None:
        parse_typename(typename, "function typename")
        function = functions.for_typename(typename)
        if function is None:
            raise ValueError(f"FunctionTester: no function {typename!r} in the registry ({functions.typenames()})")
        self.typename = typename
        self._specs: Dict[str, ValueSpec] = {spec.name: spec for spec in function.specs}
        self._handler = RequestReplyHandler(functions)
        self._registered: List[str] = []  # what the runtime knows, as after negotiation
        self._state: Dict[str, Dict[str, TypedValue]] = {}

    def state_of(self, id: str) -> Dict[str, Any]:
        """The current state of ``id`` as Python values."""
        return {name: self._decode(name, value) for name, value in self._state.get(id, {}).items()}

    def set_state(self, id: str, **values: Any) -> None:
        """Sets state values of ``id`` (None deletes), encoded with their declared types."""
        current = self._state.setdefault(id, {})
        for name, value in values.items():
            spec = self._specs.get(name)
            if spec is None:
                raise KeyError(f"{name!r} is not a state value of {self.typename!r} (declared: {sorted(self._specs)})")
            if value is None:
                current.pop(name, None)
            else:
                current[name] = typed_value(spec.type, value)

    def invoke(
        self,
        id: str,
        *messages: MessageInput,
        state: Optional[Mapping[str, Any]] = None,
        caller: Optional[Union[Address, str]] = None,
    ) -> InvocationResult:
        """Sends ``messages`` as one batch to ``id`` (after setting ``state``); ``caller`` is an
        Address or ``"ns/name/id"`` (None: from an ingress). Exceptions of the function
        propagate."""
        result: InvocationResult = _run(self.invoke_async(id, *messages, state=state, caller=caller))
        return result

    async def invoke_async(
        self,
        id: str,
        *messages: MessageInput,
        state: Optional[Mapping[str, Any]] = None,
        caller: Optional[Union[Address, str]] = None,
    ) -> InvocationResult:
        """:meth:`invoke` for async tests."""
        if not messages:
            raise ValueError("FunctionTester.invoke needs at least one message")
        if state:
            self.set_state(id, **state)
        caller_address = _caller(caller)
        arguments = [_argument(m) for m in messages]
        result = InvocationResult()
        for _ in range(2):
            reply = FromFunction.FromString(await self._handler.handle_async(self._request(id, caller_address, arguments)))
            result.reply = reply
            if reply.WhichOneof("response") == "incomplete_invocation_context":
                names = [spec.state_name for spec in reply.incomplete_invocation_context.missing_values]
                result.missing_specs.extend(names)
                self._registered.extend(n for n in names if n not in self._registered)
                continue
            self._apply(id, reply.invocation_result, result)
            return result
        raise AssertionError(f"{self.typename} asked for missing state twice: {result.missing_specs}")

    def _request(self, id: str, caller: Optional[Address], arguments: List[TypedValue]) -> bytes:
        request = ToFunction()
        batch = request.invocation
        batch.target.namespace, batch.target.type = parse_typename(self.typename)
        batch.target.id = id
        values = self._state.get(id, {})
        for name in self._registered:
            persisted = batch.state.add()
            persisted.state_name = name
            if name in values:
                persisted.state_value.CopyFrom(values[name])
        for argument in arguments:
            invocation = batch.invocations.add()
            if caller is not None:
                invocation.caller.namespace = caller.namespace
                invocation.caller.type = caller.name
                invocation.caller.id = caller.id
            invocation.argument.CopyFrom(argument)
        return request.SerializeToString()

    def _apply(self, id: str, response: FromFunction.InvocationResponse, result: InvocationResult) -> None:
        values = self._state.setdefault(id, {})
        for mutation in response.state_mutations:
            if mutation.mutation_type == FromFunction.PersistedValueMutation.MutationType.DELETE:
                values.pop(mutation.state_name, None)
                result.mutations.append((mutation.state_name, None))
            else:
                values[mutation.state_name] = mutation.state_value
                result.mutations.append((mutation.state_name, self._decode(mutation.state_name, mutation.state_value)))
        for outgoing in response.outgoing_messages:
            result.messages.append(_message(outgoing.target, outgoing.argument))
        for delayed in response.delayed_invocations:
            if delayed.is_cancellation_request:
                result.delayed.append(DelayedMessage(timedelta(0), None, delayed.cancellation_token))
            else:
                result.delayed.append(
                    DelayedMessage(
                        timedelta(milliseconds=delayed.delay_in_ms),
                        _message(delayed.target, delayed.argument),
                        delayed.cancellation_token or None,
                    )
                )
        for egress in response.outgoing_egresses:
            result.egress.append(EgressMessage(f"{egress.egress_namespace}/{egress.egress_type}", egress.argument))
        result.state = self.state_of(id)

    def _decode(self, name: str, value: TypedValue) -> Any:
        spec = self._specs.get(name)
        if spec is None or not value.has_value:
            return None
        return spec.type.serializer().deserialize(value.value)


def _message(target: Any, argument: TypedValue) -> Message:
    return Message(f"{target.namespace}/{target.type}", target.id, argument)


def _caller(caller: Optional[Union[Address, str]]) -> Optional[Address]:
    if caller is None or isinstance(caller, Address):
        return caller
    if isinstance(caller, str):
        typename, _, id = caller.rpartition("/")
        return Address.of(typename, id)
    raise TypeError(f"caller must be an Address, 'ns/name/id' or None, got {caller!r}")


def _argument(message: MessageInput) -> TypedValue:
    if isinstance(message, Message):
        return message.typed_value
    if isinstance(message, tuple):
        value, value_type = message
        return typed_value(value_type, value)
    if isinstance(message, bool):
        return typed_value(BoolType, message)
    if isinstance(message, str):
        return typed_value(StringType, message)
    if isinstance(message, int):
        return typed_value(LongType, message)
    if isinstance(message, float):
        return typed_value(DoubleType, message)
    raise TypeError(
        f"cannot send a {type(message).__name__} as a message: pass a Message, a (value, Type) pair, "
        f"or a str / bool / int / float"
    )


def _run(coroutine: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    coroutine.close()
    raise RuntimeError("FunctionTester.invoke was called inside an event loop: await invoke_async(...) instead")


def messages_of(values: Iterable[MessageInput]) -> List[TypedValue]:
    """The typed values of several message inputs (for hand-built requests)."""
    return [_argument(v) for v in values]


__all__ = ["FunctionTester", "InvocationResult", "DelayedMessage", "MessageInput", "messages_of"]
