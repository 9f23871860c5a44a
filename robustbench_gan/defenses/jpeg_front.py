"""A JPEG compression front: the input is JPEG-compressed and decoded before the classifier.

Das et al., "Keeping the Bad Guys Out: Protecting and Vaccinating Deep Learning with JPEG
Compression", 2017, https://arxiv.org/abs/1705.02900, and Guo, Rana, Cisse and van der
Maaten, "Countering Adversarial Images using Input Transformations", ICLR 2018,
https://arxiv.org/abs/1711.00117 (quality 75), put JPEG compression in front of a classifier.
The quantization of the DCT coefficients is a rounding, whose gradient is zero almost
everywhere: a gradient attack on the defended model sees nothing. Athalye, Carlini and
Wagner, "Obfuscated Gradients Give a False Sense of Security", ICML 2018,
https://arxiv.org/abs/1802.00420, break it with BPDA: forward through the compression,
backward as if it were the identity (``jpeg(x) ~ x``); the built model declares the bare
classifier as its ``gradient_approximation`` for that attack.

The codec is baseline JPEG written in torch (batched, on the input's device): pixels to 0..255,
shifted by -128; 8x8 blocks (the image padded to a multiple of 8 by repeating its last row
and column, as libjpeg does, and cropped back after decoding); the orthonormal 2-D DCT-II;
division by the standard quantization table (ITU-T T.81 Annex K) scaled to ``quality`` as
libjpeg scales it, rounding, multiplication back; the inverse DCT; decoded pixels rounded
to 8 bits. Colour: 3-channel images are converted to YCbCr (JFIF, BT.601 full range) and the
luminance table quantizes Y, the chrominance table Cb and Cr, without chroma subsampling
(4:4:4); images of any other channel count (grayscale) are coded channel by channel with the
luminance table. Entropy coding is lossless and left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..bounds import Range, checked
from ..errors import UserError
from ..registry import DEFENSES
from .base import ModelDefense

Quality = Annotated[int, Range(1, 100, whole=True)]

BLOCK = 8
#: ITU-T T.81 Annex K, table K.1 (luminance) and K.2 (chrominance)
LUMINANCE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
CHROMINANCE = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
    *((99,) * 8 for _ in range(4)),
)
#: RGB -> YCbCr (JFIF) on 0..255 values; Cb and Cr are offset by 128
RGB_TO_YCBCR = (
    (0.299, 0.587, 0.114),
    (-0.168735892, -0.331264108, 0.5),
    (0.5, -0.418687589, -0.081312411),
)


def quantization_table(table: Sequence[Sequence[int]], quality: int) -> Tensor:
    """``table`` scaled to ``quality`` in [1, 100] as libjpeg does (``jpeg_quality_scaling``):
    factor 5000/q below 50, 200 - 2q from 50; entries clamped to 1..255 (all 1 at 100)."""
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    scaled = torch.tensor(table, dtype=torch.float64).mul(scale).add(50).div(100).floor()
    return scaled.clamp(1, 255).float()


def dct_matrix(n: int = BLOCK) -> Tensor:
    """The orthonormal DCT-II matrix ``D``: the coefficients of a block ``B`` are ``D B D^T``."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    d[0] /= math.sqrt(2)
    return d.float()


def jpeg(x: Tensor, quality: int) -> Tensor:
    """``x`` (N, C, H, W) in [0, 1] compressed and decoded at ``quality``, in [0, 1], same
    shape. Zero gradient almost everywhere (rounding)."""
    n, c, h, w = x.shape
    device, dtype = x.device, x.dtype
    pixels = x.clamp(0, 1) * 255
    colour = c == 3
    rgb = torch.tensor(RGB_TO_YCBCR, device=device, dtype=dtype)
    if colour:
        pixels = torch.einsum("ij,njhw->nihw", rgb, pixels)
        pixels = pixels + torch.tensor([0.0, 128, 128], device=device, dtype=dtype)[:, None, None]
        pixels = torch.round(pixels).clamp(0, 255)  # 8-bit YCbCr samples, as coded
    pad_h, pad_w = -h % BLOCK, -w % BLOCK
    if pad_h or pad_w:
        pixels = F.pad(pixels, (0, pad_w, 0, pad_h), mode="replicate")
    hb, wb = (h + pad_h) // BLOCK, (w + pad_w) // BLOCK
    # (N, C, hb, 8, wb, 8) -> (N, C, hb, wb, 8, 8)
    blocks = (pixels - 128).view(n, c, hb, BLOCK, wb, BLOCK).permute(0, 1, 2, 4, 3, 5)
    d = dct_matrix().to(device=device, dtype=dtype)
    tables = [quantization_table(LUMINANCE, quality)]
    if colour:
        tables += [quantization_table(CHROMINANCE, quality)] * 2
    q = torch.stack(tables).to(device=device, dtype=dtype)
    q = q.expand(c, BLOCK, BLOCK)[None, :, None, None]  # (1, C, 1, 1, 8, 8)
    coefficients = d @ blocks @ d.T
    coefficients = torch.round(coefficients / q) * q
    decoded = (d.T @ coefficients @ d) + 128
    decoded = decoded.permute(0, 1, 2, 4, 3, 5).reshape(n, c, hb * BLOCK, wb * BLOCK)
    decoded = decoded[:, :, :h, :w]
    if colour:
        decoded = torch.round(decoded).clamp(0, 255)  # decoded 8-bit YCbCr samples
        decoded = decoded - torch.tensor([0.0, 128, 128], device=device, dtype=dtype)[:, None, None]
        decoded = torch.einsum("ij,njhw->nihw", torch.linalg.inv(rgb), decoded)
    return torch.round(decoded.clamp(0, 255)) / 255


class JPEGInput(nn.Module):
    """``classifier(jpeg(x, quality))``; its gradient with respect to ``x`` is zero.

    ``gradient_approximation()`` is the bare classifier: BPDA with the identity.
    """

    randomized: ClassVar[bool] = False

    def __init__(self, classifier: nn.Module, quality: int) -> None:
        super().__init__()
        self.classifier = classifier
        self.quality = quality
        self.num_classes = getattr(classifier, "num_classes", None)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(jpeg(x, self.quality))

    def gradient_approximation(self) -> nn.Module:
        return self.classifier


@DEFENSES.register("jpeg_front")
class JPEGFront(ModelDefense):
    """JPEG-compress and decode the input of one classifier (``members = [label]``).

    Args:
        quality: JPEG quality, 1 (coarsest) to 100 (tables of ones: only the rounding of
            coefficients and pixels is left); default 75, Guo et al.'s and libjpeg's.
    """

    @checked
    def __init__(self, *, quality: Quality = 75) -> None:
        self.quality = int(quality)

    def build(self, members: Sequence[nn.Module]) -> nn.Module:
        if len(members) != 1:
            raise UserError("jpeg_front wraps exactly one classifier (members = [label])")
        return JPEGInput(members[0], self.quality)
