"""Names and columns shared by the leaderboard's writers and readers (docs/tables.md)."""

from __future__ import annotations

from .norms import DOMAIN_NORM
from .suite import WORST_CASE_LABEL as WORST_CASE

LEADERBOARD_COLUMNS = [
    "suite", "dataset", "target", "defense", "attack", "attack_params", "norm", "eps",
    "n_eval", "clean_acc", "robust_acc", "attack_success_rate", "mean_linf", "mean_l2",
    "seconds", "forward_passes", "backward_passes", "device", "seed", "flags", "versions",
    "cell_id",
]  # fmt: skip
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
    "TRANSFER_COLUMNS",
    "WORST_CASE",
]
