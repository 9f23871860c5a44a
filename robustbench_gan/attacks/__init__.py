"""Attacks: the base class and one attack per module, each registered in ``ATTACKS``;
``art:`` and ``foolbox:`` names reach the peer libraries through adapters.

ATTACKS imports every public module of this package when first used (see
:mod:`robustbench_gan.registry`), so a new attack module needs no import here.
"""

from .base import Attack, AttackResult

__all__ = ["Attack", "AttackResult"]
