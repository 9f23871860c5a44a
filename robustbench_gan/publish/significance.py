"""Significance tests of a change in accuracy: McNemar's exact test on paired per-image
outcomes, the two-proportion z-test without them, and Holm's correction over many tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import binomtest

from .intervals import correct_count, wilson


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of McNemar's exact test: ``a`` and ``b`` say per image whether each
    run got it right (the same images, in the same order). Only the discordant images count:
    under no difference, each is right in A alone or in B alone with probability 1/2, so the
    smaller of the two counts is binomial; p = twice its lower tail, at most 1."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes of different lengths: {a.shape} and {b.shape}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def two_proportions(correct_a: float, n_a: float, correct_b: float, n_b: float) -> float:
    """Two-sided p-value of the pooled two-proportion z-test of ``correct_a / n_a`` against
    ``correct_b / n_b`` (independent samples of images); 1 when both are 0% or both 100%, NaN
    without images."""
    if not n_a or not n_b or any(math.isnan(v) for v in (correct_a, n_a, correct_b, n_b)):
        return math.nan
    pooled = (correct_a + correct_b) / (n_a + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if spread == 0:
        return 1.0
    z = (correct_b / n_b - correct_a / n_a) / spread
    return math.erfc(abs(z) / math.sqrt(2))


def holm(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Which of ``p_values`` are significant at family-wise level ``alpha`` (Holm's step-down:
    the k-th smallest of m is compared with alpha / (m - k + 1), stopping at the first that
    is not below). A NaN p-value is never significant."""
    order = sorted(range(len(p_values)), key=lambda i: (math.isnan(p_values[i]), p_values[i]))
    m = len(p_values)
    out = [False] * m
    for rank, index in enumerate(order):
        p = p_values[index]
        if math.isnan(p) or p > alpha / (m - rank):
            break
        out[index] = True
    return out


def difference_interval(
    correct_a: float, n_a: float, correct_b: float, n_b: float
) -> tuple[float, float]:
    """The 95% interval of ``correct_b / n_b - correct_a / n_a`` (Newcombe's hybrid score
    interval, from the two Wilson intervals; for paired outcomes it is wider than need be,
    never narrower). NaNs without images."""
    if not n_a or not n_b or any(math.isnan(v) for v in (correct_a, n_a, correct_b, n_b)):
        return math.nan, math.nan
    p_a, p_b = correct_a / n_a, correct_b / n_b
    low_a, high_a = wilson(correct_a, n_a)
    low_b, high_b = wilson(correct_b, n_b)
    d = p_b - p_a
    return (
        d - math.sqrt((p_b - low_b) ** 2 + (high_a - p_a) ** 2),
        d + math.sqrt((high_b - p_b) ** 2 + (p_a - low_a) ** 2),
    )


def paired_difference_interval(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The 95% interval of ``mean(b) - mean(a)`` for paired per-image outcomes, the one that
    goes with McNemar's exact test: given the m discordant images, the share right in B alone
    has a Clopper-Pearson interval [L, U], and the difference is m/n (2 share - 1)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    discordant, n = only_a + only_b, len(a)
    if discordant == 0:
        return 0.0, 0.0
    share = binomtest(only_b, discordant, 0.5).proportion_ci(0.95, method="exact")
    scale = discordant / n
    return scale * (2 * share.low - 1), scale * (2 * share.high - 1)


def unpaired_change(
    accuracy_a: float, n_a: float, accuracy_b: float, n_b: float
) -> tuple[float, str]:
    """The two-proportion test of two accuracies over their images: its p-value (NaN without
    images) and how it reads (``95% interval [...]; two-proportion p=...``)."""
    right_a, right_b = correct_count(accuracy_a, n_a), correct_count(accuracy_b, n_b)
    p = two_proportions(right_a, n_a, right_b, n_b)
    low, high = difference_interval(right_a, n_a, right_b, n_b)
    interval = "" if math.isnan(low) else f"95% interval [{low:+.3f}, {high:+.3f}]; "
    test = "not tested: no image count" if math.isnan(p) else f"two-proportion p={p:.2g}"
    return p, interval + test
