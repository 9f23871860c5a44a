"""k-winners-take-all: a CNN whose activation keeps each layer's k largest units.

Xiao, Zhong and Zheng, "Enhancing Adversarial Defense by k-Winners-Take-All", ICLR 2020,
https://arxiv.org/abs/1905.10510 (code: https://github.com/a554b554/kWTA-Activation). The
activation is discontinuous in the input (a unit that enters or leaves the top k jumps), so
gradients are uninformative a short step away. Tramèr, Carlini, Brendel and Madry, "On
Adaptive Attacks to Adversarial Example Defenses", NeurIPS 2020,
https://arxiv.org/abs/2002.08347, broke it with PGD on the logit margin whose gradient is
estimated by finite differences along Gaussian directions (the gradient of a smoothed
loss), which is the attacker's business: the model declares no gradient approximation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import torch
from torch import Tensor, nn

from ..bounds import Range, checked
from ..registry import CLASSIFIERS
from .base import Classifier

#: the share of a layer's units kept, in (0, 1]
Sparsity = Annotated[float, Range(0, 1, open_low=True)]
Width = Annotated[int, Range(1, whole=True)]


class KWinnersTakeAll(nn.Module):
    """Keep, per sample, the ``k = max(1, int(sparsity * units))`` largest activations of
    the whole layer (all channels and positions together, the paper's ``vol`` variant for
    convolutions) and zero the rest. Ties at the k-th value are all kept, as in the
    paper's code. Gradients flow through the kept units only."""

    def __init__(self, sparsity: float) -> None:
        super().__init__()
        self.sparsity = sparsity

    def forward(self, x: Tensor) -> Tensor:
        flat = x.flatten(1)
        k = max(1, int(self.sparsity * flat.shape[1]))
        kth = flat.topk(k, dim=1).values[:, -1:]
        return (flat * (flat >= kth)).view_as(x)

    def extra_repr(self) -> str:
        return f"sparsity={self.sparsity}"


@CLASSIFIERS.register("kwta_cnn")
class KWTACNN(Classifier):
    """conv(w) -> conv(w, stride 2) -> conv(2w) -> conv(2w, stride 2) -> fc(hidden) ->
    logits, each hidden layer followed by k-WTA instead of ReLU.

    The paper's MNIST network (``SparseMNIST_CNN``: channels 32, 32, 64, 64 and k-WTA on
    every layer) with a narrower fully connected layer (``hidden``, 20,000 in the paper).
    ``sparsity`` is the paper's gamma, the share of units kept (0.1 by default, the value
    of its main CIFAR-10 models and the one Tramèr et al. attacked). Any input size and
    channel count: the fully connected layer is sized from the input shape.
    """

    #: the forward pass draws no random numbers (read by the attacks, contract/surface.py)
    randomized = False

    @checked
    def __init__(
        self,
        *,
        in_shape: Sequence[int],
        num_classes: int = 10,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        sparsity: Sparsity = 0.1,
        width: Width = 32,
        hidden: Width = 512,
    ) -> None:
        super().__init__(in_shape, num_classes, mean, std)
        self.sparsity = sparsity
        conv = nn.Sequential(
            nn.Conv2d(self.in_shape[0], width, 3, padding=1),
            KWinnersTakeAll(sparsity),
            nn.Conv2d(width, width, 3, padding=1, stride=2),
            KWinnersTakeAll(sparsity),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            KWinnersTakeAll(sparsity),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1, stride=2),
            KWinnersTakeAll(sparsity),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = conv(torch.zeros(1, *self.in_shape)).shape[1]
        self.body = nn.Sequential(conv, nn.Linear(flat, hidden), KWinnersTakeAll(sparsity))
        self.feature_dim = hidden
        self.head = nn.Linear(hidden, num_classes)

    def gradient_approximation(self) -> None:
        """None: no differentiable module computes this classifier. The jumps are in the
        function itself, not in a front that a smooth stand-in could replace (BPDA); a
        ReLU network with the same weights is another classifier. What works is on the
        attacker's side: the gradient of the loss smoothed over small Gaussian input noise
        (Tramèr et al. 2020), estimated by sampling."""
        return None
