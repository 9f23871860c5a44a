"""Training on real data plus labelled samples of a class-conditional generator,
optionally adversarially: Gowal, Rebuffi, Wiles, Stimberg, Calian & Mann,
"Improving Robustness using Generated Data", NeurIPS 2021,
https://arxiv.org/abs/2110.09468.

Each training batch keeps its real images and adds freshly generated ones, so
that generated samples make up ``share`` of the batch (share 0.5: as many
generated as real; Gowal et al. found 0.3 to 0.7 best). Labels of the generated
images are the classes they were conditioned on. Without ``attack`` the model
learns from plain cross-entropy on the mixed batch; with one (the paper: PGD,
``alpha = 0``) the objective is ``AdversarialTraining``'s on the mixed batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..registry import DEFENSES
from .adversarial import NO_PARAMS, AdversarialTraining
from .base import TrainingDefense


@DEFENSES.register("gan_augment")
class GanAugment(TrainingDefense):
    """Mix generated samples into every batch; adversarial training on it if ``attack``.

    Args:
        generator: the suite's class-conditional GAN (set by the runner).
        share: fraction of each batch that is generated, in [0, 1).
        attack: a registered attack name for adversarial training, or None
            (default) for standard training on the mixed batch.
        attack_params, eps, alpha, seed: as for ``AdversarialTraining``; used only
            with ``attack`` (defaults: eps 0.3, adversarial examples only).
    """

    needs_generator = True

    def __init__(
        self,
        *,
        generator: nn.Module,
        share: float = 0.5,
        attack: str | None = None,
        attack_params: Mapping[str, Any] = NO_PARAMS,
        eps: float = 0.3,
        alpha: float = 0.0,
        seed: int = 0,
    ) -> None:
        if isinstance(share, bool) or not 0 <= share < 1:
            raise ValueError(f"share must be in [0, 1), got {share!r}")
        if not getattr(generator, "conditional", False):
            raise ValueError("gan_augment needs a class-conditional generator (e.g. cdcgan)")
        self.generator = generator
        self.share = float(share)
        self.adversarial = (
            AdversarialTraining(
                attack=attack, attack_params=attack_params, eps=eps, alpha=alpha, seed=seed
            )
            if attack is not None
            else None
        )

    def batch(self, x: Tensor, y: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        n_fake = round(len(x) * self.share / (1 - self.share))
        if n_fake == 0:
            return x, y
        labels = torch.randint(0, self.generator.num_classes, (n_fake,), generator=rng)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=rng))
        fake = self.generator.sample(n_fake, labels=labels, seed=seed).to(x.device)
        return torch.cat([x, fake]), torch.cat([y, labels.to(y.device)])

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        if self.adversarial is None:
            return super().loss(model, x, y)
        return self.adversarial.loss(model, x, y)
