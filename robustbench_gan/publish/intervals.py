"""Confidence intervals of accuracies (Wilson score) and the tie rule of ranked leaderboards."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..utils import Z95, wilson

__all__ = ["Z95", "correct_count", "pooled", "tied_with_above", "wilson"]


def correct_count(accuracy: float, n: float) -> float:
    """The number of correct images behind an accuracy over ``n`` images (accuracies are
    exact fractions of whole images, so the product is rounded back to one)."""
    if math.isnan(accuracy) or math.isnan(n):
        return math.nan
    return float(round(accuracy * n))


def pooled(accuracies: Sequence[float], counts: Sequence[float]) -> tuple[float, float, float]:
    """The interval of several runs' accuracies pooled: total correct over total images.
    Returns (low, high, total images)."""
    correct = sum(correct_count(a, n) for a, n in zip(accuracies, counts))
    total = float(sum(counts))
    return (*wilson(correct, total), total)


def tied_with_above(lows: Sequence[float], highs: Sequence[float]) -> list[bool]:
    """For lines sorted best first: whether each one's interval overlaps the interval of the
    line just above it (touching counts; a missing interval ties with nothing)."""
    out = [False] * len(lows)
    for i in range(1, len(lows)):
        bounds = (lows[i - 1], highs[i - 1], lows[i], highs[i])
        if not any(math.isnan(b) for b in bounds):
            out[i] = bounds[2] <= bounds[1] and bounds[0] <= bounds[3]
    return out
