"""Attacks: the base class and one attack per module, each registered in ``ATTACKS``;
``art:`` and ``foolbox:`` names reach the peer libraries through adapters."""

from . import (  # noqa: F401  (importing a module registers its attacks)
    adapters,
    advgan,
    apgd,
    bim,
    cw,
    deepfool,
    fgm,
    fgsm,
    mifgsm,
    pgd,
    square,
    worst_case,
)
from .base import Attack, AttackResult

__all__ = ["Attack", "AttackResult"]
