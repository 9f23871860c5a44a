"""What a suite's attacks ask of its data: as many classes as each one declares it needs.

An attack declares the fewest classes it runs on, as configured (``Attack.min_classes``:
APGD-DLR reads the 3rd largest logit, its targeted version the 4th, FAB-T with k targets
needs k + 1 classes, a composite what its most demanding part needs), and so does a defense
that trains with an attack. The suite records it (``AttackSpec.min_classes``,
``DefenseSpec.min_classes``) and the runner checks it here as soon as the data is loaded,
before anything trains: the first entry the data cannot serve is one line naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..contract.fields import construct
from ..contract.suite import AttackSpec, Suite
from ..errors import UserError
from ..registry import ATTACKS


def attack_named(spec: AttackSpec) -> str:
    """``apgd_dlr``, with the label too where the entry sets its own."""
    return spec.name if spec.label == spec.name else f"{spec.name} (label {spec.label!r})"


def check_classes(suite: Suite, num_classes: int) -> None:
    """Raise UserError, naming the suite file and the entry, for the first defense or attack
    that needs more classes than the suite's dataset has (``num_classes``)."""
    for spec in (*suite.defenses, *suite.attacks):  # a defense that trains with an attack
        if spec.min_classes > num_classes:
            # benchmark() and `rbg eval` build their suite in memory: no file to name
            where = f"{suite.path}: {spec.where}" if suite.path.is_file() else spec.where
            raise UserError(
                f"{attack_named(spec)} needs at least {spec.min_classes} classes, dataset "
                f"{suite.dataset.name!r} has {num_classes}",
                where=where,
            )


def defense_classes(built: Any, params: Mapping[str, Any], where: str) -> int:
    """The fewest classes a defense trains on: what it declares (``min_classes``), or, for one
    built only at run time (it needs a generator or static models), that of the attack its
    ``attack`` and ``attack_params`` name."""
    if built is not None:
        return int(getattr(built, "min_classes", 2))
    if not isinstance(params.get("attack"), str):
        return 2
    attack_params = dict(params.get("attack_params") or {})
    attack = construct(ATTACKS, params["attack"], attack_params, f"{where}.attack")
    return int(getattr(attack, "min_classes", 2))
