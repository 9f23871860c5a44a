"""The transfer grid's per-image outcomes (transfer_grid_images.csv), for `rbg compare`: per
(attack, eps, surrogate, target), each run's success rate and which images it fooled."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..contract.schema import GRID_IMAGES
from ..evaluations.common import unbits
from ..render.format import eps_text
from .compare import Change
from .significance import mcnemar_exact, paired_difference_interval, unpaired_change

KEY = ["attack", "eps", "surrogate", "target"]


@dataclass(frozen=True)
class PairOutcome:
    """One (surrogate, target) pair of a run: the target's clean-correct images and those the
    transfer fooled (boolean vectors over the test images)."""

    clean: np.ndarray
    fooled: np.ndarray

    @property
    def rate(self) -> float:
        n = int(self.clean.sum())
        return int(self.fooled.sum()) / n if n else math.nan


def grid_outcomes(run: str | Path) -> dict[tuple, PairOutcome]:
    """The run's pairs by (attack, eps, surrogate, target); empty without a readable file."""
    path = Path(run)
    file = path / GRID_IMAGES if path.is_dir() else path.parent / GRID_IMAGES
    if not file.is_file():
        return {}
    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return {}
    if [c for c in (*KEY, "clean_correct", "still_correct") if c not in frame.columns]:
        return {}
    out = {}
    for row in frame.itertuples(index=False):
        clean, still = bits_of(row.clean_correct), bits_of(row.still_correct)
        if clean is None or still is None or len(clean) != len(still):
            continue
        key = (row.attack, float(row.eps), row.surrogate, row.target)
        out[key] = PairOutcome(clean, clean & ~still)
    return out


def bits_of(text: str) -> np.ndarray | None:
    """A '0101...' string's vector (evaluations.common.unbits), None for anything else."""
    return None if not text or set(text) - {"0", "1"} else unbits(text)


def pair_label(key: tuple) -> str:
    attack, eps, surrogate, target = key
    return f"transfer grid: {attack} from {surrogate} to {target}, eps {eps_text(eps)}"


def grid_changes(a: str | Path, b: str | Path, tolerance: float) -> list[tuple[str, Change, float]]:
    """Per pair of both runs' grids whose success rate moved by more than ``tolerance``: its
    label, the change and the test's p-value (for Holm's correction with the rest)."""
    left, right = grid_outcomes(a), grid_outcomes(b)
    out = []
    for key, outcome in left.items():
        other = right.get(key)
        if other is None:
            continue
        x, y = outcome.rate, other.rate
        if math.isnan(x) and math.isnan(y) or abs(y - x) <= tolerance:
            continue
        p, how = success_test(outcome, other)
        out.append((pair_label(key), Change("success_rate", x, y, y - x, how), p))
    return out


def success_test(a: PairOutcome, b: PairOutcome) -> tuple[float, str]:
    """The change of a pair's success rate: McNemar's exact test on the images both runs'
    targets classify right when clean (the same images: same length), else the
    two-proportion test over each run's own clean-correct images; its p-value and how."""
    if len(a.clean) == len(b.clean):
        both = a.clean & b.clean
        fooled_a, fooled_b = a.fooled[both], b.fooled[both]
        p = mcnemar_exact(fooled_a, fooled_b)
        low, high = paired_difference_interval(fooled_a, fooled_b)
        return p, f"95% interval [{low:+.3f}, {high:+.3f}]; McNemar exact p={p:.2g}"
    return unpaired_change(a.rate, float(a.clean.sum()), b.rate, float(b.clean.sum()))
