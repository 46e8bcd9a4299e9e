"""Storage dirty tracking, one storage view per batch, and state negotiation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, List

import pytest

from eddy import (
    Context,
    IntType,
    LongType,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    StringType,
    ValueSpec,
    make_json_type,
)
from eddy._proto.request_reply_pb2 import FromFunction, ToFunction
from eddy.messages import typed_value

MODIFY = FromFunction.PersistedValueMutation.MutationType.MODIFY
DELETE = FromFunction.PersistedValueMutation.MutationType.DELETE


def request(state: "dict[str, Any]", *arguments: str, typename: str = "t/f", id: str = "a", types: Any = None) -> bytes:
    """A ToFunction for t/f/a; ``state`` maps name -> (Type, value or None) or None (no value)."""
    to_function = ToFunction()
    batch = to_function.invocation
    batch.target.namespace, batch.target.type = typename.split("/")
    batch.target.id = id
    for name, entry in state.items():
        persisted = batch.state.add()
        persisted.state_name = name
        if entry is not None:
            value_type, value = entry
            persisted.state_value.CopyFrom(typed_value(value_type, value))
    for argument in arguments:
        batch.invocations.add().argument.CopyFrom(typed_value(StringType, argument))
    return to_function.SerializeToString()


def reply_of(functions: StatefulFunctions, data: bytes) -> FromFunction:
    return FromFunction.FromString(RequestReplyHandler(functions).handle(data))


def make(handler: Any) -> StatefulFunctions:
    functions = StatefulFunctions()
    functions.register("t/f", handler, specs=[ValueSpec("a", IntType), ValueSpec("b", StringType), ValueSpec("c", LongType)])
    return functions


FULL = {"a": (IntType, 1), "b": (StringType, "x"), "c": None}


def test_reading_only_produces_no_mutation() -> None:
    reads: List[Any] = []
    functions = make(lambda context, message: reads.append((context.storage.a, context.storage.b, context.storage.c)))
    reply = reply_of(functions, request(FULL, "m"))
    assert reads == [(1, "x", None)]
    assert reply.WhichOneof("response") == "invocation_result"
    assert list(reply.invocation_result.state_mutations) == []


def test_writes_and_deletes_become_mutations_in_spec_order() -> None:
    def handler(context: Context, message: Message) -> None:
        context.storage.c = 5  # written
        del context.storage.a  # deleted
        # b untouched

    reply = reply_of(make(handler), request(FULL, "m"))
    mutations = [(m.state_name, m.mutation_type, m.state_value.value) for m in reply.invocation_result.state_mutations]
    assert mutations == [("a", DELETE, b""), ("c", MODIFY, LongType.serializer().serialize(5))]
    assert not reply.invocation_result.state_mutations[0].HasField("state_value")


def test_write_then_delete_is_one_delete_and_delete_then_write_is_one_modify() -> None:
    def handler(context: Context, message: Message) -> None:
        context.storage.a = 10
        del context.storage.a
        del context.storage.b
        context.storage.b = "y"

    reply = reply_of(make(handler), request(FULL, "m"))
    assert [(m.state_name, m.mutation_type) for m in reply.invocation_result.state_mutations] == [
        ("a", DELETE),
        ("b", MODIFY),
    ]


def test_item_access_and_membership() -> None:
    def handler(context: Context, message: Message) -> None:
        storage = context.storage
        assert "a" in storage and "c" not in storage and "zzz" not in storage
        storage["c"] = storage["a"] + 1
        del storage["b"]
        assert sorted(storage) == ["a", "b", "c"]

    reply = reply_of(make(handler), request(FULL, "m"))
    assert [(m.state_name, m.mutation_type) for m in reply.invocation_result.state_mutations] == [
        ("b", DELETE),
        ("c", MODIFY),
    ]


def test_invocations_of_a_batch_share_one_storage_view_in_order() -> None:
    seen: List[Any] = []

    def handler(context: Context, message: Message) -> None:
        seen.append((message.as_string(), context.storage.a))
        context.storage.a = (context.storage.a or 0) + 1

    reply = reply_of(make(handler), request({"a": None, "b": None, "c": None}, "m1", "m2", "m3"))
    assert seen == [("m1", None), ("m2", 1), ("m3", 2)]
    [mutation] = reply.invocation_result.state_mutations
    assert (mutation.state_name, IntType.serializer().deserialize(mutation.state_value.value)) == ("a", 3)


def test_storing_none_and_unknown_names_are_clear_errors() -> None:
    def set_none(context: Context, message: Message) -> None:
        context.storage.a = None

    with pytest.raises(ValueError, match=r"use `del context.storage.a`"):
        reply_of(make(set_none), request(FULL, "m"))

    def unknown(context: Context, message: Message) -> None:
        context.storage.nope = 1

    with pytest.raises(AttributeError, match=r"'nope' is not a state value of function 't/f' \(declared: a, b, c\)"):
        reply_of(make(unknown), request(FULL, "m"))

    def wrong_type(context: Context, message: Message) -> None:
        context.storage.a = "text"

    with pytest.raises(TypeError, match=r"state value 'a' \(io.statefun.types/int\): IntType holds an int, got str"):
        reply_of(make(wrong_type), request(FULL, "m"))


def test_a_stored_value_of_another_type_is_reported() -> None:
    functions = make(lambda context, message: context.storage.a)
    with pytest.raises(TypeError, match=r"state value 'a' arrived with type 'io.statefun.types/string'"):
        reply_of(functions, request({"a": (StringType, "x"), "b": None, "c": None}, "m"))


def test_typed_value_without_value_reads_as_absent() -> None:
    reads: List[Any] = []
    functions = make(lambda context, message: reads.append(context.storage.a))
    reply_of(functions, request({"a": (IntType, None), "b": None, "c": None}, "m"))
    assert reads == [None]


# ---------------------------------------------------------------------------------------------
# Negotiation of missing state
# ---------------------------------------------------------------------------------------------


def negotiating() -> "tuple[StatefulFunctions, List[str]]":
    calls: List[str] = []
    functions = StatefulFunctions()
    functions.register(
        "t/f",
        lambda context, message: calls.append(message.as_string() or ""),
        specs=[
            ValueSpec("a", IntType),
            ValueSpec("b", make_json_type("t/json"), expire_after_write=timedelta(seconds=2)),
            ValueSpec("c", LongType, expire_after_call=timedelta(milliseconds=250)),
        ],
    )
    return functions, calls


def test_missing_state_is_requested_with_specs_and_the_function_is_not_called() -> None:
    functions, calls = negotiating()
    reply = reply_of(functions, request({"b": None}, "m"))
    assert calls == []
    assert reply.WhichOneof("response") == "incomplete_invocation_context"
    missing = [
        (s.state_name, s.type_typename, s.expiration_spec.mode, s.expiration_spec.expire_after_millis, s.HasField("expiration_spec"))
        for s in reply.incomplete_invocation_context.missing_values
    ]
    mode = FromFunction.ExpirationSpec.ExpireMode
    assert missing == [
        ("a", "io.statefun.types/int", mode.NONE, 0, True),
        ("c", "io.statefun.types/long", mode.AFTER_INVOKE, 250, True),
    ]


def test_once_every_value_is_present_the_batch_runs_and_extra_values_are_ignored() -> None:
    functions, calls = negotiating()
    reply = reply_of(functions, request({"a": None, "b": None, "c": None, "old": (IntType, 1)}, "m1", "m2"))
    assert calls == ["m1", "m2"]
    assert reply.WhichOneof("response") == "invocation_result"


def test_a_function_without_state_never_negotiates() -> None:
    functions = StatefulFunctions()
    functions.register("t/f", lambda context, message: None)
    assert reply_of(functions, request({}, "m")).WhichOneof("response") == "invocation_result"
