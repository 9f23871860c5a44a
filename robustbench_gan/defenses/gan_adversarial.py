"""Adversarial training on a dynamically trained AdvGAN: the classifier and the generator of
its adversarial examples learn together ("train the algorithm with the dynamically created
confrontation model"), after the adversarial-training-with-AdvGAN experiment of Xiao et al.,
IJCAI 2018 (Sec. 4.4), where the generator is updated against the current classifier
rather than trained once against a fixed one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..attacks.advgan import AdvGANTrainer
from ..attacks.base import frozen
from ..registry import DEFENSES
from .adversarial import check_eps, check_share, mixed_loss
from .base import TrainingDefense


@DEFENSES.register("gan_adversarial_training")
class GANAdversarialTraining(TrainingDefense):
    """Per training batch: ``g_steps`` AdvGAN updates (generator and its discriminator)
    against the current classifier, frozen in eval mode; then the classifier's loss
    ``alpha * CE(f(x), y) + (1 - alpha) * CE(f(x + G(x)), y)``.

    Unlike ``fgsm_at`` / ``pgd_at`` no gradient of the classifier is taken per example
    at training time beyond the generator's own update, so a batch costs about as much
    as FGSM training; the generator keeps adapting as the classifier hardens.

    Args:
        eps: the Linf budget of the generator's perturbations (default 0.3).
        alpha: weight of the clean term (default 0.5).
        g_steps: generator updates per classifier batch (default 1).
        width, lr, gan_weight, hinge_weight, hinge_bound: the AdvGAN generator's conv
            width (16), Adam learning rate (1e-3) and loss weights (1.0, 1.0, 0.8; see
            ``attacks.advgan``).
        seed: seeds the generator's initial weights.
    """

    def __init__(
        self,
        *,
        eps: float = 0.3,
        alpha: float = 0.5,
        g_steps: int = 1,
        width: int = 16,
        lr: float = 1e-3,
        gan_weight: float = 1.0,
        hinge_weight: float = 1.0,
        hinge_bound: float = 0.8,
        seed: int = 0,
    ) -> None:
        self.eps = check_eps(eps)
        self.alpha = check_share("alpha", alpha)
        if g_steps < 1 or width < 1 or lr <= 0 or min(gan_weight, hinge_weight, hinge_bound) < 0:
            raise ValueError("g_steps, width and lr must be positive, loss weights >= 0")
        self.g_steps, self.width, self.lr = g_steps, width, lr
        self.gan_weight, self.hinge_weight, self.hinge_bound = gan_weight, hinge_weight, hinge_bound
        self.seed = int(seed)
        self.trainer: AdvGANTrainer | None = None

    def _trainer(self, x: Tensor) -> AdvGANTrainer:
        if self.trainer is None:
            with torch.random.fork_rng(devices=[]):  # the classifier's random stream stays put
                torch.manual_seed(self.seed)
                self.trainer = AdvGANTrainer(
                    tuple(x.shape[1:]), self.eps, width=self.width, lr=self.lr,
                    alpha=self.gan_weight, beta=self.hinge_weight, hinge_bound=self.hinge_bound,
                    kappa=0.0, device=x.device,
                )  # fmt: skip
        return self.trainer

    def adversarial_examples(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """Update the generator against ``model`` and return ``x + G(x)`` for this batch."""
        trainer = self._trainer(x)
        with frozen(model):
            trainer.generator.train()
            for _ in range(self.g_steps):
                trainer.step(model, x, y)
        with torch.no_grad():
            return (x + trainer.generator(x)).clamp(0, 1)

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return mixed_loss(model, x, self.adversarial_examples(model, x, y), y, self.alpha)
