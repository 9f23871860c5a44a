"""Small helpers shared across stages: seeding and batching."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def torch_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A private random stream, so one component's draws never shift another's."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


def batch_slices(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)`` in chunks of ``batch_size``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


@torch.no_grad()
def predict(model: torch.nn.Module, x: Tensor, *, batch_size: int = 512) -> Tensor:
    """Predicted labels of ``model`` on ``x`` (eval mode, mode restored after)."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        out = [model(x[s].to(device)).argmax(1).cpu() for s in batch_slices(len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)
