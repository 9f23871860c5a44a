"""The checks an attack call makes on its inputs: images, labels, target classes, budgets.

They depend on the data of one call, not on how the attack was built, so they are code here
rather than bounds in a signature (constructor parameters are checked by their annotations,
see :mod:`robustbench_gan.bounds`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..contract.norms import NORMS

if TYPE_CHECKING:
    from .base import Attack


def check_call(
    attack: Attack, x: Tensor, y: Tensor, eps: float | Sequence[float], target_class: Tensor | None
) -> tuple[float, ...]:
    """The budgets of ``attack(model, x, y, eps, target_class=...)`` as floats, after a
    one-line ValueError for anything the call cannot run on."""
    if attack.norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {attack.norm!r}")
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() != 4:
        raise ValueError("x must be a float tensor of shape (N, C, H, W)")
    if not isinstance(y, Tensor) or y.dim() != 1 or len(y) != len(x):
        raise ValueError(f"y must be a 1-D tensor of {len(x)} labels, got shape {tuple(y.shape)}")
    if y.is_floating_point():
        raise ValueError("y must hold integer class labels")
    if x.numel() and not (torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
        raise ValueError("x must hold finite values in [0, 1]")
    if attack.targeted:
        if target_class is None:
            raise ValueError("a targeted attack needs target_class=<labels>")
        t = target_class
        if not isinstance(t, Tensor) or t.shape != y.shape or t.is_floating_point():
            raise ValueError(f"target_class must be integer labels of shape {tuple(y.shape)}")
    elif target_class is not None:
        raise ValueError(
            "target_class was given to an untargeted attack; construct it with targeted=True"
        )
    budgets = (eps,) if isinstance(eps, numbers.Real) else tuple(eps)
    if not budgets:
        raise ValueError("eps must hold at least one budget")
    for e in budgets:
        if isinstance(e, bool) or not (isinstance(e, numbers.Real) and 0 <= float(e) < math.inf):
            raise ValueError(f"eps must be finite numbers >= 0, got {e!r}")
    return tuple(float(e) for e in budgets)
