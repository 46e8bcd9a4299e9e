"""Value types: how a Python value becomes the bytes of a ``TypedValue`` and back.

A :class:`Type` has a *typename* (``namespace/name``) and a :class:`TypeSerializer`. The
built-in StateFun types (:data:`BoolType`, :data:`IntType`, :data:`LongType`,
:data:`FloatType`, :data:`DoubleType`, :data:`StringType`) encode exactly like Apache StateFun's
wrapper messages (a zero value is empty bytes). :func:`make_json_type` (dicts, lists,
dataclasses), :func:`make_protobuf_type` (generated protobuf classes) and :func:`simple_type`
(any two functions) define your own types.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import math
from typing import Any, Callable, Generic, Optional, Type as PyType, TypeVar

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtobufMessage

from eddy._proto import types_pb2

T = TypeVar("T")
P = TypeVar("P", bound=ProtobufMessage)


def parse_typename(typename: str, what: str = "typename") -> "tuple[str, str]":
    """Splits ``namespace/name`` at its last ``/``; raises ``ValueError`` saying what is wrong."""
    if not isinstance(typename, str):
        raise TypeError(f"{what} must be a str of the form 'namespace/name', got {type(typename).__name__}")
    index = typename.rfind("/")
    if index < 0:
        raise ValueError(f"{what} {typename!r} must have the form 'namespace/name' (e.g. 'com.example/greeter')")
    namespace, name = typename[:index], typename[index + 1 :]
    if not namespace:
        raise ValueError(f"{what} {typename!r} has an empty namespace; use 'namespace/name'")
    if not name:
        raise ValueError(f"{what} {typename!r} has an empty name; use 'namespace/name'")
    return namespace, name


class TypeSerializer(abc.ABC, Generic[T]):
    """Turns values of one type into bytes and back."""

    __slots__ = ()

    @abc.abstractmethod
    def serialize(self, value: T) -> bytes:
        """The bytes of ``value``."""

    @abc.abstractmethod
    def deserialize(self, data: bytes) -> T:
        """The value of ``data``."""


class Type(abc.ABC, Generic[T]):
    """A value type: a typename (``namespace/name``) and its serializer."""

    __slots__ = ("typename",)

    def __init__(self, typename: str) -> None:
        parse_typename(typename, "type name")
        self.typename = typename

    @abc.abstractmethod
    def serializer(self) -> TypeSerializer[T]:
        """The serializer of this type."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.typename!r})"


class _FunctionSerializer(TypeSerializer[T]):
    __slots__ = ("_serialize", "_deserialize")

    def __init__(self, serialize: Callable[[T], bytes], deserialize: Callable[[bytes], T]) -> None:
        self._serialize = serialize
        self._deserialize = deserialize

    def serialize(self, value: T) -> bytes:
        return self._serialize(value)

    def deserialize(self, data: bytes) -> T:
        return self._deserialize(data)


class SimpleType(Type[T]):
    """A type made of two functions (see :func:`simple_type`)."""

    __slots__ = ("_serializer",)

    def __init__(self, typename: str, serializer: TypeSerializer[T]) -> None:
        super().__init__(typename)
        self._serializer = serializer

    def serializer(self) -> TypeSerializer[T]:
        return self._serializer


def simple_type(
    typename: str,
    serialize_fn: Callable[[T], bytes],
    deserialize_fn: Callable[[bytes], T],
) -> Type[T]:
    """A user-defined type ``typename`` whose values ``serialize_fn`` turns into bytes and
    ``deserialize_fn`` reads back, e.g. ``simple_type("com.example/csv", encode, decode)``."""
    if not callable(serialize_fn):
        raise TypeError(f"simple_type({typename!r}): serialize_fn must be a function value -> bytes")
    if not callable(deserialize_fn):
        raise TypeError(f"simple_type({typename!r}): deserialize_fn must be a function bytes -> value")
    return SimpleType(typename, _FunctionSerializer(serialize_fn, deserialize_fn))


# ---------------------------------------------------------------------------------------------
# Built-in StateFun types
# ---------------------------------------------------------------------------------------------

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FLOAT32_MAX = 3.4028234663852886e38


class _WrapperSerializer(TypeSerializer[T]):
    """Encodes through the generated wrapper message (so the bytes are protobuf's own)."""

    __slots__ = ("_typename", "_wrapper", "_check")

    def __init__(self, typename: str, wrapper: Any, check: Callable[[Any], Any]) -> None:
        self._typename = typename
        self._wrapper = wrapper
        self._check = check

    def serialize(self, value: T) -> bytes:
        checked = self._check(value)
        data: bytes = self._wrapper(value=checked).SerializeToString()
        return data

    def deserialize(self, data: bytes) -> T:
        try:
            value: T = self._wrapper.FromString(data).value
        except DecodeError as error:
            raise ValueError(f"the bytes of a {self._typename} value are not valid: {error}") from None
        return value


def _check_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"BoolType holds a bool, got {type(value).__name__} {value!r}")
    return value


def _integer_check(name: str, low: int, high: int, hint: str) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} holds an int, got {type(value).__name__} {value!r}")
        if not low <= value <= high:
            raise ValueError(f"{name} holds integers from {low} to {high}, got {value}{hint}")
        return value

    return check


def _float_check(name: str, limit: Optional[float], hint: str) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} holds a float, got {type(value).__name__} {value!r}")
        number = float(value)
        if limit is not None and math.isfinite(number) and abs(number) > limit:
            raise ValueError(f"{value!r} is out of the range of {name} (+-{limit}){hint}")
        return number

    return check


def _check_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"StringType holds a str, got {type(value).__name__} {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"StringType holds valid unicode text: {error}") from None
    return value


class BuiltInType(Type[T]):
    """One of StateFun's built-in types ``io.statefun.types/*``."""

    __slots__ = ("_serializer",)

    def __init__(self, typename: str, serializer: TypeSerializer[T]) -> None:
        super().__init__(typename)
        self._serializer = serializer

    def serializer(self) -> TypeSerializer[T]:
        return self._serializer

    def __repr__(self) -> str:
        return f"BuiltInType({self.typename!r})"


def _builtin(name: str, wrapper: Any, check: Callable[[Any], Any]) -> Any:
    typename = f"io.statefun.types/{name}"
    return BuiltInType(typename, _WrapperSerializer(typename, wrapper, check))


#: ``io.statefun.types/bool``: a bool.
BoolType: Type[bool] = _builtin("bool", types_pb2.BooleanWrapper, _check_bool)
#: ``io.statefun.types/int``: a 32-bit signed integer (sfixed32).
IntType: Type[int] = _builtin(
    "int", types_pb2.IntWrapper, _integer_check("IntType", _INT32_MIN, _INT32_MAX, "; use LongType for larger values")
)
#: ``io.statefun.types/long``: a 64-bit signed integer (sfixed64).
LongType: Type[int] = _builtin(
    "long", types_pb2.LongWrapper, _integer_check("LongType", _INT64_MIN, _INT64_MAX, "")
)
#: ``io.statefun.types/float``: an IEEE 754 single (values are rounded to single precision).
FloatType: Type[float] = _builtin(
    "float", types_pb2.FloatWrapper, _float_check("FloatType", _FLOAT32_MAX, "; use DoubleType")
)
#: ``io.statefun.types/double``: an IEEE 754 double.
DoubleType: Type[float] = _builtin("double", types_pb2.DoubleWrapper, _float_check("DoubleType", None, ""))
#: ``io.statefun.types/string``: UTF-8 text.
StringType: Type[str] = _builtin("string", types_pb2.StringWrapper, _check_str)

BUILT_IN_TYPES: "tuple[Type[Any], ...]" = (BoolType, IntType, LongType, FloatType, DoubleType, StringType)


# ---------------------------------------------------------------------------------------------
# JSON and protobuf types
# ---------------------------------------------------------------------------------------------


def make_json_type(typename: str, cls: Optional[PyType[T]] = None) -> Type[Any]:
    """A type ``typename`` whose values travel as compact UTF-8 JSON.

    Without ``cls`` the values are whatever :mod:`json` handles (dicts, lists, str, numbers,
    bools). With a dataclass ``cls``, values are instances of it: written with
    :func:`dataclasses.asdict` and read back with ``cls(**fields)``.
    """
    parse_typename(typename, "type name")
    if cls is None:
        return simple_type(typename, _json_dumps, _json_loads)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"make_json_type({typename!r}, cls): cls must be a dataclass, got {cls!r}")
    dataclass_cls: Any = cls

    def serialize(value: Any) -> bytes:
        if not isinstance(value, dataclass_cls):
            raise TypeError(f"{typename} holds {dataclass_cls.__name__} values, got {type(value).__name__}")
        return _json_dumps(dataclasses.asdict(value))

    def deserialize(data: bytes) -> Any:
        fields = _json_loads(data)
        if not isinstance(fields, dict):
            raise ValueError(f"{typename}: expected a JSON object for {dataclass_cls.__name__}, got {data[:80]!r}")
        try:
            return dataclass_cls(**fields)
        except TypeError as error:
            raise ValueError(f"{typename}: the JSON object does not fit {dataclass_cls.__name__}: {error}") from None

    return simple_type(typename, serialize, deserialize)


def _json_dumps(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise TypeError(f"the value is not JSON serializable: {error}") from None


def _json_loads(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"the bytes are not UTF-8 JSON: {error}") from None


def make_protobuf_type(cls: PyType[P], namespace: str = "type.googleapis.com") -> Type[P]:
    """A type for the generated protobuf message class ``cls``, named
    ``type.googleapis.com/<full message name>`` (StateFun's convention)."""
    if not (isinstance(cls, type) and issubclass(cls, ProtobufMessage)):
        raise TypeError(f"make_protobuf_type: expected a generated protobuf message class, got {cls!r}")
    full_name = cls.DESCRIPTOR.full_name
    typename = f"{namespace}/{full_name}"

    def serialize(value: P) -> bytes:
        if not isinstance(value, cls):
            raise TypeError(f"{typename} holds {full_name} messages, got {type(value).__name__}")
        return value.SerializeToString()

    def deserialize(data: bytes) -> P:
        try:
            return cls.FromString(data)
        except DecodeError as error:
            raise ValueError(f"the bytes of a {typename} value are not valid: {error}") from None

    return simple_type(typename, serialize, deserialize)


__all__ = [
    "Type",
    "TypeSerializer",
    "SimpleType",
    "BuiltInType",
    "simple_type",
    "make_json_type",
    "make_protobuf_type",
    "parse_typename",
    "BoolType",
    "IntType",
    "LongType",
    "FloatType",
    "DoubleType",
    "StringType",
    "BUILT_IN_TYPES",
]

