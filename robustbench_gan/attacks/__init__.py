"""Attacks: the base class and one attack per module, registered in ``ATTACKS``."""

from .base import Attack, AttackResult
from .fgsm import FGSM
from .pgd import PGD

__all__ = ["FGSM", "PGD", "Attack", "AttackResult"]
