"""ResNet-18, CIFAR variant (He et al. 2016): 3x3 stem, no max pool, four stages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from torch import Tensor, nn

from ..registry import CLASSIFIERS
from .base import Classifier


class BasicBlock(nn.Module):
    """Two 3x3 convs with batch norm and an identity (or 1x1 projection) shortcut."""

    #: the submodules whose outputs are residual branches, added to the shortcut: the skip
    #: gradient method (attacks/sgm.py) scales the gradient flowing back into them
    residual_branch_ends: ClassVar[tuple[str, ...]] = ("bn2",)

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


@CLASSIFIERS.register("resnet18")
class ResNet18(Classifier):
    """ResNet-18 for small images: stages of 2 blocks at widths w, 2w, 4w, 8w."""

    def __init__(
        self,
        *,
        in_shape: Sequence[int],
        num_classes: int = 10,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        width: int = 64,
    ) -> None:
        super().__init__(in_shape, num_classes, mean, std)
        layers: list[nn.Module] = [
            nn.Conv2d(self.in_shape[0], width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        ]
        c_in = width
        for stage, c_out in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if stage == 0 else 2
            layers += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)]
            c_in = c_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.feature_dim = c_in
        self.head = nn.Linear(c_in, num_classes)
