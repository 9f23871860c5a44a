"""An ensemble of classifiers that is itself a differentiable classifier."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ENSEMBLE_MODES = ("logits", "probs", "vote")


class Ensemble(nn.Module):
    """Combine member outputs: ``logits`` averages logits; ``probs`` averages
    softmax probabilities and returns their log, so attacks see log-probabilities
    (valid logits up to a constant); ``vote`` predicts the majority vote of the
    members (ties go to the higher average probability) and, having no gradient,
    is attacked through the same probability average as ``probs``."""

    def __init__(self, members: Sequence[nn.Module], *, mode: str = "logits") -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        if mode not in ENSEMBLE_MODES:
            raise ValueError(f"mode must be one of {ENSEMBLE_MODES}, got {mode!r}")
        self.members = nn.ModuleList(members)
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        outputs = torch.stack([member(x) for member in self.members])
        if self.mode == "logits":
            return outputs.mean(0)
        return outputs.softmax(-1).mean(0).clamp_min(1e-12).log()

    def predict_labels(self, x: Tensor) -> Tensor:
        """Labels the ensemble outputs: its argmax, or the majority vote in ``vote`` mode."""
        outputs = torch.stack([member(x) for member in self.members])
        if self.mode != "vote":
            combined = outputs.mean(0) if self.mode == "logits" else outputs.softmax(-1).mean(0)
            return combined.argmax(1)
        votes = F.one_hot(outputs.argmax(-1), outputs.shape[-1]).sum(0).float()
        tie_break = outputs.softmax(-1).mean(0)  # < 1, so it only orders equal vote counts
        return (votes + tie_break).argmax(1)
