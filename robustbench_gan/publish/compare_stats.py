"""`rbg compare` as a researcher judges two runs: each change of an accuracy tested against the
noise of a finite sample of images, continuous columns within documented tolerances
(tolerances.py), settings compared exactly. Rows match on suite, seed, model, attack, norm and
eps; ``--across-seeds`` matches them without the seed."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..render.format import model_name
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
from .grid_outcomes import grid_changes
from .image_outcomes import RunOutcomes, paired, run_outcomes
from .significance import holm, mcnemar_exact, paired_difference_interval, unpaired_change
from .tolerances import DERIVED, relative_tolerance, within

SEEDLESS_KEY = [c for c in ROW_KEY if c != "seed"]
ACCURACIES = ["clean_acc", "robust_acc"]


@dataclass
class Test:
    """One accuracy change to test: where it is shown, the change, and its p-value."""

    label: str
    change: Change
    p: float


def compare_statistically(
    a: str | Path,
    b: str | Path,
    tolerance: float = 0.0,
    alpha: float = 0.05,
    *,
    across_seeds: bool = False,
) -> Comparison:
    """Rows of ``a`` and ``b`` matched on suite, seed, model, attack, norm and eps (without the
    seed when ``across_seeds``). Each changed accuracy is tested: McNemar's exact test where
    both runs have per-image outcomes of the same images (samples.csv), else the pooled
    two-proportion z-test on the rows' accuracies over their n images; a change is significant
    when Holm's correction over every test keeps it at family-wise level ``alpha``, and is
    listed with its 95% interval and p-value either way. A clean accuracy is tested once per
    model. Continuous columns (tolerances.RELATIVE) may move within their relative tolerance,
    across seeds they and the derived columns are not compared; every other column must be
    equal (numbers within the absolute ``tolerance``, which also bounds an accuracy change
    that is no change). Pairs of a transfer grid (transfer_grid_images.csv in both runs) are
    tested the same way, on their success rates."""
    if not tolerance >= 0:
        raise UserError(f"--tolerance must be a number >= 0, not {tolerance}")
    if not 0 < alpha < 1:
        raise UserError(f"--alpha must lie between 0 and 1, not {alpha}")
    names = SEEDLESS_KEY if across_seeds else ROW_KEY
    left, right = keyed(a, names), keyed(b, names)
    out = Comparison(len(left.rows), len(right.rows), tolerance, alpha=alpha)
    columns, out.notes = compared_columns(left.frame, right.frame)
    skipped = [
        c for c in columns
        if c in DERIVED or (across_seeds and relative_tolerance(c) is not None)
    ]  # fmt: skip
    exact = [c for c in columns if c not in (*ACCURACIES, *skipped, "seed")]
    numeric = {c for c in exact if left.numeric(c) and right.numeric(c)}
    if skipped:
        why = "across seeds" if across_seeds else "they follow from the accuracies"
        out.notes.append(f"not compared ({why}): {', '.join(skipped)}")
    samples = Samples(run_outcomes(a), run_outcomes(b))
    found: dict[str, list[Change]] = {}
    seen: dict[str, int] = {}  # the order of rows and models, as A lists them
    tests: dict[tuple, Test] = {}
    for key, row in left.rows.items():
        where = dict(zip(names, key))
        other = right.rows.get(key)
        label = row_label(where, row, other, across_seeds)
        seen.setdefault(model_text(label, where), len(seen))  # a model's clean accuracy first
        seen.setdefault(label, len(seen))
        if other is None:
            out.removed.append(label)
            continue
        for column in exact:
            change = setting_change(column, row[column], other[column], numeric, tolerance)
            if change is not None:
                found.setdefault(label, []).append(change)
        for test_key, test in accuracy_tests(where, row, other, label, samples, tolerance):
            tests.setdefault(test_key, test)
    for key, row in right.rows.items():
        if key not in left.rows:
            out.added.append(row_label(dict(zip(names, key)), None, row, across_seeds))
    for label, change, p in grid_changes(a, b, tolerance):  # transfer_grid_images.csv
        seen.setdefault(label, len(seen))
        tests.setdefault((label,), Test(label, change, p))
    tested = [t for t in tests.values() if not math.isnan(t.p)]
    verdicts = holm([t.p for t in tested], alpha)
    significant = [t for t, yes in zip(tested, verdicts) if yes]
    untested = [t for t in tests.values() if math.isnan(t.p)]  # no image count: a change
    for test in [*significant, *untested]:
        found.setdefault(test.label, []).append(test.change)
    noise: dict[str, list[Change]] = {}
    for test, yes in zip(tested, verdicts):
        if not yes:
            noise.setdefault(test.label, []).append(test.change)
    out.tested, out.within_noise = len(tested), verdicts.count(False)
    out.significant = len({t.label for t in [*significant, *untested]})
    out.changed = sorted(found.items(), key=lambda item: seen[item[0]])
    out.noise = sorted(noise.items(), key=lambda item: seen[item[0]])
    return out


def compare_across_seeds(
    a: str | Path, b: str | Path, tolerance: float = 0.0, alpha: float = 0.05
) -> Comparison:
    """``compare_statistically`` of two runs of different seeds."""
    return compare_statistically(a, b, tolerance, alpha, across_seeds=True)


def setting_change(
    column: str, x: object, y: object, numeric: set[str], tolerance: float
) -> Change | None:
    """The change of a column that is not an accuracy: within its relative tolerance
    (tolerances.py) for a continuous measurement, else as ``rbg compare --exact`` sees it."""
    relative = relative_tolerance(column)
    if column not in numeric or relative is None:
        return column_change(column, x, y, numeric, tolerance)
    x, y = float(x), float(y)  # type: ignore[arg-type]
    if math.isnan(x) and math.isnan(y):
        return None
    if math.isnan(x) or math.isnan(y):
        return Change(column, x, y, math.nan)
    if within(x, y, relative, tolerance):
        return None
    return Change(column, x, y, y - x, f"beyond its relative tolerance {relative:g}")


@dataclass
class Samples:
    """The per-image outcomes of both runs, where they have them."""

    a: RunOutcomes | None
    b: RunOutcomes | None

    def clean(self, row: dict, other: dict, where: dict) -> tuple | None:
        target, defense = str(where["target"]), str(where["defense"])
        if self.a is None or self.b is None:
            return None
        return paired(
            self.a.clean(target, defense, float(row["clean_acc"]), float(row["n_eval"])),
            self.b.clean(target, defense, float(other["clean_acc"]), float(other["n_eval"])),
        )

    def robust(self, row: dict, other: dict, where: dict) -> tuple | None:
        if self.a is None or self.b is None or float(where["eps"]) <= 0:
            return None
        attack = str(where["attack"])
        return paired(
            self.a.robust(where, attack, float(row["robust_acc"]), float(row["n_eval"])),
            self.b.robust(where, attack, float(other["robust_acc"]), float(other["n_eval"])),
        )


def accuracy_tests(
    where: dict, row: dict, other: dict, label: str, samples: Samples, tolerance: float
) -> list[tuple[tuple, Test]]:
    """The tests of a matched row's accuracies that changed beyond ``tolerance``, each with a
    key that says which tests are one (a model's clean accuracy repeats on all its rows; at
    eps 0 the robust accuracy is the clean one, tested as that)."""
    out = []
    clean = accuracy_test(
        "clean_acc", row, other, tolerance, lambda: samples.clean(row, other, where)
    )
    model = tuple(where[c] for c in ("suite", "target", "defense") if c in where)
    if clean is not None:
        change, p = clean
        test_key = (*model, where.get("seed"), "clean", show(change.a), show(change.b))
        out.append((test_key, Test(model_text(label, where), change, p)))
    at_zero = float(where["eps"]) == 0 and all(
        show(r["robust_acc"]) == show(r["clean_acc"]) for r in (row, other)
    )
    if not at_zero:
        robust = accuracy_test(
            "robust_acc", row, other, tolerance, lambda: samples.robust(row, other, where)
        )
        if robust is not None:
            out.append(((*where.values(), "robust"), Test(label, *robust)))
    return out


def accuracy_test(
    column: str, row: dict, other: dict, tolerance: float, pairs: Callable[[], tuple | None]
) -> tuple[Change, float] | None:
    """The change of one accuracy, its interval and test written in ``how``, and the test's
    p-value (NaN without a number of images); None when it moved by at most ``tolerance``."""
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
        low, high = paired_difference_interval(*outcomes)
        change.how = f"95% interval [{low:+.3f}, {high:+.3f}]; McNemar exact p={p:.2g}"
    else:
        p, change.how = unpaired_change(x, n_a, y, n_b)
    return change, p


def model_text(label: str, where: dict) -> str:
    """``suite seed 0: model``: where a model's clean accuracy is shown."""
    return f"{label.split(': ', 1)[0]}: {model_name(str(where['target']), str(where['defense']))}"


def row_label(where: dict, row: dict | None, other: dict | None, across_seeds: bool) -> str:
    """``suite seed 0: model, attack, norm eps 8/255``; across seeds ``seed 0 vs 1`` (one
    seed for a row of one side)."""
    if across_seeds:
        seeds = " vs ".join(str(r["seed"]) for r in (row, other) if r is not None)
    else:
        seeds = str(where["seed"])
    return key_text(tuple({**where, "seed": seeds}[c] for c in ROW_KEY))
