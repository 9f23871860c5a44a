"""`rbg compare --across-seeds`: two runs' rows matched without their seed, each change of an
accuracy tested against the noise of a finite sample of images, settings compared exactly."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .compare import (
    ROW_KEY,
    Change,
    Comparison,
    column_change,
    compared_columns,
    key_text,
    keyed,
    show,
)
from .format import model_name
from .image_outcomes import RunOutcomes, paired, run_outcomes
from .intervals import correct_count
from .significance import holm, mcnemar_exact, two_proportions

SEEDLESS_KEY = [c for c in ROW_KEY if c != "seed"]
ACCURACIES = ["clean_acc", "robust_acc"]
#: measurements that move with the seed as the accuracies do, follow from them (the success
#: rate) or describe the attack's work; not compared across seeds
NOT_COMPARED = ["attack_success_rate", "mean_linf", "mean_l2", "forward_passes", "backward_passes"]


@dataclass
class Test:
    """One accuracy change to test: where it is shown, the change, and its p-value."""

    label: str
    change: Change
    p: float


def compare_across_seeds(
    a: str | Path, b: str | Path, tolerance: float = 0.0, alpha: float = 0.05
) -> Comparison:
    """Rows of ``a`` and ``b`` matched on suite, model, attack, norm and eps (not the seed).
    Each changed accuracy is tested: McNemar's exact test where both runs have per-image
    outcomes of the same images (samples.csv), else the pooled two-proportion z-test on the
    rows' accuracies over their n images; a change is significant when Holm's correction over
    every test keeps it at family-wise level ``alpha``. A clean accuracy is tested once per
    model. Other columns but the seed and those of NOT_COMPARED must be equal (within
    ``tolerance`` for numbers); a change of at most ``tolerance`` is no change."""
    if not tolerance >= 0:
        raise UserError(f"--tolerance must be a number >= 0, not {tolerance}")
    if not 0 < alpha < 1:
        raise UserError(f"--alpha must lie between 0 and 1, not {alpha}")
    left, right = keyed(a, SEEDLESS_KEY), keyed(b, SEEDLESS_KEY)
    out = Comparison(len(left.rows), len(right.rows), tolerance, alpha=alpha)
    columns, out.notes = compared_columns(left.frame, right.frame)
    exact = [c for c in columns if c not in (*ACCURACIES, *NOT_COMPARED, "seed")]
    numeric = {c for c in exact if left.numeric(c) and right.numeric(c)}
    skipped = [c for c in NOT_COMPARED if c in columns]
    if skipped:
        out.notes.append(f"not compared across seeds: {', '.join(skipped)}")
    samples = Samples(run_outcomes(a), run_outcomes(b))
    found: dict[str, list[Change]] = {}
    seen: dict[str, int] = {}  # the order of rows and models, as A lists them
    tests: dict[tuple, Test] = {}
    for key, row in left.rows.items():
        other = right.rows.get(key)
        label = seedless_text(key, row["seed"], None if other is None else other["seed"])
        seen.setdefault(model_text(label, key), len(seen))  # a model's clean accuracy first
        seen.setdefault(label, len(seen))
        if other is None:
            out.removed.append(label)
            continue
        for column in exact:
            change = column_change(column, row[column], other[column], numeric, tolerance)
            if change is not None:
                found.setdefault(label, []).append(change)
        for test_key, test in accuracy_tests(key, row, other, label, samples, tolerance):
            tests.setdefault(test_key, test)
    for key, row in right.rows.items():
        if key not in left.rows:
            out.added.append(seedless_text(key, None, row["seed"]))
    tested = [t for t in tests.values() if not math.isnan(t.p)]
    verdicts = holm([t.p for t in tested], alpha)
    significant = [t for t, yes in zip(tested, verdicts) if yes]
    untested = [t for t in tests.values() if math.isnan(t.p)]  # no image count: a change
    for test in [*significant, *untested]:
        found.setdefault(test.label, []).append(test.change)
    out.tested, out.within_noise = len(tested), verdicts.count(False)
    out.significant = len({t.label for t in [*significant, *untested]})
    out.changed = sorted(found.items(), key=lambda item: seen[item[0]])
    return out


@dataclass
class Samples:
    """The per-image outcomes of both runs, where they have them."""

    a: RunOutcomes | None
    b: RunOutcomes | None

    def clean(self, row: dict, other: dict, key: tuple) -> tuple | None:
        target, defense = str(key[1]), str(key[2])
        if self.a is None or self.b is None:
            return None
        return paired(
            self.a.clean(target, defense, float(row["clean_acc"]), float(row["n_eval"])),
            self.b.clean(target, defense, float(other["clean_acc"]), float(other["n_eval"])),
        )

    def robust(self, row: dict, other: dict, key: tuple) -> tuple | None:
        if self.a is None or self.b is None or float(key[5]) <= 0:
            return None
        where = dict(zip(SEEDLESS_KEY, key))
        return paired(
            self.a.robust(where, str(key[3]), float(row["robust_acc"]), float(row["n_eval"])),
            self.b.robust(where, str(key[3]), float(other["robust_acc"]), float(other["n_eval"])),
        )


def accuracy_tests(
    key: tuple, row: dict, other: dict, label: str, samples: Samples, tolerance: float
) -> list[tuple[tuple, Test]]:
    """The tests of a matched row's accuracies that changed beyond ``tolerance``, each with a
    key that says which tests are one (a model's clean accuracy repeats on all its rows; at
    eps 0 the robust accuracy is the clean one, tested as that)."""
    suite, target, defense, _, _, eps = key
    out = []
    clean = accuracy_test(
        "clean_acc", row, other, tolerance, lambda: samples.clean(row, other, key)
    )
    if clean is not None:
        change, p = clean
        model = (suite, target, defense, "clean", show(change.a), show(change.b))
        out.append((model, Test(model_text(label, key), change, p)))
    at_zero = float(eps) == 0 and all(
        show(r["robust_acc"]) == show(r["clean_acc"]) for r in (row, other)
    )
    if not at_zero:
        robust = accuracy_test(
            "robust_acc", row, other, tolerance, lambda: samples.robust(row, other, key)
        )
        if robust is not None:
            out.append(((*key, "robust"), Test(label, *robust)))
    return out


def accuracy_test(
    column: str, row: dict, other: dict, tolerance: float, pairs: Callable[[], tuple | None]
) -> tuple[Change, float] | None:
    """The change of one accuracy, its test written in ``how``, and the test's p-value (NaN
    without a number of images); None when it did not change by more than ``tolerance``."""
    x, y = float(row[column]), float(other[column])
    if math.isnan(x) and math.isnan(y):
        return None
    if not math.isnan(x) and not math.isnan(y) and abs(y - x) <= tolerance:
        return None
    change = Change(column, x, y, y - x)
    n_a, n_b = float(row["n_eval"]), float(other["n_eval"])
    outcomes = pairs()
    if outcomes is not None:
        p = mcnemar_exact(*outcomes)
        change.how = f"McNemar exact p={p:.2g}"
    else:
        p = two_proportions(correct_count(x, n_a), n_a, correct_count(y, n_b), n_b)
        change.how = "not tested: no image count" if math.isnan(p) else f"two-proportion p={p:.2g}"
    return change, p


def model_text(label: str, key: tuple) -> str:
    """``suite seed 0 vs 1: model``: where a model's clean accuracy is shown."""
    return f"{label.split(': ', 1)[0]}: {model_name(str(key[1]), str(key[2]))}"


def seedless_text(key: tuple, seed_a: object, seed_b: object) -> str:
    """``suite seed 0 vs 1: model, attack, norm eps 8/255`` (one seed for a row of one side)."""
    seeds = " vs ".join(str(s) for s in (seed_a, seed_b) if s is not None)
    return key_text((key[0], seeds, *key[1:]))
