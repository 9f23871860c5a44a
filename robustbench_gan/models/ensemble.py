"""An ensemble of classifiers that is itself a differentiable classifier."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

ENSEMBLE_MODES = ("logits", "probs")


class Ensemble(nn.Module):
    """Combine member outputs: ``logits`` averages logits; ``probs`` averages
    softmax probabilities and returns their log, so attacks see log-probabilities
    (valid logits up to a constant)."""

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
