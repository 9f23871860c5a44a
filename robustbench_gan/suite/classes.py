"""What a suite's attacks ask of its data: as many classes as each one declares it needs.

An attack declares the fewest classes it runs on, as configured (``Attack.min_classes``:
APGD-DLR reads the 3rd largest logit, its targeted version the 4th, FAB-T with k targets
needs k + 1 classes, a composite what its most demanding part needs). The suite records it
(``AttackSpec.min_classes``) and the runner checks it here as soon as the data is loaded,
before anything trains: the first attack the data cannot serve is one line naming its entry.
"""

from __future__ import annotations

from ..errors import UserError
from .specs import AttackSpec, Suite


def attack_named(spec: AttackSpec) -> str:
    """``apgd_dlr``, with the label too where the entry sets its own."""
    return spec.name if spec.label == spec.name else f"{spec.name} (label {spec.label!r})"


def check_classes(suite: Suite, num_classes: int) -> None:
    """Raise UserError, naming the suite file and the entry, for the first attack that needs
    more classes than the suite's dataset has (``num_classes``)."""
    for spec in suite.attacks:
        if spec.min_classes > num_classes:
            # benchmark() and `rbg eval` build their suite in memory: no file to name
            where = f"{suite.path}: {spec.where}" if suite.path.is_file() else spec.where
            raise UserError(
                f"{attack_named(spec)} needs at least {spec.min_classes} classes, dataset "
                f"{suite.dataset.name!r} has {num_classes}",
                where=where,
            )
