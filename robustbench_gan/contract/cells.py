"""Cells: one unit of work each, named by a content hash, and what one gives back.

A cell's id hashes its kind, its spec, its upstream ids, the data split's fingerprint and
the cache version, so a rerun finds every finished cell and a change anywhere upstream
invalidates exactly what depends on it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .records import Record

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
class CellOutput:
    """A cell's JSON result and its named artifacts (bytes) for the store."""

    result: dict[str, Any]
    artifacts: dict[str, bytes] = field(default_factory=dict)


def cell_hash(kind: str, spec: dict[str, Any], deps: tuple[str, ...], data: str) -> str:
    payload = json.dumps(
        {"v": CACHE_VERSION, "kind": kind, "spec": spec, "deps": list(deps), "data": data},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class CellRecord:
    """A finished cell as the store holds it: its result and its artifacts' sha256."""

    id: str
    kind: str
    label: str
    spec: dict[str, Any]
    result: dict[str, Any]
    artifacts: dict[str, str]  # artifact name -> sha256
    seconds: float
