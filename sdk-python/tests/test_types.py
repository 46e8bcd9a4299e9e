"""Types: validation of user values, JSON (dicts and dataclasses), protobuf and simple types,
and the builders of messages and egress records."""

from __future__ import annotations

import dataclasses
import math
import struct
from datetime import timedelta
from typing import Any, List

import pytest

from eddy import (
    BoolType,
    DoubleType,
    FloatType,
    IntType,
    LongType,
    StatefulFunctions,
    StringType,
    ValueSpec,
    egress_message_builder,
    kafka_egress_message,
    kinesis_egress_message,
    make_json_type,
    make_protobuf_type,
    message_builder,
    simple_type,
)
from eddy._proto.kafka_egress_pb2 import KafkaProducerRecord


@pytest.mark.parametrize(
    "value_type, value, error, text",
    [
        (IntType, 2**31, ValueError, "IntType holds integers from -2147483648 to 2147483647, got 2147483648; use LongType"),
        (IntType, True, TypeError, "IntType holds an int, got bool"),
        (IntType, 1.0, TypeError, "IntType holds an int, got float"),
        (LongType, -(2**63) - 1, ValueError, "LongType holds integers"),
        (FloatType, 1e39, ValueError, "out of the range of FloatType"),
        (FloatType, "1", TypeError, "FloatType holds a float, got str"),
        (DoubleType, None, TypeError, "DoubleType holds a float, got NoneType"),
        (BoolType, 1, TypeError, "BoolType holds a bool, got int"),
        (StringType, b"x", TypeError, "StringType holds a str, got bytes"),
        (StringType, "\ud800", ValueError, "StringType holds valid unicode text"),
    ],
)
def test_built_in_types_reject_wrong_values_clearly(value_type: Any, value: Any, error: type, text: str) -> None:
    with pytest.raises(error, match=text.replace("(", r"\(").replace(")", r"\)")):
        value_type.serializer().serialize(value)


def test_float_rounds_to_single_precision_and_keeps_infinities() -> None:
    serializer = FloatType.serializer()
    assert serializer.deserialize(serializer.serialize(0.1)) == struct.unpack("<f", struct.pack("<f", 0.1))[0]
    assert serializer.deserialize(serializer.serialize(-math.inf)) == -math.inf
    assert serializer.deserialize(serializer.serialize(5)) == 5.0
    assert math.isnan(DoubleType.serializer().deserialize(DoubleType.serializer().serialize(math.nan)))


def test_corrupt_bytes_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="the bytes of a io.statefun.types/long value are not valid"):
        LongType.serializer().deserialize(b"\x09\x01")


@dataclasses.dataclass
class User:
    name: str
    visits: int


def test_json_types_take_dicts_and_dataclasses() -> None:
    plain = make_json_type("com.example/user")
    assert plain.serializer().serialize({"name": "alice", "visits": 3}) == b'{"name":"alice","visits":3}'
    assert plain.serializer().serialize({"s": "é"}) == '{"s":"é"}'.encode()
    typed = make_json_type("com.example/user", User)
    data = typed.serializer().serialize(User("alice", 3))
    assert data == b'{"name":"alice","visits":3}'
    assert typed.serializer().deserialize(data) == User("alice", 3)
    with pytest.raises(TypeError, match="com.example/user holds User values, got dict"):
        typed.serializer().serialize({"name": "x"})
    with pytest.raises(ValueError, match="does not fit User"):
        typed.serializer().deserialize(b'{"name":"x"}')
    with pytest.raises(ValueError, match="not UTF-8 JSON"):
        plain.serializer().deserialize(b"{nope")
    with pytest.raises(TypeError, match="not JSON serializable"):
        plain.serializer().serialize({"x": object()})
    with pytest.raises(TypeError, match="cls must be a dataclass"):
        make_json_type("com.example/user", dict)


def test_protobuf_and_simple_types() -> None:
    kafka = make_protobuf_type(KafkaProducerRecord)
    assert kafka.typename == "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"
    record = KafkaProducerRecord(topic="t", value_bytes=b"v")
    assert kafka.serializer().deserialize(kafka.serializer().serialize(record)) == record
    with pytest.raises(TypeError, match="expected a generated protobuf message class"):
        make_protobuf_type(dict)  # type: ignore[type-var]
    csv = simple_type("com.example/csv", lambda v: ",".join(v).encode(), lambda b: b.decode().split(","))
    assert csv.serializer().deserialize(csv.serializer().serialize(["a", "b"])) == ["a", "b"]


@pytest.mark.parametrize("typename", ["", "noslash", "/name", "ns/"])
def test_typenames_are_validated(typename: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        make_json_type(typename)
    functions = StatefulFunctions()
    with pytest.raises(ValueError):
        functions.register(typename, lambda context, message: None)


def test_value_specs_are_validated() -> None:
    for name in ("Count", "1a", "class", "with space", "", "_eddy_cells"):
        with pytest.raises(ValueError, match="invalid state name|non-empty"):
            ValueSpec(name, IntType)
    with pytest.raises(TypeError, match="must be an eddy Type"):
        ValueSpec("a", int)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        ValueSpec("a", IntType, expire_after_call=timedelta(seconds=1), expire_after_write=timedelta(seconds=1))
    with pytest.raises(ValueError, match="positive timedelta"):
        ValueSpec("a", IntType, expire_after_write=timedelta(seconds=-1))


def test_registry_rejects_duplicates_and_bad_handlers() -> None:
    functions = StatefulFunctions()
    functions.register("a/b", lambda context, message: None)
    with pytest.raises(ValueError, match="registered twice"):
        functions.register("a/b", lambda context, message: None)
    with pytest.raises(TypeError, match=r"must take two arguments \(context, message\)"):
        functions.register("a/c", lambda context: None)  # type: ignore[arg-type, misc]
    with pytest.raises(ValueError, match="declared twice"):
        functions.register("a/d", lambda c, m: None, specs=[ValueSpec("x", IntType), ValueSpec("x", LongType)])
    assert functions.typenames() == ["a/b"] and "a/b" in functions


def test_message_builder_needs_exactly_one_value() -> None:
    message = message_builder("a/b", "id", int_value=7)
    assert message.as_int() == 7 and message.is_int() and not message.is_long()
    assert message_builder("a/b", "id", value={"n": 1}, value_type=make_json_type("a/j")).raw_value() == b'{"n":1}'
    errors: List[str] = []
    for kwargs in ({}, {"int_value": 1, "str_value": "x"}, {"value": 1}):
        with pytest.raises(ValueError) as error:
            message_builder("a/b", "id", **kwargs)
        errors.append(str(error.value))
    assert "got none" in errors[0] and "got 2" in errors[1] and "needs value_type" in errors[2]
    with pytest.raises(ValueError, match="must not be empty"):
        message_builder("a/b", "", int_value=1)
    with pytest.raises(TypeError, match="not 'io.statefun.types/string'"):
        message.as_string()


def test_egress_builders_validate_their_input() -> None:
    with pytest.raises(ValueError, match="topic must be a non-empty str"):
        kafka_egress_message("a/k", "", "v")
    with pytest.raises(TypeError, match="cannot turn a list into bytes"):
        kafka_egress_message("a/k", "t", [1])
    with pytest.raises(ValueError, match="partition_key must be a non-empty str"):
        kinesis_egress_message("a/k", "s", "v", "")
    with pytest.raises(ValueError, match="the value is missing"):
        egress_message_builder("a/out", None, StringType)
    assert kafka_egress_message("a/k", "t", 1).as_kafka_record().value_bytes == b"\x00\x00\x00\x01"
    assert kafka_egress_message("a/k", "t", 1.5).as_kafka_record().value_bytes == struct.pack(">d", 1.5)
    assert egress_message_builder("a/out", "x", StringType).as_string() == "x"
