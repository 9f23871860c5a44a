"""Per-image outcomes behind a run's leaderboard rows, read from its samples.csv where known."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..contract.schema import WORST_CASE
from .intervals import correct_count

SAMPLES = "samples.csv"
COLUMNS = [
    "target", "defense", "norm", "eps", "image", "label", "clean_pred", "broken_by", "robust",
]  # fmt: skip


@dataclass(frozen=True)
class Outcomes:
    """Which images a row's model got right (``correct``, in image order), and the labels of
    those images (``labels``): two runs' outcomes pair up when their labels are the same."""

    labels: tuple[int, ...]
    correct: np.ndarray


class RunOutcomes:
    """The per-image outcomes of one run (samples.csv: per model, norm and eps > 0, the first
    attack that broke each image, attacks in suite order)."""

    def __init__(self, samples: pd.DataFrame) -> None:
        samples = samples.sort_values("image", kind="stable")
        self.groups = {
            (str(t), str(d), str(n), float(e)): group
            for (t, d, n, e), group in samples.groupby(
                ["target", "defense", "norm", "eps"], sort=False
            )
        }

    def clean(self, target: str, defense: str, accuracy: float, n: float) -> Outcomes | None:
        """Per image, whether the model classified it right unattacked (from any of its
        budgets: the images and the model are the same)."""
        for (t, d, _, _), group in self.groups.items():
            if (t, d) == (target, defense):
                right = group["clean_pred"].to_numpy() == group["label"].to_numpy()
                return checked(group, right, accuracy, n)
        return None

    def robust(
        self, row: dict[str, object], attack: str, accuracy: float, n: float
    ) -> Outcomes | None:
        """Per image, whether the row's model still classified it right after the row's attack:
        for the worst case (or a norm's only attack) samples.csv's ``robust``; for one attack,
        right when clean and not broken by that attack, which is exact only where no earlier
        attack broke an image this one breaks too, so the count is checked against the row's
        accuracy (equal counts of a superset of the true set mean the same set); None where
        it does not match or the row has no samples."""
        key = (str(row["target"]), str(row["defense"]), str(row["norm"]), float(row["eps"]))
        group = self.groups.get(key)
        if group is None:
            return None
        if attack == WORST_CASE:
            return checked(group, group["robust"].to_numpy() == 1, accuracy, n)
        broken_by = group["broken_by"].astype(str)
        broke = (broken_by == attack) | broken_by.str.startswith(f"{attack}: ")
        clean = group["clean_pred"].to_numpy() == group["label"].to_numpy()
        return checked(group, clean & ~broke.to_numpy(), accuracy, n)


def checked(group: pd.DataFrame, right: np.ndarray, accuracy: float, n: float) -> Outcomes | None:
    """The outcomes, if they are as many images as the row's ``n`` and as many right as its
    accuracy says; else None (samples.csv of another run, or not this row's attack)."""
    if len(right) != n or int(right.sum()) != correct_count(accuracy, n):
        return None
    return Outcomes(tuple(int(v) for v in group["label"]), right.astype(bool))


def run_outcomes(path: str | Path) -> RunOutcomes | None:
    """The per-image outcomes of the run at ``path`` (a run folder or its leaderboard.csv),
    or None without a readable samples.csv (a published leaderboard has none)."""
    path = Path(path)
    if path.is_dir():
        file = path / SAMPLES
    elif path.name == "leaderboard.csv":
        file = path.parent / SAMPLES
    else:
        return None
    if not file.is_file():
        return None
    try:
        samples = pd.read_csv(file, keep_default_na=False, na_values={"eps": [""]})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return None
    if [c for c in COLUMNS if c not in samples.columns] or not len(samples):
        return None
    samples = samples.assign(
        target=samples["target"].astype(str),
        defense=samples["defense"].astype(str),
        norm=samples["norm"].astype(str),
        eps=pd.to_numeric(samples["eps"], errors="coerce"),
        robust=pd.to_numeric(samples["robust"], errors="coerce"),
    )
    return RunOutcomes(samples)


def paired(a: Outcomes | None, b: Outcomes | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Both outcomes, when both are known for the same images (same labels in the same order)."""
    if a is None or b is None or a.labels != b.labels:
        return None
    return a.correct, b.correct
