"""Address-scoped storage: the state values of one address during one batch.

Reading a value decodes it (``None`` when absent). Assigning marks it dirty (a MODIFY
mutation), ``del`` marks it deleted (a DELETE mutation); values that are never assigned or
deleted produce no mutation at all.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional

from eddy._proto.request_reply_pb2 import FromFunction, TypedValue
from eddy.functions import ValueSpec

_MODIFY = FromFunction.PersistedValueMutation.MutationType.MODIFY
_DELETE = FromFunction.PersistedValueMutation.MutationType.DELETE


class Cell:
    """One state value: its spec, current ``TypedValue`` (None = absent) and dirty flag."""

    __slots__ = ("spec", "typed_value", "dirty")

    def __init__(self, spec: ValueSpec, typed_value: Optional[TypedValue]) -> None:
        self.spec = spec
        self.typed_value = typed_value
        self.dirty = False

    def get(self) -> Any:
        value = self.typed_value
        if value is None or not value.has_value:
            return None
        if value.typename != self.spec.type.typename:
            raise TypeError(
                f"state value {self.spec.name!r} arrived with type {value.typename!r} but is declared as "
                f"{self.spec.type.typename!r}: keep the ValueSpec type, or migrate the stored value"
            )
        return self.spec.type.serializer().deserialize(value.value)

    def set(self, value: Any) -> None:
        if value is None:
            raise ValueError(f"cannot store None in {self.spec.name!r}: use `del context.storage.{self.spec.name}`")
        try:
            data = self.spec.type.serializer().serialize(value)
        except (TypeError, ValueError) as error:
            raise type(error)(f"state value {self.spec.name!r} ({self.spec.type.typename}): {error}") from None
        self.typed_value = TypedValue(typename=self.spec.type.typename, has_value=True, value=data)
        self.dirty = True

    def delete(self) -> None:
        self.typed_value = None
        self.dirty = True


class Storage:
    """The state of one address: ``storage.name`` reads (None when absent), ``storage.name =
    value`` writes, ``del storage.name`` deletes. ``storage["name"]`` works the same way."""

    __slots__ = ("_eddy_cells", "_eddy_typename")

    def __init__(self, cells: Dict[str, Cell], typename: str) -> None:
        object.__setattr__(self, "_eddy_cells", cells)
        object.__setattr__(self, "_eddy_typename", typename)

    def _eddy_cell(self, name: str) -> Cell:
        cells: Dict[str, Cell] = object.__getattribute__(self, "_eddy_cells")
        cell = cells.get(name)
        if cell is None:
            typename = object.__getattribute__(self, "_eddy_typename")
            declared = ", ".join(sorted(cells)) or "none"
            raise AttributeError(
                f"{name!r} is not a state value of function {typename!r} (declared: {declared}); "
                f"declare it with ValueSpec({name!r}, <type>) where the function is bound"
            )
        return cell

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._eddy_cell(name).get()

    def __setattr__(self, name: str, value: Any) -> None:
        self._eddy_cell(name).set(value)

    def __delattr__(self, name: str) -> None:
        self._eddy_cell(name).delete()

    def __getitem__(self, name: str) -> Any:
        return self._eddy_cell(name).get()

    def __setitem__(self, name: str, value: Any) -> None:
        self._eddy_cell(name).set(value)

    def __delitem__(self, name: str) -> None:
        self._eddy_cell(name).delete()

    def __contains__(self, name: object) -> bool:
        cells: Dict[str, Cell] = object.__getattribute__(self, "_eddy_cells")
        cell = cells.get(name) if isinstance(name, str) else None
        return cell is not None and cell.typed_value is not None and cell.typed_value.has_value

    def __iter__(self) -> Iterator[str]:
        cells: Dict[str, Cell] = object.__getattribute__(self, "_eddy_cells")
        return iter(list(cells))

    def __dir__(self) -> List[str]:
        return list(object.__getattribute__(self, "_eddy_cells"))

    def __repr__(self) -> str:
        typename = object.__getattribute__(self, "_eddy_typename")
        return f"Storage({typename!r}, {list(self)})"


def collect_mutations(cells: Dict[str, Cell], result: FromFunction.InvocationResponse) -> None:
    """Appends one mutation per dirty cell to ``result``, in the order of the specs."""
    for name, cell in cells.items():
        if not cell.dirty:
            continue
        mutation = result.state_mutations.add()
        mutation.state_name = name
        if cell.typed_value is None:
            mutation.mutation_type = _DELETE
        else:
            mutation.mutation_type = _MODIFY
            mutation.state_value.CopyFrom(cell.typed_value)


__all__ = ["Storage", "Cell", "collect_mutations"]
