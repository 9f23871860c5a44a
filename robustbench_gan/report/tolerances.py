"""How far a continuous column may move between two runs that agree (docs/reproducibility.md).

Accuracies are tested against the noise of their images (significance.py); the columns here
have no such test. Each value is a relative tolerance: a change counts when
``|b - a| > tolerance * max(|a|, |b|)``. They cover the spread measured across CPU kernel paths
and seeds with tests/bench/spread.py, with room to spare; a column of neither list is compared
exactly.
"""

from __future__ import annotations

import fnmatch

#: column pattern -> relative tolerance, for runs of the same seed (another machine)
RELATIVE = {
    "mean_linf": 0.10,  # mean perturbation of the images an attack broke: moves with which
    "mean_l2": 0.10,
    "forward_passes": 0.10,  # early exits (APGD, FAB, Square) stop on other images
    "backward_passes": 0.10,
}
#: measurements that follow from others compared already, or that describe one run's work
#: and move freely with the seed: never compared (across seeds, the RELATIVE ones too)
DERIVED = ("attack_success_rate",)


def relative_tolerance(column: str) -> float | None:
    """The column's relative tolerance, or None (compared exactly)."""
    for pattern, value in RELATIVE.items():
        if fnmatch.fnmatchcase(column, pattern):
            return value
    return None


def within(x: float, y: float, relative: float, absolute: float = 0.0) -> bool:
    """``y`` agrees with ``x``: within ``relative`` of the larger magnitude, or ``absolute``."""
    return abs(y - x) <= max(relative * max(abs(x), abs(y)), absolute)
