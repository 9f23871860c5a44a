"""Random resizing and padding: a fresh random geometric transform of the input at every pass.

Xie, Wang, Zhang, Ren and Yuille, "Mitigating Adversarial Effects Through Randomization",
ICLR 2018, https://arxiv.org/abs/1711.01991: the H x W image is resized to a random
``(H + e) x (W + e)``, ``e`` uniform in ``0..max_extra`` (nearest neighbour, as their code),
and zero-padded to ``(H + max_extra) x (W + max_extra)`` at a random offset (299 -> 299..330
-> 331 on ImageNet). Their Inception network took the larger canvas as it is; the classifiers
of a suite take one input size, so the canvas is resized back to H x W (bilinear, with
antialiasing): the classifier sees the image shrunk by a random factor in
``[H / (H + max_extra), 1]`` at a random offset of up to ``max_extra * H / (H + max_extra)``
pixels, the same family of random scalings and translations on its own input size.

Every step (the nearest-neighbour gather, the zero padding, the bilinear resize) is
differentiable in the image, so the gradient of one pass is exact for the transform it drew;
what misleads a single-sample attack is the randomness. Athalye, Carlini and Wagner,
"Obfuscated Gradients Give a False Sense of Security", ICML 2018,
https://arxiv.org/abs/1802.00420, break the defense with Expectation over Transformation
(EOT): the gradient averaged over many draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..bounds import Count, OneOf, Seed, checked
from ..errors import UserError
from ..registry import DEFENSES
from ..utils import torch_generator
from .base import ModelDefense

INTERPOLATIONS = ("nearest", "bilinear")
Interpolation = Annotated[str, OneOf(INTERPOLATIONS)]


def _axis_grid(size: Tensor, offset: Tensor, source: int, canvas: int) -> Tensor:
    """Normalised source coordinates (``grid_sample``, ``align_corners=False``) of the
    ``canvas`` pixels along one axis, per image: canvas pixel ``i`` shows source position
    ``(i - offset + 0.5) * source / size - 0.5``; outside the resized image it falls outside
    [-1, 1] and reads zero padding. Shape (N, canvas)."""
    i = torch.arange(canvas, device=size.device, dtype=torch.float32)[None, :]
    position = (i - offset[:, None] + 0.5) * source / size[:, None]  # in source pixels + 0.5
    return 2 * position / source - 1


def resize_and_pad(
    x: Tensor, extra: Tensor, top: Tensor, left: Tensor, max_extra: int, interpolation: str
) -> Tensor:
    """Each image ``x[k]`` (N, C, H, W) resized to ``(H + extra[k]) x (W + extra[k])`` and
    placed at (``top[k]``, ``left[k]``) on a zero canvas of ``(H + max_extra) x (W +
    max_extra)``; shape (N, C, H + max_extra, W + max_extra)."""
    n, _, h, w = x.shape
    extra_f = extra.to(torch.float32)
    gy = _axis_grid(h + extra_f, top.to(torch.float32), h, h + max_extra)
    gx = _axis_grid(w + extra_f, left.to(torch.float32), w, w + max_extra)
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    # canvas pixels on the resized image read their source pixel ("nearest") or blend their
    # neighbours ("bilinear"); those off it read the zero padding
    return F.grid_sample(
        x, grid.to(x.dtype), mode=interpolation, padding_mode="zeros", align_corners=False
    )


class RandomResizePadInput(nn.Module):
    """``classifier(resize_back(pad(resize(x))))`` with a fresh size and offset per image and
    per call, drawn from a private stream seeded with ``seed`` (the same seed gives the same
    sequence of outputs for the same sequence of inputs, whatever the global random state).

    ``randomized = True``: attacks should average gradients over draws (EOT).
    ``gradient_approximation()`` is ``None``: the front is differentiable, so the model's own
    gradient is the exact gradient of one draw and EOT over it is the adaptive attack; BPDA
    with the identity would be a worse approximation than the truth.
    """

    randomized: ClassVar[bool] = True

    def __init__(
        self, classifier: nn.Module, max_extra: int, interpolation: str, seed: int
    ) -> None:
        super().__init__()
        self.classifier = classifier
        self.max_extra, self.interpolation, self.seed = max_extra, interpolation, seed
        self.num_classes = getattr(classifier, "num_classes", None)
        self._rng: torch.Generator | None = None

    def draw(self, n: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """Per image: the extra size ``e`` in 0..max_extra, and the top and left offsets,
        each uniform in 0..max_extra - e."""
        if self._rng is None or self._rng.device != device:
            self._rng = torch_generator(self.seed, device)
        extra = torch.randint(0, self.max_extra + 1, (n,), generator=self._rng, device=device)
        room = (self.max_extra - extra + 1).to(torch.float32)
        offsets = torch.rand(2, n, generator=self._rng, device=device).mul(room).floor().long()
        return extra, offsets[0], offsets[1]

    def transform(self, x: Tensor) -> Tensor:
        """One random draw of the front: ``x`` resized, padded and resized back, same shape."""
        extra, top, left = self.draw(len(x), x.device)
        canvas = resize_and_pad(x, extra, top, left, self.max_extra, self.interpolation)
        back = F.interpolate(
            canvas, size=x.shape[-2:], mode="bilinear", align_corners=False, antialias=True
        )
        return back.clamp(0, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.transform(x))

    def gradient_approximation(self) -> nn.Module | None:
        return None


@DEFENSES.register("random_resize_pad")
class RandomResizePad(ModelDefense):
    """Random resizing and zero padding (Xie et al. 2018) in front of one classifier
    (``members = [label]``), resized back to the classifier's input size.

    Args:
        max_extra: the canvas is ``max_extra`` pixels larger than the image, which is resized
            to a random size between its own and the canvas's (default 4: 28 -> 28..32 on
            MNIST, the paper's ratio 331 / 299 ~ 1.11 rounded up).
        interpolation: the random resize, ``"nearest"`` (default, the paper's) or
            ``"bilinear"``; the resize back to the input size is always bilinear.
        seed: seeds the draws' private random stream (the runner passes the suite's).
    """

    @checked
    def __init__(
        self, *, max_extra: Count = 4, interpolation: Interpolation = "nearest", seed: Seed = 0
    ) -> None:
        self.max_extra, self.interpolation, self.seed = int(max_extra), interpolation, int(seed)

    def build(self, members: Sequence[nn.Module]) -> nn.Module:
        if len(members) != 1:
            raise UserError("random_resize_pad wraps exactly one classifier (members = [label])")
        return RandomResizePadInput(members[0], self.max_extra, self.interpolation, self.seed)
