"""The plan: every cell of a run in dependency order, the models it evaluates, and each
kind's index of its cells (the kinds add to it; ``runner.plan.build_plan`` runs their steps).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass, field
from typing import Any

from ..errors import UserError
from .cells import Cell, ModelRef, cell_hash
from .kinds import EVALUATIONS
from .records import Record


@dataclass
class Plan:
    """The cells of a run, the models it evaluates, and each kind's index of its cells."""

    data: str = ""  # the data split's fingerprint, part of every cell id
    amp: bool = False  # bfloat16 autocast in training
    cells: list[Cell] = field(default_factory=list)
    models: dict[str, ModelRef] = field(default_factory=dict)
    index: dict[str, dict[Any, str]] = field(default_factory=dict)  # kind -> key -> cell id
    keys: dict[str, tuple[Any, str]] = field(default_factory=dict)  # cell id -> key, label

    def add(self, kind: str, key: Any, label: str, spec: Record, deps: tuple[str, ...]) -> str:
        """Add a cell of ``kind`` that the kind finds again under ``key``; returns its id.

        One cell under two keys is refused now, before anything runs: it comes of entries
        that differ only in labels (which enter no id), and one key's results would vanish
        from the tables after the whole run (the suite refuses the usual cases first)."""
        cell_id = cell_hash(kind, spec.to_json(), deps, self.data)
        first_key, first_label = self.keys.setdefault(cell_id, (key, label))
        if first_key != key:
            raise UserError(
                f"{first_label!r} and {label!r} are one computation under two labels (a label "
                "enters no cell id): keep one of the entries behind them"
            )
        self.cells.append(Cell(cell_id, kind, label, spec, deps))
        self.index.setdefault(kind, {})[key] = cell_id
        return cell_id

    def cells_of(self, kind: str) -> dict[Any, str]:
        """Key -> cell id of every cell of ``kind``, in planning order."""
        return self.index.get(kind, {})

    def by_kind(self, kind: str) -> list[Cell]:
        return [c for c in self.cells if c.kind == kind]

    def only(self, *patterns: str) -> Plan:
        """This plan cut to the cells every pattern selects and the cells they build on (in
        plan order); UserError when none is selected. ``NAME=GLOB`` matches a column of the
        cells (``kind``, or a part of a kind's key as its ``key_columns`` names it: ``model``,
        ``attack``, ...); any other pattern is shell-style on the label. A cell without the
        column is not selected: ``model=X`` takes no transfer cell (``source``, ``receiver``)."""
        columns, names = self.columns(), column_names()
        wanted = {
            c.id
            for c in self.cells
            if all(selects(p, c.label, columns[c.id], names) for p in patterns)
        }
        if not wanted:
            said = " ".join(f"--only {p!r}" for p in patterns)
            raise UserError(
                f"{said} matches no cell (see --dry-run for labels; columns: "
                f"{', '.join(sorted(names))})"
            )
        deps = {c.id: c.deps for c in self.cells}
        todo = list(wanted)
        while todo:
            for dep in deps[todo.pop()]:
                if dep not in wanted:
                    wanted.add(dep)
                    todo.append(dep)
        return self.part(wanted)

    def part(self, ids: set[str]) -> Plan:
        """This plan cut to the cells in ``ids`` (in plan order), with the index entries and
        the models (those whose cells are all kept) that remain."""
        index = {}
        for kind, found in self.index.items():
            kept = {key: cell_id for key, cell_id in found.items() if cell_id in ids}
            if kept:
                index[kind] = kept
        return dataclasses.replace(
            self,
            cells=[c for c in self.cells if c.id in ids],
            models={k: m for k, m in self.models.items() if all(c in ids for c in m.cells)},
            index=index,
        )

    def columns(self) -> dict[str, dict[str, str]]:
        """Cell id -> its columns: ``kind`` and the named parts of its key."""
        out: dict[str, dict[str, str]] = {c.id: {"kind": c.kind} for c in self.cells}
        for kind, found in self.index.items():
            names = EVALUATIONS.get(kind).key_columns
            for key, cell_id in found.items():
                parts = key if isinstance(key, tuple) else (key,)
                named = {n: str(v) for n, v in zip(names, parts) if v is not None}
                out.setdefault(cell_id, {"kind": kind}).update(named)
        return out


def column_names() -> set[str]:
    """Every column ``--only NAME=GLOB`` may name."""
    return {"kind"} | {name for kind in EVALUATIONS.ordered() for name in kind.key_columns}


def selects(pattern: str, label: str, columns: dict[str, str], names: set[str]) -> bool:
    """Whether ``--only pattern`` takes a cell of this label and these columns (``NAME=GLOB``
    where NAME is one of ``names``, else a label pattern)."""
    name, is_column, glob = pattern.partition("=")
    if is_column and name.strip() in names:
        value = columns.get(name.strip())
        return value is not None and fnmatch.fnmatchcase(value, glob.strip())
    return fnmatch.fnmatchcase(label, pattern)
