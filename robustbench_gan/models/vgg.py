"""VGG: stacks of 3x3 conv-BN-ReLU layers with max pooling between stages.

Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015, https://arxiv.org/abs/1409.1556 (configurations A, B, D and E of
its Table 1 are VGG-11, 13, 16 and 19), with batch normalization after every convolution
(Ioffe and Szegedy 2015, as torchvision's ``vgg*_bn``) and the small-image head of the
usual CIFAR-10 variant: global average pooling and one linear layer instead of the paper's
three fully connected layers of 4,096 units.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from torch import nn

from ..bounds import OneOf, Range, checked
from ..registry import CLASSIFIERS
from .base import Classifier

Width = Annotated[int, Range(1, whole=True)]
#: the paper's configurations, by their number of weight layers
Depth = Annotated[int, OneOf((11, 13, 16, 19))]

POOL = 0  # a max pool between two stages
#: each configuration's layers: a conv's channels as a multiple of ``width``, or POOL
CONFIGS: dict[int, tuple[int, ...]] = {
    11: (1, POOL, 2, POOL, 4, 4, POOL, 8, 8, POOL, 8, 8, POOL),
    13: (1, 1, POOL, 2, 2, POOL, 4, 4, POOL, 8, 8, POOL, 8, 8, POOL),
    16: (1, 1, POOL, 2, 2, POOL, 4, 4, 4, POOL, 8, 8, 8, POOL, 8, 8, 8, POOL),
    19: (1, 1, POOL, 2, 2, POOL, 4, 4, 4, 4, POOL, 8, 8, 8, 8, POOL, 8, 8, 8, 8, POOL),
}


def halving_pool(rows: int, cols: int) -> nn.Module:
    """A max pool of stride 2 along each side still at least 2 (rounding down, as VGG's 2x2
    pools) and of 1 along a side of 1; the identity once both sides are 1."""
    kernel = (2 if rows >= 2 else 1, 2 if cols >= 2 else 1)
    return nn.MaxPool2d(kernel) if kernel != (1, 1) else nn.Identity()


@CLASSIFIERS.register("vgg")
class VGG(Classifier):
    """VGG-``depth`` with batch norm: five stages of 3x3 conv-BN-ReLU layers of ``width``,
    2, 4, 8 and 8 times ``width`` channels (64 to 512 in the paper), each closed by a 2x2
    max pool -> global average pool -> linear -> logits.

    Any input size and channel count: a pool halves each side that is still at least 2 and
    leaves a side of 1 alone (32x32 reaches 1x1 after the five pools, as in the CIFAR-10
    variant; 8x8 after three, the last two pools doing nothing), and the global average
    pool makes the features ``8 * width`` values whatever is left.
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
        width: Width = 64,
        depth: Depth = 11,
    ) -> None:
        super().__init__(in_shape, num_classes, mean, std)
        self.depth = depth
        c_in, rows, cols = self.in_shape
        layers: list[nn.Module] = []
        for item in CONFIGS[depth]:
            if item == POOL:
                layers.append(halving_pool(rows, cols))
                rows, cols = max(1, rows // 2), max(1, cols // 2)
                continue
            c_out = item * width
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
            c_in = c_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.feature_dim = c_in
        self.head = nn.Linear(c_in, num_classes)
