"""The result tables of a run: named data frames the kinds add to or extend, in the order
their declared dependencies give. Schemas: docs/tables.md. Every number column holds numbers
(NaN where a value is undefined), never strings; columns whose names start with ``_`` are
for later stages and are not written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd


class UndeclaredTable(LookupError):
    """A kind touched a table it did not declare (``makes``, ``extends``, ``reads``): its
    place in the order would be luck."""


class Tables:
    """Named data frames; those given a file name are written as CSV files."""

    def __init__(self) -> None:
        self._frames: dict[str, pd.DataFrame] = {}
        self._files: dict[str, str] = {}
        self.documents: dict[str, Any] = {}  # file name -> JSON-ready object (model cards)
        self._scope: tuple[str, frozenset[str], frozenset[str]] | None = None

    def scoped(self, owner: str, readable: Iterable[str], writable: Iterable[str]) -> Tables:
        """The same tables as one kind may use them: reading a table outside ``readable``
        or setting one outside ``writable`` raises UndeclaredTable."""
        view = Tables.__new__(Tables)
        view._frames, view._files, view.documents = self._frames, self._files, self.documents
        view._scope = (owner, frozenset(readable), frozenset(writable))
        return view

    def _check(self, name: object, writing: bool = False) -> None:
        if self._scope is None:
            return
        owner, readable, writable = self._scope
        if name not in (writable if writing else readable):
            verb = "writes" if writing else "reads"
            raise UndeclaredTable(
                f"kind {owner!r} {verb} table {name!r} without declaring it "
                f"({'makes or extends' if writing else 'makes, extends or reads'})"
            )

    def set(self, name: str, frame: pd.DataFrame, *, csv: str | None = None) -> None:
        """Add or replace table ``name``; ``csv`` is its file name in the output folder."""
        self._check(name, writing=True)
        self._frames[name] = frame
        if csv is not None:
            self._files[name] = csv

    def __getitem__(self, name: str) -> pd.DataFrame:
        self._check(name)
        return self._frames[name]

    def __contains__(self, name: object) -> bool:
        self._check(name)
        return name in self._frames

    def __getattr__(self, name: str) -> pd.DataFrame:
        frames = self.__dict__.get("_frames", {})
        if name in frames:
            self._check(name)
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
