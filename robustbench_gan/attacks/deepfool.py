"""DeepFool, L2 and L-inf: a minimal-perturbation attack by iterated linearization.

Moosavi-Dezfooli, Fawzi and Frossard, "DeepFool: a simple and accurate method to
fool deep neural networks", CVPR 2016, https://arxiv.org/abs/1511.04599.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import torch
from torch import Tensor, nn

from ..bounds import Count, NonNegative, Range, Seed
from ..contract.norms import NormName
from ..registry import ATTACKS
from .base import Attack


@ATTACKS.register("deepfool")
class DeepFool(Attack):
    """Step to the nearest boundary of the model linearized at the current point.

    At each iteration the decision boundaries between the true class and the
    candidate classes are linearized; the step goes to the closest one (in the
    dual norm of the attack's norm). Steps accumulate into ``r`` and the iterate
    is ``clip(x + (1 + overshoot) * r, 0, 1)``. A sample stops as soon as it is
    misclassified. The attack runs once, unbounded; the base cuts the result to
    each budget by projection onto that budget's ball.

    Args:
        norm: ``"l2"`` (default, the paper's main variant) or ``"linf"``.
        steps: iterations at most (default 50).
        overshoot: relative overshoot of the accumulated step (default 0.02),
            so the point crosses the boundary instead of landing on it.
        candidates: the true class and the ``candidates - 1`` other classes with
            the highest clean logits are considered (default 10); fewer is
            faster on many-class models.

    Untargeted only. Also takes the base ``seed`` and ``batch_size``; it uses no
    randomness. Samples the model already misclassifies are returned unchanged;
    samples not fooled within ``steps`` return their last iterate.
    """

    minimal: ClassVar[bool] = True

    def __init__(
        self,
        *,
        norm: NormName = "l2",
        steps: Count = 50,
        overshoot: NonNegative = 0.02,
        candidates: Annotated[int, Range(2, whole=True)] = 10,
        targeted: bool = False,
        seed: Seed = 0,
        batch_size: Count = 256,
    ) -> None:
        super().__init__(targeted=targeted, seed=seed, batch_size=batch_size)
        self.norm = norm  # instance attribute overrides the class default
        self.steps = int(steps)
        self.overshoot = float(overshoot)
        self.candidates = int(candidates)

    def perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target_class: Tensor | None
    ) -> Tensor:
        with torch.no_grad():
            classes = self._candidate_classes(model(x), y)
        total = torch.zeros_like(x)
        adv = x.clone()
        active = torch.arange(len(x), device=x.device)
        for _ in range(self.steps):
            pred, picked, grads = self._candidate_gradients(model, adv[active], classes[active])
            still_correct = pred == y[active]
            active = active[still_correct]
            if len(active) == 0:
                break
            step = self._step_to_nearest_boundary(picked[still_correct], grads[still_correct])
            total[active] += step
            adv[active] = (x[active] + (1 + self.overshoot) * total[active]).clamp(0.0, 1.0)
        return adv

    def _candidate_classes(self, logits: Tensor, y: Tensor) -> Tensor:
        """(B, k): the true class first, then the k - 1 other classes with the top logits."""
        k = min(self.candidates, logits.shape[1])
        others = logits.scatter(1, y.view(-1, 1), float("-inf"))
        return torch.cat([y.view(-1, 1), others.topk(k - 1, dim=1).indices], dim=1)

    def _candidate_gradients(
        self, model: nn.Module, x: Tensor, classes: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Predictions (B,), candidate logits (B, k) and their input gradients (B, k, ...).

        One forward pass and one backward pass per candidate, each on the sum of
        that candidate's logit over the batch (samples do not interact).
        """
        x = x.detach().requires_grad_(True)
        k = classes.shape[1]
        with torch.enable_grad():
            logits = model(x)
            picked = logits.gather(1, classes)
            grads = [
                torch.autograd.grad(picked[:, j].sum(), x, retain_graph=j < k - 1)[0]
                for j in range(k)
            ]
        return logits.argmax(1).detach(), picked.detach(), torch.stack(grads, dim=1)

    def _step_to_nearest_boundary(self, picked: Tensor, grads: Tensor) -> Tensor:
        """The step onto the closest linearized boundary between class 0 and the others."""
        f = picked[:, 1:] - picked[:, :1]  # (B, k-1), negative while still correct
        w = (grads[:, 1:] - grads[:, :1]).flatten(2)  # (B, k-1, D)
        dual = w.abs().sum(2) if self.norm == "linf" else w.norm(dim=2)
        dist = f.abs() / dual.clamp_min(1e-12)
        nearest = dist.argmin(1)
        rows = torch.arange(len(f), device=f.device)
        w_l, dist_l = w[rows, nearest], dist[rows, nearest] + 1e-4
        if self.norm == "linf":
            step = dist_l.view(-1, 1) * w_l.sign()
        else:
            step = dist_l.view(-1, 1) * w_l / w_l.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return step.view(-1, *grads.shape[2:])
