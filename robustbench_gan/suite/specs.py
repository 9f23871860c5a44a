"""One plugin entry of a suite -> its frozen spec (contract/suite.py): the dataset, a
generator, an attack, a defense. Each is checked against its plugin now (unknown parameters,
values its constructor refuses), so nothing fails mid-run; errors name the field path in
``where``. load.py reads whole suite files with these; api_suite.py builds a benchmark's
suite from ``benchmark()``'s arguments with the same functions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..contract.configs import GanTrainConfig
from ..contract.fields import (
    budgets,
    check_kwargs,
    construct,
    freeze,
    registry_get,
    split_entry,
    table,
    train_config,
    typed,
    unknown_keys,
)
from ..contract.suite import (
    BASELINE_GAN_LABEL,
    WORST_CASE_LABEL,
    AttackSpec,
    DefenseSpec,
    GeneratorSpec,
    PluginSpec,
)
from ..errors import UserError
from ..registry import ATTACKS, DATASETS, DEFENSES, GENERATORS, Registry
from .classes import defense_classes

GAN_TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(GanTrainConfig))


def origin_of(registry: Registry, name: str, where: str) -> dict[str, str] | None:
    """Where a plugin's code comes from when it is not this package's (its cells' ids cover
    it, so editing a plugin's file or upgrading its package invalidates its results)."""
    try:
        return registry.origin(name)
    except UserError as exc:
        raise exc.at(f"{where}.name") from None


def dataset_plugin(name: str, params: Mapping[str, Any]) -> PluginSpec:
    """The dataset ``name`` with its loader's keyword arguments (errors at ``dataset.KEY``)."""
    for key in ("root", "seed"):
        if key in params:
            raise UserError(
                "set by the runner (--data-dir / the suite seed), not in the suite",
                where=f"dataset.{key}",
            )
    check_kwargs(DATASETS, name, params, "dataset")
    origin = origin_of(DATASETS, name, "dataset")
    return PluginSpec(name, name, freeze(params), "dataset", origin)


def generator_spec(entry: Mapping[str, Any], index: int) -> GeneratorSpec:
    where = f"generators[{index}]"
    name, label, params = split_entry(entry, where, reserved=("train",))
    if label == BASELINE_GAN_LABEL:
        raise UserError(
            f"label {BASELINE_GAN_LABEL!r} is reserved for the class-means baseline row of "
            'gan.csv; set another, e.g. label = "my_gan"',
            where=f"{where}.label",
        )
    check_kwargs(GENERATORS, name, params, where, runner_sets=("in_shape", "num_classes"))
    train = table(entry, "train", where)
    unknown_keys(train, set(GAN_TRAIN_KEYS), f"{where}.train")
    try:
        GanTrainConfig(**train)  # values checked now; the family's defaults fill the rest
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc), where=f"{where}.train") from None
    return GeneratorSpec(
        name, label, freeze(params), where, origin_of(GENERATORS, name, where), train=freeze(train)
    )


def attack_spec(entry: Mapping[str, Any], index: int, default_eps: tuple[float, ...]) -> AttackSpec:
    """An attack entry; ``eps`` (optional) replaces [eval] eps, and is required for L2 attacks."""
    where = f"attacks[{index}]"
    name, label, params = split_entry(entry, where, reserved=("eps",))
    return attack_plugin(name, label, params, where, entry.get("eps"), default_eps)


def attack_plugin(
    name: str,
    label: str,
    params: Mapping[str, Any],
    where: str,
    eps: list[Any] | None,
    default_eps: tuple[float, ...],
) -> AttackSpec:
    """The attack ``name`` under ``label`` with its constructor's ``params``, at its own
    budgets ``eps`` (a list, as a suite writes it) or, for a Linf attack, ``default_eps``."""
    registry_get(ATTACKS, name, where)  # an unknown name first: a retired one says what it is now
    if label == WORST_CASE_LABEL:
        raise UserError(
            f"label {WORST_CASE_LABEL!r} is reserved for the per-image worst case over all "
            'attacks; set another, e.g. label = "aa_like"',
            where=f"{where}.label",
        )
    if "seed" in params:
        raise UserError("attacks take the suite's seed; remove it here", where=f"{where}.seed")
    attack = construct(ATTACKS, name, params, where)  # value errors surface now, not mid-run
    norm = getattr(attack, "norm", "linf")
    own = eps is not None
    if eps is not None:
        budget = budgets(eps, f"{where}.eps")
    elif norm == "linf":
        budget = default_eps
    else:
        raise UserError(
            f"{name} is a {norm} attack and [eval] eps holds Linf budgets; give its own "
            "eps = [...] (e.g. [0, 0.5, 1.0, 2.0] for L2 on 8x8 digits)",
            where=f"{where}.eps",
        )
    if norm == "linf" and budget[-1] > 1:
        raise UserError(
            f"Linf budgets are on the [0, 1] pixel scale and {budget[-1]:g} is above 1, where the "
            "ball holds every image (0-255 scale? write 8/255 for 8 grey levels)",
            where=f"{where}.eps" if own else "eval.eps",
        )
    origin = origin_of(ATTACKS, name, where)
    classes = getattr(attack, "min_classes", 2)  # checked against the data once it is loaded
    return AttackSpec(
        name, label, freeze(params), where, origin, norm=norm, eps=budget, min_classes=classes
    )


def defense_spec(entry: Mapping[str, Any], index: int) -> DefenseSpec:
    where = f"defenses[{index}]"
    name, label, params = split_entry(
        entry, where, reserved=("base", "members", "generator", "static", "train")
    )
    factory = DEFENSES.get(name) if ":" in name else registry_get(DEFENSES, name, where)
    kind = getattr(factory, "kind", "")
    if kind not in ("training", "model"):
        raise UserError(f"{name!r} is not a defense (no kind 'training' or 'model')", where=where)
    if "seed" in params:
        raise UserError("defenses take the suite's seed; remove it here", where=f"{where}.seed")
    spec: dict[str, Any] = {
        "kind": kind,
        "combines_members": bool(getattr(factory, "combines_members", False)),
        "purifier": bool(getattr(factory, "purifier", False)),
    }
    variant = getattr(factory, "variant", None)
    spec["variant"] = str(variant(params)) if callable(variant) else ""
    if kind == "training":
        spec["base"] = typed(entry.get("base"), str, f"{where}.base", required=True)
        overrides = table(entry, "train", where)
        spec["train"] = train_config(overrides, f"{where}.train") if overrides else None
    else:
        members = entry.get("members")
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise UserError("must be a list of model labels", where=f"{where}.members")
        minimum = getattr(factory, "min_members", 1)
        if len(members) < minimum:
            raise UserError(f"needs at least {minimum} members", where=f"{where}.members")
        spec["members"] = tuple(members)
    if getattr(factory, "needs_generator", False):
        spec["generator"] = typed(entry.get("generator"), str, f"{where}.generator", required=True)
    elif "generator" in entry:
        raise UserError(f"{name} takes no generator", where=f"{where}.generator")
    if getattr(factory, "needs_static_models", False):
        static = entry.get("static")
        if (
            not isinstance(static, list)
            or not static
            or not all(isinstance(m, str) for m in static)
        ):
            raise UserError("must be a non-empty list of model labels", where=f"{where}.static")
        spec["static"] = tuple(static)
    elif "static" in entry:
        raise UserError(f"{name} takes no static models", where=f"{where}.static")
    runtime = (("generator",) if spec.get("generator") else ()) + (
        ("static_models",) if spec.get("static") else ()
    )
    built = construct(DEFENSES, name, params, where, skip=runtime)
    spec["min_classes"] = defense_classes(built, params, where)  # checked once data is loaded
    origin = origin_of(DEFENSES, name, where)
    return DefenseSpec(name, label, freeze(params), where, origin, **spec)
