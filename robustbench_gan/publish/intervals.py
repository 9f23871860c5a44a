"""Confidence intervals of accuracies (Wilson score) and the tie rule of ranked leaderboards."""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile: a two-sided 95% interval


def wilson(correct: float, total: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``correct / total``:
    ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``; NaNs without images."""
    if not total or math.isnan(total) or math.isnan(correct):
        return math.nan, math.nan
    p = correct / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    low = 0.0 if correct <= 0 else max(0.0, centre - half)  # exact at the ends
    high = 1.0 if correct >= total else min(1.0, centre + half)
    return low, high


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
