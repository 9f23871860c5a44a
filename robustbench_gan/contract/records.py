"""Typed cell specs and results, stored as JSON with fixed keys (``Record``).

A spec's JSON is hashed into its cell id, so a record's ``to_json`` must keep producing the
same keys and values for the same settings: optional keys are left out while they hold their
default (``OPTIONAL``), and a field may be stored under another key (``JSON_KEYS``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="Record")
S = TypeVar("S", bound="ModelCellSpec")


@dataclasses.dataclass(frozen=True)
class Record:
    """Base of every cell spec and result: a frozen dataclass with a JSON form."""

    OPTIONAL: ClassVar[tuple[str, ...]] = ()  # fields left out of the JSON at their default
    JSON_KEYS: ClassVar[Mapping[str, str]] = {}  # field name -> key in the JSON

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in self.OPTIONAL and value == default_of(f):
                continue
            out[self.JSON_KEYS.get(f.name, f.name)] = jsonable(value)
        return out

    @classmethod
    def from_json(cls: type[R], data: Mapping[str, Any]) -> R:
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):
            key = cls.JSON_KEYS.get(f.name, f.name)
            if key in data:
                kwargs[f.name] = convert(hints[f.name], data[key])
        return cls(**kwargs)


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def jsonable(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def convert(hint: Any, value: Any) -> Any:
    """``value`` read from JSON, as the field's type: nested records and lists of them."""
    if value is None:
        return None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return convert(options[0], value) if len(options) == 1 else value
    if isinstance(hint, type) and issubclass(hint, Record) and isinstance(value, Mapping):
        return hint.from_json(value)
    if typing.get_origin(hint) in (list, tuple) and isinstance(value, list):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        if args and isinstance(args[0], type) and issubclass(args[0], Record):
            items = [args[0].from_json(v) for v in value]
            return tuple(items) if typing.get_origin(hint) is tuple else items
        return tuple(value) if typing.get_origin(hint) is tuple else value
    return value


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelCellSpec(Record):
    """Base of the spec of a cell that evaluates one model: the model as planned
    (``ModelRef.to_json()``) and the suite's seed. ``of`` fills both from the plan's model
    and the suite, so no kind copies them by hand."""

    model: dict[str, Any]
    seed: int

    @classmethod
    def of(cls: type[S], model: Any, suite: Any, **fields: Any) -> S:
        """A spec for ``model`` (a plan's ModelRef) in ``suite``, plus this kind's fields."""
        return cls(model=model.to_json(), seed=suite.seed, **cls.suite_fields(suite), **fields)

    @classmethod
    def suite_fields(cls, suite: Any) -> dict[str, Any]:
        return {}


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvalCellSpec(ModelCellSpec):
    """A model cell on the suite's test images: the first ``n_eval`` (None: all of them)."""

    n_eval: int | None

    @classmethod
    def suite_fields(cls, suite: Any) -> dict[str, Any]:
        return {"n_eval": suite.n_eval}
