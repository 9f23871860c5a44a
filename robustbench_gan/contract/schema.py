"""Names and columns shared by the leaderboard's writers and readers (docs/tables.md)."""

from __future__ import annotations

from typing import TypedDict

import pandas as pd

from .norms import DOMAIN_NORM
from .suite import WORST_CASE_LABEL as WORST_CASE


class LeaderboardRow(TypedDict, total=False):
    """One leaderboard row as the kinds build it (docs/tables.md has each column's meaning).

    The public columns are written to leaderboard.csv in this order; ``suite``, ``dataset``
    and ``seed`` are the run's, set on the whole frame. The ``_`` columns are what the kinds
    hand each other and ``benchmark()`` reads, never written: ``_correct`` and ``_clean`` the
    packed per-image outcomes (right after the attack, right before it), ``_black_box``
    whether the attack used no gradient, ``_model`` the model's suite label, ``_fooled_by``
    the part of a composite attack that fooled each image (None for a single attack), ``_silent``
    the packed images whose attack path held an adversarial point it did not return ("" where
    the attack does not say)."""

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
    indicators: str
    versions: str
    cell_id: str
    _correct: str
    _clean: str
    _black_box: bool
    _model: str
    _fooled_by: list[str] | None
    _silent: str


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
#: the model card's fields beside the adversarial figures (model_cards.json, docs/tables.md):
#: its common-corruption and its certified robustness, each filled where the suite ran the
#: kind of evaluation of that name; and the suite tables (`benchmark()`'s arguments, `rbg
#: eval`'s options) that ask for them, in the same order
CARD_SECTION_KEYS = ("corruptions", "certified")
ROBUSTNESS_TABLE_KEYS = ("corruptions", "certify")
#: the transfer grid's per-image outcomes (evaluations/transfer_grid.py; `rbg compare` reads it)
GRID_IMAGES = "transfer_grid_images.csv"

#: columns renamed since the first release: old name -> new name (a CSV written before
#: still reads, under the new name: :func:`upgrade_board`)
RENAMED_COLUMNS = {"flags": "indicators"}
#: values of the ``indicators`` column renamed with it (the audit's names before the
#: indicators of attack failure; each successor fires wherever its predecessor did)
RENAMED_INDICATORS = {
    "zero_gradients": "unavailable_gradients",
    "nondeterministic": "unstable_predictions",
    "unbounded_attack_fails": "unconstrained_attack_failure",
}


def upgrade_board(frame: pd.DataFrame) -> pd.DataFrame:
    """A leaderboard read from a CSV written before the renames, under today's names (a
    frame with today's names is returned as it is)."""
    old = [c for c in RENAMED_COLUMNS if c in frame.columns and RENAMED_COLUMNS[c] not in frame]
    if not old:
        return frame
    frame = frame.rename(columns={c: RENAMED_COLUMNS[c] for c in old})
    if "flags" in old:
        frame["indicators"] = frame["indicators"].map(renamed_indicators)
    return frame


def renamed_indicators(value: object) -> object:
    if not isinstance(value, str):
        return value
    return ";".join(RENAMED_INDICATORS.get(name, name) for name in value.split(";"))


FLAG_TOLERANCE = 1e-6

__all__ = [
    "CURVE_KEYS",
    "DOMAIN_NORM",
    "FLAG_TOLERANCE",
    "LATER_COLUMNS",
    "LEADERBOARD_COLUMNS",
    "PRIVATE_COLUMNS",
    "RENAMED_COLUMNS",
    "RENAMED_INDICATORS",
    "LeaderboardRow",
    "GRID_IMAGES",
    "TRANSFER_COLUMNS",
    "WORST_CASE",
    "upgrade_board",
]
