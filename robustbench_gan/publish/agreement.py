"""Do two runs of a suite agree, table by table? What `rbg reproduce` prints a verdict for.

The leaderboard goes through the statistical compare (compare_stats.py). Every other CSV is
matched row by row on its key columns (its text columns and the budget, step or order) and its
measurements are judged by what they are (tolerances.py): a share of test images (an
accuracy) is tested against the noise of its images with the two-proportion test,
Holm-corrected within the table; a continuous column moves within its relative tolerance; a
GAN's training outcome (FID, IS, precision, recall, coverage, label fidelity, losses) is not
compared, since it is chaotic across machines (docs/reproducibility.md), but the claims made
from it are; a claim (``beats_baseline``) and a setting must be equal.
The findings the report states ("holds here") must hold in both runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..contract.schema import GRID_IMAGES
from ..errors import UserError
from .checks import read_cells
from .compare import ignored, show
from .compare_stats import compare_statistically
from .significance import holm, unpaired_change
from .tolerances import (
    CLAIMS,
    is_share,
    key_column,
    not_compared,
    relative_tolerance,
    within,
)

LEADERBOARD = "leaderboard.csv"
#: keys of a curve (iterations of an attack, steps of a GAN's training)
CURVE_KEYS = ("iteration", "step")
#: per-image outcomes: the paired tests of the leaderboard and of the transfer grid read
#: them; no verdict of their own
UNJUDGED = ("samples.csv", GRID_IMAGES)


@dataclass
class Verdict:
    """One table's verdict: ``agrees``, what differs (``lines``) and a one-line summary."""

    table: str
    agrees: bool
    summary: str
    lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        return f"{self.table}: {'agrees' if self.agrees else 'DIFFERS'} ({self.summary})"


def compare_runs(a: Path, b: Path, alpha: float = 0.05) -> list[Verdict]:
    """Every table of run folder ``a`` against the same table of ``b``; a table on one side
    only is a difference; the report's findings last."""
    names = sorted({p.name for p in (*a.glob("*.csv"), *b.glob("*.csv"))} - set(UNJUDGED))
    default_n = images_per_row(a)
    out = []
    for name in names:
        if not (a / name).is_file() or not (b / name).is_file():
            side = "A" if (a / name).is_file() else "B"
            out.append(Verdict(name, False, f"only in {side}"))
        elif name == LEADERBOARD:
            comparison = compare_statistically(a, b, alpha=alpha)
            lines = [x for x in comparison.lines() if not x.startswith("within noise")]
            out.append(Verdict(name, not comparison.differs, comparison.summary(), lines))
        else:
            out.append(compare_table(name, read(a / name), read(b / name), default_n, alpha))
    out.append(compare_findings(a, b))
    return out


def read(path: Path) -> pd.DataFrame:
    """A run's table, every cell as text (NaN where empty); a file that is not a CSV table
    is refused in one line naming it (checks.read_cells)."""
    return read_cells(path).reset_index(drop=True)


def images_per_row(run: Path) -> float:
    """The number of test images of the run (its leaderboard's n_eval, when there is one)."""
    try:
        counts = pd.to_numeric(read(run / LEADERBOARD)["n_eval"], errors="coerce").dropna()
    except (OSError, KeyError, UserError):  # judged, and refused if broken, on its own
        return math.nan
    return float(counts.mode().iloc[0]) if len(counts) else math.nan


def keyed_rows(frame: pd.DataFrame, keys: Sequence[str]) -> dict[tuple, dict]:
    """Rows by key (a missing key value as ""); a key that repeats is told apart by its order
    of appearance."""
    occurrence = frame.groupby(list(keys), sort=False, dropna=False).cumcount() if keys else None
    rows = {}
    for index, row in enumerate(frame.to_dict("records")):
        key = tuple("" if pd.isna(row[k]) else row[k] for k in keys)
        rows[(*key, int(occurrence.iloc[index]) if occurrence is not None else index)] = row
    return rows


def measured_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """A table's key columns and its measurements (bookkeeping left out)."""
    columns = [c for c in frame.columns if not ignored(c)]
    keys = [c for c in columns if key_column(c, frame[c])]
    return keys, [c for c in columns if c not in keys]


def number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def compare_table(
    name: str, left: pd.DataFrame, right: pd.DataFrame, default_n: float, alpha: float
) -> Verdict:
    """One table of two runs: rows matched on the key columns, each measurement judged as
    the module docstring says."""
    keys, measures = measured_columns(left)
    keys = [k for k in keys if k in right.columns]
    rows_a, rows_b = keyed_rows(left, keys), keyed_rows(right, keys)
    one_side = [f"only in A: {label(k, keys)}" for k in rows_a if k not in rows_b]
    one_side += [f"only in B: {label(k, keys)}" for k in rows_b if k not in rows_a]
    # a curve's points past where the other run's curve stopped (an attack that exits early
    # stops when every image is broken): its common part is compared
    curve = any(k in CURVE_KEYS for k in keys)
    lines = [] if curve else one_side
    skipped = sorted({c for c in measures if not_compared(c)})
    tests: list[tuple[str, float]] = []
    for key, row in rows_a.items():
        other = rows_b.get(key)
        if other is None:
            continue
        n = row_images(row, default_n)
        for column in measures:
            if column in skipped or column not in other:
                continue
            x, y = row[column], other[column]
            if show(x) == show(y):
                continue
            fx, fy = number(x), number(y)
            where = f"{label(key, keys)}: {column} {show(x)} -> {show(y)}"
            if is_share(column) and not math.isnan(fx) and not math.isnan(fy):
                p, how = unpaired_change(fx, n, fy, n)
                tests.append((f"{where} ({fy - fx:+.4g}; {how})", p))
            elif (tolerance := relative_tolerance(column)) is not None and not (
                math.isnan(fx) or math.isnan(fy)
            ):
                if not within(fx, fy, tolerance):
                    lines.append(f"{where} (beyond its relative tolerance {tolerance:g})")
            else:
                kind = "claim" if column in CLAIMS else "value"
                lines.append(f"{where} (a {kind} that must be equal)")
    verdicts = holm([p for _, p in tests], alpha)
    lines += [text for (text, _), yes in zip(tests, verdicts) if yes]
    noise = verdicts.count(False)
    summary = f"{len(rows_a)} rows; {noise} of {len(tests)} share changes within noise"
    if curve and one_side:
        summary += f"; {len(one_side)} curve points past the other run's end"
    if skipped:
        summary += f"; not compared: {', '.join(skipped)}"
    return Verdict(name, not lines, summary, lines)


def row_images(row: dict, default_n: float) -> float:
    for column in ("n_eval", "n", "clean_correct"):  # the transfer grid's denominators
        value = number(row.get(column))
        if not math.isnan(value) and value > 0:
            return value
    return default_n


def label(key: tuple, keys: Sequence[str]) -> str:
    parts = [f"{k}={show(v)}" for k, v in zip(keys, key) if show(v) != ""]
    return ", ".join(parts) or f"row {key[-1]}"


FINDING = re.compile(r"^Finding: (.*?) the finding (holds here|\*\*does not hold here\*\*)\.")


def findings(run: Path) -> list[tuple[str, bool]]:
    """The findings the run's report states, each with whether it holds there."""
    try:
        text = (run / "report.md").read_text(encoding="utf-8")
    except OSError:
        return []
    found = [FINDING.match(line) for line in text.splitlines()]
    return [(m.group(1)[:80], m.group(2) == "holds here") for m in found if m]


def compare_findings(a: Path, b: Path) -> Verdict:
    """The report's findings (a paper's claim checked on the run) must say the same."""
    left, right = findings(a), findings(b)
    lines = [
        f"finding {i + 1} ({text}...): holds in A: {x}, in B: {y}"
        for i, ((text, x), (_, y)) in enumerate(zip(left, right))
        if x != y
    ]
    if len(left) != len(right):
        lines.append(f"the reports state {len(left)} and {len(right)} findings")
    held = sum(x for _, x in left)
    return Verdict("findings", not lines, f"{len(left)} stated, {held} holding in A", lines)
