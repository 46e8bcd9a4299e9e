"""Addresses, messages and egress records, and the builders that make them."""

from __future__ import annotations

import struct
from typing import Any, Optional, TypeVar

from eddy._proto.kafka_egress_pb2 import KafkaProducerRecord
from eddy._proto.kinesis_egress_pb2 import KinesisEgressRecord
from eddy._proto.request_reply_pb2 import TypedValue
from eddy.types import (
    BoolType,
    DoubleType,
    FloatType,
    IntType,
    LongType,
    StringType,
    Type,
    parse_typename,
)

T = TypeVar("T")

#: Typename of a Kafka egress record (``KafkaProducerRecord``).
KAFKA_PRODUCER_RECORD_TYPENAME = "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"
#: Typename of a Kinesis egress record (``KinesisEgressRecord``).
KINESIS_EGRESS_RECORD_TYPENAME = "type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord"


class Address:
    """The address of a function instance: its type ``namespace/name`` and an ``id``."""

    __slots__ = ("namespace", "name", "id")

    def __init__(self, namespace: str, name: str, id: str) -> None:
        self.namespace = namespace
        self.name = name
        self.id = id

    @property
    def typename(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"

    @classmethod
    def of(cls, typename: str, id: str) -> "Address":
        """The address ``typename`` (``namespace/name``) / ``id``."""
        namespace, name = parse_typename(typename, "function type")
        _check_id(id)
        return cls(namespace, name, id)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Address)
            and self.namespace == other.namespace
            and self.name == other.name
            and self.id == other.id
        )

    def __hash__(self) -> int:
        return hash((self.namespace, self.name, self.id))

    def __repr__(self) -> str:
        return f"Address({self.typename!r}, id={self.id!r})"

    def __str__(self) -> str:
        return f"{self.typename}/{self.id}"


def _check_id(id: Any) -> str:
    if not isinstance(id, str):
        raise TypeError(f"a function id must be a str, got {type(id).__name__} {id!r}")
    if not id:
        raise ValueError("a function id must not be empty")
    return id


def typed_value(value_type: "Type[T]", value: Optional[T]) -> TypedValue:
    """The protocol ``TypedValue`` of ``value`` (``None`` gives a value-less one)."""
    if not isinstance(value_type, Type):
        raise TypeError(f"expected an eddy Type (e.g. StringType, make_json_type(...)), got {value_type!r}")
    if value is None:
        return TypedValue(typename=value_type.typename, has_value=False)
    return TypedValue(
        typename=value_type.typename,
        has_value=True,
        value=value_type.serializer().serialize(value),
    )


class _Typed:
    """Reading helpers shared by messages and egress records."""

    __slots__ = ()
    typed_value: TypedValue

    def value_typename(self) -> str:
        """The typename of the value, e.g. ``io.statefun.types/string``."""
        return self.typed_value.typename

    def raw_value(self) -> Optional[bytes]:
        """The value's bytes (``None`` if there is no value)."""
        return self.typed_value.value if self.typed_value.has_value else None

    def is_type(self, value_type: "Type[Any]") -> bool:
        """True if the value has the typename of ``value_type``."""
        return self.typed_value.typename == value_type.typename

    def as_type(self, value_type: "Type[T]") -> Optional[T]:
        """The value read as ``value_type`` (``None`` if there is no value). Raises
        ``TypeError`` when the value's typename is not ``value_type``'s."""
        if self.typed_value.typename != value_type.typename:
            raise TypeError(
                f"the value has type {self.typed_value.typename!r}, not {value_type.typename!r}: "
                f"check is_type() first or read it with the matching type"
            )
        if not self.typed_value.has_value:
            return None
        return value_type.serializer().deserialize(self.typed_value.value)

    def is_bool(self) -> bool:
        return self.is_type(BoolType)

    def as_bool(self) -> Optional[bool]:
        return self.as_type(BoolType)

    def is_int(self) -> bool:
        return self.is_type(IntType)

    def as_int(self) -> Optional[int]:
        return self.as_type(IntType)

    def is_long(self) -> bool:
        return self.is_type(LongType)

    def as_long(self) -> Optional[int]:
        return self.as_type(LongType)

    def is_float(self) -> bool:
        return self.is_type(FloatType)

    def as_float(self) -> Optional[float]:
        return self.as_type(FloatType)

    def is_double(self) -> bool:
        return self.is_type(DoubleType)

    def as_double(self) -> Optional[float]:
        return self.as_type(DoubleType)

    def is_string(self) -> bool:
        return self.is_type(StringType)

    def as_string(self) -> Optional[str]:
        return self.as_type(StringType)


class Message(_Typed):
    """A message for a function: its target (``target_typename`` + ``target_id``) and a typed
    value. Handlers receive one per invocation; :func:`message_builder` makes new ones."""

    __slots__ = ("target_typename", "target_id", "typed_value")

    def __init__(self, target_typename: str, target_id: str, typed_value: TypedValue) -> None:
        parse_typename(target_typename, "target_typename")
        _check_id(target_id)
        if not isinstance(typed_value, TypedValue):
            raise TypeError(f"typed_value must be a TypedValue, got {type(typed_value).__name__}")
        self.target_typename = target_typename
        self.target_id = target_id
        self.typed_value = typed_value

    @property
    def target(self) -> Address:
        """The target address."""
        return Address.of(self.target_typename, self.target_id)

    def __repr__(self) -> str:
        return f"Message(to={self.target_typename}/{self.target_id}, type={self.typed_value.typename!r})"


class EgressMessage(_Typed):
    """A record for the egress ``typename`` (``namespace/name`` as in module.yaml)."""

    __slots__ = ("typename", "typed_value")

    def __init__(self, typename: str, typed_value: TypedValue) -> None:
        parse_typename(typename, "egress typename")
        if not isinstance(typed_value, TypedValue):
            raise TypeError(f"typed_value must be a TypedValue, got {type(typed_value).__name__}")
        self.typename = typename
        self.typed_value = typed_value

    def as_kafka_record(self) -> KafkaProducerRecord:
        """The Kafka record of a :func:`kafka_egress_message` (``TypeError`` otherwise)."""
        if self.typed_value.typename != KAFKA_PRODUCER_RECORD_TYPENAME:
            raise TypeError(f"not a Kafka record: the value has type {self.typed_value.typename!r}")
        return KafkaProducerRecord.FromString(self.typed_value.value)

    def as_kinesis_record(self) -> KinesisEgressRecord:
        """The Kinesis record of a :func:`kinesis_egress_message` (``TypeError`` otherwise)."""
        if self.typed_value.typename != KINESIS_EGRESS_RECORD_TYPENAME:
            raise TypeError(f"not a Kinesis record: the value has type {self.typed_value.typename!r}")
        return KinesisEgressRecord.FromString(self.typed_value.value)

    def __repr__(self) -> str:
        return f"EgressMessage(to={self.typename}, type={self.typed_value.typename!r})"




def message_builder(
    target_typename: str,
    target_id: str,
    *,
    value: Any = None,
    value_type: "Optional[Type[Any]]" = None,
    str_value: Optional[str] = None,
    int_value: Optional[int] = None,
    long_value: Optional[int] = None,
    float_value: Optional[float] = None,
    double_value: Optional[float] = None,
    bool_value: Optional[bool] = None,
) -> Message:
    """A message to ``target_typename``/``target_id`` holding exactly one value: either
    ``value=...`` with its ``value_type=...``, or one of ``str_value``, ``int_value``,
    ``long_value``, ``float_value``, ``double_value``, ``bool_value``."""
    shortcuts: "list[tuple[Type[Any], Any]]" = [
        (StringType, str_value),
        (IntType, int_value),
        (LongType, long_value),
        (FloatType, float_value),
        (DoubleType, double_value),
        (BoolType, bool_value),
    ]
    given: "list[tuple[Optional[Type[Any]], Any]]" = [(t, v) for t, v in shortcuts if v is not None]
    if value is not None:
        given.append((value_type, value))
    if len(given) != 1:
        raise ValueError(
            "message_builder needs exactly one value: value=... with value_type=..., or one of "
            "str_value, int_value, long_value, float_value, double_value, bool_value"
            + (f" (got {len(given)})" if given else " (got none)")
        )
    chosen_type, chosen_value = given[0]
    if chosen_type is None:
        raise ValueError("message_builder(value=...) needs value_type=... (e.g. StringType or make_json_type(...))")
    return Message(target_typename, target_id, typed_value(chosen_type, chosen_value))


def egress_message_builder(target_typename: str, value: Any, value_type: "Type[Any]") -> EgressMessage:
    """A record holding ``value`` (of ``value_type``) for the egress ``target_typename``.
    Kafka and Kinesis egresses take :func:`kafka_egress_message` / :func:`kinesis_egress_message`."""
    if value is None:
        raise ValueError(f"egress_message_builder({target_typename!r}): the value is missing")
    return EgressMessage(target_typename, typed_value(value_type, value))


def _record_bytes(what: str, value: Any, value_type: "Optional[Type[Any]]", numbers: bool) -> bytes:
    if value is None:
        raise ValueError(f"{what}: the value is missing")
    if value_type is not None:
        return value_type.serializer().serialize(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        # Kafka's IntegerSerializer: 4 bytes big-endian
        if not -(2**31) <= value < 2**31:
            raise ValueError(f"{what}: {value} does not fit Kafka's 32-bit integer encoding; pass value_type=LongType")
        return struct.pack(">i", value)
    if numbers and isinstance(value, float):
        # Kafka's DoubleSerializer: 8 bytes big-endian
        return struct.pack(">d", value)
    accepted = "str, bytes, int, float" if numbers else "str, bytes"
    raise TypeError(f"{what}: cannot turn a {type(value).__name__} into bytes; pass {accepted} or a value_type=...")


def kafka_egress_message(
    typename: str,
    topic: str,
    value: Any,
    value_type: "Optional[Type[Any]]" = None,
    key: Optional[str] = None,
) -> EgressMessage:
    """A record for the Kafka egress ``typename`` to ``topic``. ``value`` is serialized with
    ``value_type`` if given, else str as UTF-8, bytes as is, int / float as Kafka's integer /
    double serializers do. ``key`` is an optional UTF-8 key."""
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"kafka_egress_message({typename!r}): topic must be a non-empty str")
    if key is not None and not isinstance(key, str):
        raise TypeError(f"kafka_egress_message({typename!r}): key must be a str or None")
    record = KafkaProducerRecord(
        topic=topic,
        value_bytes=_record_bytes(f"kafka_egress_message({typename!r})", value, value_type, True),
        key=key or "",
    )
    return EgressMessage(
        typename,
        TypedValue(typename=KAFKA_PRODUCER_RECORD_TYPENAME, has_value=True, value=record.SerializeToString()),
    )


def kinesis_egress_message(
    typename: str,
    stream: str,
    value: Any,
    partition_key: str,
    value_type: "Optional[Type[Any]]" = None,
    explicit_hash_key: Optional[str] = None,
) -> EgressMessage:
    """A record for the Kinesis egress ``typename`` to ``stream`` with ``partition_key``.
    ``value`` is serialized with ``value_type`` if given, else str as UTF-8, bytes as is."""
    what = f"kinesis_egress_message({typename!r})"
    if not isinstance(stream, str) or not stream:
        raise ValueError(f"{what}: stream must be a non-empty str")
    if not isinstance(partition_key, str) or not partition_key:
        raise ValueError(f"{what}: partition_key must be a non-empty str")
    if explicit_hash_key is not None and not isinstance(explicit_hash_key, str):
        raise TypeError(f"{what}: explicit_hash_key must be a str or None")
    record = KinesisEgressRecord(
        stream=stream,
        partition_key=partition_key,
        value_bytes=_record_bytes(what, value, value_type, False),
        explicit_hash_key=explicit_hash_key or "",
    )
    return EgressMessage(
        typename,
        TypedValue(typename=KINESIS_EGRESS_RECORD_TYPENAME, has_value=True, value=record.SerializeToString()),
    )


__all__ = [
    "Address",
    "Message",
    "EgressMessage",
    "message_builder",
    "egress_message_builder",
    "kafka_egress_message",
    "kinesis_egress_message",
    "typed_value",
    "KAFKA_PRODUCER_RECORD_TYPENAME",
    "KINESIS_EGRESS_RECORD_TYPENAME",
]
