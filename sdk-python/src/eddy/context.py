"""The context a handler receives: its address, caller, storage and effects."""

from __future__ import annotations

from datetime import timedelta
from typing import Optional

from eddy._proto.request_reply_pb2 import FromFunction
from eddy.messages import Address, EgressMessage, Message
from eddy.storage import Storage
from eddy.types import parse_typename

_ONE_MS = timedelta(milliseconds=1)


class Context:
    """What a handler can see and do during one invocation.

    - ``address``: this function instance; ``caller``: the sending function, None for a
      message from an ingress;
    - ``storage``: the state values of this address (see :class:`eddy.storage.Storage`);
    - ``send``, ``send_after``, ``cancel_delayed_message``, ``send_egress``: effects, applied by
      the runtime once the whole batch has succeeded.
    """

    __slots__ = ("_address", "_caller", "_storage", "_result")

    def __init__(self, address: Address, storage: Storage, result: FromFunction.InvocationResponse) -> None:
        self._address = address
        self._caller: Optional[Address] = None
        self._storage = storage
        self._result = result

    @property
    def address(self) -> Address:
        """The address of the function instance being invoked."""
        return self._address

    @property
    def caller(self) -> Optional[Address]:
        """The address of the function that sent the current message; None if it came from an
        ingress (or from the runtime's delayed-message timer with no sender)."""
        return self._caller

    @property
    def storage(self) -> Storage:
        """The state values of this address."""
        return self._storage

    def send(self, message: Message) -> None:
        """Sends ``message`` (see :func:`eddy.message_builder`) right away."""
        _check_message("send", message)
        outgoing = self._result.outgoing_messages.add()
        _set_target(outgoing.target, message)
        outgoing.argument.CopyFrom(message.typed_value)

    def send_after(self, delay: timedelta, message: Message, cancellation_token: Optional[str] = None) -> None:
        """Sends ``message`` after ``delay`` (a timedelta, millisecond precision). With a
        ``cancellation_token`` the message can be cancelled by :meth:`cancel_delayed_message`."""
        if not isinstance(delay, timedelta):
            raise TypeError(f"send_after: delay must be a datetime.timedelta, got {type(delay).__name__} {delay!r}")
        if delay < timedelta(0):
            raise ValueError(f"send_after: delay must not be negative, got {delay!r}")
        _check_message("send_after", message)
        if cancellation_token is not None and not isinstance(cancellation_token, str):
            raise TypeError(f"send_after: cancellation_token must be a str or None, got {cancellation_token!r}")
        delayed = self._result.delayed_invocations.add()
        delayed.delay_in_ms = delay // _ONE_MS
        _set_target(delayed.target, message)
        delayed.argument.CopyFrom(message.typed_value)
        if cancellation_token:
            delayed.cancellation_token = cancellation_token

    def cancel_delayed_message(self, cancellation_token: str) -> None:
        """Cancels the delayed message sent with ``cancellation_token``, if it has not been
        delivered yet (otherwise nothing happens)."""
        if not isinstance(cancellation_token, str) or not cancellation_token:
            raise ValueError(f"cancel_delayed_message: the cancellation token must be a non-empty str, got {cancellation_token!r}")
        delayed = self._result.delayed_invocations.add()
        delayed.is_cancellation_request = True
        delayed.cancellation_token = cancellation_token

    def send_egress(self, message: EgressMessage) -> None:
        """Writes ``message`` (see :func:`eddy.egress_message_builder`,
        :func:`eddy.kafka_egress_message`, :func:`eddy.kinesis_egress_message`) to its egress."""
        if not isinstance(message, EgressMessage):
            raise TypeError(
                f"send_egress takes an EgressMessage (egress_message_builder, kafka_egress_message, "
                f"kinesis_egress_message), got {type(message).__name__}"
            )
        namespace, name = parse_typename(message.typename, "egress typename")
        egress = self._result.outgoing_egresses.add()
        egress.egress_namespace = namespace
        egress.egress_type = name
        egress.argument.CopyFrom(message.typed_value)

    def __repr__(self) -> str:
        return f"Context(address={self._address!r}, caller={self._caller!r})"


def _check_message(what: str, message: object) -> None:
    if not isinstance(message, Message):
        raise TypeError(f"{what} takes a Message (see eddy.message_builder), got {type(message).__name__}")


def _set_target(target: "object", message: Message) -> None:
    namespace, name = parse_typename(message.target_typename, "target_typename")
    target.namespace = namespace  # type: ignore[attr-defined]
    target.type = name  # type: ignore[attr-defined]
    target.id = message.target_id  # type: ignore[attr-defined]


__all__ = ["Context"]
