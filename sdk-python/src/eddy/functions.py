"""The registry of functions: typenames bound to handlers and their value specs."""

from __future__ import annotations

import inspect
from datetime import timedelta
from keyword import iskeyword
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Sequence, TypeVar, Union

from eddy._proto.request_reply_pb2 import FromFunction
from eddy.types import Type, parse_typename

#: A handler: ``def f(context, message)`` or ``async def f(context, message)``.
Handler = Callable[[Any, Any], Union[None, Awaitable[None]]]
F = TypeVar("F", bound=Callable[..., Any])

_ExpireMode = FromFunction.ExpirationSpec.ExpireMode


class ValueSpec:
    """The declaration of one state value of a function: its ``name`` (a lower-case Python
    identifier, read as ``context.storage.<name>``), its ``type`` and optionally when it
    expires: ``expire_after_call`` (no call for that long) or ``expire_after_write`` (not
    written for that long)."""

    __slots__ = ("name", "type", "expire_after_call", "expire_after_write")

    def __init__(
        self,
        name: str,
        type: "Type[Any]",
        expire_after_call: Optional[timedelta] = None,
        expire_after_write: Optional[timedelta] = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("ValueSpec: name must be a non-empty str")
        if not name.isidentifier() or iskeyword(name) or not name.islower() or name.startswith("_eddy"):
            raise ValueError(
                f"ValueSpec: invalid state name {name!r}: use a lower-case Python identifier that is not "
                f"a keyword (letters, digits, underscores; not starting with a digit or '_eddy'), "
                f"since it is read as context.storage.{name}"
            )
        if not isinstance(type, Type):
            raise TypeError(
                f"ValueSpec({name!r}): type must be an eddy Type (e.g. IntType, make_json_type(...)), got {type!r}"
            )
        if expire_after_call is not None and expire_after_write is not None:
            raise ValueError(f"ValueSpec({name!r}): set expire_after_call or expire_after_write, not both")
        for what, duration in (("expire_after_call", expire_after_call), ("expire_after_write", expire_after_write)):
            if duration is not None and (not isinstance(duration, timedelta) or duration <= timedelta(0)):
                raise ValueError(f"ValueSpec({name!r}): {what} must be a positive timedelta, got {duration!r}")
            if duration is not None and duration < timedelta(milliseconds=1):
                raise ValueError(f"ValueSpec({name!r}): {what} must be at least 1 millisecond, got {duration!r}")
        self.name = name
        self.type = type
        self.expire_after_call = expire_after_call
        self.expire_after_write = expire_after_write

    def to_protocol(self) -> FromFunction.PersistedValueSpec:
        """The ``PersistedValueSpec`` of an IncompleteInvocationContext."""
        spec = FromFunction.PersistedValueSpec(state_name=self.name, type_typename=self.type.typename)
        expiration = spec.expiration_spec
        expiration.SetInParent()  # present even when NONE, as Apache's SDK sends it
        if self.expire_after_call is not None:
            expiration.mode = _ExpireMode.AFTER_INVOKE
            expiration.expire_after_millis = self.expire_after_call // timedelta(milliseconds=1)
        elif self.expire_after_write is not None:
            expiration.mode = _ExpireMode.AFTER_WRITE
            expiration.expire_after_millis = self.expire_after_write // timedelta(milliseconds=1)
        return spec

    def __repr__(self) -> str:
        extra = ""
        if self.expire_after_call is not None:
            extra = f", expire_after_call={self.expire_after_call!r}"
        elif self.expire_after_write is not None:
            extra = f", expire_after_write={self.expire_after_write!r}"
        return f"ValueSpec({self.name!r}, {self.type!r}{extra})"


class StatefulFunction:
    """A registered function: its typename, handler and value specs."""

    __slots__ = ("typename", "fun", "specs", "is_async", "specs_by_name")

    def __init__(self, typename: str, fun: Handler, specs: Sequence[ValueSpec]) -> None:
        self.typename = typename
        self.fun = fun
        self.specs: List[ValueSpec] = list(specs)
        self.specs_by_name: Dict[str, ValueSpec] = {spec.name: spec for spec in self.specs}
        self.is_async = inspect.iscoroutinefunction(fun) or inspect.iscoroutinefunction(
            getattr(fun, "__call__", None)
        )


class StatefulFunctions:
    """The functions of an application, by typename (``namespace/name``).

    >>> functions = StatefulFunctions()
    >>> @functions.bind("com.example/greeter", specs=[ValueSpec("seen", IntType)])
    ... def greeter(context, message): ...
    """

    __slots__ = ("_functions",)

    def __init__(self) -> None:
        self._functions: Dict[str, StatefulFunction] = {}

    def register(self, typename: str, fun: Handler, specs: Optional[Iterable[ValueSpec]] = None) -> None:
        """Registers ``fun`` (``def`` or ``async def`` taking ``(context, message)``) as the
        function ``typename`` with the state values ``specs``."""
        parse_typename(typename, "function typename")
        if typename in self._functions:
            raise ValueError(f"function {typename!r} is registered twice; each typename takes one function")
        if not callable(fun):
            raise TypeError(f"function {typename!r}: expected a callable (context, message), got {fun!r}")
        _check_arity(typename, fun)
        spec_list = list(specs or [])
        seen = set()
        for spec in spec_list:
            if not isinstance(spec, ValueSpec):
                raise TypeError(f"function {typename!r}: specs must be ValueSpec instances, got {spec!r}")
            if spec.name in seen:
                raise ValueError(f"function {typename!r}: state value {spec.name!r} is declared twice")
            seen.add(spec.name)
        self._functions[typename] = StatefulFunction(typename, fun, spec_list)

    def bind(self, typename: str, specs: Optional[Iterable[ValueSpec]] = None) -> Callable[[F], F]:
        """Decorator form of :meth:`register`."""

        def wrapper(fun: F) -> F:
            self.register(typename, fun, specs)
            return fun

        return wrapper

    def for_typename(self, typename: str) -> Optional[StatefulFunction]:
        """The function registered as ``typename``, or None."""
        return self._functions.get(typename)

    def typenames(self) -> List[str]:
        """Every registered typename, sorted."""
        return sorted(self._functions)

    def __contains__(self, typename: object) -> bool:
        return typename in self._functions

    def __len__(self) -> int:
        return len(self._functions)


def _check_arity(typename: str, fun: Callable[..., Any]) -> None:
    try:
        signature = inspect.signature(fun)
    except (TypeError, ValueError):  # builtins without a signature: trust the caller
        return
    try:
        signature.bind(None, None)
    except TypeError:
        raise TypeError(
            f"function {typename!r}: the handler must take two arguments (context, message); "
            f"its signature is {fun.__name__ if hasattr(fun, '__name__') else fun}{signature}"
        ) from None


__all__ = ["ValueSpec", "StatefulFunction", "StatefulFunctions", "Handler"]
