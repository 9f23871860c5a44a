"""Comparing two leaderboards (CSVs or run folders) row by row, for people and for CI jobs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..contract.schema import LATER_COLUMNS
from ..errors import UserError
from ..render.format import eps_text, model_name
from .leaderboards import DERIVED_COLUMNS, LINK_COLUMNS, REPRODUCTION_COLUMNS, read_leaderboard

#: what identifies a row: the run (suite, seed), the model, the attack and the budget
ROW_KEY = ["suite", "seed", "target", "defense", "attack", "norm", "eps"]
#: bookkeeping: when, where, how long and with what a row was made, and where it was published
IGNORED = {
    "published", "schema_version", "seconds", "cell_id", "versions", "device",
    *LINK_COLUMNS, *DERIVED_COLUMNS, *REPRODUCTION_COLUMNS,
}  # fmt: skip


def ignored(column: str) -> bool:
    return column in IGNORED or column.endswith(("_seconds", "_time")) or column.startswith("time")


@dataclass
class Change:
    """One column of one row that differs: its values in A and B, B - A for numbers, and
    for a tested accuracy the test that found it (``how``)."""

    column: str
    a: object
    b: object
    delta: float | None = None
    how: str = ""

    def text(self) -> str:
        if self.delta is None:
            return f"{self.column} {show(self.a)!r} -> {show(self.b)!r}"
        how = f"; {self.how}" if self.how else ""
        return f"{self.column} {show(self.a)} -> {show(self.b)} ({self.delta:+.6g}{how})"


@dataclass
class Comparison:
    """Rows of A and B matched on ROW_KEY: those that changed (beyond the tolerance), those only
    in B (added) and only in A (removed); ``notes`` says which columns were left out. Compared
    statistically (``alpha`` set), ``noise`` holds the accuracy changes within noise."""

    rows_a: int
    rows_b: int
    tolerance: float
    changed: list[tuple[str, list[Change]]] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: compared statistically (``alpha`` set): accuracy changes tested, those within noise, and
    #: the changed rows (or models) with a significant (or untestable) accuracy change
    noise: list[tuple[str, list[Change]]] = field(default_factory=list)
    alpha: float | None = None
    tested: int = 0
    within_noise: int = 0
    significant: int = 0

    @property
    def differs(self) -> bool:
        return bool(self.changed or self.added or self.removed)

    def lines(self) -> list[str]:
        out = [f"changed: {key}: " + "; ".join(c.text() for c in cs) for key, cs in self.changed]
        out += [
            f"within noise: {key}: " + "; ".join(c.text() for c in cs) for key, cs in self.noise
        ]
        out += [f"only in B (added): {key}" for key in self.added]
        out += [f"only in A (removed): {key}" for key in self.removed]
        return out + self.notes

    def summary(self) -> str:
        if self.alpha is not None:
            return self.tested_summary()
        if not self.differs:
            return (
                f"no differences beyond tolerance {self.tolerance:g} "
                f"({self.rows_a} rows in A, {self.rows_b} in B)"
            )
        return (
            f"{len(self.changed)} rows changed, {len(self.added)} added, "
            f"{len(self.removed)} removed (tolerance {self.tolerance:g}; "
            f"{self.rows_a} rows in A, {self.rows_b} in B)"
        )

    def tested_summary(self) -> str:
        if not self.differs:
            changes = "change" if self.within_noise == 1 else "changes"
            return (
                f"the runs agree: {self.within_noise} accuracy {changes} within noise "
                f"({self.tested} tested; Holm, family-wise alpha {self.alpha:g}), nothing else "
                f"beyond the tolerances ({self.rows_a} rows in A, {self.rows_b} in B)"
            )
        return (
            f"{len(self.changed)} rows changed ({self.significant} with a significant accuracy "
            f"change, {len(self.changed) - self.significant} in other columns only), "
            f"{self.within_noise} accuracy changes within noise ({self.tested} tested; Holm, "
            f"family-wise alpha {self.alpha:g}), {len(self.added)} added, "
            f"{len(self.removed)} removed (tolerance {self.tolerance:g}; "
            f"{self.rows_a} rows in A, {self.rows_b} in B)"
        )


def compare(a: str | Path, b: str | Path, tolerance: float = 0.0) -> Comparison:
    """Every difference between leaderboards ``a`` and ``b`` outside bookkeeping columns: a
    number counts as changed when it moved by more than ``tolerance`` (absolute), a text when
    it is not the same; rows are matched on suite, seed, model, attack, norm and eps."""
    if not tolerance >= 0:
        raise UserError(f"--tolerance must be a number >= 0, not {tolerance}")
    left, right = keyed(a), keyed(b)
    out = Comparison(len(left.rows), len(right.rows), tolerance)
    columns, out.notes = compared_columns(left.frame, right.frame)
    numeric = {c for c in columns if left.numeric(c) and right.numeric(c)}
    for key, row in left.rows.items():
        other = right.rows.get(key)
        if other is None:
            out.removed.append(key_text(key))
            continue
        changes = []
        for column in columns:
            change = column_change(column, row[column], other[column], numeric, tolerance)
            if change is not None:
                changes.append(change)
        if changes:
            out.changed.append((key_text(key), changes))
    out.added = [key_text(key) for key in right.rows if key not in left.rows]
    return out


@dataclass
class Keyed:
    """A leaderboard's rows by ROW_KEY (the key's columns left out of each row)."""

    frame: pd.DataFrame
    rows: dict[tuple, dict[str, object]]

    def numeric(self, column: str) -> bool:
        return pd.api.types.is_numeric_dtype(self.frame[column])


def keyed(path: str | Path, key: list[str] = ROW_KEY) -> Keyed:
    """A leaderboard keyed by ``key`` (a missing eps as -1: the domain rows have none);
    a leaderboard that repeats a key is refused."""
    board = read_leaderboard(path)
    board = board.assign(eps=pd.to_numeric(board["eps"], errors="coerce").fillna(-1.0))
    for column in LATER_COLUMNS:  # absent from a leaderboard written before them
        if column in board and board[column].isna().all():
            board = board.drop(columns=column)
    repeated = board.duplicated(key)
    if repeated.any():
        first = board[repeated].iloc[0]
        if "seed" not in key:
            seeds = ", ".join(str(s) for s in dict.fromkeys(board["seed"]))
            raise UserError(
                f"{path}: holds several seeds ({seeds}) of a row, e.g. "
                f"{key_text(tuple(first[ROW_KEY]))}; --across-seeds compares one run with another"
            )
        raise UserError(
            f"{path}: {int(repeated.sum())} rows repeat a (suite, seed, model, attack, norm, eps)"
            f", e.g. {key_text(tuple(first[ROW_KEY]))}; not one leaderboard"
        )
    keys = [tuple(row) for row in board[key].itertuples(index=False)]
    frame = board.drop(columns=key)
    return Keyed(frame, dict(zip(keys, frame.to_dict("records"))))


def compared_columns(left: pd.DataFrame, right: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The columns both sides have, less the bookkeeping ones; and notes on what is skipped."""
    notes = []
    only_a = [c for c in left.columns if c not in right.columns and not ignored(c)]
    only_b = [c for c in right.columns if c not in left.columns and not ignored(c)]
    if only_a:
        notes.append(f"not compared, only in A: {', '.join(only_a)}")
    if only_b:
        notes.append(f"not compared, only in B: {', '.join(only_b)}")
    return [c for c in left.columns if c in right.columns and not ignored(c)], notes


def column_change(
    column: str, x: object, y: object, numeric: set[str], tolerance: float
) -> Change | None:
    """The change of one column of a matched row: a number beyond ``tolerance``, else any
    difference in how the value reads; None when there is none."""
    if column in numeric:
        return numeric_change(column, x, y, tolerance)
    return None if show(x) == show(y) else Change(column, x, y)


def numeric_change(column: str, x: object, y: object, tolerance: float) -> Change | None:
    x, y = float(x), float(y)  # type: ignore[arg-type]
    if math.isnan(x) and math.isnan(y):
        return None
    if math.isnan(x) or math.isnan(y):
        return Change(column, x, y, math.nan)
    return None if abs(y - x) <= tolerance else Change(column, x, y, y - x)


def show(value: object) -> object:
    """A value as the report shows it: numbers to 6 significant digits, missing as empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def key_text(key: tuple) -> str:
    suite, seed, target, defense, attack, norm, eps = key
    budget = "" if float(eps) < 0 else f" eps {eps_text(eps)}"
    return f"{suite} seed {seed}: {model_name(str(target), str(defense))}, {attack}, {norm}{budget}"
