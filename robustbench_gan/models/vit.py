"""A small Vision Transformer: patch tokens and a class token through pre-norm blocks.

Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition at
Scale", ICLR 2021, https://arxiv.org/abs/2010.11929: non-overlapping patches embedded by
one linear map, a learned class token and learned position embeddings, ``depth``
transformer blocks (layer norm before multi-head self-attention and before a GELU MLP,
each with a residual connection), a final layer norm and a linear head on the class
token. Sized for a CPU (width 64, 4 blocks of 4 heads; the paper's ViT-Base has 768, 12
and 12); no dropout, so the forward pass is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import torch
from torch import Tensor, nn

from ..bounds import Positive, Range, checked
from ..registry import CLASSIFIERS
from .base import Classifier

Size = Annotated[int, Range(1, whole=True)]


def default_patch(rows: int, cols: int) -> int:
    """4 or 2, the largest dividing both sides and leaving at least 4 patches along each
    (4 on 32x32 CIFAR and 28x28 MNIST, 2 on 8x8 digits), else 1 (one token a pixel)."""
    for patch in (4, 2):
        if rows % patch == 0 and cols % patch == 0 and min(rows, cols) // patch >= 4:
            return patch
    return 1


class Attention(nn.Module):
    """Multi-head self-attention written with plain matrix products (exact gradients)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        n, tokens, dim = x.shape
        qkv = self.qkv(x).view(n, tokens, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (n, heads, tokens, dim / heads)
        weights = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(n, tokens, dim)
        return self.proj(out)


class Block(nn.Module):
    """``x + attention(norm(x))``, then ``x + mlp(norm(x))``. Its two residual branches end
    in ``attention`` and ``mlp`` (declared for the skip-gradient attack, attacks/sgm.py)."""

    residual_branch_ends = ("attention", "mlp")

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Encoder(nn.Module):
    """Image -> patch tokens with the class token and position embeddings -> blocks ->
    layer norm -> the class token's vector."""

    def __init__(
        self, channels: int, tokens: int, patch: int, dim: int, depth: int, heads: int, hidden: int
    ) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens + 1, dim))
        self.blocks = nn.Sequential(*(Block(dim, heads, hidden) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)  # (n, tokens, dim)
        cls = self.cls_token.expand(len(x), -1, -1)
        tokens = torch.cat([cls, patches], dim=1) + self.pos_embed
        return self.norm(self.blocks(tokens))[:, 0]


def init_weights(module: nn.Module) -> None:
    """The reference implementation's: truncated normal (std 0.02) linear weights and
    embeddings, zero biases; layer norms and the patch embedding keep PyTorch's."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, Encoder):
        nn.init.trunc_normal_(module.pos_embed, std=0.02)
        nn.init.trunc_normal_(module.cls_token, std=0.02)


@CLASSIFIERS.register("vit")
class ViT(Classifier):
    """patch embedding (``patch`` x ``patch`` -> ``dim``) + class token + position
    embeddings -> ``depth`` pre-norm blocks (``heads`` heads, MLP of ``mlp_ratio * dim``)
    -> layer norm -> the class token -> linear -> logits.

    ``patch`` must divide both sides of the image; left out, it is 4 where 4 divides them
    and leaves at least 4 patches a side (32x32, 28x28), else 2 on the same terms (8x8),
    else 1. ``heads`` must divide ``dim``. Any channel count.
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
        patch: Size | None = None,
        dim: Size = 64,
        depth: Size = 4,
        heads: Size = 4,
        mlp_ratio: Positive = 2.0,
    ) -> None:
        super().__init__(in_shape, num_classes, mean, std)
        channels, rows, cols = self.in_shape
        patch = default_patch(rows, cols) if patch is None else patch
        if rows % patch or cols % patch:
            raise ValueError(f"patch {patch} does not divide the image's sides ({rows}x{cols})")
        if dim % heads:
            raise ValueError(f"heads {heads} does not divide dim {dim}")
        hidden = round(mlp_ratio * dim)
        if hidden < 1:
            raise ValueError(f"mlp_ratio * dim must be at least 1, got {mlp_ratio} * {dim}")
        self.patch = patch
        tokens = (rows // patch) * (cols // patch)
        self.body = Encoder(channels, tokens, patch, dim, depth, heads, hidden)
        self.feature_dim = dim
        self.head = nn.Linear(dim, num_classes)
        self.apply(init_weights)
