"""Unrestricted adversarial examples by search in a conditional generator's latent space.

Song, Shu, Kushman and Ermon, "Constructing Unrestricted Adversarial Examples with
Generative Models", NeurIPS 2018, https://arxiv.org/abs/1805.07894.

No eps ball: an example is any image the generator makes for a source class that an
independent auxiliary classifier still calls that class while the target does not. The
threat model differs from the Lp attacks, so results go to their own table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..bounds import Count, NonNegative, Positive, Seed, checked
from ..utils import batch_slices, predict, torch_generator
from .base import frozen, margin_loss


@dataclass
class LatentResult:
    """Per sample: the source class, the unsearched image G(z0, y), the found image G(z*, y),
    and what the target and the auxiliary classifier say about both."""

    labels: Tensor
    start: Tensor
    found: Tensor
    target_start: Tensor  # target's predictions on G(z0, y)
    target_found: Tensor
    auxiliary_found: Tensor
    seconds: float

    @property
    def success(self) -> Tensor:
        """The target is fooled while the auxiliary classifier still sees the source class."""
        return (self.target_found != self.labels) & (self.auxiliary_found == self.labels)

    def summary(self) -> dict[str, float]:
        n = max(len(self.labels), 1)
        share = lambda mask: int(mask.sum()) / n  # noqa: E731
        return {
            "n": len(self.labels),
            "target_acc_start": share(self.target_start == self.labels),
            "target_acc_found": share(self.target_found == self.labels),
            "auxiliary_agrees": share(self.auxiliary_found == self.labels),
            "success_rate": share(self.success),
            "seconds": self.seconds,
        }


@checked
def latent_attack(
    gan: nn.Module,
    target: nn.Module,
    auxiliary: nn.Module,
    *,
    n: Count = 100,
    steps: Count = 100,
    lr: Positive = 0.05,
    eps_z: NonNegative = 0.1,
    lambda_z: NonNegative = 100.0,
    lambda_aux: NonNegative = 1.0,
    batch_size: Count = 256,
    seed: Seed = 0,
) -> LatentResult:
    """Search, for ``n`` source labels cycling over the classes, a latent code z near a
    random z0 such that the target misclassifies G(z, y) and the auxiliary does not.

    Adam on z minimises the target's margin z_y - max_{i != y} z_i (floored at 0, so a
    fooled target stops pulling), ``lambda_z`` times the mean of max(|z - z0| - eps_z, 0)
    (Song et al.'s soft box around z0) and ``lambda_aux`` times the auxiliary's
    cross-entropy on y. The first z at which the target is fooled while the auxiliary
    agrees is kept per sample; otherwise the last one.
    """
    if not getattr(gan, "conditional", False):
        raise ValueError("the latent attack needs a class-conditional generator")
    device = gan.device
    rng = torch_generator(seed)
    labels = torch.arange(n) % gan.num_classes
    z0 = torch.randn(n, gan.nz, generator=rng)
    start_time = time.perf_counter()
    found = []
    with frozen(gan), frozen(target), frozen(auxiliary):
        for s in batch_slices(n, batch_size):
            found.append(_search(gan, target, auxiliary, z0[s].to(device), labels[s].to(device),
                                 steps, lr, eps_z, lambda_z, lambda_aux))  # fmt: skip
        with torch.no_grad():
            start = torch.cat([gan.generate(z0[s].to(device), labels[s].to(device)).cpu()
                               for s in batch_slices(n, batch_size)])  # fmt: skip
            images = torch.cat(found) if found else start.clone()
            result = LatentResult(
                labels=labels,
                start=start,
                found=images,
                target_start=predict(target, start),
                target_found=predict(target, images),
                auxiliary_found=predict(auxiliary, images),
                seconds=time.perf_counter() - start_time,
            )
    return result


def _search(
    gan: nn.Module,
    target: nn.Module,
    auxiliary: nn.Module,
    z0: Tensor,
    y: Tensor,
    steps: int,
    lr: float,
    eps_z: float,
    lambda_z: float,
    lambda_aux: float,
) -> Tensor:
    """Adam on z for one batch; the first z that fools the target while the auxiliary
    agrees is kept per sample (else the last)."""
    z = z0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    best = gan.generate(z0, y).detach()
    done = torch.zeros(len(y), dtype=torch.bool, device=y.device)
    with torch.enable_grad():
        for _ in range(steps):
            x = gan.generate(z, y)
            t_logits, a_logits = target(x), auxiliary(x)
            ok = (t_logits.argmax(1) != y) & (a_logits.argmax(1) == y) & ~done
            best[ok] = x[ok].detach()
            done |= ok
            if done.all():
                break
            loss = (
                margin_loss(t_logits, y, targeted=False).clamp_min(0)
                + lambda_z * (z - z0).abs().sub(eps_z).clamp_min(0).mean(1)
                + lambda_aux * F.cross_entropy(a_logits, y, reduction="none")
            )
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()
            optimizer.step()
        with torch.no_grad():
            last = gan.generate(z, y)
    best[~done] = last[~done]
    return best.cpu()
