"""How far a continuous column may move between two runs that agree (docs/reproducibility.md).

Accuracies and other shares of test images (SHARES) are tested against the noise of their
images (significance.py). Continuous columns (RELATIVE) have a relative tolerance: a change
counts when ``|b - a| > tolerance * max(|a|, |b|)``, set above the spread measured across CPU
kernel paths with tests/bench/spread.py. A GAN's training outcome (GAN_OUTCOMES) and numbers
that follow from others (DERIVED) are not compared; claims (CLAIMS) and every other column
must be equal.
"""

from __future__ import annotations

import fnmatch

import pandas as pd

#: column pattern -> relative tolerance, for runs of the same seed (another machine)
RELATIVE = {
    "mean_linf": 0.10,  # mean perturbation of the images an attack broke: moves with which
    "mean_l2": 0.10,
    # early exits (APGD, FAB, Square, AutoAttack) stop on other images, and at a large eps the
    # few images still robust run the whole budget: 52% measured (digits-attacks, DEFAULT)
    "forward_passes": 0.6,
    "backward_passes": 0.6,
}
#: numbers that follow from others compared already (or name one of them): never compared
#: (across seeds, the RELATIVE ones are left out too)
DERIVED = (
    "attack_success_rate", "transfer_success_rate", "difference", "gain", "best_member", "broke",
    # the transfer grid's counts and intervals (its success rates are tested)
    "clean_correct", "fooled", "ci_low", "ci_high", "gain_over_mean_member",
    # the corruption summary's error ratios and worst corruption (from its accuracies)
    "mce", "relative_mce", "relative_mce_undefined", "worst_corruption",
)  # fmt: skip


def relative_tolerance(column: str) -> float | None:
    """The column's relative tolerance, or None (compared exactly)."""
    for pattern, value in RELATIVE.items():
        if fnmatch.fnmatchcase(column, pattern):
            return value
    return None


def within(x: float, y: float, relative: float, absolute: float = 0.0) -> bool:
    """``y`` agrees with ``x``: within ``relative`` of the larger magnitude, or ``absolute``."""
    return abs(y - x) <= max(relative * max(abs(x), abs(y)), absolute)


#: shares of test images: tested against the noise of their count
SHARES = (
    "*_acc", "*_acc_*", "*_acc:*", "*acc_from:*", "*success_rate", "*_agrees", "ours", "*accuracy",
    "abstained",
)  # fmt: skip
#: claims made from the numbers: must be the same in two runs that agree
CLAIMS = ("beats_baseline",)
#: a GAN's training outcome: chaotic across CPUs (a rounding changes the whole trajectory;
#: docs/reproducibility.md gives the measured spread, larger than the noise of the samples
#: scored), so the claims made from it are compared, not it
GAN_OUTCOMES = (
    "fid_*", "is_*", "precision", "recall", "density", "coverage", "class_coverage", "class_kl",
    "label_fidelity*", "domain_accuracy", "nn_train_dist_*", "memorization_ratio", "d_loss*",
    "g_loss*", "cycle_error*",
)  # fmt: skip
#: numbers that place a row: a budget, a step, an order, a seed
NUMERIC_KEYS = (
    "eps", "iteration", "step", "order", "seed", "image", "steps", "d_steps", "severity", "radius",
)  # fmt: skip
#: text columns that are measurements, not keys
TEXT_MEASURES = ("indicators", "broken_by", "best_member", *CLAIMS)


def matches(column: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(column, p) for p in patterns)


def is_share(column: str) -> bool:
    return matches(column, SHARES)


def not_compared(column: str) -> bool:
    return matches(column, GAN_OUTCOMES) or column in DERIVED


def key_column(column: str, values: object) -> bool:
    """Whether a table's column places its rows (text, or a budget, step, order, seed)."""
    if column in NUMERIC_KEYS:
        return True
    if column in TEXT_MEASURES or is_share(column) or not_compared(column):
        return False
    text = pd.Series(values, dtype="object").dropna().astype(str)
    text = text[text != ""]
    return bool(len(text)) and pd.to_numeric(text, errors="coerce").isna().any()
