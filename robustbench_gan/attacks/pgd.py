"""Projected Gradient Descent, L-inf and L2.

Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning Models
Resistant to Adversarial Attacks", ICLR 2018, https://arxiv.org/abs/1706.06083.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from ..bounds import Count, Positive, Seed
from ..contract.norms import NormName
from ..registry import ATTACKS
from .base import Attack


def take(keep: Tensor, *tensors: Tensor | None) -> list:
    """Rows ``keep`` of each tensor (None stays None)."""
    return [t[keep] if t is not None else None for t in tensors]


def rows(mask: Tensor, like: Tensor) -> Tensor:
    """A per-sample mask shaped to broadcast over a batch shaped like ``like``."""
    return mask.view(-1, *([1] * (like.dim() - 1)))


@ATTACKS.register("pgd")
class PGD(Attack):
    """Iterated gradient steps, each projected back onto the eps-ball and [0, 1].

    Args:
        norm: ``"linf"`` (default; steps along the gradient sign) or ``"l2"``
            (steps along the per-sample normalized gradient).
        steps: gradient steps per restart (default 20).
        rel_stepsize: step size as a fraction of eps; default ``2.5 / steps``
            (Madry et al.'s rule: the walk can cross the ball 2.5 times).
        random_start: start uniformly in the ball (default True); for L2 a
            uniform direction with radius ``eps * u ** (1 / dim)``.
        restarts: independent runs (default 1); later restarts only attack the
            samples earlier ones did not break.
        keep_first_success: return per image the first iterate that fools the model
            (default, the strongest evaluation); ``False`` returns the last iterate of
            every image, Madry et al.'s training examples (used by ``pgd_at``).

    Per sample the attack returns the first iterate that succeeds
    (misclassified, or classified as the target class), over steps and restarts;
    otherwise the last iterate of the last restart. So more steps or restarts
    never weaken it. Also takes the base ``targeted``, ``seed``, ``batch_size``.

    Cost per image and restart: ``steps`` forward and backward passes at most, plus one
    forward pass at the end of each restart but the last (the base's final prediction
    checks the last iterate of the last one, and fills its success step). With
    ``keep_first_success`` an image leaves the batch once fooled (its result is final),
    so the cost falls with the share of images fooled early.
    """

    targeted_supported: ClassVar[bool] = True

    def __init__(
        self,
        *,
        norm: NormName = "linf",
        steps: Count = 20,
        rel_stepsize: Positive | None = None,
        random_start: bool = True,
        restarts: Count = 1,
        keep_first_success: bool = True,
        targeted: bool = False,
        seed: Seed = 0,
        batch_size: Count = 256,
    ) -> None:
        super().__init__(targeted=targeted, seed=seed, batch_size=batch_size)
        self.norm = norm  # instance attribute overrides the class default
        self.steps = int(steps)
        self.rel_stepsize = float(rel_stepsize) if rel_stepsize is not None else 2.5 / steps
        self.random_start = bool(random_start)
        self.restarts = int(restarts)
        self.keep_first_success = bool(keep_first_success)

    @property
    def iterations(self) -> int:
        """``steps * restarts``: the success steps of later restarts continue the count."""
        return self.steps * self.restarts

    def perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target_class: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        if self.restarts == 1:  # no gathering
            return self._run(model, x, y, eps, target_class, check_last=False)
        adv = x.clone()
        step = torch.full((len(x),), -1, dtype=torch.long, device=x.device)
        for restart in range(self.restarts):
            todo = (step < 0).nonzero().squeeze(1)
            if len(todo) == 0:
                break
            sub_target_class = target_class[todo] if target_class is not None else None
            last = restart == self.restarts - 1
            adv[todo], found = self._run(
                model, x[todo], y[todo], eps, sub_target_class, check_last=not last
            )
            step[todo] = torch.where(found >= 0, found + restart * self.steps, -1)
        return adv, step

    def _run(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        eps: float,
        target_class: Tensor | None,
        check_last: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """One restart: per sample the first successful iterate (or the last), and the step
        at which it was found (-1: never). ``check_last=False`` spares the forward pass
        that checks the last iterate: its successes keep step -1. With keep_first_success,
        fooled samples leave the batch (see :meth:`_live`): their result is final."""
        best = x.clone()
        step = torch.full((len(x),), -1, dtype=torch.long, device=x.device)
        adv = self.project(x + self._random_delta(x, eps), x, eps) if self.random_start else x
        # the rows still attacked (None: all) and their inputs, iterates, results
        index, xs, ys, ts, bs, ss = None, x, y, target_class, best, step
        for i in range(self.steps):
            grad, logits = self.gradient_and_logits(model, adv, ys, ts)
            self._keep_first_success(bs, ss, i, adv, logits, ys, ts)
            keep = self._live(ss) if self.keep_first_success else None
            if keep is not None:
                if index is not None:  # write the leaving rows' results back
                    best[index], step[index] = bs, ss
                if len(keep) == 0:
                    return best, step
                index = keep if index is None else index[keep]
                xs, ys, ts, adv, grad, bs, ss = take(keep, xs, ys, ts, adv, grad, bs, ss)
                self._keep_rows(keep)
            adv = self.project(adv + self.rel_stepsize * eps * self._direction(grad), xs, eps)
        if check_last:
            with torch.no_grad():
                self._keep_first_success(bs, ss, self.steps, adv, model(adv), ys, ts)
        if not self.keep_first_success:
            return adv, step
        # the images never fooled (or fooled only at the unchecked last iterate) end there
        torch.where(rows(ss < 0, adv), adv, bs, out=bs)
        if index is not None:
            best[index], step[index] = bs, ss
        return best, step

    #: a run drops the samples it has fooled from its batch once they are this share of
    #: the batch, but keeps at least MIN_ROWS rows (tiny batches take other BLAS kernels,
    #: whose last bits differ: with these rows a sample's gradients stay bit for bit the same)
    SHRINK_AT: ClassVar[float] = 0.1
    MIN_ROWS: ClassVar[int] = 4

    def _live(self, step: Tensor) -> Tensor | None:
        """The rows of the batch to go on with (empty: every sample is fooled), or None to
        keep the batch: the unfooled rows in order, padded with fooled ones to MIN_ROWS."""
        todo = step < 0
        left = int(todo.sum())
        if left == 0:
            return todo.nonzero().squeeze(1)
        if left > (1 - self.SHRINK_AT) * len(step) or len(step) <= self.MIN_ROWS:
            return None
        keep = torch.argsort((~todo).to(torch.uint8), stable=True)[: max(left, self.MIN_ROWS)]
        return keep.sort().values

    def _keep_rows(self, keep: Tensor) -> None:
        """The batch now holds only rows ``keep`` of the previous one: a subclass with
        per-sample state drops the rest of it too."""

    def _keep_first_success(
        self,
        best: Tensor,
        step: Tensor,
        i: int,
        adv: Tensor,
        logits: Tensor,
        y: Tensor,
        target_class: Tensor | None,
    ) -> None:
        """Record, in place and without a device sync, the iterate ``adv`` (step ``i``) of
        the samples it fools for the first time."""
        new = self.succeeded(logits.argmax(1), y, target_class) & (step < 0)
        torch.where(rows(new, adv), adv, best, out=best)
        step.masked_fill_(new, i)

    def _direction(self, grad: Tensor) -> Tensor:
        if self.norm == "linf":
            return grad.sign()
        norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
        return grad / norms.view(-1, *([1] * (grad.dim() - 1)))

    def _random_delta(self, x: Tensor, eps: float) -> Tensor:
        if self.norm == "linf":
            u = torch.rand(x.shape, generator=self.rng, device=x.device, dtype=x.dtype)
            return (2 * u - 1) * eps
        direction = self._direction(
            torch.randn(x.shape, generator=self.rng, device=x.device, dtype=x.dtype)
        )
        dim = x[0].numel()
        u = torch.rand(len(x), generator=self.rng, device=x.device, dtype=x.dtype)
        radius = eps * u.pow(1.0 / dim)
        return direction * radius.view(-1, *([1] * (x.dim() - 1)))
