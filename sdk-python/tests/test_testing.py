"""The test kit: a function run in-process on given state and messages."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from eddy import (
    Context,
    IntType,
    Message,
    StatefulFunctions,
    StringType,
    ValueSpec,
    egress_message_builder,
    kafka_egress_message,
    message_builder,
)
from eddy.testing import FunctionTester


def functions() -> StatefulFunctions:
    registry = StatefulFunctions()

    @registry.bind("com.example/counter", specs=[ValueSpec("count", IntType), ValueSpec("name", StringType)])
    def counter(context: Context, message: Message) -> None:
        if message.is_string() and message.as_string() == "reset":
            del context.storage.count
            context.cancel_delayed_message(f"remind-{context.address.id}")
            return
        count = (context.storage.count or 0) + 1
        context.storage.count = count
        context.send_egress(egress_message_builder("com.example/out", f"{context.address.id}: {count}", StringType))
        context.send_egress(kafka_egress_message("com.example/kafka", "counts", str(count), key=context.address.id))
        if context.caller is not None:
            context.send(message_builder(context.caller.typename, context.caller.id, int_value=count))
        if count == 1:
            context.send_after(
                timedelta(seconds=2),
                message_builder("com.example/counter", context.address.id, str_value="remind"),
                cancellation_token=f"remind-{context.address.id}",
            )

    return registry


def test_invoke_negotiates_state_and_reports_every_effect() -> None:
    tester = FunctionTester(functions(), "com.example/counter")
    result = tester.invoke("alice", "hello", "again")
    assert result.missing_specs == ["count", "name"]
    assert result.state == {"count": 2}
    assert result.mutations == [("count", 2)]
    assert [e.as_string() for e in result.egress if e.is_string()] == ["alice: 1", "alice: 2"]
    assert [e.as_kafka_record().value_bytes for e in result.egress if e.typename == "com.example/kafka"] == [b"1", b"2"]
    [delayed] = result.delayed
    assert delayed.delay == timedelta(seconds=2) and delayed.cancellation_token == "remind-alice"
    assert delayed.message is not None and delayed.message.as_string() == "remind"
    assert result.messages == []


def test_state_is_kept_between_batches_and_can_be_given() -> None:
    tester = FunctionTester(functions(), "com.example/counter")
    tester.invoke("bob", "x", state={"count": 41, "name": "Bob"})
    assert tester.state_of("bob") == {"count": 42, "name": "Bob"}
    result = tester.invoke("bob", "reset")
    assert result.mutations == [("count", None)]
    assert result.cancellations == ["remind-bob"]
    assert tester.state_of("bob") == {"name": "Bob"}


def test_caller_and_replies() -> None:
    tester = FunctionTester(functions(), "com.example/counter")
    result = tester.invoke("carol", (7, IntType), caller="com.example/asker/q1")
    [reply] = result.messages
    assert (reply.target_typename, reply.target_id, reply.as_int()) == ("com.example/asker", "q1", 1)


def test_errors_of_the_function_propagate_and_bad_inputs_are_reported() -> None:
    tester = FunctionTester(functions(), "com.example/counter")
    with pytest.raises(KeyError, match="'nope' is not a state value"):
        tester.invoke("x", "m", state={"nope": 1})
    with pytest.raises(ValueError, match="at least one message"):
        tester.invoke("x")
    with pytest.raises(TypeError, match="cannot send a list as a message"):
        tester.invoke("x", [1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no function 'a/b'"):
        FunctionTester(functions(), "a/b")


def test_invoke_async() -> None:
    tester = FunctionTester(functions(), "com.example/counter")

    async def scenario() -> None:
        result = await tester.invoke_async("dave", "m")
        assert result.state == {"count": 1}
        with pytest.raises(RuntimeError, match="await invoke_async"):
            tester.invoke("dave", "m")

    asyncio.run(scenario())
