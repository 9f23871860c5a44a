"""Additive-noise randomization: fresh Gaussian noise on the input at every forward pass.

The input noise layer of Liu, Cheng, Zhang and Hsieh, "Towards Robust Neural Networks via
Random Self-ensemble", ECCV 2018, https://arxiv.org/abs/1712.00673 (RSE adds noise before
the first convolution; here before the classifier, which is trained normally, and without
RSE's inner noise layers and test-time ensemble). A randomized model gives an attacker one
noisy sample of its gradient per pass, which makes single-sample attacks look weak; Athalye,
Carlini and Wagner, "Obfuscated Gradients Give a False Sense of Security", ICML 2018,
https://arxiv.org/abs/1802.00420, attack such models with Expectation over Transformation
(EOT): average the gradient over many draws of the noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..bounds import Positive, Seed, checked
from ..errors import UserError
from ..registry import DEFENSES
from ..utils import torch_generator
from .base import ModelDefense


class NoisyInput(nn.Module):
    """``classifier(clip(x + sigma * n, 0, 1))`` with fresh ``n ~ N(0, I)`` per call, drawn
    from a private stream seeded with ``seed`` (the same seed gives the same sequence of
    outputs for the same sequence of inputs, whatever the global random state).

    ``randomized = True``: attacks should average gradients over draws (EOT).
    ``gradient_approximation()`` is ``None``: the front is differentiable (an addition and
    a clip), so the model's own gradient is the exact gradient of one draw, and EOT over it
    is the adaptive attack; nothing needs approximating.
    """

    randomized: ClassVar[bool] = True

    def __init__(self, classifier: nn.Module, sigma: float, seed: int) -> None:
        super().__init__()
        self.classifier = classifier
        self.sigma, self.seed = sigma, seed
        self.num_classes = getattr(classifier, "num_classes", None)
        self._rng: torch.Generator | None = None

    def _noise(self, x: Tensor) -> Tensor:
        if self._rng is None or self._rng.device != x.device:
            self._rng = torch_generator(self.seed, x.device)
        return torch.randn(x.shape, generator=self._rng, device=x.device, dtype=x.dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier((x + self.sigma * self._noise(x)).clamp(0, 1))

    def gradient_approximation(self) -> nn.Module | None:
        return None


@DEFENSES.register("random_noise")
class RandomNoise(ModelDefense):
    """Gaussian noise of standard deviation ``sigma`` added to the input of one classifier
    (``members = [label]``) at every forward pass, then clipped to [0, 1].

    Args:
        sigma: the noise's standard deviation on the [0, 1] pixel scale (default 0.3: a
            normally trained MNIST CNN keeps most of its clean accuracy).
        seed: seeds the noise's private random stream (the runner passes the suite's).
    """

    @checked
    def __init__(self, *, sigma: Positive = 0.3, seed: Seed = 0) -> None:
        self.sigma, self.seed = float(sigma), int(seed)

    def build(self, members: Sequence[nn.Module]) -> nn.Module:
        if len(members) != 1:
            raise UserError("random_noise wraps exactly one classifier (members = [label])")
        return NoisyInput(members[0], self.sigma, self.seed)
