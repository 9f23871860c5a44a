"""The threat models' norms, once: how suites, attacks and CSVs write them (``linf``, ``l2``)
and how people read them (Linf, L2). The leaderboard's ``domain`` rows (accuracy on a test
set a GAN translated into another domain) are not a norm: ``DOMAIN_NORM`` marks them.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from ..bounds import OneOf


class Norm(str, Enum):
    """An Lp threat model; its value is what suites, attacks and CSVs write."""

    LINF = "linf"
    L2 = "l2"

    @property
    def display(self) -> str:
        """As people write it: ``Linf``, ``L2``."""
        return "Linf" if self is Norm.LINF else "L2"

    @classmethod
    def parse(cls, text: object) -> Norm | None:
        """The norm ``text`` names, in any case (``Linf``, ``l2``), or None."""
        try:
            return cls(str(text).lower())
        except ValueError:
            return None


NORMS: tuple[str, ...] = tuple(norm.value for norm in Norm)  # ("linf", "l2")
DOMAIN_NORM = "domain"  # the leaderboard's norm column for rows of translated test sets
#: a plugin parameter naming a norm, as suites write it (bounds.py checks it): linf or l2
NormName = Annotated[str, OneOf(NORMS)]
