"""Ensembles of the suite's classifiers (logit or probability average)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..models.ensemble import ENSEMBLE_MODES, Ensemble
from ..registry import DEFENSES
from .base import ModelDefense


@DEFENSES.register("ensemble")
class EnsembleDefense(ModelDefense):
    """Average the members' logits (``mode = "logits"``) or probabilities (``"probs"``).

    White-box attacks see the ensemble's own differentiable output.
    """

    min_members = 2
    combines_members = True

    def __init__(self, *, mode: str = "logits") -> None:
        if mode not in ENSEMBLE_MODES:
            raise ValueError(f"mode must be one of {ENSEMBLE_MODES}, got {mode!r}")
        self.mode = mode

    def build(self, members: Sequence[nn.Module]) -> nn.Module:
        return Ensemble(members, mode=self.mode)
