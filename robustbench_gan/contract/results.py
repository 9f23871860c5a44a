"""The finished cells of a run as the tables step sees them: no store, no plan.

The runner gathers these from its store once every cell has finished (``runner.collect``);
the tables and the report read nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelInfo:
    """An evaluated model: its suite label and its leaderboard ``target`` and ``defense``."""

    label: str
    base: str
    defense: str
    architecture: str = ""  # the classifier's name (members joined by '+' for a model defense)
    networks: int = 1  # classifier networks one prediction runs (an ensemble's members)
    weights_sha256: str | None = None  # of its trained weights or loaded file


@dataclass(frozen=True)
class Finished:
    """One finished cell: its id, spec and result (JSON) and the artifacts the report reads."""

    cell_id: str
    spec: dict[str, Any]
    result: dict[str, Any]
    artifacts: dict[str, bytes] = field(default_factory=dict)
    artifact_sha256: dict[str, str] = field(default_factory=dict)  # every artifact, by name


@dataclass(frozen=True)
class Results:
    """Every finished cell of a run by kind and key (the key a kind planned it under), and
    the evaluated models in suite order."""

    models: dict[str, ModelInfo]
    cells: dict[str, dict[Any, Finished]]
    num_classes: int = 0  # of the dataset (0: unknown)
    dataset: str = ""  # DataSplit.source ('': the suite's dataset name says it)
    versions: str = ""  # of the library and its dependencies

    def of(self, kind: str) -> dict[Any, Finished]:
        return self.cells.get(kind, {})
