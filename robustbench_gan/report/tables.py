"""The result tables of a run, assembled by the kinds of evaluation from the finished cells.

Each registered kind adds or extends data frames in ``table_stage`` order (the attack kind
starts the leaderboard, the domain-shift kind appends its rows, the audit kind flags them,
...). Schemas: docs/tables.md. Every number column holds numbers (NaN where a value is
undefined), never strings; columns whose names start with ``_`` are for later stages and
are not written.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..evaluations import EVALUATIONS
from ..suite import Suite
from .results import Results


class Tables:
    """Named data frames; those given a file name are written as CSV files."""

    def __init__(self) -> None:
        self._frames: dict[str, pd.DataFrame] = {}
        self._files: dict[str, str] = {}
        self.documents: dict[str, Any] = {}  # file name -> JSON-ready object (model cards)

    def set(self, name: str, frame: pd.DataFrame, *, csv: str | None = None) -> None:
        """Add or replace table ``name``; ``csv`` is its file name in the output folder."""
        self._frames[name] = frame
        if csv is not None:
            self._files[name] = csv

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self._frames[name]

    def __contains__(self, name: object) -> bool:
        return name in self._frames

    def __getattr__(self, name: str) -> pd.DataFrame:
        frames = self.__dict__.get("_frames", {})
        if name in frames:
            return frames[name]
        raise AttributeError(name)

    def csv_files(self) -> dict[str, pd.DataFrame]:
        """File name -> frame as written (private ``_`` columns dropped); a table the suite
        has nothing for (no rows) is not written."""
        out = {}
        for name, file in self._files.items():
            frame = self._frames[name]
            if len(frame):
                out[file] = frame.drop(columns=[c for c in frame.columns if str(c).startswith("_")])
        return out

    def empty_files(self) -> list[str]:
        """The file names of tables without rows (a previous run's copy is removed)."""
        return [file for name, file in self._files.items() if not len(self._frames[name])]


def build_tables(suite: Suite, results: Results) -> Tables:
    """Every kind's tables, in table-stage order."""
    tables = Tables()
    for kind in sorted(EVALUATIONS.ordered(), key=lambda k: k.table_stage):
        kind.tables(suite, results, tables)
    return tables
