"""The golden vectors of protocol/testdata, byte for byte: decode + re-encode with the
generated classes, the readable `fields` of the manifest, every built-in type's encoding,
typed values and egress records built with the SDK, and golden requests through the handler
giving the golden replies."""

from __future__ import annotations

import json
import math
import struct
from datetime import timedelta
from typing import Any, Dict

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message as ProtobufMessage
from google.protobuf.unknown_fields import UnknownFieldSet  # type: ignore[import-not-found]

from conftest import VECTORS, golden
from eddy import (
    BoolType,
    Context,
    DoubleType,
    FloatType,
    IntType,
    LongType,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    StringType,
    ValueSpec,
    egress_message_builder,
    kafka_egress_message,
    kinesis_egress_message,
    make_json_type,
    message_builder,
)
from eddy._proto import kafka_egress_pb2, kinesis_egress_pb2, request_reply_pb2, types_pb2
from eddy.messages import typed_value

CLASSES: Dict[str, Any] = {}
for module in (request_reply_pb2, types_pb2, kafka_egress_pb2, kinesis_egress_pb2):
    for name in dir(module):
        cls = getattr(module, name)
        if isinstance(cls, type) and issubclass(cls, ProtobufMessage):
            CLASSES[cls.DESCRIPTOR.full_name] = cls

USER_TYPE = make_json_type("com.example/user")


def render(message: ProtobufMessage) -> Dict[str, Any]:
    """The manifest's readable form: every field by name, unset messages null, bytes hex."""
    out: Dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.is_repeated:
            out[field.name] = [render_value(field, v) for v in value]
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            out[field.name] = render(value) if message.HasField(field.name) else None
        else:
            out[field.name] = render_value(field, value)
    return out


def render_value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return render(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return value.hex()
    if field.type == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values_by_number[value].name
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
    return value


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_every_vector_decodes_reencodes_and_matches_its_fields(name: str) -> None:
    vector = VECTORS[name]
    data = golden(name)
    cls = CLASSES[vector["message"]]
    message = cls.FromString(data)
    assert message.SerializeToString() == data
    assert len(UnknownFieldSet(message)) == 0
    assert render(message) == vector["fields"]


def test_the_manifest_lists_every_file() -> None:
    from conftest import TESTDATA

    on_disk = {p.name for p in TESTDATA.glob("*.bin")}
    assert on_disk == {v["file"] for v in VECTORS.values()}
    assert len(VECTORS) >= 47


BUILT_INS: Dict[str, Any] = {
    "io.statefun.sdk.types.BooleanWrapper": BoolType,
    "io.statefun.sdk.types.IntWrapper": IntType,
    "io.statefun.sdk.types.LongWrapper": LongType,
    "io.statefun.sdk.types.FloatWrapper": FloatType,
    "io.statefun.sdk.types.DoubleWrapper": DoubleType,
    "io.statefun.sdk.types.StringWrapper": StringType,
}


def manifest_value(value: Any) -> Any:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, value) if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity") else value


@pytest.mark.parametrize("name", sorted(n for n in VECTORS if n.startswith("builtin_")))
def test_builtin_type_encodings(name: str) -> None:
    vector = VECTORS[name]
    value_type = BUILT_INS[vector["message"]]
    value = manifest_value(vector["fields"]["value"])
    data = golden(name)
    assert value_type.serializer().serialize(value) == data, name
    decoded = value_type.serializer().deserialize(data)
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(decoded)
        assert struct.pack("<d", decoded) == struct.pack("<d", value)
    else:
        assert decoded == value and type(decoded) is type(value)


def test_zero_values_encode_as_empty_bytes() -> None:
    pairs: Any = ((BoolType, False), (IntType, 0), (LongType, 0), (FloatType, 0.0), (DoubleType, 0.0), (StringType, ""))
    for value_type, zero in pairs:
        assert value_type.serializer().serialize(zero) == b""
        assert value_type.serializer().deserialize(b"") == zero


def test_typed_values_built_with_the_sdk() -> None:
    assert typed_value(IntType, 7).SerializeToString() == golden("typed_value_int")
    assert typed_value(StringType, "grüße 🦀").SerializeToString() == golden("typed_value_string_unicode")
    assert typed_value(LongType, 0).SerializeToString() == golden("typed_value_long_zero")
    assert typed_value(IntType, None).SerializeToString() == golden("typed_value_absent")
    user = {"name": "alice", "visits": 3}
    assert typed_value(USER_TYPE, user).SerializeToString() == golden("typed_value_custom_json")


def test_kafka_and_kinesis_records_built_with_the_sdk() -> None:
    kafka = kafka_egress_message("com.example/kafka", topic="greetings", key="alice", value="Hello alice")
    assert kafka.typed_value.SerializeToString() == golden("typed_value_kafka_producer_record")
    assert kafka.typed_value.value == golden("kafka_producer_record")
    assert kafka.as_kafka_record().key == "alice"
    no_key = kafka_egress_message("com.example/kafka", topic="numbers", value=42, value_type=LongType)
    assert no_key.typed_value.value == golden("kafka_producer_record_without_key")
    kinesis = kinesis_egress_message(
        "com.example/kinesis",
        stream="greetings",
        value="Hello alice",
        partition_key="alice",
        explicit_hash_key=str(2**127),
    )
    assert kinesis.typed_value.SerializeToString() == golden("typed_value_kinesis_egress_record")
    assert kinesis.typed_value.value == golden("kinesis_egress_record")
    plain = kinesis_egress_message("com.example/kinesis", stream="greetings", value=b"Hello bob", partition_key="bob")
    assert plain.typed_value.value == golden("kinesis_egress_record_without_hash_key")


# ---------------------------------------------------------------------------------------------
# Golden requests through the handler give the golden replies
# ---------------------------------------------------------------------------------------------


def every_effect_functions() -> "tuple[StatefulFunctions, list[Any]]":
    """com.example/counter, written so that to_function_batch yields exactly
    from_function_invocation_response."""
    functions = StatefulFunctions()
    seen: "list[Any]" = []

    @functions.bind(
        "com.example/counter",
        specs=[
            ValueSpec("count", IntType),
            ValueSpec("last_seen", LongType),
            ValueSpec("nickname", StringType),
            ValueSpec("profile", USER_TYPE),
        ],
    )
    def counter(context: Context, message: Message) -> None:
        seen.append((context.caller, message.value_typename(), message.raw_value()))
        if len(seen) > 1:
            return
        assert context.address.typename == "com.example/counter" and context.address.id == "alice"
        assert message.as_string() == "hello" and context.caller is None
        storage = context.storage
        assert storage.count == 3 and storage.last_seen is None and storage.nickname == ""
        assert storage.profile is None
        storage.count = storage.count + 1
        del storage.last_seen
        storage.nickname = ""
        context.send(message_builder("com.example/greeter", "bob", str_value="hello bob"))
        context.send(message_builder("com.example/counter", "carol", bool_value=True))
        context.send_after(
            timedelta(milliseconds=1500),
            message_builder("com.example/reminder", "alice", str_value="wake up"),
            cancellation_token="reminder-alice",
        )
        context.send_after(timedelta(minutes=1), message_builder("com.example/counter", "alice", long_value=-7))
        context.cancel_delayed_message("reminder-old")
        context.send_egress(egress_message_builder("com.example/out", "Hello alice", StringType))
        context.send_egress(kafka_egress_message("com.example/kafka", "greetings", "Hello alice", key="alice"))
        context.send_egress(
            kinesis_egress_message("com.example/kinesis", "greetings", "Hello alice", "alice", explicit_hash_key=str(2**127))
        )

    return functions, seen


def test_golden_batch_gives_the_golden_invocation_response() -> None:
    functions, seen = every_effect_functions()
    reply = RequestReplyHandler(functions).handle(golden("to_function_batch"))
    assert reply == golden("from_function_invocation_response")
    # every invocation ran, in order, with its caller
    assert [(str(c) if c else None, t) for c, t, _ in seen] == [
        (None, "io.statefun.types/string"),
        ("com.example/greeter/bob", "io.statefun.types/long"),
        ("com.example/router/r1", "com.example/user"),
        (None, "io.statefun.types/int"),
    ]
    assert json.loads(seen[2][2]) == {"name": "alice", "visits": 3}
    assert seen[3][2] == b""


def test_golden_first_contact_gives_the_golden_incomplete_context() -> None:
    functions = StatefulFunctions()
    functions.register(
        "com.example/counter",
        lambda context, message: None,
        specs=[
            ValueSpec("count", IntType),
            ValueSpec("session", StringType, expire_after_write=timedelta(hours=1)),
            ValueSpec("last_seen", LongType, expire_after_call=timedelta(days=1)),
            ValueSpec("profile", USER_TYPE, expire_after_write=timedelta(milliseconds=1500)),
            ValueSpec("flag", BoolType),
        ],
    )
    reply = RequestReplyHandler(functions).handle(golden("to_function_single_invocation"))
    assert reply == golden("from_function_incomplete_invocation_context")


def test_golden_request_without_effects_gives_an_empty_invocation_response() -> None:
    functions = StatefulFunctions()
    functions.register("com.example/counter", lambda context, message: None)
    reply = RequestReplyHandler(functions).handle(golden("to_function_single_invocation"))
    assert reply == golden("from_function_empty_invocation_response")


def test_async_handle_gives_the_same_bytes() -> None:
    import asyncio

    functions, _ = every_effect_functions()
    reply = asyncio.run(RequestReplyHandler(functions).handle_async(golden("to_function_batch")))
    assert reply == golden("from_function_invocation_response")
