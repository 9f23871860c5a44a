"""Value bounds a plugin declares on its parameters, checked when the suite is read.

A plugin annotates a keyword parameter with ``typing.Annotated`` and a :class:`Range`::

    def mnist(*, test_fraction: Fraction = 0.2, max_train: Count | None = None): ...

and ``rbg validate`` refuses ``test_fraction = 1.5`` or ``max_train = 0`` with one line naming
the field, before any data is read, exactly as ``rbg run`` would. A plain ``int`` or ``float``
annotation asks for a whole or a finite number (``steps = 2.5`` and ``lr = inf`` are refused).
Other parameters are left to the plugin (attacks and defenses are built once at validation to
check theirs; datasets are not, since building one reads the data).
"""

from __future__ import annotations

import math
import numbers
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from .errors import UserError


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


#: a fraction strictly between 0 and 1 (a test share)
Fraction = Annotated[float, Range(0, 1, open_low=True, open_high=True)]
#: a count of at least one (a sample limit, a number of steps)
Count = Annotated[int, Range(1, whole=True)]
#: a seed: a whole number >= 0
Seed = Annotated[int, Range(0, 2**63 - 1, whole=True)]


def declared_ranges(factory: Callable[..., Any]) -> dict[str, tuple[Range, bool]]:
    """Parameter name -> (its Range, whether None is allowed), for annotated parameters."""
    target = factory.__init__ if isinstance(factory, type) else factory
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # unresolvable annotations (a third-party plugin's): nothing declared
        return {}
    out: dict[str, tuple[Range, bool]] = {}
    for name, hint in hints.items():
        found = _range_of(hint)
        if found is not None:
            out[name] = found
    return out


#: what a plain ``int`` or ``float`` annotation asks of a value: its type, finite
PLAIN = {int: Range(whole=True), float: Range()}


def _range_of(hint: Any) -> tuple[Range, bool] | None:
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = typing.get_args(hint)
        optional = type(None) in args
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            return None
        hint = rest[0]
    if hint in PLAIN:
        return PLAIN[hint], optional
    if typing.get_origin(hint) is not Annotated:
        return None
    for meta in hint.__metadata__:
        if isinstance(meta, Range):
            return meta, optional
    return None


def check_ranges(factory: Callable[..., Any], params: Mapping[str, Any], where: str) -> None:
    """UserError naming ``where.key`` for the first value outside its declared Range."""
    for key, (bounds, optional) in declared_ranges(factory).items():
        if key not in params:
            continue
        value = params[key]
        if value is None and optional:
            continue
        if not bounds.admits(value):
            raise UserError(f"must be {bounds.describe()}, got {value!r}", where=f"{where}.{key}")
