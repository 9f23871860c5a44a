"""Value bounds a plugin declares on its parameters: one declaration, checked everywhere.

A plugin annotates a keyword parameter with ``typing.Annotated`` and a bound::

    def mnist(*, test_fraction: Fraction = 0.2, max_train: Count | None = None): ...

    class PGD(Attack):
        def __init__(self, *, norm: NormName = "linf", steps: Count = 20): ...

The annotation is the only place the bound is written, and it is enforced on both ways in:

- the suite: ``rbg validate`` refuses ``test_fraction = 1.5`` or ``steps = 0`` with one line
  naming the field (:func:`check_ranges`, a :class:`~.errors.UserError`), before any data is
  read, exactly as ``rbg run`` would;
- Python: a function or constructor wrapped by :func:`checked` (every attack's, through the
  attack base class) refuses ``PGD(steps=0)`` with a one-line ValueError naming the parameter
  and the bound, defaults included, so a default can never contradict its own bound.

The bounds: :class:`Range` (numbers), :class:`OneOf` (a choice among fixed values), and what
a plain annotation asks: ``int`` a whole number, ``float`` a finite one (``steps = 2.5`` and
``lr = inf`` are refused), ``bool`` true or false (``1`` and ``"yes"`` are refused, so a flag
is never set by accident of truthiness). Other parameters are left to the plugin (attacks and
defenses are built once at validation to check theirs; datasets are not, since building one
reads the data), as are checks that tie two parameters together or depend on the data.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar

from .errors import UserError

F = TypeVar("F", bound=Callable[..., Any])


class Bound(Protocol):
    """What every bound offers: whether it admits a value, and how to say what it asks."""

    def describe(self) -> str: ...

    def admits(self, value: Any) -> bool: ...


@dataclass(frozen=True)
class Range:
    """Bounds for a number: ``low <= value <= high`` (strict where ``open_low``/``open_high``).
    ``whole``: the value must be an integer (TOML ``2``, not ``2.5``)."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    whole: bool = False

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a finite number"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {self.high:g}")
        return f"{kind} {' and '.join(parts)}".strip()

    def admits(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.whole and not isinstance(value, numbers.Integral):
            return False
        v = float(value)
        if not math.isfinite(v):
            return False
        if self.low is not None and (v <= self.low if self.open_low else v < self.low):
            return False
        return self.high is None or (v < self.high if self.open_high else v <= self.high)


@dataclass(frozen=True)
class OneOf:
    """A choice among fixed values (a norm, a schedule's name): the value must equal one of
    them and be of its type, so ``1`` never passes for ``True`` nor ``"1"`` for ``1``."""

    values: tuple[Any, ...]

    def __init__(self, values: Iterable[Any]) -> None:
        object.__setattr__(self, "values", tuple(values))

    def describe(self) -> str:
        names = [repr(v) for v in self.values]
        listed = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else "".join(names)
        return f"one of {listed}"

    def admits(self, value: Any) -> bool:
        return any(isinstance(value, type(v)) and value == v for v in self.values)


@dataclass(frozen=True)
class Flag:
    """A flag: ``True`` or ``False`` only, what a plain ``bool`` annotation asks."""

    def describe(self) -> str:
        return "true or false"

    def admits(self, value: Any) -> bool:
        return isinstance(value, bool)


#: a fraction strictly between 0 and 1 (a test share)
Fraction = Annotated[float, Range(0, 1, open_low=True, open_high=True)]
#: a count of at least one (a sample limit, a number of steps)
Count = Annotated[int, Range(1, whole=True)]
#: a seed: a whole number >= 0
Seed = Annotated[int, Range(0, 2**63 - 1, whole=True)]
#: a number above 0 (a learning rate, a step size)
Positive = Annotated[float, Range(0, open_low=True)]
#: a number of at least 0 (a loss weight, a margin)
NonNegative = Annotated[float, Range(0)]

#: what a plain annotation asks of a value: its type; a number finite
PLAIN: dict[type, Bound] = {int: Range(whole=True), float: Range(), bool: Flag()}


def declared_bounds(factory: Callable[..., Any]) -> dict[str, tuple[Bound, bool]]:
    """Parameter name -> (its bound, whether None is allowed), for annotated parameters.

    A class declares through its ``__init__``; a ``functools.partial`` through what it wraps,
    less the keywords it fixes. Annotations that cannot be resolved (a third-party plugin's)
    declare nothing."""
    fixed: set[str] = set()
    while isinstance(factory, functools.partial):
        fixed |= set(factory.keywords)
        factory = factory.func
    target = factory.__init__ if isinstance(factory, type) else factory
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:
        return {}
    out: dict[str, tuple[Bound, bool]] = {}
    for name, hint in hints.items():
        found = _bound_of(hint)
        if found is not None and name != "return" and name not in fixed:
            out[name] = found
    return out


def declared_ranges(factory: Callable[..., Any]) -> dict[str, tuple[Range, bool]]:
    """Parameter name -> (its Range, whether None is allowed): the numeric bounds only."""
    found = declared_bounds(factory).items()
    return {name: (b, optional) for name, (b, optional) in found if isinstance(b, Range)}


def _bound_of(hint: Any) -> tuple[Bound, bool] | None:
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = typing.get_args(hint)
        optional = type(None) in args
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            return None
        hint = rest[0]
    if isinstance(hint, type) and hint in PLAIN:
        return PLAIN[hint], optional
    if typing.get_origin(hint) is not Annotated:
        return None
    for meta in hint.__metadata__:
        if isinstance(meta, (Range, OneOf, Flag)):
            return meta, optional
    return None


def first_violation(
    bounds: Mapping[str, tuple[Bound, bool]], values: Mapping[str, Any]
) -> tuple[str, str] | None:
    """``(name, "must be ..., got ...")`` for the first value its bound refuses, or None."""
    for key, (bound, optional) in bounds.items():
        if key not in values:
            continue
        value = values[key]
        if value is None and optional:
            continue
        if not bound.admits(value):
            return key, f"must be {bound.describe()}, got {value!r}"
    return None


def check_ranges(factory: Callable[..., Any], params: Mapping[str, Any], where: str) -> None:
    """UserError naming ``where.key`` for the first value its declared bound refuses."""
    found = first_violation(declared_bounds(factory), params)
    if found is not None:
        raise UserError(found[1], where=f"{where}.{found[0]}")


def checked(func: F) -> F:
    """``func`` refusing, with a one-line ValueError naming the parameter, any argument (a
    default included) that the bound declared in its own annotations refuses.

    Only ``func``'s own annotated parameters are checked, never ``*args``/``**kwargs``;
    arguments that do not bind are left to ``func`` to refuse (a TypeError). Annotations are
    resolved on the first call, when the module that defines ``func`` is complete.
    """
    if getattr(func, "__checked__", False):
        return func
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # no signature to bind (a builtin): nothing declared
        return func
    variadic = {
        p.name for p in signature.parameters.values() if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    resolved: list[dict[str, tuple[Bound, bool]]] = []

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            return func(*args, **kwargs)
        if not resolved:
            found = declared_bounds(func)
            resolved.append({k: v for k, v in found.items() if k not in variadic})
        bound.apply_defaults()
        violation = first_violation(resolved[0], bound.arguments)
        if violation is not None:
            raise ValueError(" ".join(violation))
        return func(*args, **kwargs)

    wrapper.__checked__ = True  # type: ignore[attr-defined]
    return typing.cast(F, wrapper)
