"""Names and columns shared by the leaderboard's writers and readers (docs/tables.md)."""

from __future__ import annotations

from typing import TypedDict

from .norms import DOMAIN_NORM
from .suite import WORST_CASE_LABEL as WORST_CASE


class LeaderboardRow(TypedDict, total=False):
    """One leaderboard row as the kinds build it (docs/tables.md has each column's meaning).

    The public columns are written to leaderboard.csv in this order; ``suite``, ``dataset``
    and ``seed`` are the run's, set on the whole frame. The ``_`` columns are what the kinds
    hand each other and ``benchmark()`` reads, never written: ``_correct`` and ``_clean`` the
    packed per-image outcomes (right after the attack, right before it), ``_black_box``
    whether the attack used no gradient, ``_model`` the model's suite label, ``_fooled_by``
    the part of a composite attack that fooled each image (None for a single attack)."""

    suite: str
    dataset: str
    target: str
    defense: str
    attack: str
    attack_params: str
    norm: str
    eps: float
    n_eval: int
    clean_acc: float
    robust_acc: float
    attack_success_rate: float
    mean_linf: float
    mean_l2: float
    seconds: float
    forward_passes: float
    backward_passes: float
    device: str
    seed: int
    flags: str
    versions: str
    cell_id: str
    _correct: str
    _clean: str
    _black_box: bool
    _model: str
    _fooled_by: list[str] | None


LEADERBOARD_COLUMNS = [c for c in LeaderboardRow.__annotations__ if not c.startswith("_")]
#: the leaderboard's columns for later kinds, never written (LeaderboardRow says what each is)
PRIVATE_COLUMNS = [c for c in LeaderboardRow.__annotations__ if c.startswith("_")]
#: leaderboard columns added after the first release: a CSV written before them still reads
#: (the values are then missing)
LATER_COLUMNS = ["forward_passes", "backward_passes"]
TRANSFER_COLUMNS = [
    "attack", "eps", "source", "target", "n_eval", "target_clean_acc", "target_robust_acc",
    "transfer_success_rate", "cell_id",
]  # fmt: skip
CURVE_KEYS = ["target", "defense", "attack", "norm"]
FLAG_TOLERANCE = 1e-6

__all__ = [
    "CURVE_KEYS",
    "DOMAIN_NORM",
    "FLAG_TOLERANCE",
    "LATER_COLUMNS",
    "LEADERBOARD_COLUMNS",
    "PRIVATE_COLUMNS",
    "LeaderboardRow",
    "TRANSFER_COLUMNS",
    "WORST_CASE",
]
