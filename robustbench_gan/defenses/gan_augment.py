"""Training on real data plus labelled samples of a class-conditional generator.

Each training batch keeps its real images and adds freshly generated ones, so
that generated samples make up ``share`` of the batch (share 0.5: as many
generated as real). Labels of the generated images are the classes they were
conditioned on. In the spirit of Gowal et al. 2021 ("Improving robustness using
generated data"), here without the adversarial part (see ``fgsm_at``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import DEFENSES
from .base import TrainingDefense


@DEFENSES.register("gan_augment")
class GanAugment(TrainingDefense):
    """``generator`` is the suite's conditional GAN (it must have ``conditional``)."""

    needs_generator = True

    def __init__(self, *, generator: nn.Module, share: float = 0.5) -> None:
        if not 0 <= share < 1:
            raise ValueError(f"share must be in [0, 1), got {share}")
        if not getattr(generator, "conditional", False):
            raise ValueError("gan_augment needs a class-conditional generator (e.g. cdcgan)")
        self.generator = generator
        self.share = share

    def batch(self, x: Tensor, y: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        n_fake = round(len(x) * self.share / (1 - self.share))
        if n_fake == 0:
            return x, y
        labels = torch.randint(0, self.generator.num_classes, (n_fake,), generator=rng)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=rng))
        fake = self.generator.sample(n_fake, labels=labels, seed=seed).to(x.device)
        return torch.cat([x, fake]), torch.cat([y, labels.to(y.device)])
