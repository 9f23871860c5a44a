"""From a suite to a list of cells in dependency order.

A cell's id hashes its kind, its spec, its upstream ids, the data split's fingerprint and
the cache version, so a rerun finds every finished cell and a change anywhere upstream
invalidates exactly what depends on it. The planner names no kind of evaluation: it runs
the plan steps of every registered kind (``evaluations``) in stage order.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import UserError
from ..evaluations import EVALUATIONS
from ..evaluations.records import Record
from ..suite import Suite

CACHE_VERSION = 2  # bump when a cell's result format changes


@dataclass(frozen=True)
class Cell:
    """One unit of work: ``kind`` names the evaluation kind that runs it."""

    id: str
    kind: str
    label: str
    spec: Record
    deps: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelRef:
    """How to build one evaluated model: a trained classifier or a model defense over members.

    ``base`` and ``defense`` are the leaderboard's ``target`` and ``defense`` columns: the
    [[targets]] model a training defense was applied to ('a+b' for a model defense over
    members a and b), and the defense's label ('none' when undefended).
    """

    label: str
    base: str
    defense: str
    train_cell: str | None = None  # trained classifiers
    build: dict[str, Any] | None = None  # model defenses: {"defense": ..., "generator": ...}
    members: tuple[ModelRef, ...] = ()
    extra: tuple[str, ...] = ()  # other cells a model defense builds on (its generator)

    @property
    def cells(self) -> tuple[str, ...]:
        if self.train_cell is not None:
            return (self.train_cell,)
        return tuple(c for m in self.members for c in m.cells) + self.extra

    def to_json(self) -> dict[str, Any]:
        if self.train_cell is not None:
            return {"trained": self.train_cell}
        return {"build": self.build, "members": [m.to_json() for m in self.members]}


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


def cell_hash(kind: str, spec: dict[str, Any], deps: tuple[str, ...], data: str) -> str:
    payload = json.dumps(
        {"v": CACHE_VERSION, "kind": kind, "spec": spec, "deps": list(deps), "data": data},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def build_plan(suite: Suite, data_fingerprint: str, *, amp: bool = False) -> Plan:
    """Every cell the suite needs, upstream before downstream. ``amp`` (bfloat16 autocast in
    training) changes the trained weights, so the training kinds put it in their specs."""
    plan = Plan(data=data_fingerprint, amp=amp)
    steps = [
        (stage, position, index, step)
        for position, kind in enumerate(EVALUATIONS.ordered())
        for index, (stage, step) in enumerate(kind.plan_steps())
    ]
    for *_, step in sorted(steps, key=lambda s: s[:3]):
        step(suite, plan)
    plan.models = {label: plan.models[label] for label in suite.model_labels}  # suite order
    return plan
