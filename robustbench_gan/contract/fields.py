"""Generic validators of suite fields: each error names the field path in ``where``."""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ..bounds import check_ranges
from ..errors import UserError
from ..registry import Registry
from .configs import TrainConfig
from .suite import PluginSpec


def table(raw: Mapping[str, Any], key: str, parent: str = "") -> dict[str, Any]:
    where = f"{parent}.{key}" if parent else key
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise UserError(f"must be a table, got {type(value).__name__}", where=where)
    return dict(value)


def entries(raw: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise UserError(f"must be an array of tables ([[{key}]])", where=key)
    return value


def typed(value: Any, kind: type, where: str, *, required: bool = False) -> Any:
    if value is None:
        if required:
            raise UserError("is required", where=where)
        return None
    is_bool = isinstance(value, bool)
    if kind is float and isinstance(value, int) and not is_bool:
        return float(value)
    if not isinstance(value, kind) or (is_bool and kind is not bool):
        raise UserError(f"must be {kind.__name__}, got {value!r}", where=where)
    return value


def unknown_keys(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in raw:
        if key not in allowed:
            path = f"{where}.{key}" if where else key
            raise UserError(f"unknown key (allowed: {', '.join(sorted(allowed))})", where=path)


MAX_EPS = 1e6


def parse_eps(value: Any, where: str) -> float:
    """A budget: a number, or a string such as ``"8/255"`` or ``"0.3"``; finite and >= 0."""
    eps = value
    if isinstance(value, str):
        text = value.replace(" ", "")
        try:
            if "/" in text:
                top, _, bottom = text.partition("/")
                eps = float(top) / float(bottom)
            else:
                eps = float(text)
        except (ValueError, ZeroDivisionError):
            raise UserError(
                f"must be a number or a fraction like '8/255', got {value!r}", where=where
            ) from None
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps):
        raise UserError(f"must be a finite number, got {value!r}", where=where)
    if eps < 0:
        raise UserError(f"must be >= 0, got {value}", where=where)
    if eps > MAX_EPS:  # an L2 ball of radius sqrt(D) already holds the whole [0, 1] box
        raise UserError(f"must be at most {MAX_EPS:g}, got {value}", where=where)
    return float(eps)


def budgets(value: Any, where: str) -> tuple[float, ...]:
    """A list of distinct budgets (numbers or strings like "8/255"), sorted."""
    if value is None:
        raise UserError("is required: a list of budgets, e.g. [0, 0.1, 0.3]", where=where)
    if not isinstance(value, list) or not value:
        raise UserError(f"must be a non-empty list of numbers, got {value!r}", where=where)
    out = [parse_eps(eps, f"{where}[{i}]") for i, eps in enumerate(value)]
    if len(set(out)) != len(out):
        raise UserError("budgets must be distinct", where=where)
    return tuple(sorted(out))


def train_config(
    raw: Mapping[str, Any], where: str, base: TrainConfig | None = None
) -> TrainConfig:
    allowed = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown_keys(raw, allowed, where)
    try:
        return dataclasses.replace(base or TrainConfig(), **raw)
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc), where=where) from None


def split_entry(
    entry: Mapping[str, Any], where: str, reserved: tuple[str, ...] = ()
) -> tuple[str, str, dict[str, Any]]:
    name = typed(entry.get("name"), str, f"{where}.name", required=True)
    label = typed(entry.get("label", name), str, f"{where}.label")
    params = {k: v for k, v in entry.items() if k not in ("name", "label", *reserved)}
    return name, label, params


def unique_labels(specs: tuple[PluginSpec, ...], kind: str) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.label in seen:
            raise UserError(
                f'label {spec.label!r} is used twice in [[{kind}]]; add label = "..."',
                where=f"{spec.where}.label",
            )
        seen.add(spec.label)


def no_relabelled_copies(specs: Sequence[PluginSpec], noun: str) -> None:
    """Refuse two entries that differ only in their labels, in one line naming both.

    A label names an entry and enters no cell id (docs/architecture.md), so two such entries
    are one experiment: they would plan one cell under two keys, and one label's rows would
    vanish from the tables after the whole run.
    """
    bare = [dataclasses.replace(spec, label="", where="") for spec in specs]
    for i, spec in enumerate(specs):
        for j in range(i):
            if bare[j] == bare[i]:
                raise UserError(
                    f"{specs[j].where} and {spec.where} are the same {noun} under two labels "
                    f"({specs[j].label!r}, {spec.label!r}): keep one (a label changes nothing "
                    "that is computed)"
                )


def registry_get(registry: Registry, name: str, where: str) -> Callable[..., Any]:
    try:
        return registry.get(name)
    except UserError as exc:
        raise exc.at(f"{where}.name") from None


def check_kwargs(
    registry: Registry,
    name: str,
    params: Mapping[str, Any],
    where: str,
    runner_sets: tuple[str, ...] = (),
) -> None:
    """Unknown keyword arguments are caught before any work starts."""
    factory = registry_get(registry, name, where)
    for key in runner_sets:
        if key in params:
            raise UserError("is set by the runner from the data", where=f"{where}.{key}")
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return
    check_ranges(factory, params, where)
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return
    for key in params:
        if key not in signature.parameters:
            accepted = [p for p in signature.parameters if p not in runner_sets and p != "self"]
            raise UserError(
                f"{name} has no parameter {key!r} (accepted: {', '.join(accepted) or 'none'})",
                where=f"{where}.{key}",
            )


def construct(
    registry: Registry, name: str, params: Mapping[str, Any], where: str, skip: tuple[str, ...] = ()
) -> Any:
    """Build a plugin once to check its parameters' values; errors point at the entry."""
    check_kwargs(registry, name, params, where, runner_sets=skip)
    factory = registry_get(registry, name, where)
    needed = inspect.signature(factory).parameters
    if any(k in needed and needed[k].default is inspect.Parameter.empty for k in skip):
        return None  # needs runtime objects (a generator); checked when built
    try:
        return factory(**params)
    except (TypeError, ValueError) as exc:
        raise UserError(f"invalid parameters for {name}: {exc}", where=where) from None


def freeze(params: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(params))


DEVICE_TYPES = ("cpu", "cuda")


def per_device(raw: Mapping[str, Any], device: str) -> dict[str, Any]:
    """The suite with every per-device ``batch_size`` table replaced by ``device``'s value."""

    def pick(table: Any, where: str) -> Any:
        if not isinstance(table, dict):
            return table
        out = dict(table)
        value = out.get("batch_size")
        if isinstance(value, dict):
            unknown_keys(value, set(DEVICE_TYPES), f"{where}.batch_size")
            if device not in value:
                raise UserError(f"has no entry for {device}", where=f"{where}.batch_size")
            out["batch_size"] = value[device]
        return out

    resolved = dict(raw)
    for key in ("train", "eval"):
        resolved[key] = pick(raw.get(key), key)
    for key in ("targets", "defenses", "generators"):
        if isinstance(raw.get(key), list):
            resolved[key] = [
                {**e, "train": pick(e.get("train"), f"{key}[{i}].train")}
                if isinstance(e, dict) and "train" in e
                else e
                for i, e in enumerate(raw[key])
            ]
    return {k: v for k, v in resolved.items() if v is not None}


#: a suite name: it names the output folder (results/<name>), so it is one plain path part
SUITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")


def suite_name(name: str, given: bool) -> str:
    """``name`` if it is letters, digits and ``_.+-`` (not starting with a dot or a dash), at
    most 100 characters; otherwise one line saying so, and where the name came from."""
    if SUITE_NAME.fullmatch(name):
        return name
    source = "" if given else ' (taken from the file name; set name = "..." in the suite)'
    raise UserError(
        f"{name[:60]!r} is not a usable suite name: it names the output folder, so it must be "
        f"1-100 letters, digits and _.+- starting with a letter or digit{source}",
        where="name",
    )
