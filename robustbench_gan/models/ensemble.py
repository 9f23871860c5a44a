"""An ensemble of classifiers that is itself a differentiable classifier."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ENSEMBLE_MODES = ("logits", "probs", "vote")
#: how an attacker's ensemble of surrogates is fused (Dong et al., CVPR 2018, compare the
#: three; Liu et al., ICLR 2017, fuse probabilities): one more mode than a defense has
SURROGATE_FUSIONS = {"logits": "logits", "probabilities": "probs", "loss": "loss"}


class Ensemble(nn.Module):
    """Combine member outputs: ``logits`` averages logits; ``probs`` averages
    softmax probabilities and returns their log, so attacks see log-probabilities
    (valid logits up to a constant); ``vote`` predicts the majority vote of the
    members (ties go to the higher average probability) and, having no gradient,
    is attacked through the same probability average as ``probs``; ``loss`` (an attacker's
    surrogate ensemble) predicts as ``logits`` and gives attacks the members' mean
    cross-entropy (:meth:`cross_entropy`, read by the attack base)."""

    def __init__(self, members: Sequence[nn.Module], *, mode: str = "logits") -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        if mode not in (*ENSEMBLE_MODES, "loss"):
            raise ValueError(f"mode must be one of {(*ENSEMBLE_MODES, 'loss')}, got {mode!r}")
        self.members = nn.ModuleList(members)
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        outputs = torch.stack([member(x) for member in self.members])
        if self.mode in ("logits", "loss"):
            return outputs.mean(0)
        return outputs.softmax(-1).mean(0).clamp_min(1e-12).log()

    @property
    def fuses_losses(self) -> bool:
        """Attacks should take the members' mean loss, not the loss of the fused output."""
        return self.mode == "loss"

    def cross_entropy(self, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """The members' cross-entropies on ``labels``, averaged over members and summed over
        the batch, and the fused (mean) logits."""
        outputs = torch.stack([member(x) for member in self.members])
        losses = [F.cross_entropy(out, labels, reduction="sum") for out in outputs]
        return torch.stack(losses).mean(), outputs.mean(0)

    def predict_labels(self, x: Tensor) -> Tensor:
        """Labels the ensemble outputs: its argmax, or the majority vote in ``vote`` mode."""
        outputs = torch.stack([member(x) for member in self.members])
        if self.mode != "vote":
            fused = self.mode in ("logits", "loss")
            combined = outputs.mean(0) if fused else outputs.softmax(-1).mean(0)
            return combined.argmax(1)
        votes = F.one_hot(outputs.argmax(-1), outputs.shape[-1]).sum(0).float()
        tie_break = outputs.softmax(-1).mean(0)  # < 1, so it only orders equal vote counts
        return (votes + tie_break).argmax(1)
