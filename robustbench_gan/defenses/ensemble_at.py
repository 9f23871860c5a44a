"""Ensemble adversarial training: Tramèr, Kurakin, Papernot, Goodfellow, Boneh &
McDaniel, "Ensemble Adversarial Training: Attacks and Defenses", ICLR 2018,
https://arxiv.org/abs/1705.07204.

Adversarial examples are crafted not only on the model being trained but also on
static, pre-trained models, which decouples the examples from the trained
model's own (possibly masked) gradients and so improves robustness to transferred
black-box attacks. The objective is Goodfellow et al.'s mix,
``alpha * CE(f(x)) + (1 - alpha) * CE(f(x_adv))``, with ``x_adv`` crafted on the
source chosen for the batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from torch import Tensor, nn

from ..registry import DEFENSES
from .adversarial import NO_PARAMS, AdversarialTraining, craft


@DEFENSES.register("ensemble_at")
class EnsembleAdversarialTraining(AdversarialTraining):
    """Adversarial training whose examples come in turn from the trained and static models.

    Sources are used round-robin, one per training batch: the model being trained,
    then each static model in the order given, then the trained model again (the
    paper alternates the source per batch; a fixed rotation uses every source
    equally and needs no random stream). Examples are crafted in eval mode on
    the source (see ``AdversarialTraining``); static models stay in eval mode,
    get no gradients and are never updated.

    Args:
        static_models: pre-trained classifiers, already on the training device
            (the suite names them with ``static = ["label", ...]``); at least one.
        eps: training budget on the [0, 1] scale (default 0.3, MNIST).
        alpha: weight of the clean term (default 0.5, as in the paper).
        attack: registered attack that crafts the examples (default ``"fgsm"``,
            the paper's MNIST choice; it used Step-LL on ImageNet).
        attack_params: the attack's keyword arguments.
        seed: seeds the attack's random stream.
    """

    needs_static_models: ClassVar[bool] = True

    def __init__(
        self,
        *,
        static_models: Sequence[nn.Module],
        eps: float = 0.3,
        alpha: float = 0.5,
        attack: str = "fgsm",
        attack_params: Mapping[str, Any] = NO_PARAMS,
        seed: int = 0,
    ) -> None:
        super().__init__(
            attack=attack, attack_params=attack_params, eps=eps, alpha=alpha, seed=seed
        )
        self.static_models = tuple(static_models)
        if not self.static_models:
            raise ValueError("ensemble_at needs at least one static pre-trained model")
        for static in self.static_models:
            static.eval()
        self.batches_seen = 0

    def source(self, model: nn.Module) -> nn.Module:
        """The model to craft the next batch's examples on (advances the rotation)."""
        sources = (model, *self.static_models)
        chosen = sources[self.batches_seen % len(sources)]
        self.batches_seen += 1
        return chosen

    def adversarial_examples(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return craft(self.attack, self.source(model), x, y, self.eps)
