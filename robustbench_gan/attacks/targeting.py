"""Which target classes a targeted attack tries first: by clean logits (AutoAttack's order)
or by the linearized distance to each class's decision boundary (MALT's order).

Melamed, Yehudai & Shamir, "MALT Powers Up Adversarial Attacks", NeurIPS 2024,
https://arxiv.org/abs/2407.02240: near a data point a network is almost linear at the scale
of an adversarial perturbation, so the class ``t`` whose boundary with the true class ``y``
is nearest is the one ``(z_y - z_t) / ||grad_x (z_y - z_t)||_*`` ranks first (the dual norm
of the attack's: L1 for L-inf, L2 for L2), where AutoAttack ranks by ``z_t`` alone. Only
the ``candidates`` classes of the highest logits are measured (one backward pass each; the
paper measures the top 100 of ImageNet's 1,000), the rest follow in logit order.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..contract.norms import NormName


def by_logits(logits: Tensor) -> Tensor:
    """Every class per image, highest clean logit first (the true class among them)."""
    return logits.argsort(1, descending=True)


def by_linearized_distance(
    model: nn.Module, x: Tensor, y: Tensor, norm: NormName, candidates: int = 9
) -> Tensor:
    """Every class per image: the true class first, then the ``candidates`` wrong classes of
    the highest clean logits ordered by the linearized distance to their boundary with the
    true class (nearest first), then the other wrong classes by logit. One forward pass and
    ``min(candidates, C - 1)`` backward passes per image."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        own = logits.gather(1, y[:, None])
        wrong = logits.detach().scatter(1, y[:, None], float("-inf")).argsort(1, descending=True)
        wrong = wrong[:, : logits.shape[1] - 1]
        m = min(candidates, wrong.shape[1])
        distance = torch.empty(len(x), m, device=x.device)
        for j in range(m):
            gap = own.squeeze(1) - logits.gather(1, wrong[:, j : j + 1]).squeeze(1)
            (grad,) = torch.autograd.grad(gap.sum(), x, retain_graph=j < m - 1)
            flat = grad.flatten(1)
            dual = flat.abs().sum(1) if norm == "linf" else flat.norm(dim=1)
            distance[:, j] = gap.detach() / dual.clamp_min(1e-12)
    order = distance.argsort(dim=1, stable=True)  # ties keep the logit order
    nearest = wrong[:, :m].gather(1, order)
    return torch.cat([y[:, None], nearest, wrong[:, m:]], dim=1)
